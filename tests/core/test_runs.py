"""Run folders and written files are never lost or mixed; a failed run never reports success."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from core.atomic import WriteError, atomic_write
from core.errors import UserError
from core.rundir import RunDirError, open_run_dir
from core.training.checkpoint import load_checkpoint
from core.training.events import RunStarted
from core.training.loop import NonFiniteError, train
from tests.core.test_training import small as small_config

ROOT = Path(__file__).resolve().parents[2]


def small(method="triplet", epochs=2, **over):
    return small_config(method, epochs, **({"snapshot_every": 0} | over))


def history_epochs(run: Path) -> list[int]:
    return [json.loads(x)["epoch"] for x in (run / "history.jsonl").read_text().splitlines()]


def stray_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".part")))


def fail_with_enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# --- one writer per run folder ---------------------------------------------------------------


def test_a_second_run_on_a_locked_folder_is_refused_until_the_first_ends(tiny_data, tmp_path):
    first = train(small(), tiny_data, out_dir=tmp_path / "run")
    assert isinstance(next(first), RunStarted)  # holds the lock from here on
    with pytest.raises(RunDirError, match="another run is writing"):
        next(train(small(), tiny_data, out_dir=tmp_path / "run", overwrite=True))
    list(first)
    assert history_epochs(tmp_path / "run") == [1, 2]
    open_run_dir(tmp_path / "run", resume_from=tmp_path / "run" / "last.pt").close()


def test_no_clean_up_of_the_folder_lets_a_second_run_in(tiny_data, tmp_path):
    """The lock is on the folder itself: deleting every hidden file in it (a lock file, once)
    while the first run writes cannot let a second ``--force`` wipe the run under it."""
    first = train(small(), tiny_data, out_dir=tmp_path / "run")
    assert isinstance(next(first), RunStarted)
    for p in (tmp_path / "run").iterdir():
        if p.name.startswith("."):
            p.unlink()
    with pytest.raises(RunDirError, match="another run is writing"):
        next(train(small(), tiny_data, out_dir=tmp_path / "run", overwrite=True))
    list(first)
    assert history_epochs(tmp_path / "run") == [1, 2]
    assert (tmp_path / "run" / "last.pt").exists()


def test_the_lock_dies_with_a_crashed_process(tmp_path):
    crash = (
        "import os, sys; from core.rundir import open_run_dir; "
        "open_run_dir(sys.argv[1]); os.kill(os.getpid(), 9)"
    )
    out = subprocess.run([sys.executable, "-c", crash, str(tmp_path / "run")], cwd=ROOT)
    assert out.returncode == -9
    open_run_dir(tmp_path / "run").close()  # empty but for the lock file: free to use


# --- a new run never reuses a folder with something in it -------------------------------------


@pytest.mark.parametrize(
    ("leftover", "message"),
    [
        ({"last.pt": b"x"}, "already holds a run; pass --resume"),
        ({"model.pt": b"x", "history.jsonl": b"{}\n"}, "not empty"),  # last.pt deleted
        ({"config.json": b"{}"}, "not empty"),  # the user's own file
        ({"notes.txt": b"mine"}, "not empty"),
    ],
)
def test_a_used_folder_is_refused_and_left_untouched(tiny_data, tmp_path, leftover, message):
    for name, content in leftover.items():
        (tmp_path / name).write_bytes(content)
    with pytest.raises(RunDirError, match=message):
        next(train(small(), tiny_data, out_dir=tmp_path))
    for name, content in leftover.items():
        assert (tmp_path / name).read_bytes() == content


def test_force_replaces_the_old_run_files_only_and_starts_a_fresh_history(tiny_data, tmp_path):
    list(train(small(epochs=3), tiny_data, out_dir=tmp_path))
    (tmp_path / "notes.txt").write_text("mine")
    list(train(small(epochs=2, seed=5), tiny_data, out_dir=tmp_path, overwrite=True))
    assert history_epochs(tmp_path) == [1, 2]
    assert load_checkpoint(tmp_path / "last.pt").config.seed == 5
    assert load_checkpoint(tmp_path / "model.pt").config.seed == 5
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_out_pointing_at_a_file_is_a_one_line_error(tiny_data, tmp_path):
    (tmp_path / "f").write_text("keep")
    with pytest.raises(RunDirError, match="is a file"):
        next(train(small(), tiny_data, out_dir=tmp_path / "f"))
    with pytest.raises(RunDirError, match="cannot create"):
        next(train(small(), tiny_data, out_dir=tmp_path / "f" / "run"))
    assert (tmp_path / "f").read_text() == "keep"


# --- resume: same data only, and the history never repeats an epoch ---------------------------


def test_resume_on_other_data_with_the_same_shapes_is_refused(tiny_data, tmp_path):
    list(train(small(epochs=1), tiny_data, out_dir=tmp_path))
    other = replace(tiny_data, train=replace(tiny_data.train, audio=tiny_data.train.audio + 1))
    with pytest.raises(UserError, match="trained on other data"):
        next(train(small(), other, out_dir=tmp_path, resume_from=tmp_path / "last.pt"))
    assert history_epochs(tmp_path) == [1]


def test_resume_into_another_used_folder_is_refused(tiny_data, tmp_path):
    list(train(small(epochs=1), tiny_data, out_dir=tmp_path / "a"))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("x")
    with pytest.raises(RunDirError, match="not the folder of"):
        next(train(small(), tiny_data, out_dir=tmp_path / "b", resume_from=tmp_path / "a/last.pt"))


def test_a_failed_save_keeps_the_last_good_files_and_resume_records_each_epoch_once(
    tiny_data, tmp_path, monkeypatch
):
    import core.training.checkpoint

    list(train(small(epochs=1), tiny_data, out_dir=tmp_path))
    before = (tmp_path / "last.pt").read_bytes()
    monkeypatch.setattr(core.training.checkpoint.torch, "save", fail_with_enospc)
    with pytest.raises(WriteError, match="No space left"):
        list(train(small(epochs=3), tiny_data, out_dir=tmp_path, resume_from=tmp_path / "last.pt"))
    assert (tmp_path / "last.pt").read_bytes() == before
    assert stray_files(tmp_path) == [] and history_epochs(tmp_path) == [1]
    monkeypatch.undo()
    list(train(small(epochs=3), tiny_data, out_dir=tmp_path, resume_from=tmp_path / "last.pt"))
    assert history_epochs(tmp_path) == [1, 2, 3]


# --- atomic writes -------------------------------------------------------------------------


def test_a_write_that_fails_leaves_the_previous_file_and_no_temp_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with (
        pytest.raises(WriteError, match=r"out\.txt: could not be written"),
        atomic_write(target, "w") as f,
    ):
        f.write("half of the new")
        fail_with_enospc()
    assert target.read_text() == "old" and stray_files(tmp_path) == []


def test_an_error_in_the_writer_also_leaves_the_previous_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(ZeroDivisionError), atomic_write(target, "w") as f:
        f.write("new")
        _ = 1 / 0
    assert target.read_text() == "old" and stray_files(tmp_path) == []


def test_written_files_get_the_usual_permissions(tmp_path):
    with atomic_write(tmp_path / "a.txt", "w") as f:
        f.write("x")
    (tmp_path / "b.txt").write_text("x")
    assert (tmp_path / "a.txt").stat().st_mode == (tmp_path / "b.txt").stat().st_mode


# --- a failed run never reports success ------------------------------------------------------


@pytest.mark.parametrize("method", ["triplet", "infonce"])
def test_non_finite_loss_or_weights_stop_the_run_naming_the_step(tiny_data, tmp_path, method):
    over = {"optim.lr": 1e30}  # (a tiny InfoNCE temperature is refused by the config)
    with pytest.raises(NonFiniteError, match=r"epoch 1, step \d|end of epoch 1") as err:
        list(train(small(method, epochs=2, **over), tiny_data, out_dir=tmp_path))
    assert "not finite" in str(err.value) or "not a finite" in str(err.value)
    assert not (tmp_path / "model.pt").exists() and not (tmp_path / "last.pt").exists()


@pytest.mark.parametrize("split", ["val", "test"])
@pytest.mark.parametrize("size", [0, 1])
def test_an_empty_or_one_pair_split_is_an_error_before_anything_is_written(
    tiny_data, tmp_path, split, size
):
    few = replace(tiny_data, **{split: tiny_data.split(split).subset(np.arange(size))})
    with pytest.raises(UserError, match=f"the {split} split cannot be scored: it has {size} pair"):
        next(train(small(), few, out_dir=tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_sigterm_stops_the_cli_run_like_ctrl_c_and_it_resumes(tiny_h5, tmp_path):
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "avexplorer", "train", str(tiny_h5), "--out", str(run)]
    fast = ["--quiet", "--batch-size", "32", "--hidden", "32", "--dim", "16", "--threads", "1"]
    proc = subprocess.Popen(
        [*argv, *fast, "--epochs", "1000", "--method", "triplet"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout.readline().startswith("triplet: ")  # the settings it resolved
    assert proc.stdout.readline().startswith("epoch 1:")  # running, past its first save
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "continue with --resume" in err
    stopped_at = load_checkpoint(run / "last.pt")
    assert 1 <= stopped_at.epoch < 1000
    done = subprocess.run(
        [*argv, "--resume", "--epochs", str(stopped_at.epoch + 1), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert history_epochs(run) == list(range(1, stopped_at.epoch + 2))


def test_the_checkpoint_records_what_data_it_was_trained_on(tiny_data, tmp_path):
    list(train(small(epochs=1), tiny_data, out_dir=tmp_path))
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt.data_fingerprint == tiny_data.fingerprint
    assert torch.isfinite(ckpt.build_model().audio_encoder[0].weight).all()


def test_embed_that_fails_to_write_keeps_the_earlier_file(tiny_h5, tmp_path, monkeypatch, capsys):
    from avexplorer.cli import main

    run, out = tmp_path / "run", tmp_path / "emb.npz"
    assert (
        main(
            [
                "train",
                str(tiny_h5),
                "--out",
                str(run),
                "--quiet",
                "--method",
                "triplet",
                "--epochs",
                "1",
                "--hidden",
                "32",
                "--dim",
                "16",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    out.write_bytes(b"earlier")

    def half_then_full(f, **arrays):
        f.write(b"PK half an archive")
        fail_with_enospc()

    monkeypatch.setattr(np, "savez_compressed", half_then_full)
    capsys.readouterr()
    assert main(["embed", str(run / "model.pt"), str(tiny_h5), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "emb.npz: could not be written (No space left on device)" in err
    assert out.read_bytes() == b"earlier" and stray_files(tmp_path) == []


def test_a_front_ends_record_of_the_run_may_precede_it(tiny_data, tmp_path):
    (tmp_path / "run.json").write_text("{}")  # the app writes its record first
    list(train(small(epochs=1), tiny_data, out_dir=tmp_path))
    assert (tmp_path / "run.json").read_text() == "{}" and history_epochs(tmp_path) == [1]
