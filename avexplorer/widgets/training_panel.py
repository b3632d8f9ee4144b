"""Training controls: the run form, Start / Pause / Stop, progress with epoch, step and ETA, and
the runs (this session's and those restored from their folders) kept for overlay or deletion."""

from __future__ import annotations

from html import escape

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from avexplorer import run_records
from avexplorer.state.app_state import AppState
from avexplorer.state.run import map_scores_text
from avexplorer.widgets.run_form import RunForm
from core.errors import UserError
from core.training.auto import resolve
from core.training.config import RunConfig, auto_fields

SMALL_STEPS = 8  # fewer batches of METHOD.md's size per epoch than this: a small dataset


def suggested_run_settings(n_train: int, batch: int = 128) -> dict[str, int] | None:
    """Batch size and epochs for a small train split (None: METHOD.md's defaults suit it)."""
    if n_train >= SMALL_STEPS * batch:
        return None
    # About six steps an epoch or more: the largest power of two <= n/6, within [16, 64].
    small_batch = int(min(64, max(16, 2 ** int(np.floor(np.log2(max(n_train / 6, 1)))))))
    return {"optim.batch_size": small_batch, "optim.epochs": 40}


class TrainingPanel(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.form = RunForm()
        self.fields = self.form.fields
        d = RunConfig()
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
        # A short title: a group box is at least as wide as its title, and the form must fit
        # a 240-pixel panel on a 1024-pixel screen.
        settings = QGroupBox("Run settings")
        settings.setToolTip("Defaults: METHOD.md's (and the small-dataset note under the form)")
        inner = QVBoxLayout(settings)
        inner.setContentsMargins(4, 4, 4, 4)
        inner.addWidget(self.form)
        inner.addWidget(self.defaults_note)
        # What the "auto" settings become on the open dataset: the line the run will print.
        self.auto_note = QLabel()
        self.auto_note.setWordWrap(True)
        self.auto_note.setTextFormat(Qt.TextFormat.PlainText)  # the run's line, as it prints it
        font = self.auto_note.font()
        font.setPointSizeF(font.pointSizeF() * 0.9)
        self.auto_note.setFont(font)
        self.auto_note.setToolTip(
            'Fields left at "auto" are set from the share of train pairs that carry a label '
            "(after the label fraction) when the run starts; the run records the values. A "
            "value you set is kept. Recipe 'paper' gives the paper's psd."
        )
        self.auto_note.hide()
        inner.addWidget(self.auto_note)
        self.form.changed.connect(self._update_auto_note)
        inner.addStretch(1)  # fields stay at the top on a tall screen
        # The form scrolls rather than squeezing the plots on a small screen.
        scroll = QScrollArea()
        scroll.setWidget(settings)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll = scroll

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start a new run with these settings (Ctrl+R)")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause / resume the running run (Ctrl+P)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the running run; its last state is saved (Ctrl+.)")
        self.start_button.clicked.connect(lambda: state.runs.request_training(self.config()))
        self.pause_button.clicked.connect(state.runs.toggle_pause)
        self.stop_button.clicked.connect(state.runs.stop_training)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)

        # Why Start is disabled on the open data (no train pairs: arrays opened by show()).
        self.cannot_train = QLabel()
        self.cannot_train.setWordWrap(True)
        self.cannot_train.hide()
        self.progress = QProgressBar()
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        self.status = QLabel()
        self.status.setWordWrap(True)

        self.runs = QListWidget()
        self.runs.setToolTip(
            "Runs of this dataset, this session's and earlier ones (restored from their folders)."
            " Checked runs are overlaid in the plots; select one to inspect it."
        )
        self.runs.setWordWrap(True)  # a run's label (method, dataset, date, MAP) in full
        self.runs.itemChanged.connect(self._run_item_changed)
        self.runs.currentItemChanged.connect(self._run_selected)
        self.delete_button = QPushButton("Delete run…")
        self.delete_button.setToolTip("Delete the selected run and its folder (checkpoints)")
        self.delete_button.clicked.connect(self._delete_run)
        self.resume_button = QPushButton("Resume run")
        self.resume_button.clicked.connect(self._resume_run)
        # Asked before deleting; tests answer it themselves.
        self.confirm = self._confirm
        # Run folders that could not be read: named for as long as they are there, not hidden.
        self.unreadable = QLabel()
        self.unreadable.setWordWrap(True)
        self.unreadable.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.unreadable.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(scroll, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.cannot_train)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("Runs (check to overlay)"))
        layout.addWidget(self.runs, 1)
        layout.addWidget(self.unreadable)
        run_buttons = QHBoxLayout()
        run_buttons.addWidget(self.resume_button)
        run_buttons.addWidget(self.delete_button)
        layout.addLayout(run_buttons)
        self.setMinimumWidth(240)  # the form in one column; the plots need the rest at 1024 px

        state.signals.runAdded.connect(self._run_added)
        state.signals.runRemoved.connect(self._run_removed)
        state.signals.runStateChanged.connect(self._state_changed)
        state.signals.stepsAppended.connect(self._progress)
        state.signals.epochAdded.connect(lambda rid, _e: self._run_label(rid))
        state.signals.datasetChanged.connect(self._dataset_changed)
        state.signals.currentRunChanged.connect(self._current_run_changed)
        state.signals.unreadableRunsChanged.connect(self._show_unreadable)
        self._update_buttons()

    def resizeEvent(self, event) -> None:
        self.form.fit_width(event.size().width())
        super().resizeEvent(event)

    # ----- settings ----------------------------------------------------------------------------
    def config(self) -> RunConfig:
        return self.form.config()

    def set_values(self, **values: object) -> None:
        """Set form fields by dotted name (tests and ``--train`` use it)."""
        self.form.set_values(**values)

    # ----- run state ---------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        run = self.state.runs.active_run
        cannot = self.state.runs.training_problem()
        self.start_button.setEnabled(run is None and cannot is None)
        self.start_button.setToolTip(cannot or "Start a new run with these settings (Ctrl+R)")
        self.cannot_train.setText(
            f"<small>Cannot train: {escape(cannot)}</small>" if cannot else ""
        )
        self.cannot_train.setVisible(cannot is not None and self.state.catalog.dataset is not None)
        self.pause_button.setEnabled(run is not None)
        self.stop_button.setEnabled(run is not None)
        self.pause_button.setText(
            "Resume" if run is not None and run.state == "paused" else "Pause"
        )
        current = self.state.runs.current_run
        self.delete_button.setEnabled(current is not None and not current.active)
        problem = (
            self.state.runs.resume_problem(current) if current is not None else "Select a run."
        )
        self.resume_button.setEnabled(problem is None)
        self.resume_button.setToolTip(
            problem
            or f"Continue {current.name} from its last checkpoint, in its folder "  # type: ignore[union-attr]
            "(as avexplorer train --resume does)"
        )

    def _run_added(self, rid: int) -> None:
        run = self.state.runs[rid]
        if run.requested is not None and not run.restored:
            # A run started anywhere (Start, --train, "Save and retrain") leaves its settings in
            # the form, so that Start runs them again rather than an older run's.
            self.set_values(**run.requested.flat())
        item = QListWidgetItem()
        item.setData(Qt.ItemDataRole.UserRole, rid)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        self.runs.blockSignals(True)
        item.setCheckState(Qt.CheckState.Checked if run.visible else Qt.CheckState.Unchecked)
        item.setForeground(run.color)
        self.runs.addItem(item)
        if rid == self.state.runs.current_run_id:
            self.runs.setCurrentItem(item)
        self.runs.blockSignals(False)
        self._run_label(rid)
        self._update_buttons()
        if run.state == "starting":
            self._state_changed(rid)

    def _run_removed(self, rid: int) -> None:
        item = self._item(rid)
        if item is not None:
            self.runs.blockSignals(True)
            self.runs.takeItem(self.runs.row(item))
            self.runs.blockSignals(False)
        self._update_buttons()

    def _current_run_changed(self, rid: int) -> None:
        item = self._item(rid)
        if item is not None and self.runs.currentItem() is not item:
            self.runs.blockSignals(True)
            self.runs.setCurrentItem(item)
            self.runs.blockSignals(False)
        self._update_buttons()

    def _item(self, rid: int) -> QListWidgetItem | None:
        for i in range(self.runs.count()):
            if self.runs.item(i).data(Qt.ItemDataRole.UserRole) == rid:
                return self.runs.item(i)
        return None

    def _show_unreadable(self) -> None:
        bad = self.state.runs.unreadable_runs
        self.unreadable.setVisible(bool(bad))
        if bad:
            rows = "".join(f"<br>{escape(name)}: {escape(why)}" for name, why in bad)
            self.unreadable.setText(
                f"<small><b>Not listed</b>, {len(bad)} run folder"
                f"{'s' if len(bad) > 1 else ''} that could not be read:{rows}</small>"
            )
            self.unreadable.setToolTip(str(self.state.runs.root))

    def _run_label(self, rid: int) -> None:
        run, item = self.state.runs.get(rid), self._item(rid)
        if run is None or item is None:
            return
        self.runs.blockSignals(True)
        item.setText(f"{run.label()} [{run.state}]")
        settings = f"\n{run.settings}" if run.settings else ""  # what its auto fields became
        item.setToolTip(f"{run.label()}{settings}\n{run.out_dir}")
        self.runs.blockSignals(False)

    def _state_changed(self, rid: int) -> None:
        self._run_label(rid)
        self._update_buttons()
        run = self.state.runs.get(rid)
        if run is None:
            return
        if run.state in ("finished", "stopped") and run.finished is not None:
            f = run.finished
            self.progress.setFormat(f"{run.name}: {run.state}")
            if not f.stopped:
                self.progress.setValue(self.progress.maximum())
            best = (
                f"Best epoch {f.best_epoch}: val {map_scores_text(f.best_val)}"
                if f.best_epoch
                else "No epoch finished"
            )
            self.status.setText(
                f"{run.name} {run.state}. {best}"
                + (f"<br>Test (best model): {map_scores_text(f.test)}" if f.test else "")
            )
        elif run.state == "starting":
            self.progress.setValue(0)
            self.progress.setFormat(f"{run.name}: starting…")
            self.status.setText(run.starting_text)
        elif run.state == "running" and run.last_step is None:  # started, first step to come
            epoch = run.first_step // max(run.steps_per_epoch, 1) + 1
            self.progress.setFormat(f"{run.name} · epoch {epoch}/{run.total_epochs} · first step…")
            self.status.setText("")
        elif run.state == "paused":
            self.progress.setFormat(self.progress.format().split(" (")[0] + " (paused)")
        elif run.state == "failed":
            self.progress.setFormat(f"{run.name}: failed")

    def _progress(self, rid: int) -> None:
        run = self.state.runs.get(rid)
        if run is None or run.last_step is None or run.state != "running":
            return
        ev = run.last_step
        self.progress.setMaximum(max(ev.total_steps, 1))
        self.progress.setValue(ev.global_step)
        eta = run.eta_seconds()
        eta_text = f"{int(eta // 60)}:{int(eta % 60):02d}" if eta is not None else "?"
        where = f"epoch {ev.epoch}/{run.total_epochs} · step {ev.step}/{run.steps_per_epoch}"
        text = f"{run.name} · {where} · ETA {eta_text}"
        self.progress.setToolTip(text)
        if self.progress.fontMetrics().horizontalAdvance(text) > self.progress.width() - 12:
            text = f"{where} · ETA {eta_text}"  # a narrow panel: the run list names the run
        self.progress.setFormat(text)

    def _run_item_changed(self, item: QListWidgetItem) -> None:
        rid = item.data(Qt.ItemDataRole.UserRole)
        self.state.runs.set_run_visible(rid, item.checkState() == Qt.CheckState.Checked)

    def _run_selected(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.state.runs.set_current_run(item.data(Qt.ItemDataRole.UserRole))

    def _resume_run(self) -> None:
        run = self.state.runs.current_run
        if run is not None:
            self.state.runs.request_resume(run.id)

    def _delete_run(self) -> None:
        run = self.state.runs.current_run
        if run is None or run.active:
            return
        size = run_records.folder_size(run.out_dir) if run.out_dir.is_dir() else 0
        if self.confirm(
            f"Delete {run.label()}?\n\nIts folder {run.out_dir} ({size / 1e6:.1f} MB, "
            "checkpoints included) will be deleted from disk."
        ):
            self.state.runs.remove_run(run.id, delete_files=True)

    def _confirm(self, text: str) -> bool:
        answer = QMessageBox.question(self, "Delete run", text)
        return answer == QMessageBox.StandardButton.Yes

    def _dataset_changed(self) -> None:
        self._update_buttons()
        self.apply_dataset_defaults()
        self._update_auto_note()

    def _update_auto_note(self) -> None:
        """Show what "auto" resolves to for the open dataset, as core.training.auto resolves it when
        the run starts (the same function: the run's first line will read the same)."""
        data = self.state.catalog.dataset
        try:
            config = self.config()
        except (UserError, KeyError):  # a field being edited; the note follows once it is valid
            return
        if data is None or not len(data.train):
            self.form.show_resolved({})
            self.auto_note.hide()
            return
        resolved, line = resolve(config, data)
        flat = resolved.flat()
        self.form.show_resolved({dotted: flat[dotted] for dotted in auto_fields()})
        self.auto_note.setText(line)
        self.auto_note.show()

    def apply_dataset_defaults(self) -> None:
        """Batch size and epochs suited to the dataset; METHOD.md's stay one click away.

        With METHOD.md's batch of 128 a small dataset (the demo: 390 train pairs) has 4 steps an
        epoch, too few for the live curves to show anything; below 8 batches of 128 the form
        suggests 64 and 40 epochs instead.
        """
        data = self.state.catalog.dataset
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
