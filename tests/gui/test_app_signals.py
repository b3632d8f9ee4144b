"""Ctrl-C in the app's terminal: the app closes as from its close button, and the running
training saves its state (the whole app runs in a child process, as a user starts it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def test_ctrl_c_closes_the_app_and_the_run_is_saved(tmp_path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "QT_QPA_PLATFORM": "offscreen"}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    argv = ["--synthetic", "tiny", "--train", "triplet", "--epochs", "5000"]
    # stderr goes to a file: an undrained pipe could fill and block the app, and reading a pipe
    # of a live app to report a failure would wait forever.
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        app = subprocess.Popen(
            [sys.executable, "-m", "avexplorer", *argv], cwd=ROOT, env=env, stderr=stderr
        )
    try:
        deadline = time.monotonic() + 120  # a bound on waiting, not a speed requirement
        while not list((tmp_path / "data").rglob("last.pt")):
            assert app.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        children = [p for p in descendants(app.pid) if "spawn_main" in cmdline(p)]
        assert children  # the training process
        app.send_signal(signal.SIGINT)
        app.wait(timeout=120)
    finally:
        if app.poll() is None:
            app.kill()
    err = log.read_text()
    assert app.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    (last,) = (tmp_path / "data").rglob("last.pt")
    ckpt = load_checkpoint(last)
    assert 1 <= ckpt.epoch < 5000  # stopped by the signal, saved where it stopped
    assert [pid for pid in children if Path(f"/proc/{pid}").exists()] == []


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc, Linux)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *descendants(int(child))]
    return found
