"""The open dataset as the views show it: its items' names, clip files and classes, the class
colours every view shares, and the clips' thumbnails, lengths and spectrograms.

``Catalog`` lives in ``AppState.catalog``. Thumbnails and durations are handed in by the
dataset jobs; spectrograms and missing demo clips are asked for by request signals
(``spectrogramsRequested``, ``clipRequested``) and come back through ``set_spectrograms`` and
``clipReady``. Opening a dataset is the root's ``AppState.set_dataset``, which resets every part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QColor

from avexplorer import run_records
from avexplorer.state.signals import StateSignals
from core.data.dataset import AVDataset

# The clips' spectrogram pictures (``spectrograms``, made by ``avexplorer.jobs.thumbnails``):
# audio resampled to SPECTROGRAM_SR, one picture column per SPECTROGRAM_HOP samples (10 ms).
SPECTROGRAM_SR = 16_000
SPECTROGRAM_HOP = 160

# Qualitative palette (Tableau 20 reordered so the first ten are the strong colours).
_PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
]


def class_colors(n: int) -> list[QColor]:
    """Distinct colours for n classes: the palette first, then evenly spaced hues."""
    if n <= len(_PALETTE):
        return [QColor(c) for c in _PALETTE[:n]]
    return [QColor.fromHsvF((i * 0.618034) % 1.0, 0.65, 0.9) for i in range(n)]


def dataset_name(data: AVDataset | None) -> str:
    if data is None:
        return ""
    return str(data.attrs.get("title") or Path(data.source).name or "dataset")


class Catalog:
    def __init__(self, signals: StateSignals):
        self.signals = signals
        self.dataset: AVDataset | None = None
        self.colors: list[QColor] = []
        self.item_names: dict[str, tuple[str, ...]] = {}  # names given by show(), per split
        self.thumbnails: dict[str, Any] = {}  # clip path -> QImage
        self.durations: dict[str, float] = {}
        self.spectrograms: dict[str, Any] = {}  # clip path -> QImage (None: no sound)
        self._spectrograms_pending: set[str] = set()

    def open(self, data: AVDataset, names: dict[str, tuple[str, ...]] | None) -> None:
        """Hold ``data`` (``AppState.set_dataset`` announces it, once every part is reset)."""
        self.dataset = data
        self.item_names = dict(names or {})
        self.colors = class_colors(data.num_classes)
        self.thumbnails.clear()
        self.spectrograms.clear()
        self._spectrograms_pending.clear()

    @property
    def name(self) -> str:
        """The open dataset's name (its title, else its file's name)."""
        return dataset_name(self.dataset)

    def key(self) -> dict[str, Any]:
        """What identifies the open dataset's shape (``run_records.dataset_key``)."""
        return run_records.dataset_key(self.dataset)

    # ----- items -------------------------------------------------------------------------------
    def items(self) -> list[tuple[str, int]]:
        """(split, index) of every item, in table order: train, val, test."""
        if self.dataset is None:
            return []
        return [(s, i) for s in ("train", "val", "test") for i in range(len(self.dataset.split(s)))]

    def item_path(self, split: str, index: int) -> str | None:
        if self.dataset is None:
            return None
        paths = self.dataset.split(split).paths
        return paths[index] if paths is not None else None

    def item_name(self, split: str, index: int) -> str:
        names = self.item_names.get(split)
        if names is not None:
            return names[index]
        path = self.item_path(split, index)
        return Path(path).name if path else f"{split} #{index}"

    def class_name(self, label: int | None) -> str:
        if label is None or self.dataset is None:
            return "?"
        return self.dataset.class_names[label] if label >= 0 else "unlabelled"

    # ----- pictures of the clips ---------------------------------------------------------------
    def set_thumbnails(self, batch: dict[str, Any], durations: dict[str, float]) -> None:
        self.thumbnails.update(batch)
        self.durations.update(durations)
        self.signals.thumbnailsChanged.emit()

    def request_clip(self, path: str) -> bool:
        """Ask for a missing clip of the demo to be built now; False for other datasets' clips
        (``clipReady`` follows when it exists)."""
        root = self.dataset.attrs.get("clips_dir") if self.dataset is not None else None
        if not root or Path(path).parent.parent != Path(root):
            return False
        self.signals.clipRequested.emit(path)
        return True

    def request_spectrograms(self, paths: list[str]) -> None:
        """Ask for the spectrograms of clips (each asked for once; results come by signal)."""
        wanted = [
            p for p in paths if p not in self.spectrograms and p not in self._spectrograms_pending
        ]
        if wanted:
            self._spectrograms_pending.update(wanted)
            self.signals.spectrogramsRequested.emit(wanted)

    def set_spectrograms(self, batch: dict[str, Any]) -> None:
        self.spectrograms.update(batch)
        self._spectrograms_pending.difference_update(batch)
        self.signals.spectrogramsChanged.emit()
