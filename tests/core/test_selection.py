import csv
import json
import os

import numpy as np
import pytest

from core.atomic import OverwriteError, WriteError
from core.data.dataset import load_h5
from core.exploration.selection import (
    PolygonIndex,
    Selection,
    SelectionError,
    mean_pairwise_cosine,
    mean_query,
    points_in_box,
    points_in_polygon,
    summary,
)
from core.exploration.selection_files import export, fingerprint, load_named, read_named, save_named


def test_points_in_polygon_matches_a_brute_force_ray_cast_on_a_concave_lasso():
    rng = np.random.default_rng(0)
    xy = rng.uniform(-1.2, 1.2, size=(20_000, 2))
    # A star: concave, with vertices at shared y values and a flat edge.
    angles = np.linspace(0, 2 * np.pi, 11)[:-1]
    radius = np.where(np.arange(10) % 2 == 0, 1.0, 0.4)
    star = np.c_[radius * np.cos(angles), radius * np.sin(angles)]
    star = np.vstack([star, [[0.5, -0.9], [-0.5, -0.9]]])  # a flat bottom edge
    got = points_in_polygon(xy, star)

    inside = np.zeros(len(xy), bool)  # the textbook loop, point by point
    for i, (x, y) in enumerate(xy):
        j = len(star) - 1
        for k in range(len(star)):
            (xk, yk), (xj, yj) = star[k], star[j]
            if (yk > y) != (yj > y) and x < (xj - xk) * (y - yk) / (yj - yk) + xk:
                inside[i] = not inside[i]
            j = k
    assert 0.1 < got.mean() < 0.9
    assert np.array_equal(got, inside)
    index = PolygonIndex(xy)  # sorted once, for many lassos on one map
    assert np.array_equal(index.inside(star), inside)
    assert np.array_equal(index.inside(star * 0.5), points_in_polygon(xy, star * 0.5))


def test_points_in_polygon_and_box_edge_cases():
    xy = np.array([[0.5, 0.5], [2.0, 2.0], [0.1, 0.9]])
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]])
    assert points_in_polygon(xy, square).tolist() == [True, False, True]
    assert not points_in_polygon(xy, square[:2]).any()  # a line encloses nothing
    assert points_in_box(xy, (1, 1), (0, 0)).tolist() == [True, False, True]  # any corner order


def test_selection_modes_and_sides():
    n = 6
    a = Selection.of_clips(n, [0, 1, 2])
    b = Selection.of_points(np.r_[np.zeros(n, bool), np.eye(n, dtype=bool)[2]])  # visual of 2
    assert a.combine(b, "add").equals(a)
    minus = a.combine(b, "subtract")
    assert minus.audio.tolist()[:3] == [True] * 3 and minus.visual.tolist()[:3] == [1, 1, 0]
    assert minus.count == 5 and minus.clips().tolist() == [0, 1, 2]
    assert a.combine(b, "replace").equals(b)
    assert not a.combine(a, "subtract")
    with pytest.raises(SelectionError, match=r"clip index 9 is out of range 0\.\.5"):
        Selection.of_clips(n, [9])
    with pytest.raises(SelectionError, match="mode"):
        a.combine(b, "xor")


def test_summary_counts_split_pairs_and_similarity():
    labels = np.array([0, 0, 1, 1, 2])
    rng = np.random.default_rng(1)
    audio = rng.normal(size=(5, 8))
    visual = rng.normal(size=(5, 8))
    audio /= np.linalg.norm(audio, axis=1, keepdims=True)  # unit rows, as the app keeps them
    visual /= np.linalg.norm(visual, axis=1, keepdims=True)
    sel = Selection(np.array([1, 1, 1, 0, 0], bool), np.array([1, 0, 0, 1, 0], bool))
    s = summary(sel, labels, 3, audio, visual)
    assert s.audio_per_class.tolist() == [2, 1, 0] and s.visual_per_class.tolist() == [1, 1, 0]
    assert s.split_pairs.tolist() == [1, 2, 3] and s.audio_only == 2
    rows = np.vstack([audio[:3], visual[[0, 3]]])
    u = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    sims = u @ u.T
    expected = (sims.sum() - np.trace(sims)) / (5 * 4)
    assert s.mean_similarity == pytest.approx(expected)
    assert mean_pairwise_cosine(rows * 3.0) == pytest.approx(expected)  # any lengths
    assert mean_pairwise_cosine(rows[:1]) is None


