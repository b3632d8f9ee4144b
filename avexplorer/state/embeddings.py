"""What each run epoch's test embeddings give the views: the embeddings themselves (of a run, or
of a checkpoint opened from a file, kept under ``CHECKPOINT_RUN``), their 2-D layouts for the map
with the map's projection method, and every test metric of an epoch, computed on request.

``Embeddings`` lives in ``AppState.embeddings``. A run's embeddings and layouts are kept on its
``Run``; those of a loaded checkpoint here. Embeddings of the current run become what queries
search (``Retrieval.use_embeddings``); a run of another dataset keeps its curves but offers no
embeddings (``Runs.trained_on_open_dataset``). Layouts other than the training process's PCA are
requested (``layoutRequested``), as are metrics (``metricsRequested``); both come back here.
The match ranks the map colours by need every item against every other, so they are requested
(``ranksRequested``) once per epoch, when its first layout has arrived: the map is drawn first,
and recoloured when the ranks come back (``ranksReady``).
"""

from __future__ import annotations

from typing import Any

from avexplorer.projections import EpochEmbeddings, Layout
from avexplorer.state.retrieval import Retrieval
from avexplorer.state.run import CHECKPOINT_RUN
from avexplorer.state.runs import Runs
from avexplorer.state.signals import StateSignals

# The map's layouts (core.exploration.projection's methods) and the names the app shows for them.
PROJECTIONS = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}


