import numpy as np
from PySide6.QtCore import Qt

from tests.gui.conftest import small_config


def _run(window):
    return window.session.current_run


def _wait_finished(qtbot, window, timeout=60_000):
    qtbot.waitUntil(
        lambda: (
            _run(window) is not None
            and _run(window).state in ("finished", "stopped")
            and window.jobs.train_worker is None
        ),
        timeout=timeout,
    )


def test_two_epoch_run_from_the_start_button_feeds_loss_map_and_heatmaps(qtbot, window):
    small_config(window, "psd", epochs=2)
    window.session.runs.clear()
    qtbot.mouseClick(window.training_panel.start_button, Qt.MouseButton.LeftButton)
    _wait_finished(qtbot, window)
    run = _run(window)
    assert run.state == "finished"
    steps = run.steps_per_epoch * 2
    assert len(run.steps) == steps

    window.plots.refresh()  # what the 10 Hz timer would do next
    x, y = window.plots.loss_curves[(run.id, "total")].getData()
    assert len(x) == steps and np.isfinite(y).all()
    components = {name for (rid, name) in window.plots.loss_curves if rid == run.id}
    assert "total" in components and len(components) > 1  # every loss component has a curve

    x, y = window.plots.map_curves[(run.id, "avg")].getData()
    assert list(x) == [1.0, 2.0]
    assert np.allclose(y, [e.val.avg for e in run.epochs])
    assert ((y >= 0) & (y <= 1)).all()
    rx, ry = window.plots.r_curves[run.id].getData()
    assert list(rx) == [1.0, 2.0] and ry[0] >= ry[1]  # r_t decreases for psd

    window.heatmaps.refresh()
    snap = run.snapshot
    img = window.heatmaps.teacher.image.image
    assert img.shape == (len(snap.labels), len(snap.labels))
    order = np.argsort(snap.labels, kind="stable")
    assert np.allclose(img, snap.soft[np.ix_(order, order)])
    assert np.allclose(window.heatmaps.student.image.image, snap.student[np.ix_(order, order)])
    text = window.heatmaps.show_cell(0, 1)
    assert "S = " in text and "cosine = " in text

    # The finished run's test embeddings reach the map (PCA, computed in a worker).
    qtbot.waitUntil(lambda: window.map.layout_shown is not None, timeout=20_000)
    assert window.map.layout_shown.coords.shape == (2 * 24, 2)
    assert window.session.gallery is not None


def test_pause_then_resume_then_stop(qtbot, window):
    small_config(window, "triplet", epochs=200)
    window.start_training(window.training_panel.config())
    qtbot.waitUntil(lambda: len(_run(window).steps) > 0, timeout=20_000)
    qtbot.mouseClick(window.training_panel.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _run(window).state == "paused", timeout=10_000)
    assert window.training_panel.pause_button.text() == "Resume"
    n = len(_run(window).steps)
    qtbot.wait(300)
    assert len(_run(window).steps) == n  # paused: no new steps
    qtbot.mouseClick(window.training_panel.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(_run(window).steps) > n, timeout=10_000)
    qtbot.mouseClick(window.training_panel.stop_button, Qt.MouseButton.LeftButton)
    _wait_finished(qtbot, window)
    assert _run(window).state == "stopped"
    assert _run(window).finished.stopped
    assert window.training_panel.start_button.isEnabled()


def test_two_runs_are_kept_and_overlaid(qtbot, window):
    for method in ("psd", "triplet"):
        small_config(window, method, epochs=1)
        window.start_training(window.training_panel.config())
        _wait_finished(qtbot, window)
    assert len(window.session.runs) == 2
    window.plots.refresh()
    visible = [k for k, c in window.plots.loss_curves.items() if k[1] == "total" and c.isVisible()]
    assert len(visible) == 2
    assert window.training_panel.runs.count() == 2
