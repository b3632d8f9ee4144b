"""The bad-input matrix: every expected failure of a user-facing command is one line naming what
is wrong, exit code 2, never a traceback (and never a NaN printed as a result)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from avexplorer.cli import main
from core.data.dataset import load_h5, save_h5

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


def _with_first(ds, value, dtype=None):
    """The dataset's values with the first replaced by ``value``, as ``dtype``."""
    y = ds[()].astype(dtype or type(value))
    y[0] = value
    return y


def _with_segments(g, seconds, count=None):
    n, d = len(g["lab_test"]), g["audio_test"].shape[1]
    g["audio_seg_test"] = np.zeros((n, 2, d), np.float32)
    if count is not None:
        g["seg_count_test"] = count
    g.attrs["segment_seconds"] = seconds


def _missing_among_many(g):
    del g["visual_test"]
    for i in range(5000):
        g[f"extra_{i:04d}"] = np.zeros(1)


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
    "empty test split": (lambda g: _empty(g, "test"), "the test split cannot be scored: it has 0"),
    # Read silently wrong before: each is now one line naming the field.
    "complex features": (
        lambda g: _replace("audio_train", g["audio_train"][()].astype(np.complex64) + 1j)(g),
        "audio_train holds complex numbers",
    ),
    "an unsigned label of 2^64 - 1 (it wrapped to -1, unlabelled)": (
        lambda g: _replace(
            "lab_train", _with_first(g["lab_train"], np.iinfo(np.uint64).max, np.uint64)
        )(g),
        r"lab_train\[0\] = 18446744073709551615 is far past",
    ),
    "a float label of 1e30": (
        lambda g: _replace("lab_test", _with_first(g["lab_test"], 1e30, np.float64))(g),
        r"lab_test\[0\] = 1e\+30 is far past",
    ),
    "3-D features with zero segments": (
        lambda g: _replace("audio_train", np.zeros((len(g["lab_train"]), 0, 8), np.float32))(g),
        r"audio_train has shape \(\d+, 0, 8\): 0 segments",
    ),
    "features of width 0": (
        lambda g: _replace("visual_test", np.zeros((len(g["lab_test"]), 0), np.float32))(g),
        "visual_test has shape .*: 0 features per pair",
    ),
    "one-hot labels of 0 classes": (
        lambda g: _replace("lab_test", np.zeros((len(g["lab_test"]), 0), np.int64))(g),
        "one-hot rows of 0 classes",
    ),
    "float64 features past float32": (
        lambda g: _replace("audio_test", np.full(g["audio_test"].shape, 1e300))(g),
        r"audio_test\[0, 0\] is 1e\+300, past the float32 range",
    ),
    "empty class_names": (
        _replace("class_names", np.array([], dtype="S1")),
        "class_names is empty",
    ),
    "class_names in 2-D": (
        _replace("class_names", np.array([[b"a", b"b"]] * 2)),
        r"class_names must be \[C\] names",
    ),
    # Internal errors before.
    "a class name that is not UTF-8": (
        lambda g: _replace("class_names", np.array([b"\xff\xfe", b"b", b"c", b"d"]))(g),
        r"class_names\[0\] is not UTF-8 text",
    ),
    "a clip path that is not UTF-8": (
        lambda g: g.__setitem__("path_test", np.array([b"\xff.mp4"] * len(g["lab_test"]))),
        r"path_test\[0\] is not UTF-8 text",
    ),
    "segment_seconds that is text": (
        lambda g: _with_segments(g, "abc"),
        "attribute segment_seconds = 'abc' is not a positive number",
    ),
    "segment_seconds NaN": (
        lambda g: _with_segments(g, "nan"),
        "attribute segment_seconds = 'nan' is not a positive number",
    ),
    "a frame rate of -1": (
        lambda g: g.attrs.__setitem__("frame_rate", "-1"),
        "attribute frame_rate = '-1' is not a positive number",
    ),
    "segment counts of 1.5": (
        lambda g: _with_segments(g, "1.0", np.full(len(g["lab_test"]), 1.5)),
        r"seg_count_test\[0\] is not a whole number",
    ),
    "segment counts that are text": (
        lambda g: _with_segments(g, "1.0", np.array([b"x"] * len(g["lab_test"]))),
        "seg_count_test has non-numeric dtype",
    ),
    "a missing dataset among 5000 others": (
        _missing_among_many,
        r"missing dataset 'visual_test' \(found: .* and \d+ more\)$",
    ),
}


