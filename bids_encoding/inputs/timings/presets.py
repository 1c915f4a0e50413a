"""Built-in stimulus specifications of the reference datasets (``--stimuli NAME``); docs/datasets/ explains each."""

_LPP = '''
description = "Le Petit Prince (ds003643): the nine sections of the book, one per run"
label = "lpp"
cv_unit = "run"
min_run_fraction = 0.5   # raw runs with a few dozen volumes (aborted) are left out of the ranks
'''

_LPP_ENTRY = '''
[[stimulus]]
task = "lpp{lang}"
language = "{code}"
# times from the start of the section's audio; the preprocessed BOLD (derivatives/) starts with it
annotation = "annotation/{lang}/lpp{lang}_word_information.csv"
format = "lpp-csv"
origin = 0.0
options = {{ section = "{{rank}}" }}   # section = the run's rank, not its scanner run label
# the section's audio (acoustic features): task-lppEN_section-1.wav, but task-lppCN_section_1.wav (FR as CN)
audio = "stimuli/task-lpp{lang}_section{separator}{{rank}}.wav"
'''

LPP_LANGUAGES = {"EN": "en", "FR": "fr", "CN": "zh"}
LPP_AUDIO_SEPARATORS = {"EN": "-", "FR": "_", "CN": "_"}  # ds003643's stimuli/ names differ by language


def _lpp_entry(lang, code):
    return _LPP_ENTRY.format(lang=lang, code=code, separator=LPP_AUDIO_SEPARATORS[lang])


PRESETS = {
    "lpp": _LPP + "".join(_lpp_entry(lang, code) for lang, code in LPP_LANGUAGES.items()),
    **{f"lpp-{lang.lower()}": _LPP + _lpp_entry(lang, code) for lang, code in LPP_LANGUAGES.items()},
    "narratives": '''
description = "Narratives (ds002345): gentle alignments of each story; one run per task, tasks pooled"
label = "narratives"
cv_unit = "stimulus"

[[stimulus]]
task = "*"
language = "en"
annotation = "stimuli/gentle/{task}/align.csv"
format = "gentle-csv"
# align.csv counts from the start of the audio file, which starts with the first events row naming it
# (the music block where there is one), not with the story block
origin = "events:story"
options = { unaligned = "interpolate" }
# the audio (acoustic features): the events' stim_file (stimuli/<story>_audio.wav), no pattern needed
# the original text, which the language models read (aligned to align.csv's words)
transcript = "stimuli/gentle/{task}/transcript.txt"
''',
    "lebel": '''
description = "LeBel et al. 2023 (ds003020): one BIDS task per story, TextGrids in derivative/TextGrids"
label = "lebel"
cv_unit = "stimulus"

[[stimulus]]
task = "*"
language = "en"
annotation = "derivative/TextGrids/{task}.TextGrid"
format = "textgrid"
origin = 10.0   # the sound starts 10 s after the first volume
options = { tier = "word" }
audio = "stimuli/{task}.wav"   # the story's audio (acoustic features)
''',
}
