"""The app's runs folder read back (avexplorer/run_records.py, Qt-free): one damaged run file
is a named, skipped run, never an error that stops the app from opening the dataset."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from avexplorer import run_records
from core.training.config import RunConfig, method_config
from core.training.loop import train


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_data_module):
    out = tmp_path_factory.mktemp("runs") / "template"
    cfg = method_config("triplet", RunConfig()).replace(
        **{"optim.epochs": 2, "optim.batch_size": 32, "model.hidden": 16, "threads": 1}
    )
    for _ in train(cfg, tiny_data_module, out_dir=out):
        pass
    run_records.write_steps(out, [1, 2], {"total": [1.0, 0.5]}, [1.0, 0.5])
    return out


@pytest.fixture(scope="module")
def tiny_data_module():
    from core.data.synthetic import make_dataset

    return make_dataset("tiny", seed=0)


DAMAGE = {
    "history that is not JSON": ("history.jsonl", b"{not json\n", "history.jsonl line 1"),
    "a history line that is a list": ("history.jsonl", b"[1, 2]\n", "history.jsonl line 1"),
    "a history line without scores": ("history.jsonl", b'{"epoch": 1}\n', "history.jsonl line 1"),
    "an epoch that is text": (
        "history.jsonl",
        b'{"epoch": "x", "val": {"a2v": 0.1, "v2a": 0.1, "avg": 0.1, "n": 4}}\n',
        "history.jsonl line 1",
    ),
    "history that is not UTF-8": ("history.jsonl", b'{"epoch": 1, "x": "\xe9"}\n', "not UTF-8"),
    "steps.npz that is no archive": ("steps.npz", b"PK\x03\x04 garbage", "steps.npz is damaged"),
    "steps.npz without its steps": ("steps.npz", None, "steps.npz is damaged"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_run_file_names_that_run_and_the_others_are_read(finished_run, tmp_path, case):
    name, content, message = DAMAGE[case]
    for folder in ("a-good", "b-damaged"):
        shutil.copytree(finished_run, tmp_path / folder)
    target = tmp_path / "b-damaged" / name
    if content is None:
        np.savez(target, r=np.zeros(2))
    else:
        target.write_bytes(content)
    read, problems = [], []
    for folder, _ in run_records.scan(tmp_path, lambda f, why: problems.append((f.name, why))):
        # as AppState.restore_runs reads a run: an error of these kinds names the folder
        try:
            epochs = run_records.read_epochs(folder)
            run_records.read_steps(folder)
        except (OSError, ValueError, KeyError, TypeError) as e:
            problems.append((folder.name, str(e)))
            continue
        read.append((folder.name, [e.epoch for e in epochs]))
    assert read == [("a-good", [1, 2])]
    assert len(problems) == 1 and problems[0][0] == "b-damaged"
    assert message in problems[0][1] and len(problems[0][1]) < 200
