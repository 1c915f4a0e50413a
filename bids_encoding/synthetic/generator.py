"""Write a synthetic BIDS dataset whose BOLD is driven by a known model's features.

The story is read at about 2.5 words per second with pauses at punctuation.
BOLD lives on a coarse MNI-like grid (8 mm, x < 0 is left). A left temporal
sphere is driven strongly, and its mirror on the right weakly, by the top
principal components of one layer of a known model, convolved with the HRF
exactly as the pipeline does. Every other voxel is AR(1) noise plus drift.
The ground truth (labels map and JSON) goes next to the dataset.
"""

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bids_encoding.design import frame_times, word_response_matrix
from bids_encoding.features import FeatureSettings, extract_word_features, load_model, parse_model_spec
from bids_encoding.ridge.scoring import zscore
from bids_encoding.synthetic.fmriprep import (
    confounds_table,
    motion_parameters,
    write_run_derivatives,
    write_surface_bold,
)
from bids_encoding.synthetic.layouts import LAYOUTS
from bids_encoding.synthetic.sound import name_sounds, write_sounds
from bids_encoding.synthetic.story import paragraphs
from bids_encoding.synthetic.transcript import timed_spelling, write_transcripts

TASK = "story"
VOXEL_SIZE = 8.0
GRID_SHAPE = (19, 23, 19)
GRID_ORIGIN = (-72.0, -104.0, -56.0)  # world coordinates of voxel (0, 0, 0); voxel i = 9 is x = 0
BRAIN_CENTER, BRAIN_RADII = (0.0, -18.0, 14.0), (68.0, 86.0, 64.0)
LEFT_CLUSTER, CLUSTER_RADIUS = (-56.0, -24.0, 0.0), 14.0
AUDITORY_CENTER = (-44.0, -20.0, 16.0)  # the word-rate response (lowlevel_amplitude): both sides, partly in the LM's
LABELS = {"null": 0, "left": 1, "right": 2}
DROPOUT_CENTER, DROPOUT_RADIUS, DROPOUT_FACTOR = (-68.0, -24.0, -16.0), 26.0, 0.3  # head_tissue's signal loss
ABORTED_SCANS = 24  # an aborted run: a few dozen volumes, no story
# Functional networks of the neuron-groups option: bilateral spheres (left centre, mirrored), named as Yeo's
NETWORKS = {"Vis": (-16.0, -90.0, 4.0), "SomMot": (-40.0, -20.0, 52.0), "DorsAttn": (-28.0, -56.0, 48.0),
            "Default": (-8.0, 48.0, 12.0), "Cont": (-40.0, 28.0, 36.0), "Limbic": (-24.0, 8.0, -24.0)}
NETWORK_RADIUS = 16.0


@dataclass
class GroundTruth:
    """What was planted, written to ``ground_truth/ground_truth.json``."""

    model: str
    layer: int
    n_components: int
    amplitude_left: float
    amplitude_right: float
    noise_ar1: float
    left_center_mm: tuple
    right_center_mm: tuple
    cluster_radius_mm: float
    repetition_time: float
    n_participants: int
    n_runs: int
    repeats: int
    seed: int
    labels: dict
    labels_file: str
    layout: str = "bids"
    networks_file: str | None = None  # the generated network atlas (NIfTI; its TSV names the networks)
    neurons_file: str | None = None  # each planted neuron's group and network (TSV)
    network_amplitude: float = 0.0
    lowlevel_amplitude: float = 0.0  # the word rate's response in bilateral auditory spheres
    lowlevel_centers_mm: tuple | None = None
    lowlevel_file: str | None = None  # their mask (the LM's spheres are in labels_file)
    speech_model: str | None = None  # a speech model whose response to the sound drives the auditory spheres
    speech_layer: int | None = None
    speech_amplitude: float = 0.0
    speech_file: str | None = None  # their mask


