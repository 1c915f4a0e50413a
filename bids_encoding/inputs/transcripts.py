"""Original transcripts: a stimulus's cased and punctuated text, aligned to its timed words.

The model reads the transcript; each timed word takes the tokens of the transcript words aligned to it. Words are
compared by a normalised spelling (lower case, letters and digits only, accents removed, numbers also spelled out
by num2words), and aligned with rapidfuzz's Levenshtein opcodes on the lists of normalised words (C++;
benchmarks/bench_transcripts.py gives its time on a 2,000-word story against difflib's SequenceMatcher with
``autojunk=False``). The stretches the opcodes leave unequal are matched inside by dynamic programming: one word
to one (a typo: rapidfuzz ratio >= 75, words of 4 letters or more), several to one (merged words, hyphenation,
contractions, numbers: the spellings joined are equal, or ratio >= 90), one to several (split words), and the
rest unmatched. A timed word without a transcript word is read with its own spelling, where it was heard
(``deleted``); a transcript word without a timed word is read as context and gets no row (``inserted``).
"""

import hashlib
import itertools
import logging
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from bids_encoding.errors import BadDataError

LOGGER = logging.getLogger(__name__)
ALIGNER = ("rapidfuzz Levenshtein opcodes on normalised words (lower case, letters and digits, no accents, numbers "
           "spelled out); unequal stretches matched one to one (ratio >= 75), several to one and one to several "
           "(joined spellings equal or ratio >= 90)")
MIN_MATCH = 0.9  # the default --transcript-min-match
TYPO_RATIO, JOINED_RATIO, MAX_JOINED = 75.0, 90.0, 3
MAX_STRETCH_CELLS = 400_000  # larger unequal stretches are left unmatched (never seen in a real transcript)
WORST_STRETCHES = 20


def read_transcript(path):
    """The transcript's words (split at white space, punctuation kept with its word)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise BadDataError(f"cannot read the transcript {path}: {error}; give a UTF-8 text file") from error
    words = text.split()
    if not words:
        raise BadDataError(f"the transcript {path} is empty: give the stimulus's text, or no transcript")
    return words


def spellings(word, language="en"):
    """A word's normalised spellings: lower case, letters and digits only, accents removed; a number also as
    num2words writes it in ``language`` (and as a year: ``1943`` -> ``nineteenfortythree``)."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    plain = "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))
    if not plain.isdigit():
        return (plain,)
    from num2words import num2words

    found = [plain]
    for to in ("cardinal", "year"):
        try:
            found.append(spellings(num2words(int(plain), lang=(language or "en")[:2], to=to))[0])
        except (NotImplementedError, OverflowError, ValueError, TypeError, KeyError):
            continue
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class TranscriptAlignment:
    """The transcript's words aligned to a stimulus's timed words.

    Attributes
    ----------
    read_words : tuple of str
        What the model reads: the transcript's words, with the timed words that have no transcript word put
        where they were heard.
    word_ranges : tuple of (int, int)
        For each timed word, the first and last of ``read_words`` whose tokens it takes.
    transcript_indices : tuple of tuple of int
        For each timed word, the transcript words it took (their indices in the transcript; none for a deletion).
    kinds : tuple of str
        For each timed word: ``match`` (same spelling), ``substitution`` (a typo, merged, split or spelled-out
        word), ``deletion`` (no transcript word: read with its own spelling).
    n_inserted : int
        Transcript words that no timed word took (read as context).
    stretches : tuple of dict
        The worst unequal stretches (most timed and transcript words not matched exactly), in order.
    """

    read_words: tuple
    word_ranges: tuple
    transcript_indices: tuple
    kinds: tuple
    n_inserted: int
    stretches: tuple

    @property
    def digest(self):
        """Hash of what the model reads and which words each timed word takes (the feature cache's key)."""
        return hashlib.sha256(repr((self.read_words, self.word_ranges)).encode()).hexdigest()[:16]

    @property
    def match_rate(self):
        """Fraction of timed words that took a transcript word."""
        return sum(kind != "deletion" for kind in self.kinds) / max(len(self.kinds), 1)

    def record(self, path, threshold):
        """The sidecars' ``Words.Transcript``."""
        counts = {kind: self.kinds.count(kind) for kind in ("match", "substitution", "deletion")}
        return {"File": str(path), "SHA256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
                "MatchRate": round(self.match_rate, 4), "Matched": counts["match"],
                "Substituted": counts["substitution"], "Deleted": counts["deletion"], "Inserted": self.n_inserted,
                "MinMatch": threshold, "Aligner": ALIGNER}


