"""Hiding labels to simulate a low label rate, and writing assigned labels back to disk."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from core.atomic import OverwriteError
from core.data.dataset import load_h5, save_h5
from core.data.labels import (
    hide_labels,
    keep_labels,
    with_label_fraction,
    write_labelled_copy,
    write_manifest,
)
from core.features.dataset import list_clips
from core.training.config import RunConfig


def test_keep_labels_is_stratified_seeded_and_keeps_one_per_class():
    labels = np.array([0] * 200 + [1] * 100 + [2] * 3 + [-1] * 50)
    keep = keep_labels(labels, 0.1, seed=4)
    assert [int(keep[labels == c].sum()) for c in (0, 1, 2)] == [20, 10, 1]
    assert not keep[labels == -1].any()  # unlabelled pairs stay unlabelled
    assert np.array_equal(keep, keep_labels(labels, 0.1, seed=4))
    assert not np.array_equal(keep, keep_labels(labels, 0.1, seed=5))
    assert np.array_equal(keep_labels(labels, 1.0, seed=4), labels >= 0)


def test_hide_labels_keeps_the_truth_aside(tiny_data):
    hidden = hide_labels(tiny_data.train, 0.25, seed=0)
    assert np.array_equal(hidden.true_labels, tiny_data.train.labels)
    shown = hidden.labels >= 0
    assert np.array_equal(hidden.labels[shown], tiny_data.train.labels[shown])
    assert 0.2 < shown.mean() < 0.3
    assert hide_labels(tiny_data.train, 1.0, seed=0) is tiny_data.train
    data = with_label_fraction(tiny_data, 0.25, 0)
    assert data.val is tiny_data.val and data.test is tiny_data.test


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_label_fraction_outside_0_1_is_refused_where_the_config_is_built(fraction):
    with pytest.raises(ValueError, match="label_fraction"):
        RunConfig().replace(**{"data.label_fraction": fraction})


def file_labels(path):
    with h5py.File(path, "r") as f:
        y = f["lab_train"][()]
    return np.where(y.sum(1) == 1, y.argmax(1), -1) if y.ndim == 2 else y


@pytest.mark.parametrize("one_hot", [False, True])
def test_labelled_copy_round_trip_never_touches_the_source(tmp_path, tiny_data, one_hot):
    source = tmp_path / "src.h5"
    save_h5(source, tiny_data, include_val=False)  # val is carved on load: rows must map back
    if one_hot:
        with h5py.File(source, "r+") as f:
            y = f["lab_train"][()]
            del f["lab_train"]
            f.create_dataset("lab_train", data=np.eye(4, dtype=np.int64)[y])
    before = source.read_bytes()
    data = load_h5(source, val_fraction=0.25, seed=1)
    assert data.train_rows is not None
    assignments = {0: 3, 5: -1, len(data.train) - 1: 0}
    dest = write_labelled_copy(data, assignments, tmp_path / "out" / "labelled.h5")
    assert source.read_bytes() == before
    expected = file_labels(source)
    for i, c in assignments.items():  # positions in data.train map to the file's rows
        expected[data.train_rows[i]] = c
    assert np.array_equal(file_labels(dest), expected)
    with h5py.File(source) as a, h5py.File(dest) as b:  # everything else is copied as it was
        assert sorted(a) == sorted(b)
        assert all(np.array_equal(a[k][()], b[k][()]) for k in a if k != "lab_train")
    assert (load_h5(dest).train.labels == -1).sum() == 1
    # a run's view with hidden labels is saved as it was seen, plus the assignments
    seen = with_label_fraction(data, 0.5, seed=0)
    dest = write_labelled_copy(seen, {0: 2}, tmp_path / "seen.h5")
    expected = file_labels(source)
    expected[data.train_rows] = seen.train.labels
    expected[data.train_rows[0]] = 2
    assert np.array_equal(file_labels(dest), expected)
    assert (expected == -1).sum() > 0.4 * len(data.train)
    with pytest.raises(OverwriteError, match="that is the source file"):
        write_labelled_copy(data, {0: 1}, source)
    with pytest.raises(ValueError, match="class 9"):
        write_labelled_copy(data, {0: 9}, tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize(
    "key", [True, np.bool_(False), 1.0, "1"], ids=["True", "numpy-False", "float", "text"]
)
def test_a_labelled_copy_takes_only_pair_numbers_as_keys(tmp_path, tiny_data, key):
    save_h5(tmp_path / "src.h5", tiny_data)
    data = load_h5(tmp_path / "src.h5")
    with pytest.raises(ValueError, match="is not a pair number"):  # True was taken as pair 1
        write_labelled_copy(data, {key: 2}, tmp_path / "x.h5")
    with pytest.raises(ValueError, match="is not a class id"):
        write_labelled_copy(data, {0: True}, tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_labels_are_not_written_over_features_extracted_again(tmp_path, tiny_data):
    from core.data.synthetic import make_dataset

    source = tmp_path / "src.h5"
    save_h5(source, tiny_data)
    data = load_h5(source)
    save_h5(source, make_dataset("tiny", seed=7))  # the same layout and sizes, other clips
    with pytest.raises(ValueError, match="features changed since it was loaded"):
        write_labelled_copy(data, {0: 1}, tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()
    assert not list(tmp_path.glob(".*part"))


def test_a_labelled_copy_keeps_a_column_of_class_ids_a_column(tmp_path, tiny_data):
    source = tmp_path / "src.h5"
    save_h5(source, tiny_data)
    with h5py.File(source, "r+") as f:
        y = f["lab_train"][()]
        del f["lab_train"]
        f["lab_train"] = y.reshape(-1, 1)
    data = load_h5(source)
    dest = write_labelled_copy(data, {0: 3, 1: -1}, tmp_path / "x.h5")
    with h5py.File(dest) as f:
        assert f["lab_train"].shape == (len(y), 1)
    expected = y.copy()
    expected[:2] = (3, -1)
    assert np.array_equal(load_h5(dest).train.labels, expected)


def test_written_manifest_is_read_back_by_extract(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    rows = [(str(clips / "a.mp4"), "dog"), (str(clips / "b.mp4"), ""), ("/elsewhere/c.mp4", "cat")]
    path = write_manifest(tmp_path / "labels.csv", rows)
    listing = list_clips(None, path, allow_outside=True)
    assert listing.class_names == ("cat", "dog")
    assert [(str(it.path), it.label) for it in listing.items] == rows
    assert "clips/a.mp4" in path.read_text()  # relative to the manifest's folder


def test_cleaned_copy_relabels_unlabels_and_drops_by_file_row(tmp_path, tiny_data):
    from dataclasses import replace

    from core.data.labels import write_cleaned_copy
    from core.exploration.audit import file_train

    train = tiny_data.train
    paths = tuple(f"/clips/{i:03d}.mp4" for i in range(len(train)))
    source = tmp_path / "src.h5"
    save_h5(source, replace(tiny_data, train=replace(train, paths=paths)), include_val=False)
    before = source.read_bytes()
    data = load_h5(source, val_fraction=0.25, seed=1)
    carved = np.setdiff1d(np.arange(len(train)), data.train_rows)
    relabel = {int(carved[0]): 3, 4: -1, 7: 2}
    drop = [int(carved[1]), 7, 10]  # 7 is relabelled and dropped: dropped wins
    dest = write_cleaned_copy(data, relabel, drop, tmp_path / "out" / "clean.h5")
    assert source.read_bytes() == before
    keep = np.setdiff1d(np.arange(len(train)), drop)
    expected = train.labels.copy()
    for i, c in relabel.items():
        expected[i] = c
    copy = file_train(load_h5(dest))
    assert np.array_equal(copy.labels, expected[keep])
    assert np.array_equal(copy.audio, train.audio[keep])
    assert np.array_equal(copy.visual, train.visual[keep])
    assert copy.paths == tuple(paths[i] for i in keep)  # clip paths kept, aligned with the rows
    with h5py.File(source) as a, h5py.File(dest) as b:  # test (and the rest) copied as it was
        assert all(np.array_equal(a[k][()], b[k][()]) for k in a if not k.endswith("_train"))
    with pytest.raises(OverwriteError, match="that is the source file"):
        write_cleaned_copy(data, {}, [0], source)
    with pytest.raises(ValueError, match="train row 999"):
        write_cleaned_copy(data, {}, [999], tmp_path / "x.h5")
    with pytest.raises(ValueError, match="class 9"):
        write_cleaned_copy(data, {0: 9}, [], tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()