def test_a_column_of_class_ids_is_read_as_ids_not_one_hot(run, tmp_path):
    def as_column(g):
        for s in ("train", "val", "test"):
            _replace(f"lab_{s}", g[f"lab_{s}"][()].reshape(-1, 1))(g)

    column = _copy_with(run / "tiny.h5", tmp_path / "column.h5", as_column)
    ours, theirs = load_h5(run / "tiny.h5"), load_h5(column)
    for s in ("train", "val", "test"):
        assert np.array_equal(theirs.split(s).labels, ours.split(s).labels)


@pytest.mark.parametrize("case", list(H5_CASES))
def test_a_bad_feature_file_is_one_line_and_no_run_folder(run, tmp_path, capsys, case):
    change, message = H5_CASES[case]
    bad = _copy_with(run / "tiny.h5", tmp_path / "bad.h5", change)
    line = one_line_error(["train", str(bad), "--out", str(tmp_path / "out"), *FAST], capsys)
    assert re.search(message, line), line
    assert len(line) < 400, line
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
        (["--fps", "0"], "--fps must be a positive number"),
        (["--fps", "nan"], "--fps must be a positive number"),  # kept one frame per clip
        (["--segments", "nan"], "--segments must be a positive number"),
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


# --- settings that passed validation and failed later (after the run folder was written) -------

SETTINGS = {
    "r_start 0": (["--r-start", "0"], "--r-start: must be > 0, got 0"),
    "r_end 0": (["--r-end", "0"], "--r-end: must be > 0, got 0"),
    "10^9 epochs": (["--epochs", "1000000000"], "--epochs: must be <= 100000"),
    "a batch of 10^12": (["--batch-size", str(10**12)], "--batch-size: must be <= 16384"),
    "10^9 hidden units": (["--hidden", str(10**9)], "--hidden: must be <= 16384"),
    "a 10^9-d embedding": (["--dim", str(10**9)], "--dim: must be <= 16384"),
    "10^12 schedule steps": (["--steps", str(10**12)], "--steps: must be <= 100000"),
    "soft start after 10^15 epochs": (["--soft-start", str(10**15)], "--soft-start: must be <="),
    "a label seed of 10^40": (["--label-seed", str(10**40)], "--label-seed: must be <= 4294967295"),
    "an InfoNCE temperature of 1e-4": (
        ["--method", "infonce", "--infonce-temperature", "1e-4"],
        "--infonce-temperature: must be >= 0.01",
    ),
    "an MPS device on a machine without one": (["--device", "mps"], "has no MPS"),
    "a CUDA device past the machine's": (["--device", "cuda:99"], "CUDA GPU"),
}


@pytest.mark.parametrize("case", list(SETTINGS))
def test_a_setting_that_cannot_run_is_refused_before_anything_is_written(
    run, tmp_path, capsys, case
):
    flags, message = SETTINGS[case]
    out = tmp_path / "out"
    line = one_line_error(["train", str(run / "tiny.h5"), "--out", str(out), *FAST, *flags], capsys)
    assert message in line
    assert not out.exists()


