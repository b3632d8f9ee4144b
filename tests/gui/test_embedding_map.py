import dataclasses
import threading

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QMouseEvent, QPainter, QTransform
from PySide6.QtWidgets import QApplication

from avexplorer.projections import layout_of
from avexplorer.state.run import CHECKPOINT_RUN
from avexplorer.widgets.point_cloud import PointCloud, Sprite


def test_umap_is_computed_in_the_background_and_replaces_pca(qtbot, loaded):
    m, state = loaded.map, loaded.state
    outcome: list[str] = []  # the UMAP job's end: its layout's method, or the error it shows

    def layout_ready(_rid: int, _epoch: int, method: str) -> None:
        if method != "pca":
            outcome.append(method)

    state.signals.layoutReady.connect(layout_ready)
    state.signals.error.connect(lambda title, msg: outcome.append(f"{title}: {msg}"))
    assert m.layout_shown.method == "pca"
    state.embeddings.set_projection("umap")  # what View > Compute UMAP does
    # The request returns at once: the map says it is computing, the PCA stays on screen.
    assert "computing UMAP" in m.epoch_label.text()
    assert m.layout_shown.method == "pca"
    # The UMAP process starts, imports umap and, with an empty numba cache (a first launch),
    # compiles its kernels: the wait is for the job's end, bounded only against a hang.
    qtbot.waitUntil(lambda: bool(outcome), timeout=300_000)
    assert outcome == ["umap"]
    umap = m.layout_shown
    assert umap.method == "umap"
    assert umap.coords.shape == (2 * 24, 2) and np.isfinite(umap.coords).all()
    assert "UMAP" in m.plot.getPlotItem().titleLabel.text
    m.method_box.setCurrentText("PCA")  # the map's own box: back at once, the PCA is kept
    assert loaded.state.embeddings.projection == "pca"
    assert m.layout_shown.method == "pca"


def test_tsne_from_the_view_menu_is_computed_in_the_background_and_replaces_pca(qtbot, loaded):
    """View > Compute t-SNE (Ctrl+T): a status-bar task while the projection process fits, the
    PCA map meanwhile, then the t-SNE map; the map's box offers it too."""
    m, state = loaded.map, loaded.state
    outcome: list[str] = []
    state.signals.layoutReady.connect(
        lambda _r, _e, method: method != "pca" and outcome.append(method)
    )
    state.signals.error.connect(lambda title, msg: outcome.append(f"{title}: {msg}"))
    action = next(a for a in loaded.view_menu.actions() if a.text() == "Compute t-&SNE")
    assert action.shortcut().toString() == "Ctrl+T"
    action.trigger()
    assert state.embeddings.projection == "tsne" and m.method_box.currentText() == "t-SNE"
    assert "computing t-SNE" in m.epoch_label.text()
    assert m.layout_shown.method == "pca"
    assert any(t.name.startswith("t-SNE projection") for t in state.tasks)
    qtbot.waitUntil(lambda: bool(outcome), timeout=120_000)
    assert outcome == ["tsne"]
    assert m.layout_shown.method == "tsne"
    assert m.layout_shown.coords.shape == (2 * 24, 2) and np.isfinite(m.layout_shown.coords).all()
    assert "t-SNE" in m.plot.getPlotItem().titleLabel.text
    assert not state.tasks
    m.method_box.setCurrentText("PCA")
    assert state.embeddings.projection == "pca" and m.layout_shown.method == "pca"
    m.method_box.setCurrentText("t-SNE")  # the box sends the method, not the name it shows
    assert (
        state.embeddings.projection == "tsne" and m.layout_shown.method == "tsne"
    )  # kept: at once


def test_a_checkpoint_opened_with_tsne_chosen_is_shown_in_tsne(qtbot, window, trained_checkpoint):
    """t-SNE chosen before there are embeddings (or while a run trains): the new embeddings'
    PCA layout arrives first, and the map asks for their t-SNE instead of staying empty."""
    m, state = window.map, window.state
    state.embeddings.set_projection("tsne")
    window.load_checkpoint(str(trained_checkpoint))
    qtbot.waitUntil(
        lambda: any(method == "tsne" for _, method in state.embeddings.checkpoint_layouts),
        timeout=120_000,
    )
    qtbot.waitUntil(lambda: m.layout_shown is not None, timeout=5_000)
    assert m.layout_shown.method == "tsne"


