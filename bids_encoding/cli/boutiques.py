"""Boutiques descriptor of the BIDS-App command, generated from the argument parser so that it cannot drift.

``python -m bids_encoding.cli.boutiques > boutiques/bids_encoding.json`` regenerates the committed descriptor
(tests/test_boutiques.py fails when it differs from a fresh one). Needs the optional ``boutiques`` package
(``pip install bids_encoding[boutiques]``); the app itself does not.

The descriptor describes ``bids_encoding BIDS_DIR OUTPUT_DIR LEVEL [options]`` only: ``bids_encoding demo`` is
dispatched before the parser (cli/entry.py) and has no place in it. boutiques' ``CreateDescriptor`` reads the
parser; its output is then adjusted where boutiques cannot know better: the long dashed spelling of each option
as its flag (the other spellings named in the description), flags for store_true and count actions, numbers,
paths that must exist as File inputs, the levels as value choices, list lengths, the output directory, the
BIDS-Apps exit codes, the version and the container image. Defaults stay in the descriptions, as --help shows
them, and out of ``default-value``: boutiques writes every ``default-value`` into the command line it builds,
where it would override the values of ``--config-file`` (and the flags' defaults can come from the environment).
"""

import argparse
import contextlib
import copy
import json
import numbers
import sys
from pathlib import Path

from bids_encoding import RELEASE, errors
from bids_encoding.cli.parser import LEVELS, HelpFormatter, build_parser

IMAGE = "bids-encoding/bids_encoding"
COMMAND = "bids_encoding"
REGENERATE = "python -m bids_encoding.cli.boutiques > boutiques/bids_encoding.json"
# path options the app creates when they are missing: String inputs (boutiques mounts File inputs, which must exist)
CREATED_PATHS = {"output_dir", "work_dir", "feature_cache"}
EXIT_CODES = {
    "EXIT_FAILURE": "unexpected failure (details in OUTPUT_DIR/logs)",
    "EXIT_VALIDATION": "the dataset failed BIDS validation",
    "EXIT_UNKNOWN_LEVEL": "unknown analysis level",
    "EXIT_NOTHING_SELECTED": "no participant, task or run matches the selection",
    "EXIT_USAGE": "bad command line or option values",
    "EXIT_BAD_DATA": "inputs that cannot be used (mismatched timings, grids, tables)",
    "EXIT_MISSING_INPUT": "a file or folder the run needs does not exist",
    "EXIT_CANNOT_CREATE": "an output file or folder cannot be written",
}
ACRONYMS = {"bids", "cv", "epi", "fd", "wm", "csf", "hrf", "fir", "roi", "omp", "ffn", "tf32", "cpus"}
INPUT_KEYS = ("id", "name", "type", "description", "value-key", "command-line-flag", "optional", "list",
              "min-list-entries", "max-list-entries", "integer", "value-choices")
FLAG_ACTIONS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._StoreConstAction,
                argparse._CountAction, argparse.BooleanOptionalAction)
SKIPPED_ACTIONS = (argparse._HelpAction, argparse._VersionAction)


def _flag(action):
    """The option's long dashed spelling (``--participant-label``), else its first."""
    long = [name for name in action.option_strings if name.startswith("--")]
    return (long or action.option_strings)[0]


def _json_value(value):
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)


