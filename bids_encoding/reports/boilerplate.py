"""The methods boilerplate: a paragraph per stage written from the recorded settings (the sidecars), with the
software versions and references, as fMRIPrep's ``CITATION.md`` (also ``.html`` and ``.bib``)."""

import html
from pathlib import Path

from bids_encoding.reports.style import model_name, parameters

REFERENCES = {
    "dupre2022": ("Dupré la Tour, T., Eickenberg, M., Nunez-Elizalde, A. O., & Gallant, J. L. (2022). Feature-space "
                  "selection with banded ridge regression. NeuroImage, 264, 119728.",
                  "@article{dupre2022,\n  author = {Dupr{\\'e} la Tour, Tom and Eickenberg, Michael and "
                  "Nunez-Elizalde, Anwar O. and Gallant, Jack L.},\n  title = {Feature-space selection with banded "
                  "ridge regression},\n  journal = {NeuroImage},\n  volume = {264},\n  pages = {119728},\n"
                  "  year = {2022}\n}"),
    "lin2024": ("Lin, R., Naselaris, T., Kay, K., & Wehbe, L. (2024). Stacked regressions and structured variance "
                "partitioning for interpretable brain maps. NeuroImage, 298, 120772.",
                "@article{lin2024,\n  author = {Lin, Ruogu and Naselaris, Thomas and Kay, Kendrick and Wehbe, "
                "Leila},\n  title = {Stacked regressions and structured variance partitioning for interpretable "
                "brain maps},\n  journal = {NeuroImage},\n  volume = {298},\n  pages = {120772},\n"
                "  year = {2024}\n}"),
    "bonnasse2024": ("Bonnasse-Gahot, L., & Pallier, C. (2024). fMRI predictors based on language models of "
                     "increasing complexity recover brain left lateralization. arXiv:2405.17992.",
                     "@article{bonnasse2024,\n  author = {Bonnasse-Gahot, Laurent and Pallier, Christophe},\n"
                     "  title = {fMRI predictors based on language models of increasing complexity recover brain "
                     "left lateralization},\n  journal = {arXiv preprint arXiv:2405.17992},\n  year = {2024}\n}"),
    "antonello2023": ("Antonello, R., Vaidya, A., & Huth, A. G. (2023). Scaling laws for language encoding "
                      "models in fMRI. Advances in Neural Information Processing Systems 36. arXiv:2305.11863.",
                      "@inproceedings{antonello2023,\n  author = {Antonello, Richard and Vaidya, Aditya and Huth, "
                      "Alexander G.},\n  title = {Scaling laws for language encoding models in {fMRI}},\n"
                      "  booktitle = {Advances in Neural Information Processing Systems},\n  volume = {36},\n"
                      "  year = {2023}\n}"),
    "sun2024": ("Sun, H., Zhao, L., Wu, Z., Gao, X., Hu, Y., Zuo, M., Zhang, W., Han, J., Liu, T., & Hu, X. "
                "(2024). Brain-like functional organization within large language models. arXiv:2410.19542.",
                "@article{sun2024,\n  author = {Sun, Haiyang and Zhao, Lin and Wu, Zihao and Gao, Xiaohui and Hu, "
                "Yutao and Zuo, Mengfei and Zhang, Wei and Han, Junwei and Liu, Tianming and Hu, Xintao},\n"
                "  title = {Brain-like functional organization within large language models},\n"
                "  journal = {arXiv preprint arXiv:2410.19542},\n  year = {2024}\n}"),
    "nilearn": ("Abraham, A., Pedregosa, F., Eickenberg, M., Gervais, P., Mueller, A., Kossaifi, J., Gramfort, "
                "A., Thirion, B., & Varoquaux, G. (2014). Machine learning for neuroimaging with scikit-learn. "
                "Frontiers in Neuroinformatics, 8, 14. doi:10.3389/fninf.2014.00014.",
                "@article{nilearn,\n  author = {Abraham, Alexandre and Pedregosa, Fabian and Eickenberg, Michael "
                "and Gervais, Philippe and Mueller, Andreas and Kossaifi, Jean and Gramfort, Alexandre and Thirion, "
                "Bertrand and Varoquaux, Ga{\\\"e}l},\n  title = {Machine learning for neuroimaging with "
                "scikit-learn},\n  journal = {Frontiers in Neuroinformatics},\n  volume = {8},\n  pages = {14},\n"
                "  year = {2014},\n  doi = {10.3389/fninf.2014.00014}\n}"),
    "transformers": ("Wolf, T., et al. (2020). Transformers: State-of-the-art natural language processing. "
                     "Proceedings of EMNLP 2020: System Demonstrations, 38-45.",
                     "@inproceedings{transformers,\n  author = {Wolf, Thomas and others},\n  title = "
                     "{Transformers: State-of-the-Art Natural Language Processing},\n  booktitle = {Proceedings "
                     "of EMNLP 2020: System Demonstrations},\n  pages = {38--45},\n  year = {2020}\n}"),
    "glover1999": ("Glover, G. H. (1999). Deconvolution of impulse response in event-related BOLD fMRI. "
                   "NeuroImage, 9(4), 416-429. doi:10.1006/nimg.1998.0419.",
                   "@article{glover1999,\n  author = {Glover, Gary H.},\n  title = {Deconvolution of impulse "
                   "response in event-related {BOLD} {fMRI}},\n  journal = {NeuroImage},\n  volume = {9},\n"
                   "  number = {4},\n  pages = {416--429},\n  year = {1999}\n}"),
    "huth2016": ("Huth, A. G., de Heer, W. A., Griffiths, T. L., Theunissen, F. E., & Gallant, J. L. (2016). "
                 "Natural speech reveals the semantic maps that tile human cerebral cortex. Nature, 532, 453-458.",
                 "@article{huth2016,\n  author = {Huth, Alexander G. and de Heer, Wendy A. and Griffiths, Thomas L. "
                 "and Theunissen, Fr{\\'e}d{\\'e}ric E. and Gallant, Jack L.},\n  title = {Natural speech reveals "
                 "the semantic maps that tile human cerebral cortex},\n  journal = {Nature},\n  volume = {532},\n"
                 "  pages = {453--458},\n  year = {2016}\n}"),
    "hoerl1970": ("Hoerl, A. E., & Kennard, R. W. (1970). Ridge regression: Biased estimation for nonorthogonal "
                  "problems. Technometrics, 12(1), 55-67.",
                  "@article{hoerl1970,\n  author = {Hoerl, Arthur E. and Kennard, Robert W.},\n  title = {Ridge "
                  "regression: Biased estimation for nonorthogonal problems},\n  journal = {Technometrics},\n"
                  "  volume = {12},\n  number = {1},\n  pages = {55--67},\n  year = {1970}\n}"),
    "benjamini1995": ("Benjamini, Y., & Hochberg, Y. (1995). Controlling the false discovery rate: A practical and "
                      "powerful approach to multiple testing. Journal of the Royal Statistical Society B, 57(1), "
                      "289-300.",
                      "@article{benjamini1995,\n  author = {Benjamini, Yoav and Hochberg, Yosef},\n  title = "
                      "{Controlling the false discovery rate: a practical and powerful approach to multiple "
                      "testing},\n  journal = {Journal of the Royal Statistical Society B},\n  volume = {57},\n"
                      "  pages = {289--300},\n  year = {1995}\n}"),
    "schoppe2016": ("Schoppe, O., Harper, N. S., Willmore, B. D. B., King, A. J., & Schnupp, J. W. H. (2016). "
                    "Measuring the performance of neural models. Frontiers in Computational Neuroscience, 10, 10.",
                    "@article{schoppe2016,\n  author = {Schoppe, Oliver and Harper, Nicol S. and Willmore, Ben D. B. "
                    "and King, Andrew J. and Schnupp, Jan W. H.},\n  title = {Measuring the performance of neural "
                    "models},\n  journal = {Frontiers in Computational Neuroscience},\n  volume = {10},\n"
                    "  pages = {10},\n  year = {2016}\n}"),
    "esteban2019": ("Esteban, O., Markiewicz, C. J., Blair, R. W., et al. (2019). fMRIPrep: a robust preprocessing "
                    "pipeline for functional MRI. Nature Methods, 16(1), 111-116. doi:10.1038/s41592-018-0235-4.",
                    "@article{esteban2019,\n  author = {Esteban, Oscar and Markiewicz, Christopher J. and Blair, Ross "
                    "W. and others},\n  title = {fMRIPrep: a robust preprocessing pipeline for functional MRI},\n"
                    "  journal = {Nature Methods},\n  volume = {16},\n  number = {1},\n  pages = {111--116},\n"
                    "  year = {2019},\n  doi = {10.1038/s41592-018-0235-4}\n}"),
    "templateflow": ("Ciric, R., Thompson, W. H., Lorenz, R., et al. (2022). TemplateFlow: FAIR-sharing of "
                     "multi-scale, multi-species brain models. Nature Methods, 19, 1568-1571.",
                     "@article{templateflow,\n  author = {Ciric, Rastko and Thompson, William H. and Lorenz, Romy "
                     "and others},\n  title = {{TemplateFlow}: {FAIR}-sharing of multi-scale, multi-species brain "
                     "models},\n  journal = {Nature Methods},\n  volume = {19},\n  pages = {1568--1571},\n"
                     "  year = {2022}\n}"),
    "pybids": ("Yarkoni, T., et al. (2019). PyBIDS: Python tools for BIDS datasets. Journal of Open Source "
               "Software, 4(40), 1294.",
               "@article{pybids,\n  author = {Yarkoni, Tal and others},\n  title = {{PyBIDS}: Python tools for "
               "{BIDS} datasets},\n  journal = {Journal of Open Source Software},\n  volume = {4},\n"
               "  number = {40},\n  pages = {1294},\n  year = {2019}\n}"),
}


