"""The training runs: those trained in this session and those read back from their folders,
which one is current, which one is training, and the intents that start, pause and stop it.

``Runs`` lives in ``AppState.runs`` and reads as a mapping of run id to ``Run``. One home per
rule: which run is active (``active_run``: at most one, two would fight over the cores), what
pause means (``toggle_pause``), which runs' embeddings describe the open test split
(``trained_on_open_dataset``). Training itself is requested by signal (``trainRequested``,
``pauseRequested``, ...); the job hands the run's events back to ``handle_events`` on the GUI
thread, which folds them into the ``Run`` and passes its test embeddings on to the embeddings
part (the ``on_embeddings`` callable the root gives).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from avexplorer import run_records
from avexplorer.projections import EpochEmbeddings
from avexplorer.state.catalog import Catalog
from avexplorer.state.retrieval import Retrieval
from avexplorer.state.run import ACTIVE_STATES, Run, run_color
from avexplorer.state.signals import StateSignals
from core.training.config import RunConfig
from core.training.events import (
    AlignmentSnapshot,
    CheckpointSaved,
    EpochEnd,
    Paused,
    PseudoLabels,
    Resumed,
    RunFinished,
    RunStarted,
    StepEnd,
)


class Runs(Mapping[int, Run]):
    def __init__(
        self,
        signals: StateSignals,
        catalog: Catalog,
        retrieval: Retrieval,
        root: Path,
        on_embeddings: Callable[[int, EpochEmbeddings], None],
    ):
        """``root``: where runs write their folders (and where ``restore_runs`` looks);
        ``on_embeddings(rid, emb)``: an epoch's test embeddings arrived with a run's events."""
        self.signals, self.catalog, self.retrieval = signals, catalog, retrieval
        self.root = root
        self._on_embeddings = on_embeddings
        self._runs: dict[int, Run] = {}
        # Run folders the last scan of ``root`` could not read: (folder name, why).
        self.unreadable_runs: list[tuple[str, str]] = []
        self.current_run_id: int | None = None
        self._ids = itertools.count(1)

    def __getitem__(self, rid: int) -> Run:
        return self._runs[rid]

    def __iter__(self) -> Iterator[int]:
        return iter(self._runs)

    def __len__(self) -> int:
        return len(self._runs)

    # ----- which run ---------------------------------------------------------------------------
    @property
    def active_run(self) -> Run | None:
        """The run that is training (at most one: two would fight over the cores)."""
        return next((r for r in self._runs.values() if r.active), None)

    @property
    def current_run(self) -> Run | None:
        return self._runs.get(self.current_run_id) if self.current_run_id is not None else None

    def set_current_run(self, rid: int) -> None:
        if rid in self._runs and rid != self.current_run_id:
            self.current_run_id = rid
            run = self._runs[rid]
            embeddings = run.embeddings if self.trained_on_open_dataset(run) else {}
            if embeddings:
                self.retrieval.use_embeddings(embeddings[max(embeddings)], run.config)
            elif run.restored and run.best_checkpoint() is not None:
                self.signals.checkpointRequested.emit(str(run.best_checkpoint()))
            self.signals.currentRunChanged.emit(rid)

    def trained_on_open_dataset(self, run: Run) -> bool:
        """Whether ``run`` trained on data shaped as the open dataset (classes, dimensions, split
        sizes): only then do its test embeddings describe the open test split, for the map, the
        metrics and queries. A run of another dataset keeps its curves."""
        return run.dataset_key == self.catalog.key()

    def latest_checkpoint(self) -> Path | None:
        """The best (else last) checkpoint of the current run."""
        run = self.current_run
        return run.best_checkpoint() if run is not None else None

    def run_name(self, rid: int) -> str:
        """A run's name for lists, "loaded checkpoint" for a checkpoint opened from a file."""
        run = self._runs.get(rid)
        return run.name if run is not None else "loaded checkpoint"

    def set_run_visible(self, rid: int, visible: bool) -> None:
        if rid in self._runs:
            self._runs[rid].visible = visible
            self.signals.runVisibilityChanged.emit()

    # ----- training intents --------------------------------------------------------------------
    def training_problem(self) -> str | None:
        """Why a run cannot start on the open dataset (Start is disabled with it), or None."""
        from core.training.loop import training_problem  # torch: imported on first use

        if self.catalog.dataset is None:
            return "Open a dataset first."
        return training_problem(self.catalog.dataset)

    def request_training(self, config: RunConfig) -> None:
        problem = self.training_problem()
        if self.active_run is not None:
            self.signals.message.emit("A run is already in progress: stop it first.")
        elif problem is not None:
            self.signals.report_error("Cannot train", problem)
        else:
            self.signals.trainRequested.emit(config)

    def toggle_pause(self) -> None:
        run = self.active_run
        if run is None:
            return
        if run.state == "paused":
            self.signals.resumeRequested.emit(run.id)
        else:
            self.signals.pauseRequested.emit(run.id)

    def stop_training(self) -> None:
        run = self.active_run
        if run is not None:
            self.signals.stopRequested.emit(run.id)

    def resume_problem(self, run: Run) -> str | None:
        """Why ``run`` cannot be resumed now, or None when it can: a stopped run (by Stop, by
        quitting, or by an app that ended mid-run) continues in its folder from its ``last.pt``,
        on the data it trained on."""
        if run.state != "stopped":
            return f"{run.name} is {run.state}: only a stopped run can be resumed"
        if not (run.out_dir / "last.pt").is_file():
            return f"{run.name} saved no checkpoint to resume from (it stopped before training)"
        if not self.trained_on_open_dataset(run):
            return f"{run.name} trained on other data: open {run.dataset or 'its dataset'} first"
        if self.active_run is not None:
            return "A run is in progress: stop it first."
        return None

    def request_resume(self, rid: int) -> None:
        """Resume run: continue the stopped run ``rid`` (the job calls ``run_resuming``)."""
        run = self._runs.get(rid)
        if run is None:
            return
        problem = self.resume_problem(run)
        if problem is not None:
            self.signals.message.emit(problem)
        else:
            self.signals.runResumeRequested.emit(rid)

    def run_resuming(self, rid: int) -> None:
        """Run ``rid`` is starting again from its ``last.pt``: live in this session from now on,
        current and overlaid; its curves so far are kept and continued."""
        run = self._runs[rid]
        run.state, run.restored, run.finished, run.visible = "starting", False, None, True
        with contextlib.suppress(OSError):  # written again as it runs and when it ends
            run_records.write(run.out_dir, run_records.record_of(run, self.catalog.dataset))
        self.signals.runStateChanged.emit(rid)
        self.signals.runVisibilityChanged.emit()
        if self.current_run_id != rid:
            self.current_run_id = rid
            self.signals.currentRunChanged.emit(rid)

    # ----- adding and removing runs ------------------------------------------------------------
    def new_run(self, config: RunConfig) -> Run:
        rid = next(self._ids)
        method = config.loss.method
        number = self._next_number(method)
        run = Run(
            id=rid,
            name=f"{method} {number}",
            config=config,
            requested=config,
            color=run_color(rid),
            out_dir=self.root / f"{time.strftime('%Y%m%d-%H%M%S')}-{method}-{number}",
            dataset=self.catalog.name,
            dataset_key=self.catalog.key(),
        )
        run_records.write(run.out_dir, run_records.record_of(run, self.catalog.dataset))
        self._runs[run.id] = run
        self.current_run_id = run.id
        self.signals.runAdded.emit(run.id)
        self.signals.currentRunChanged.emit(run.id)
        return run

    def _next_number(self, method: str) -> int:
        """The number of a new run's name ("psd 3"): one past every "psd N" in use, by this
        session's runs and by every run recorded in the runs folder (of any dataset), so that no
        two runs share a name across relaunches and their overlays and comparisons stay apart."""
        names = [*run_records.names(self.root), *(r.name for r in self._runs.values())]
        used = [
            int(n.rsplit(" ", 1)[1]) for n in names if re.fullmatch(rf"{re.escape(method)} \d+", n)
        ]
        return max(used, default=0) + 1

    def restore_runs(self) -> int:
        """Read back the runs in ``root`` made on this dataset (curves, MAP, r_t)."""
        data = self.catalog.dataset
        if data is None:
            return 0
        known = {r.out_dir.resolve() for r in self._runs.values()}
        skipped: list[tuple[str, str]] = []
        n = 0

        def problem(folder: Path, why: str) -> None:
            if folder.resolve() not in known:
                skipped.append((folder.name, why))

        for folder, record in run_records.scan(self.root, problem):
            if folder.resolve() in known or not run_records.matches(record, data):
                continue
            if "from_checkpoint" in record:  # identified by its data: it is the open dataset
                record = {**record, "dataset_key": run_records.dataset_key(data)}
            rid = next(self._ids)
            try:
                run = _restored_run(rid, folder, record)
            except (OSError, ValueError, KeyError, TypeError) as e:
                problem(folder, str(e) or type(e).__name__)
                continue
            self._runs[rid] = run
            self.signals.runAdded.emit(rid)
            n += 1
        self.unreadable_runs = skipped
        self.signals.unreadableRunsChanged.emit()
        if skipped:
            self.signals.message.emit(
                f"Could not read {len(skipped)} run folder{'s' if len(skipped) > 1 else ''} in "
                f"{self.root}: " + "; ".join(f"{name} ({why})" for name, why in skipped)
            )
        return n

    def remove_run(self, rid: int, delete_files: bool = False) -> None:
        """Forget a run that is not training; with ``delete_files`` also delete its folder."""
        run = self._runs.get(rid)
        if run is None or run.active:
            return
        del self._runs[rid]
        if delete_files and run.out_dir.is_dir():
            shutil.rmtree(run.out_dir, ignore_errors=True)
        if self.current_run_id == rid:
            self.current_run_id = max(self._runs) if self._runs else None
        self.signals.runRemoved.emit(rid)
        self.signals.runVisibilityChanged.emit()
        self.signals.currentRunChanged.emit(self.current_run_id or 0)

    # ----- what a run reports ------------------------------------------------------------------
    def handle_events(self, rid: int, events: list[Any]) -> None:
        """Fold a batch of training events into the run (called on the GUI thread)."""
        run = self._runs.get(rid)
        if run is None:
            return
        emit = self.signals
        stepped = False
        for ev in events:
            if isinstance(ev, StepEnd):
                run.add_step(ev)
                stepped = True
            elif isinstance(ev, RunStarted):
                run.total_steps = ev.steps_per_epoch * ev.total_epochs
                run.steps_per_epoch = ev.steps_per_epoch
                run.total_epochs = ev.total_epochs
                run.started = time.monotonic()
                run.continue_from(ev.start_epoch, ev.start_step)
                run.state = "running"
                self._run_resolved(run, ev)
                emit.runStateChanged.emit(rid)
            elif isinstance(ev, AlignmentSnapshot):
                # Full batches only: an epoch's short last batch (6 x 6 of a batch of 64) would
                # replace a readable matrix with a few cells.
                if run.snapshot is None or len(ev.labels) >= len(run.snapshot.labels):
                    run.snapshot = ev
                    emit.snapshotChanged.emit(rid)
            elif isinstance(ev, PseudoLabels):
                run.pseudo = ev
                emit.pseudoLabelsChanged.emit(rid)
            elif isinstance(ev, EpochEnd):
                run.epochs.append(ev)
                self._save_progress(run)
                emit.epochAdded.emit(rid, ev.epoch)
            elif isinstance(ev, CheckpointSaved):
                run.checkpoints[ev.kind] = Path(ev.path)
            elif isinstance(ev, Paused):
                run.state = "paused"
                emit.runStateChanged.emit(rid)
            elif isinstance(ev, Resumed):
                run.state = "running"
                emit.runStateChanged.emit(rid)
            elif isinstance(ev, RunFinished):
                run.finished = ev
                run.state = "stopped" if ev.stopped else "finished"
                emit.runStateChanged.emit(rid)
            elif isinstance(ev, EpochEmbeddings):
                self._on_embeddings(rid, ev)
        if stepped:
            emit.stepsAppended.emit(rid)

    def _run_resolved(self, run: Run, ev: RunStarted) -> None:
        """The run started: its config is now the one it trains with, "auto" resolved; its
        record says so at once (a run the app loses mid-way keeps what it ran with)."""
        run.config = RunConfig.from_dict(ev.config)
        run.settings = ev.settings
        if ev.settings:
            self.signals.message.emit(f"{run.name}: {ev.settings}")
        if not run.restored:
            # A failed write is said when the run ends, where the record is written again.
            with contextlib.suppress(OSError):
                run_records.write(run.out_dir, run_records.record_of(run, self.catalog.dataset))

    def _save_progress(self, run: Run) -> None:
        """At each epoch's end the run's record and step curves are written with it, so that an
        app that ends without closing (killed, a crash) still leaves them; a failed write is
        said when the run ends, where both are written again."""
        if not run.restored:
            with contextlib.suppress(OSError):
                run_records.write(run.out_dir, run_records.record_of(run, self.catalog.dataset))
                run_records.write_steps(run.out_dir, run.steps, run.losses, run.r_steps)

    def run_failed(self, rid: int, message: str) -> None:
        if rid in self._runs:
            self._runs[rid].state = "failed"
            self.signals.runStateChanged.emit(rid)
        self.signals.report_error("Training failed", message)

    def run_ended(self, rid: int) -> None:
        """The run's worker has ended: a run that never reported its end counts as stopped."""
        run = self._runs.get(rid)
        if run is not None and run.active:
            run.state = "stopped"
            self.signals.runStateChanged.emit(rid)
        if run is not None and not run.restored:
            try:
                run_records.write(run.out_dir, run_records.record_of(run, self.catalog.dataset))
                run_records.write_steps(run.out_dir, run.steps, run.losses, run.r_steps)
            except OSError as e:  # core.atomic.WriteError too: a full disk, a read-only folder
                self.signals.report_error(
                    "Run record not saved",
                    f"{run.name} {run.state}, but its record in {run.out_dir} could not be "
                    f"updated ({e}); its checkpoints and history.jsonl are as the run left them.",
                )


def _restored_run(rid: int, folder: Path, record: dict[str, Any]) -> Run:
    config = RunConfig.from_saved(record["config"])
    requested = record.get("requested")
    run = Run(
        id=rid,
        name=str(record.get("name") or f"{config.loss.method} {rid}"),
        config=config,
        color=run_color(rid),
        out_dir=folder,
        dataset=str(record.get("dataset", "")),
        dataset_key=dict(record.get("dataset_key") or {}),
        created=run_records.when(record),
        restored=True,
        requested=RunConfig.from_dict(requested) if requested else None,
        settings=str(record.get("settings", "")),
        steps_per_epoch=int(record.get("steps_per_epoch", 0)),
        total_epochs=int(record.get("total_epochs", 0)),
    )
    state = str(record.get("state", "stopped"))
    run.state = "stopped" if state in ACTIVE_STATES else state  # the app quit mid-run
    run.epochs = run_records.read_epochs(folder)
    run.steps, run.losses, run.r_steps = run_records.read_steps(folder)
    run.total_steps = run.steps_per_epoch * run.total_epochs
    run.checkpoints = run_records.checkpoints(folder)
    run.visible = False  # overlaid when the user checks it
    return run
