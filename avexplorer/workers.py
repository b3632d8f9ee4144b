"""Work that must stay off the GUI thread, as plain functions and generators run by superqt workers.

Everything here runs in a worker thread, touches no widget and returns plain data (numpy arrays,
QImages, dataclasses) that the session takes in on the GUI thread. ``start`` wires a function or
generator to callbacks, reports the task in the status bar and turns exceptions into the
session's error signal, so a failing worker never takes the app down.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThreadPool
from PySide6.QtGui import QImage
from superqt.utils import GeneratorWorker, WorkerBase, create_worker

from avexplorer.layouts import Layout, compute_layout, layout_of, match_ranks  # noqa: F401
from avexplorer.session import Session
from avexplorer.train_process import (
    EpochEmbeddings,
    train_in_process,
    training_batches,
)
from core.control import TrainControl
from core.errors import UserError

# Training holds one thread for its whole run; thumbnails, projections and queries need others.
QThreadPool.globalInstance().setMaxThreadCount(
    max(4, QThreadPool.globalInstance().maxThreadCount())
)

_live: set[WorkerBase] = set()  # keep workers referenced until they finish


def start(
    session: Session,
    name: str,
    fn: Callable[..., Any],
    *args: Any,
    on_done: Callable[[Any], None] | None = None,
    on_yield: Callable[[Any], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    quiet: bool = False,
    **kwargs: Any,
) -> WorkerBase:
    """Run ``fn(*args, **kwargs)`` (a function or a generator) in a worker thread.

    ``on_yield`` receives each yielded value and ``on_done`` the return value, both on the GUI
    thread. Errors go to ``on_error`` if given, else to the session's error dialog. ``quiet``
    tasks (thumbnails) do not show in the status bar.
    """
    worker = create_worker(fn, *args, _start_thread=False, _ignore_errors=True, **kwargs)
    if not quiet:
        session.task_started(name)

    def finished() -> None:
        _live.discard(worker)
        if not quiet:
            session.task_finished(name)

    def errored(exc: BaseException) -> None:
        if isinstance(exc, UserError):
            msg = str(exc)
        else:
            msg = f"{type(exc).__name__}: {exc}\n\n" + "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__)
            )
        if on_error is not None:
            on_error(msg)
        else:
            session.report_error(f"{name} failed", msg)

    if on_done is not None:
        worker.returned.connect(on_done)
    if on_yield is not None and isinstance(worker, GeneratorWorker):
        worker.yielded.connect(on_yield)
    worker.errored.connect(errored)
    worker.finished.connect(finished)
    _live.add(worker)
    worker.start()
    return worker


def load_checkpoint_for(path: str | Path, data: Any) -> tuple[Any, Any, EpochEmbeddings | None]:
    """(checkpoint, model, test embeddings or None when the dims do not fit ``data``)."""
    from core.checkpoint import load_checkpoint
    from core.embedding import embed_split

    ckpt = load_checkpoint(path)
    model = ckpt.build_model("cpu")
    emb = None
    if data is not None and (ckpt.audio_dim, ckpt.visual_dim) == (data.audio_dim, data.visual_dim):
        audio, visual = embed_split(model, data.test, "cpu")
        emb = EpochEmbeddings(max(ckpt.epoch - 1, 0), audio, visual, model, Path(path))
    return ckpt, model, emb


# ----- dropped files -----------------------------------------------------------------------------
AUDIO_EXT = {".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus"}
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif"}


def encode_query_file(
    path: str, model: Any, prefer: str, attrs: dict[str, str] | None = None
) -> tuple[str, np.ndarray]:
    """(modality, embedding) of a dropped file, encoded and embedded with ``model``.

    ``.npz``/``.npy`` hold features already (keys ``audio`` / ``visual``); a video, sound or image
    goes through ``core.features``. ``prefer`` picks the modality when the file has both.
    """
    from core.embedding import embed_features

    if model is None:
        raise UserError("no model yet: train one or load a checkpoint before querying with a file")
    feats = _file_features(path, attrs or {})
    if not feats:
        raise UserError(f"{Path(path).name}: no audio or visual content could be decoded")
    modality = prefer if prefer in feats else next(iter(feats))
    x = np.asarray(feats[modality], dtype=np.float32).reshape(1, -1)
    encoder = model.audio_encoder if modality == "audio" else model.visual_encoder
    want = encoder[0].in_features
    if x.shape[1] != want:
        from core.diagnostics import dimension_hint

        raise UserError(
            f"{Path(path).name}: its {modality} features have {x.shape[1]} dimensions but the "
            f"model expects {want}; {dimension_hint(modality, x.shape[1], want)}"
        )
    return modality, embed_features(model, x, modality)[0]


def _file_features(path: str, attrs: dict[str, str]) -> dict[str, np.ndarray]:
    p = Path(path)
    if p.suffix == ".npz":
        with np.load(p) as z:
            return {k: z[k] for k in ("audio", "visual") if k in z}
    if p.suffix == ".npy":
        return {"visual": np.load(p)}
    try:
        from core.features.extract import encode_path
    except ImportError:
        raise UserError("decoding clips needs core.features, which this install lacks") from None
    # The encoders that made the dataset's features, so the query lands in the same space.
    kwargs = {k: attrs[k] for k in ("audio_encoder", "visual_encoder") if attrs.get(k)}
    clip = encode_path(str(p), **kwargs)
    out = {}
    if getattr(clip, "audio", None) is not None:
        out["audio"] = np.asarray(clip.audio)
    if getattr(clip, "visual", None) is not None:
        out["visual"] = np.asarray(clip.visual)
    return out


# ----- thumbnails and clips ----------------------------------------------------------------------
def thumbnails(paths: list[str], size: int = 48, batch: int = 32) -> Iterator[tuple[dict, dict]]:
    """Yield ({path: QImage}, {path: duration s}) in batches for clips that exist on disk."""
    first_frame = _first_frame_fn()
    if first_frame is None:
        return
    images: dict[str, QImage] = {}
    durations: dict[str, float] = {}
    for i, path in enumerate(paths):
        if Path(path).exists():
            try:
                rgb = np.ascontiguousarray(first_frame(path, size), dtype=np.uint8)
                h, w = rgb.shape[:2]
                images[path] = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
                duration = clip_duration(path)
                if duration is not None:
                    durations[path] = duration
            except Exception:  # one unreadable clip must not stop the others
                pass
        if len(images) >= batch or i == len(paths) - 1:
            if images or durations:
                yield images, durations
            images, durations = {}, {}


def _first_frame_fn() -> Callable[[str, int], np.ndarray] | None:
    for module in ("core.features.extract", "core.features.video"):
        try:
            fn = getattr(__import__(module, fromlist=["first_frame"]), "first_frame", None)
        except ImportError:
            continue
        if fn is not None:
            return fn
    return None


def clip_duration(path: str) -> float | None:
    """A clip's duration from its container header (PyAV), None if unknown."""
    try:
        import av

        with av.open(path) as c:
            return float(c.duration) / 1e6 if c.duration else None
    except Exception:
        return None


