"""The bad-input matrix: every expected failure of a user-facing command is one line naming what
is wrong, exit code 2, never a traceback (and never a NaN printed as a result)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from avexplorer.cli import main
from core.data.dataset import save_h5

FAST = ["--epochs", "1", "--batch-size", "32", "--hidden", "16", "--dim", "8", "--threads", "1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A trained run on the tiny data: its feature file and model.pt."""
    from core.data.synthetic import make_dataset

    root = tmp_path_factory.mktemp("run")
    save_h5(root / "tiny.h5", make_dataset("tiny", seed=0))
    argv = ["train", str(root / "tiny.h5"), "--out", str(root / "run"), "--quiet", *FAST]
    assert main([*argv, "--method", "triplet"]) == 0
    return root


def one_line_error(argv: list[str], capsys) -> str:
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    return lines[0]


# --- feature files -----------------------------------------------------------------------------


def _copy_with(src: Path, dst: Path, change) -> Path:
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        for key in f:
            f.copy(key, g)
        change(g)
    return dst


def _replace(key, value):
    def change(g):
        del g[key]
        g[key] = value

    return change


def _empty(g, split):
    for k in ("audio", "visual", "lab"):
        key = f"{k}_{split}"
        _replace(key, np.zeros((0, *g[key].shape[1:]), g[key].dtype))(g)


def _group(key):
    def change(g):
        del g[key]
        g.create_group(key)

    return change


def _external(key):
    def change(g):
        del g[key]
        g[key] = h5py.ExternalLink("elsewhere.h5", "/data")

    return change


H5_CASES = {
    "audio is a group": (_group("audio_train"), "audio_train must be an array"),
    "labels are a group": (_group("lab_train"), "lab_train must be an array"),
    "class_names is a group": (_group("class_names"), "class_names must be an array"),
    "audio links to another file": (_external("audio_train"), "link to another file"),
    "labels link to another file": (_external("lab_test"), "link to another file"),
    "a label id of 10^9": (
        lambda g: (g["lab_train"].__setitem__(0, 10**9), g.__delitem__("class_names")),
        r"lab_train\[0\] = 1000000000 is far past",
    ),
    "a label past class_names": (
        lambda g: g["lab_train"].__setitem__(5, 99),
        r"lab_train\[5\] = 99 is out of range",
    ),
    "NaN features": (
        _replace("visual_test", np.full((48, 1024), np.nan, np.float32)),
        r"visual_test\[0, 0\] is nan",
    ),
    "text labels": (_replace("lab_val", np.array([b"a"] * 48)), "non-numeric"),
    "1-D features": (_replace("audio_train", np.zeros(5, np.float32)), "must be a 2-D"),
    "lengths differ": (_replace("lab_test", np.zeros(3, np.int64)), "lengths differ"),
    "empty test split": (lambda g: _empty(g, "test"), "the test split has 0 pairs"),
}


@pytest.mark.parametrize("case", list(H5_CASES))
def test_a_bad_feature_file_is_one_line_and_no_run_folder(run, tmp_path, capsys, case):
    change, message = H5_CASES[case]
    bad = _copy_with(run / "tiny.h5", tmp_path / "bad.h5", change)
    line = one_line_error(["train", str(bad), "--out", str(tmp_path / "out"), *FAST], capsys)
    assert pytest.importorskip("re").search(message, line), line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "not a readable HDF5 file"),
        (b"just text\n", "not a readable HDF5 file"),
        ("folder", "not a readable HDF5 file"),
    ],
    ids=["missing", "empty", "text", "a folder"],
)
def test_a_file_that_is_no_feature_file(tmp_path, capsys, content, message):
    path = tmp_path / "data.h5"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    assert message in one_line_error(["train", str(path), "--out", str(tmp_path / "o")], capsys)


# --- run folders and outputs -------------------------------------------------------------------


def test_out_is_a_file_or_below_one(run, tmp_path, capsys):
    (tmp_path / "f").write_text("keep")
    data = str(run / "tiny.h5")
    assert "is a file" in one_line_error(["train", data, "--out", str(tmp_path / "f")], capsys)
    line = one_line_error(["train", data, "--out", str(tmp_path / "f" / "run")], capsys)
    assert "cannot create" in line
    model = str(run / "run" / "model.pt")
    line = one_line_error(["embed", model, data, "--out", str(tmp_path / "f" / "e.npz")], capsys)
    assert "is a file, not a folder" in line
    assert "is a folder" in one_line_error(["embed", model, data, "--out", str(tmp_path)], capsys)
    assert (tmp_path / "f").read_text() == "keep"


def test_a_second_train_on_a_used_folder_and_resume_without_a_run(run, tmp_path, capsys):
    data, out = str(run / "tiny.h5"), str(run / "run")
    assert "already holds a run" in one_line_error(["train", data, "--out", out, *FAST], capsys)
    line = one_line_error(["train", data, "--out", out, "--resume", "--force"], capsys)
    assert "--force" in line
    empty = str(tmp_path / "empty")
    assert "nothing to resume" in one_line_error(
        ["train", data, "--out", empty, "--resume"], capsys
    )


# --- checkpoints -------------------------------------------------------------------------------


def _payload(run: Path) -> dict:
    return torch.load(run / "run" / "model.pt", weights_only=True)


def _without(key):
    return lambda p: p.pop(key)


def _shape_changed(p):
    p["model"]["head.weight"] = torch.zeros(3, 3)


