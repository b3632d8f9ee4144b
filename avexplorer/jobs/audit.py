"""The audit of the open dataset (``AuditState.auditRequested``) and the saving of its cleaned copy
(``AuditState.saveRequested``), in workers.

The audit runs ``core.exploration.audit.audit_dataset`` with progress and cancel; the copy is
written by ``core.data.labels.write_cleaned_copy`` (never over the source, whole or not at all).
With a retrain config the new file is then opened and the run starts on it, as the labelling
view's "Save and retrain" does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject

from avexplorer.jobs.labels import retrain_on
from avexplorer.jobs.runner import start
from avexplorer.state.app_state import AppState
from avexplorer.state.audit import CleanRequest
from core.atomic import refuse_overwrite
from core.data.dataset import AVDataset, load_h5
from core.errors import UserError
from core.exploration.audit import Audit, audit_dataset


def run_audit(data: AVDataset, progress: Callable[[int, int], None]) -> Audit:
    return audit_dataset(data, progress=lambda done, total, _what: progress(done, total))


def write_cleaned(req: CleanRequest) -> tuple[str, AVDataset | None]:
    """Write ``req`` (in a worker); with a retrain, also load the new file."""
    from core.data.labels import write_cleaned_copy

    dest = Path(req.path)
    refuse_overwrite(dest, [("the open dataset", req.data.source or None)])
    try:
        write_cleaned_copy(req.data, req.relabel, req.drop, dest)
    except OSError as e:
        raise UserError(f"{dest}: cannot write the copy ({e.strerror or e})") from None
    return str(dest), (load_h5(dest) if req.retrain is not None else None)


class AuditJobs(QObject):
    """Carries out the audit state's requests; ``jobs`` (the ``JobController``) loads the
    thumbnails of a file opened for a retrain."""

    def __init__(self, state: AppState, jobs: Any = None):
        super().__init__(state)
        self.state, self.jobs = state, jobs
        state.audit.auditRequested.connect(self.audit)
        state.audit.saveRequested.connect(self.save)

    def audit(self, data: AVDataset) -> None:
        s = self.state

        def failed(msg: str) -> None:
            s.audit.audit_failed(msg)
            s.signals.report_error("Audit failed", msg)

        worker = start(
            s,
            "Auditing the train pairs",
            run_audit,
            data,
            on_done=lambda audit: s.audit.set_audit(audit, data),
            on_error=failed,
            unit="steps",
        )
        # a cancelled audit ends without a result: let the view offer it again
        worker.finished.connect(lambda: s.audit.computing and s.audit.audit_failed("cancelled"))

    def save(self, req: CleanRequest) -> None:
        s = self.state

        def done(result: tuple[str, AVDataset | None]) -> None:
            path, data = result
            s.audit.saved(path)
            retrain_on(s, self.jobs, data, req.retrain)

        start(
            s,
            f"Saving a cleaned copy to {Path(req.path).name}",
            write_cleaned,
            req,
            on_done=done,
            on_error=lambda msg: s.signals.report_error("Cleaned copy not saved", msg),
        )
