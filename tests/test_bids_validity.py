"""The outputs are BIDS-Derivatives the BIDS validator accepts; the input is validated before anything else."""

import json
import shutil

import pytest
from conftest import bidsignore_patterns_used
from conftest import validator_issues as validate

from bids_encoding.cli.entry import main
from bids_encoding.derivatives.staging import BIDSIGNORE
from bids_encoding.inputs.validation import find_validator

needs_validator = pytest.mark.skipif(find_validator() is None, reason="bids-validator-deno is not installed "
                                     "(pip install 'bids_encoding[validator]')")


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_model):
    """Participant and group outputs of a small synthetic dataset (maps, ISC cache, neuron patterns)."""
    from bids_encoding.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("valid")
    generate_dataset(root, str(tiny_model), n_participants=2, n_runs=3, seed=3)
    out = root / "derivatives"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("BIDS_ENCODING_SKIP_REPORTS", "")  # the reports are part of the output
        assert main([str(root / "bids"), str(out), "participant", "--models", str(tiny_model), "wordrate",
                     "--device", "cpu", "--permutations", "10", "--pvalue-method", "blocks", "--isc-cache"]) == 0
        participant_issues = validate(out)
        assert main([str(root / "bids"), str(out), "group", "--group-bootstraps", "20"]) == 0
    return root, out, participant_issues


@needs_validator
def test_participant_and_group_outputs_have_no_validator_errors(study):
    root, out, participant_issues = study
    errors = [issue for issue in participant_issues if issue[0] == "error"]
    assert not errors, errors[:5]
    errors = [issue for issue in validate(out) if issue[0] == "error"]
    assert not errors, errors[:5]
    codes = {code for _, code, _ in validate(out)}
    assert "NIFTI_UNIT" not in codes and "README_FILE_MISSING" not in codes
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["Authors"] and description["DatasetLinks"]["raw"].startswith("file://")
    mask = json.loads(next(out.glob("sub-*/func/*_desc-brain_mask.json")).read_text())
    assert mask["Type"] == "Brain" and mask["SpatialReference"].startswith("bids:raw:sub-")  # space-orig
    assert (out / "README.md").read_text().count("How to cite") == 1


@needs_validator
def test_each_bidsignore_pattern_covers_only_what_bids_does_not_define(study, tmp_path):
    _, out, _ = study
    assert (out / ".bidsignore").read_text().split() == list(BIDSIGNORE)
    used = bidsignore_patterns_used(out, tmp_path)
    # every kind of output was written: every pattern is exercised but the words level's summary and transcript
    # alignments, the neuron patterns' files, the data-scaling tables, the datasets level, the NeuroVault export
    # and the surface maps of template spaces (tests/test_datasets.py, test_transcripts.py,
    # test_neurons_end_to_end.py, test_datascaling.py, test_across_datasets.py and test_surface.py check those)
    assert used >= set(BIDSIGNORE) - {"/words.tsv", "/words.json", "*_alignment.tsv", "*_alignment.json",
                                      "*_desc-neurons_*", "*_datascaling.tsv", "*_datascaling.json", "/datasets",
                                      "/neurovault", "*_statmap.func.gii"}, set(BIDSIGNORE) - used


def test_a_user_line_in_bidsignore_is_kept(tmp_path):
    from bids_encoding.derivatives.staging import write_dataset_description

    (tmp_path / "bids").mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / ".bidsignore").write_text("notes/\n")
    write_dataset_description(out, tmp_path / "bids")
    lines = (out / ".bidsignore").read_text().split()
    assert lines[0] == "notes/" and lines[1:] == list(BIDSIGNORE)


@pytest.fixture
def broken(small_dataset, tmp_path):
    """A copy of the small dataset to break."""
    copy = tmp_path / "bids"
    shutil.copytree(small_dataset, copy)
    return copy


def _stopped(capsys, code, *fragments):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("bids_encoding: error:")]
    assert code == 65 and len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@needs_validator