def align_transcript(transcript, timed, language="en"):
    """Align ``transcript`` words (:func:`read_transcript`) to ``timed`` words; returns a
    :class:`TranscriptAlignment`."""
    from rapidfuzz.distance import Levenshtein

    keys = [spellings(word, language) for word in transcript]
    content = [index for index, key in enumerate(keys) if key[0]]  # punctuation alone is read, never aligned
    timed_keys = [spellings(str(word), language) for word in timed]
    pairs, stretch = [], None  # stretch: the unequal opcodes in a row, matched together
    opcodes = Levenshtein.opcodes([keys[i][0] for i in content], [k[0] for k in timed_keys])
    for tag, i1, i2, j1, j2 in [*opcodes, ("equal", len(content), len(content), len(timed), len(timed))]:
        if tag != "equal":
            stretch = (stretch[0], i2, stretch[2], j2) if stretch else (i1, i2, j1, j2)
            continue
        if stretch:
            pairs.extend(_match_stretch(content[stretch[0]:stretch[1]], list(range(stretch[2], stretch[3])), keys,
                                        timed_keys))
            stretch = None
        pairs.extend(((content[i1 + k],), (j1 + k,), "match") for k in range(i2 - i1))
    return _assemble(transcript, timed, pairs)


def _same(left, right, ratio):
    """Whether some joined spelling of ``left`` equals (or is ``ratio``-similar to) some of ``right``."""
    from rapidfuzz.fuzz import ratio as similarity

    lefts = {"".join(parts) for parts in itertools.product(*left)}
    rights = {"".join(parts) for parts in itertools.product(*right)}
    if lefts & rights:
        return True
    return any(similarity(a, b) >= ratio for a in lefts for b in rights if min(len(a), len(b)) >= 4)


def _match_stretch(transcript_indices, timed_indices, keys, timed_keys):
    """The pairs of one unequal stretch: the most timed words matched, by dynamic programming over its words."""
    n, m = len(transcript_indices), len(timed_indices)
    if n == 0 or m == 0 or n * m > MAX_STRETCH_CELLS:
        return [((i,), (), "insertion") for i in transcript_indices] + \
               [((), (j,), "deletion") for j in timed_indices]
    best = [[None] * (m + 1) for _ in range(n + 1)]  # (timed words matched, the step that got there)
    best[0][0] = (0, None)
    for i in range(n + 1):
        for j in range(m + 1):
            if best[i][j] is None:
                continue
            score = best[i][j][0]
            steps = [(1, 0, 0), (0, 1, 0)]
            steps += [(a, b, b) for a in range(1, MAX_JOINED + 1) for b in range(1, MAX_JOINED + 1)
                      if (a == 1 or b == 1) and i + a <= n and j + b <= m]
            for a, b, gain in steps:
                if i + a > n or j + b > m:
                    continue
                if gain and not _same([keys[t] for t in transcript_indices[i:i + a]],
                                      [timed_keys[w] for w in timed_indices[j:j + b]],
                                      TYPO_RATIO if a == b == 1 else JOINED_RATIO):
                    continue
                cell = best[i + a][j + b]
                if cell is None or score + gain > cell[0]:
                    best[i + a][j + b] = (score + gain, (a, b, gain))
    pairs, i, j = [], n, m
    while i or j:
        a, b, gain = best[i][j][1]
        i, j = i - a, j - b
        kind = "substitution" if gain else ("insertion" if a else "deletion")
        pairs.append((tuple(transcript_indices[i:i + a]), tuple(timed_indices[j:j + b]), kind))
    return pairs[::-1]


def _assemble(transcript, timed, pairs):
    """The read words, each timed word's range of them, and the report, from the aligned ``pairs``."""
    read, ranges, kinds, taken = [], [None] * len(timed), [None] * len(timed), [()] * len(timed)
    next_transcript, inserted, stretches, current = 0, 0, [], None
    for transcript_indices, timed_indices, kind in pairs:
        if transcript_indices:
            read.extend(transcript[next_transcript:transcript_indices[-1] + 1])  # punctuation alone included
            next_transcript = transcript_indices[-1] + 1
            span = (len(read) - len(transcript_indices), len(read) - 1)
        elif timed_indices:
            read.extend(str(timed[w]) for w in timed_indices)
            span = (len(read) - 1, len(read) - 1)
        inserted += kind == "insertion"
        for w in timed_indices:
            ranges[w], kinds[w], taken[w] = span, kind, tuple(transcript_indices)
        if kind == "match":
            current = None
            continue
        if current is None:
            current = {"timed_start": timed_indices[0] if timed_indices else None, "transcript": [], "timed": []}
            stretches.append(current)
        current["transcript"].extend(transcript[i] for i in transcript_indices)
        current["timed"].extend(str(timed[w]) for w in timed_indices)
        if current["timed_start"] is None and timed_indices:
            current["timed_start"] = timed_indices[0]
    read.extend(transcript[next_transcript:])
    worst = sorted(stretches, key=lambda s: -(len(s["transcript"]) + len(s["timed"])))[:WORST_STRETCHES]
    worst = sorted(worst, key=lambda s: -1 if s["timed_start"] is None else s["timed_start"])
    return TranscriptAlignment(tuple(read), tuple(ranges), tuple(taken), tuple(kinds), inserted,
                               tuple({"timed_word": s["timed_start"], "transcript": " ".join(s["transcript"]),
                                      "timed": " ".join(s["timed"])} for s in worst))


