"""The training form, generated from ``core.training.config.flat_fields()`` as the CLI's flags are.

Every config field gets an editor by its type (a choice list for ``Literal`` fields, a spin box
for numbers, a check box for booleans, a line for text): a field added to the config appears
here with no change to the app. A field that may be "auto" (``core.training.config.auto_fields``)
has "auto" as its first entry, which reads "auto (1)" once the panel has said what it resolves to
for the open dataset. The method's ignored fields (``core.training.config.ignored_fields``) are
disabled. The fields a run is usually tuned by are shown first; the rest under "More settings".
"""

from __future__ import annotations

import os
import typing
from types import UnionType
from typing import Any, Union

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.training.config import (
    AUTO,
    RunConfig,
    auto_fields,
    field_open_ends,
    field_range,
    flat_fields,
    ignored_fields,
    method_config,
)

MAIN_FIELDS = (
    "loss.method",
    "recipe",
    "optim.epochs",
    "optim.batch_size",
    "optim.lr",
    "loss.margin",
    "loss.mining",
    "schedule.r_start",
    "schedule.r_end",
    "schedule.shape",
    "loss.lambda_dis",
    "loss.contrastive_weight",
    "loss.teacher",
    "loss.temperature",
    "data.label_fraction",  # few labels: simulate a low label rate on a labelled file
)
LABELS = {
    "loss.method": "Method",
    "recipe": "Recipe",
    "loss.contrastive_weight": "Contrastive w",
    "optim.batch_size": "Batch size",
    "optim.lr": "Learning rate",
    "loss.margin": "Margin m",
    "schedule.shape": "r schedule",
    "loss.lambda_dis": "λ dis",
    "loss.lambda_soft": "λ soft (<0: 1 − r)",
    "loss.temperature": "Teacher T",
    "loss.teacher_momentum": "EMA momentum",
    "loss.infonce_temperature": "InfoNCE τ",
    "model.dim": "Embedding d",
    "threads": "Torch threads",
    "snapshot_every": "Snapshot every (steps)",
}
WIDE_FORM = 440  # px: from this width the form shows two fields a row
# One torch thread by default: on a small machine the GUI thread needs the other core.
APP_DEFAULTS: dict[str, Any] = {"threads": 1}


def label_of(dotted: str) -> str:
    return LABELS.get(dotted, dotted.split(".")[-1].replace("_", " ").capitalize())


def choices_of(dotted: str) -> tuple[str, ...]:
    """The allowed values of a ``Literal`` field, () for any other ("auto" left out)."""
    hints = typing.get_type_hints(RunConfig)
    *parents, leaf = dotted.split(".")
    cls: Any = RunConfig
    for p in parents:
        cls = hints[p]
        hints = typing.get_type_hints(cls)
    hint = hints[leaf]
    members = typing.get_args(hint) if typing.get_origin(hint) in (Union, UnionType) else (hint,)
    if any(typing.get_origin(m) is not typing.Literal for m in members):
        return ()
    return tuple(str(a) for m in members for a in typing.get_args(m) if a != AUTO)


class AutoChoice(QComboBox):
    """A choice that may be "auto": its first entry."""

    def is_auto(self) -> bool:
        return self.currentIndex() == 0

    def set_auto(self) -> None:
        self.setCurrentIndex(0)

    def show_resolved(self, value: Any) -> None:
        self.setItemText(0, AUTO if value is None else f"{AUTO} ({value})")


class AutoNumber(QDoubleSpinBox):
    """A number that may be "auto": one step below the field's lowest value, shown as text."""

    def is_auto(self) -> bool:
        return self.value() == self.minimum()

    def set_auto(self) -> None:
        self.setValue(self.minimum())

    def show_resolved(self, value: Any) -> None:
        self.setSpecialValueText(AUTO if value is None else f"{AUTO} ({value:g})")


def auto_editor_for(dotted: str, paper: Any) -> QWidget:
    """The editor of a field that may be "auto", showing "auto" (its default)."""
    choices = choices_of(dotted)
    if choices:
        w: Any = AutoChoice()
        w.addItems([AUTO, *choices])
    else:
        lo, hi = field_range(dotted)
        step = abs(paper) / 10 if paper else 0.05
        w = AutoNumber()
        w.setDecimals(_decimals(paper or step))
        # The minimum shows "auto"; one step up is the smallest value the field takes (not the
        # limit itself when the limit is excluded, as r_end's 0 is).
        below = 0.0 if field_open_ends(dotted)[0] else step
        w.setRange((lo if lo is not None else 0.0) - below, hi if hi is not None else 1e6)
        w.setSingleStep(step)
        w.setSpecialValueText(AUTO)
    w.set_auto()
    return w


def editor_for(dotted: str, default: Any) -> QWidget:
    paper = auto_fields().get(dotted)
    if paper is not None:
        return auto_editor_for(dotted, paper)
    choices = choices_of(dotted)
    if choices:
        w: Any = QComboBox()
        w.addItems(list(choices))
        w.setCurrentText(str(default))
    elif isinstance(default, bool):
        w = QCheckBox()
        w.setChecked(default)
    elif isinstance(default, int):
        w = QSpinBox()
        w.setRange(-1, 2**31 - 1)
        if dotted == "threads":
            w.setRange(0, max(1, os.cpu_count() or 1))
        w.setValue(default)
    elif isinstance(default, float):
        w = QDoubleSpinBox()
        w.setDecimals(_decimals(default))
        w.setRange(-1e6, 1e6)
        w.setSingleStep(abs(default) / 10 if default else 0.05)
        w.setValue(default)
    else:
        w = QLineEdit(str(default))
    return w


