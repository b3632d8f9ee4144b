"""Everything the app's state announces, on one ``StateSignals`` object (``AppState.signals``).

*What changed* signals tell views to redraw; *request* signals ask for background work that
``avexplorer.jobs.controller.JobController`` carries out, whose results come back through the
parts' methods on the GUI thread. Every part of the state receives this object and emits here, so
a view or a job connects to one place whichever part changed. The labelling and time parts add
their own few signals, which only their views and jobs follow.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

import avexplorer.qt_compat  # noqa: F401 (before any Qt call: keeps PySide6 6.12 from crashing)


class StateSignals(QObject):
    # ----- what changed ---------------------------------------------------------------------------
    datasetChanged = Signal()
    runAdded = Signal(int)
    runRemoved = Signal(int)
    unreadableRunsChanged = Signal()  # ``Runs.unreadable`` holds the last scan's problems
    runStateChanged = Signal(int)
    runVisibilityChanged = Signal()
    stepsAppended = Signal(int)
    epochAdded = Signal(int, int)
    snapshotChanged = Signal(int)
    pseudoLabelsChanged = Signal(int)  # run id: ``Run.pseudo`` is a newer epoch's
    embeddingsAdded = Signal(int, int)  # run id (CHECKPOINT_RUN for a loaded checkpoint), epoch
    layoutReady = Signal(int, int, str)  # run id, epoch, method
    ranksReady = Signal(int, int)  # run id, epoch: ``Embeddings.ranks_for(rid, epoch)`` is in
    metricsReady = Signal(int, int)  # run id, epoch: ``Embeddings.metrics[(rid, epoch)]`` is in
    currentRunChanged = Signal(int)
    modelChanged = Signal()
    directionChanged = Signal(str)
    projectionChanged = Signal(str)
    queryChanged = Signal()
    resultsChanged = Signal()
    thumbnailsChanged = Signal()
    spectrogramsChanged = Signal()
    taskChanged = Signal(str)  # the text of the newest task, "" when idle
    selectionChanged = Signal()
    message = Signal(str)  # one-line status for the status bar
    error = Signal(str, str)  # title, message

    # ----- requests for background work (``JobController`` carries them out) --------------------
    trainRequested = Signal(object)  # RunConfig
    pauseRequested = Signal(int)  # run id
    resumeRequested = Signal(int)  # a paused run goes on
    runResumeRequested = Signal(int)  # a stopped run continues from its last.pt (Resume run)
    stopRequested = Signal(int)
    layoutRequested = Signal(int, int, str)  # run id, epoch, method
    metricsRequested = Signal(int, int)  # run id, epoch: compute every test metric
    ranksRequested = Signal(int, int)  # run id, epoch: compute the epoch's match ranks
    fileQueryRequested = Signal(str)  # path of a video, sound, image or feature file
    checkpointRequested = Signal(str)  # path of a checkpoint to load for queries and the map
    spectrogramsRequested = Signal(list)  # clip paths whose spectrograms a view wants
    clipRequested = Signal(str)  # a demo clip to build now (someone wants to play it)
    clipReady = Signal(str)  # path: a requested clip file exists now
    checkpointLoaded = Signal(str, str)  # path, a label (method, dataset, date, best MAP)
    selectionExportRequested = Signal(str, str)  # kind ("csv", "npz", "h5"), path

    def report_error(self, title: str, message: str) -> None:
        """An error the user must see: a dialog (``error``) and its first line in the status bar."""
        self.message.emit(f"{title}: {message.splitlines()[0] if message else ''}")
        self.error.emit(title, message)