def story_runs(n_runs, seed=0, words_per_second=2.5):
    """Word timings of the story split into runs of whole paragraphs.

    Returns
    -------
    list of pandas.DataFrame
        ``onset``, ``duration``, ``trial_type``, ``word`` per run; onsets from
        the run's first volume (4 s of silence first).
    """
    rng = np.random.default_rng(seed)
    parts = np.array_split(np.arange(len(paragraphs())), n_runs)
    runs = []
    for part in parts:
        words = [word for index in part for word in paragraphs()[index]]
        lengths = np.array([len(word.strip(".,;:!?'\"")) for word in words], dtype=float)
        duration = 0.12 + 0.045 * lengths * rng.uniform(0.85, 1.15, len(words))
        pause = np.array([0.6 if w[-1] in ".!?" else 0.25 if w[-1] in ",;:" else 0.0 for w in words])
        gap = rng.uniform(0.02, 0.08, len(words))
        step = duration + gap + pause
        step *= (len(words) / words_per_second) / step.sum()  # overall rate ~ words_per_second
        duration = np.minimum(duration, step - 0.01)
        onset = 4.0 + np.concatenate([[0.0], np.cumsum(step)[:-1]])
        runs.append(pd.DataFrame({"onset": onset.round(3), "duration": duration.round(3),
                                  "trial_type": "word", "word": words}))
    return runs


def _grid():
    affine = np.diag([VOXEL_SIZE] * 3 + [1.0])
    affine[:3, 3] = GRID_ORIGIN
    ijk = np.indices(GRID_SHAPE).reshape(3, -1).T
    xyz = nib.affines.apply_affine(affine, ijk).reshape(*GRID_SHAPE, 3)
    return affine, xyz


def _ellipsoid(xyz, radii):
    return (((xyz - BRAIN_CENTER) / np.asarray(radii)) ** 2).sum(-1) <= 1.0


def _sphere(xyz, center, radius):
    return np.linalg.norm(xyz - np.asarray(center), axis=-1) <= radius


def _ar1_noise(rng, n_scans, n_voxels, phi):
    innovations = rng.standard_normal((n_scans, n_voxels)) * math.sqrt(1 - phi ** 2)
    noise = np.empty_like(innovations)
    noise[0] = rng.standard_normal(n_voxels)
    for t in range(1, n_scans):
        noise[t] = phi * noise[t - 1] + innovations[t]
    return noise


def _story_features(loaded, runs, layer, settings):
    settings = replace(settings, layers=(str(layer),))
    return [extract_word_features(loaded, list(words["word"]), settings, progress=False).hidden[layer]
            for words in runs]


def _planted_components(features, runs, shifts, repetition_time, n_scans, n_components, basis=None):
    """Top principal components of one layer's features convolved with the HRF (words at ``onset + shift``
    on the scan's clock), z-scored per run; the components' basis is computed here unless given."""
    designs = [zscore(word_response_matrix(words["onset"] + shift, words["duration"],
                                           frame_times(scans, repetition_time)) @ values)
               for values, words, shift, scans in zip(features, runs, shifts, n_scans)]
    if basis is None:
        stacked = np.concatenate(designs)
        _, _, vt = np.linalg.svd(stacked - stacked.mean(0), full_matrices=False)
        basis = vt[:n_components].T
    components = [design @ basis for design in designs]
    return [(c - c.mean(0)) / c.std(0) for c in components], basis


def _neuron_group_features(loaded, stories, layer, groups, settings):
    """Per story, the mean feed-forward activation of each neuron group of ``layer``: ``(n_words, n_groups)``."""
    settings = replace(settings, layers=(str(layer),))
    means = []
    for words in stories:
        activations = extract_word_features(loaded, list(words["word"]), settings, progress=False,
                                            neurons=True).neurons[layer]
        means.append(np.stack([activations[:, groups == g].mean(axis=1) for g in range(groups.max() + 1)], axis=1))
    return means


def _planted_groups(values, words, shift, repetition_time, n_scans):
    """The neuron groups' activations convolved with the HRF at the scans of one run, z-scored."""
    return zscore(word_response_matrix(words["onset"] + shift, words["duration"],
                                       frame_times(n_scans, repetition_time)) @ values)


def _residual(values, regressor):
    """``values`` without what a least-squares fit on ``regressor`` and a constant explains."""
    basis = np.hstack([np.ones((len(regressor), 1)), regressor])
    return values - basis @ np.linalg.lstsq(basis, values, rcond=None)[0]