def _models(sidecars):
    described = []
    for sidecar in sidecars:
        model = sidecar["Model"]
        if model.get("Source") == "baseline":
            described.append(f"the baseline `{model['Id']}`")
            continue
        untrained = " with random (untrained) weights" if model.get("Untrained") else ""
        source = {"gguf": ", the GGUF file", "directory": ", a local copy"}.get(model.get("Source"), "")
        described.append(f"`{model_name(model['Id'])}`{untrained} ({parameters(model['NumberOfParameters'])} parameters"
                         f"{source}, "
                         f"{model['NumberOfLayers']} layers, hidden size {model['HiddenSize']}"
                         + (f", revision {model['Revision']}" if model.get("Revision") else "") + ")")
    return ", ".join(described)


def _features(sidecars):
    """How the text went through the models: each model's own windows (one clause when they all share them)."""
    models = [sidecar for sidecar in sidecars if sidecar["Model"].get("Source") != "baseline"]
    if not models:
        return "The baselines need no language model"
    features = models[0]["Features"]
    pooling = ("the hidden state of its last token" if features.get("pooling") == "last"
               else "the mean of the hidden states of its tokens")

    def windows(features):
        if not features.get("window"):
            return "its context"
        return (f"windows of {features['window']} tokens, every token with at least {features['context']} tokens "
                "of left context")

    if len({windows(sidecar["Features"]) for sidecar in models}) == 1:
        context = f"the models in {windows(features)}"
    else:
        context = "each model in its own windows: " + "; ".join(
            f"{windows(sidecar['Features'])} for `{model_name(sidecar['Model']['Id'])}`" for sidecar in models)
    transcripts = [run["Words"]["Transcript"] for run in models[0].get("Runs", [])
                   if (run.get("Words") or {}).get("Transcript")]
    text = "Each run's text"
    if transcripts:
        rates = [record["MatchRate"] for record in transcripts]
        text = (f"The original transcript of each story (cased and punctuated) was aligned to its timed words "
                f"(rapidfuzz Levenshtein alignment of normalised words; {min(rates):.1%} to {max(rates):.1%} of a "
                f"run's timed words matched a transcript word); each run's transcript")
    return (f"{text} was passed through {context}; a word's vector was {pooling}, at every layer (0: the "
            "embeddings)")


