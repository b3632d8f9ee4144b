"""The app's state: ``AppState`` owns the parts that hold what the views show, and the signals
object through which every part announces a change.

The parts, each given only what it needs by this root (the signals object, the parts below it,
a callable), never the root itself:

- ``signals`` (``StateSignals``): every *what changed* and *request* signal, and ``report_error``;
- ``catalog`` (``Catalog``): the open dataset, its items' names, files and classes, the class
  colours, thumbnails and spectrograms;
- ``retrieval`` (``Retrieval``): the model, the test embeddings queries search, the query, the
  direction, k and the results;
- ``runs`` (``Runs``): the training runs (a mapping of id to ``Run``), the current and the active
  one, and the training intents;
- ``embeddings`` (``Embeddings``): each run epoch's test embeddings, their layouts for the map,
  the map's projection method, and the epochs' test metrics;
- ``selection`` (``SelectionState``): the picked test items and the named selections;
- ``tasks`` (``Tasks``): the background tasks and their progress;
- ``labelling`` (``LabellingState``) and ``time`` (``TimeState``): the Labels tab's candidates
  and the user's labels; the clips' segments and the strips of the current results;
- ``audit`` (``AuditState``): the audit of the train pairs and the fixes the user accepts (the
  Data issues tab).

A view reads the parts, connects to ``signals`` (or to the labelling and time parts' own signals)
and sends intents by calling the parts' methods; it never calls another view. What spans parts is
here: opening a dataset resets them all, a checkpoint read from disk becomes the model and maybe
the current run, Cancel stops the active run or else a task. Nothing here draws or blocks.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject

from avexplorer.projections import EpochEmbeddings
from avexplorer.state.audit import AuditState
from avexplorer.state.catalog import Catalog
from avexplorer.state.embeddings import Embeddings
from avexplorer.state.labelling import LabellingState
from avexplorer.state.retrieval import Retrieval
from avexplorer.state.run import CHECKPOINT_RUN
from avexplorer.state.runs import Runs
from avexplorer.state.selection import SelectionState
from avexplorer.state.signals import StateSignals
from avexplorer.state.tasks import Tasks
from avexplorer.state.time_axis import TimeState
from core.data.dataset import AVDataset
from core.training.config import RunConfig


class AppState(QObject):
    def __init__(self, runs_root: str | Path | None = None, parent: QObject | None = None):
        super().__init__(parent)
        # Where runs write their checkpoints; a temp folder unless the app gives a lasting one.
        self._tmp = Path(tempfile.mkdtemp(prefix="avexplorer-"))
        root = Path(runs_root) if runs_root is not None else self._tmp
        self.signals = StateSignals(self)
        self.catalog = Catalog(self.signals)
        self.retrieval = Retrieval(self.signals, self.catalog)
        self.runs = Runs(
            self.signals,
            self.catalog,
            self.retrieval,
            root,
            on_embeddings=lambda rid, emb: self.embeddings.add_embeddings(rid, emb),
        )
        self.embeddings = Embeddings(self.signals, self.runs, self.retrieval)
        # Named selections go beside the dataset, else beside the runs' folder.
        selections_folder = (self._tmp if root == self._tmp else root.parent) / "selections"
        self.selection = SelectionState(
            self.signals, self.catalog, self.retrieval, selections_folder
        )
        self.tasks = Tasks(self.signals)
        # Unlabelled train clips, their pseudo-labels and the user's labels (labelling view).
        self.labelling = LabellingState(
            self.signals, self.catalog, self.runs, self.retrieval, self.embeddings, parent=self
        )
        # Clips' segments and the strips of the current results (Time tab, result rows).
        self.time = TimeState(self.signals, self.catalog, self.retrieval, parent=self)
        # The audit of the train pairs and the user's fixes (Data issues view).
        self.audit = AuditState(self.signals, self.catalog, self.runs, self.labelling, parent=self)

    def set_dataset(self, data: AVDataset, names: dict[str, tuple[str, ...]] | None = None) -> None:
        """Open ``data``; ``names`` (per split) name items that have no clip file. Every part
        forgets what belonged to the previous dataset, then the runs made on this one are read
        back from their folders."""
        self.catalog.open(data, names)
        self.selection.current = None
        self.retrieval.clear()
        self.embeddings.clear()
        s = self.signals
        s.datasetChanged.emit()
        s.queryChanged.emit()
        s.resultsChanged.emit()
        s.modelChanged.emit()
        s.selectionChanged.emit()
        self.runs.restore_runs()

    def set_checkpoint_model(
        self,
        model: Any,
        config: RunConfig,
        class_names: tuple[str, ...],
        emb: EpochEmbeddings | None,
        rid: int | None = None,
    ) -> None:
        """A checkpoint read from disk becomes the model for queries and the map.

        With ``rid`` (a restored run) its embeddings are kept with that run, made current; else
        under ``CHECKPOINT_RUN``.
        """
        self.retrieval.model_config = config
        self.retrieval.model_class_names = class_names
        if emb is None:
            self.retrieval.use_model(model)
        elif rid is not None and rid in self.runs:
            # Loading a run's checkpoint (from the run list, File > Open or show(run_dir))
            # makes that run the current one: its embeddings are then the ones the views use.
            changed = rid != self.runs.current_run_id
            self.runs.current_run_id = rid
            self.embeddings.add_embeddings(rid, emb)
            if changed:
                self.signals.currentRunChanged.emit(rid)
        else:
            self.runs.current_run_id = None
            self.embeddings.add_embeddings(CHECKPOINT_RUN, emb)

    # ----- cancel ------------------------------------------------------------------------------
    @property
    def cancellable(self) -> bool:
        """Whether Cancel has something to stop: the active run, or a cancellable task."""
        return self.runs.active_run is not None or self.tasks.cancellable

    def cancel(self) -> None:
        """Cancel: stop the active run, else the newest task that can be cancelled."""
        if self.runs.active_run is not None:
            self.runs.stop_training()
        else:
            self.tasks.cancel_newest()

    def cancel_all(self) -> None:
        """The app is quitting: every cancellable task and the active run stop now."""
        self.tasks.cancel_all()
        self.runs.stop_training()

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)
