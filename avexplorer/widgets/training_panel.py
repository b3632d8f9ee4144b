"""Training controls: method and hyper-parameters (METHOD.md's defaults), Start / Pause / Stop,
progress with epoch, step and ETA, and the list of runs kept for overlay."""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from avexplorer.session import Session, map_scores_text
from core.config import METHODS, RunConfig, method_config


def _dspin(lo: float, hi: float, step: float, decimals: int, value: float) -> QDoubleSpinBox:
    w = QDoubleSpinBox()
    w.setRange(lo, hi)
    w.setSingleStep(step)
    w.setDecimals(decimals)
    w.setValue(value)
    return w


def _spin(lo: int, hi: int, value: int) -> QSpinBox:
    w = QSpinBox()
    w.setRange(lo, hi)
    w.setValue(value)
    return w


def _combo(items: tuple[str, ...], value: str) -> QComboBox:
    w = QComboBox()
    w.addItems(list(items))
    w.setCurrentText(value)
    return w


SMALL_STEPS = 8  # fewer batches of METHOD.md's size per epoch than this: a small dataset


def suggested_run_settings(n_train: int, batch: int = 128) -> dict[str, int] | None:
    """Batch size and epochs for a small train split (None: METHOD.md's defaults suit it)."""
    if n_train >= SMALL_STEPS * batch:
        return None
    # About six steps an epoch or more: the largest power of two <= n/6, within [16, 64].
    small_batch = int(min(64, max(16, 2 ** int(np.floor(np.log2(max(n_train / 6, 1)))))))
    return {"optim.batch_size": small_batch, "optim.epochs": 40}