def _design(sidecar):
    design = sidecar["Design"]
    if design.get("kind") == "lanczos-fir":
        what = (f"resampled to the scan times with a Lanczos filter ({design.get('lanczos_window')} lobes) and "
                f"delayed by {', '.join(map(str, design.get('fir_delays', [])))} scans (finite impulse response; "
                "Huth et al., 2016)")
        cite = ["huth2016"]
    else:
        what = (f"convolved with the {design.get('hrf_model')} haemodynamic response function (Glover, 1999; "
                "nilearn's compute_regressor) and sampled at the middle of each scan")
        cite = ["glover1999"]
    return (f"Word features were {what}. The first {design['trim_start']} and last {design['trim_end']} scans "
            "of every run were discarded from the data and the design."), cite


def _cleaning(sidecar):
    cleaning, confounds, mask = sidecar["Cleaning"], sidecar.get("Confounds"), (sidecar.get("BOLD") or {}).get("Mask")
    steps = (["linear detrending"] if cleaning.get("Detrend") else [])
    if cleaning.get("SavitzkyGolayWindowSeconds"):
        steps.append(f"subtraction of a Savitzky-Golay fit (order {cleaning.get('SavitzkyGolayOrder')}, "
                     f"{cleaning['SavitzkyGolayWindowSeconds']:g} s)")
    if cleaning.get("HighPassHz"):
        steps.append(f"a Butterworth high-pass filter at {cleaning['HighPassHz']:g} Hz "
                     f"(1/{1 / cleaning['HighPassHz']:.0f} s)")
    if confounds:
        steps.append(f"regression of fMRIPrep's confounds ({', '.join(confounds['Strategy'])}; nilearn's "
                     "load_confounds)")
    steps.append("z-scoring")
    if cleaning.get("Design", "as-bold") == "as-bold" and cleaning.get("Order", "trim-first") == "trim-first":
        text = (f"The BOLD series and the design were cleaned alike, run by run, with nilearn (Abraham et al., "
                f"2014): {', '.join(steps)}.")
    else:
        whole = cleaning.get("Order") == "whole-run"
        text = (f"The BOLD series were cleaned {'whole run by whole run' if whole else 'run by run'}, with nilearn "
                f"(Abraham et al., 2014): {', '.join(steps)}{', then trimmed and z-scored again' if whole else ''}."
                + (" The design was trimmed and z-scored only." if cleaning.get("Design") == "zscore" else ""))
    cite = ["nilearn"]
    if isinstance(mask, dict):
        source = {"given": "a brain mask given by the user",
                  "derivative": "the preprocessing's own brain masks, intersected across runs",
                  "template": f"the {mask.get('Template')} template's brain mask from TemplateFlow "
                              "(Ciric et al., 2022)",
                  "epi": "a mask computed from the mean EPI images (nilearn's compute_multi_epi_mask)",
                  "intersection": "the intersection of the participants' masks"}.get(mask.get("Source"), "a mask")
        text += f" Voxels were those of {source}."
        if mask.get("Source") == "template":
            cite.append("templateflow")
    else:
        text += (" Voxels were those of the first brain mask found among: a given mask, the preprocessing's own "
                 "masks, the template's brain mask (TemplateFlow), a mask computed from the EPI.")
    return text, cite


