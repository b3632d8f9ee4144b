"""The data-issues part of the app's state: the audit of the open dataset's train pairs (which
labels look wrong, which sounds do not belong to their picture) and the fixes the user accepts.

One ``AuditState`` lives in ``AppState.audit``; the root gives it the parts it reads (the
signals, the catalog of the open dataset, the runs and the labelling part, whose retrain settings a
retrain uses). ``suspects`` lists the flagged pairs of the last
audit (``core.exploration.audit``), by row of the file's train arrays; ``fixes`` maps such rows
to the fix the user chose (relabel to a class, mark unlabelled, drop the pair). Views read both
and call ``request_audit`` / ``accept`` / ``relabel`` / ``unlabel`` / ``drop`` / ``undo`` /
``save``; the audit and the saving are requests (``auditRequested``, ``saveRequested``) that
``avexplorer.jobs.audit.AuditJobs`` carries out in a worker. Nothing here draws or blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from avexplorer.state.catalog import Catalog
from avexplorer.state.labelling import LabellingState
from avexplorer.state.runs import Runs
from avexplorer.state.signals import StateSignals
from core.data.dataset import UNLABELLED, AVDataset
from core.exploration.audit import Audit, file_row_location
from core.training.config import RunConfig

LABEL, MISMATCH = "label", "mismatch"
RELABEL, UNLABEL, DROP = "relabel", "unlabel", "drop"


@dataclass(frozen=True)
class Suspect:
    kind: str  # LABEL or MISMATCH
    row: int  # row of the file's train arrays
    given: int
    suggested: int  # the likely class (a label issue's fix; for a mismatch, what both halves say)
    score: float
    rank: int  # 0 = the most suspect of its kind


@dataclass(frozen=True)
class Fix:
    action: str  # RELABEL, UNLABEL or DROP
    class_id: int = UNLABELLED  # the new class of a RELABEL


@dataclass(frozen=True)
class CleanRequest:
    path: str
    data: AVDataset
    relabel: dict[int, int]  # file train row -> class (or -1: unlabelled)
    drop: list[int]  # file train rows
    retrain: RunConfig | None = None  # then open the new file and train this run on it


class AuditState(QObject):
    auditChanged = Signal()  # a new audit, an audit started, or none (another dataset)
    fixesChanged = Signal()
    auditRequested = Signal(object)  # the AVDataset to audit (``AuditJobs`` runs it)
    saveRequested = Signal(object)  # a CleanRequest (``AuditJobs`` writes it)

    def __init__(
        self,
        signals: StateSignals,
        catalog: Catalog,
        runs: Runs,
        labelling: LabellingState,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.signals, self.catalog, self.runs, self.labelling = signals, catalog, runs, labelling
        self.audit: Audit | None = None
        self.suspects: list[Suspect] = []
        self.fixes: dict[int, Fix] = {}
        self.computing = False
        self.note = ""  # why there is no audit, in words ("" when there is one)
        signals.datasetChanged.connect(self._dataset_changed)

    # ----- the audit ---------------------------------------------------------------------------
    def _dataset_changed(self) -> None:
        self.audit, self.suspects, self.computing, self.note = None, [], False, ""
        self.fixes.clear()
        self.auditChanged.emit()
        self.fixesChanged.emit()

    def request_audit(self) -> None:
        data = self.catalog.dataset
        if data is None:
            self.signals.message.emit("Open a dataset to audit it.")
            return
        if self.computing:
            return
        self.computing, self.note = True, ""
        self.auditChanged.emit()
        self.auditRequested.emit(data)

    def set_audit(self, audit: Audit, data: AVDataset) -> None:
        """The audit of ``data`` finished (on the GUI thread)."""
        if data is not self.catalog.dataset:
            return  # another dataset was opened meanwhile
        self.computing = False
        self.audit = audit
        self.suspects = suspects_of(audit)
        self.auditChanged.emit()
        n_labels = sum(s.kind == LABEL for s in self.suspects)
        self.signals.message.emit(
            f"Audit: {n_labels} label issues, {len(self.suspects) - n_labels} mismatched pairs"
        )

    def audit_failed(self, reason: str) -> None:
        self.computing = False
        lines = reason.strip().splitlines()
        self.note = lines[0] if lines else "the audit failed"
        self.auditChanged.emit()

    # ----- where a row is ----------------------------------------------------------------------
    def location(self, row: int) -> tuple[str, int]:
        """(split, position) in the open dataset of file train row ``row``."""
        assert self.catalog.dataset is not None
        return file_row_location(self.catalog.dataset, row)

    def path(self, row: int) -> str | None:
        return self.catalog.item_path(*self.location(row))

    def name(self, row: int) -> str:
        return self.catalog.item_name(*self.location(row))

    # ----- the user's fixes --------------------------------------------------------------------
    def _set(self, row: int, fix: Fix | None) -> None:
        if fix is None:
            if self.fixes.pop(int(row), None) is None:
                return
        elif self.fixes.get(int(row)) == fix:
            return
        else:
            self.fixes[int(row)] = fix
        self.fixesChanged.emit()

    def accept(self, suspect: Suspect) -> None:
        """The suggested fix: a label issue takes its suggested class, a mismatched pair goes."""
        if suspect.kind == LABEL:
            self._set(suspect.row, Fix(RELABEL, suspect.suggested))
        else:
            self._set(suspect.row, Fix(DROP))

    def relabel(self, row: int, class_id: int) -> None:
        data = self.catalog.dataset
        if data is None or not 0 <= class_id < data.num_classes:
            self.signals.message.emit(f"There is no class {class_id + 1}.")
            return
        self._set(row, Fix(RELABEL, class_id))

    def unlabel(self, row: int) -> None:
        self._set(row, Fix(UNLABEL))

    def drop(self, row: int) -> None:
        self._set(row, Fix(DROP))

    def undo(self, row: int) -> None:
        self._set(row, None)

    # ----- saving ------------------------------------------------------------------------------
    def save(self, path: str, retrain: bool = False) -> None:
        """Write a cleaned copy of the open feature file with the fixes (never over it); with
        ``retrain``, then open it and train the current run's settings on it."""
        data = self.catalog.dataset
        if data is None or not data.source:
            self.signals.report_error("Nothing to save", "Open a feature file first.")
            return
        if not self.fixes:
            self.signals.message.emit("No fixes to save: accept some first.")
            return
        if retrain and self.runs.active_run is not None:
            self.signals.message.emit("A run is in progress: stop it before retraining.")
            return
        relabel = {
            r: (f.class_id if f.action == RELABEL else UNLABELLED)
            for r, f in self.fixes.items()
            if f.action != DROP
        }
        drop = sorted(r for r, f in self.fixes.items() if f.action == DROP)
        config = self.labelling.retrain_config() if retrain else None
        self.saveRequested.emit(CleanRequest(path, data, relabel, drop, config))

    def saved(self, path: str) -> None:
        """A save finished (``AuditJobs`` calls it on the GUI thread)."""
        drops = sum(f.action == DROP for f in self.fixes.values())
        self.signals.message.emit(
            f"Saved a cleaned copy to {path}: {len(self.fixes) - drops} labels changed, "
            f"{drops} pairs dropped"
        )


def suspects_of(audit: Audit) -> list[Suspect]:
    """The flagged pairs of ``audit``: label issues then mismatched pairs, most suspect first."""
    out = []
    at = {int(r): i for i, r in enumerate(audit.rows)}
    for rank, x in enumerate(audit.label_issues()):
        out.append(Suspect(LABEL, x.index, x.given, x.suggested, x.score, rank))
    for rank, x in enumerate(audit.mismatched_pairs()):
        i = at[x.index]
        out.append(
            Suspect(MISMATCH, x.index, int(audit.given[i]), int(audit.suggested[i]), x.score, rank)
        )
    return out
