import numpy as np
from PySide6.QtCore import Qt

from tests.gui.conftest import small_config
from tests.gui.fake_training import val_scores


def _run(window):
    return window.state.runs.current_run


def _wait_finished(qtbot, window, timeout=60_000):
    qtbot.waitUntil(
        lambda: (
            _run(window) is not None
            and _run(window).state in ("finished", "stopped")
            and not window.jobs.training
        ),
        timeout=timeout,
    )


def test_two_epoch_run_in_the_training_process_feeds_loss_map_and_heatmaps(qtbot, real_window):
    """The one test that trains for real: Start button -> child process -> every view."""
    window = real_window
    small_config(window, "psd", epochs=2)
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

    # The finished run's test embeddings reach the map (PCA, computed in the training process).
    qtbot.waitUntil(lambda: window.map.layout_shown is not None, timeout=20_000)
    assert window.map.layout_shown.coords.shape == (2 * 24, 2)
    assert window.state.retrieval.gallery is not None


def test_pause_then_resume_then_stop(qtbot, window):
    small_config(window, "triplet", epochs=200)
    window.state.runs.request_training(window.training_panel.config())
    qtbot.waitUntil(lambda: len(_run(window).steps) > 0, timeout=20_000)
    qtbot.mouseClick(window.training_panel.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _run(window).state == "paused", timeout=10_000)
    assert window.training_panel.pause_button.text() == "Resume"
    n = len(_run(window).steps)
    qtbot.wait(100)
    assert len(_run(window).steps) == n  # paused: no new steps
    window.state.runs.toggle_pause()  # what Training > Pause / resume does: the same intent
    qtbot.waitUntil(lambda: len(_run(window).steps) > n, timeout=10_000)
    assert _run(window).state == "running" and window.training_panel.pause_button.text() == "Pause"
    qtbot.mouseClick(window.training_panel.stop_button, Qt.MouseButton.LeftButton)
    _wait_finished(qtbot, window)
    assert _run(window).state == "stopped"
    assert _run(window).finished.stopped
    said, done = window.training_panel.status.text(), len(_run(window).epochs)
    assert f"Best epoch {done}:" in said if done else "No epoch finished" in said
    assert window.training_panel.start_button.isEnabled()
    assert window.state.runs.active_run is None


def test_two_runs_are_kept_and_overlaid_with_distinct_map_styles(qtbot, window):
    for method in ("psd", "triplet"):
        small_config(window, method, epochs=3)
        window.state.runs.request_training(window.training_panel.config())
        _wait_finished(qtbot, window)
    assert len(window.state.runs) == 2
    window.plots.refresh()
    visible = [k for k, c in window.plots.loss_curves.items() if k[1] == "total" and c.isVisible()]
    assert len(visible) == 2
    assert window.training_panel.runs.count() == 2
    # The current run's A2V, V2A and avg MAP: the values of its epochs, each line its own style.
    rid = window.state.runs.current_run_id
    curves = {n: window.plots.map_curves[(rid, n)] for n in ("avg", "A2V", "V2A")}
    assert np.allclose(curves["A2V"].getData()[1], [val_scores(e).a2v for e in range(3)])
    assert np.allclose(curves["V2A"].getData()[1], [val_scores(e).v2a for e in range(3)])
    styles = {(c.opts["pen"].style(), c.opts["symbol"]) for c in curves.values()}
    assert len(styles) == 3
    legend = {item[1].text for item in window.plots.map_legend.items}
    assert legend == {"avg", "A2V", "V2A", "R@1"}
    # Recall@1 beside the MAP and the median rank of the true pair: means of both directions.
    r1 = window.plots.map_curves[(rid, "R@1")].getData()[1]
    assert np.allclose(r1, [np.mean(list(val_scores(e).recall_at_1.values())) for e in range(3)])
    ranks = window.plots.rank_curves[rid].getData()[1]
    assert np.allclose(ranks, [np.mean(list(val_scores(e).median_rank.values())) for e in range(3)])


def test_heatmaps_keep_full_batches_and_caption_the_batch_size(qtbot, window):
    """64 train pairs in batches of 24: the last batch of each epoch has 16 pairs."""
    small_config(window, "triplet", epochs=2)
    window.training_panel.set_values(**{"optim.batch_size": 24, "snapshot_every": 1})
    window.state.runs.request_training(window.training_panel.config())
    _wait_finished(qtbot, window)
    heat = window.heatmaps
    heat._pending = True
    heat.refresh()
    assert heat.teacher.image.image.shape == (24, 24)
    assert "Batch of 24 pairs, epoch 2" in heat.info.text()
    assert heat.teacher.plot.titleLabel.text == "Label agreement"


def test_hover_caption_space_is_reserved(qtbot, window):
    small_config(window, "psd", epochs=1)
    window.state.runs.request_training(window.training_panel.config())
    _wait_finished(qtbot, window)
    heat = window.heatmaps
    window.tabs.setCurrentIndex(0)
    heat._pending = True
    heat.refresh()
    qtbot.wait(50)
    before = heat.view.height()
    heat.show_cell(0, 1)
    heat.thumbs[0].setText("x")
    qtbot.wait(50)
    assert heat.view.height() == before
    assert heat.info.height() == heat.info.minimumHeight() == heat.info.maximumHeight()


def test_form_is_generated_from_the_config_and_disables_what_a_method_ignores(window):
    from core.training.config import flat_fields, ignored_fields

    form = window.training_panel.form
    assert set(form.fields) == {name for name, _d, _t in flat_fields()}
    for method in ("psd", "triplet", "infonce"):
        form.set_values(**{"loss.method": method})
        disabled = {k for k, w in form.fields.items() if not w.isEnabled()}
        assert disabled == set(ignored_fields(method))
    assert not form.fields["loss.lambda_dis"].isEnabled()  # infonce, and triplet before it
    form.set_values(**{"loss.method": "psd", "loss.margin": 0.35, "model.dropout": 0.2})
    cfg = window.training_panel.config()
    assert (cfg.loss.margin, cfg.model.dropout, cfg.threads) == (0.35, 0.2, 1)