def test_umap_requests_made_while_one_runs_collapse_to_the_newest_epoch(qtbot, loaded, monkeypatch):
    """During training a UMAP request comes every epoch: stale ones must not queue up."""
    from core.training.config import RunConfig

    jobs, state = loaded.jobs, loaded.state
    release, computed = threading.Event(), []

    def slow_layout(epoch, audio, visual, method, previous, progress=None):
        computed.append(epoch)
        release.wait(10)
        pca = layout_of(epoch, audio, visual, "pca", previous)  # quick stand-in for UMAP
        return dataclasses.replace(pca, method=method)

    monkeypatch.setattr(jobs.projections, "layout", slow_layout)
    emb = next(iter(state.embeddings.embeddings_for(CHECKPOINT_RUN).values()))
    run = state.runs.new_run(RunConfig())
    for epoch in range(4):
        run.embeddings[epoch] = dataclasses.replace(emb, epoch=epoch, layout=None)
        jobs.request_layout(run.id, epoch, "umap")
    qtbot.waitUntil(lambda: computed == [0], timeout=5_000)
    release.set()
    qtbot.waitUntil(lambda: (3, "umap") in state.embeddings.layouts_for(run.id), timeout=10_000)
    assert computed == [0, 3]  # epochs 1 and 2 were superseded while 0 ran


def _move(widget, pos) -> None:
    """A mouse move with no button held (QTest's offscreen moves arrive only once)."""
    local = QPointF(pos)
    event = QMouseEvent(
        QEvent.Type.MouseMove,
        local,
        QPointF(widget.mapToGlobal(pos)),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, event)


def test_hovering_a_point_shows_its_name_rank_and_first_frame(qtbot, loaded):
    m, s = loaded.map, loaded.state
    frame = QImage(32, 24, QImage.Format.Format_RGB888)
    frame.fill(QColor("orange"))
    s.catalog.thumbnails[s.catalog.item_path("test", 7)] = frame
    pos = m.point_position("visual", 7)
    _move(m.plot.viewport(), pos)
    qtbot.waitUntil(m.tip.isVisible, timeout=5_000)
    modality, index = m._hover
    assert m.point_position(modality, index) == pos or index == 7
    assert s.catalog.item_name("test", index) in m.tip.text() and "rank" in m.tip.text()
    if index == 7:  # another point may lie on top; then it is the one described
        assert m._thumb.isVisible() and m._thumb.pixmap().height() == 72
    corner = m.plot.viewport().rect().topLeft() + type(pos)(3, 3)  # the title, not the plot
    assert m.item_at(m.plot.mapToScene(corner)) is None
    qtbot.wait(50)
    _move(m.plot.viewport(), corner)
    qtbot.waitUntil(lambda: not m.tip.isVisible(), timeout=5_000)


def test_point_cloud_culls_and_keeps_the_top_point_of_each_pixel(qapp):
    cloud = PointCloud()
    xy = np.array([[10.2, 10.2], [10.7, 10.4], [30.0, 30.0], [500.0, 500.0]])
    red, blue = QBrush(QColor("red")), QBrush(QColor("blue"))
    cloud.set_data(xy, np.array([0, 1, 0, 1]), [Sprite("o", 7, red), Sprite("o", 7, blue)])
    assert cloud.dataBounds(0) == (10.2, 500.0)
    image = QImage(100, 100, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QColor("white"))
    p = QPainter(image)
    p.setTransform(QTransform())
    cloud.paint(p, None, None)
    p.end()
    # The first two share pixel (10, 10): only the later (blue) one is drawn; (500, 500) is
    # outside the 100 x 100 image.
    assert cloud.drawn == 2
    assert image.pixelColor(10, 10).blue() > 200 and image.pixelColor(10, 10).red() < 50
    assert image.pixelColor(30, 30).red() > 200
    assert cloud.boundingRect().contains(QRectF(QPointF(10.2, 10.2), QPointF(500, 500)))


