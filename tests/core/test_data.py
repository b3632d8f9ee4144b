"""The HDF5 loader: the lineage layout, dequantisation, carving val, and errors naming the field."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from core.data.dataset import DataError, load_h5, save_h5, stratified_split


def write(path, **arrays):
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    return path


def lineage(n=20, test=8, da=4, dv=6, classes=3):
    rng = np.random.default_rng(0)
    return {
        "audio_train": rng.normal(size=(n, da)).astype(np.float32),
        "visual_train": rng.normal(size=(n, dv)).astype(np.float32),
        "lab_train": np.arange(n) % classes,
        "audio_test": rng.normal(size=(test, da)).astype(np.float32),
        "visual_test": rng.normal(size=(test, dv)).astype(np.float32),
        "lab_test": np.arange(test) % classes,
    }


def test_round_trip_keeps_arrays_paths_names_and_attrs(tmp_path, tiny_data):
    from dataclasses import replace

    data = replace(tiny_data, attrs={"audio_encoder": "aisfx-0.1.2"})
    data = replace(
        data, test=replace(data.test, paths=tuple(f"c{i}.mp4" for i in range(len(data.test))))
    )
    save_h5(tmp_path / "d.h5", data)
    back = load_h5(tmp_path / "d.h5")
    assert back.class_names == data.class_names and not back.val_carved
    assert np.array_equal(back.train.audio, data.train.audio)
    assert back.test.paths == data.test.paths and back.attrs["audio_encoder"] == "aisfx-0.1.2"


def test_val_is_carved_from_train_when_absent_stratified_and_seeded(tmp_path):
    path = write(tmp_path / "d.h5", **lineage(n=30))
    a, b = load_h5(path, val_fraction=0.2, seed=1), load_h5(path, val_fraction=0.2, seed=1)
    assert a.val_carved and len(a.train) + len(a.val) == 30 and len(a.val) == 6
    assert np.bincount(a.val.labels).tolist() == [2, 2, 2]
    assert np.array_equal(a.val.audio, b.val.audio)
    assert len(a.test) == 8  # test untouched
    assert a.class_names == ("0", "1", "2")


def test_uint8_features_are_dequantised(tmp_path):
    arrays = lineage()
    arrays["audio_train"] = np.full((20, 4), 192, np.uint8)
    data = load_h5(write(tmp_path / "d.h5", **arrays))
    assert np.allclose(data.train.audio, 0.25) and data.train.audio.dtype == np.float32


def test_one_hot_labels_are_read_as_class_ids(tmp_path):
    arrays = lineage()
    arrays["lab_train"] = np.eye(3, dtype=np.int64)[arrays["lab_train"]]
    data = load_h5(write(tmp_path / "d.h5", **arrays), val_fraction=0.2)
    assert set(data.train.labels.tolist()) == {0, 1, 2}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("visual_test"), "missing dataset 'visual_test'"),
        (lambda a: a.update(lab_train=a["lab_train"][:-1]), "lengths differ"),
        (lambda a: a["audio_train"].__setitem__((3, 1), np.nan), r"audio_train\[3, 1\] is nan"),
        (lambda a: a["visual_test"].__setitem__((0, 0), np.inf), r"visual_test\[0, 0\] is inf"),
        (lambda a: a["lab_test"].__setitem__(2, -1), r"lab_test\[2\] is unlabelled.*must all be"),
        (lambda a: a["lab_train"].__setitem__(2, -2), r"lab_train\[2\] = -2 is out of range"),
        (lambda a: a.update(audio_test=np.zeros((8, 5), np.float32)), "dimensions differ"),
        (lambda a: a.update(audio_train=np.zeros(20, np.float32)), "audio_train must be a 2-D"),
        (lambda a: a.update(lab_train=np.full((20, 3), 1)), r"lab_train\[0\] is not one-hot"),
        (lambda a: a.update(lab_train=np.full(20, 0.5)), "holds non-integer values"),
    ],
)
def test_broken_files_name_the_field(tmp_path, change, message):
    arrays = lineage()
    change(arrays)
    with pytest.raises(DataError, match=message):
        load_h5(write(tmp_path / "d.h5", **arrays))


def test_labels_beyond_class_names_are_out_of_range(tmp_path):
    arrays = lineage()
    arrays["class_names"] = np.array(["a", "b"], dtype=object)
    with pytest.raises(DataError, match=r"lab_train\[2\] = 2 is out of range 0..1"):
        load_h5(write(tmp_path / "d.h5", **arrays))


def test_missing_and_non_hdf5_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_h5(tmp_path / "nope.h5")
    (tmp_path / "x.h5").write_text("not hdf5")
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        load_h5(tmp_path / "x.h5")


def test_stratified_split_keeps_every_class_on_both_sides():
    labels = np.array([0] * 10 + [1] * 2 + [2])
    kept, held = stratified_split(labels, 0.3, seed=0)
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(13))
    assert set(labels[held]) == {0, 1} and set(labels[kept]) == {0, 1, 2}


def test_unlabelled_train_rows_as_minus_one_or_all_zero_one_hot(tmp_path):
    arrays = lineage()
    arrays["lab_train"][[1, 4]] = -1
    ints = load_h5(write(tmp_path / "ints.h5", **arrays), val_fraction=0.2)
    onehot = np.eye(3, dtype=np.int64)[lineage()["lab_train"]]
    onehot[[1, 4]] = 0
    arrays["lab_train"] = onehot
    hot = load_h5(write(tmp_path / "hot.h5", **arrays), val_fraction=0.2)
    for data in (ints, hot):
        assert data.num_classes == 3
        # both unlabelled pairs stay in train: val is carved from labelled pairs only
        assert (data.train.labels == -1).sum() == 2 and not data.train.labelled.all()
        assert (data.val.labels >= 0).all() and len(data.val) == 3  # 1 of 6 per class
        assert len(data.train) + len(data.val) == 20 and data.train_rows is not None
    assert np.array_equal(ints.train.labels, hot.train.labels)


def test_an_unlabelled_one_hot_test_row_names_the_row(tmp_path):
    arrays = lineage()
    arrays["lab_test"] = np.eye(3, dtype=np.int64)[arrays["lab_test"]]
    arrays["lab_test"][5] = 0
    with pytest.raises(DataError, match=r"d.h5: lab_test\[5\] is unlabelled \(1 such rows\)"):
        load_h5(write(tmp_path / "d.h5", **arrays))
