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


@pytest.mark.parametrize("options, name", [
    (["--nprocs", "0"], "--nprocs"), (["--nprocs", "two"], "--nprocs"), (["--n-cpus", "0"], "--nprocs"),
    (["--omp-nthreads", "0"], "--omp-nthreads"), (["--window-tokens", "1"], "--window-tokens"),
    (["--context-tokens", "-1"], "--context-tokens"), (["--right-context-tokens", "-1"], "--right-context-tokens"),
    (["--batch-size", "0"], "--batch-size"), (["--voxel-chunk", "0"], "--voxel-chunk"),
    (["--permutations", "-5"], "--permutations"), (["--inner-chunks", "1"], "--inner-chunks"),
    (["--bootstraps", "0"], "--bootstraps"), (["--chunk-length", "0"], "--chunk-length"),
    (["--group-bootstraps", "9"], "--group-bootstraps"), (["--neuron-patterns", "1"], "--neuron-patterns"),
    (["--neuron-permutations", "0"], "--neuron-permutations"), (["--ridge-rank", "0"], "--ridge-rank"),
    (["--epi-mask-cutoff", "1"], "--epi-mask-cutoff"), (["--group-mask-threshold", "0"], "--group-mask-threshold"),
    (["--reliable-fraction", "1.5"], "--reliable-fraction"), (["--neuron-sparsity", "0"], "--neuron-sparsity"),
    (["--alphas", "1", "-1"], "--alphas"), (["--n-compcor", "some"], "--n-compcor"),
    (["--trim-scans", "-1"], "--trim-scans"), (["--mem", "8XB"], "--mem"), (["--mem", "lots"], "--mem"),
    (["--device-map", "auto", "--max-memory", "gpu0:40GB"], "--max-memory"),
    (["--device-map", "auto", "--max-memory", "0=40XB"], "--max-memory"),
    (["--pooling", "max"], "--pooling"),
])
def test_a_bad_option_value_is_one_line_naming_the_option(tmp_path, capsys, options, name):
    """Checked as the option is read (its converter): exit 64, one line that starts with the option's dashed name."""
    (tmp_path / "bids").mkdir()
    assert main([str(tmp_path / "bids"), str(tmp_path / "out"), "participant", *options]) == 64
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"bids_encoding: error: {name}"), lines
    assert not (tmp_path / "out").exists()


def test_labels_reach_the_configuration_without_their_prefix(tmp_path):
    (tmp_path / "bids").mkdir()
    args = parse_args([str(tmp_path / "bids"), str(tmp_path / "out"), "participant", "--device", "cpu",
                       "--participant-label", "sub-01", "02", "--session-label", "ses-a", "b"])
    assert args.participant_label == ["01", "02"]
    config = config_from_args(args)
    assert config.participant_labels == ["01", "02"]
    assert config.bold_filters == {"session": ["a", "b"]}


def test_bids_filter_file_is_read_as_the_option_is(tmp_path, capsys):
    (tmp_path / "bids").mkdir()
    base = [str(tmp_path / "bids"), str(tmp_path / "out"), "participant", "--device", "cpu"]
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"bold": {"acq": "mb", "echo": None, "suffix": "bold"}}))
    config = config_from_args(parse_args([*base, "--bids-filter-file", str(filters), "--session-label", "1"]))
    assert config.bold_filters == {"acquisition": "mb", "echo": None, "session": ["1"]}
    assert main([*base, "--bids-filter-file", str(tmp_path / "absent.json")]) == 66
    err = capsys.readouterr().err
    assert "--bids-filter-file" in err and "absent.json" in err and len(err.strip().splitlines()) == 1
    for content in ("{not json", json.dumps({"bold": ["acq", "mb"]})):
        filters.write_text(content)
        assert main([*base, "--bids-filter-file", str(filters)]) == 64
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("bids_encoding: error: --bids-filter-file")
        assert str(filters) in lines[0]


def test_config_file_values_go_through_the_option_converters(tmp_path):
    (tmp_path / "bids").mkdir()
    toml = tmp_path / "config.toml"
    toml.write_text('mem = "2gb"\nparticipant-label = ["sub-01", 2]\nsession-label = ["ses-a"]\nnprocs = 2\n'
                    'max-memory = ["0=40gb"]\ndevice-map = "auto"\nn-compcor = 3\n')
    args = parse_args([str(tmp_path / "bids"), str(tmp_path / "out"), "participant", "--device", "cpu",
                       "--config-file", str(toml)])
    assert (args.participant_label, args.session_label, args.nprocs) == (["01", "2"], ["a"], 2)
    config = config_from_args(args)
    assert config.mem == 2 * 1024 ** 3
    assert config.placement.max_memory == (("0", "40GB"),)
    assert config.confounds.n_compcor == "3"


@pytest.mark.parametrize("content, key", [
    ('mem = "2XB"\n', "mem"), ("nprocs = 0\n", "nprocs"), ("epi-mask-cutoff = 1.5\n", "epi-mask-cutoff"),
    ('max-memory = ["gpu0:40GB"]\n', "max-memory"), ("alphas = [1, 0]\n", "alphas"),
    ('bids-filter-file = "absent.json"\n', "absent.json"),
])
def test_a_bad_value_in_a_config_file_is_one_line_naming_the_file_and_option(tmp_path, capsys, content, key):
    (tmp_path / "bids").mkdir()
    path = tmp_path / "config.toml"
    path.write_text(content)
    code = main([str(tmp_path / "bids"), str(tmp_path / "out"), "participant", "--config-file", str(path)])
    assert code == (66 if key == "absent.json" else 64)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and key in lines[0], lines


def test_a_saved_configuration_reads_back_to_the_same_options(tmp_path):
    """What a run writes to logs/*_config.toml (cli/run.py: effective_options) gives the same options again."""
    from bids_encoding.cli.parser import effective_options
    from bids_encoding.config import to_toml

    (tmp_path / "bids").mkdir()
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"bold": {"acq": "mb"}}))
    base = [str(tmp_path / "bids"), str(tmp_path / "out"), "participant", "--device", "cpu"]
    first = parse_args([*base, "--mem", "1.5g", "--participant-label", "sub-01", "--session-label", "ses-1",
                        "--device-map", "auto", "--max-memory", "0=40gb", "cpu=1.5GB", "--bids-filter-file",
                        str(filters), "--nprocs", "2", "--trim-scans", "4", "--n-compcor", "2"])
    saved = tmp_path / "saved_config.toml"
    saved.write_text(to_toml(effective_options(first)))
    again = parse_args([*base, "--config-file", str(saved)])
    for name in ("mem", "participant_label", "session_label", "max_memory", "bids_filter_file", "nprocs",
                 "trim_scans", "n_compcor", "alphas"):
        assert getattr(again, name) == getattr(first, name), name
    assert effective_options(again)["bids-filter-file"] == str(filters.resolve())
    one, two = config_from_args(first), config_from_args(again)
    assert (one.mem, one.bold_filters, one.placement) == (two.mem, two.bold_filters, two.placement)
    assert one.mem == int(1.5 * 1024 ** 3)


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
