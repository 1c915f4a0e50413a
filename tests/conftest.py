"""Shared fixtures: a tiny model built offline, and synthetic datasets made by the product's generator."""

import hashlib
import os
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):  # two workers share two cores: threads that wait sleep, not spin
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402

from bids_encoding.synthetic import generate_dataset
from bids_encoding.synthetic.neuron_model import story_tokenizer  # noqa: F401 (the tests' tokenizers)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("BIDS_ENCODING_SKIP_REPORTS", "1")  # tests/test_reports.py turns the reports on


@pytest.fixture(autouse=True)
def _no_input_validation(request, monkeypatch):
    """The suite does not run the BIDS validator on every test's input (seconds per run, and many inputs are
    broken on purpose for the app's own checks); tests/test_bids_validity.py runs it, and
    tests/test_dependencies.py runs it without the validator installed."""
    if request.module.__name__ not in ("test_bids_validity", "test_dependencies"):
        monkeypatch.setattr("bids_encoding.inputs.validation.validate_input", lambda *args, **kwargs: None)


def save_tiny_model(directory, model_class, config, tokenizer, seed=1234):
    """Save a randomly initialised model and its tokenizer with ``save_pretrained``."""
    import torch

    torch.manual_seed(seed)
    model_class(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)


def build_tiny_gpt2(directory, n_positions=64, seed=1234, n_embd=32, n_layer=2):
    """A 2-layer GPT-2 with a word-level tokenizer over the story's vocabulary, saved to ``directory``."""
    from transformers import GPT2Config, GPT2Model

    tokenizer, vocab_size = story_tokenizer()
    config = GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=2)
    return save_tiny_model(directory, GPT2Model, config, tokenizer, seed)


def tree_digest(root):
    """Hash of every file's path and bytes under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(Path(root).rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return build_tiny_gpt2(tmp_path_factory.mktemp("models") / "tinygpt2")


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory, tiny_model):
    """The demo dataset (3 participants, 4 runs) planted through the tiny model."""
    root = tmp_path_factory.mktemp("demo")
    truth = generate_dataset(root, str(tiny_model))
    return root, truth


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory, tiny_model):
    """One participant, three runs: the base of the bad-input tests."""
    root = tmp_path_factory.mktemp("small")
    generate_dataset(root, str(tiny_model), n_participants=1, n_runs=3, seed=1)
    return root / "bids"


def templateflow_home(tmp_path, monkeypatch):
    """A TEMPLATEFLOW_HOME holding TemplateFlow's own skeleton (empty images, real label tables); no download."""
    import importlib

    import templateflow.api
    import templateflow.conf

    home = tmp_path / "templateflow"
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(home))
    importlib.reload(templateflow.conf)
    importlib.reload(templateflow.api)
    templateflow.api.templates()  # unpacks the skeleton
    return home / "tpl-MNI152NLin2009cAsym"


def validator_issues(folder):
    """The BIDS validator's issues on ``folder`` as ``(severity, code, location)``; ``None`` when it is not
    installed (the test extra installs it)."""
    from bids_encoding.inputs.validation import run_validator

    report = run_validator(folder)
    if report is None:
        return None
    return [(issue["severity"], issue["code"], issue.get("location", "")) for issue in report["issues"]["issues"]]


def validator_errors(folder):
    """The validator's errors on ``folder`` (an empty list when it is not installed)."""
    return [issue for issue in validator_issues(folder) or [] if issue[0] == "error"]


def bidsignore_patterns_used(output_dir, scratch):
    """The .bidsignore patterns that cover files of ``output_dir``; asserts that the validator, run on a copy
    without .bidsignore, reports each covered file (or a folder holding it) as not part of BIDS: no pattern hides
    a file that BIDS defines. ``None`` when the validator is not installed."""
    import fnmatch
    import shutil

    from bids_encoding.derivatives.staging import BIDSIGNORE

    def covers(pattern, parts):  # "/x" from the root, "x" any name at any depth; a folder covers its files
        if pattern.startswith("/"):
            body = pattern[1:].split("/")
            return len(parts) >= len(body) and all(fnmatch.fnmatchcase(p, b) for p, b in zip(parts, body))
        return any(fnmatch.fnmatchcase(part, pattern) for part in parts)

    bare = Path(scratch) / "without-bidsignore"
    shutil.copytree(output_dir, bare, ignore=shutil.ignore_patterns(".bidsignore"))
    issues = validator_issues(bare)
    if issues is None:
        return None
    flagged = {location.strip("/") for _, code, location in issues if code == "NOT_INCLUDED"}
    used = set()
    for path in bare.rglob("*"):
        parts = path.relative_to(bare).parts
        if parts[0] == "logs":
            continue  # the validator skips logs/ by default: never reported, whatever it holds
        for pattern in BIDSIGNORE:
            if path.is_file() and covers(pattern, parts):
                used.add(pattern)
                held_by = {"/".join(parts[:k]) for k in range(1, len(parts) + 1)}
                assert held_by & flagged, f"{pattern} hides {path.relative_to(bare)}, which the validator accepts"
    return used