def _decimals(x: float) -> int:
    """Enough decimals to show ``x`` and a tenth of it (1e-5 -> 6, 0.99 -> 3, 10.0 -> 2)."""
    text = f"{abs(x):.10f}".rstrip("0")
    return max(2, min(8, len(text.split(".")[1]) + 1))


def value_of(w: QWidget) -> Any:
    if isinstance(w, AutoChoice | AutoNumber) and w.is_auto():
        return AUTO
    if isinstance(w, QComboBox):
        return w.currentText()
    if isinstance(w, QCheckBox):
        return w.isChecked()
    if isinstance(w, QDoubleSpinBox):
        return float(w.value())
    if isinstance(w, QSpinBox):
        return int(w.value())
    return w.text()  # type: ignore[attr-defined]


def set_value(w: QWidget, value: Any) -> None:
    if isinstance(w, AutoChoice | AutoNumber) and value == AUTO:
        w.set_auto()
    elif isinstance(w, QComboBox):
        w.setCurrentText(str(value))
    elif isinstance(w, QCheckBox):
        w.setChecked(bool(value))
    elif isinstance(w, QSpinBox | QDoubleSpinBox):
        w.setValue(value)
    else:
        w.setText(str(value))  # type: ignore[attr-defined]


class RunForm(QWidget):
    """Editors for every config field; ``config()`` is the run they describe."""

    methodChanged = Signal(str)
    changed = Signal()  # any field was edited (or set)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.fields: dict[str, QWidget] = {}
        self.defaults: dict[str, Any] = {}
        self.main_grid, self.more_grid = QGridLayout(), QGridLayout()
        self.labels: dict[str, QLabel] = {}
        ordered = sorted(flat_fields(), key=lambda f: (f[0] not in MAIN_FIELDS, _rank(f[0])))
        for dotted, default, _kind in ordered:
            default = APP_DEFAULTS.get(dotted, default)
            self.defaults[dotted] = default
            w = editor_for(dotted, default)
            tip = f"{dotted} (default {default})"
            if dotted in auto_fields():
                tip = (
                    f"{dotted} (default auto: set from the train split's label rate when the run "
                    f"starts; the paper's value is {auto_fields()[dotted]})"
                )
            w.setToolTip(tip)
            w.setMinimumWidth(70)
            label = QLabel(label_of(dotted))
            label.setToolTip(tip)
            label.setBuddy(w)
            self.fields[dotted] = w
            self.labels[dotted] = label
        self.columns = 0
        self._flow(2)
        self.more = QWidget()
        self.more.setLayout(self.more_grid)
        self.more.hide()
        self.more_button = QToolButton()
        self.more_button.setText("More settings")
        self.more_button.setCheckable(True)
        self.more_button.setArrowType(Qt.ArrowType.RightArrow)
        self.more_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.more_button.toggled.connect(self._toggle_more)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(self.main_grid)
        box.addWidget(self.more_button)
        box.addWidget(self.more)
        self.fields["loss.method"].currentTextChanged.connect(self._method_changed)  # type: ignore[attr-defined]
        for w in self.fields.values():
            signal = next(
                getattr(w, name)
                for name in ("currentTextChanged", "toggled", "valueChanged", "textChanged")
                if hasattr(w, name)
            )
            signal.connect(self.changed)
        self._method_changed(self.method)

    def _flow(self, columns: int) -> None:
        """Lay the fields out in ``columns`` label-editor pairs per row (1 on a narrow panel)."""
        if columns == self.columns:
            return
        self.columns = columns
        for dotted, w in self.fields.items():
            grid = self.main_grid if dotted in MAIN_FIELDS else self.more_grid
            grid.removeWidget(self.labels[dotted])
            grid.removeWidget(w)
        rows = {"main": 0, "more": 0}
        for dotted, w in self.fields.items():
            kind = "main" if dotted in MAIN_FIELDS else "more"
            grid = self.main_grid if kind == "main" else self.more_grid
            r, c = divmod(rows[kind], columns)
            grid.addWidget(self.labels[dotted], r, 2 * c, Qt.AlignmentFlag.AlignRight)
            grid.addWidget(w, r, 2 * c + 1)
            rows[kind] += 1
        for grid in (self.main_grid, self.more_grid):
            grid.setHorizontalSpacing(6)
            grid.setVerticalSpacing(2)
            for c in range(4):
                grid.setColumnStretch(c, 1 if c % 2 and c < 2 * columns else 0)

    def fit_width(self, width: int) -> None:
        """Two fields a row from ``WIDE_FORM`` pixels up, else one (the panel calls it)."""
        self._flow(2 if width >= WIDE_FORM else 1)

    @property
    def method(self) -> str:
        return value_of(self.fields["loss.method"])

    def _toggle_more(self, on: bool) -> None:
        self.more.setVisible(on)
        self.more_button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    def _method_changed(self, method: str) -> None:
        ignored = ignored_fields(method)
        for dotted, w in self.fields.items():
            w.setEnabled(dotted not in ignored)
        self.methodChanged.emit(method)

    def config(self) -> RunConfig:
        values = {k: value_of(w) for k, w in self.fields.items()}
        method = values.pop("loss.method")
        return method_config(method, RunConfig().replace(**values))

    def set_values(self, **values: Any) -> None:
        """Set fields by dotted name (``--train`` and tests use it)."""
        for key, value in values.items():
            set_value(self.fields[key], value)

    def show_resolved(self, values: dict[str, Any]) -> None:
        """Show what each "auto" field resolves to (dotted name -> value; none: plain "auto")."""
        for dotted in auto_fields():
            w = self.fields[dotted]
            if isinstance(w, AutoChoice | AutoNumber):
                w.show_resolved(values.get(dotted))


def _rank(dotted: str) -> int:
    return MAIN_FIELDS.index(dotted) if dotted in MAIN_FIELDS else 0