def _input(entry, action):
    """Adjust boutiques' input ``entry`` made from argparse ``action``."""
    if isinstance(action, argparse._AppendAction) or action.nargs == argparse.REMAINDER:
        raise ValueError(f"{_flag(action)}: a {type(action).__name__} has no Boutiques equivalent; "
                         "describe it by hand in bids_encoding/cli/boutiques.py")
    words = [word.upper() if word in ACRONYMS else word for word in entry["id"].split("_")]
    entry["name"] = " ".join(words)[0].upper() + " ".join(words)[1:]
    # the help as --help shows it, with its default (none for flags: --skip-reports' comes from the environment)
    formatter = argparse.HelpFormatter if isinstance(action, FLAG_ACTIONS) else HelpFormatter
    description = formatter(COMMAND)._expand_help(action) if action.help else ""
    if action.option_strings:
        flag = _flag(action)
        entry["command-line-flag"] = flag
        dashed = {name.replace("_", "-") for name in action.option_strings}
        others = [name for name in action.option_strings if name in dashed and name != flag]
        if others:
            description += f" (also {', '.join(others)})"
        if isinstance(action, argparse._CountAction):
            description += f"; {flag} once here"
    entry["description"] = description.strip()
    entry["optional"] = not action.required
    for key in ("type", "list", "default-value", "value-choices"):  # redone below
        entry.pop(key, None)
    if isinstance(action, FLAG_ACTIONS):
        entry["type"] = "Flag"
        return entry
    value_type = getattr(action.type, "value_type", action.type)  # the parser's converters say what they read
    if value_type in (int, float):
        entry["type"] = "Number"
        if value_type is int:
            entry["integer"] = True
    elif value_type is Path and action.dest not in CREATED_PATHS:
        entry["type"] = "File"
    else:
        entry["type"] = "String"
    many = action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 1)
    if many:
        entry["list"] = True
        if action.nargs == "+":
            entry["min-list-entries"] = 1
        if isinstance(action.nargs, int):
            entry["min-list-entries"] = entry["max-list-entries"] = action.nargs
        elif isinstance(action.metavar, tuple):  # e.g. --trim-scans START [END]: as many values as names
            entry["max-list-entries"] = len(action.metavar)
    choices = LEVELS if action.dest == "analysis_level" else action.choices
    if choices is not None:
        entry["value-choices"] = [_json_value(choice) for choice in choices]
    return entry


def _error_codes():
    """Every ``EXIT_*`` code of :mod:`bids_encoding.errors`."""
    codes = {getattr(errors, name): EXIT_CODES.get(name, name[5:].lower().replace("_", " "))
             for name in dir(errors) if name.startswith("EXIT_")}
    return [{"code": code, "description": text} for code, text in sorted(codes.items())]


def descriptor(parser=None):
    """The Boutiques descriptor (schema 0.5) of ``bids_encoding BIDS_DIR OUTPUT_DIR LEVEL [options]``.

    Parameters
    ----------
    parser : argparse.ArgumentParser or None
        Default: :func:`bids_encoding.cli.parser.build_parser`'s.

    Returns
    -------
    dict
    """
    try:
        from boutiques.creator import CreateDescriptor
    except ImportError as error:
        raise ImportError("the Boutiques descriptor needs the boutiques package: "
                          "pip install 'bids_encoding[boutiques]'") from error

    parser = build_parser() if parser is None else parser
    plain = copy.copy(parser)
    plain.__class__ = argparse.ArgumentParser  # CreateDescriptor accepts no subclass (BidsAppParser)
    made = CreateDescriptor(plain, execname=COMMAND).descriptor
    actions = {action.dest: action for action in parser._actions if not isinstance(action, SKIPPED_ACTIONS)}
    inputs = [_input(dict(entry), actions[entry["id"]]) for entry in made["inputs"] if entry["id"] in actions]
    inputs = [{key: entry[key] for key in sorted(entry, key=lambda key: (INPUT_KEYS + (key,)).index(key))}
              for entry in inputs]
    result = {
        "name": COMMAND,
        "tool-version": RELEASE,
        "description": parser.description,
        "command-line": " ".join([COMMAND] + [entry["value-key"] for entry in inputs]),
        "container-image": {"type": "docker", "image": f"{IMAGE}:{RELEASE}"},
        "schema-version": "0.5",
        "inputs": inputs,
        "output-files": [{
            "id": "output_folder",
            "name": "Output directory",
            "description": "BIDS-Derivatives folder: the participant level's maps and tables, the group level's "
                           "results (docs/outputs.md)",
            "path-template": "[OUTPUT_DIR]",
            "optional": False,
        }],
        "error-codes": _error_codes(),
        "tags": {"domain": ["neuroimaging", "fmri", "language models", "encoding models"], "bids-app": True},
    }
    return result


def dumps(value):
    """The descriptor as the committed file holds it."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def main():
    """Print the descriptor as JSON."""
    with contextlib.redirect_stdout(sys.stderr):  # anything printed on the way stays out of the JSON
        value = descriptor()
    sys.stdout.buffer.write(dumps(value).encode("utf-8"))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
