"""Word-timing readers on files written in the real formats, with their quirks."""

import json

import numpy as np
import pytest

from bids_encoding.errors import BadDataError
from bids_encoding.inputs.timings import READERS, read_timings

LONG_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 4.5
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "phone"
        xmin = 0
        xmax = 4.5
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 4.5
            text = "AH"
    item [2]:
        class = "IntervalTier"
        name = "word"
        xmin = 0
        xmax = 4.5
        intervals: size = 7
        intervals [1]:
            xmin = 0
            xmax = 0.5
            text = "sentence_start"
        intervals [2]:
            xmin = 0.5
            xmax = 1.1
            text = "so"
        intervals [3]:
            xmin = 1.1
            xmax = 1.4
            text = "{BR}"
        intervals [4]:
            xmin = 1.4
            xmax = 2.0
            text = "i"
        intervals [5]:
            xmin = 2.0
            xmax = 2.2
            text = "sp"
        intervals [6]:
            xmin = 2.2
            xmax = 3.0
            text = "went"
        intervals [7]:
            xmin = 3.0
            xmax = 4.5
            text = ""
'''

SHORT_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

0
3
<exists>
1
"IntervalTier"
"words"
0
3
4
0
1
"#"
1
1.5
"le"
1.5
2.25
"petit"
2.25
3
"prince"
'''


def test_textgrid_long_format_drops_the_huth_lab_non_words(tmp_path):
    path = tmp_path / "story.TextGrid"
    path.write_text(LONG_TEXTGRID)
    timings = read_timings(path, "textgrid")
    assert list(timings.words["word"]) == ["so", "i", "went"]
    np.testing.assert_allclose(timings.words["onset"], [0.5, 1.4, 2.2])
    np.testing.assert_allclose(timings.words["offset"], [1.1, 2.0, 3.0])
    assert timings.dropped == 4
    assert list(read_timings(path, "textgrid", non_words=()).words["word"])[:2] == ["sentence_start", "so"]


def test_textgrid_short_format_utf16_and_tier_by_index(tmp_path):
    path = tmp_path / "lppFR_section1.TextGrid"
    path.write_bytes(SHORT_TEXTGRID.encode("utf-16"))  # Praat writes UTF-16 when a label needs it
    timings = read_timings(path, "textgrid", tier=0)
    assert list(timings.words["word"]) == ["le", "petit", "prince"]
    np.testing.assert_allclose(timings.words["duration"], [0.5, 0.75, 0.75])


def test_textgrid_unknown_tier_names_the_tiers(tmp_path):
    path = tmp_path / "story.TextGrid"
    path.write_text(LONG_TEXTGRID)
    with pytest.raises(BadDataError, match="phone, word"):
        read_timings(path, "textgrid", tier="words")
    with pytest.raises(BadDataError, match="tier 5 does not exist"):
        read_timings(path, "textgrid", tier=5)


def test_lpp_word_information_with_bom_blank_rows_and_sections(tmp_path):
    path = tmp_path / "lppEN_word_information.csv"
    rows = ["word,onset,offset,section,lemma", "Once,0.5,0.8,1,once", "when,0.8,1.0,1,when", " ,1.0,1.1,1,",
            ",1.1,1.2,1,", "I,1.2,1.3,1,I", "Then,0.2,0.6,2,then", "we,0.6,0.9,2,we"]
    path.write_bytes("\ufeff".encode() + "\n".join(rows).encode())
    first = read_timings(path, "lpp-csv", section=1)
    assert list(first.words["word"]) == ["Once", "when", "I"] and first.dropped == 2
    assert list(read_timings(path, "lpp-csv", section=2).words["word"]) == ["Then", "we"]
    with pytest.raises(BadDataError, match="no words of section 9 .sections: 1, 2"):
        read_timings(path, "lpp-csv", section=9)


