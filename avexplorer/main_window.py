"""The main window: menus, docks and tabs around the session's widgets.

Layout: the dataset panel is a dock (left); the central tabs are "Training" (settings and runs,
live curves, the alignment heatmaps) and "Explore" (embedding map beside the retrieval view).
Window geometry, dock and splitter states, last-used folders and recent runs persist in QSettings.
"""

from __future__ import annotations

import csv
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QByteArray, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
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

from avexplorer import workers
from avexplorer.session import Session, settings
from avexplorer.widgets.about import AboutDialog
from avexplorer.widgets.alignment_heatmap import AlignmentHeatmaps
from avexplorer.widgets.dataset_panel import DatasetPanel
from avexplorer.widgets.embedding_map import EmbeddingMap
from avexplorer.widgets.frames import FrameScheduler
from avexplorer.widgets.loss_plots import TrainingPlots
from avexplorer.widgets.retrieval_panel import RetrievalPanel
from avexplorer.widgets.training_panel import TrainingPanel

MAX_RECENT = 10
FEATURE_FILES = "Feature files (*.h5 *.hdf5);;All files (*)"
CHECKPOINTS = "Checkpoints (*.pt);;All files (*)"


class MainWindow(QMainWindow):
    def __init__(self, session: Session, jobs: workers.Jobs | None = None):
        super().__init__()
        self.session = session
        self.jobs = jobs or workers.Jobs(session)
        self.setWindowTitle("avexplorer")
        self.setAcceptDrops(True)
        self.resize(1500, 920)

        self.dataset_panel = DatasetPanel(session)
        self.training_panel = TrainingPanel(session)
        # One pacing timer for the live views: at most one of them repaints per tick.
        self.frames = FrameScheduler(parent=self)
        self.plots = TrainingPlots(session, frames=self.frames)
        self.heatmaps = AlignmentHeatmaps(session, frames=self.frames)
        self.map = EmbeddingMap(session)
        self.retrieval = RetrievalPanel(session)

        dock = QDockWidget("Dataset", self)
        dock.setObjectName("dataset_dock")
        dock.setWidget(self.dataset_panel)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.resizeDocks([dock], [360], Qt.Orientation.Horizontal)
        self.dataset_dock = dock

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.plots)
        right.addWidget(self.heatmaps)
        right.setSizes([520, 400])
        self.training_split = QSplitter(Qt.Orientation.Horizontal)
        self.training_split.addWidget(self.training_panel)
        self.training_split.addWidget(right)
        self.training_split.setSizes([330, 820])
        self.training_right = right
        self.explore_split = QSplitter(Qt.Orientation.Horizontal)
        self.explore_split.addWidget(self.map)
        self.explore_split.addWidget(self.retrieval)
        self.explore_split.setSizes([700, 480])
        self.tabs = QTabWidget()
        self.tabs.addTab(self.training_split, "Training")
        self.tabs.addTab(self.explore_split, "Explore: map and retrieval")
        self.setCentralWidget(self.tabs)

        self._build_status_bar()
        self._build_menus()
        self._connect()
        self._restore_settings()

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
        self.busy.setRange(0, 0)  # indeterminate: tasks report no fraction
        self.busy.setMaximumWidth(120)
        self.busy.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the training run")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.jobs.stop)
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
        m = self.menuBar()
        f = m.addMenu("&File")
        self._action(f, "Open &demo dataset", self.open_demo, "Ctrl+D")
        self._action(f, "&Open feature file…", self.open_file_dialog, QKeySequence.StandardKey.Open)
        self._action(f, "Open &folder of clips…", self.open_folder_dialog, "Ctrl+Shift+O")
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
        for name, widget in self.plot_widgets().items():
            self._action(
                self.png_menu, f"{name}…", lambda w=widget, n=name: self.export_png_dialog(w, n)
            )
        f.addSeparator()
        self._action(f, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        t = m.addMenu("&Training")
        self._action(
            t, "&Start run", lambda: self.start_training(self.training_panel.config()), "Ctrl+R"
        )
        self._action(t, "&Pause / resume", self.toggle_pause, "Ctrl+P")
        self._action(t, "S&top", self.jobs.stop, "Ctrl+.")

        v = m.addMenu("&View")
        self._action(v, "&Training", lambda: self.tabs.setCurrentIndex(0), "Ctrl+1")
        self._action(v, "&Explore", lambda: self.tabs.setCurrentIndex(1), "Ctrl+2")
        self._action(
            v, "Compute &UMAP", lambda: self.map.method_box.setCurrentText("UMAP"), "Ctrl+U"
        )
        self._action(v, "&PCA", lambda: self.map.method_box.setCurrentText("PCA"), "Ctrl+Shift+U")
        v.addAction(self.dataset_dock.toggleViewAction())

        h = m.addMenu("&Help")
        self._action(h, "&About avexplorer", self.show_about, QKeySequence.StandardKey.HelpContents)
        self._refresh_recent()

    def _connect(self) -> None:
        s = self.session
        s.taskChanged.connect(self._task_changed)
        s.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        s.error.connect(self.show_error)
        s.datasetChanged.connect(self._dataset_changed)
        s.runStateChanged.connect(self._run_state_changed)
        p = self.training_panel
        p.startRequested.connect(self.start_training)
        p.pauseRequested.connect(self.jobs.pause)
        p.resumeRequested.connect(self.jobs.resume)
        p.stopRequested.connect(self.jobs.stop)
        d = self.dataset_panel
        d.itemActivated.connect(self.query_item)
        d.openFileRequested.connect(self.open_file_dialog)
        d.openFolderRequested.connect(self.open_folder_dialog)
        d.demoRequested.connect(self.open_demo)
        self.map.pointClicked.connect(self._map_clicked)
        self.map.layoutRequested.connect(self.jobs.request_layout)
        self.retrieval.fileDropped.connect(self.jobs.query_file)

    def plot_widgets(self) -> dict[str, QWidget]:
        return {**self.plots.plots(), **self.heatmaps.plots(), **self.map.plots()}

    # ----- settings ----------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        st = settings()
        geometry = st.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
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
        self.save_settings()
        self.jobs.close()
        super().closeEvent(event)

    # ----- status and errors -------------------------------------------------------------------
    def _task_changed(self, name: str) -> None:
        self.task_label.setText(name or "Ready")
        self.busy.setVisible(bool(name))
        self.cancel_button.setVisible(self._run_active())

    def _run_active(self) -> bool:
        return any(r.state in ("starting", "running", "paused") for r in self.session.runs.values())

    def show_error(self, title: str, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, message.split("\n\n")[0], parent=self)
        if "\n\n" in message:
            box.setDetailedText(message)
        box.setModal(False)
        box.open()  # not exec(): a worker error must not block the event loop
        self.last_error = (title, message)

    def _dataset_changed(self) -> None:
        data = self.session.dataset
        if data is not None:
            self.setWindowTitle(f"avexplorer — {Path(data.source).name or 'dataset'}")
        self.training_panel.dataset_changed()

    def _run_state_changed(self, rid: int) -> None:
        self.cancel_button.setVisible(self._run_active())
        run = self.session.runs.get(rid)
        if run is not None and run.state in ("finished", "stopped"):
            ckpt = run.checkpoints.get("best") or run.checkpoints.get("last")
            if ckpt is not None:
                self.add_recent(str(ckpt), run.name)

    # ----- datasets ----------------------------------------------------------------------------
    def open_demo(self) -> None:
        def done(result: tuple[Any, str]) -> None:
            data, note = result
            self.session.set_dataset(data)
            self.session.message.emit(note or "Opened the demo dataset")
            if not note:
                self.build_demo_clips()

        workers.start(self.session, "Opening the demo", _load_demo, on_done=done)

    def build_demo_clips(self) -> None:
        """Build the demo's clip files (first use only) so thumbnails and playback work."""
        data = self.session.dataset
        paths = (
            [p for s in (data.train, data.val, data.test) if s.paths for p in s.paths]
            if data
            else []
        )
        if paths and all(Path(p).exists() for p in paths[:3]):
            self.jobs.load_thumbnails()
            return
        workers.start(
            self.session,
            "Building the demo clips (once)",
            workers.build_demo_clips,
            on_done=lambda _root: self.jobs.load_thumbnails(),
        )

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open feature file", self._last_dir("data"), FEATURE_FILES
        )
        if path:
            self.open_h5(path)

    def open_h5(self, path: str) -> None:
        self._remember_dir("data", path)
        settings().setValue("paths/last_dataset", path)

        def done(data: Any) -> None:
            self.session.set_dataset(data)
            self.session.message.emit(f"Opened {Path(path).name}")
            self.jobs.load_thumbnails()

        from core.data import load_h5

        workers.start(self.session, f"Opening {Path(path).name}", load_h5, path, on_done=done)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Open a folder of clips", self._last_dir("clips")
        )
        if path:
            self.open_folder(path)

    def open_folder(self, path: str) -> None:
        """Extract features from every clip in a folder (cached), then open them."""
        self._remember_dir("clips", path)

        def done(data: Any) -> None:
            self.session.set_dataset(data)
            self.session.message.emit(f"Opened clips of {Path(path).name}")
            self.jobs.load_thumbnails()

        workers.start(
            self.session,
            f"Extracting features of {Path(path).name}",
            workers.extract_folder,
            path,
            on_done=done,
        )

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
            self.tabs.setCurrentIndex(1)
            self.jobs.query_file(path)

    # ----- training ----------------------------------------------------------------------------
    def start_training(self, config: Any) -> None:
        if self.jobs.start_training(config) is not None:
            self.tabs.setCurrentIndex(0)

    def toggle_pause(self) -> None:
        run = self.session.runs.get(self.jobs.training_run or 0)
        if run is None:
            return
        if run.state == "paused":
            self.jobs.resume()
        else:
            self.jobs.pause()

    # ----- queries -----------------------------------------------------------------------------
    def query_item(self, split: str, index: int) -> None:
        self.session.set_item_query(split, index)

    def _map_clicked(self, modality: str, index: int) -> None:
        self.session.set_item_query("test", index, modality)
        self.dataset_panel.select_item("test", index)

    # ----- checkpoints -------------------------------------------------------------------------
    def load_checkpoint_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load checkpoint", self._last_dir("checkpoints"), CHECKPOINTS
        )
        if path:
            self.load_checkpoint(path)

    def load_checkpoint(self, path: str) -> None:
        self._remember_dir("checkpoints", path)
        self.add_recent(path, Path(path).parent.name)
        self.tabs.setCurrentIndex(1)
        self.jobs.load_checkpoint(path)

    def save_checkpoint_dialog(self) -> None:
        src = self.current_checkpoint()
        if src is None:
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
        if self.session.current_run is not None:
            return self.session.latest_checkpoint()
        g = self.session.gallery
        return g.checkpoint if g is not None else None

    def save_checkpoint(self, path: str) -> None:
        src = self.current_checkpoint()
        if src is None:
            self.show_error("Nothing to save", "Train a model or load a checkpoint first.")
            return
        if Path(src).resolve() != Path(path).resolve():
            shutil.copyfile(src, path)  # checkpoints are complete files; a copy is a save
        self._remember_dir("checkpoints", path)
        self.add_recent(path, Path(path).stem)
        self.session.message.emit(f"Saved checkpoint {path}")

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
            act = self.recent_menu.addAction(f"{r['name']} — {r['path']}")
            act.triggered.connect(lambda _c=False, p=r["path"]: self.load_checkpoint(p))
        self.recent_menu.setEnabled(bool(recent))

    # ----- exports -----------------------------------------------------------------------------
    def export_embeddings_dialog(self, fmt: str) -> None:
        if self.session.gallery is None:
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
        g, data = self.session.gallery, self.session.dataset
        if g is None or data is None:
            return
        labels = data.test.labels
        paths = data.test.paths or tuple("" for _ in labels)
        if path.endswith(".npz"):
            np.savez_compressed(
                path,
                audio=g.audio,
                visual=g.visual,
                labels=labels,
                paths=np.array(paths),
                class_names=np.array(data.class_names),
                epoch=g.epoch,
            )
        else:
            with open(path, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(
                    [
                        "index",
                        "modality",
                        "label",
                        "class",
                        "path",
                        *[f"e{j}" for j in range(g.audio.shape[1])],
                    ]
                )
                for modality, emb in (("audio", g.audio), ("visual", g.visual)):
                    for i, row in enumerate(emb):
                        w.writerow(
                            [
                                i,
                                modality,
                                int(labels[i]),
                                data.class_names[labels[i]],
                                paths[i],
                                *[f"{x:.6g}" for x in row],
                            ]
                        )
        self._remember_dir("exports", path)
        self.session.message.emit(f"Exported embeddings to {path}")

    def export_results_dialog(self) -> None:
        if self.session.results is None:
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
        r, s = self.session.results, self.session
        if r is None:
            return
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(
                [
                    "query",
                    "query_class",
                    "direction",
                    "ap",
                    "rank",
                    "index",
                    "clip",
                    "class",
                    "cosine",
                    "hit",
                ]
            )
            for rank, (i, score, hit) in enumerate(zip(r.indices, r.scores, r.hits, strict=True)):
                label = int(s.dataset.test.labels[i])  # type: ignore[union-attr]
                w.writerow(
                    [
                        r.query.name,
                        s.class_name(r.query.label),
                        r.direction,
                        "" if r.ap is None else f"{r.ap:.6f}",
                        rank + 1,
                        int(i),
                        s.item_path("test", int(i)) or s.item_name("test", int(i)),
                        s.class_name(label),
                        f"{score:.6f}",
                        int(hit),
                    ]
                )
        self._remember_dir("exports", path)
        self.session.message.emit(f"Exported results to {path}")

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

    def export_png(self, widget: QWidget, path: str) -> None:
        # grab() renders the widget as it is on screen, colour bars and legends included.
        if not widget.grab().save(path, "PNG"):
            self.show_error("Export failed", f"Could not write {path}")
            return
        self._remember_dir("exports", path)
        self.session.message.emit(f"Saved {path}")

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


def _load_demo() -> tuple[Any, str]:
    """(the demo dataset, "") or, when its features are not installed, a generated stand-in."""
    from dataclasses import replace

    from core.data import DataError
    from core.demo import load_demo

    try:
        return load_demo(), ""
    except DataError as e:
        from core.synthetic import make_dataset

        data = make_dataset("ave", seed=0)
        data = replace(
            data,
            source="generated (AVE-shaped)",
            attrs={**data.attrs, "title": "Generated AVE-shaped data"},
        )
        return data, f"Demo features not installed ({e}): opened generated data instead"


def later(fn: Any, ms: int = 0) -> None:
    QTimer.singleShot(ms, fn)
