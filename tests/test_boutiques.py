"""The Boutiques descriptor (boutiques/bids_encoding.json): generated from the parser, valid, complete, runnable."""

import argparse
import json
import shlex
from pathlib import Path

import pytest

pytest.importorskip("boutiques.creator", reason="the Boutiques descriptor tests need the optional boutiques "
                                                "package (pip install 'bids_encoding[boutiques]')")

from bids_encoding import errors  # noqa: E402
from bids_encoding.cli.boutiques import REGENERATE, descriptor, dumps  # noqa: E402
from bids_encoding.cli.parser import LEVELS, build_parser  # noqa: E402

DESCRIPTOR = Path(__file__).resolve().parents[1] / "boutiques" / "bids_encoding.json"


@pytest.fixture(scope="module")
def parser():
    return build_parser()


@pytest.fixture(scope="module")
def fresh(parser):
    return descriptor(parser)


@pytest.fixture(scope="module")
def committed():
    return json.loads(DESCRIPTOR.read_text(encoding="utf-8"))


def _options(parser):
    return [action for action in parser._actions
            if not isinstance(action, (argparse._HelpAction, argparse._VersionAction))]


def test_committed_descriptor_is_the_generated_one(fresh, committed):
    message = f"{DESCRIPTOR} is out of date with the parser: regenerate it with `{REGENERATE}`"
    assert committed == fresh, message
    assert DESCRIPTOR.read_text(encoding="utf-8") == dumps(fresh), message


def test_descriptor_does_not_depend_on_the_environment(fresh, monkeypatch):
    for value in (None, "1"):
        if value is None:
            monkeypatch.delenv("BIDS_ENCODING_SKIP_REPORTS", raising=False)
        else:
            monkeypatch.setenv("BIDS_ENCODING_SKIP_REPORTS", value)
        assert descriptor(build_parser()) == fresh


def test_boutiques_validates_it(committed):
    from boutiques import bosh

    bosh(["validate", str(DESCRIPTOR)])  # raises DescriptorValidationError
    codes = {entry["code"] for entry in committed["error-codes"]}
    assert codes == {getattr(errors, name) for name in dir(errors) if name.startswith("EXIT_")}


def test_every_option_and_positional_is_described(parser, committed):
    inputs = {entry["id"]: entry for entry in committed["inputs"]}
    flags = {entry["command-line-flag"] for entry in committed["inputs"] if "command-line-flag" in entry}
    assert len(flags) == len(inputs) - 3
    positionals = [action.dest for action in _options(parser) if not action.option_strings]
    assert positionals == ["bids_dir", "output_dir", "analysis_level"]
    assert committed["command-line"].startswith("bids_encoding [BIDS_DIR] [OUTPUT_DIR] [ANALYSIS_LEVEL] ")
    assert inputs["analysis_level"]["value-choices"] == list(LEVELS)
    assert [entry["path-template"] for entry in committed["output-files"]] == ["[OUTPUT_DIR]"]
    for name in positionals:
        assert "command-line-flag" not in inputs[name] and not inputs[name]["optional"]
    for action in _options(parser):
        entry = inputs.get(action.dest)
        assert entry is not None, f"{action.option_strings or action.dest} is not in the descriptor"
        assert entry["value-key"] in committed["command-line"]
        if action.option_strings:
            assert entry["command-line-flag"] in action.option_strings
        for name in action.option_strings:  # aliases have no flag of their own: the description names them
            if name.startswith("--"):
                assert name.replace("_", "-") in flags or name.replace("_", "-") in entry["description"], name
        assert (entry["type"] == "Flag") == (action.nargs == 0), action.dest
        if action.nargs in ("+", "*"):
            assert entry.get("list") is True, action.dest


def test_simulated_command_line_is_accepted_by_the_parser(parser, capsys):
    from boutiques import bosh

    invocation = {"bids_dir": "/data/lpp", "output_dir": "/data/lpp/derivatives/bids_encoding",
                  "analysis_level": "participant", "participant_label": ["01", "sub-02"],
                  "models": ["gpt2", "wordrate", "random:token:64"], "task": "lppEN", "trim_scans": [10, 5],
                  "alphas": [1, 10.5, 1000], "average_participants": True, "verbose": True,
                  "confounds": ["motion", "scrub"], "work_dir": "/scratch/work", "nprocs": 4}
    capsys.readouterr()
    bosh(["exec", "simulate", str(DESCRIPTOR), "-i", json.dumps(invocation)])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("bids_encoding ")]
    assert len(lines) == 1, lines
    argv = shlex.split(lines[0])
    args = parser.parse_args(argv[1:])
    assert (args.bids_dir, args.output_dir) == (Path("/data/lpp"), Path("/data/lpp/derivatives/bids_encoding"))
    assert args.analysis_level == "participant"
    assert args.participant_label == ["01", "02"]  # the parser strips sub-
    assert args.models == ["gpt2", "wordrate", "random:token:64"]
    assert (args.task, args.trim_scans, args.alphas) == ("lppEN", [10, 5], [1.0, 10.5, 1000.0])
    assert (args.average_participants, args.verbose, args.confounds) == (True, 1, ["motion", "scrub"])
    assert (args.work_dir, args.nprocs) == (Path("/scratch/work"), 4)
    assert args.pooling == parser.get_default("pooling")  # no default is written into the command line