@pytest.mark.parametrize("breakage", ["description", "repetition_time"])
def test_the_validator_stops_what_the_app_cannot_read(broken, tmp_path, tiny_model, capsys, breakage):
    """A malformed dataset_description.json, a BOLD sidecar whose RepetitionTime is text: the validator runs
    first, its report goes to the logs, and the run stops with one line (exit 65) naming the file and the code.
    With --skip-bids-validation the validator does not run, and the app goes as far as its own checks let it."""
    if breakage == "description":
        (broken / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": ')
        file, code = "dataset_description.json", "JSON_INVALID"
    else:
        sidecar = broken / "task-story_bold.json"
        sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "RepetitionTime": "2s"}))
        file, code = "task-story_bold.json", "JSON_SCHEMA_VALIDATION_ERROR (RepetitionTime)"
    out = tmp_path / "out"
    arguments = [str(broken), str(out), "participant", "--models", str(tiny_model), "--device", "cpu"]
    line = _stopped(capsys, main(arguments), str(broken / file), f"bids-validator {code}",
                    "--skip-bids-validation")
    report = next((out / "logs").glob("*_bids-validator.json"))
    assert str(report) in line and json.loads(report.read_text())["issues"]["issues"]
    assert not list(out.rglob("*_statmap.nii.gz"))
    skipped = tmp_path / "skipped"
    code = main(arguments[:1] + [str(skipped)] + arguments[2:] + ["--skip-bids-validation"])
    err = capsys.readouterr().err
    assert "bids-validator" not in err and not list((skipped / "logs").glob("*_bids-validator*"))
    # skipped, the description's name is the folder's; a text TR still stops the app's own check
    assert code == (0 if breakage == "description" else 65), err


@needs_validator
def test_a_validator_error_in_another_participants_files_is_a_warning(small_dataset, tmp_path, capsys):
    bids = tmp_path / "bids"
    shutil.copytree(small_dataset, bids)
    other = bids / "sub-02" / "func"
    other.mkdir(parents=True)
    (other / "sub-02_task-story_run-1_bold.json").write_text("{not json")
    code = main([str(bids), str(tmp_path / "out"), "participant", "--participant-label", "01", "--models",
                 "wordrate", "--device", "cpu", "--pvalue-method", "none"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "bids-validator error JSON_INVALID" in err and "sub-02_task-story_run-1_bold.json" in err


def test_without_the_validator_the_run_says_once_that_the_input_was_not_validated(small_dataset, tmp_path,
                                                                                   capsys, monkeypatch):
    monkeypatch.setattr("bids_encoding.inputs.validation.find_validator", lambda: None)
    code = main([str(small_dataset), str(tmp_path / "out"), "participant", "--models", "wordrate", "--device", "cpu",
                 "--pvalue-method", "none"])
    err = capsys.readouterr().err
    assert code == 0 and err.count("the input was not validated: bids-validator is not installed") == 1


@pytest.mark.parametrize("singularity", [False, True])
def test_dataset_description_names_the_container_and_the_input_doi(tmp_path, monkeypatch, singularity):
    from bids_encoding.derivatives.staging import write_dataset_description

    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text(json.dumps({
        "Name": "Le Petit Prince", "BIDSVersion": "1.8.0", "DatasetDOI": "10.18112/openneuro.ds003643.v2.0.5"}))
    monkeypatch.setenv("BIDS_ENCODING_CONTAINER_TAG", "bids_encoding:0.1.0")
    monkeypatch.delenv("APPTAINER_CONTAINER", raising=False)
    monkeypatch.delenv("SINGULARITY_CONTAINER", raising=False)
    if singularity:
        monkeypatch.setenv("SINGULARITY_CONTAINER", str(tmp_path / "bids_encoding.sif"))
    (tmp_path / "out").mkdir()
    write_dataset_description(tmp_path / "out", bids)
    description = json.loads((tmp_path / "out" / "dataset_description.json").read_text())
    container = description["GeneratedBy"][0]["Container"]
    assert container["Tag"] == "bids_encoding:0.1.0"
    assert container["Type"] == ("singularity" if singularity else "docker")
    assert description["SourceDatasets"][0]["DOI"] == "doi:10.18112/openneuro.ds003643.v2.0.5"
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "Le Petit Prince" in readme and "doi:10.18112/openneuro.ds003643.v2.0.5" in readme