def test_mean_query_is_the_unit_mean_of_the_selected_rows():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], np.float32)
    q = mean_query(x, np.array([True, True, False]))
    assert np.allclose(q, [np.sqrt(0.5), np.sqrt(0.5)])
    assert mean_query(x, np.array([True, False, True])) is None  # they cancel out
    assert mean_query(x, np.zeros(3, bool)) is None


def test_exports_round_trip_and_never_touch_the_source(tmp_path, tiny_h5):
    data = load_h5(tiny_h5)
    n = len(data.test)
    sel = Selection.of_clips(n, [1, 4, 7]).combine(
        Selection(np.eye(n, dtype=bool)[9], np.zeros(n, bool)), "add"
    )
    names = {i: f"clip{i}" for i in sel.clips()}
    with open(export("csv", tmp_path / "sel.csv", sel, data, names)) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["index"]) for r in rows] == [1, 4, 7, 9]
    assert rows[3]["audio"] == "1" and rows[3]["visual"] == "0"
    assert rows[0]["class"] == data.class_names[data.test.labels[1]]

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(n, 4)).astype(np.float32), rng.normal(size=(n, 4)).astype(np.float32)
    npz = np.load(export("npz", tmp_path / "sel.npz", sel, data, names, (*emb, 3)))
    assert np.array_equal(npz["audio"], emb[0][[1, 4, 7, 9]])
    assert npz["labels"].tolist() == data.test.labels[[1, 4, 7, 9]].tolist()
    assert int(npz["epochs_trained"]) == 3

    sub = load_h5(export("h5", tmp_path / "sel.h5", sel, data, names))
    assert len(sub.test) == 4 and np.array_equal(sub.test.audio, data.test.audio[[1, 4, 7, 9]])
    assert len(sub.train) == len(data.train) and sub.class_names == data.class_names
    before = tiny_h5.read_bytes()
    with pytest.raises(OverwriteError, match="that is the open dataset"):
        export("h5", tiny_h5, sel, data, names)
    assert tiny_h5.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "sel.csv",
        "sel.h5",
        "sel.npz",
        "tiny.h5",
    ]  # no temporary file left


def test_an_export_to_an_unwritable_place_says_so_and_writes_nothing(tmp_path, tiny_h5):
    data = load_h5(tiny_h5)
    sel = Selection.of_clips(len(data.test), [0, 1])
    names = {0: "a", 1: "b"}
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("a file, not a folder")
    with pytest.raises(WriteError, match=f"{not_a_folder}: is a file"):
        export("csv", not_a_folder / "sel.csv", sel, data, names)
    if os.geteuid() == 0:
        return  # root writes into read-only folders
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        for kind in ("csv", "h5"):
            with pytest.raises(WriteError, match=f"{locked}/sel.{kind}: could not be written"):
                export(kind, locked / f"sel.{kind}", sel, data, names)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_a_failed_feature_file_write_leaves_nothing(tmp_path, tiny_h5, monkeypatch):
    import core.data.dataset

    data = load_h5(tiny_h5)

    def broken(f, name, split):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(core.data.dataset, "write_split", broken)
    sel = Selection.of_clips(len(data.test), [0])
    with pytest.raises(WriteError, match="No space left on device"):
        export("h5", tmp_path / "out.h5", sel, data, {0: "a"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.h5"]


def test_named_selections_round_trip_and_belong_to_their_dataset(tmp_path):
    labels = np.array([0, 1, 0, 1])
    key = fingerprint(labels, ("a", "b"))
    path = tmp_path / "d.h5.selections.json"
    sel = Selection(np.array([1, 0, 0, 1], bool), np.array([0, 0, 1, 1], bool))
    save_named(path, "odd ones", sel, key)
    save_named(path, "all", Selection.of_clips(4, range(4)), key)
    assert sorted(read_named(path)["selections"]) == ["all", "odd ones"]
    assert load_named(path, "odd ones", key).equals(sel)
    other = fingerprint(np.array([1, 1, 0, 1]), ("a", "b"))
    with pytest.raises(SelectionError, match="another dataset"):
        load_named(path, "all", other)
    with pytest.raises(SelectionError, match="another dataset"):
        save_named(path, "x", sel, other)
    with pytest.raises(SelectionError, match="no selection named 'nope'"):
        load_named(path, "nope", key)
    path.write_text(json.dumps({"selections": {"bad": {"audio": [7]}}, "fingerprint": key}))
    with pytest.raises(SelectionError, match="damaged"):
        load_named(path, "bad", key)
