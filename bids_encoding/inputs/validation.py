"""The BIDS validator on the input dataset, before anything else (as fMRIPrep and MRIQC do).

The validator (``bids-validator-deno`` on PyPI: the schema bundled, offline) is
an optional extra, always in the container. Its full report goes to the log
folder and its errors are summarised in a few lines. The run stops (exit 65)
only on what the app cannot proceed with (:data:`BLOCKING`), in a file it
reads: the dataset's description, and the BOLD and events sidecars of the
selected participants or at the top level. Anything else is a warning.
"""

import json
import logging
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bids_encoding.errors import BadDataError

LOGGER = logging.getLogger(__name__)
COMMANDS = ("bids-validator-deno", "bids-validator")
# code -> the subcodes (metadata fields) that block, or None for every one
# (an unreadable BOLD image is not here: the app reads the header of each BOLD it selects, and stops on it with its
# own message; one it does not select, e.g. another derivative variant, does not matter)
BLOCKING = {
    "JSON_INVALID": None,  # a JSON file that is not JSON: the dataset's description, a sidecar
    "JSON_SCHEMA_VALIDATION_ERROR": {"RepetitionTime"},  # the timing of every scan
}
READ_SUFFIXES = ("_bold.json", "_events.json")
SUMMARY_LINES = 5


def find_validator():
    """The validator's command (a list), or ``None`` when it is not installed. ``bids-validator`` counts only
    when it is the schema-based validator (version 2 or later; the legacy 1.x writes another report)."""
    for command in COMMANDS:
        # the environment's own scripts first: the extra installs it beside this Python, maybe not on PATH
        path = shutil.which(command, path=str(Path(sys.executable).parent)) or shutil.which(command)
        if path is None:
            continue
        if command == "bids-validator":
            try:
                version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=120).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            if not version.strip()[:1].isdigit() or int(version.strip().split(".")[0]) < 2:
                continue
        return [path]
    return None


def validate_input(bids_dir, report_path, subjects=None):
    """Run the validator on ``bids_dir``, write its report to ``report_path`` (JSON) and log a summary.

    Parameters
    ----------
    bids_dir : Path
    report_path : Path
    subjects : list of str or None
        The participants of this run (labels without ``sub-``); ``None``: all. Errors in other participants'
        files are warnings.

    Returns
    -------
    list of dict or None
        The validator's issues, or ``None`` when it is not installed or failed (said once in the log).

    Raises
    ------
    BadDataError
        On a :data:`BLOCKING` error in a file this run reads: one line naming the file, the validator's code
        and what to do.
    """
    command = find_validator()
    if command is None:
        LOGGER.warning("the input was not validated: bids-validator is not installed (pip install "
                       "'bids_encoding[validator]'; --skip-bids-validation silences this)")
        return None
    stderr = ""
    try:
        completed = subprocess.run([*command, "--format", "json", str(bids_dir)], capture_output=True, text=True)
        stderr = completed.stderr
        report = json.loads(completed.stdout)
        issues = report["issues"]["issues"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        detail = (stderr or str(error)).strip().splitlines()
        LOGGER.warning("the input was not validated: bids-validator failed (%s)", detail[-1] if detail else error)
        return None
    report_path.write_text(json.dumps(report, indent=2))
    messages = report["issues"].get("codeMessages") or {}
    _summarise(issues, report_path)
    for issue in issues:
        if issue.get("severity") == "error" and _blocks(issue) and _read_by_this_run(issue, subjects):
            location = issue.get("location", "").lstrip("/")
            code = issue["code"] + (f" ({issue['subCode']})" if issue.get("subCode") else "")
            raise BadDataError(f"{bids_dir / location}: bids-validator {code}: {_first_line(issue, messages)}: fix "
                               f"the file, or rerun with --skip-bids-validation (full report: {report_path})")
    return issues


def _summarise(issues, report_path):
    errors = Counter(issue["code"] for issue in issues if issue.get("severity") == "error")
    warnings = Counter(issue["code"] for issue in issues if issue.get("severity") == "warning")
    LOGGER.info("bids-validator: %d error(s), %d warning(s) in the input (full report: %s)", sum(errors.values()),
                sum(warnings.values()), report_path)
    for code, count in errors.most_common(SUMMARY_LINES):
        first = next(issue for issue in issues if issue["code"] == code and issue.get("severity") == "error")
        LOGGER.warning("bids-validator error %s (%d): %s%s", code, count, first.get("location", ""),
                       f" ({first['subCode']})" if first.get("subCode") else "")
    if len(errors) > SUMMARY_LINES:
        LOGGER.warning("bids-validator: %d more kinds of error in the report", len(errors) - SUMMARY_LINES)


def _blocks(issue):
    if issue["code"] not in BLOCKING:
        return False
    fields = BLOCKING[issue["code"]]
    return fields is None or issue.get("subCode") in fields


def _read_by_this_run(issue, subjects):
    """Whether this run reads the file: the dataset's description, and the BOLD and events sidecars of the
    selected participants or at the top level (inherited by every run)."""
    parts = issue.get("location", "").strip("/").split("/")
    if parts[-1] != "dataset_description.json" and not parts[-1].endswith(READ_SUFFIXES):
        return False  # anatomical images, other modalities: never read
    if len(parts) == 1:
        return True
    if not parts[0].startswith("sub-"):
        return False  # derivatives/, sourcedata/, code/, stimuli/: read, if at all, through other checks
    return subjects is None or parts[0][4:] in subjects


def _first_line(issue, messages):
    text = issue.get("issueMessage") or messages.get(issue["code"]) or "see the report"
    return " ".join(text.strip().splitlines()[0].split()).rstrip(".")
