"""The runs of every participant, selected and checked before any heavy work, and what they share: their stimuli
(each one feature computation) and, for participants who heard the same stimuli, one design."""

from dataclasses import replace

from bids_encoding.errors import BadDataError, UsageError
from bids_encoding.features import FeatureCache, parse_model_spec
from bids_encoding.features.engine import FeatureExtractor
from bids_encoding.inputs import load_layout, select_runs
from bids_encoding.inputs.derivatives import derivative_roots
from bids_encoding.inputs.layout import BoldQuery, check_timings, select_subjects
from bids_encoding.inputs.timings.spec import StimulusSpec
from bids_encoding.inputs.transcripts import attach_transcript
from bids_encoding.stimuli import StimulusSequence

MIN_SCANS_AFTER_TRIM = 20


def collect_runs(config):
    """Select and check every participant's runs (complete: words, timings and confounds read).

    Returns
    -------
    dict
        ``{(subject, task): [Run, ...]}``
    """
    layout = load_layout(config.bids_dir, config.work_dir / "pybids", validate=config.validate)
    stimuli = StimulusSpec.load(config.stimuli) if config.stimuli else None
    pool_label = (stimuli.label if stimuli and stimuli.label else "pooled") if config.cv_unit == "stimulus" else None
    roots = derivative_roots(config.bids_dir, config.derivatives)
    selected = {}
    for subject in select_subjects(layout, config.participant_labels):
        query = BoldQuery(config.space, config.resolution, config.bold_filters)
        for task, runs in select_runs(layout, subject, config.task, stimuli, pool_label, query, roots).items():
            selected[(subject, task)] = runs
    if stimuli is not None:
        check_timings([run for runs in selected.values() for run in runs])
    return {key: [_with_confounds(attach_transcript(run, config.transcripts, config.transcript_min_match), config)
                  for run in runs] for key, runs in selected.items()}


AUDIO_SLACK_SECONDS = 1.0  # an audio file may end this much before its last word's offset (rounded annotations)


def check_feature_inputs(specs, selected, extractor=None):
    """A feature space whose input a run lacks stops the run before any work: ``phonemes`` needs word timings
    with a phone tier; the acoustic spaces (``envelope``, ``mel``) and the speech models (``extractor.is_speech``)
    need each run's stimulus audio, found, readable and as long as its words."""
    from bids_encoding.features.baselines import NEEDS_PHONES

    runs = [run for runs in selected.values() for run in runs]
    for spec in (spec for spec in specs if spec.is_baseline and spec.location in NEEDS_PHONES):
        for run in (run for run in runs if "n_phones" not in run.words):
            source = (run.word_source or {}).get("Annotation") or run.events_path
            raise BadDataError(f"{source}: --models {spec.model_id} counts each word's phones, and these word "
                               "timings have no phone tier: give TextGrids with a phone tier (as LeBel et al.'s, "
                               f"--stimuli lebel), or leave {spec.model_id} out")
    for spec in (spec for spec in specs if spec.is_acoustic or (extractor is not None and extractor.is_speech(spec))):
        for run in runs:
            _check_audio(spec, run)


