"""The app's UMAP process: warmed up in the background, then making layouts."""

from __future__ import annotations

import numpy as np
import pytest

from avexplorer.state.run import CHECKPOINT_RUN


def _blobs(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 16)) * 4
    return (centres[rng.integers(0, 3, n)] + rng.normal(size=(n, 16))).astype(np.float32)


@pytest.mark.slow
def test_the_app_projection_process_warms_up_then_makes_layouts():
    from avexplorer.jobs.projection import ProjectionProcess

    process = ProjectionProcess()
    try:
        process.warm_up()
        process.warm_up()  # once per session
        a, v = _blobs(40, 0), _blobs(40, 5)
        layout = process.layout(0, a, v, "umap", None)
        assert layout.coords.shape == (80, 2) and np.isfinite(layout.coords).all()
    finally:
        process.close()


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_a_loaded_checkpoint_prestarts_the_umap_process_which_the_app_shuts_down(
    qtbot, tmp_path, gui_h5, trained_checkpoint, monkeypatch
):
    """Opening a finished model starts the UMAP process once the app is idle, so that View >
    Compute UMAP waits only for the fit; closing the app ends that process."""
    from avexplorer.jobs.controller import JobController
    from tests.gui.conftest import close_window, make_window
    from tests.gui.fake_training import fake_train

    monkeypatch.setattr(JobController, "PRESTART_IDLE_MS", 50)
    w = make_window(qtbot, tmp_path, gui_h5, fake_train, prestart_umap=True)
    closed = False
    try:
        projections = w.jobs.projections
        assert not projections.started  # nothing to project yet: no process
        w.load_checkpoint(str(trained_checkpoint))
        qtbot.waitUntil(lambda: projections.pid() is not None, timeout=20_000)
        assert not w.state.tasks  # it waited for loading and the PCA layout to end
        pid = projections.pid()
        assert _alive(pid)
        epoch = max(w.state.embeddings.checkpoint_embeddings)
        w.state.signals.layoutRequested.emit(CHECKPOINT_RUN, epoch, "umap")
        qtbot.waitUntil(
            lambda: any(m == "umap" for _, m in w.state.embeddings.checkpoint_layouts),
            timeout=120_000,
        )
        assert projections.pid() == pid  # the fit ran in the pre-started process
        close_window(qtbot, w)
        closed = True
        qtbot.waitUntil(lambda: not _alive(pid), timeout=10_000)
    finally:
        if not closed:
            close_window(qtbot, w)


def test_a_child_that_dies_during_a_call_is_an_error_and_the_next_call_starts_a_new_one():
    import os

    from avexplorer.jobs.projection import ProjectionProcess
    from core.errors import UserError

    process = ProjectionProcess()
    try:
        first = process.call(os.getpid)
        with pytest.raises(UserError, match=r"ended unexpectedly.*exit code 3"):
            process.call(os._exit, 3)
        assert process.call(int, "7") == 7
        assert process.pid() != first
    finally:
        process.close()


def test_close_returns_when_the_child_was_killed_while_waiting_for_work():
    """A SIGTERM to the app's whole process group reaches the child too, while it waits for
    work; the app's close must still end at once (a multiprocessing pool hung here)."""
    import os
    import signal
    import threading

    from avexplorer.jobs.projection import ProjectionProcess

    process = ProjectionProcess()
    process.call(int)  # started and idle
    pid = process.pid()
    os.kill(pid, signal.SIGTERM)
    closing = threading.Thread(target=process.close, daemon=True)
    closing.start()
    closing.join(30)
    assert not closing.is_alive(), "close() hung on a dead child"
    assert not _alive(pid)
