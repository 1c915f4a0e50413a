"""The ``words`` level: every run's word timings, as the stimulus specification finds them, written as
BIDS-native ``_events.tsv`` files in a derivative folder with a summary table, to inspect and correct.

``participant --stimuli <that folder>`` reads them back: the events file that
mirrors each BOLD file's path and name.
"""

import json
import logging

import pandas as pd

from bids_encoding.derivatives.sidecars import source_path
from bids_encoding.derivatives.staging import StagedOutput, write_dataset_description
from bids_encoding.errors import UsageError
from bids_encoding.inputs import load_layout
from bids_encoding.inputs.layout import BoldQuery, check_timings, select_runs, select_subjects
from bids_encoding.inputs.timings.spec import StimulusSpec
from bids_encoding.inputs.transcripts import alignment_table, attach_transcript, read_transcript

LOGGER = logging.getLogger(__name__)
SUMMARY = "words.tsv"


def events_name(run):
    """The events file that goes with a run's BOLD file (same folder and entities)."""
    return run.bold_path.name.split("_bold.nii")[0] + "_events.tsv"


def run_words_level(config):
    """Write the words of every selected run; return a one-line summary."""
    if not config.stimuli:
        raise UsageError("the words level converts annotations: give --stimuli PRESET|FILE")
    stimuli = StimulusSpec.load(config.stimuli)
    layout = load_layout(config.bids_dir, config.work_dir / "pybids", validate=config.validate)
    runs = [run for subject in select_subjects(layout, config.participant_labels)
            for task_runs in select_runs(layout, subject, config.task, stimuli,
                                         query=BoldQuery(config.space, filters=config.bold_filters)).values()
            for run in task_runs]
    check_timings(runs)
    runs = [attach_transcript(run, config.transcripts, config.transcript_min_match) for run in runs]
    write_dataset_description(config.output_dir, config.bids_dir)
    output = StagedOutput(config.output_dir, ".", {})
    rows = []
    for run in runs:
        relative = run.bold_path.parent.relative_to(config.bids_dir)
        words = run.words.assign(trial_type="word")[["onset", "duration", "trial_type", "word"]]
        words.to_csv(output.path(events_name(run), relative), sep="\t", index=False, float_format="%.3f")
        output.write_json(events_name(run).replace(".tsv", ".json"), {
            "trial_type": {"Description": "Kind of event", "Levels": {"word": "a spoken word"}},
            "word": {"Description": "The word as the annotation segments it"},
            "onset": {"Description": "Seconds from the first volume (annotation time + origin)", "Units": "s"},
            "Sources": [source_path(run.events_path, config.bids_dir)],
            "StimulusSpecification": stimuli.name, "Words": run.word_source}, relative)
        if run.transcript_alignment is not None:
            name = events_name(run).replace("_events.tsv", "_alignment.tsv")
            alignment_table(run.transcript_alignment, read_transcript(run.transcript), run.words["word"]).to_csv(
                output.path(name, relative), sep="\t", index=False, na_rep="n/a")
            output.write_json(name.replace(".tsv", ".json"), {
                "Description": "The transcript's words aligned to the timed words: one row per timed word "
                               "(kind match, substitution or deletion) and per transcript word no timed word took "
                               "(insertion)", **run.word_source["Transcript"],
                "WorstStretches": list(run.transcript_alignment.stretches)}, relative)
        rows.append({"run": run.bold_path.name, "words": len(run.words), "rank": run.word_source["Rank"],
                     "origin_s": run.origin, "first_word_s": round(float(run.words["onset"].min()), 3),
                     "last_word_end_s": round(float(run.words["offset"].max()), 3),
                     "scan_s": round(run.scan_duration, 3), "dropped": run.word_source["Dropped"],
                     "interpolated": run.word_source["Interpolated"], "annotation": run.word_source["Annotation"],
                     "left_out": ",".join(run.word_source["LeftOut"]) or "n/a",
                     "transcript_match": run.word_source.get("Transcript", {}).get("MatchRate", "n/a")})
    pd.DataFrame(rows).to_csv(output.path(SUMMARY), sep="\t", index=False, na_rep="n/a")
    output.path(SUMMARY.replace(".tsv", ".json")).write_text(json.dumps(
        {"Description": "One row per run: the words written, their time origin and what the reader dropped or "
                        "interpolated; left_out lists aborted runs the ranks skip; transcript_match: the fraction "
                        "of the words that took a transcript word (each run's _alignment.tsv)",
         "StimulusSpecification": stimuli.name, "CVUnit": stimuli.cv_unit, "Label": stimuli.label}, indent=2))
    output.commit()
    return f"words of {len(runs)} run(s) written to {config.output_dir} (summary: {SUMMARY})"
