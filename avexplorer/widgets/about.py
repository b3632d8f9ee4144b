"""About dialog: version, and the licences and credits of the bundled data and models.

The credits come from ``resources/attribution.json`` (kept by the demo's maintainers); entries
marked ``prominent`` (e.g. the Italian Menardi voices, whose licence asks for visible credit) are
listed first and in bold.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from avexplorer import __version__

RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def attribution_html(path: Path = RESOURCES / "attribution.json") -> str:
    head = (
        f"<h2>avexplorer {__version__}</h2>"
        "<p>Audio-visual embedding learning with progressive self-distillation "
        "(Zeng &amp; Ikeda, arXiv 2501.09608): live training, cross-modal pairs and retrieval "
        "in one window. MIT licence.</p>"
    )
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return head + f"<p><i>No attribution file found at {html.escape(str(path))}.</i></p>"
    items = sorted(data.get("items", []), key=lambda it: not it.get("prominent", False))
    parts = [head, f"<h3>{html.escape(data.get('title', 'Credits'))}</h3>"]
    if data.get("notice"):
        parts.append(f"<p>{html.escape(data['notice'])}</p>")
    for it in items:
        name = html.escape(it.get("name", ""))
        if it.get("prominent"):
            name = f"<b>{name}</b>"
        link = ""
        if it.get("licence_file"):
            url = QUrl.fromLocalFile(str(path.parent / it["licence_file"])).toString()
            link = f" · <a href='{url}'>licence text</a>"
        web = (
            f" · <a href='{html.escape(it['url'])}'>{html.escape(it['url'])}</a>"
            if it.get("url")
            else ""
        )
        parts.append(
            f"<p>{name} — {html.escape(it.get('what', ''))}<br>"
            f"<b>{html.escape(it.get('licence', ''))}</b>{link}{web}<br>"
            f"<small>{html.escape(it.get('credit', ''))}</small></p>"
        )
    return "".join(parts)


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About avexplorer")
        self.resize(720, 600)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(True)
        self.text.setHtml(attribution_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