class Embeddings:
    def __init__(self, signals: StateSignals, runs: Runs, retrieval: Retrieval):
        self.signals, self.runs, self.retrieval = signals, runs, retrieval
        self.projection = "pca"
        # A loaded checkpoint's test embeddings and layouts (it has no Run).
        self.checkpoint_embeddings: dict[int, EpochEmbeddings] = {}
        self.checkpoint_layouts: dict[tuple[int, str], Layout] = {}
        # Every test metric (core.evaluation.metrics.CrossModalMetrics) of a run's epoch, computed
        # on request.
        self.metrics: dict[tuple[int, int], Any] = {}
        self._metrics_pending: set[tuple[int, int]] = set()
        self._ranks_pending: set[tuple[int, int]] = set()
        signals.runRemoved.connect(self._forget_metrics)

    def clear(self) -> None:
        """Another dataset is open: the loaded checkpoint's embeddings and all metrics go."""
        self.checkpoint_embeddings, self.checkpoint_layouts = {}, {}
        self.metrics.clear()
        self._metrics_pending.clear()
        self._ranks_pending.clear()

    def set_projection(self, method: str) -> None:
        """Show the map in ``method`` (a key of ``PROJECTIONS``, in any case)."""
        method = method.lower()
        if method in PROJECTIONS and method != self.projection:
            self.projection = method
            self.signals.projectionChanged.emit(method)

    # ----- embeddings and layouts --------------------------------------------------------------
    def add_embeddings(self, rid: int, emb: EpochEmbeddings) -> None:
        run = self.runs.get(rid)
        if run is not None:
            run.embeddings[emb.epoch] = emb
        elif rid == CHECKPOINT_RUN:
            self.checkpoint_embeddings = {emb.epoch: emb}
            self.checkpoint_layouts = {}
            self._forget_metrics(rid)
        current = rid == self.runs.current_run_id
        if run is None or (current and self.runs.trained_on_open_dataset(run)):
            self.retrieval.use_embeddings(emb, config=run.config if run else None)
        if emb.layout is not None:  # made by the training process with the embeddings
            self.add_layout(rid, emb.layout)
        self.signals.embeddingsAdded.emit(rid, emb.epoch)

    def add_layout(self, rid: int, layout: Layout) -> None:
        run = self.runs.get(rid)
        if run is not None:
            run.layouts[(layout.epoch, layout.method)] = layout
        elif rid == CHECKPOINT_RUN:
            self.checkpoint_layouts[(layout.epoch, layout.method)] = layout
        else:
            return  # the run was removed meanwhile
        self.signals.layoutReady.emit(rid, layout.epoch, layout.method)
        self.request_ranks(rid, layout.epoch)  # the map is drawn: now the slow part

    # ----- match ranks -------------------------------------------------------------------------
    def ranks_for(self, rid: int, epoch: int):
        """The [2N] match ranks of a run epoch's items (audio, then visual), or None until they
        are computed."""
        emb = self.embeddings_for(rid).get(epoch)
        return emb.ranks if emb is not None else None

    def request_ranks(self, rid: int, epoch: int) -> None:
        """Ask for an epoch's match ranks once (announced by ``ranksReady``)."""
        key = (rid, epoch)
        emb = self.embeddings_for(rid).get(epoch)
        if emb is not None and emb.ranks is None and key not in self._ranks_pending:
            self._ranks_pending.add(key)
            self.signals.ranksRequested.emit(rid, epoch)

    def set_ranks(self, rid: int, epoch: int, emb: EpochEmbeddings, ranks: Any) -> None:
        """The ranks computed from ``emb``; dropped if the epoch's embeddings were replaced."""
        self._ranks_pending.discard((rid, epoch))
        if self.embeddings_for(rid).get(epoch) is emb:
            emb.ranks = ranks
            self.signals.ranksReady.emit(rid, epoch)

    def ranks_ended(self, rid: int, epoch: int) -> None:
        """The ranks job ended without ranks (cancelled or failed): they may be asked again."""
        self._ranks_pending.discard((rid, epoch))

    def layouts_for(self, rid: int) -> dict[tuple[int, str], Layout]:
        if rid == CHECKPOINT_RUN:
            return self.checkpoint_layouts
        run = self.runs.get(rid)
        return run.layouts if run is not None else {}

    def embeddings_for(self, rid: int) -> dict[int, EpochEmbeddings]:
        if rid == CHECKPOINT_RUN:
            return self.checkpoint_embeddings
        run = self.runs.get(rid)
        return run.embeddings if run is not None and self.runs.trained_on_open_dataset(run) else {}

    def latest_epoch(self, rid: int) -> int | None:
        """The newest epoch of ``rid`` with test embeddings (what its metrics describe)."""
        embeddings = self.embeddings_for(rid)
        return max(embeddings) if embeddings else None

    def previous_layout(self, rid: int, epoch: int, method: str) -> Layout | None:
        """The layout of the nearest earlier epoch with ``method`` (for alignment, and as the start
        of a UMAP or t-SNE)."""
        layouts = self.layouts_for(rid)
        earlier = [e for e, m in layouts if m == method and e < epoch]
        return layouts[(max(earlier), method)] if earlier else None

    # ----- metrics -----------------------------------------------------------------------------
    def request_metrics(self, rid: int, epoch: int) -> None:
        """Ask for every test metric of a run's epoch (announced by ``metricsReady``)."""
        key = (rid, epoch)
        if key in self.metrics:
            self.signals.metricsReady.emit(rid, epoch)
        elif key not in self._metrics_pending and epoch in self.embeddings_for(rid):
            self._metrics_pending.add(key)
            self.signals.metricsRequested.emit(rid, epoch)

    def set_metrics(self, rid: int, epoch: int, metrics: Any) -> None:
        self._metrics_pending.discard((rid, epoch))
        if epoch in self.embeddings_for(rid):  # else the run or dataset went meanwhile
            self.metrics[(rid, epoch)] = metrics
            self.signals.metricsReady.emit(rid, epoch)

    def metrics_failed(self, rid: int, epoch: int, message: str) -> None:
        self._metrics_pending.discard((rid, epoch))
        self.signals.report_error("Metrics failed", message)

    def _forget_metrics(self, rid: int) -> None:
        for key in [k for k in self.metrics if k[0] == rid]:
            del self.metrics[key]
        self._metrics_pending = {k for k in self._metrics_pending if k[0] != rid}
        self._ranks_pending = {k for k in self._ranks_pending if k[0] != rid}
