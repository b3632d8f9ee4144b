"""The audit: a planted wrong label and a planted swapped picture are found at the top, by rows of
the file's train arrays (the rows the loader carves for val included), and the CLI's JSON."""

from __future__ import annotations

import json
from dataclasses import replace

import h5py
import numpy as np
import pytest

from avexplorer.cli import main
from core.data.dataset import load_h5, save_h5
from core.data.synthetic import SyntheticSpec, make_dataset
from core.exploration.audit import audit_pairs, file_train

# A clean generated set (no label noise, no broken pairs) of 6 well-separated classes, small
# enough to audit in a second.
CLEAN = SyntheticSpec(
    num_classes=6,
    n_train=480,
    n_val=30,
    n_test=60,
    audio_dim=48,
    visual_dim=96,
    latent_dim=16,
    class_spread=1.5,
    label_noise=0.0,
    weak_pair_rate=0.0,
)


def planted(path):
    """A feature file with one flipped label and one picture swapped in from a clip of another
    class; returns (path, flipped row, swapped row, the flipped row's true class)."""
    data = make_dataset(CLEAN, seed=3)
    train = data.train
    labels, visual = train.labels.copy(), train.visual.copy()
    flipped, swapped = 17, 230
    true = int(labels[flipped])
    labels[flipped] = (true + 1) % CLEAN.num_classes
    donor = int(np.flatnonzero(train.labels != train.labels[swapped])[0])
    visual[swapped] = train.visual[donor]
    data = replace(data, train=replace(train, labels=labels, visual=visual))
    save_h5(path, data, include_val=False)  # so that load_h5 carves val from these rows
    return path, flipped, swapped, true


def test_planted_flaws_are_found_first(tmp_path):
    path, flipped, swapped, true = planted(tmp_path / "f.h5")
    data = load_h5(path)
    split = file_train(data)
    assert data.val_carved and len(split) == CLEAN.n_train
    audit = audit_pairs(split.audio, split.visual, split.labels, data.num_classes)
    issues = audit.label_issues()
    assert issues[0].index == flipped and issues[0].suggested == true
    assert issues[0].given == (true + 1) % CLEAN.num_classes
    assert audit.mismatched_pairs()[0].index == swapped
    # the swapped pair is reported as mismatched, not as a label issue
    assert swapped not in [x.index for x in issues]


def test_file_train_is_the_files_rows_in_order(tmp_path):
    path, *_ = planted(tmp_path / "f.h5")
    data = load_h5(path)
    assert data.train_rows is not None and len(data.val) > 0
    split = file_train(data)
    with h5py.File(path) as f:
        np.testing.assert_array_equal(split.audio, f["audio_train"][()])
        np.testing.assert_array_equal(split.visual, f["visual_train"][()])
        np.testing.assert_array_equal(split.labels, f["lab_train"][()])


def test_cli_json_contract(tmp_path, capsys):
    path, flipped, swapped, true = planted(tmp_path / "f.h5")
    # rows the loader carves out for val are audited too: the flipped row is one of them
    carved = np.setdiff1d(np.arange(CLEAN.n_train), load_h5(path).train_rows)
    with h5py.File(path, "r+") as f:  # move the flip onto a carved row
        y = f["lab_train"][()]
        row = int(carved[0])
        y[flipped], true = true, int(y[row])
        y[row] = (true + 2) % CLEAN.num_classes
        f["lab_train"][...] = y
        flipped = row
    argv = [
        "--json",
        "--top",
        "3",
        "--out",
        str(tmp_path / "o"),
        "--cleaned",
        str(tmp_path / "c.h5"),
    ]
    assert main(["audit", str(path), *argv]) == 0
    out = capsys.readouterr()
    result = json.loads(out.out.strip().splitlines()[-1])
    assert set(result) == {"label_issues", "mismatched_pairs"}
    labels, pairs = result["label_issues"], result["mismatched_pairs"]
    assert 1 <= len(labels) <= 3 and 1 <= len(pairs) <= 3
    for x in labels:
        assert set(x) == {"index", "given", "suggested", "score"}
        assert x["given"] != x["suggested"]
    for x in pairs:
        assert set(x) == {"index", "score"}
    for rows in (labels, pairs):
        scores = [x["score"] for x in rows]
        assert scores == sorted(scores, reverse=True)
        assert all(isinstance(x["index"], int) for x in rows)
    assert labels[0] == {**labels[0], "index": flipped, "given": (true + 2) % 6, "suggested": true}
    assert pairs[0]["index"] == swapped
    assert "fold 5 of 5" in out.err  # progress goes to stderr
    written = json.loads((tmp_path / "o" / "audit.json").read_text())
    assert written["label_issues"][0]["given_name"] == f"class_{(true + 2) % 6:02d}"
    # the cleaned copy: listed labels set to their suggested class, listed pairs dropped
    cleaned = file_train(load_h5(tmp_path / "c.h5"))
    assert len(cleaned) == CLEAN.n_train - len(pairs)
    dropped = {x["index"] for x in pairs}
    kept = [i for i in range(CLEAN.n_train) if i not in dropped]
    assert cleaned.labels[kept.index(flipped)] == true


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--top", "0"], "--top must be at least 1"),
        (["--folds", "1"], "--folds must be at least 2"),
    ],
)
def test_bad_flags_are_one_line(tmp_path, capsys, argv, message):
    path, *_ = planted(tmp_path / "f.h5")
    assert main(["audit", str(path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_one_class_is_a_clear_error(tmp_path, capsys):
    data = make_dataset(CLEAN, seed=0)
    one = replace(data.train, labels=np.zeros_like(data.train.labels))
    save_h5(tmp_path / "one.h5", replace(data, train=one))
    assert main(["audit", str(tmp_path / "one.h5")]) == 2
    assert "at least 2 classes" in capsys.readouterr().err
