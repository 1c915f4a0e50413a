"""A missing optional package: one line naming it and the extra that brings it, exit 66, before any work."""

import sys

import pytest

from bids_encoding.cli import main


def hide(monkeypatch, *modules):
    """Make ``modules`` unimportable, as in an environment that lacks them (``import`` raises ImportError)."""
    for module in modules:
        for name in [name for name in sys.modules if name == module or name.startswith(module + ".")]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, module, None)


def one_error_line(err):
    lines = [line for line in err.splitlines() if line.startswith("bids_encoding: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "unexpected" not in err and "please report" not in err
    return lines[0]


@pytest.fixture
def gguf_file(tmp_path):
    """A .gguf path that exists: the check must stop the run before the file is ever read."""
    path = tmp_path / "models" / "SmolLM2-135M.Q4_1.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF")
    return path


def participant(small_dataset, out, *options):
    return [str(small_dataset), str(out), "participant", "--device", "cpu", "--pvalue-method", "none", *options]


def assert_nothing_fitted(out):
    assert not list(out.rglob("*_statmap.nii.gz")) and not list(out.rglob("*_scores.tsv"))
    assert not (out / "work" / "features").exists()


@pytest.mark.parametrize("missing", ["gguf", "accelerate"])
def test_a_gguf_model_without_its_packages_stops_before_any_model_is_fitted(small_dataset, tiny_model, gguf_file,
                                                                             tmp_path, monkeypatch, capsys, missing):
    hide(monkeypatch, missing)
    out = tmp_path / "out"
    # the tiny model first: before the check, it was fitted, then the GGUF load failed with "unexpected ImportError"
    code = main(participant(small_dataset, out, "--models", str(tiny_model), str(gguf_file)))
    line = one_error_line(capsys.readouterr().err)
    assert code == 66
    assert f"needs {missing}, which is not installed" in line and str(gguf_file) in line
    assert "pip install 'bids_encoding[gguf]'" in line
    assert_nothing_fitted(out)


def test_quantize_without_bitsandbytes_says_which_extra(small_dataset, tiny_model, tmp_path, monkeypatch, capsys):
    hide(monkeypatch, "bitsandbytes")
    out = tmp_path / "out"
    code = main(participant(small_dataset, out, "--models", str(tiny_model), "--quantize", "8bit"))
    line = one_error_line(capsys.readouterr().err)
    assert code == 66
    assert "--quantize 8bit needs bitsandbytes" in line and "pip install 'bids_encoding[quantize]'" in line
    assert_nothing_fitted(out)


def test_device_map_without_accelerate_says_which_extra(small_dataset, tiny_model, tmp_path, monkeypatch, capsys):
    hide(monkeypatch, "accelerate")
    code = main(participant(small_dataset, tmp_path / "out", "--models", str(tiny_model), "--device-map", "auto"))
    line = one_error_line(capsys.readouterr().err)
    assert code == 66 and "--device-map auto needs accelerate" in line
    assert "pip install 'bids_encoding[multi-gpu]'" in line


@pytest.mark.parametrize("missing", ["matplotlib", "jinja2"])
def test_a_figure_or_report_library_missing_stops_before_the_fit(small_dataset, tmp_path, monkeypatch, capsys,
                                                                   missing):
    hide(monkeypatch, missing)
    out = tmp_path / "out"
    code = main(participant(small_dataset, out, "--models", "wordrate"))
    line = one_error_line(capsys.readouterr().err)
    assert code == 66 and "the figures and HTML reports" in line and f"needs {missing}" in line
    assert f"pip install {missing}" in line
    assert_nothing_fitted(out)


def test_the_validator_missing_is_a_warning_that_names_its_extra(small_dataset, tmp_path, monkeypatch, caplog):
    from bids_encoding.cli.demo import validation_summary
    from bids_encoding.inputs.validation import LOGGER, validate_input

    LOGGER.addHandler(caplog.handler)  # the package's logger does not propagate once a run has set it up
    monkeypatch.setattr(LOGGER, "handlers", [caplog.handler])
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "empty" / "python"))
    assert validate_input(small_dataset, tmp_path / "report.json") is None
    assert "bids-validator is not installed (pip install 'bids_encoding[validator]'" in caplog.text
    assert validation_summary(tmp_path) == ("BIDS validator on the results: not run (pip install "
                                            "'bids_encoding[validator]')")


def test_the_demo_checks_its_packages_before_writing_the_dataset(tmp_path, monkeypatch, capsys, gguf_file):
    hide(monkeypatch, "gguf")
    code = main(["demo", str(tmp_path / "demo"), "--compare", str(gguf_file)])
    line = one_error_line(capsys.readouterr().err)
    assert code == 66 and "pip install 'bids_encoding[gguf]'" in line
    assert not (tmp_path / "demo" / "bids").exists()


def test_an_unreadable_gguf_file_is_named_as_such(small_dataset, gguf_file, tmp_path, capsys):
    code = main(participant(small_dataset, tmp_path / "out", "--models", str(gguf_file)))
    line = one_error_line(capsys.readouterr().err)
    assert code == 66 and f"cannot read the GGUF model file {gguf_file}" in line
    assert "or a .gguf file" not in line  # it is one