def test_resume_with_an_epoch_count_past_the_limit_is_refused(run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(run / "run", out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    argv = ["train", str(run / "tiny.h5"), "--out", str(out), "--resume", "--epochs", str(10**12)]
    assert "--epochs: must be <= 100000" in one_line_error(argv, capsys)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


# --- NaN or a meaningless score with exit code 0 -----------------------------------------------


def _nan_weights(p):
    p["model"]["head.weight"] = torch.full_like(p["model"]["head.weight"], float("nan"))


def _huge_weights(p):  # finite, but the embeddings overflow
    p["model"] = {k: v * 1e30 if v.is_floating_point() else v for k, v in p["model"].items()}


@pytest.mark.parametrize(
    "argv",
    [["eval"], ["eval", "--json"], ["eval", "--full", "--json"], ["embed", "--out", "{tmp}/e.npz"]],
    ids=["eval", "eval-json", "eval-full-json", "embed"],
)
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_nan_weights, "model weight head.weight holds NaN or infinite values"),
        (_huge_weights, "embeddings that are not finite numbers"),
    ],
    ids=["nan-weights", "overflowing-weights"],
)
def test_weights_that_give_nan_embeddings_are_an_error(
    run, tmp_path, capsys, argv, change, message
):
    payload = _payload(run)
    change(payload)
    torch.save(payload, tmp_path / "model.pt")
    command, *extra = (a.replace("{tmp}", str(tmp_path)) for a in argv)
    line = one_line_error(
        [command, str(tmp_path / "model.pt"), str(run / "tiny.h5"), *extra], capsys
    )
    assert message in line
    assert not (tmp_path / "e.npz").exists()


def _one_pair(g):
    for k in ("audio", "visual", "lab"):
        _replace(f"{k}_test", g[f"{k}_test"][:1])(g)


def _one_class(g):
    _replace("lab_test", np.zeros_like(g["lab_test"][()]))(g)


@pytest.mark.parametrize("extra", [[], ["--json"], ["--full"], ["--full", "--json"]])
@pytest.mark.parametrize(
    ("change", "message"),
    [(_one_pair, "it has 1 pair; MAP needs at least 2"), (_one_class, "are of one class")],
    ids=["one-pair", "one-class"],
)
def test_a_split_whose_map_means_nothing_is_an_error_not_1(
    run, tmp_path, capsys, extra, change, message
):
    bad = _copy_with(run / "tiny.h5", tmp_path / "bad.h5", change)
    line = one_line_error(["eval", str(run / "run" / "model.pt"), str(bad), *extra], capsys)
    assert f"the test split cannot be scored: {message}" in line or message in line


@pytest.fixture(scope="module")
def psd_run(run):
    """A psd run (teacher and optimiser state in its checkpoint) on the tiny data."""
    out = run / "psd"
    argv = ["train", str(run / "tiny.h5"), "--out", str(out), "--quiet", *FAST]
    if not (out / "last.pt").exists():
        assert main(argv) == 0
    return out


def _optimizer_misshapen(p):
    for state in p["optimizer"]["state"].values():
        state["exp_avg"] = torch.zeros(1)  # crashed the fused Adam kernel (SIGSEGV) on resume


