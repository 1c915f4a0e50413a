"""Preparation: each participant's mask and cleaned BOLD (or the average participant's), staged with their
outputs, and the noise ceiling where stimuli repeat."""

import logging
from dataclasses import dataclass, field, replace

import numpy as np

from bids_encoding.derivatives import ParticipantOutput, participant_hemispheres
from bids_encoding.derivatives.names import AVERAGE_LABEL
from bids_encoding.derivatives.sidecars import bids_uri, mask_record, source_path
from bids_encoding.errors import BadDataError, UsageError
from bids_encoding.group.rois import language_coverage
from bids_encoding.hemispheres import in_templateflow, is_template_space
from bids_encoding.inputs.bold import clean_run_bold
from bids_encoding.inputs.layout import with_notes
from bids_encoding.inputs.masks import ParticipantMask, participant_mask, seed_epi_mask
from bids_encoding.participant.selection import space_of
from bids_encoding.procedures import procedure
from bids_encoding.ridge.ceiling import cc_max
from bids_encoding.ridge.scoring import zscore

LOGGER = logging.getLogger(__name__)
MIN_ROI_COVERAGE = 0.9  # below this fraction of a language ROI kept by the mask, a warning


@dataclass
class Participant:
    """One participant's cleaned data and staged outputs for one task."""

    subject: str
    task: str
    runs: list
    responses: list
    output: ParticipantOutput
    hemispheres: tuple | None  # mirrored left and right voxels (template spaces only)
    mask: object = None  # ParticipantMask
    average_of: list | None = None  # the participants averaged, for the average participant
    ceiling: np.ndarray | None = None
    rows: list = field(default_factory=list)
    on_surface: bool = False  # the vertices of fMRIPrep's surface BOLD (participant/surface.py), not a brain mask's

    @property
    def n_voxels(self):
        return self.responses[0].shape[1]


def _coverage_record(subject, mask_img, space):
    """How much of each language ROI the mask keeps (template spaces only); a warning below 90%."""
    if not in_templateflow(space):
        return {}
    coverage = language_coverage(mask_img)
    low = {name: value for name, value in coverage.items() if value < MIN_ROI_COVERAGE}
    if low:
        LOGGER.warning("sub-%s: the brain mask covers less than %.0f%% of language ROI(s) %s: their voxels get no "
                       "score (give a mask with --mask)", subject, 100 * MIN_ROI_COVERAGE,
                       ", ".join(f"{name} {value:.0%}" for name, value in low.items()))
    return {"LanguageROICoverage": coverage}


def prepare_participant(subject, task, runs, config, sequence):
    """Mask and clean a participant's BOLD, compute the noise ceiling when stimuli repeat."""
    found = {}
    mask = _mask(subject, runs, config, config.cleaning, found)
    LOGGER.info("sub-%s: brain mask from %s (%d voxels)", subject, mask.source, int(np.asarray(mask.img.dataobj).sum()))
    runs = [with_notes(run, found.get(run.bold_path, [])) for run in runs]
    trim = (config.design.trim_start, config.design.trim_end)
    responses, cleaned_runs = [], []
    for run in runs:
        notes = []
        responses.append(clean_run_bold(run.bold_path, mask.img, run.repetition_time, trim, config.cleaning,
                                        notes=notes, confounds=run.confounds, resampled_dir=config.resampled_dir))
        cleaned_runs.append(with_notes(run, notes))
    return _participant(subject, task, cleaned_runs, responses, mask, config, sequence)


def _mask(subject, runs, config, cleaning, notes=None):
    """The participant's mask: from the app's sources, or the recipe of a ``--procedure``."""
    space = space_of(runs, config)
    recipe = procedure(config.procedure).mask
    if recipe is None:
        return participant_mask(runs, config.mask, space, config.epi_mask_cutoff, notes=notes)
    if cleaning.grid is not None and not is_template_space(space):
        raise UsageError(f"--procedure {config.procedure} resamples the BOLD to its MNI grid, but sub-{subject}'s "
                         f"BOLD ({runs[0].bold_path.name}) is in space '{space}': give BOLD in an MNI space "
                         "(--space), or use --procedure default")
    return seed_epi_mask(runs, cleaning, config.resampled_dir)


def isc_cache_record(runs, config):
    """What the cached cleaned BOLD is: the runs, the trimming, the cleaning, and whether confounds were
    regressed (the group reuses it only where its own reading would give the same data)."""
    return {"Description": "Cleaned BOLD of each run over the brain mask's voxels, for the group's inter-subject "
                           "correlation (--isc-cache)",
            "Bold": [source_path(run.bold_path, config.bids_dir) for run in runs],
            "TrimScans": [config.design.trim_start, config.design.trim_end],
            "Cleaning": config.cleaning.record(),
            "Confounds": any(run.confounds is not None for run in runs)}


def _timeline(output, runs, config):
    """The words against the scans of every run (the check to make when timings go wrong), for the report."""
    from bids_encoding.reports.figures import timeline_figure

    return timeline_figure([{"name": "_".join(part for part in run.bold_path.name.split("_")[1:]
                                              if part.split("-")[0] in ("ses", "task", "acq", "run", "echo")),
                             "n_scans": run.n_scans, "repetition_time": run.repetition_time,
                             "trim_start": config.design.trim_start, "trim_end": config.design.trim_end,
                             "onsets": run.words["onset"].to_numpy()} for run in runs],
                           output.figure(desc="timeline"))


