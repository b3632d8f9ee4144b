"""The app's child processes (training, UMAP) start from a user's script that has no
``if __name__ == "__main__":`` guard, as ``avexplorer.show`` is called in docs/notebook.md,
without running that script a second time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
print("script body ran", flush=True)
import multiprocessing as mp
import numpy as np
from avexplorer.jobs.projection import ProjectionProcess
from avexplorer.jobs.training_process import train_in_process
from core.training.config import method_config
from core.training.control import TrainControl
from core.data.synthetic import make_dataset

rng = np.random.default_rng(0)
pool = ProjectionProcess()
layout = pool.layout(0, rng.normal(size=(20, 8)), rng.normal(size=(20, 8)), "pca", None)
pool.close()
print("layout", layout.coords.shape, flush=True)

ctx = mp.get_context("spawn")
config = method_config("psd").replace(**{"optim.epochs": 1, "threads": 1})
batches = train_in_process(config, make_dataset("tiny"), OUT, TrainControl(ctx.Event), ctx)
print("training events", sum(len(b) for b in batches) > 0, flush=True)
"""


def test_children_do_not_rerun_an_unguarded_script(tmp_path):
    script = tmp_path / "user_script.py"
    script.write_text(f"OUT = {str(tmp_path / 'run')!r}\n" + SCRIPT)
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("script body ran") == 1, done.stdout + done.stderr[-2000:]
    assert "layout (40, 2)" in done.stdout and "training events True" in done.stdout