def _check_audio(spec, run):
    """The run's stimulus audio is named, exists and is a sound file libsndfile reads (its header only)."""
    if run.audio is None:
        source = (run.word_source or {}).get("Annotation") or run.events_path
        raise BadDataError(f"{source}: --models {spec.model_id} reads the stimulus audio of {run.bold_path.name}, "
                           "and none is named: add a stim_file column (a file under stimuli/) to its events.tsv or "
                           "an audio pattern to the stimulus specification's [[stimulus]] entry (docs/features.md), "
                           f"or leave {spec.model_id} out")
    if not run.audio.is_file():
        raise BadDataError(f"{run.audio} (the audio of {run.bold_path.name}, from its {run.audio_source}) does not "
                           f"exist: fetch it (datalad get), fix the {run.audio_source}, or leave {spec.model_id} out")
    from bids_encoding import dependencies

    if dependencies.installed("soundfile"):
        import soundfile

        try:
            info = soundfile.info(str(run.audio))
        except (RuntimeError, OSError) as error:
            raise BadDataError(f"cannot read the audio file {run.audio} (for --models {spec.model_id}): "
                               f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from error
        words = run.words
        last_word = float((words["onset"] + words["duration"]).max()) - run.audio_origin if len(words) else 0.0
        if info.duration + AUDIO_SLACK_SECONDS < last_word:
            raise BadDataError(f"{run.audio} lasts {info.duration:.1f} s and the words of {run.bold_path.name} go on "
                               f"to {last_word:.1f} s of it: is it the audio of another stimulus, or cut short? Fix "
                               f"the {run.audio_source}, or leave {spec.model_id} out")


def _with_confounds(run, config):
    """The run with its confounds (``--confounds``), once it is checked that enough scans are left."""
    trim = config.design.trim_start + config.design.trim_end
    if run.n_scans - trim < MIN_SCANS_AFTER_TRIM:
        raise BadDataError(f"{run.bold_path} has {run.n_scans} scans: after --trim-scans "
                           f"{config.design.trim_start} {config.design.trim_end} fewer than "
                           f"{MIN_SCANS_AFTER_TRIM} are left; trim fewer scans")
    run = replace(run, confounds=config.confounds.load(run.bold_path))
    if run.confounds is not None:
        censored = run.confounds.record(*kept_window(run, config))["CensoredScans"]
        if run.n_scans - trim - censored < MIN_SCANS_AFTER_TRIM:
            raise BadDataError(f"{run.bold_path}: {censored} of its scans are censored by --confounds scrub "
                               f"and fewer than {MIN_SCANS_AFTER_TRIM} are left; raise --fd-threshold or "
                               "leave this run out")
    return run


def kept_window(run, config):
    """The scans of a run left after trimming: ``(start, stop)``."""
    return config.design.trim_start, run.n_scans - config.design.trim_end


def space_of(runs, config):
    """The space of a participant's runs: their ``space-`` entity, else ``--space``, else ``orig``."""
    return runs[0].space or config.space or "orig"


def stimulus_sequences(selected, config):
    """``{(subject, task): StimulusSequence}`` of the selected runs."""
    return {key: StimulusSequence.of_runs(runs, config.features.continuous) for key, runs in selected.items()}


def distinct_stimuli(sequences):
    """``{cache_key: Stimulus}`` of the sequences' stimuli: each is one feature computation."""
    stimuli = {}
    for sequence in sequences:
        for stimulus in sequence.stimuli:
            stimuli.setdefault(stimulus.cache_key, stimulus)
    return stimuli


def feature_extractor(config):
    extractor = FeatureExtractor(FeatureCache(config.feature_cache_dir), config.features, device=config.device,
                                 dtype=config.dtype, trust_remote_code=config.trust_remote_code,
                                 progress=config.progress, ffn_neurons=config.ffn_neurons, placement=config.placement)
    extractor.speech_settings = config.speech
    return extractor


def model_specs(models, joint_models=(), joint=None):
    """The parsed ``--models``, then the ``--joint-model`` entries (``joint_models``, fitted with ``joint``, a
    :class:`~bids_encoding.features.joint.JointSettings`); two that would share a file label stop the run."""
    from bids_encoding.features.joint import joint_specs

    specs = list(dict.fromkeys(parse_model_spec(model) for model in models))  # one model named twice: once
    specs += joint_specs(joint_models, joint, parse_model_spec) if joint_models else []
    labels = [spec.label for spec in specs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise UsageError(f"models {', '.join(spec.model_id for spec in specs)} share the file label(s) "
                         f"{', '.join(duplicates)}: give each model once, rename a local directory, or give the "
                         "joint model another label (name=SPACE+SPACE)")
    return specs


def stimulus_signature(runs, sequence, config, censoring=True):
    """What must match for participants to share a design matrix: features (cache keys), scans, and what of
    the confounds the design gets (cosines and, with ``censoring``, the censored scans)."""
    return tuple((stimulus.cache_key, run.n_scans, run.repetition_time, run.origin, str(run.audio), run.audio_origin,
                  run.confounds.signature(*kept_window(run, config), censoring) if run.confounds is not None
                  else None)
                 for stimulus, run in zip(sequence.stimuli, runs))
