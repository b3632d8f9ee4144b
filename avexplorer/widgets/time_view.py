"""The "Time" tab: the sync view of the selected clip above the moments of the query's results."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from avexplorer.state.app_state import AppState
from avexplorer.state.time_axis import TimeState
from avexplorer.widgets.moment_strips import MomentStrips
from avexplorer.widgets.sync_view import SyncView


class TimeView(QWidget):
    def __init__(self, state: AppState, time_state: TimeState, parent: QWidget | None = None):
        super().__init__(parent)
        self.sync = SyncView(state, time_state)
        self.moments = MomentStrips(state, time_state)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.sync)
        split.addWidget(self.moments)
        split.setSizes([560, 340])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    def plots(self) -> dict[str, QWidget]:
        return self.sync.plots_for_export()