def build_demo_clips() -> str:
    """Build the demo's clips into their cache folder (a minute on one core); returns the folder."""
    from core.demo import demo_clips_dir

    return str(demo_clips_dir(build=True))


class ProjectionProcess:
    """One child process, started on first use and kept for the session, that computes UMAP.

    UMAP's first fit in a process compiles numba code for 20-60 s, and much of UMAP is Python that
    would contend with the GUI thread for the GIL: in a child it compiles once per session and
    the window stays smooth.
    """

    def __init__(self) -> None:
        self._pool: Any = None
        self._lock = threading.Lock()

    def layout(
        self,
        epoch: int,
        audio: np.ndarray,
        visual: np.ndarray,
        method: str,
        previous: np.ndarray | None,
    ) -> Layout:
        """Blocks until the child returns the layout: call it from a worker thread."""
        with self._lock:
            if self._pool is None:
                import multiprocessing as mp

                self._pool = mp.get_context("spawn").Pool(1)
        return self._pool.apply(layout_of, (epoch, audio, visual, method, previous))

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.terminate()  # a fit in progress is abandoned, not waited for
                self._pool = None


# ----- the controller that starts all of the above -----------------------------------------------
class Jobs(QObject):
    """Starts workers for the session's heavy tasks and feeds their results back to it.

    One training run at a time (two runs would fight over two cores); any number of
    projection, thumbnail and query tasks.
    """

    def __init__(self, session: Session, train_fn: Callable[..., Iterator[Any]] | None = None):
        super().__init__(session)
        self.session = session
        self._train_fn = train_fn
        self.control: Any = None
        self.train_worker: WorkerBase | None = None
        self.training_run: int | None = None
        self._thumb_worker: WorkerBase | None = None
        self._pending_layouts: set[tuple[int, int, str]] = set()
        self.projections = ProjectionProcess()
        self._slow_layout_next: tuple[int, int, str] | None = None
        session.embeddingsAdded.connect(self._embeddings_added)

    # ----- training ------------------------------------------------------------------------------
    @property
    def training(self) -> bool:
        return self.train_worker is not None

    def start_training(self, config: Any) -> int | None:
        if self.training:
            self.session.message.emit("A run is already in progress: stop it first.")
            return None
        data = self.session.dataset
        if data is None:
            self.session.report_error("Cannot train", "Open a dataset first.")
            return None
        import multiprocessing as mp

        # spawn, not fork: forking a process that runs Qt and worker threads is unsafe.
        ctx = mp.get_context("spawn")
        run = self.session.new_run(config)
        self.control = TrainControl(ctx.Event)
        self.training_run = run.id
        rid = run.id

        def done(_result: Any = None) -> None:
            self.train_worker = None
            self.training_run = None
            run_ = self.session.runs.get(rid)
            if run_ is not None and run_.state in ("starting", "running", "paused"):
                run_.state = "stopped"
                self.session.runStateChanged.emit(rid)

        def failed(msg: str) -> None:
            self.session.run_failed(rid, msg)

        if self._train_fn is not None:  # an injected generator (tests of the app alone): a thread
            fn, args = training_batches, (self._train_fn, config, data, run.out_dir, self.control)
        else:
            fn, args = train_in_process, (config, data, run.out_dir, self.control, ctx)
        self.train_worker = start(
            self.session,
            f"Training {run.name}",
            fn,
            *args,
            on_yield=lambda batch: self.session.handle_events(rid, batch),
            on_error=failed,
        )
        self.train_worker.finished.connect(done)
        return rid

    def pause(self) -> None:
        if self.control is not None and self.training:
            self.control.pause()

    def resume(self) -> None:
        if self.control is not None and self.training:
            self.control.resume()

    def stop(self) -> None:
        if self.control is not None and self.training:
            self.control.stop()

    def close(self) -> None:
        """The window is closing: stop training (it saves last.pt) and end the UMAP process."""
        self.stop()
        self.projections.close()

    # ----- projections -------------------------------------------------------------------------
    def _embeddings_added(self, rid: int, epoch: int) -> None:
        self.request_layout(rid, epoch, "pca")

    def request_layout(self, rid: int, epoch: int, method: str) -> None:
        key = (rid, epoch, method)
        emb = self.session.embeddings_for(rid).get(epoch)
        if (
            emb is None
            or key in self._pending_layouts
            or (epoch, method) in (self.session.layouts_for(rid))
        ):
            return
        slow = method != "pca"
        if slow and any(m != "pca" for _, _, m in self._pending_layouts):
            # One UMAP at a time, and only the newest request waits: during training a request
            # comes every epoch, and a queue of stale epochs would keep the map behind.
            self._slow_layout_next = (rid, epoch, method)
            return
        self._pending_layouts.add(key)
        prev = self.session.previous_layout(rid, epoch, method)
        prev_coords = prev.coords if prev is not None else None
        title = f"{method.upper()} projection, epoch {epoch + 1}"

        def settle() -> None:
            self._pending_layouts.discard(key)
            if slow:
                waiting, self._slow_layout_next = self._slow_layout_next, None
                if waiting is not None:
                    self.request_layout(*waiting)

        def done(layout: Layout) -> None:
            self.session.add_layout(rid, layout)
            settle()

        def failed(msg: str) -> None:
            settle()
            self.session.report_error(f"{title} failed", msg)

        if slow:
            fn, args = self.projections.layout, (epoch, emb.audio, emb.visual, method, prev_coords)
        else:
            fn, args = compute_layout, (emb, method, prev_coords)
        start(self.session, title, fn, *args, on_done=done, on_error=failed)

    # ----- checkpoints and queries ---------------------------------------------------------------
    def load_checkpoint(self, path: str) -> None:
        def done(result: tuple[Any, Any, EpochEmbeddings | None]) -> None:
            ckpt, model, emb = result
            self.session.set_checkpoint_model(model, ckpt.config, tuple(ckpt.class_names), emb)
            note = "" if emb is not None else " (its feature dimensions do not fit this dataset)"
            self.session.message.emit(f"Loaded checkpoint {Path(path).name}{note}")

        start(
            self.session,
            f"Loading {Path(path).name}",
            load_checkpoint_for,
            path,
            self.session.dataset,
            on_done=done,
        )

    def query_file(self, path: str) -> None:
        prefer = "audio" if self.session.direction == "A2V" else "visual"
        start(
            self.session,
            f"Encoding {Path(path).name}",
            encode_query_file,
            path,
            self.session.model,
            prefer,
            on_done=lambda r: self.session.set_file_query(path, r[0], r[1]),
        )

    # ----- thumbnails --------------------------------------------------------------------------
    def load_thumbnails(self) -> None:
        data = self.session.dataset
        if self._thumb_worker is not None:
            self._thumb_worker.quit()  # a generator worker stops at its next yield
        if data is None:
            return
        paths = [p for s in (data.test, data.train, data.val) if s.paths for p in s.paths]
        if not paths:
            return
        self._thumb_worker = start(
            self.session,
            "Thumbnails",
            thumbnails,
            paths,
            quiet=True,
            on_yield=lambda b: self.session.set_thumbnails(*b),
            on_error=lambda _m: None,  # previews are optional; a missing decoder is not an error
        )


# ----- folders of clips --------------------------------------------------------------------------
def extract_folder(folder: str, out_dir: str | Path | None = None) -> Any:
    """Features of every clip in ``folder`` (one subfolder per class) as an AVDataset.

    The feature file goes to ``out_dir`` (default: the user's cache), named after the folder;
    the per-clip feature cache of ``core.features`` makes a second opening fast.
    """
    import hashlib

    from core.data import load_h5
    from core.features.cache import FeatureCache, default_cache_dir
    from core.features.dataset import SplitRule, extract_dataset, list_clips
    from core.features.encoders import load_encoders

    listing = list_clips(folder)
    if not listing.items:
        raise UserError(f"{folder}: no clips found (expected one subfolder of clips per class)")
    encoders = load_encoders()
    root = Path(out_dir) if out_dir is not None else default_cache_dir().parent / "folders"
    root.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha1(str(Path(folder).resolve()).encode()).hexdigest()[:10]
    out = root / f"{Path(folder).name}-{tag}.h5"
    extract_dataset(listing, out, encoders, rule=SplitRule(0.1, 0.2, 0), cache=FeatureCache())
    return load_h5(out)
