"""Transcript alignment: rapidfuzz's Levenshtein opcodes (ours, with the stretches matched inside) against
difflib's SequenceMatcher (``autojunk=False``) on the same normalised word lists, for a 2,000-word story whose
transcript has 5% of its words perturbed (typos, split, merged and dropped words).

Usage::

    python benchmarks/bench_transcripts.py [--words 2000] [--rate 0.05] [--repeats 5]

Both aligners see the same normalised words and the same stretch matching; only the opcodes differ. Prints each
one's time (the best of ``--repeats``) and the fraction of timed words mapped to the transcript words made from
them; the LAST line is ``ratio=<difflib time / ours>``; results go to benchmarks/results/bench_transcripts.jsonl.
"""

import argparse
import difflib
import platform
import time
from pathlib import Path
from unittest import mock

import numpy as np
from _results import append_result

from bids_encoding.inputs import transcripts
from bids_encoding.synthetic.story import STORY
from bids_encoding.synthetic.transcript import perturb_transcript, timed_spelling

RESULTS = Path(__file__).parent / "results" / "bench_transcripts.jsonl"


def _difflib_opcodes(source, destination):
    return difflib.SequenceMatcher(None, source, destination, autojunk=False).get_opcodes()


def _timed(align, transcript, timed, repeats):
    best, alignment = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        alignment = align(transcript, timed)
        best = min(best, time.perf_counter() - start)
    return best, alignment


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    story = STORY.split()
    words = (story * (args.words // len(story) + 1))[:args.words]
    timed = [timed_spelling(word) for word in words]
    transcript, origin = perturb_transcript(words, args.rate, np.random.default_rng(args.seed))
    transcripts.align_transcript(transcript[:50], timed[:50])  # imports and num2words loaded before timing
    results = {}
    ours, alignment = _timed(transcripts.align_transcript, transcript, timed, args.repeats)
    results["rapidfuzz"] = (ours, alignment)
    from rapidfuzz.distance import Levenshtein

    with mock.patch.object(Levenshtein, "opcodes", _difflib_opcodes):
        results["difflib"] = _timed(transcripts.align_transcript, transcript, timed, args.repeats)
    for name, (seconds, found) in results.items():
        right = float(np.mean([taken == made for taken, made in zip(found.transcript_indices, origin)]))
        print(f"{name}: {seconds * 1000:.1f} ms, {right:.2%} of timed words on their own transcript words, "
              f"match rate {found.match_rate:.2%}")
        append_result(RESULTS, {"aligner": name, "words": args.words, "rate": args.rate, "seed": args.seed,
                                "seconds": seconds, "right": right, "match_rate": found.match_rate,
                                "machine": platform.processor() or platform.machine()})
    print(f"ratio={results['difflib'][0] / results['rapidfuzz'][0]:.1f}")


if __name__ == "__main__":
    main()