class TrainingPanel(QWidget):
    startRequested = Signal(object)  # RunConfig
    pauseRequested = Signal()
    resumeRequested = Signal()
    stopRequested = Signal()

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        d = RunConfig()
        # Dotted config field -> editor; the form is built from this table.
        self.fields: dict[str, QWidget] = {
            "loss.method": _combo(METHODS, d.loss.method),
            "optim.epochs": _spin(1, 10_000, d.optim.epochs),
            "optim.batch_size": _spin(2, 65_536, d.optim.batch_size),
            "optim.lr": _dspin(1e-6, 1.0, 1e-4, 5, d.optim.lr),
            "optim.weight_decay": _dspin(0.0, 1.0, 1e-5, 6, d.optim.weight_decay),
            "loss.margin": _dspin(0.0, 2.0, 0.05, 3, d.loss.margin),
            "loss.mining": _combo(("batch_hard", "semi_hard"), d.loss.mining),
            "schedule.r_start": _dspin(0.0, 1.0, 0.05, 2, d.schedule.r_start),
            "schedule.r_end": _dspin(0.0, 1.0, 0.05, 2, d.schedule.r_end),
            "schedule.shape": _combo(("linear", "cosine", "step"), d.schedule.shape),
            "loss.lambda_dis": _dspin(0.0, 10.0, 0.05, 3, d.loss.lambda_dis),
            "loss.temperature": _dspin(0.01, 100.0, 0.1, 2, d.loss.temperature),
            "loss.teacher": _combo(("ema", "self"), d.loss.teacher),
            "loss.teacher_momentum": _dspin(0.0, 1.0, 0.001, 4, d.loss.teacher_momentum),
            "model.hidden": _spin(8, 8192, d.model.hidden),
            "model.dim": _spin(2, 4096, d.model.dim),
            "seed": _spin(0, 2**31 - 1, d.seed),
            # One torch thread by default: on a small machine the GUI thread needs the other core.
            "threads": _spin(1, max(1, os.cpu_count() or 1), 1),
        }
        labels = {
            "loss.method": "Method",
            "optim.epochs": "Epochs",
            "optim.batch_size": "Batch size",
            "optim.lr": "Learning rate",
            "optim.weight_decay": "Weight decay",
            "loss.margin": "Margin m",
            "loss.mining": "Mining",
            "schedule.r_start": "r start",
            "schedule.r_end": "r end",
            "schedule.shape": "r schedule",
            "loss.lambda_dis": "λ dis",
            "loss.temperature": "Teacher T",
            "loss.teacher": "Teacher",
            "loss.teacher_momentum": "EMA momentum",
            "model.hidden": "Hidden",
            "model.dim": "Embedding d",
            "seed": "Seed",
            "threads": "Torch threads",
        }
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(3)
        for i, (key, widget) in enumerate(self.fields.items()):
            r, c = divmod(i, 2)
            label = QLabel(labels[key])
            label.setToolTip(key)
            widget.setToolTip(key)
            grid.addWidget(label, r, 2 * c, Qt.AlignmentFlag.AlignRight)
            grid.addWidget(widget, r, 2 * c + 1)
        self.fields["loss.method"].currentTextChanged.connect(self._method_changed)  # type: ignore[attr-defined]
        self._method_defaults = {
            "optim.epochs": d.optim.epochs,
            "optim.batch_size": d.optim.batch_size,
        }
        for key, value in self._method_defaults.items():
            self.fields[key].setToolTip(f"{key} (METHOD.md default: {value})")
        self.defaults_note = QLabel()
        self.defaults_note.setWordWrap(True)
        self.defaults_note.setTextFormat(Qt.TextFormat.RichText)
        self.defaults_note.linkActivated.connect(self._defaults_link)
        grid.addWidget(self.defaults_note, grid.rowCount(), 0, 1, 4)
        settings = QGroupBox("Run settings (defaults: METHOD.md)")
        settings.setLayout(grid)

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start a new run with these settings (Ctrl+R)")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause / resume the running run (Ctrl+P)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the running run; its last state is saved (Ctrl+.)")
        self.start_button.clicked.connect(lambda: self.startRequested.emit(self.config()))
        self.pause_button.clicked.connect(self._pause_clicked)
        self.stop_button.clicked.connect(self.stopRequested)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)

        self.progress = QProgressBar()
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        self.status = QLabel()
        self.status.setWordWrap(True)

        self.runs = QListWidget()
        self.runs.setToolTip("Checked runs are overlaid in the plots; select one to inspect it")
        self.runs.itemChanged.connect(self._run_item_changed)
        self.runs.currentItemChanged.connect(self._run_selected)
        self.remove_button = QPushButton("Remove run")
        self.remove_button.clicked.connect(self._remove_run)

        form = QFormLayout()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(settings)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(form)
        layout.addWidget(QLabel("Runs (check to overlay)"))
        layout.addWidget(self.runs, 1)
        layout.addWidget(self.remove_button)

        session.runAdded.connect(self._run_added)
        session.runStateChanged.connect(self._state_changed)
        session.stepsAppended.connect(self._progress)
        session.epochAdded.connect(lambda rid, _e: self._run_label(rid))
        self._method_changed(self.fields["loss.method"].currentText())  # type: ignore[attr-defined]
        self._update_buttons()

    # ----- settings ----------------------------------------------------------------------------
    def config(self) -> RunConfig:
        values = {}
        for key, w in self.fields.items():
            if isinstance(w, QComboBox):
                values[key] = w.currentText()
            elif isinstance(w, QDoubleSpinBox):
                values[key] = float(w.value())
            elif isinstance(w, QSpinBox):
                values[key] = int(w.value())
        method = values.pop("loss.method")
        cfg = RunConfig().replace(**values)
        return method_config(method, cfg)

    def set_values(self, **values: object) -> None:
        """Set form fields by dotted name (tests and ``--train`` use it)."""
        for key, value in values.items():
            w = self.fields[key]
            if isinstance(w, QComboBox):
                w.setCurrentText(str(value))
            else:
                w.setValue(value)  # type: ignore[attr-defined]

    def _method_changed(self, method: str) -> None:
        psd = method == "psd"
        for key in (
            "schedule.r_start",
            "schedule.r_end",
            "schedule.shape",
            "loss.temperature",
            "loss.teacher",
            "loss.teacher_momentum",
        ):
            self.fields[key].setEnabled(psd)
        self.fields["loss.margin"].setEnabled(method != "infonce")
        self.fields["loss.mining"].setEnabled(method != "infonce")

    # ----- run state ---------------------------------------------------------------------------
    def _running_run(self):
        for run in self.session.runs.values():
            if run.state in ("starting", "running", "paused"):
                return run
        return None

    def _update_buttons(self) -> None:
        run = self._running_run()
        self.start_button.setEnabled(run is None and self.session.dataset is not None)
        self.pause_button.setEnabled(run is not None)
        self.stop_button.setEnabled(run is not None)
        self.pause_button.setText(
            "Resume" if run is not None and run.state == "paused" else "Pause"
        )

    def _pause_clicked(self) -> None:
        run = self._running_run()
        if run is None:
            return
        if run.state == "paused":
            self.resumeRequested.emit()
        else:
            self.pauseRequested.emit()

    def _run_added(self, rid: int) -> None:
        item = QListWidgetItem()
        item.setData(Qt.ItemDataRole.UserRole, rid)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked)
        item.setForeground(self.session.runs[rid].color)
        self.runs.addItem(item)
        self.runs.setCurrentItem(item)
        self._run_label(rid)
        self._update_buttons()

    def _item(self, rid: int) -> QListWidgetItem | None:
        for i in range(self.runs.count()):
            if self.runs.item(i).data(Qt.ItemDataRole.UserRole) == rid:
                return self.runs.item(i)
        return None

    def _run_label(self, rid: int) -> None:
        run, item = self.session.runs.get(rid), self._item(rid)
        if run is None or item is None:
            return
        best = max(run.epochs, key=lambda e: e.val.avg, default=None)
        score = f" · best val avg {best.val.avg:.3f}" if best else ""
        self.runs.blockSignals(True)
        item.setText(f"{run.name} [{run.state}]{score}")
        self.runs.blockSignals(False)

    def _state_changed(self, rid: int) -> None:
        self._run_label(rid)
        self._update_buttons()
        run = self.session.runs.get(rid)
        if run is None:
            return
        if run.state in ("finished", "stopped") and run.finished is not None:
            f = run.finished
            self.progress.setFormat(f"{run.name}: {run.state}")
            if not f.stopped:
                self.progress.setValue(self.progress.maximum())
            self.status.setText(
                f"{run.name} {run.state}. Best epoch {f.best_epoch + 1}: "
                f"val {map_scores_text(f.best_val)}"
                + (f"<br>Test (best model): {map_scores_text(f.test)}" if f.test else "")
            )
        elif run.state == "paused":
            self.progress.setFormat(self.progress.format().split(" (")[0] + " (paused)")
        elif run.state == "failed":
            self.progress.setFormat(f"{run.name}: failed")

    def _progress(self, rid: int) -> None:
        run = self.session.runs.get(rid)
        if run is None or run.last_step is None or run.state != "running":
            return
        ev = run.last_step
        self.progress.setMaximum(max(ev.total_steps, 1))
        self.progress.setValue(ev.global_step + 1)
        eta = run.eta_seconds()
        eta_text = f"{int(eta // 60)}:{int(eta % 60):02d}" if eta is not None else "?"
        self.progress.setFormat(
            f"{run.name} · epoch {ev.epoch + 1}/{run.total_epochs} · step {ev.step + 1}/"
            f"{run.steps_per_epoch} · ETA {eta_text}"
        )

    def _run_item_changed(self, item: QListWidgetItem) -> None:
        rid = item.data(Qt.ItemDataRole.UserRole)
        self.session.set_run_visible(rid, item.checkState() == Qt.CheckState.Checked)

    def _run_selected(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.session.set_current_run(item.data(Qt.ItemDataRole.UserRole))

    def _remove_run(self) -> None:
        item = self.runs.currentItem()
        if item is None:
            return
        rid = item.data(Qt.ItemDataRole.UserRole)
        if rid in self.session.runs and self.session.runs[rid].state in (
            "finished",
            "stopped",
            "failed",
        ):
            self.runs.takeItem(self.runs.row(item))
            self.session.remove_run(rid)

    def dataset_changed(self) -> None:
        self._update_buttons()
        self.apply_dataset_defaults()

    def apply_dataset_defaults(self) -> None:
        """Batch size and epochs suited to the dataset; METHOD.md's stay one click away.

        With METHOD.md's batch of 128 a small dataset (the demo: 390 train pairs) has 4 steps an
        epoch, too few for the live curves to show anything; below 8 batches of 128 the form
        suggests 64 and 40 epochs instead.
        """
        data = self.session.dataset
        md = self._method_defaults
        small = (
            suggested_run_settings(len(data.train), md["optim.batch_size"])
            if data is not None
            else None
        )
        if small is None:
            self.defaults_note.setText("")
            self.defaults_note.hide()
            self.set_values(**self._method_defaults)
            return
        self.set_values(**small)
        self.defaults_note.setText(
            f"<small>For {len(data.train)} train pairs: batch {small['optim.batch_size']}, "  # type: ignore[union-attr]
            f"{small['optim.epochs']} epochs (METHOD.md: batch {md['optim.batch_size']}, "
            f"{md['optim.epochs']} epochs; <a href='method'>use those</a>)</small>"
        )
        self.defaults_note.show()

    def _defaults_link(self, _href: str) -> None:
        self.set_values(**self._method_defaults)