def _ridge(sidecar):
    ridge, significance = sidecar["Ridge"], sidecar.get("Significance")
    alphas = ridge["Alphas"]
    inner = ridge.get("InnerCV") or {}
    scheme = {"loro": "leave-one-run-out", "single": "a single validation run (the last training run)",
              "first": "a single validation run (the first training run)", "chunks": "contiguous chunks",
              "bootstrap": "bootstrapped chunks",
              "huth-bootstrap": "bootstrapped chunks (Antonello et al.'s bootstrap_ridge)",
              }.get(inner.get("Scheme"), inner.get("Scheme", ""))
    text = (f"Voxel-wise encoding models were fitted by ridge regression without intercept (Hoerl & Kennard, "
            f"1970). The penalty was chosen among {len(alphas)} values from {min(alphas):g} to {max(alphas):g}, "
            f"{ridge['AlphaChoice']}, by {scheme} cross-validation inside each outer fold, on "
            f"{ridge['AlphaScore']}. Outer cross-validation: {ridge['OuterCV']}. Score: {ridge['Score']}. For "
            "each voxel, the best layer was chosen on the inner-validation score, never on the test data.")
    cite = ["hoerl1970"]
    if significance:
        text += (f" Per-voxel one-sided p-values of the mean r were computed by {significance['Method']}, "
                 "corrected by the false discovery rate (Benjamini & Hochberg, 1995).")
        cite.append("benjamini1995")
    return text, cite


