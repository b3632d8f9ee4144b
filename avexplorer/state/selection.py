"""The selection: which audio and visual test items the user picked (on the map, in the table,
by class), the named selections kept beside the dataset, and what is done with a selection
(query with its mean, export it).

``SelectionState`` lives in ``AppState.selection``; ``current`` is a
``core.exploration.selection.Selection`` (two boolean masks over the test clips, one per
modality) or None when nothing is picked. Every view reads it and redraws on
``selectionChanged``; they change it only through ``select`` and its helpers, which add (Shift)
or subtract (Ctrl) by ``mode``. The maths is in ``core.exploration.selection``, the files in
``core.exploration.selection_files``; an export is a request (``selectionExportRequested``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from avexplorer.state.catalog import Catalog
from avexplorer.state.retrieval import Retrieval
from avexplorer.state.signals import StateSignals
from core.exploration.selection import Selection, SelectionError


class SelectionState:
    def __init__(
        self,
        signals: StateSignals,
        catalog: Catalog,
        retrieval: Retrieval,
        files_folder: Path,
    ):
        """``files_folder``: where named selections go when the dataset's folder cannot hold
        them (``core.exploration.selection_files.selections_file``)."""
        self.signals, self.catalog, self.retrieval = signals, catalog, retrieval
        self.files_folder = files_folder
        self.current: Selection | None = None  # test items picked; None when nothing is

    def select(self, sel: Selection, mode: str = "replace") -> None:
        """Make ``sel`` the selection, or add it to / subtract it from the current one."""
        data = self.catalog.dataset
        if data is None or len(sel) != len(data.test):
            return
        current = self.current or Selection.empty(len(sel))
        new = current.combine(sel, mode)
        new = new if new else None
        if (new is None and self.current is None) or (new is not None and new.equals(self.current)):
            return
        self.current = new
        self.signals.selectionChanged.emit()

    def select_points(self, mask: np.ndarray, mode: str = "replace") -> None:
        """Select map points (a mask over audio rows then visual rows, as in a Layout)."""
        self.select(Selection.of_points(mask), mode)

    def select_clips(self, indices: Any, mode: str = "replace") -> None:
        """Select both sides of test clips."""
        if self.catalog.dataset is not None:
            self.select(Selection.of_clips(len(self.catalog.dataset.test), indices), mode)

    def select_class(self, class_id: int, mode: str = "replace") -> None:
        if self.catalog.dataset is not None:
            self.select(Selection.of_class(self.catalog.dataset.test.labels, class_id), mode)

    def clear_selection(self) -> None:
        if self.current is not None:
            self.current = None
            self.signals.selectionChanged.emit()

    def query_with_selection(self, modality: str) -> None:
        """Query with the mean of the selection's ``modality`` items (A2V for audio, V2A for
        visual); the mean follows the model, like any query."""
        sel = self.current
        if sel is None or self.retrieval.gallery is None:
            self.signals.report_error(
                "Nothing to query with", "Select items on the map (with a model loaded) first."
            )
            return
        if not getattr(sel, modality).any():
            self.signals.message.emit(f"The selection holds no {modality} item to query with.")
            return
        self.retrieval.set_group_query(sel, modality)

    def export_selection(self, kind: str, path: str) -> None:
        """Write the selection: ``csv`` (clip list), ``npz`` (embeddings) or ``h5`` (features);
        ``JobController`` writes it in the background."""
        if self.current is None:
            self.signals.report_error("Nothing to export", "Select items on the map first.")
        elif kind == "npz" and self.retrieval.gallery is None:
            self.signals.report_error("No embeddings", "Train a model or load a checkpoint first.")
        else:
            self.signals.selectionExportRequested.emit(kind, path)

    # ----- named selections --------------------------------------------------------------------
    def selections_file(self) -> Path | None:
        """Where the dataset's named selections are kept."""
        from core.exploration.selection_files import selections_file

        if self.catalog.dataset is None:
            return None
        return selections_file(self.catalog.dataset, self.files_folder)

    def saved_selections(self) -> list[str]:
        from core.exploration.selection_files import read_named

        path = self.selections_file()
        try:
            return sorted(read_named(path)["selections"]) if path is not None else []
        except SelectionError as e:
            self.signals.message.emit(str(e))
            return []

    def save_selection(self, name: str) -> None:
        from core.exploration.selection_files import fingerprint, save_named

        path, data, sel = self.selections_file(), self.catalog.dataset, self.current
        if path is None or data is None or sel is None:
            self.signals.report_error("Nothing to save", "Select items on the map first.")
            return
        try:
            save_named(path, name, sel, fingerprint(data.test.labels, data.class_names))
        except SelectionError as e:
            self.signals.report_error("Selection not saved", str(e))
            return
        self.signals.message.emit(f"Saved selection {name.strip()!r} in {path}")

    def load_selection(self, name: str) -> None:
        from core.exploration.selection_files import fingerprint, load_named

        path, data = self.selections_file(), self.catalog.dataset
        if path is None or data is None:
            return
        try:
            sel = load_named(path, name, fingerprint(data.test.labels, data.class_names))
        except SelectionError as e:
            self.signals.report_error("Selection not loaded", str(e))
            return
        self.select(sel)