CKPT_CASES = {
    "0-byte file": (b"", "not a readable avexplorer checkpoint"),
    "text file": (b"hello\n", "not a readable avexplorer checkpoint"),
    "a plain tensor": (torch.zeros(3), "not an avexplorer checkpoint"),
    "no class_names": (_without("class_names"), "damaged or foreign checkpoint (no 'class_names')"),
    "no model": (_without("model"), "no 'model'"),
    "no config": (_without("config"), "no 'config'"),
    "a config that is no section": (
        lambda p: p.__setitem__("config", {"model": 3}),
        "its config is not understood",
    ),
    "an unknown activation": (
        lambda p: p["config"]["model"].__setitem__("activation", "swish"),
        "model.activation: 'swish' is not one of",
    ),
    "a misshapen weight": (_shape_changed, "its weights do not fit its own model"),
    "a missing weight": (
        lambda p: p["model"].pop("head.bias"),
        "its weights do not fit its own model",
    ),
    "dims that are text": (lambda p: p.__setitem__("audio_dim", "x"), "audio_dim is not a whole"),
    "newer format": (lambda p: p.__setitem__("version", 99), "written by a newer avexplorer"),
}


@pytest.mark.parametrize("command", ["eval", "embed"])
@pytest.mark.parametrize("case", list(CKPT_CASES))
def test_a_bad_checkpoint_is_one_line(run, tmp_path, capsys, case, command):
    change, message = CKPT_CASES[case]
    path = tmp_path / "model.pt"
    if isinstance(change, bytes):
        path.write_bytes(change)
    elif isinstance(change, torch.Tensor):
        torch.save(change, path)
    else:
        payload = _payload(run)
        change(payload)
        torch.save(payload, path)
    argv = [command, str(path), str(run / "tiny.h5")]
    argv += ["--out", str(tmp_path / "e.npz")] if command == "embed" else []
    assert message in one_line_error(argv, capsys)
    assert not (tmp_path / "e.npz").exists()


def test_a_checkpoint_whose_classes_differ_from_the_data_is_refused(run, tmp_path, capsys):
    renamed = _copy_with(
        run / "tiny.h5",
        tmp_path / "renamed.h5",
        _replace("class_names", np.array([f"other{i}" for i in range(4)], dtype=object)),
    )
    for command in ("eval", "embed"):
        argv = [command, str(run / "run" / "model.pt"), str(renamed)]
        argv += ["--out", str(tmp_path / "e.npz")] if command == "embed" else []
        assert "class 0 is" in one_line_error(argv, capsys)
    argv = ["train", str(renamed), "--out", str(run / "run"), "--resume", "--quiet"]
    message = one_line_error(argv, capsys)
    # what differs, and what to do: the file it was trained on is named
    assert "trained on other data (class 0 is" in message
    assert f"resume on the data it was trained on ({run / 'tiny.h5'})" in message


def test_eval_of_an_empty_split_is_an_error_not_nan(run, tmp_path, capsys):
    empty_test = _copy_with(run / "tiny.h5", tmp_path / "e.h5", H5_CASES["empty test split"][0])
    for extra in ([], ["--full"]):
        argv = ["eval", str(run / "run" / "model.pt"), str(empty_test), "--json", *extra]
        assert "test split has no pairs" in one_line_error(argv, capsys)
    argv = ["embed", str(run / "run" / "model.pt"), str(empty_test), "--out", str(tmp_path / "x")]
    assert "test split has no pairs" in one_line_error(argv, capsys)
    assert main(["eval", str(run / "run" / "model.pt"), str(run / "tiny.h5"), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert all(np.isfinite(v) for v in scores.values())


# --- extract -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--device", "cuda"], "CUDA"),
        (["--device", "tpu"], "unknown device"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--fps", "0"], "--fps must be positive"),
        (["--val", "0.7", "--test", "0.5"], "val + test < 1"),
        (["--shard", "3/2"], "need 0 <= i < n"),
        (["--threads", "100000"], "--threads must be between 0"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
    ],
)
def test_extract_option_errors_are_one_line(tmp_path, capsys, extra, message):
    clips = tmp_path / "clips" / "a"
    clips.mkdir(parents=True)
    (clips / "x.mp4").write_bytes(b"not really a video")
    argv = ["extract", str(tmp_path / "clips"), "--out", str(tmp_path / "f.h5"), "--no-cache"]
    assert message in one_line_error([*argv, *extra], capsys)


def test_an_unexpected_error_is_one_line_unless_debug(run, capsys, monkeypatch):
    import avexplorer.commands.eval as eval_command

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(eval_command, "evaluate", broken)
    argv = ["eval", str(run / "run" / "model.pt"), str(run / "tiny.h5")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: a bug (rerun with --debug" in err
    assert "Traceback" not in err
    assert main([*argv, "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


class _Hostile:
    """Unpickling this would run code: it writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_a_hostile_checkpoint_never_executes(run, tmp_path, capsys):
    marker = tmp_path / "marker"
    payload = torch.load(run / "run" / "model.pt", weights_only=True)
    payload["attrs"] = _Hostile(marker)
    torch.save(payload, tmp_path / "model.pt")
    argv = ["eval", str(tmp_path / "model.pt"), str(run / "tiny.h5")]
    assert "not a readable avexplorer checkpoint" in one_line_error(argv, capsys)
    assert not marker.exists()