PRESET_AUTHORS = {"bonnasse2024": "Bonnasse-Gahot & Pallier (2024)", "antonello2023": "Antonello, Vaidya & Huth (2023)"}


def _joint_models(joints):
    """The joint models' paragraph and citations, from one sidecar (``JointModel``) per joint model."""
    described, cites = [], []
    for sidecar in joints:
        joint = sidecar["JointModel"]
        spaces = ", ".join(space["Label"] for space in joint["Spaces"])
        if joint["Solver"] == "banded":
            how = (f"banded ridge regression (Dupré la Tour et al., 2022): one penalty per space and voxel, chosen "
                   f"with the alpha by the same nested cross-validation among {joint.get('Candidates')} candidate "
                   "weightings of the spaces' kernels (random search, the first uniform)")
            cites.append("dupre2022")
        else:
            how = ("stacked regression (Lin et al., 2024): per voxel, convex weights of the spaces' predictions, "
                   "chosen on their held-out predictions inside the training runs")
            cites.append("lin2024")
        described.append(f"{joint['Label']} ({spaces}) by {how}")
    unique = any(sidecar["JointModel"].get("UniqueVariance") for sidecar in joints)
    text = ("**Joint models.** Several feature spaces were fitted in one encoding model: " + "; ".join(described)
            + ". Each space's split correlation and split R² are its part of the joint prediction's scores "
              "(Dupré la Tour et al., 2022)" + ("; its unique variance is the joint R² minus the R² of the joint "
                                                "model without it" if unique else "") + ".")
    return text, ["dupre2022"] + cites


