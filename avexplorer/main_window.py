"""The main window: menus, docks and tabs around the views, and the dialogs they lead to.

Layout: the dataset panel is a dock (left); the central tabs are "Training" (settings and runs,
live curves, the alignment heatmaps) and "Explore" (embedding map beside the retrieval view).
Every view is built on the one ``AppState`` and talks only to it; the window arranges views
(``add_view`` adds one as a tab or a dock), owns the menus and the file dialogs, and hands
dataset openings to the ``JobController``. Window geometry, dock and splitter states, last-used
folders and recent runs persist in QSettings.
"""

from __future__ import annotations

import csv
import json
import shutil
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QObject, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QPixmap,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QWidget,
)

from avexplorer.jobs.audit import AuditJobs
from avexplorer.jobs.controller import JobController
from avexplorer.jobs.file_query import MEDIA_FILTER
from avexplorer.jobs.labels import LabelJobs
from avexplorer.jobs.segments import SegmentJobs
from avexplorer.settings import settings
from avexplorer.state.app_state import AppState
from avexplorer.widgets.about import AboutDialog
from avexplorer.widgets.alignment_heatmap import AlignmentHeatmaps
from avexplorer.widgets.data_issues_view import DataIssuesView
from avexplorer.widgets.dataset_panel import DatasetPanel
from avexplorer.widgets.embedding_map import EmbeddingMap
from avexplorer.widgets.getting_started import GettingStartedDialog
from avexplorer.widgets.labelling_view import LabellingView
from avexplorer.widgets.metrics_view import MetricsView
from avexplorer.widgets.paint_pacing import FrameScheduler
from avexplorer.widgets.retrieval_panel import RetrievalPanel
from avexplorer.widgets.selection_panel import SelectionPanel
from avexplorer.widgets.time_view import TimeView
from avexplorer.widgets.training_panel import TrainingPanel
from avexplorer.widgets.training_plots import TrainingPlots
from core.atomic import atomic_path, atomic_write, refuse_overwrite
from core.errors import UserError

MAX_RECENT = 10
QUERY_FILE_SHORTCUT = "Ctrl+Shift+F"
FEATURE_FILES = "Feature files (*.h5 *.hdf5);;All files (*)"
CHECKPOINTS = "Checkpoints (*.pt);;All files (*)"
PNG_SCALE = 2  # exported plots have twice the on-screen resolution
DOCK_AREAS = {
    "left": Qt.DockWidgetArea.LeftDockWidgetArea,
    "right": Qt.DockWidgetArea.RightDockWidgetArea,
    "bottom": Qt.DockWidgetArea.BottomDockWidgetArea,
}


