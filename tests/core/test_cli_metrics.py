"""``avexplorer eval --full`` and ``avexplorer compare`` end to end on a small generated dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avexplorer.cli import main
from core.data.dataset import load_h5
from core.evaluation.metrics import cross_modal_metrics
from core.training.checkpoint import load_checkpoint
from core.training.embedding import embed_split

FAST = ["--epochs", "2", "--batch-size", "32", "--hidden", "32", "--dim", "16", "--threads", "1"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    from core.data.dataset import save_h5
    from core.data.synthetic import make_dataset

    root = tmp_path_factory.mktemp("runs")
    data = root / "tiny.h5"
    save_h5(data, make_dataset("tiny", seed=0))
    for method in ("psd", "triplet"):
        args = ["train", str(data), "--out", str(root / method), "--quiet", "--method", method]
        assert main([*args, *FAST]) == 0
    return data, root / "psd" / "model.pt", root / "triplet" / "model.pt"


def test_eval_full_json_has_every_metric_and_no_nan(two_runs, capsys):
    data, psd, _ = two_runs
    capsys.readouterr()
    assert main(["eval", str(psd), str(data), "--json", "--full"]) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "NaN" not in line
    out = json.loads(line)
    for key in ("a2v", "v2a", "avg", "n", "per_class", "recall", "median_rank", "mrr", "map_at_r"):
        assert key in out
    # The numbers are those of core.evaluation.metrics on the checkpoint's own test embeddings.
    ckpt = load_checkpoint(psd)
    split = load_h5(data).test
    audio, visual = embed_split(ckpt.build_model("cpu"), split)
    expected = cross_modal_metrics(audio, visual, split.labels, num_classes=len(ckpt.class_names))
    assert out["a2v"] == pytest.approx(expected.a2v.mean_ap())
    assert set(out["per_class"]["v2a"]) == {ckpt.class_names[c] for c in np.unique(split.labels)}
    assert out["recall"]["a2v"] == {
        str(k): pytest.approx(expected.a2v.recall_at(k)) for k in (1, 5, 10)
    }
    assert out["median_rank"]["v2a"] == expected.v2a.median_rank() >= 1
    assert 0 < out["mrr"]["a2v"] <= 1 and 0 <= out["map_at_r"]["v2a"] <= 1

    # Plain --json keeps exactly the keys it always had, with the same MAP.
    assert main(["eval", str(psd), str(data), "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert set(plain) == {"a2v", "v2a", "avg", "n"} and plain["avg"] == pytest.approx(out["avg"])


def test_eval_full_tables(two_runs, capsys):
    data, psd, _ = two_runs
    capsys.readouterr()
    assert main(["eval", str(psd), str(data), "--full"]) == 0
    text = capsys.readouterr().out
    for label in ("MAP@R", "Recall@10", "median rank", "per-class AP"):
        assert label in text


def test_compare_prints_the_per_class_difference(two_runs, capsys):
    data, psd, triplet = two_runs
    capsys.readouterr()
    assert main(["compare", str(psd), str(triplet), str(data), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for d in ("a2v", "v2a"):
        for name, diff in out["difference"][d].items():
            a, b = out["a"]["per_class"][d][name], out["b"]["per_class"][d][name]
            assert diff == pytest.approx(b - a)
    assert main(["compare", str(psd), str(triplet), str(data)]) == 0
    text = capsys.readouterr().out
    assert "per-class AP" in text and "B-A" in text


def test_compare_refuses_val_splits_carved_differently(two_runs, tmp_path, capsys):
    data, psd, _ = two_runs
    other = tmp_path / "other"
    assert main(["train", str(data), "--out", str(other), "--quiet", "--seed", "7", *FAST]) == 0
    capsys.readouterr()
    code = main(["compare", str(psd), str(other / "model.pt"), str(data), "--split", "val"])
    assert code == 2
    assert "different val splits" in capsys.readouterr().err


def test_eval_and_compare_on_a_train_split_with_unlabelled_pairs_score_the_labelled(
    two_runs, tmp_path, capsys
):
    """A train split holding unlabelled clips (label -1) is scored on its labelled pairs, for
    plain, --full and compare alike, instead of failing inside the metric."""
    import dataclasses

    from core.data.dataset import UNLABELLED, save_h5

    data, psd, triplet = two_runs
    full = load_h5(data)
    labels = full.train.labels.copy()
    labels[::3] = UNLABELLED
    partial = tmp_path / "partial.h5"
    save_h5(
        partial, dataclasses.replace(full, train=dataclasses.replace(full.train, labels=labels))
    )
    n_labelled = int((labels != UNLABELLED).sum())
    capsys.readouterr()
    for extra in ([], ["--full"]):
        assert main(["eval", str(psd), str(partial), "--split", "train", "--json", *extra]) == 0
        assert json.loads(capsys.readouterr().out)["n"] == n_labelled
    assert main(["compare", str(psd), str(triplet), str(partial), "--split", "train"]) == 0
    assert "train split" in capsys.readouterr().out