RESUME_CASES = {
    "a blank data fingerprint (resumed on other data)": (
        lambda p: p.__setitem__("data_fingerprint", ""),
        "does not record which data it was trained on",
    ),
    "an RNG state that is text": (
        lambda p: p.__setitem__("rng", {"torch": "x", "generator": 3}),
        "rng torch is not a generator state",
    ),
    "optimiser state that is text": (
        lambda p: p.__setitem__("optimizer", {"state": 3, "param_groups": "x"}),
        "its optimizer state does not fit this run",
    ),
    "optimiser without its parameter groups": (
        lambda p: p["optimizer"].__setitem__("param_groups", []),
        "its optimizer state does not fit this run",
    ),
    "optimiser state of the wrong shapes": (_optimizer_misshapen, "has shape (1,)"),
    "a history that is a number": (
        lambda p: p["run"].__setitem__("history", 5),
        "run history is not what a run records",
    ),
    "a history of numbers": (
        lambda p: p["run"].__setitem__("history", [1, 2]),
        "run history is not what a run records",
    ),
    "a best score that is text": (
        lambda p: p["run"].__setitem__("best_avg", "x"),
        "run best_avg is not what a run records",
    ),
    "loss sums that are a list": (
        lambda p: p["run"].__setitem__("loss_sums", [1, 2]),
        "run loss_sums is not what a run records",
    ),
    "a step past the epoch's end": (lambda p: p.__setitem__("step", 10**9), "it stopped at step"),
    "more epochs done than asked for": (
        lambda p: p.__setitem__("epoch", 10**6),
        "--epochs must be at least that",
    ),
    "a teacher of other weights": (
        lambda p: p.__setitem__("teacher", {"x": torch.zeros(1)}),
        "its teacher state does not fit this run",
    ),
    "a version that is text": (lambda p: p.__setitem__("version", "x"), "version is not a number"),
    "a data source that is a number": (
        lambda p: p.__setitem__("data_source", 5),
        "data_source is not text",
    ),
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_a_damaged_checkpoint_is_one_line_on_resume_and_the_run_is_kept(
    run, psd_run, tmp_path, capsys, case
):
    change, message = RESUME_CASES[case]
    out = tmp_path / "run"
    shutil.copytree(psd_run, out)
    payload = torch.load(out / "last.pt", weights_only=True)
    change(payload)
    torch.save(payload, out / "last.pt")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    argv = ["train", str(run / "tiny.h5"), "--out", str(out), "--resume", "--epochs", "2"]
    assert message in one_line_error([*argv, "--quiet"], capsys)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORLD_SIZE": "abc"}, "WORLD_SIZE='abc' is not a whole number"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE=0 is out of range"),
        ({"WORLD_SIZE": "2"}, "WORLD_SIZE=2 but RANK is not set"),
        ({"WORLD_SIZE": "2", "RANK": "5"}, "RANK=5 is not below WORLD_SIZE=2"),
        ({"WORLD_SIZE": "2", "RANK": "0"}, "MASTER_ADDR is not set"),
        ({"RANK": "x"}, "RANK='x' is not a whole number"),
        (
            {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "x"},
            "MASTER_PORT='x' is not a whole number",
        ),
    ],
    ids=["world-text", "world-0", "no-rank", "rank-past-world", "no-address", "rank-text", "port"],
)
def test_a_wrong_torchrun_environment_is_one_line(run, tmp_path, capsys, monkeypatch, env, message):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "out"
    assert message in one_line_error(
        ["train", str(run / "tiny.h5"), "--out", str(out), *FAST], capsys
    )
    assert not out.exists()


@pytest.mark.parametrize("value", ["nan", "-1", "abc", "inf"])
@pytest.mark.parametrize("attr", ["frame_rate", "segment_seconds"])
def test_locate_refuses_a_checkpoint_whose_frame_rate_or_segments_are_no_number(
    run, tmp_path, capsys, attr, value
):
    """A NaN frame rate kept one frame per clip and located with it, silently."""
    payload = _payload(run)
    payload["attrs"] = {"audio_encoder": "logmel-stats", "visual_encoder": "color-grid"}
    payload["attrs"][attr] = value
    torch.save(payload, tmp_path / "model.pt")
    argv = ["locate", str(tmp_path / "model.pt"), str(tmp_path / "clip.mp4"), "--json"]
    line = one_line_error([*argv, "--query", str(tmp_path / "q.wav")], capsys)
    assert f"attribute {attr} = '{value}' is not a positive number" in line


@pytest.mark.parametrize("stream", ["0", "auto"], ids=["streamed", "loaded"])
def test_float64_features_past_float32_are_one_line_streamed_or_loaded(
    run, tmp_path, capsys, stream
):
    def past(g):
        a = g["audio_train"][()].astype(np.float64)
        a[3, 2] = 1e300
        _replace("audio_train", a)(g)

    bad = _copy_with(run / "tiny.h5", tmp_path / "bad.h5", past)
    out = tmp_path / "out"
    argv = ["train", str(bad), "--out", str(out), *FAST, "--stream-above-mb", stream]
    line = one_line_error(argv, capsys)  # one line: no cast warning on stderr
    assert "audio_train[3, 2]" in line and "float32 range" in line
    assert not out.exists()
