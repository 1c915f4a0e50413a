"""Command line: options, config files, exit codes."""

import json

import pytest

from bids_encoding import __version__
from bids_encoding.cli import build_parser, config_from_args, main, parse_args


def test_version(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_the_version_names_the_commit_it_was_installed_from():
    """setuptools-scm: a release tag (0.2.0) or, past it, the distance and the commit (0.2.1.dev3+g1a2b3c4, a date
    for uncommitted files): never the hand-written literal of earlier versions, never the fallback of a tree that
    was not installed."""
    import re
    import subprocess
    from pathlib import Path

    from packaging.version import Version

    from bids_encoding import version_line

    assert __version__ not in ("0.1.0", "0+unknown")
    Version(__version__)  # a valid version
    root = Path(__file__).resolve().parents[1]
    commit = re.search(r"\(commit ([0-9a-f]{7,40})\)$", version_line())  # at a release tag too
    assert commit, version_line()
    if not (root / ".git").exists():
        return  # an installed copy without the repository
    found = subprocess.run(["git", "-C", str(root), "cat-file", "-e", f"{commit.group(1)}^{{commit}}"],
                           capture_output=True)
    assert found.returncode == 0, f"{__version__}: commit {commit.group(1)} is not in this repository"


@pytest.mark.parametrize("options, instead", [
    (["--permutations", "0"], "use --pvalue-method none"),
    (["--permutations=0"], "use --pvalue-method none"),
    (["--permutation-scheme", "blocks"], "use --pvalue-method circular or --pvalue-method blocks"),
    (["--permutation_scheme=circular"], "use --pvalue-method circular or --pvalue-method blocks"),
    (["--nthreads", "4"], "use --nprocs"),
    (["--mem-mb", "8000"], "use --mem with a unit"),
])
def test_options_of_earlier_versions_and_other_apps_name_what_to_write(tmp_path, capsys, options, instead):
    assert main([str(tmp_path), str(tmp_path / "out"), "participant", *options]) == 64
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("bids_encoding: error:")]
    assert len(lines) == 1 and instead in lines[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content, instead", [
    ("permutations = 0\n", "use --pvalue-method none"),
    ('permutation-scheme = "blocks"\n', "use --pvalue-method circular or --pvalue-method blocks"),
])
def test_config_files_of_earlier_versions_name_what_to_write(tmp_path, capsys, content, instead):
    path = tmp_path / "config.toml"
    path.write_text(content)
    assert main([str(tmp_path), str(tmp_path / "out"), "participant", "--config-file", str(path)]) == 64
    err = capsys.readouterr().err
    assert str(path) in err and instead in err


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "(default: last)" in out
    assert "--participant-label" in out


def test_config_file_values_and_command_line_precedence(tmp_path):
    toml = tmp_path / "config.toml"
    toml.write_text('pooling = "mean"\ntrim-scans = 10\nmodels = ["gpt2", "facebook/opt-125m"]\n'
                    'participant_label = ["01"]\n')
    args = parse_args(["bids", "out", "participant", "--config-file", str(toml), "--trim-scans", "3"])
    assert args.pooling == "mean"
    assert args.trim_scans == [3]
    assert args.models == ["gpt2", "facebook/opt-125m"]
    assert args.participant_label == ["01"]
    as_json = tmp_path / "config.json"
    as_json.write_text(json.dumps({"alphas": [1, 10], "device": "cpu"}))
    args = parse_args(["bids", "out", "participant", "--config_file", str(as_json)])
    assert args.alphas == [1.0, 10.0]


@pytest.mark.parametrize("content, suffix, code", [
    ('unknown_option = 1\n', ".toml", 64),
    ('pooling = "max"\n', ".toml", 64),
    ('not toml at all [', ".toml", 64),
])
def test_bad_config_file(tmp_path, capsys, content, suffix, code):
    path = tmp_path / f"config{suffix}"
    path.write_text(content)
    assert main([str(tmp_path), str(tmp_path / "out"), "participant", "--config-file", str(path)]) == code
    assert str(path) in capsys.readouterr().err


def test_missing_config_file(tmp_path, capsys):
    assert main([str(tmp_path), str(tmp_path / "out"), "participant", "--config-file", "nope.toml"]) == 66


def test_participant_labels_with_or_without_prefix(small_dataset, tiny_model, tmp_path):
    from bids_encoding.participant import collect_runs

    for label in ("01", "sub-01"):
        args = parse_args([str(small_dataset), str(tmp_path / "out"), "participant", "--participant-label", label,
                           "--device", "cpu"])
        selected = collect_runs(config_from_args(args))
        assert list(selected) == [("01", "story")]
        assert [run.run for run in selected[("01", "story")]] == ["1", "2", "3"]


def test_work_dir_defaults_inside_output(tmp_path):
    (tmp_path / "bids").mkdir()
    config = config_from_args(build_parser().parse_args([str(tmp_path / "bids"), str(tmp_path / "out"),
                                                          "participant", "--device", "cpu"]))
    assert config.work_dir == (tmp_path / "out" / "work").resolve()


@pytest.mark.parametrize("given, start, end", [([], 10, 5), (["10", "5"], 10, 5), (["4"], 4, 4), (["0", "3"], 0, 3)])
def test_trim_scans_start_and_end(tmp_path, given, start, end):
    (tmp_path / "bids").mkdir()
    option = ["--trim-scans", *given] if given else []
    config = config_from_args(parse_args([str(tmp_path / "bids"), str(tmp_path / "out"), "participant",
                                          "--device", "cpu", *option]))
    assert (config.design.trim_start, config.design.trim_end) == (start, end)


def test_bad_trim_scans_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "bids").mkdir()
    assert main([str(tmp_path / "bids"), str(tmp_path / "out"), "participant", "--trim-scans", "1", "2", "3"]) == 64
    assert "--trim-scans" in capsys.readouterr().err


@pytest.mark.parametrize("options, fragment", [
    (["--confounds", "compcor"], "high_pass"),
    (["--confounds", "motion", "--n-compcor", "some"], "--n-compcor"),
    (["--epi-mask-cutoff", "1.5"], "--epi-mask-cutoff"),
    (["--ridge-rank", "0"], "--ridge-rank"),
])
def test_bad_confound_and_mask_options_are_usage_errors(tmp_path, options, fragment, capsys):
    bids = tmp_path / "bids"
    bids.mkdir()
    assert main([str(bids), str(tmp_path / "out"), "participant", *options]) == 64
    assert fragment in capsys.readouterr().err


def test_the_changelog_starts_with_the_release_the_descriptor_and_image_name():
    import re
    from pathlib import Path

    from bids_encoding import RELEASE

    changelog = (Path(__file__).resolve().parents[1] / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = [heading for heading in re.findall(r"^## (\S+)", changelog, flags=re.M) if heading != "Unreleased"]
    assert releases[0] == RELEASE


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_help_and_version_load_no_model_or_imaging_library(option):
    """They answer at once: nothing of torch, transformers, nilearn, pybids or scipy.stats is imported (these took
    14-16 s on a loaded 2-core machine)."""
    import subprocess
    import sys

    code = "\n".join([
        "import sys",
        "from bids_encoding.cli.entry import main",
        "try:",
        f"    main([{option!r}])",
        "except SystemExit:",
        "    pass",
        "heavy = ('torch', 'transformers', 'nilearn', 'bids', 'scipy.stats', 'sklearn')",
        "print('IMPORTED', sorted(name for name in heavy if name in sys.modules))"])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "IMPORTED []" in result.stdout, result.stdout[-300:]
