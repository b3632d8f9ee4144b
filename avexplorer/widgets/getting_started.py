"""Help > Getting started: what to click first, and where runs and saved files go.

The folders are this session's (the runs folder the app writes to, the file that keeps the open
dataset's named selections, the settings file), so the page answers "where is it?" exactly.
docs/app.md has the same page in its "Getting started" section.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget


def _folder_link(path: Path | str) -> str:
    """A path as a link that opens its folder in the file manager."""
    p = Path(path)
    folder = p if p.is_dir() or not p.suffix else p.parent
    url = QUrl.fromLocalFile(str(folder)).toString()
    return f"<a href='{html.escape(url)}'><code>{html.escape(str(p))}</code></a>"


def getting_started_html(
    runs_folder: Path | str, selections_file: Path | str | None, settings_file: str
) -> str:
    selections = (
        f"in {_folder_link(selections_file)}"
        if selections_file is not None
        else "beside the dataset's file (or, when its folder cannot be written, beside the runs "
        "folder)"
    )
    return f"""
<h2>Getting started</h2>
<h3>What to click first</h3>
<ol>
<li><b>Data.</b> The demo (spoken digits over handwritten digits) opens on the first launch;
File &gt; <i>Open demo dataset</i> (Ctrl+D) opens it again. Your own clips: File &gt;
<i>Open folder of clips…</i> (features are extracted, with progress in the status bar), or
<i>Open feature file…</i> for an <code>.h5</code> made by <code>avexplorer extract</code>.</li>
<li><b>Train.</b> In the <b>Training</b> tab pick a method (psd is the paper's) and, to see what
few labels do, a <i>Label fraction</i> below 1; then <b>Start</b> (Ctrl+R). The loss, the
validation MAP and the teacher's alignment fill in live; <b>Stop</b> (Ctrl+.) keeps what was
learnt.</li>
<li><b>Explore.</b> In <b>Explore</b>, click a point on the map or a clip in the Dataset table:
its nearest clips of the other modality are listed on the right, with ✔ for the same class.
<i>Query with a file…</i> (Ctrl+Shift+F), or a file dropped on the window, searches with your
own sound, picture or video.</li>
<li><b>Look closer.</b> <b>Metrics</b> shows what one MAP hides (per class, the confusion, the
worst queries); <b>Time</b> where in each clip sound and picture match; <b>Labels</b> the
teacher's guesses for unlabelled clips, to accept or correct and train again.</li>
</ol>
<p>If the window is small, the Dataset and Selection panels can be closed and reopened from the
View menu; Ctrl+1, Ctrl+2, … switch tabs.</p>
<h3>Where things go</h3>
<ul>
<li><b>Training runs</b>: one folder per run in {_folder_link(runs_folder)}, with its
checkpoints (<code>model.pt</code>, the best on validation; <code>last.pt</code>, to resume) and
its curves. They are listed again in the Training tab at the next launch, and Delete run…
removes one.</li>
<li><b>Saved labels, exported embeddings, results and plots, checkpoints you save</b>: where you
choose in the save dialog, which opens in the folder you last used. The open dataset is never
overwritten.</li>
<li><b>Named selections</b> (Selection panel &gt; Save as…): {selections}.</li>
<li><b>Window layout, recent runs and last folders</b>: {_folder_link(settings_file)}.</li>
</ul>
<p>docs/app.md describes every view; <code>avexplorer --help</code> the command line.</p>
"""


class GettingStartedDialog(QDialog):
    def __init__(
        self,
        runs_folder: Path | str,
        selections_file: Path | str | None,
        settings_file: str,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.setWindowTitle("Getting started with avexplorer")
        self.resize(640, 560)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(True)
        self.text.setHtml(getting_started_html(runs_folder, selections_file, settings_file))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
