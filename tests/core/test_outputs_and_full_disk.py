"""Outputs never replace inputs, a full disk is one line, and no temporary file outlives a write.

An output named as one of a command's own inputs (``embed``'s checkpoint or feature file,
``extract``'s manifest, a clip, a ``--merge`` part) is refused in one line with exit code 2 and
the input untouched; ``extract`` replaces only its own earlier output unless ``--force``. A full
disk, however the writer reports it (h5py and torch raise RuntimeError, sometimes without the
OS's reason), is the documented one-line error, with no temporary file left; a temporary file
left by a process killed mid-write is removed by the next write of that file, and by a new run
in its folder.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch

from avexplorer.cli import main
from core.atomic import WriteError, atomic_path, atomic_write, open_h5, remove_stale_temps
from core.data.dataset import save_h5
from tests.core.features_fixtures import make_video

ROOT = Path(__file__).resolve().parents[2]
CHEAP = ["--audio-encoder", "logmel-stats", "--visual-encoder", "color-grid"]
FAST = ["--epochs", "1", "--batch-size", "32", "--hidden", "16", "--dim", "8", "--threads", "1"]
FULL = "could not be written (No space left on device); any previous file there is unchanged"


def one_line_error(argv: list[str], capsys) -> str:
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    return lines[0]


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if p.name.endswith((".tmp", ".part")))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A trained run on the tiny data: its feature file and model.pt."""
    from core.data.synthetic import make_dataset

    root = tmp_path_factory.mktemp("run")
    save_h5(root / "tiny.h5", make_dataset("tiny", seed=0))
    argv = ["train", str(root / "tiny.h5"), "--out", str(root / "run"), "--quiet", *FAST]
    assert main([*argv, "--method", "triplet"]) == 0
    return root


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two classes of three short clips, with a manifest listing them."""
    root = tmp_path_factory.mktemp("clips")
    rows = ["path,label"]
    for label, tone in (("bell", 440.0), ("drum", 880.0)):
        (root / label).mkdir()
        for i in range(3):
            make_video(root / label / f"{label}{i}.mp4", 1.5, tone=tone + 40 * i)
            rows.append(f"{label}/{label}{i}.mp4,{label}")
    (root / "list.csv").write_text("\n".join(rows) + "\n")
    return root


def _extract(clips: Path, out: Path, *extra: str) -> list[str]:
    split = ["--val", "0.34", "--test", "0.34"]
    return [
        "extract",
        str(clips),
        "--out",
        str(out),
        "--no-cache",
        "--quiet",
        *CHEAP,
        *split,
        *extra,
    ]


# --- outputs over inputs ------------------------------------------------------------------------


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
@pytest.mark.parametrize("target", ["checkpoint", "features"])
def test_embed_never_writes_over_what_it_reads(run, tmp_path, capsys, target, link):
    src = {"checkpoint": run / "run" / "model.pt", "features": run / "tiny.h5"}[target]
    copy = tmp_path / src.name
    shutil.copy2(src, copy)  # the module's run stays intact for the other cases
    ckpt = copy if target == "checkpoint" else run / "run" / "model.pt"
    data = copy if target == "features" else run / "tiny.h5"
    out = copy
    if link == "symlink":
        out = tmp_path / "emb.npz"
        out.symlink_to(copy)
    elif link == "hardlink":
        out = tmp_path / "emb.npz"
        os.link(copy, out)
    before = copy.read_bytes()
    line = one_line_error(["embed", str(ckpt), str(data), "--out", str(out)], capsys)
    what = "the checkpoint it reads" if target == "checkpoint" else "the feature file it reads"
    assert f"{out}: that is {what}" in line
    assert copy.read_bytes() == before and temp_files(tmp_path) == []


def test_extract_never_writes_over_its_manifest_or_a_clip(clips, tmp_path, capsys):
    manifest, clip = clips / "list.csv", clips / "bell" / "bell1.mp4"
    before = {p: p.read_bytes() for p in (manifest, clip)}
    for out, what in ((manifest, "the manifest"), (clip, "one of the clips")):
        argv = _extract(clips, out, "--manifest", str(manifest))
        for extra in ([], ["--force"]):  # never, even forced
            assert f"{out}: that is {what}" in one_line_error([*argv, *extra], capsys)
    assert {p: p.read_bytes() for p in before} == before
    assert temp_files(clips) == []


def test_extract_replaces_its_own_output_but_no_other_file_unless_forced(
    clips, run, tmp_path, capsys
):
    out = tmp_path / "features.h5"
    assert main(_extract(clips, out)) == 0
    assert main(_extract(clips, out)) == 0  # a re-run replaces its own earlier output
    other = tmp_path / "other.h5"
    shutil.copy2(run / "tiny.h5", other)  # someone's feature file, not from these clips
    notes = tmp_path / "notes.h5"
    notes.write_text("my notes")
    for target in (other, notes):
        before = target.read_bytes()
        line = one_line_error(_extract(clips, target), capsys)
        assert f"{target}: already holds" in line and "--force" in line
        assert target.read_bytes() == before
    assert main(_extract(clips, other, "--force")) == 0
    with h5py.File(other) as f:
        assert f.attrs["clips"] == str(clips.resolve())


def test_merge_never_writes_over_a_part(clips, tmp_path, capsys):
    parts = [tmp_path / f"part{i}.h5" for i in range(2)]
    for i, part in enumerate(parts):
        assert main(_extract(clips, part, "--shard", f"{i}/2")) == 0
    before = parts[1].read_bytes()
    merge = ["extract", "--merge", *map(str, parts), "--out", str(parts[1])]
    for extra in ([], ["--force"]):
        line = one_line_error([*merge, *extra], capsys)
        assert f"{parts[1]}: that is one of the --merge parts" in line
    assert parts[1].read_bytes() == before
    merged = tmp_path / "all.h5"
    assert main(["extract", "--merge", *map(str, parts), "--out", str(merged)]) == 0
    assert main(["extract", "--merge", *map(str, parts), "--out", str(merged)]) == 0  # again


# --- a full disk ---------------------------------------------------------------------------------


def _torch_full(f) -> None:
    # what torch.save raised on a full tmpfs: no errno, no word of the disk
    raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")


def _h5py_full(f) -> None:
    raise RuntimeError(
        "Can't decrement id ref count (file write failed: time = ..., errno = 28, "
        "error message = 'No space left on device', buf = 0x1, total write size = 1536)"
    )


class _Statvfs:
    """``os.statvfs`` of a disk with ``free`` bytes left."""

    def __init__(self, free: int) -> None:
        self.free = free

    def __call__(self, path):
        class Result:
            f_frsize = 4096
            f_bavail = f_bfree = self.free // 4096

        return Result()


@pytest.mark.parametrize(
    ("writer", "free", "full"),
    [
        (_torch_full, 0, True),  # a RuntimeError on a disk with no room: the disk is full
        (_h5py_full, 10 << 30, True),  # says errno 28 itself
        (_torch_full, 10 << 30, False),  # the same error with room to spare: a bug, raised as is
    ],
)
def test_a_runtime_error_from_a_full_disk_is_the_one_line_write_error(
    tmp_path, monkeypatch, writer, free, full
):
    import core.atomic

    target = tmp_path / "last.pt"
    target.write_bytes(b"the previous checkpoint")
    monkeypatch.setattr(core.atomic.os, "statvfs", _Statvfs(free))
    raised = WriteError if full else RuntimeError
    with pytest.raises(raised) as e, atomic_write(target) as f:
        writer(f)
    if full:
        assert str(e.value) == f"{target}: {FULL}"
    assert target.read_bytes() == b"the previous checkpoint" and temp_files(tmp_path) == []


def test_an_h5py_write_error_is_one_line_naming_the_file_not_a_temporary_one(tmp_path):
    target = tmp_path / "features.h5"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "Can't synchronously write data (file write failed:\n...)")

    with pytest.raises(WriteError) as e, atomic_path(target) as tmp, open_h5(tmp) as f:
        f.create_dataset("x", data=[1, 2, 3])
        full()
    assert str(e.value) == f"{target}: {FULL}"
    assert temp_files(tmp_path) == []


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a 512 kB file system that is all but full (root only: it mounts a tmpfs)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small file system here (needs root)")
    try:
        filler = disk / "filler"
        with open(filler, "wb") as f, pytest.raises(OSError):
            f.write(b"\0" * (1 << 20))
        filler.write_bytes(b"\0" * (filler.stat().st_size - (4 << 10)))  # one page left
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _cli(*argv: str) -> subprocess.CompletedProcess:
    """The command in its own process: a crash is a return code there, not the test's end."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "avexplorer", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("command", ["extract", "extract --segments", "train", "embed"])