def _write_network_atlas(truth_dir, affine, xyz, allowed, n_networks):
    """The generated atlas: network ``k`` (label k + 1) is a pair of spheres, ``NETWORKS``'s k-th centre and its
    mirror, inside ``allowed``. Writes ``networks_dseg.nii.gz`` and ``networks_dseg.tsv``; returns the masks."""
    labels = np.zeros(xyz.shape[:3], dtype=np.int16)
    masks = []
    for index, center in enumerate(list(NETWORKS.values())[:n_networks]):
        mirror = (-center[0], *center[1:])
        mask = (_sphere(xyz, center, NETWORK_RADIUS) | _sphere(xyz, mirror, NETWORK_RADIUS)) & allowed
        labels[mask] = index + 1
        masks.append(mask)
    nib.Nifti1Image(labels, affine).to_filename(truth_dir / "networks_dseg.nii.gz")
    pd.DataFrame({"index": np.arange(1, n_networks + 1), "name": list(NETWORKS)[:n_networks]}).to_csv(
        truth_dir / "networks_dseg.tsv", sep="\t", index=False)
    return masks


def _write_json(path, data):
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


@dataclass(frozen=True)
class SyntheticStudy:
    """The options of a synthetic dataset (:func:`generate_dataset`).

    Parameters
    ----------
    layer : int or None
        Layer index (0 = embeddings); ``None`` = the middle layer.
    amplitude_left, amplitude_right : float
        Signal standard deviation relative to the noise's (1).
    repeats : int
        Extra runs that replay the first run's stimulus (for noise ceilings).
    layout : str
        ``bids`` (word rows in events.tsv), the layout of a reference
        dataset: ``lebel``, ``lpp``, ``narratives``, or ``fmriprep`` (the demo
        preprocessed by a current fMRIPrep) (:mod:`bids_encoding.synthetic.layouts`).
    motion_artifact : float
        Standard deviation, relative to the noise's, of a head-motion artifact
        (a linear mix of the six motion traces of the run's confounds file and
        their scan-to-scan differences);
        layouts with fMRIPrep derivatives only.
    head_tissue : bool
        Bright scalp around the brain (a dark skull between) and a signal
        dropout at the left lateral-inferior temporal edge, where the left
        cluster is: the case where an EPI-computed mask loses voxels. The
        BOLD is then written as int16, as scanners do.
    neuron_groups : array of int or None
        Groups of the feed-forward neurons of ``neuron_layer`` of ``model`` (e.g. from
        :func:`build_neuron_model`): the mean activation of group ``g``, convolved with the HRF, drives
        the ``g``-th network of a generated atlas (bilateral spheres; ``ground_truth/networks_dseg.nii.gz``
        and its TSV), with ``network_amplitude`` (0: a null dataset with the same atlas).
    audio : bool
        Write each story's sound (16 kHz: a voiced burst per word, of a loudness drawn per word, silence
        between) where the layout's dataset keeps it: ``stimuli/story_run-<k>.wav`` named in the events (a
        ``story`` row with its ``stim_file``) for the demo's layouts, ``stimuli/<story>.wav`` for LeBel,
        ``stimuli/<story>_audio.wav`` after 15 s of music for Narratives, ``stimuli/task-lppEN_section-<n>.wav``
        for Le Petit Prince (:mod:`bids_encoding.synthetic.layouts`). The acoustic and speech feature spaces
        read it.
    speech_model : str or None
        A speech model (folder or hub id; needs ``audio``): the top ``n_components`` principal components of its
        layer ``speech_layer`` (``None``: the last) of each story's sound, computed as the app computes them with
        ``speech_settings`` and convolved with the HRF, drive the bilateral auditory spheres with
        ``speech_amplitude`` (``ground_truth/planted_speech.nii.gz``).
    surfaces : bool
        With a layout of fMRIPrep derivatives: each run's BOLD projected onto fsaverage5 (noise where no brain
        voxel lies) and written beside it as fMRIPrep's surface BOLD of the layout's generation
        (:func:`~bids_encoding.synthetic.fmriprep.write_surface_bold`).
    lowlevel_amplitude : float
        The word rate (a 1 per word, convolved with the HRF as the pipeline does) drives bilateral auditory
        spheres with this amplitude (``ground_truth/planted_lowlevel.nii.gz``); they overlap the language model's
        left sphere in part. The language model's drive is then made orthogonal to the word rate in every run, so
        that each sphere's variance belongs to one feature space (the joint models' split, ``--joint-model``).
    """

    n_participants: int = 3
    n_runs: int = 4
    repetition_time: float = 2.0
    seed: int = 0
    layer: int | None = None
    n_components: int = 4
    amplitude_left: float = 1.2
    amplitude_right: float = 0.35
    noise_ar1: float = 0.4
    feature_settings: FeatureSettings = FeatureSettings()
    repeats: int = 0
    layout: object = "bids"
    motion_artifact: float = 0.0
    head_tissue: bool = False
    neuron_groups: object = None
    neuron_layer: int = 1
    network_amplitude: float = 1.0
    lowlevel_amplitude: float = 0.0
    audio: bool = False
    speech_model: str | None = None
    speech_layer: int | None = None
    speech_amplitude: float = 1.0
    speech_settings: object = None  # a SpeechSettings; None: the app's default
    transcript: bool = False
    surfaces: bool = False