def _paint(cloud, size, scale, shift=0.0):
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QColor("white"))
    p = QPainter(image)
    p.setTransform(QTransform.fromScale(scale, scale).translate(-shift, -shift))
    cloud.paint(p, None, None)
    p.end()
    return image


def test_a_zoomed_out_cloud_of_many_points_maps_a_level_and_looks_the_same(qapp, monkeypatch):
    """Past LOD_MIN points, a zoomed-out paint maps only the last-drawn point of each grid cell
    (no larger than a pixel): far fewer points, the same picture up to the rim of a covered
    point; zoomed in, only the points of the grid cells in view, and the very same picture."""
    import avexplorer.widgets.point_cloud as point_cloud

    rng = np.random.default_rng(0)
    n = 300_000
    xy = rng.normal(size=(n, 2)) * 40 + 100  # most of it inside [0, 200]
    style = rng.integers(0, 3, n)
    sprites = [Sprite("o", 7, QBrush(QColor(c))) for c in ("red", "green", "blue")]
    cloud = PointCloud()
    cloud.set_data(xy, style, sprites)
    cloud.set_style(style, sprites, rng.permutation(n))  # a drawing order, as a selection gives
    lod = _paint(cloud, 200, 1.0)
    assert cloud.mapped < n // 2
    monkeypatch.setattr(point_cloud, "LOD_MIN", n + 1)
    cloud.set_style(cloud.style, sprites, cloud.order)
    full = _paint(cloud, 200, 1.0)
    assert cloud.mapped == n
    a = np.frombuffer(lod.constBits(), np.uint8).reshape(200, 200, 4).astype(int)
    b = np.frombuffer(full.constBits(), np.uint8).reshape(200, 200, 4).astype(int)
    differ = (np.abs(a - b).max(axis=2) > 40).mean()
    assert differ < 0.02, f"{differ:.1%} of the pixels differ"
    full_zoomed = _paint(cloud, 200, 20.0, shift=95.0)  # zoomed in past every level
    monkeypatch.setattr(point_cloud, "LOD_MIN", 200_000)
    cloud.set_style(cloud.style, sprites, cloud.order)
    zoomed = _paint(cloud, 200, 20.0, shift=95.0)
    assert 0 < cloud.mapped < n // 10
    assert zoomed == full_zoomed and zoomed.pixelColor(100, 100) != QColor("white")