def alignment_table(alignment, transcript, timed):
    """The alignment as a table: one row per timed word (``timed_index``, ``timed_word``, the ``transcript_word``
    it took, ``kind``), and one per transcript word no timed word took (``insertion``), in transcript order."""
    import pandas as pd

    rows, taken = [], {index for indices in alignment.transcript_indices for index in indices}
    for k, (word, indices, kind) in enumerate(zip(timed, alignment.transcript_indices, alignment.kinds)):
        rows.append({"timed_index": k, "timed_word": str(word), "transcript_index": indices[0] if indices else None,
                     "transcript_word": " ".join(transcript[i] for i in indices) or None, "kind": kind})
    for index in sorted(set(range(len(transcript))) - taken):
        if spellings(transcript[index])[0]:  # punctuation alone is no word
            rows.append({"timed_index": None, "timed_word": None, "transcript_index": index,
                         "transcript_word": transcript[index], "kind": "insertion"})
    table = pd.DataFrame(rows, columns=["timed_index", "timed_word", "transcript_index", "transcript_word", "kind"])
    order = table["transcript_index"].ffill().fillna(-1)
    return table.assign(_order=order).sort_values(["_order"], kind="stable").drop(columns="_order").astype(
        {"timed_index": "Int64", "transcript_index": "Int64"})


def transcript_candidates(run, directory):
    """The files ``--transcripts DIR`` may hold for a run, in order: ``<audio file stem>.txt``,
    ``task-<task>_run-<run>.txt``, ``task-<task>.txt``, ``<task>.txt``."""
    names = ([Path(run.audio).stem] if run.audio else []) + \
            ([f"task-{run.task}_run-{run.run}"] if run.run else []) + [f"task-{run.task}", run.task]
    return [Path(directory) / f"{name}.txt" for name in dict.fromkeys(names)]


def attach_transcript(run, directory=None, min_match=MIN_MATCH):
    """The run with its transcript aligned to its words (``transcript_alignment``, and ``Transcript`` in its
    ``word_source``), or as it is when it has none.

    Parameters
    ----------
    run : Run
    directory : Path or None
        ``--transcripts DIR``: its file for the run (:func:`transcript_candidates`) comes before the stimulus
        specification's; a run it has none for stops.
    min_match : float
        The fraction of the timed words that must take a transcript word; a run below it stops.
    """
    from dataclasses import replace

    from bids_encoding.features.alignment import word_separator

    path = run.transcript
    if directory is not None:
        candidates = transcript_candidates(run, directory)
        path = next((candidate for candidate in candidates if candidate.is_file()), None)
        if path is None:
            raise BadDataError(f"--transcripts {directory} has no transcript for {run.bold_path.name} (looked for "
                               f"{', '.join(c.name for c in candidates)}): add it, or leave --transcripts out")
    if path is None:
        return run
    if not Path(path).is_file():
        LOGGER.warning("%s: no transcript %s: the model reads the timed words", run.bold_path.name, path)
        return replace(run, transcript=None)
    words = [str(word) for word in run.words["word"]]
    if word_separator(words) == "":
        raise BadDataError(f"{path}: transcripts of text written without spaces (Chinese, Japanese) cannot be "
                           "aligned to their words yet: leave the transcript out")
    language = (run.word_source or {}).get("Language") or "en"
    alignment = align_transcript(read_transcript(path), words, language)
    if alignment.match_rate < min_match:
        raise BadDataError(f"{path}: only {alignment.match_rate:.1%} of the {len(words)} timed words of "
                           f"{run.bold_path.name} match the transcript (--transcript-min-match {min_match:g}): check "
                           "that it is this stimulus's text, or lower --transcript-min-match")
    LOGGER.info("%s: transcript %s, %.1f%% of %d timed words matched, %d transcript words read as context only",
                run.bold_path.name, Path(path).name, 100 * alignment.match_rate, len(words), alignment.n_inserted)
    return replace(run, transcript=Path(path), transcript_alignment=alignment,
                   word_source={**(run.word_source or {}), "Transcript": alignment.record(path, min_match)})
