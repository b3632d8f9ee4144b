"""A row of controls that wraps onto more lines when its widget is too narrow for one.

Toolbars above the views (the map's tools, the Metrics run pickers) hold more than fits beside
a plot on a 1024-pixel screen; a plain ``QHBoxLayout`` then makes its widget's minimum width the
sum of all of them, and the window wider than the screen. ``FlowRow`` asks only for its widest
item and puts the rest on the next line, so the row needs as many lines as the width leaves it.
Items whose horizontal size policy expands (a slider, a status text) share each line's leftover
width; keep controls that belong together in one item (a label and its box in a small widget,
``group``).
"""

from __future__ import annotations

from PySide6.QtCore import QMargins, QPoint, QRect, QSize, Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLayout, QLayoutItem, QSizePolicy, QWidget


class FlowRow(QLayout):
    def __init__(self, parent: QWidget | None = None, spacing: int = 6, line_spacing: int = 4):
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._height = 0  # the height of the lines at the last width laid out
        self._spacing, self._line_spacing = spacing, line_spacing
        self.setContentsMargins(0, 0, 0, 0)

    # ----- QLayout ---------------------------------------------------------------------------
    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation.Horizontal

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        height = self._arrange(rect, move=True)
        if height != self._height:
            # Layouts outside a window (a dock's, a tab's) size their items without asking
            # heightForWidth: the lines now needed become the row's minimum height, and the
            # parent lays out again with it (on the next turn, not inside this layout pass).
            self._height = height
            widget = self.parentWidget()
            if widget is not None:
                QTimer.singleShot(0, widget, widget.updateGeometry)

    def sizeHint(self) -> QSize:
        """One line of everything (as many lines as the last width needed)."""
        items = self._visible()
        width = sum(i.sizeHint().width() for i in items) + self._spacing * max(len(items) - 1, 0)
        height = max((i.sizeHint().height() for i in items), default=0)
        return QSize(width, max(height + self._margin_size().height(), self._height))

    def minimumSize(self) -> QSize:
        """The widest item (anything wider wraps), as high as the lines the width needs."""
        size = QSize()
        for item in self._visible():
            size = size.expandedTo(item.minimumSize())
        size += self._margin_size()
        return QSize(size.width(), max(size.height(), self._height))

    # ----- placing ---------------------------------------------------------------------------
    def _visible(self) -> list[QLayoutItem]:
        return [i for i in self._items if not i.isEmpty()]

    def _margin_size(self) -> QSize:
        m: QMargins = self.contentsMargins()
        return QSize(m.left() + m.right(), m.top() + m.bottom())

    def _lines(self, width: int) -> list[list[QLayoutItem]]:
        lines: list[list[QLayoutItem]] = [[]]
        used = 0
        for item in self._visible():
            w = item.sizeHint().width()
            if lines[-1] and used + self._spacing + w > width:
                lines.append([])
                used = 0
            used += (self._spacing if lines[-1] else 0) + w
            lines[-1].append(item)
        return [line for line in lines if line]

    def _arrange(self, rect: QRect, move: bool) -> int:
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        y = area.y()
        for line in self._lines(area.width()):
            widths = [max(i.sizeHint().width(), i.minimumSize().width()) for i in line]
            spare = area.width() - sum(widths) - self._spacing * (len(line) - 1)
            grow = [i for i, item in enumerate(line) if _expands(item)]
            if spare > 0 and grow:
                for k, i in enumerate(grow):  # leftover width shared by the expanding items
                    widths[i] += spare // len(grow) + (1 if k < spare % len(grow) else 0)
            elif spare < 0:  # one item alone on a line wider than the row: it gets the row
                widths = [
                    max(i.minimumSize().width(), w + spare)
                    for i, w in zip(line, widths, strict=True)
                ]
            height = max(i.sizeHint().height() for i in line)
            x = area.x()
            for item, w in zip(line, widths, strict=True):
                if move:
                    h = item.sizeHint().height()
                    top = y + (height - h) // 2  # centred on the line, as in a QHBoxLayout
                    item.setGeometry(QRect(QPoint(x, top), QSize(w, h)))
                x += w + self._spacing
            y += height + self._line_spacing
        return max(y - self._line_spacing - area.y(), 0) + m.top() + m.bottom()


def _expands(item: QLayoutItem) -> bool:
    widget = item.widget()
    if widget is None:
        return False
    policy = widget.sizePolicy().horizontalPolicy()
    return bool(policy.value & QSizePolicy.PolicyFlag.ExpandFlag.value)


def group(*widgets: QWidget, stretch: int | None = None) -> QWidget:
    """Widgets kept on one line of a ``FlowRow`` (a label and its box); the widget at
    ``stretch`` takes the group's spare width, and then the group expands in the row."""
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for i, w in enumerate(widgets):
        layout.addWidget(w, 1 if i == stretch else 0)
    if stretch is not None:
        box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    return box