def generate_dataset(root, model, study=None, **options):
    """Write the synthetic dataset under ``root/bids`` and its ground truth under ``root/ground_truth``.

    Parameters
    ----------
    root : Path
    model : str
        Model whose features drive the planted voxels (hub id, directory, .gguf).
    study : SyntheticStudy or None
        The dataset's options (``None``: the defaults); ``options`` (its field names) change some of them.

    Returns
    -------
    GroundTruth
    """
    study = replace(study or SyntheticStudy(), **options)
    (n_participants, n_runs, repetition_time, seed, layer, n_components, amplitude_left, amplitude_right, noise_ar1,
     feature_settings, repeats, layout, motion_artifact, head_tissue, neuron_groups, neuron_layer,
     network_amplitude, lowlevel_amplitude, audio, speech_model, speech_layer, speech_amplitude,
     speech_settings, transcript, surfaces) = (getattr(study, item.name) for item in fields(study))
    root = Path(root)
    bids_dir, truth_dir = root / "bids", root / "ground_truth"
    if bids_dir.exists() and any(bids_dir.iterdir()):
        raise FileExistsError(f"{bids_dir} exists and is not empty")
    bids_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    surface_rng = np.random.default_rng(seed + 5000)  # the surface BOLD's own draws: the volumes stay the same
    layout = LAYOUTS[layout] if isinstance(layout, str) else layout
    stories = story_runs(n_runs, seed=seed)
    subjects = layout.subjects(n_participants)
    runs_by_subject = {subject: layout.runs(i, subject, n_runs, repeats) for i, subject in enumerate(subjects)}

    def scan_shift(run):
        return layout.audio_lead + run.origin

    def run_scans(run):
        words = stories[run.story]
        if run.aborted:
            return ABORTED_SCANS
        return int(math.ceil((words["onset"].iloc[-1] + words["duration"].iloc[-1] + scan_shift(run) + 10.0)
                             / repetition_time))

    loaded = load_model(parse_model_spec(model))
    layer = loaded.n_layers // 2 + 1 if layer is None else layer
    features = _story_features(loaded, stories, layer, feature_settings)
    first = [run for run in runs_by_subject[subjects[0]] if not run.aborted][:n_runs]
    _, basis = _planted_components([features[r.story] for r in first], [stories[r.story] for r in first],
                                   [scan_shift(r) for r in first], repetition_time, [run_scans(r) for r in first],
                                   n_components)

    group_drive = None
    if neuron_groups is not None:
        neuron_groups = np.asarray(neuron_groups)
        if neuron_groups.max() >= len(NETWORKS):
            raise ValueError(f"at most {len(NETWORKS)} neuron groups (one per generated network)")
        group_drive = _neuron_group_features(loaded, stories, neuron_layer, neuron_groups, feature_settings)

    affine, xyz = _grid()
    brain = _ellipsoid(xyz, BRAIN_RADII)
    left = _sphere(xyz, LEFT_CLUSTER, CLUSTER_RADIUS) & brain
    right_center = (-LEFT_CLUSTER[0], *LEFT_CLUSTER[1:])
    right = _sphere(xyz, right_center, CLUSTER_RADIUS) & brain
    labels = np.zeros(GRID_SHAPE, dtype=np.uint8)
    labels[left], labels[right] = LABELS["left"], LABELS["right"]
    nib.Nifti1Image(labels, affine).to_filename(truth_dir / "planted_labels.nii.gz")
    auditory_centers = (AUDITORY_CENTER, (-AUDITORY_CENTER[0], *AUDITORY_CENTER[1:]))
    auditory = (_sphere(xyz, auditory_centers[0], CLUSTER_RADIUS) | _sphere(xyz, auditory_centers[1], CLUSTER_RADIUS)) \
        & brain
    if lowlevel_amplitude:
        nib.Nifti1Image(auditory.astype(np.uint8), affine).to_filename(truth_dir / "planted_lowlevel.nii.gz")
    sound_runs = runs_by_subject[subjects[0]]
    sounds = write_sounds(bids_dir, layout, stories, sound_runs, np.random.default_rng(seed + 3000)) if audio else {}
    speech = None
    if speech_model is not None:
        if not audio:
            raise ValueError("speech_model plants a speech model's response to the sound: it needs audio=True")
        from bids_encoding.features.speech import SpeechSettings
        from bids_encoding.synthetic.sound import SpeechTruth

        speech = SpeechTruth(speech_model, {run.story: sounds[k] for k, run in enumerate(sound_runs, start=1)
                                            if k in sounds},
                             speech_settings or SpeechSettings(), speech_layer, n_components)
        weights_speech = np.random.default_rng(seed + 4000).standard_normal((n_components, int(auditory.sum())))
        nib.Nifti1Image(auditory.astype(np.uint8), affine).to_filename(truth_dir / "planted_speech.nii.gz")
    networks = None
    if group_drive is not None:
        networks = _write_network_atlas(truth_dir, affine, xyz, brain & ~(left | right), neuron_groups.max() + 1)
        pd.DataFrame({"layer": neuron_layer, "neuron": np.arange(len(neuron_groups)), "group": neuron_groups,
                      "network": [list(NETWORKS)[g] for g in neuron_groups]}).to_csv(
            truth_dir / "neuron_networks.tsv", sep="\t", index=False)

    _write_json(bids_dir / "dataset_description.json", {
        "Name": "bids_encoding synthetic story listening", "BIDSVersion": "1.10.0", "DatasetType": "raw",
        "License": "CC0", "Authors": ["bids_encoding"],
        "GeneratedBy": [{"Name": "bids_encoding demo generator"}]})
    (bids_dir / "README").write_text(
        "Synthetic dataset written by `bids_encoding demo`: participants listen to a story in "
        f"{n_runs} runs; BOLD in a left temporal sphere (and, weakly, its mirror) follows the features of "
        f"{model}" + ("; bilateral auditory spheres follow the word rate" if lowlevel_amplitude else "")
        + ". Ground truth: ../ground_truth/.\n")
    pd.DataFrame({"participant_id": [f"sub-{subject}" for subject in subjects],
                  "age": rng.integers(20, 40, n_participants), "sex": rng.choice(["F", "M"], n_participants)}
                 ).to_csv(bids_dir / "participants.tsv", sep="\t", index=False)
    weights_left = rng.standard_normal((n_components, int(left.sum())))
    weights_right = rng.standard_normal((n_components, int(right.sum())))
    baseline = 600.0 + 200.0 * np.exp(-(((xyz - BRAIN_CENTER) / BRAIN_RADII) ** 2).sum(-1))
    outside = np.full(GRID_SHAPE, 5.0)
    if head_tissue:
        baseline = np.where(_sphere(xyz, DROPOUT_CENTER, DROPOUT_RADIUS), DROPOUT_FACTOR * baseline, baseline)
        outside[_ellipsoid(xyz, np.add(BRAIN_RADII, 20.0)) & ~_ellipsoid(xyz, np.add(BRAIN_RADII, 9.0))] = 750.0
    network_rng = np.random.default_rng(seed + 2000)  # the other options' draws stay as they were
    network_gains = [network_rng.uniform(0.6, 1.4, int(network.sum())) for network in networks or []]
    motion_rng = np.random.default_rng(seed + 1000)  # the other layouts' draws stay as they were
    motion_loadings = motion_rng.standard_normal((12, int(brain.sum()))) / np.sqrt(12)
    for subject in subjects:
        runs = runs_by_subject[subject]
        kept = [run for run in runs if not run.aborted]
        planted, _ = _planted_components([features[r.story] for r in kept], [stories[r.story] for r in kept],
                                         [scan_shift(r) for r in kept], repetition_time,
                                         [run_scans(r) for r in kept], n_components, basis)
        planted = iter(planted)
        for run in runs:
            scans = run_scans(run)
            signal = np.zeros((scans, *GRID_SHAPE), dtype=np.float64)
            noise = _ar1_noise(rng, scans, int(brain.sum()), noise_ar1)
            t = np.arange(scans)[:, None] / scans
            drift = (rng.normal(0, 0.5, (1, noise.shape[1])) * t
                     + rng.normal(0, 0.3, (1, noise.shape[1])) * np.cos(np.pi * t))
            signal[:, brain] = noise + drift
            if layout.fmriprep:
                motion = motion_parameters(motion_rng, scans)
                if motion_artifact:
                    jerks = np.vstack([motion[:1] * 0, np.diff(motion, axis=0)])  # Friston's 12: moves and position
                    signal[:, brain] += motion_artifact * zscore(np.hstack([motion, jerks])) @ motion_loadings
            if not run.aborted and networks is not None:
                drive = _planted_groups(group_drive[run.story], stories[run.story], scan_shift(run),
                                        repetition_time, scans)
                for group, network in enumerate(networks):
                    signal[:, network] += network_amplitude * drive[:, [group]] * network_gains[group]
            if not run.aborted:
                drive_components = next(planted)
                if lowlevel_amplitude:
                    rate = _planted_groups(np.ones((len(stories[run.story]), 1)), stories[run.story], scan_shift(run),
                                           repetition_time, scans)
                    drive_components = zscore(_residual(drive_components, rate))
                    signal[:, auditory] += lowlevel_amplitude * rate
                if speech is not None:
                    drive = speech.components(run.story, run.origin, repetition_time, scans) @ weights_speech
                    signal[:, auditory] += speech_amplitude * drive / drive.std(0)
                for mask, weights, amplitude in ((left, weights_left, amplitude_left),
                                                 (right, weights_right, amplitude_right)):
                    drive = drive_components @ weights
                    signal[:, mask] += amplitude * drive / drive.std(0)
            data = np.where(brain, baseline, outside)[None] * (1.0 + 0.01 * signal)
            data[:, ~brain] += rng.normal(0, 2.0, (scans, int((~brain).sum())))
            dtype = np.int16 if head_tissue else np.float32
            image = nib.Nifti1Image(np.moveaxis(data, 0, -1).round().astype(dtype) if head_tissue else
                                    np.moveaxis(data, 0, -1).astype(dtype), affine)
            image.header.set_xyzt_units("mm", "sec")
            image.header["pixdim"][4] = repetition_time
            path = bids_dir / run.path
            path.parent.mkdir(parents=True, exist_ok=True)
            image.to_filename(path)
            if layout.fmriprep:
                tissue = {"global_signal": data[:, brain].mean(1), "csf": motion_rng.standard_normal(scans),
                          "white_matter": motion_rng.standard_normal(scans)}
                write_run_derivatives(path, confounds_table(motion, tissue, repetition_time, motion_rng), brain,
                                      affine, layout.fmriprep)
                if surfaces:
                    write_surface_bold(path, image, brain, layout.fmriprep, surface_rng)

    timed = [words.assign(trial_type="word", word=words["word"].map(timed_spelling) if transcript else words["word"])
             for words in stories]
    layout.write_metadata(bids_dir, timed, repetition_time, runs_by_subject)
    if transcript:
        write_transcripts(root, layout, stories, runs_by_subject[subjects[0]])
    if audio and layout.events_name_sounds:
        name_sounds(bids_dir, sounds, stories, sound_runs)
    truth = GroundTruth(model=model, layer=int(layer), n_components=n_components,
                        amplitude_left=amplitude_left, amplitude_right=amplitude_right, noise_ar1=noise_ar1,
                        left_center_mm=LEFT_CLUSTER, right_center_mm=right_center,
                        cluster_radius_mm=CLUSTER_RADIUS, repetition_time=repetition_time,
                        n_participants=n_participants, n_runs=n_runs, repeats=repeats, seed=seed, labels=LABELS,
                        labels_file="planted_labels.nii.gz", layout=layout.name,
                        networks_file="networks_dseg.nii.gz" if networks is not None else None,
                        neurons_file="neuron_networks.tsv" if networks is not None else None,
                        network_amplitude=network_amplitude if networks is not None else 0.0,
                        lowlevel_amplitude=lowlevel_amplitude,
                        lowlevel_centers_mm=auditory_centers if lowlevel_amplitude else None,
                        lowlevel_file="planted_lowlevel.nii.gz" if lowlevel_amplitude else None,
                        speech_model=speech_model, speech_layer=speech.layer if speech else None,
                        speech_amplitude=speech_amplitude if speech else 0.0,
                        speech_file="planted_speech.nii.gz" if speech else None)
    _write_json(truth_dir / "ground_truth.json", {**asdict(truth), "feature_settings": asdict(feature_settings)})
    return truth
