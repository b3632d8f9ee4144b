"""Stopping a command ends it cleanly: SIGTERM is an interrupt, and decoding processes die with
the process that started them, however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from avexplorer.cli import main

ROOT = Path(__file__).resolve().parents[2]

POOL = """
import multiprocessing as mp, sys, time
from concurrent.futures import ProcessPoolExecutor
from core.features.decoder_process import _init_worker
pool = ProcessPoolExecutor(2, mp_context=mp.get_context("spawn"), initializer=_init_worker)
jobs = [pool.submit(time.sleep, 600) for _ in range(2)]
print(" ".join(str(p) for p in pool._processes), flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has ended, only not been reaped yet


def test_decoding_processes_end_when_their_parent_is_killed():
    parent = subprocess.Popen(
        [sys.executable, "-c", POOL], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    workers = [int(p) for p in parent.stdout.readline().split()]
    assert len(workers) == 2 and all(alive(p) for p in workers)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 60  # a bound on waiting, not a speed requirement
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in workers)


def test_sigterm_interrupts_a_command_like_ctrl_c(tiny_h5, tmp_path, capsys, monkeypatch):
    import avexplorer.commands.eval as eval_command

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not interrupt")

    run = tmp_path / "run"
    fast = ["--epochs", "1", "--hidden", "16", "--dim", "8", "--threads", "1", "--quiet"]
    assert main(["train", str(tiny_h5), "--out", str(run), *fast]) == 0
    monkeypatch.setattr(eval_command, "evaluate", terminated)
    capsys.readouterr()
    assert main(["eval", str(run / "model.pt"), str(tiny_h5)]) == 130
    assert capsys.readouterr().err.strip() == "avexplorer eval: interrupted"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored afterwards