def _participant(subject, task, runs, responses, mask, config, sequence):
    """Stage a participant's (or the average's) mask and compute the noise ceiling when stimuli repeat."""
    space = space_of(runs, config)
    hemispheres = participant_hemispheres(mask.img, space)
    output = ParticipantOutput(config.output_dir, subject, task, space, mask.img)
    bold = [bids_uri(run.bold_path, config.bids_dir) for run in runs]
    output.write_mask({"Description": "Brain mask of the fit", **mask_record("Brain", bold, space, bold[0]),
                       "MaskSource": mask.record(config.bids_dir), **_coverage_record(subject, mask.img, space)})
    _timeline(output, runs, config)
    participant = Participant(subject, task, runs, responses, output, hemispheres, mask)
    if config.isc_cache and subject != AVERAGE_LABEL:
        output.write_isc_cache(responses, runs, isc_cache_record(runs, config))
    else:
        output.drop_isc_cache()
    participant.ceiling = noise_ceiling(subject, responses, sequence)
    return participant


def noise_ceiling(subject, responses, sequence):
    """CC_max of each voxel where stimuli repeat (the runs of ``sequence.repeated_groups``), else ``None``."""
    if not sequence.repeated_groups:
        return None
    lengths = {responses[run].shape[0] for group in sequence.repeated_groups for run in group}
    if len(lengths) > 1:
        LOGGER.warning("sub-%s: repeated runs have different numbers of scans after censoring: no noise ceiling",
                       subject)
        return None
    return cc_max([np.stack([responses[run] for run in group]) for group in sequence.repeated_groups])


def average_participant(members, task, config, sequence):
    """The average participant of ``members`` (``[(subject, runs), ...]`` who heard the same stimuli): each
    run's cleaned BOLD averaged over participants on the intersection of their masks, then z-scored again
    (Bonnasse-Gahot & Pallier's main analysis). The participants must share one grid (a template space)."""
    from nilearn import image

    cleaning = config.average_cleaning
    if procedure(config.procedure).mask is not None:  # the seed's recipe: one mask of every member's runs
        masks = [_mask(AVERAGE_LABEL, [run for _, runs in members for run in runs], config, cleaning)]
    else:
        masks = [_mask(subject, runs, config, cleaning) for subject, runs in members]
    reference = masks[0].img
    for (subject, runs), mask in zip(members[1:], masks[1:]):
        if mask.img.shape != reference.shape or not np.allclose(mask.img.affine, reference.affine):
            raise BadDataError(f"--average-participants: sub-{subject}'s BOLD ({runs[0].bold_path.name}) is on "
                               f"another grid than sub-{members[0][0]}'s: average participants in one template "
                               "space (--space)")
    common = np.logical_and.reduce([np.asarray(mask.img.dataobj) > 0 for mask in masks])
    if not common.any():
        raise BadDataError("--average-participants: the participants' brain masks do not overlap")
    common_img = image.new_img_like(reference, common.astype(np.uint8), copy_header=False)
    kept_everywhere = [_scans_kept_by_all([runs[k] for _, runs in members]) for k in range(len(members[0][1]))]
    responses = _averaged_responses(members, common_img, kept_everywhere, config)
    labels = [f"sub-{subject}" for subject, _ in members]
    mask = ParticipantMask(common_img, "intersection", [path for m in masks for path in m.files],
                           {"Of": labels, "Sources": sorted({m.source for m in masks})})
    LOGGER.info("sub-%s: average of %d participants (%s), %d voxels", AVERAGE_LABEL, len(members),
                ", ".join(labels), int(common.sum()))
    runs = [replace(run, confounds=_with_sample_mask(run.confounds, kept))
            for run, kept in zip(members[0][1], kept_everywhere)]
    participant = _participant(AVERAGE_LABEL, task, runs, responses, mask, config, sequence)
    participant.average_of = labels
    return participant


def _averaged_responses(members, mask_img, kept_everywhere, config):
    """Each run's cleaned BOLD summed over the members on ``mask_img`` (the scans every member keeps), trimmed
    and z-scored (population std, as the seed)."""
    cleaning = config.average_cleaning
    trim = (config.design.trim_start, config.design.trim_end)
    # whole-run cleaning (Bonnasse-Gahot & Pallier): the mean of the whole cleaned runs is trimmed afterwards
    whole_runs = cleaning.order == "whole-run"
    # each member's whole runs as nilearn's NiftiMasker cleans them (compute_average_subject_fmri.py)
    member_cleaning = replace(cleaning, order="trim-first", ddof=1) if whole_runs else cleaning
    sums = None
    for _, runs in members:
        cleaned = [clean_run_bold(run.bold_path, mask_img, run.repetition_time, (0, 0) if whole_runs else trim,
                                  member_cleaning, confounds=_with_sample_mask(run.confounds, kept),
                                  resampled_dir=config.resampled_dir)
                   for run, kept in zip(runs, kept_everywhere)]
        sums = cleaned if sums is None else [total + run for total, run in zip(sums, cleaned)]
    if whole_runs:
        sums = [total[trim[0]:len(total) - trim[1]] for total in sums]
    return [zscore(total).astype(np.float32) for total in sums]


def _scans_kept_by_all(runs):
    """The scans of one run that no participant's censoring (--confounds scrub) removes, or None for all."""
    masks = [run.confounds.sample_mask for run in runs if run.confounds is not None]
    masks = [mask for mask in masks if mask is not None]
    if not masks:
        return None
    return np.array(sorted(set(masks[0].tolist()).intersection(*[set(m.tolist()) for m in masks[1:]])), dtype=int)


def _with_sample_mask(confounds, kept):
    return None if confounds is None else replace(confounds, sample_mask=kept)
