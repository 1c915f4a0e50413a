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


NOT_INSTALLED = "bids-validator is not installed"
INSTALL = "pip install 'bids_encoding[validator]'"


class ValidatorFailed(RuntimeError):
    """The validator ran but gave no report (its last line of error output is the message)."""


def run_validator(folder):
    """The validator's JSON report on ``folder`` (a dict with ``issues.issues``), or ``None`` when it is not
    installed; :class:`ValidatorFailed` when it gives no readable report."""
    command = find_validator()
    if command is None:
        return None
    stderr = ""
    try:
        completed = subprocess.run([*command, "--format", "json", str(folder)], capture_output=True, text=True)
        stderr = completed.stderr
        report = json.loads(completed.stdout)
        if not isinstance(report["issues"]["issues"], list):
            raise TypeError("the report has no list of issues")
    except (OSError, ValueError, KeyError, TypeError) as error:
        detail = (stderr or str(error)).strip().splitlines()
        raise ValidatorFailed(detail[-1] if detail else str(error)) from error
    return report


def validate_output(output_dir, report_path):
    """Run the validator on a finished output folder (BIDS-Derivatives); write its report to ``report_path``
    and log a summary.

    Returns
    -------
    Counter or None
        Issues per severity (``errors``, ``warnings``), or ``None`` when the validator is not installed or failed
        (said in the log, with the line that installs it).
    """
    report = _validated(output_dir, report_path, "the results", "the results were not validated", "")
    return None if report is None else Counter(issue.get("severity", "") + "s" for issue in report["issues"]["issues"])


def _validated(folder, report_path, what, not_validated, silence):
    """The validator's report on ``folder``, saved to ``report_path`` and summarised in the log; ``None`` (with a
    warning that says why and how to install it) when it is not installed or failed."""
    try:
        report = run_validator(folder)
    except ValidatorFailed as error:
        LOGGER.warning("%s: bids-validator failed (%s)", not_validated, error)
        return None
    if report is None:
        LOGGER.warning("%s: %s (%s%s)", not_validated, NOT_INSTALLED, INSTALL, silence)
        return None
    report_path.write_text(json.dumps(report, indent=2))
    _summarise(report["issues"]["issues"], report_path, what)
    return report


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
    report = _validated(bids_dir, report_path, "the input", "the input was not validated",
                        "; --skip-bids-validation silences this")
    if report is None:
        return None
    issues = report["issues"]["issues"]
    messages = report["issues"].get("codeMessages") or {}
    for issue in issues:
        if issue.get("severity") == "error" and _blocks(issue) and _read_by_this_run(issue, subjects):
            location = issue.get("location", "").lstrip("/")
            code = issue["code"] + (f" ({issue['subCode']})" if issue.get("subCode") else "")
            raise BadDataError(f"{bids_dir / location}: bids-validator {code}: {_first_line(issue, messages)}: fix "
                               f"the file, or rerun with --skip-bids-validation (full report: {report_path})")
    return issues


def _summarise(issues, report_path, what):
    errors = Counter(issue["code"] for issue in issues if issue.get("severity") == "error")
    warnings = Counter(issue["code"] for issue in issues if issue.get("severity") == "warning")
    LOGGER.info("bids-validator: %d error(s), %d warning(s) in %s (full report: %s)", sum(errors.values()),
                sum(warnings.values()), what, report_path)
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