def test_gentle_csv_interpolates_unaligned_words_and_keeps_unk(tmp_path):
    path = tmp_path / "align.csv"
    path.write_text("I,i,21.0,21.2\nbegan,began,21.2,21.6\nthe,,,\nstory,,,\nslowly,<unk>,22.4,22.9\n"
                    "then,,,\n")
    timings = read_timings(path, "gentle-csv")
    assert list(timings.words["word"]) == ["I", "began", "the", "story", "slowly"]
    np.testing.assert_allclose(timings.words["onset"], [21.0, 21.2, 21.6, 22.0, 22.4])
    np.testing.assert_allclose(timings.words["offset"], [21.2, 21.6, 22.0, 22.4, 22.9])
    assert timings.interpolated == 2 and timings.dropped == 1  # "then": no aligned word after it
    assert any("<unk>" in note for note in timings.notes)
    dropped = read_timings(path, "gentle-csv", unaligned="drop")
    assert list(dropped.words["word"]) == ["I", "began", "slowly"] and dropped.dropped == 3


def test_gentle_json_matches_the_csv(tmp_path):
    words = [{"word": "I", "alignedWord": "i", "case": "success", "start": 21.0, "end": 21.2},
             {"word": "began", "case": "not-found-in-audio"},
             {"word": "slowly", "alignedWord": "<unk>", "case": "success", "start": 22.4, "end": 22.9}]
    path = tmp_path / "align.json"
    path.write_text(json.dumps({"transcript": "I began slowly", "words": words}))
    timings = read_timings(path, "gentle-json")
    assert list(timings.words["word"]) == ["I", "began", "slowly"]
    np.testing.assert_allclose(timings.words["onset"], [21.0, 21.2, 22.4])
    assert timings.interpolated == 1


def test_plain_table_with_duration_or_offset(tmp_path):
    tsv = tmp_path / "words.tsv"
    tsv.write_text("onset\tduration\tword\n1.0\t0.5\thello\n2.0\t0.25\tworld\n2.5\t0.1\t\n")
    timings = read_timings(tsv, "table")
    np.testing.assert_allclose(timings.words["offset"], [1.5, 2.25])
    assert timings.dropped == 1
    csv = tmp_path / "words.csv"
    csv.write_text("word,onset,offset\nhello,1.0,1.5\nworld,x,2.25\n")
    with pytest.raises(BadDataError, match=r"words.csv: word 2 \('world'\) has no onset"):
        read_timings(csv, "table")


def test_bids_events_word_rows(tmp_path):
    path = tmp_path / "sub-01_task-story_events.tsv"
    path.write_text("onset\tduration\ttrial_type\tword\n0.0\t13.0\tmusic\tn/a\n15.0\t0.3\tword\tOnce\n"
                    "15.3\t0.2\tword\tupon\n")
    timings = read_timings(path, "events")
    assert list(timings.words["word"]) == ["Once", "upon"]
    np.testing.assert_allclose(timings.words["offset"], [15.3, 15.5])


def test_unknown_format_lists_the_registered_ones(tmp_path):
    with pytest.raises(ValueError, match=", ".join(READERS)):
        read_timings(tmp_path / "x", "srt")


def test_lpp_chinese_preset_reads_the_words_as_segmented(tmp_path):
    """Le Petit Prince in Chinese: words without spaces, as the annotation segments them, section = rank."""
    from bids_encoding.inputs.timings.spec import StimulusSpec, run_timings

    csv = tmp_path / "annotation" / "CN" / "lppCN_word_information.csv"
    csv.parent.mkdir(parents=True)
    csv.write_bytes("\ufeffword,onset,offset,section\n我,0.1,0.3,1\n小时候,0.3,0.8,1\n,0.8,0.9,1\n看,0.1,0.2,2\n"
                    .encode())
    spec = StimulusSpec.load("lpp-cn")
    entities = {"subject": "CN001", "task": "lppCN", "session": None, "run": "04", "rank": 1}
    timings = run_timings(spec.entry_for(entities), tmp_path, entities)
    assert list(timings.words["word"]) == ["我", "小时候"] and timings.origin == 0.0
    assert spec.entry_for({**entities, "task": "lppEN"}) is None