def test_a_full_disk_is_one_line_and_exit_2(full_disk, clips, run, command):
    out = full_disk / ("f.h5" if command.startswith("extract") else "out")
    if command.startswith("extract"):
        argv = _extract(clips, out)[1:] + command.split()[1:]
        proc = _cli("extract", *argv)
    elif command == "train":
        proc = _cli("train", str(run / "tiny.h5"), "--out", str(out), "--quiet", *FAST)
        out = out / "model.pt"  # the first file too large for the disk
    else:
        out = full_disk / "emb.npz"
        proc = _cli("embed", str(run / "run" / "model.pt"), str(run / "tiny.h5"), "--out", str(out))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert lines[-1].endswith(f"error: {out}: {FULL}"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert temp_files(full_disk) == []


# --- temporary files left by a killed writer -----------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_checkpoint_save_leaves_nothing_a_new_run_or_force_must_clear(run, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    stale = folder / f".last.pt.{_dead_pid()}-0123abcd.tmp"
    stale.write_bytes(b"\0" * (1 << 20))  # what a SIGKILL mid torch.save left
    argv = ["train", str(run / "tiny.h5"), "--out", str(folder), "--quiet", *FAST]
    assert main(argv) == 0  # nothing but the stale file: an empty folder, as it was
    assert not stale.exists()
    stale.write_bytes(b"\0" * (1 << 20))
    assert main([*argv, "--force"]) == 0
    assert temp_files(folder) == []


def test_a_write_removes_the_temporary_files_of_killed_writers_only(tmp_path):
    target = tmp_path / "features.h5"
    dead = tmp_path / f".features.h5.{_dead_pid()}-0123abcd.tmp"
    alive = tmp_path / f".features.h5.{os.getpid()}-4567cdef.tmp"  # a write going on now
    other = tmp_path / f".other.h5.{_dead_pid()}-89abcdef.tmp"  # another file's
    for p in (dead, alive, other):
        p.write_bytes(b"partial")
    with atomic_write(target) as f:
        f.write(b"whole")
    assert not dead.exists() and alive.exists() and other.exists()
    remove_stale_temps(tmp_path / "other.h5")
    assert not other.exists() and target.read_bytes() == b"whole"


def test_torch_checkpoints_still_round_trip_through_the_atomic_writer(tmp_path):
    target = tmp_path / "x.pt"
    with atomic_write(target) as f:
        torch.save({"w": torch.arange(3)}, f)
    assert torch.load(target, weights_only=True)["w"].tolist() == [0, 1, 2]
