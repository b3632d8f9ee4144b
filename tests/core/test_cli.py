"""The headless CLI end to end on a small generated dataset, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from avexplorer.cli import main

FAST = ["--epochs", "2", "--batch-size", "32", "--hidden", "32", "--dim", "16", "--threads", "1"]


def test_train_eval_embed(tiny_h5, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(["train", str(tiny_h5), "--out", str(run), "--quiet", "--method", "triplet", *FAST])
        == 0
    )
    assert (run / "model.pt").exists() and (run / "last.pt").exists()
    history = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [0, 1]
    assert json.loads((run / "config.json").read_text())["loss"]["method"] == "triplet"
    capsys.readouterr()

    assert main(["eval", str(run / "model.pt"), str(tiny_h5), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out.strip())
    assert set(scores) == {"a2v", "v2a", "avg", "n"} and scores["n"] == 48
    assert (
        0 <= scores["a2v"] <= 1 and abs(scores["avg"] - (scores["a2v"] + scores["v2a"]) / 2) < 1e-12
    )

    assert (
        main(
            [
                "embed",
                str(run / "model.pt"),
                str(tiny_h5),
                "--split",
                "test",
                "--out",
                str(tmp_path / "e.npz"),
            ]
        )
        == 0
    )
    emb = np.load(tmp_path / "e.npz")
    assert emb["audio"].shape == (48, 16) and emb["audio"].dtype == np.float32
    assert np.allclose(np.linalg.norm(emb["visual"], axis=1), 1, atol=1e-5)
    assert emb["labels"].dtype == np.int64


def test_resume_continues_to_more_epochs(tiny_h5, tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(tiny_h5), "--out", str(run), "--quiet", *FAST]) == 0
    assert (
        main(["train", str(tiny_h5), "--out", str(run), "--quiet", "--resume", "--epochs", "3"])
        == 0
    )
    lines = (run / "history.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [0, 1, 2]


def test_bad_input_is_one_line_and_nonzero(tiny_h5, tmp_path):
    cases = [
        ["eval", str(tmp_path / "none.pt"), str(tiny_h5)],
        ["train", str(tmp_path / "none.h5"), "--out", str(tmp_path / "r")],
        ["train", str(tiny_h5), "--out", str(tmp_path / "r2"), "--resume"],
    ]
    for argv in cases:
        out = subprocess.run(
            [sys.executable, "-m", "avexplorer", *argv], capture_output=True, text=True
        )
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in out.stderr