def test_the_map_is_drawn_before_the_ranks_which_come_once_per_epoch(qtbot, window, monkeypatch):
    """The first layout is drawn without waiting for the all-against-all match ranks; they are
    computed once per epoch's embeddings (not per layout) in a worker, then the map recolours
    by them and the hover text gives them."""
    import avexplorer.jobs.controller as controller
    from avexplorer.projections import EpochEmbeddings
    from core.evaluation.metrics import partner_ranks

    state, m = window.state, window.map
    gate, calls = threading.Event(), []
    real = controller.match_ranks

    def held_ranks(audio, visual, progress=None):  # the ranks wait until the test lets them go
        calls.append(len(audio))
        assert gate.wait(60)
        return real(audio, visual, progress=progress)

    monkeypatch.setattr(controller, "match_ranks", held_ranks)
    rng = np.random.default_rng(0)
    n = len(state.catalog.dataset.test)
    a, v = rng.normal(size=(n, 8)).astype(np.float32), rng.normal(size=(n, 8)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    state.embeddings.add_embeddings(CHECKPOINT_RUN, EpochEmbeddings(0, a, v, None))
    qtbot.waitUntil(m.drawn_current, timeout=60_000)  # drawn while the ranks are held
    m.color_box.setCurrentIndex(1)
    assert m._ranks() is None and "computing" in m.legend_label.text()
    assert "rank being computed" in m.describe("audio", 0)
    gate.set()
    qtbot.waitUntil(lambda: m._ranks() is not None, timeout=60_000)
    want = np.concatenate([partner_ranks(a, v), partner_ranks(v, a)])
    assert np.array_equal(m._ranks(), want)
    assert "computing" not in m.legend_label.text() and "11–" in m.legend_label.text()
    assert f"rank {want[n + 2]}" in m.describe("visual", 2)
    umap = dataclasses.replace(layout_of(0, a, v, "pca", None), method="umap")  # another layout
    state.embeddings.add_layout(CHECKPOINT_RUN, umap)
    qtbot.wait(200)
    assert calls == [n]  # of this epoch, once
    assert np.array_equal(m._ranks(), want)


def test_rank_bins_end_at_the_gallery_size():
    from avexplorer.widgets.embedding_map import rank_bins

    edges, names = rank_bins(120)
    assert names == ("1", "2–3", "4–10", "11–50", "51–120")
    assert list(edges) == [1, 2, 4, 11, 51]
    assert rank_bins(3)[1] == ("1", "2–3")
    assert rank_bins(5000)[1][-1] == "1001–5000"


def test_map_legend_names_the_classes_and_is_in_the_png(qtbot, loaded, tmp_path):
    m = loaded.map
    text = m.legend_label.text()
    for c, name in enumerate(loaded.state.catalog.dataset.class_names):
        assert f"color:{loaded.state.catalog.colors[c].name()}" in text and name in text
    qtbot.waitUntil(lambda: m._ranks() is not None, timeout=60_000)  # computed after the map
    m.color_box.setCurrentIndex(1)  # by rank: 24 test items, so no bin beyond 24
    assert "11–24" in m.legend_label.text() and "51" not in m.legend_label.text()
    m.color_box.setCurrentIndex(0)
    assert loaded.plot_widgets()["Embedding map"] is m.canvas  # the plot and its legend
    loaded.export_png(m.canvas, str(tmp_path / "map.png"))
    png = QImage(str(tmp_path / "map.png"))
    legend_top = 2 * m.legend_label.y()
    colours = {
        png.pixelColor(x, y).name()
        for x in range(0, png.width(), 2)
        for y in range(legend_top, png.height(), 2)
    }
    assert {
        c.name() for c in loaded.state.catalog.colors
    } <= colours  # every swatch is in the image


def sleeping_project(*_args):
    """A fit that would not end on its own (run in the projection process)."""
    import time

    time.sleep(600)


def test_cancel_ends_a_slow_layout_and_the_next_request_runs_afresh(qtbot, loaded, monkeypatch):
    """Cancel in the status bar stops a UMAP half-way (its process ends: a fit cannot be stopped
    inside it), the PCA map stays, and asking again computes the UMAP in a new process."""
    import os

    import avexplorer.jobs.projection as job

    m, state, projections = loaded.map, loaded.state, loaded.jobs.projections
    monkeypatch.setattr(job, "project", sleeping_project)
    state.embeddings.set_projection("umap")

    def umap_tasks() -> list:
        return [t for t in state.tasks if "UMAP" in t.name]

    qtbot.waitUntil(lambda: projections.pid() is not None and bool(umap_tasks()), timeout=30_000)
    pid = projections.pid()
    assert state.cancellable
    state.cancel()
    qtbot.waitUntil(lambda: not umap_tasks(), timeout=30_000)
    qtbot.waitUntil(lambda: not os.path.exists(f"/proc/{pid}"), timeout=10_000)
    assert m.layout_shown.method == "pca"

    monkeypatch.undo()  # the real fit again
    shown: list[str] = []
    state.signals.layoutReady.connect(lambda _r, _e, method: shown.append(method))
    state.signals.error.connect(lambda title, msg: shown.append(f"{title}: {msg}"))
    state.embeddings.set_projection("pca")
    state.embeddings.set_projection("umap")
    qtbot.waitUntil(lambda: bool(shown), timeout=300_000)
    assert shown == ["umap"] and m.layout_shown.method == "umap"
    assert projections.pid() != pid
