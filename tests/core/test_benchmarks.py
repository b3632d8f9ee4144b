"""The benchmark code runs (quick mode, small pieces); no timing is asserted here."""

import numpy as np

from benchmarks import evaluation
from benchmarks.__main__ import _merge, render
from benchmarks.common import embedding_like, peak_memory, row
from benchmarks.training import _miner_rows, _soft_triplet_rows, dense_soft_triplet

ROW_KEYS = {"section", "case", "value", "alternative", "ratio", "peak_mb", "target", "met", "notes"}


def test_evaluation_quick_rows_compare_with_sklearn():
    rows = evaluation.run(quick=True)  # asserts equality with the sklearn loop inside
    assert rows and all(set(r) == ROW_KEYS for r in rows)
    assert "sklearn" in rows[0]["alternative"]


def test_dense_soft_triplet_matches_the_loss_module():
    rows = _soft_triplet_rows(quick=True)  # asserts equal loss and gradients inside
    assert rows[0]["section"] == "Training"


def test_all_pairs_semi_hard_reference_matches_the_miner():
    rows = _miner_rows(quick=True)  # asserts equal loss and gradients inside
    assert "semi-hard" in rows[0]["case"]


def test_dense_soft_triplet_without_anchors_is_zero():
    import torch

    za = torch.nn.functional.normalize(torch.randn(4, 3), dim=1)
    loss = dense_soft_triplet(za, za, torch.eye(4), torch.zeros(4, dtype=torch.bool))
    assert float(loss) == 0.0


def test_peak_memory_sees_an_allocation():
    import mmap

    with peak_memory() as peak:
        # Fresh pages, mapped here: an array from malloc may reuse freed memory the process still
        # holds (an extraction earlier in the session keeps up to 512 MB: keep_freed_memory).
        block = mmap.mmap(-1, 160 << 20)
        np.frombuffer(block, dtype=np.uint8).fill(1)
        block.close()
    assert peak.delta_mb > 100


def test_embedding_like_is_unit_norm_and_seeded():
    a, labels = embedding_like(500, d=16, seed=3)
    b, _ = embedding_like(500, d=16, seed=3)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, b)
    assert labels.shape == (500,)


def test_render_writes_one_table_per_section_and_marks_missed_targets():
    rows = [
        row("A", "case 1", "1 s", "2 s", "2x", 10.0, "< 1 s", False),
        row("B", "case|2", "3 ms"),
        row("B", "two targets", "1", target="a; b", met=[True, False]),
    ]
    text = render(rows, {"cpu": "x"}, {"a": 1.0}, {"b": "boom"}, quick=True)
    assert "## A" in text and "## B" in text
    assert "**no**" in text and "case\\|2" in text
    assert "b FAILED: boom" in text
    assert "yes / **no**" in text


def test_rerunning_some_sections_keeps_the_other_sections_rows():
    before = {
        "rows": [
            row("Evaluation", "map", "1 s") | {"module": "evaluation"},
            row("Training", "old epoch", "9 s") | {"module": "training"},
            row("Projection", "pca", "5 ms") | {"module": "projection"},
        ],
        "timings": {"evaluation": 50.0, "training": 130.0, "projection": 100.0},
    }
    new = [row("Training", "new epoch", "3 s") | {"module": "training"}]
    rows, timings, errors = _merge(before, ["training"], new, {"training": 120.0}, {})
    assert [r["case"] for r in rows] == ["map", "new epoch", "pca"]
    assert timings == {"evaluation": 50.0, "training": 120.0, "projection": 100.0}
    assert errors == {}


def test_audit_benchmark_plants_known_flaws_and_renders_without_the_peer():
    from benchmarks.audit import inject, precision_at_k
    from benchmarks.audit import render as render_audit
    from core.data.synthetic import make_dataset

    data = make_dataset("tiny", seed=0)
    flawed, wrong, broken, true = inject(data, 0.1, 0.1, seed=0)
    assert len(wrong) and len(broken) and not set(wrong) & set(broken)
    assert (flawed.train.labels[wrong] != true[wrong]).all()  # every planted label is wrong
    for i in broken:  # every swapped picture is another class's clip
        donor = np.flatnonzero((data.train.visual == flawed.train.visual[i]).all(axis=1))
        assert len(donor) and (true[donor] != true[i]).all()
    assert precision_at_k(np.concatenate([wrong, broken]), wrong) == 1.0
    scores = {"labels_p_at_k": 0.9, "labels_recall": 0.8, "suggested_right": None}
    scores |= {"pairs_p_at_k": 1.0, "pairs_recall": 0.7}
    case = {"case": "x", "pairs": 10, "wrong_labels": 1, "broken_pairs": 1, "ours": scores}
    text = render_audit({"cases": [{**case, "cleanlab": None}]})
    assert "| x | 10 | 1 | 1 | **0.90** | - |" in text and "not installed" in text
