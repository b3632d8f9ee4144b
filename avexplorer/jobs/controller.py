"""``JobController``: carries out the state's requests with background jobs, feeds results back.

It listens to the state's request signals (``state.signals``: train, pause, resume, stop, layout,
file query, checkpoint) and offers the dataset openers the window's menus call. One training run
at a time (``state.runs.active_run`` decides); any number of projection, thumbnail and query
jobs.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QThreadPool, QTimer
from superqt.utils import WorkerBase

from avexplorer.jobs import checkpoints, datasets, file_query, thumbnails
from avexplorer.jobs.projection import ProjectionProcess
from avexplorer.jobs.runner import live_workers, start
from avexplorer.jobs.training_process import train_in_process, training_batches
from avexplorer.projections import Layout, compute_layout, match_ranks
from avexplorer.state.app_state import AppState
from avexplorer.state.embeddings import PROJECTIONS
from avexplorer.state.run import CHECKPOINT_RUN
from core.errors import UserError
from core.training.control import TrainControl


class JobController(QObject):
    # After embeddings of a finished run or a checkpoint arrive, the UMAP process is started this
    # long after the app has no task left (loading, PCA, metrics): never during start-up's work.
    PRESTART_IDLE_MS = 3000
    # On quit, a stopped run has this long to save at its step and exit (it stops between two
    # steps, then writes one checkpoint); a training process still starting (importing torch)
    # only looks at the stop at its first step, so it is ended instead, then given this long to
    # be reaped.
    CLOSE_GRACE_S = 8.0
    KILLED_WAIT_S = 5.0

    def __init__(
        self,
        state: AppState,
        train_fn: Callable[..., Iterator[Any]] | None = None,
        prestart_umap: bool = True,
    ):
        """``train_fn`` replaces the training process by a generator run in a thread (tests
        and benchmarks give ``core.training.loop.train`` or a fake event source); ``prestart_umap``
        False keeps the UMAP process from starting before a layout is asked for (tests)."""
        super().__init__(state)
        self.state = state
        self._train_fn = train_fn
        self._training: dict[int, tuple[WorkerBase, TrainControl]] = {}
        self._children: dict[int, Any] = {}  # run id -> its training process, while it runs
        self._closing = False
        self._thumb_worker: WorkerBase | None = None
        self._pending_layouts: set[tuple[int, int, str]] = set()
        self._slow_layout_next: tuple[int, int, str] | None = None
        self.projections = ProjectionProcess()
        state.signals.trainRequested.connect(self.start_training)
        state.signals.pauseRequested.connect(lambda rid: self._control(rid, "pause"))
        state.signals.resumeRequested.connect(lambda rid: self._control(rid, "resume"))
        state.signals.stopRequested.connect(lambda rid: self._control(rid, "stop"))
        state.signals.runResumeRequested.connect(self.resume_training)
        state.signals.layoutRequested.connect(self.request_layout)
        state.signals.metricsRequested.connect(self.compute_metrics)
        state.signals.ranksRequested.connect(self.compute_ranks)
        state.signals.fileQueryRequested.connect(self.query_file)
        state.signals.checkpointRequested.connect(self.load_checkpoint)
        state.signals.spectrogramsRequested.connect(self.load_spectrograms)
        state.signals.clipRequested.connect(self.build_clip)
        state.signals.selectionExportRequested.connect(self.export_selection)
        state.signals.embeddingsAdded.connect(
            lambda rid, epoch: self.request_layout(rid, epoch, "pca")
        )
        self._prestart = QTimer(self)
        self._prestart.setSingleShot(True)
        self._prestart.setInterval(self.PRESTART_IDLE_MS)
        self._prestart.timeout.connect(self._prestart_when_idle)
        if prestart_umap:
            state.signals.embeddingsAdded.connect(self._embeddings_added)

    # ----- training ------------------------------------------------------------------------------
    @property
    def training(self) -> bool:
        """Whether a training worker is still alive (it outlives its run's last event a little)."""
        return bool(self._training)

    def start_training(self, config: Any) -> int | None:
        if self.state.catalog.dataset is None or self.state.runs.active_run is not None:
            return None
        try:
            run = self.state.runs.new_run(config)  # writes the run's record in its folder
        except UserError as e:  # the runs folder cannot be written (a file, full, read-only)
            self.state.signals.report_error("Cannot train", str(e))
            return None
        self._launch(run.id, config, resume=False)
        return run.id

    def resume_training(self, rid: int) -> None:
        """Continue a stopped run in its folder from its ``last.pt``, as ``train --resume``."""
        if self.state.catalog.dataset is None or self.state.runs.active_run is not None:
            return
        run = self.state.runs.get(rid)
        if run is not None:
            self.state.runs.run_resuming(rid)
            self._launch(rid, run.config, resume=True)

    def _launch(self, rid: int, config: Any, resume: bool) -> None:
        data, run = self.state.catalog.dataset, self.state.runs[rid]
        # spawn, not fork: forking a process that runs Qt and worker threads is unsafe.
        ctx = mp.get_context("spawn")
        control = TrainControl(ctx.Event)
        if self._train_fn is not None:  # an injected generator: in a thread
            fn = training_batches
            args: tuple[Any, ...] = (self._train_fn, config, data, run.out_dir, control)
            kwargs: dict[str, Any] = {"resume": resume}
        else:
            fn, args = train_in_process, (config, data, run.out_dir, control, ctx)
            kwargs = {"resume": resume, "started": lambda proc: self._children.update({rid: proc})}
            # The map's UMAP is asked for while a run trains: its kernels load meanwhile.
            self.projections.prestart()
        worker = start(
            self.state,
            f"Training {run.name}",
            fn,
            *args,
            on_yield=lambda batch: self.state.runs.handle_events(rid, batch),
            on_error=lambda msg: self._training_failed(rid, msg),
            **kwargs,
        )

        def ended() -> None:
            self._training.pop(rid, None)
            self._children.pop(rid, None)
            self.state.runs.run_ended(rid)

        worker.finished.connect(ended)
        self._training[rid] = (worker, control)

    def _training_failed(self, rid: int, message: str) -> None:
        if self._closing:  # ended by quitting (after its grace): stopped, not failed
            self.state.signals.message.emit(f"{self.state.runs.run_name(rid)}: ended on quit")
        else:
            self.state.runs.run_failed(rid, message)

    def _control(self, rid: int, what: str) -> None:
        entry = self._training.get(rid)
        if entry is not None:
            getattr(entry[1], what)()

    def close(self) -> None:
        """The app is quitting: cancel every job now and stop training. A stopped run saves at
        the step it reached and reports its end, which is recorded in its folder before this
        returns; a training process that has not exited within ``CLOSE_GRACE_S`` (still
        starting, or stuck) is ended, and its run is recorded as stopped all the same."""
        self._closing = True
        self._prestart.stop()
        self.state.cancel_all()
        for _worker, control in self._training.values():
            control.stop()
        if self._thumb_worker is not None:
            self._thumb_worker.quit()
        for worker in live_workers():
            if getattr(worker, "cancel", None) is not None:
                worker.cancel.set()
        self.projections.close()
        self._let_training_end(self.CLOSE_GRACE_S)
        for proc in list(self._children.values()):
            if proc.is_alive():
                proc.kill()
        self._let_training_end(self.KILLED_WAIT_S)

    def _let_training_end(self, seconds: float) -> None:
        """Run the event loop until every training worker has ended (its events folded and its
        record written, here on the GUI thread) or ``seconds`` have passed. Called while the
        window closes: after that, the event loop no longer runs and nothing would be folded."""
        app = QCoreApplication.instance()
        deadline = time.monotonic() + seconds
        while self._training and app is not None and time.monotonic() < deadline:
            app.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents, 50)
            time.sleep(0.02)

    def wait(self, msecs: int = 15_000) -> bool:
        """Wait for the workers to end (after ``close``); False if some are still running."""
        return QThreadPool.globalInstance().waitForDone(msecs)

    # ----- projections -------------------------------------------------------------------------
    def _embeddings_added(self, rid: int, _epoch: int) -> None:
        """Embeddings of a loaded checkpoint or a finished run: a user who opens one and asks for
        UMAP should wait only for the fit, so the UMAP process starts once the app is idle (a
        training run starts it itself, at its start)."""
        run = self.state.runs.get(rid)
        if not self.projections.started and (run is None or not run.active):
            self._prestart.start()

    def _prestart_when_idle(self) -> None:
        if self.state.tasks:  # the app is still busy (loading, PCA, metrics): look again later
            self._prestart.start()
        else:
            self.projections.prestart()

    def request_layout(self, rid: int, epoch: int, method: str) -> None:
        key = (rid, epoch, method)
        emb = self.state.embeddings.embeddings_for(rid).get(epoch)
        if (
            emb is None
            or key in self._pending_layouts
            or (epoch, method) in self.state.embeddings.layouts_for(rid)
        ):
            return
        slow = method != "pca"
        if slow and any(m != "pca" for _, _, m in self._pending_layouts):
            # One UMAP or t-SNE at a time, and only the newest request waits: during training a
            # request comes every epoch, and a queue of stale epochs would keep the map behind.
            self._slow_layout_next = key
            return
        self._pending_layouts.add(key)
        prev = self.state.embeddings.previous_layout(rid, epoch, method)
        prev_coords = prev.coords if prev is not None else None
        title = f"{PROJECTIONS[method]} projection, epoch {epoch}"

        settled = False

        def settle() -> None:  # once per job: at its result, its error, or its end (a cancel)
            nonlocal settled
            if settled:
                return
            settled = True
            self._pending_layouts.discard(key)
            if slow:
                waiting, self._slow_layout_next = self._slow_layout_next, None
                if waiting is not None:
                    self.request_layout(*waiting)

        def done(layout: Layout) -> None:
            self.state.embeddings.add_layout(rid, layout)
            settle()

        def failed(msg: str) -> None:
            settle()
            self.state.signals.report_error(f"{title} failed", msg)

        if slow:
            fn, args = self.projections.layout, (epoch, emb.audio, emb.visual, method, prev_coords)
        else:
            fn, args = compute_layout, (emb, method, prev_coords)
        # A slow layout can be cancelled (Cancel ends the projection process's fit); a PCA is
        # over before anyone could.
        unit = "layout" if slow else ""
        worker = start(self.state, title, fn, *args, on_done=done, on_error=failed, unit=unit)
        worker.finished.connect(settle)

    # ----- checkpoints and queries ---------------------------------------------------------------
    def compute_metrics(self, rid: int, epoch: int) -> None:
        """Every test metric of a run's epoch, computed by core in a worker thread."""
        emb = self.state.embeddings.embeddings_for(rid).get(epoch)
        data = self.state.catalog.dataset
        if emb is None or data is None:
            return
        start(
            self.state,
            f"Metrics of {self.state.runs.run_name(rid)}",
            _test_split_metrics,
            emb.audio,
            emb.visual,
            data.test.labels,
            data.num_classes,
            on_done=lambda m: self.state.embeddings.set_metrics(rid, epoch, m),
            on_error=lambda msg: self.state.embeddings.metrics_failed(rid, epoch, msg),
            unit="chunks",
        )

    def compute_ranks(self, rid: int, epoch: int) -> None:
        """An epoch's match ranks (the map's colours by rank), in a worker, in bounded memory."""
        emb = self.state.embeddings.embeddings_for(rid).get(epoch)
        if emb is None:
            self.state.embeddings.ranks_ended(rid, epoch)
            return
        worker = start(
            self.state,
            "Match ranks for the map" + (f", epoch {epoch}" if epoch else ""),
            match_ranks,
            emb.audio,
            emb.visual,
            on_done=lambda ranks: self.state.embeddings.set_ranks(rid, epoch, emb, ranks),
            unit="items",
        )
        worker.finished.connect(lambda: self.state.embeddings.ranks_ended(rid, epoch))

    def load_checkpoint(self, path: str) -> None:
        """Load a checkpoint for queries and the map (a restored run's, or any file)."""
        owner = next(
            (r.id for r in self.state.runs.values() if path in map(str, r.checkpoints.values())),
            None,
        )

        def done(result: tuple[Any, Any, Any]) -> None:
            ckpt, model, emb = result
            self.state.set_checkpoint_model(
                model, ckpt.config, tuple(ckpt.class_names), emb, rid=owner
            )
            self.state.signals.message.emit(f"Loaded checkpoint {Path(path).name}")
            self.state.signals.checkpointLoaded.emit(path, checkpoints.checkpoint_label(ckpt, path))
            self.recompute_pseudo_labels(owner if owner is not None else CHECKPOINT_RUN, ckpt)

        start(
            self.state,
            f"Loading {Path(path).name}",
            checkpoints.load_checkpoint_for,
            path,
            self.state.catalog.dataset,
            on_done=done,
            on_error=lambda msg: self.state.signals.report_error("Checkpoint not loaded", msg),
        )

    def recompute_pseudo_labels(self, rid: int, ckpt: Any) -> None:
        """The pseudo-labels ``ckpt`` gives the open dataset's unlabelled train clips, computed
        in a worker for the Labels tab (a run read back from its folder, or a checkpoint file,
        has none until then)."""
        from core.training.pseudo_labels import checkpoint_pseudo_labels

        lab, data = self.state.labelling, self.state.catalog.dataset
        if data is None:
            return
        name = Path(ckpt.path).name
        lab.pseudo_computing(rid, name)
        start(
            self.state,
            f"Pseudo-labels from {name}",
            checkpoint_pseudo_labels,
            ckpt,
            data,
            on_done=lambda pseudo: lab.set_recomputed(rid, pseudo, data),
            on_error=lambda msg: lab.pseudo_unavailable(rid, msg),
        )

    def query_file(self, path: str) -> None:
        attrs = (
            dict(self.state.catalog.dataset.attrs) if self.state.catalog.dataset is not None else {}
        )
        start(
            self.state,
            f"Encoding {Path(path).name}",
            file_query.decode_query_file,
            path,
            attrs,
            on_done=lambda r: self.state.retrieval.set_file_query(path, r[0], r[1]),
        )

    def export_selection(self, kind: str, path: str) -> None:
        """Write the current selection in the background (atomic; errors name the file)."""
        from core.exploration import selection_files

        s = self.state
        sel, data, g = s.selection.current, s.catalog.dataset, s.retrieval.gallery
        if sel is None or data is None:
            return
        names = {int(i): s.catalog.item_name("test", int(i)) for i in sel.clips()}
        emb = (g.audio, g.visual, g.epoch) if g is not None else None
        start(
            s,
            f"Exporting the selection to {Path(path).name}",
            selection_files.export,
            kind,
            path,
            sel,
            data,
            names,
            emb,
            on_done=lambda p: s.signals.message.emit(f"Exported {sel.count} selected items to {p}"),
            on_error=lambda msg: s.signals.report_error("Selection not exported", msg),
        )

    # ----- datasets and thumbnails ---------------------------------------------------------------
    def open_demo(self) -> None:
        def done(result: tuple[Any, str]) -> None:
            data, note = result
            self.state.set_dataset(data)
            self.state.signals.message.emit(note or "Opened the demo dataset")
            if not note:
                self.show_demo_thumbnails(data.attrs.get("clips_dir", ""))
                self.build_demo_clips()

        start(self.state, "Opening the demo", datasets.load_demo, on_done=done)

    def show_demo_thumbnails(self, clips_dir: str) -> None:
        """The demo's shipped thumbnails, in the table at once (its clips may need building)."""
        if clips_dir:
            start(
                self.state,
                "Thumbnails",
                datasets.demo_thumbnails,
                clips_dir,
                quiet=True,
                on_done=lambda b: self.state.catalog.set_thumbnails(*b),
                on_error=lambda _m: None,  # previews are optional
            )

    def build_demo_clips(self) -> None:
        """Build the demo's clip files (first use only) so thumbnails and playback work."""
        data = self.state.catalog.dataset
        paths = (
            [p for s in (data.train, data.val, data.test) if s.paths for p in s.paths]
            if data
            else []
        )
        if paths and all(Path(p).exists() for p in paths[:3]):
            self.load_thumbnails()
            return
        start(
            self.state,
            "Building the demo clips (once)",
            datasets.build_demo_clips,
            unit="clips",
            on_done=lambda _root: self.load_thumbnails(),
        )

    def build_clip(self, path: str) -> None:
        """Build one demo clip now (it is to be played before the whole folder is built)."""
        start(
            self.state,
            f"Building {Path(path).name}",
            datasets.build_demo_clip,
            path,
            on_done=lambda _p: self.state.signals.clipReady.emit(path),
        )

    def open_h5(self, path: str) -> None:
        from core.data.dataset import load_h5

        def done(data: Any) -> None:
            self.state.set_dataset(data)
            self.state.signals.message.emit(f"Opened {Path(path).name}")
            self.load_thumbnails()

        start(self.state, f"Opening {Path(path).name}", load_h5, path, on_done=done)

    def open_folder(self, path: str) -> None:
        """Extract features from every clip in a folder (cached), then open them."""

        def done(result: Any) -> None:
            data, report = result
            self.state.set_dataset(data)
            self.state.signals.message.emit(f"Opened clips of {Path(path).name}")
            self.load_thumbnails()
            left_out = report.left_out()  # the same summary as the CLI's extract
            if left_out:
                self.state.signals.error.emit("Some clips were left out", left_out)

        start(
            self.state,
            f"Extracting features of {Path(path).name}",
            datasets.extract_folder,
            path,
            unit="clips",
            on_done=done,
        )

    def load_thumbnails(self) -> None:
        data = self.state.catalog.dataset
        if self._thumb_worker is not None:
            self._thumb_worker.quit()  # a generator worker stops at its next yield
        if data is None:
            return
        paths = [p for s in (data.test, data.train, data.val) if s.paths for p in s.paths]
        if not paths:
            return
        self._thumb_worker = start(
            self.state,
            "Thumbnails",
            thumbnails.thumbnails,
            paths,
            quiet=True,
            on_yield=lambda b: self.state.catalog.set_thumbnails(*b),
            on_error=lambda _m: None,  # previews are optional; a missing decoder is not an error
        )

    def load_spectrograms(self, paths: list[str]) -> None:
        start(
            self.state,
            "Spectrograms",
            thumbnails.spectrograms,
            paths,
            quiet=True,
            on_yield=self.state.catalog.set_spectrograms,
            on_error=lambda _m: None,  # optional, like thumbnails
        )


def _test_split_metrics(
    audio: Any, visual: Any, labels: Any, num_classes: int, progress: Any = None
) -> Any:
    from core.evaluation.metrics import cross_modal_metrics

    return cross_modal_metrics(audio, visual, labels, num_classes=num_classes, progress=progress)