class MainWindow(QMainWindow):
    closing = Signal()  # the window is closing (``avexplorer.show``'s handle listens)

    def __init__(self, state: AppState, jobs: JobController | None = None):
        super().__init__()
        self.state = state
        self.jobs = jobs or JobController(state)
        self.setWindowTitle("avexplorer")
        self.setAcceptDrops(True)
        self._fit_screen(1500, 920)
        self.last_error: tuple[str, str] | None = None
        self._exports: dict[str, QWidget] = {}

        # One pacing timer for the live views: at most one of them repaints per tick.
        self.frames = FrameScheduler(parent=self)
        self.dataset_panel = DatasetPanel(state)
        self.training_panel = TrainingPanel(state)
        self.plots = TrainingPlots(state, frames=self.frames)
        self.heatmaps = AlignmentHeatmaps(state, frames=self.frames)
        self.map = EmbeddingMap(state)
        self.retrieval = RetrievalPanel(state)
        self.metrics_view = MetricsView(state)
        self.time_state = state.time
        self.segment_jobs = SegmentJobs(state, self.time_state)
        self.time_view = TimeView(state, self.time_state)

        self.tabs = QTabWidget()
        self.setCentralWidget(self.tabs)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.plots)
        right.addWidget(self.heatmaps)
        right.setSizes([520, 400])
        self.training_split = QSplitter(Qt.Orientation.Horizontal)
        self.training_split.addWidget(self.training_panel)
        self.training_split.addWidget(right)
        self.training_split.setStretchFactor(1, 1)
        self.training_split.setSizes([330 if self.width() >= 1280 else 240, 820])
        self.training_right = right
        self.explore_split = QSplitter(Qt.Orientation.Horizontal)
        self.explore_split.addWidget(self.map)
        self.explore_split.addWidget(self.retrieval)
        self.explore_split.setStretchFactor(0, 1)
        # The results keep their width as the window grows; on a small screen they take less.
        self.explore_split.setSizes([700, 480 if self.width() >= 1280 else 380])
        self._build_menus()
        self.add_view(self.training_split, "Training", exports=self.plots.plots())
        self.add_view(self.explore_split, "Explore: map and retrieval", exports=self.map.plots())
        self.add_view(self.metrics_view, "Metrics", exports=self.metrics_view.plots())
        # A query opened from the metrics (a failure, a confusion cell) shows in the retrieval view.
        self.metrics_view.queryOpened.connect(
            lambda: self.tabs.setCurrentWidget(self.explore_split)
        )
        self.add_view(self.time_view, "Time: sync and moments", exports=self.time_view.plots())
        self.label_jobs = LabelJobs(state, self.jobs)
        self.labelling_view = LabellingView(state)
        self.add_view(self.labelling_view, "Labels", exports=self.labelling_view.plots())
        self.audit_jobs = AuditJobs(state, self.jobs)
        self.data_issues_view = DataIssuesView(state)
        self.add_view(self.data_issues_view, "Data issues")
        self._add_exports(self.heatmaps.plots())
        self.dataset_dock = self.add_view(self.dataset_panel, "Dataset", where="left")
        # 340 pixels, or 250 on a small screen (1024 pixels: the views need the rest).
        dock_width = 340 if self.width() >= 1280 else 250
        self.resizeDocks([self.dataset_dock], [dock_width], Qt.Orientation.Horizontal)
        self.view_menu.addAction(self.dataset_dock.toggleViewAction())
        self.selection_panel = SelectionPanel(state)
        self.selection_dock = self.add_view(self.selection_panel, "Selection", where="left")
        self.view_menu.addAction(self.selection_dock.toggleViewAction())
        # The item table gets most of the left side; the selection summary needs a few rows
        # (more in a narrow dock, where its hint and buttons wrap onto more lines).
        heights = [650, 250] if self.width() >= 1280 else [600, 330]
        self.resizeDocks([self.dataset_dock, self.selection_dock], heights, Qt.Orientation.Vertical)

        self._build_status_bar()
        self._connect()
        self._restore_settings()

    def _fit_screen(self, width: int, height: int) -> None:
        """Open at ``width`` x ``height`` or 90 % of a larger screen; maximised on a smaller one
        (1280 x 800). A saved geometry, restored next, wins over both."""
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        if screen is None:
            self.resize(width, height)
        elif screen.width() < width or screen.height() < height:
            self.resize(screen.width(), screen.height())
            self.setWindowState(Qt.WindowState.WindowMaximized)
        else:
            self.resize(
                max(width, int(screen.width() * 0.9)), max(height, int(screen.height() * 0.9))
            )

    def _fit_restored_geometry(self) -> None:
        """A window saved on a larger screen opens within this one (else its right side, with
        the plots and the status bar, would be off the screen)."""
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        if screen is None:
            return
        frame = self.frameGeometry()
        if frame.width() > screen.width() or frame.height() > screen.height():
            self.resize(
                min(self.width(), screen.width() - (frame.width() - self.width())),
                min(self.height(), screen.height() - (frame.height() - self.height())),
            )
            self.move(screen.topLeft())

    # ----- views -------------------------------------------------------------------------------
    def add_view(
        self,
        widget: QWidget,
        title: str,
        where: str = "tab",
        exports: dict[str, QWidget] | None = None,
    ) -> QDockWidget | None:
        """Show a view: a tab (``where="tab"``) or a dock on the "left", "right" or "bottom".

        A view is a widget built on the window's ``AppState``: it renders what the state's parts
        hold when ``state.signals`` says they changed, and sends intents through the parts'
        methods. ``exports`` names plots for File > Export plot as PNG.
        """
        self._add_exports(exports or {})
        if where == "tab":
            self.tabs.addTab(widget, title)
            return None
        dock = QDockWidget(title, self)
        dock.setObjectName(title.lower().replace(" ", "_") + "_dock")
        dock.setWidget(widget)
        self.addDockWidget(DOCK_AREAS[where], dock)
        return dock

    def _add_exports(self, plots: dict[str, QWidget]) -> None:
        for name, widget in plots.items():
            self._exports[name] = widget
            self._action(
                self.png_menu, f"{name}…", lambda w=widget, n=name: self.export_png_dialog(w, n)
            )

    def plot_widgets(self) -> dict[str, QWidget]:
        return dict(self._exports)

    # ----- construction ------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        # torch takes seconds to import: name the device from a background thread, not here.
        self.device_label = QLabel("Device: …")
        self._device_probe = _DeviceProbe(self)
        self._device_probe.found.connect(self.device_label.setText)
        threading.Thread(
            target=lambda: self._device_probe.found.emit(device_text()), daemon=True
        ).start()
        self.device_label.setToolTip("Where training runs")
        self.task_label = QLabel("Ready")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate: the task label carries counts and ETA
        self.busy.setMaximumWidth(100)
        self.busy.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the training run, or cancel the running import")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.state.cancel)
        bar.addPermanentWidget(self.task_label)
        bar.addPermanentWidget(self.busy)
        bar.addPermanentWidget(self.cancel_button)
        bar.addPermanentWidget(self.device_label)

    def _action(self, menu, text: str, slot, shortcut: Any = None, tip: str = "") -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        if tip:
            act.setStatusTip(tip)
        act.triggered.connect(lambda _checked=False: slot())
        menu.addAction(act)
        return act

    def _build_menus(self) -> None:
        s = self.state
        m = self.menuBar()
        f = m.addMenu("&File")
        self._action(f, "Open &demo dataset", self.jobs.open_demo, "Ctrl+D")
        self._action(f, "&Open feature file…", self.open_file_dialog, QKeySequence.StandardKey.Open)
        self._action(f, "Open &folder of clips…", self.open_folder_dialog, "Ctrl+Shift+O")
        f.addSeparator()
        self._action(
            f,
            "&Query with a file…",
            self.query_file_dialog,
            QUERY_FILE_SHORTCUT,
            "Query with a video, sound, image or .npz of features (or drop it on the window)",
        )
        f.addSeparator()
        self._action(f, "&Load checkpoint…", self.load_checkpoint_dialog, "Ctrl+L")
        self._action(
            f, "&Save checkpoint…", self.save_checkpoint_dialog, QKeySequence.StandardKey.Save
        )
        self.recent_menu = f.addMenu("Recent runs")
        f.addSeparator()
        exp = f.addMenu("&Export embeddings")
        self._action(exp, "As NPZ…", lambda: self.export_embeddings_dialog("npz"), "Ctrl+E")
        self._action(exp, "As CSV…", lambda: self.export_embeddings_dialog("csv"))
        self._action(f, "Export &results (CSV)…", self.export_results_dialog, "Ctrl+Shift+E")
        self.png_menu = f.addMenu("Export plot as &PNG")
        f.addSeparator()
        self._action(f, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        t = m.addMenu("&Training")
        self._action(
            t, "&Start run", lambda: s.runs.request_training(self.training_panel.config()), "Ctrl+R"
        )
        self._action(t, "&Pause / resume", s.runs.toggle_pause, "Ctrl+P")
        self._action(t, "S&top", s.runs.stop_training, "Ctrl+.")

        v = self.view_menu = m.addMenu("&View")
        # Ctrl+N opens the N-th tab, in the order the tabs stand.
        tabs = ("&Training", "&Explore", "&Metrics", "T&ime", "&Labels", "&Data issues")
        for n, name in enumerate(tabs, 1):
            self._action(v, name, lambda i=n - 1: self.tabs.setCurrentIndex(i), f"Ctrl+{n}")
        self._action(v, "Compute &UMAP", lambda: s.embeddings.set_projection("umap"), "Ctrl+U")
        self._action(v, "Compute t-&SNE", lambda: s.embeddings.set_projection("tsne"), "Ctrl+T")
        self._action(v, "&PCA", lambda: s.embeddings.set_projection("pca"), "Ctrl+Shift+U")

        h = m.addMenu("&Help")
        self._action(
            h,
            "&Getting started",
            self.show_getting_started,
            QKeySequence.StandardKey.HelpContents,
            "What to click first, and where runs and saved files go",
        )
        self._action(h, "&About avexplorer", self.show_about)
        self._refresh_recent()

    def _connect(self) -> None:
        s = self.state
        s.signals.taskChanged.connect(self._task_changed)
        s.signals.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        s.signals.error.connect(self.show_error)
        s.signals.datasetChanged.connect(self._dataset_changed)
        s.signals.runStateChanged.connect(self._run_state_changed)
        s.signals.checkpointLoaded.connect(self.add_recent)
        s.signals.trainRequested.connect(lambda _cfg: self.tabs.setCurrentIndex(0))
        s.signals.fileQueryRequested.connect(lambda _path: self.tabs.setCurrentIndex(1))
        d = self.dataset_panel
        d.openFileRequested.connect(self.open_file_dialog)
        d.openFolderRequested.connect(self.open_folder_dialog)
        d.demoRequested.connect(self.jobs.open_demo)
        self.retrieval.queryFileRequested.connect(self.query_file_dialog)

    # ----- settings ----------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        st = settings()
        geometry = st.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
            self._fit_restored_geometry()
        state = st.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        for key, splitter in self._splitters().items():
            value = st.value(f"window/{key}")
            if isinstance(value, QByteArray):
                splitter.restoreState(value)
        self.tabs.setCurrentIndex(int(st.value("window/tab", 0)))

    def _splitters(self) -> dict[str, QSplitter]:
        return {
            "training_split": self.training_split,
            "training_right": self.training_right,
            "explore_split": self.explore_split,
        }

    def save_settings(self) -> None:
        st = settings()
        st.setValue("window/geometry", self.saveGeometry())
        st.setValue("window/state", self.saveState())
        for key, splitter in self._splitters().items():
            st.setValue(f"window/{key}", splitter.saveState())
        st.setValue("window/tab", self.tabs.currentIndex())
        st.sync()

    def _last_dir(self, kind: str) -> str:
        return str(settings().value(f"paths/{kind}", str(Path.home())))

    def _remember_dir(self, kind: str, path: str) -> None:
        p = Path(path)
        settings().setValue(f"paths/{kind}", str(p if p.is_dir() else p.parent))

    def closeEvent(self, event: QCloseEvent) -> None:
        self.closing.emit()
        self.save_settings()
        self.jobs.close()  # cancels every job now; app.py waits for the workers to end
        super().closeEvent(event)

    # ----- status and errors -------------------------------------------------------------------
    def _task_changed(self, text: str) -> None:
        self.task_label.setText(text or "Ready")
        self.busy.setVisible(bool(text))
        self.cancel_button.setVisible(self.state.cancellable)

    def show_error(self, title: str, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, message.split("\n\n")[0], parent=self)
        if "\n\n" in message:
            box.setDetailedText(message)
        box.setModal(False)
        box.open()  # not exec(): a worker error must not block the event loop
        self.last_error = (title, message)

    def _dataset_changed(self) -> None:
        data = self.state.catalog.dataset
        if data is not None:
            self.setWindowTitle(f"avexplorer — {Path(data.source).name or 'dataset'}")

    def _run_state_changed(self, rid: int) -> None:
        self.cancel_button.setVisible(self.state.cancellable)
        run = self.state.runs.get(rid)
        if run is not None and not run.restored and run.state in ("finished", "stopped"):
            ckpt = run.best_checkpoint()
            if ckpt is not None:
                self.add_recent(str(ckpt), run.label())

    # ----- datasets ----------------------------------------------------------------------------
    def open_demo(self) -> None:
        self.jobs.open_demo()

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open feature file", self._last_dir("data"), FEATURE_FILES
        )
        if path:
            self.open_h5(path)

    def open_h5(self, path: str) -> None:
        self._remember_dir("data", path)
        settings().setValue("paths/last_dataset", path)
        self.jobs.open_h5(path)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Open a folder of clips", self._last_dir("clips")
        )
        if path:
            self.open_folder(path)

    def open_folder(self, path: str) -> None:
        self._remember_dir("clips", path)
        self.jobs.open_folder(path)

    def query_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Query with a file", self._last_dir("queries"), MEDIA_FILTER
        )
        if path:
            self._remember_dir("queries", path)
            self.state.retrieval.query_with_file(path)

    # ----- drag and drop -----------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_path(url.toLocalFile())
                event.acceptProposedAction()
                return

    def open_path(self, path: str) -> None:
        """What a drop means: folder -> dataset, .h5 -> dataset, .pt -> checkpoint, else query."""
        p = Path(path)
        if p.is_dir():
            self.open_folder(path)
        elif p.suffix in (".h5", ".hdf5"):
            self.open_h5(path)
        elif p.suffix == ".pt":
            self.load_checkpoint(path)
        else:
            self.state.retrieval.query_with_file(path)

    # ----- checkpoints -------------------------------------------------------------------------
    def load_checkpoint_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load checkpoint", self._last_dir("checkpoints"), CHECKPOINTS
        )
        if path:
            self.load_checkpoint(path)

    def load_checkpoint(self, path: str) -> None:
        self._remember_dir("checkpoints", path)
        self.tabs.setCurrentIndex(1)
        self.state.signals.checkpointRequested.emit(path)

    def save_checkpoint_dialog(self) -> None:
        if self.current_checkpoint() is None:
            self.show_error("Nothing to save", "Train a model or load a checkpoint first.")
            return
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Save checkpoint",
            str(Path(self._last_dir("checkpoints")) / "model.pt"),
            CHECKPOINTS,
        )
        if path:
            self.save_checkpoint(path)

    def current_checkpoint(self) -> Path | None:
        if self.state.runs.current_run is not None:
            return self.state.runs.latest_checkpoint()
        g = self.state.retrieval.gallery
        return g.checkpoint if g is not None else None

    def save_checkpoint(self, path: str) -> None:
        src = self.current_checkpoint()
        if src is None:
            self.show_error("Nothing to save", "Train a model or load a checkpoint first.")
            return
        if Path(src).resolve() != Path(path).resolve():
            try:  # checkpoints are complete files; a copy is a save
                self.refuse_inputs(path)
                with open(src, "rb") as source, atomic_write(path) as f:
                    shutil.copyfileobj(source, f)
            except (OSError, UserError) as e:
                self.show_error("Save failed", _why(e))
                return
        self._remember_dir("checkpoints", path)
        run = self.state.runs.current_run
        self.add_recent(path, run.label() if run is not None else Path(path).stem)
        self.state.signals.message.emit(f"Saved checkpoint {path}")

    def add_recent(self, path: str, name: str) -> None:
        st = settings()
        recent = json.loads(str(st.value("recent/runs", "[]")))
        recent = [r for r in recent if r["path"] != path]
        recent.insert(0, {"path": path, "name": name})
        st.setValue("recent/runs", json.dumps(recent[:MAX_RECENT]))
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        recent = json.loads(str(settings().value("recent/runs", "[]")))
        for r in recent:
            act = self.recent_menu.addAction(r["name"])
            act.setStatusTip(r["path"])
            act.setToolTip(r["path"])
            act.triggered.connect(lambda _c=False, p=r["path"]: self.load_checkpoint(p))
        self.recent_menu.setEnabled(bool(recent))

    # ----- exports -----------------------------------------------------------------------------
    def refuse_inputs(self, path: str) -> None:
        """An export never replaces the open dataset or the checkpoint in use (core's rule)."""
        data = self.state.catalog.dataset
        refuse_overwrite(
            path,
            [
                ("the open dataset", data.source if data is not None else None),
                ("the checkpoint in use", self.current_checkpoint()),
            ],
        )

    def export_embeddings_dialog(self, fmt: str) -> None:
        if self.state.retrieval.gallery is None:
            self.show_error("Nothing to export", "Train a model or load a checkpoint first.")
            return
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export embeddings",
            str(Path(self._last_dir("exports")) / f"embeddings.{fmt}"),
            f"{fmt.upper()} (*.{fmt})",
        )
        if path:
            self.export_embeddings(path)

    def export_embeddings(self, path: str) -> None:
        """Write the test embeddings the views show (npz or csv by the file's suffix)."""
        g, data = self.state.retrieval.gallery, self.state.catalog.dataset
        if g is None or data is None:
            return
        try:
            self.refuse_inputs(path)
            if path.endswith(".npz"):
                from core.training.embedding import save_embeddings

                save_embeddings(path, g.audio, g.visual, data.test, data.class_names, g.epoch)
            else:
                self._export_embeddings_csv(path)
        except (OSError, UserError) as e:
            self.show_error("Export failed", _why(e))
            return
        self._remember_dir("exports", path)
        self.state.signals.message.emit(f"Exported embeddings to {path}")

    def _export_embeddings_csv(self, path: str) -> None:
        g, data = self.state.retrieval.gallery, self.state.catalog.dataset
        assert g is not None and data is not None
        labels = data.test.labels
        paths = data.test.paths or tuple("" for _ in labels)
        with atomic_write(path, "w", newline="") as f:
            w = csv.writer(f)
            dims = [f"e{j}" for j in range(g.audio.shape[1])]
            w.writerow(["index", "modality", "label", "class", "path", *dims])
            for modality, emb in (("audio", g.audio), ("visual", g.visual)):
                for i, row in enumerate(emb):
                    label = int(labels[i])
                    cells = [i, modality, label, data.class_names[label], paths[i]]
                    w.writerow([*cells, *[f"{x:.6g}" for x in row]])

    def export_results_dialog(self) -> None:
        if self.state.retrieval.results is None:
            self.show_error("Nothing to export", "Run a query first.")
            return
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export results",
            str(Path(self._last_dir("exports")) / "results.csv"),
            "CSV (*.csv)",
        )
        if path:
            self.export_results(path)

    def export_results(self, path: str) -> None:
        r, s = self.state.retrieval.results, self.state
        if r is None or s.catalog.dataset is None:
            return
        try:
            self.refuse_inputs(path)
            self._write_results(path)
        except (OSError, UserError) as e:
            self.show_error("Export failed", _why(e))
            return
        self._remember_dir("exports", path)
        self.state.signals.message.emit(f"Exported results to {path}")

    def _write_results(self, path: str) -> None:
        r, s = self.state.retrieval.results, self.state
        assert r is not None and s.catalog.dataset is not None
        columns = ["query", "query_class", "direction", "ap", "rank", "index", "clip", "class"]
        with atomic_write(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow([*columns, "cosine", "hit"])
            for rank, (i, score) in enumerate(zip(r.indices, r.scores, strict=True)):
                label = int(s.catalog.dataset.test.labels[i])
                hit = "" if r.hits is None else int(r.hits[rank])
                w.writerow(
                    [
                        r.query.name,
                        s.catalog.class_name(r.query.label),
                        r.direction,
                        "" if r.ap is None else f"{r.ap:.6f}",
                        rank + 1,
                        int(i),
                        s.catalog.item_path("test", int(i)) or s.catalog.item_name("test", int(i)),
                        s.catalog.class_name(label),
                        f"{score:.6f}",
                        hit,
                    ]
                )

    def export_png_dialog(self, widget: QWidget, name: str) -> None:
        stem = name.lower().replace(" ", "-")
        path, _ = QFileDialog.getSaveFileName(
            self,
            f"Export {name}",
            str(Path(self._last_dir("exports")) / f"{stem}.png"),
            "PNG (*.png)",
        )
        if path:
            self.export_png(widget, path)

    def export_png(self, widget: QWidget, path: str, scale: int = PNG_SCALE) -> None:
        """Render ``widget`` (colour bars and legends included) at ``scale`` x its size."""
        image = QPixmap(widget.size() * scale)
        image.setDevicePixelRatio(scale)
        image.fill(Qt.GlobalColor.white)
        # QWidget's render (a QGraphicsView overrides it with a scene-only one), painted at the
        # pixmap's device pixel ratio: twice the detail, not a scaled-up screen grab.
        QWidget.render(widget, image)
        try:
            self.refuse_inputs(path)
            with atomic_path(path) as tmp:
                if not image.save(str(tmp), "PNG"):
                    raise OSError(f"Qt could not write a PNG to {path}")
        except (OSError, UserError) as e:
            self.show_error("Export failed", _why(e))
            return
        self._remember_dir("exports", path)
        self.state.signals.message.emit(f"Saved {path}")

    def show_getting_started(self) -> GettingStartedDialog:
        dialog = GettingStartedDialog(
            self.state.runs.root,
            self.state.selection.selections_file(),
            settings().fileName(),
            self,
        )
        dialog.open()
        return dialog

    def show_about(self) -> None:
        AboutDialog(self).open()


class _DeviceProbe(QObject):
    """Carries the device description from the probing thread to the GUI thread."""

    found = Signal(str)


def device_text() -> str:
    import torch

    if torch.cuda.is_available():
        return f"Device: CUDA ({torch.cuda.get_device_name(0)})"
    return f"Device: CPU ({torch.get_num_threads()} threads)"


def _why(e: Exception) -> str:
    """A failed write in one line: our WriteError says it all; an OS error names its cause."""
    return str(e) if isinstance(e, UserError) else f"{e.strerror or e}"
