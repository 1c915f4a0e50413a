"""The finders of :mod:`bids_encoding.derivatives.names` find what the globs they replaced found."""

from bids_encoding.derivatives.names import (
    best_layer_sidecars,
    find,
    find_participants,
    participant_func_dirs,
    participant_labels,
    reports,
    scores_tables,
)

FILES = [
    "sub-01/func/sub-01_task-story_space-orig_scores.tsv", "sub-01/func/sub-01_task-story_space-orig_scores.json",
    "sub-01/func/sub-01_task-other_space-orig_scores.tsv",
    "sub-01/func/sub-01_task-story_space-orig_model-gpt2_layer-best_stat-r_statmap.nii.gz",
    "sub-01/func/sub-01_task-story_space-orig_model-gpt2_layer-best_stat-r_statmap.json",
    "sub-01/func/sub-01_task-story_space-orig_model-bert_layer-best_stat-r_statmap.json",
    "sub-01/func/sub-01_task-story_space-orig_model-gpt2_layer-best_desc-x_stat-r_statmap.json",
    "sub-01/func/sub-01_task-story_space-orig_model-gpt2_layer-3_stat-r_statmap.json",
    "sub-01/cache/sub-01_task-story_space-orig_desc-isc00_bold.npy",
    "sub-average/func/sub-average_task-story_space-orig_scores.tsv",
    "sub-02/anat/sub-02_T1w.nii.gz", "sub-01.html", "sub-average.html", "group.html",
    "group/task-story_space-orig_scores.tsv", "group/task-story_space-orig_desc-average_scores.tsv",
]


def test_finders_find_what_the_globs_found(tmp_path):
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    func = tmp_path / "sub-01" / "func"
    assert participant_labels(tmp_path) == ["01", "02", "average"]
    assert participant_func_dirs(tmp_path) == sorted(tmp_path.glob("sub-*/func"))
    assert list(find_participants(tmp_path, suffix="scores", extension=".tsv").values()) == \
        sorted(tmp_path.glob("sub-*/func/*_scores.tsv"))
    assert scores_tables(tmp_path, "01") == sorted(func.glob("sub-01_*_scores.tsv"))
    assert scores_tables(tmp_path, "03") == []
    assert best_layer_sidecars(func) == sorted(func.glob("*_layer-best_stat-r_statmap.json"))
    assert len(best_layer_sidecars(func)) == 2
    assert list(find(tmp_path / "group", sub=None, suffix="scores", extension=".tsv").values()) == \
        sorted((tmp_path / "group").glob("task-*_scores.tsv"))
    assert list(find(tmp_path / "sub-01" / "cache", desc="isc00", suffix="bold", extension=".npy"))
    assert reports(tmp_path) == [tmp_path / "sub-01.html", tmp_path / "sub-average.html", tmp_path / "group.html"]
    assert reports(tmp_path / "none") == []
