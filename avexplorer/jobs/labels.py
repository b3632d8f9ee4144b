"""Saving the user's labels (``LabellingState.saveRequested``) in a worker, and retraining on them.

A feature file is a copy of the open one with the new train labels (``core.data.labels.
write_labelled_copy``); a manifest lists every clip with its label and split
(``core.data.labels.write_manifest``). Both refuse to overwrite the open dataset and appear whole or
not at all. With a retrain config the new file is then opened (as File > Open would) and the run
starts on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject

from avexplorer.jobs.runner import start
from avexplorer.state.app_state import AppState
from avexplorer.state.labelling import SaveRequest, manifest_rows
from core.atomic import refuse_overwrite
from core.data.dataset import AVDataset, DataError, load_h5
from core.errors import UserError


def write_labels(req: SaveRequest) -> tuple[str, AVDataset | None]:
    """Write ``req`` (in a worker); with a retrain, also load the new file. Errors name the file
    in one line."""
    from core.data.labels import write_labelled_copy, write_manifest

    dest = Path(req.path)
    source = Path(req.data.source) if req.data.source else None
    refuse_overwrite(dest, [("the open dataset", source)])
    try:
        if req.kind == "manifest":
            try:
                rows = manifest_rows(req.data, req.assignments)
            except ValueError as e:
                raise DataError(f"{dest}: {e}") from None
            write_manifest(dest, rows)
            return str(dest), None
        write_labelled_copy(req.data, req.assignments, dest)
    except OSError as e:
        raise UserError(f"{dest}: cannot write the labels ({e.strerror or e})") from None
    return str(dest), (load_h5(dest) if req.retrain is not None else None)


def retrain_on(state: AppState, jobs: Any, data: AVDataset | None, retrain: Any) -> None:
    """After a copy was saved for a retrain: open it as File > Open would (its thumbnails too,
    through the ``JobController`` ``jobs``), then start the run on it."""
    if data is None or retrain is None:
        return
    state.set_dataset(data)
    if jobs is not None:
        jobs.load_thumbnails()
    state.runs.request_training(retrain)


class LabelJobs(QObject):
    """Carries out the labelling state's save requests; ``jobs`` (the ``JobController``) loads
    the thumbnails of a file opened for a retrain."""

    def __init__(self, state: AppState, jobs: Any = None):
        super().__init__(state)
        self.state, self.jobs = state, jobs
        state.labelling.saveRequested.connect(self.save)

    def save(self, req: SaveRequest) -> None:
        s = self.state

        def done(result: tuple[str, AVDataset | None]) -> None:
            path, data = result
            s.labelling.saved(path, len(req.assignments))
            retrain_on(s, self.jobs, data, req.retrain)

        start(
            s,
            f"Saving labels to {Path(req.path).name}",
            write_labels,
            req,
            on_done=done,
            on_error=lambda msg: s.signals.report_error("Labels not saved", msg),
        )
