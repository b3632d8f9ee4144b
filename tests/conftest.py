"""Shared test set-up: one torch thread (the CI machine has 2 shared cores) and small data."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def tiny_data():
    from core.data.synthetic import make_dataset

    return make_dataset("tiny", seed=0)


@pytest.fixture
def tiny_h5(tmp_path, tiny_data):
    from core.data.dataset import save_h5

    path = tmp_path / "tiny.h5"
    save_h5(path, tiny_data)
    return path
