"""docs/notebook.md's notebook example, run in a real Jupyter kernel (headless, offscreen Qt).

Runs only where the notebook stack is installed (the ``test`` extra brings it): a kernel started
by nbclient executes the doc's ``%gui qt`` cell as written, then a stand-in for the user's hand
waits for the map and selects on it, and the notebook reads the selection back.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[2]


def documented_notebook_cell() -> str:
    """The last python block of docs/notebook.md: what a user pastes into a notebook cell."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "notebook.md").read_text(), re.S)
    assert blocks and blocks[-1].startswith("%gui qt"), "docs/notebook.md lost its notebook cell"
    return blocks[-1]


ARRAYS = """\
import numpy as np
rng = np.random.default_rng(0)
labels = np.repeat(np.arange(3), 20)
centres = rng.normal(size=(3, 8)) * 4
audio = centres[labels] + rng.normal(size=(60, 8))
visual = centres[labels] + rng.normal(size=(60, 8))
names = [f"clip {i}" for i in range(60)]
"""

# The user's pause and hand: Qt events run (as they do while the kernel is idle) until the map is
# drawn, then the audio points of class 2 are selected on it, as the Lasso does.
HAND = """\
import time
from PySide6.QtWidgets import QApplication
deadline = time.monotonic() + 60
while h.window.map.layout_shown is None and time.monotonic() < deadline:
    QApplication.processEvents()
    time.sleep(0.02)
print("visible", h.window.isVisible(), "points", len(h.window.map.points))
h.state.selection.select_points(np.r_[labels == 2, np.zeros(60, bool)])
"""


def run_notebook(cells: list[str], tmp_path: Path, monkeypatch) -> list[tuple[str, str]]:
    """Each cell's (stdout and results, stderr) after a fresh kernel ran them all in order."""
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    # The kernel runs in the repository, so it imports this checkout's avexplorer.
    client = nbclient.NotebookClient(
        nb, timeout=90, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()

    def text(outputs, stderr: bool) -> str:
        return "".join(
            o.get("text", "") or str(o.get("data", {}).get("text/plain", ""))
            for o in outputs
            if (o.get("name") == "stderr") == stderr
        )

    return [(text(c.outputs, False), text(c.outputs, True)) for c in nb.cells]


def test_the_documented_notebook_cell_returns_at_once_and_follows_the_map(tmp_path, monkeypatch):
    cells = [ARRAYS, documented_notebook_cell(), HAND, "print(np.bincount(labels[h.selection]))"]
    cells.append("print(h.selected_audio.tolist() == list(range(40, 60)), h.selected_visual)")
    cells.append("h.close(); print(h)")
    outputs = run_notebook(cells, tmp_path, monkeypatch)

    def out(i: int) -> str:
        return outputs[i][0]

    # The doc's cell: show() returned at once (the kernel ran the next cells), nothing selected.
    assert out(1).strip() == "array([], dtype=int64)", textwrap.shorten(out(1), 300)
    assert out(2).strip() == "visible True points 120"
    assert out(3).strip() == "[ 0  0 20]"  # the group on the map: all of class 2
    assert out(4).strip() == "True []"
    assert out(5).strip() == "<avexplorer window (closed): 20 clips selected>"


# Without %gui qt: close the window from a timer once the map is drawn, after selecting class 1.
CLOSE_LATER = """\
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from avexplorer.main_window import MainWindow
app = QApplication.instance() or QApplication([])
def act():
    windows = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
    if windows and windows[0].map.layout_shown is not None:
        windows[0].state.selection.select_class(1)
        windows[0].close()
    else:
        QTimer.singleShot(50, act)
QTimer.singleShot(50, act)
"""


def test_without_gui_qt_show_waits_for_the_window_and_says_why(tmp_path, monkeypatch):
    show = "import avexplorer\nh = avexplorer.show(audio, visual, labels)\nprint(h)"
    outputs = run_notebook([ARRAYS, CLOSE_LATER, show], tmp_path, monkeypatch)
    out, err = outputs[2]
    assert out.strip() == "<avexplorer window (closed): 20 clips selected>"
    assert "this kernel runs no Qt event loop" in err and "%gui qt" in err
