"""GUI test set-up: offscreen Qt, isolated QSettings, and a tiny generated dataset on disk."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import numpy as np
import pytest

import avexplorer.qt_compat  # noqa: F401 (PySide6 6.12 drops references to None, True, False)
from core.data.dataset import AVDataset, Split, load_h5, save_h5


def tiny_dataset(seed: int = 0, n_classes: int = 4) -> AVDataset:
    """Well-separated classes (so 2 epochs already learn something) with fake clip paths."""
    rng = np.random.default_rng(seed)
    centres_a = rng.normal(size=(n_classes, 16)) * 3
    centres_v = rng.normal(size=(n_classes, 24)) * 3

    def split(n: int, name: str) -> Split:
        y = np.arange(n) % n_classes
        a = centres_a[y] + rng.normal(size=(n, 16))
        v = centres_v[y] + rng.normal(size=(n, 24))
        paths = tuple(f"/nonexistent/{name}_{i:03d}.mp4" for i in range(n))
        return Split(a.astype(np.float32), v.astype(np.float32), y.astype(np.int64), paths)

    return AVDataset(
        train=split(64, "train"),
        val=split(16, "val"),
        test=split(24, "test"),
        class_names=tuple(f"class{c}" for c in range(n_classes)),
        source="tiny.h5",
    )


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Every test gets its own QSettings folder: no test sees another's window state."""
    from PySide6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "cfg"))
    yield


@pytest.fixture
def gui_h5(tmp_path):
    path = tmp_path / "tiny.h5"
    save_h5(path, tiny_dataset())
    return path


def make_window(qtbot, tmp_path, h5, train_fn, prestart_umap: bool = False):
    import pyqtgraph as pg

    from avexplorer.jobs.controller import JobController
    from avexplorer.main_window import MainWindow
    from avexplorer.state.app_state import AppState

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
    state = AppState(runs_root=tmp_path / "runs")
    # No UMAP process unless a test is about it: it would only load the machine.
    w = MainWindow(state, JobController(state, train_fn=train_fn, prestart_umap=prestart_umap))
    qtbot.addWidget(w)
    w.show()
    state.set_dataset(load_h5(h5))
    return w


def close_window(qtbot, w) -> None:
    w.jobs.close()
    qtbot.waitUntil(lambda: not w.jobs.training, timeout=20_000)
    w.jobs.wait(20_000)
    w.state.close()


@pytest.fixture
def window(qtbot, tmp_path, gui_h5):
    """The main window on the tiny dataset (loaded from its .h5 like a user would); training
    runs the fake event source (``fake_training.fake_train``) in a thread."""
    from tests.gui.fake_training import fake_train

    w = make_window(qtbot, tmp_path, gui_h5, fake_train)
    yield w
    close_window(qtbot, w)


@pytest.fixture
def real_window(qtbot, tmp_path, gui_h5):
    """The main window training for real, in the training process (as the app does)."""
    w = make_window(qtbot, tmp_path, gui_h5, None)
    yield w
    close_window(qtbot, w)


def small_config(window, method: str = "psd", epochs: int = 2):
    """Fill the training form with a quick run: small batches so there are several steps."""
    window.training_panel.set_values(
        **{
            "loss.method": method,
            "optim.epochs": epochs,
            "optim.batch_size": 16,
            "model.hidden": 32,
            "model.dim": 16,
        }
    )


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory):
    """A 2-epoch checkpoint of the tiny dataset, trained headless once per test session."""
    return tiny_checkpoint(tmp_path_factory.mktemp("trained"))


def tiny_checkpoint(out, epochs: int = 2):
    """Train triplet on the tiny dataset headless for ``epochs``; the best checkpoint's path."""
    from core.training.config import RunConfig, method_config
    from core.training.loop import train

    cfg = method_config("triplet", RunConfig()).replace(
        **{
            "optim.epochs": epochs,
            "optim.batch_size": 16,
            "model.hidden": 32,
            "model.dim": 16,
            "threads": 1,
        }
    )
    for _ in train(cfg, tiny_dataset(), out_dir=out):
        pass
    return out / "model.pt"


@pytest.fixture
def loaded(qtbot, window, trained_checkpoint):
    """The window with the trained checkpoint loaded (gallery, model and PCA map ready)."""
    window.load_checkpoint(str(trained_checkpoint))
    qtbot.waitUntil(lambda: window.state.retrieval.gallery is not None, timeout=20_000)
    qtbot.waitUntil(lambda: window.map.layout_shown is not None, timeout=20_000)
    # The match ranks follow the map in a worker: a test starts once they are in (their task
    # would otherwise come and go in the status bar under its clicks).
    qtbot.waitUntil(lambda: window.map._ranks() is not None, timeout=60_000)
    return window


@pytest.fixture
def cheap_encoders(monkeypatch, tmp_path):
    """Weights-free encoders (log-mel statistics, a colour grid) and a private feature cache, so
    that opening a folder stays quick; the pretrained encoders are covered in tests/core."""
    from core.features import encoders

    monkeypatch.setattr(
        encoders,
        "load_encoders",
        lambda *a, **k: encoders.Encoders(encoders.LogMelStats(), encoders.ColorGrid()),
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
