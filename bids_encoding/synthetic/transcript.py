"""The synthetic stories' transcripts: the text as written (cased, punctuated) beside timings that spell the words
as alignment tools do (lower case, no punctuation), and transcripts with known errors (the aligner's tests and
benchmark)."""

import re


def timed_spelling(word):
    """A word as the timings spell it: lower case, punctuation removed (apostrophes kept)."""
    return re.sub(r"[^\w']", "", word).lower() or word


def transcript_text(words, words_per_line=12):
    """The story's text: its words, a line break every ``words_per_line`` and a blank line after a paragraph's
    last sentence (every fifth)."""
    lines, line, sentences = [], [], 0
    for word in words:
        line.append(word)
        ends = word.endswith((".", "!", "?"))
        sentences += ends
        if len(line) >= words_per_line or (ends and sentences % 5 == 0):
            lines.append(" ".join(line) + ("\n" if ends and sentences % 5 == 0 else ""))
            line = []
    return "\n".join(lines + ([" ".join(line)] if line else [])) + "\n"


def write_transcripts(root, layout, stories, runs):
    """Each run's story text where ``layout`` keeps it (``layout.transcript_file``, relative to ``root``)."""
    for number, run in enumerate(runs, start=1):
        if run.aborted:
            continue
        path = root / layout.transcript_file(number, run)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(transcript_text(list(stories[run.story]["word"])), encoding="utf-8")


def perturb_transcript(words, rate, rng):
    """The transcript of ``words`` with a fraction ``rate`` of them changed, in equal shares: a typo (two inner
    letters swapped), split in two, merged with the next word, or dropped.

    Returns
    -------
    transcript : list of str
    origin : list of tuple of int
        For each of ``words``, the transcript words made from it (none when dropped; a merged pair both point to
        their one transcript word).
    """
    transcript, origin, k = [], [()] * len(words), 0
    while k < len(words):
        word = words[k]
        change = rng.integers(4) if rng.random() < rate and len(word) >= 4 else None
        if change == 0:
            middle = len(word) // 2
            transcript.append(word[:middle - 1] + word[middle] + word[middle - 1] + word[middle + 1:])
        elif change == 1:
            transcript.extend([word[:len(word) // 2], word[len(word) // 2:]])
        elif change == 2 and k + 1 < len(words):
            transcript.append(word + words[k + 1])
            origin[k] = origin[k + 1] = (len(transcript) - 1,)
            k += 2
            continue
        elif change == 3:
            k += 1
            continue
        else:
            transcript.append(word)
        origin[k] = tuple(range(len(transcript) - (2 if change == 1 else 1), len(transcript)))
        k += 1
    return transcript, origin