def methods(sidecars, versions=None, n_participants=None, group=False, ceiling=False, joints=(), surface=None):
    """The methods text (Markdown) and the reference keys it cites, from one best-layer sidecar per model (and one
    sidecar per joint model, ``joints``); ``surface``: the ``Surface`` record of a map on fsaverage5, if any."""
    sidecars = sorted(sidecars, key=lambda s: (s["Model"].get("Source") == "baseline",
                                               bool(s["Model"].get("Untrained"))))
    first = sidecars[0]
    versions = versions or first.get("SoftwareVersions", {})
    design, design_cite = _design(first)
    cleaning, cleaning_cite = _cleaning(first)
    ridge, ridge_cite = _ridge(first)
    who = f"{n_participants} participant(s)" if n_participants else "each participant"
    paragraphs = [
        f"Results were computed with bids_encoding {versions.get('bids_encoding', '')} (Python "
        f"{versions.get('python', '')}), using nilearn {versions.get('nilearn', '')}, transformers "
        f"{versions.get('transformers', '')} (Wolf et al., 2020), PyTorch {versions.get('torch', '')} and pybids "
        f"{versions.get('pybids', '')} (Yarkoni et al., 2019), for {who}.",
        f"**Language models.** Word features came from {_models(sidecars)}. {_features(sidecars)}.",
        f"**Design.** {design}",
        f"**Cleaning.** {cleaning}",
        f"**Encoding models.** {ridge}",
    ]
    preset = first.get("Procedure") or {}
    if preset.get("Follows"):
        authors = PRESET_AUTHORS.get(preset.get("Reference"), "the authors")
        steps = "; ".join(f"{step.lower()}: {what}" for step, what in preset["Steps"].items())
        paragraphs.insert(1, f"**Procedure.** Every step followed the code of {authors} ({preset['Follows']}), "
                             f"as bids_encoding's preset '{preset['Name']}': {steps}.")
    cites = ["transformers", "pybids"] + design_cite + cleaning_cite + ridge_cite
    if joints:
        text, joint_cites = _joint_models(joints)
        paragraphs.append(text)
        cites += joint_cites
    if ceiling:
        paragraphs.append("**Noise ceiling.** Where a stimulus was heard more than once, the noise ceiling CC_max "
                          "was computed from the repeats and r was normalized by it (Schoppe et al., 2016).")
        cites.append("schoppe2016")
    if surface:
        how = ("the same encoding models were fitted to fMRIPrep's surface BOLD sampled on fsaverage5 (Esteban et al., "
               "2019)" if str(surface.get("Source", "")).startswith("fMRIPrep") else
               "the volume maps were projected onto fsaverage5 with nilearn's vol_to_surf (samples between the white "
               "and pial surfaces, linear interpolation)")
        paragraphs.append(f"**Cortical surface.** For the surface maps, {how}.")
        if "fMRIPrep" in how:
            cites.append("esteban2019")
    if group:
        paragraphs.append("**Group level.** Scores were averaged over a mask made symmetric about the midline; "
                          "the score was regressed on log10(parameters) per participant and for the group, with "
                          "bootstrap confidence intervals over participants (Antonello et al., 2023), and the "
                          "left-right difference was taken on mirror voxels (Bonnasse-Gahot & Pallier, 2024).")
    cites += ["bonnasse2024", "antonello2023", "sun2024"]
    return "\n\n".join(paragraphs), list(dict.fromkeys(cites))


def write_boilerplate(logs_dir, sidecars, **kwargs):
    """Write ``CITATION.md``, ``CITATION.html`` and ``CITATION.bib`` in ``logs_dir``; returns the Markdown."""
    text, cites = methods(sidecars, **kwargs)
    references = "\n".join(f"- {REFERENCES[key][0]}" for key in cites)
    markdown = f"# Methods\n\n{text}\n\n## References\n\n{references}\n"
    logs_dir = Path(logs_dir)
    logs_dir.mkdir(parents=True, exist_ok=True)
    (logs_dir / "CITATION.md").write_text(markdown, encoding="utf-8")
    (logs_dir / "CITATION.bib").write_text("\n\n".join(REFERENCES[key][1] for key in cites) + "\n", encoding="utf-8")
    (logs_dir / "CITATION.html").write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Methods</title></head><body>"
        + to_html(text) + "<h2>References</h2><ul>"
        + "".join(f"<li>{html.escape(REFERENCES[key][0])}</li>" for key in cites) + "</ul></body></html>\n",
        encoding="utf-8")
    return markdown


def to_html(markdown):
    """The boilerplate's Markdown (paragraphs, **bold**, `code`) as HTML."""
    import re

    out = []
    for paragraph in markdown.split("\n\n"):
        text = html.escape(paragraph)
        text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
        text = re.sub(r"`(.+?)`", r"<code>\1</code>", text)
        out.append(f"<p>{text}</p>")
    return "".join(out)
