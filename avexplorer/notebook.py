"""``avexplorer.show``: the app opened from a notebook or a script, on arrays or on a finished run.

    handle = avexplorer.show(audio, visual, labels)          # embeddings [N, d] and class ids
    handle = avexplorer.show(audio, visual, labels, model="run/model.pt")   # raw features
    handle = avexplorer.show("runs/psd-1")                    # a run folder (its checkpoint)
    handle.selection                                          # clip indices selected on the map

The arrays are checked before any window opens (``core.data.arrays``: lengths, widths, NaN, labels),
then shown as the test split of an in-memory dataset; nothing is written to disk. In a plain
script (or a notebook without a Qt event loop) ``show`` returns when the window closes; under
IPython's Qt event loop integration (``%gui qt``) it returns at once and the window stays live
beside the notebook. Qt and torch are imported here, inside ``show``, never by ``import
avexplorer``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import UserError


class AppHandle:
    """The window ``show`` opened: its current selection, readable while it is open and after."""

    def __init__(self, window: Any, state: Any) -> None:
        self.window, self.state = window, state
        self._audio = np.zeros(0, np.int64)
        self._visual = np.zeros(0, np.int64)
        self.closed = False
        state.signals.selectionChanged.connect(self._remember)

    def _remember(self) -> None:
        sel = self.state.selection.current
        self._audio = np.flatnonzero(sel.audio) if sel is not None else np.zeros(0, np.int64)
        self._visual = np.flatnonzero(sel.visual) if sel is not None else np.zeros(0, np.int64)

    @property
    def selection(self) -> np.ndarray:
        """Indices (rows of the arrays given, or of the test split) of the selected clips: those
        with their audio or their visual selected."""
        return np.union1d(self._audio, self._visual)

    @property
    def selected_audio(self) -> np.ndarray:
        return self._audio.copy()

    @property
    def selected_visual(self) -> np.ndarray:
        return self._visual.copy()

    def select(self, indices: Any) -> None:
        """Select clips (both sides) from the notebook; the map and the table follow."""
        if not self.closed:
            self.state.selection.select_clips(np.asarray(indices, dtype=np.int64))

    def save_map(self, path: str | Path, timeout: float = 60.0) -> Path:
        """Write the map as a PNG once its current layout is drawn; returns the path.

        Runs the Qt event loop until the map shows a layout of the current projection (the
        layout is computed in the background), then renders the map with its legend into
        ``path``. Raises ``TimeoutError`` if no layout is drawn within ``timeout`` seconds, and
        ``UserError`` if the window is closed or the file cannot be written.
        """
        import time

        from PySide6.QtCore import QEventLoop, QTimer

        from avexplorer.state.embeddings import PROJECTIONS

        if self.closed:
            raise UserError("save_map: the window is closed")
        path = Path(path)
        view = self.window.map
        # The loop sleeps between events (a busy poll would take a core from the layout's worker)
        # and wakes at least every tick to look at the clock.
        loop, tick = QEventLoop(), QTimer()
        tick.setInterval(50)
        tick.timeout.connect(loop.quit)
        tick.start()
        deadline = time.monotonic() + timeout
        try:
            while not view.drawn_current():
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"save_map: no {PROJECTIONS[view.method]} layout was drawn within "
                        f"{timeout:g} s (the map is still computing it, or there are no "
                        "embeddings to draw)"
                    )
                loop.exec()
                if self.closed:
                    raise UserError("save_map: the window was closed before the map was drawn")
        finally:
            tick.stop()
        image = view.canvas.grab()
        from core.atomic import atomic_path

        with atomic_path(path) as tmp:
            if not image.save(str(tmp), "PNG"):
                raise UserError(f"{path}: cannot write the map there")
        return path

    def close(self) -> None:
        if not self.closed:
            self.window.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<avexplorer window ({state}): {len(self.selection)} clips selected>"


def show(
    audio: Any,
    visual: Any = None,
    labels: Any = None,
    names: Any = None,
    paths: Any = None,
    model: Any = None,
    *,
    class_names: Any = None,
    block: bool | None = None,
    title: str = "arrays",
) -> AppHandle:
    """Open the app on arrays, or on a run folder (``show(run_dir)``); see the module's text.

    ``audio``, ``visual``: [N, d] embeddings, or with ``model`` (a checkpoint path or a model)
    the raw features it embeds. ``labels``: [N] class ids (or class names). ``names``, ``paths``:
    [N] item names and clip files (for previews and playback). ``block``: wait for the window
    to close (default: unless a Qt event loop already runs, as under ``%gui qt``).
    """
    if isinstance(audio, str | Path) and visual is None:
        data, checkpoint, run_dir = _run(Path(audio))
        embeddings, names_ = None, None
    else:
        data, embeddings = _arrays(audio, visual, labels, paths, model, class_names, title)
        names_ = _names(names, len(data.test))
        checkpoint, run_dir = None, None
    app = _qt()
    from avexplorer.app import runs_folder
    from avexplorer.main_window import MainWindow
    from avexplorer.state.app_state import AppState
    from avexplorer.state.run import CHECKPOINT_RUN

    state = AppState(runs_root=run_dir.parent if run_dir is not None else runs_folder())
    window = MainWindow(state)
    handle = AppHandle(window, state)
    state.set_dataset(data, names={"test": names_} if names_ else None)
    if embeddings is not None:
        state.embeddings.add_embeddings(CHECKPOINT_RUN, embeddings)
    if checkpoint is not None:
        window.load_checkpoint(str(checkpoint))
    window.tabs.setCurrentWidget(window.explore_split)
    window.show()
    window.raise_()
    if block is None:
        block = not _event_loop_running()
        if block and getattr(_ipython_shell(), "kernel", None) is not None:
            print(
                "avexplorer.show: this kernel runs no Qt event loop, so show() returns when the "
                "window closes; for a live window run %gui qt first (with PySide6 6.7 or newer "
                "it needs IPython 8.28 or newer)",
                file=sys.stderr,
            )

    window.closing.connect(lambda: setattr(handle, "closed", True))
    window.closing.connect(state.close)  # its temporary folder; the window's jobs stop on close
    if not block:
        if _event_loop_running():
            # The loop is the kernel's or the shell's (%gui qt): closing our window must not
            # quit it, which would end every Qt event loop in the process, theirs included, and
            # leave the cell that closed the window without its reply.
            app.setQuitOnLastWindowClosed(False)
            _hand_back_to_kernel(app)
        return handle
    app.setQuitOnLastWindowClosed(True)  # our own loop, which ends with the window
    app.exec()
    window.jobs.wait(15_000)
    state.close()
    return handle


# ----- inputs --------------------------------------------------------------------------------
def _arrays(audio, visual, labels, paths, model, class_names, title):
    """The dataset and its embeddings; every check before any window opens."""
    from avexplorer.projections import EpochEmbeddings
    from core.data.arrays import ArrayError, dataset_from_arrays, unit_rows

    if visual is None or labels is None:
        raise ArrayError("show(audio, visual, labels): visual and labels are needed with arrays")
    built, epoch = None, 0
    if model is not None:
        built, names_from_model, epoch = _model(model)
        class_names = class_names if class_names is not None else names_from_model
    data = dataset_from_arrays(audio, visual, labels, paths, class_names, title)
    t = data.test
    if built is None:
        if t.audio.shape[1] != t.visual.shape[1]:
            raise ArrayError(
                f"audio embeddings are {t.audio.shape[1]}-d, visual {t.visual.shape[1]}-d: "
                "embeddings of one space have one width (with raw features, pass model=)"
            )
        a, v = unit_rows(t.audio, "audio"), unit_rows(t.visual, "visual")
    else:
        from core.training.embedding import embed_features

        for side, x in (("audio", t.audio), ("visual", t.visual)):
            want = _input_width(getattr(built, f"{side}_encoder", None))
            if want is not None and want != x.shape[1]:
                raise ArrayError(f"{side} features are {x.shape[1]}-d, the model takes {want}-d")
        a = embed_features(built, t.audio, "audio")
        v = embed_features(built, t.visual, "visual")
    return data, EpochEmbeddings(epoch, a, v, built)


def _model(model: Any) -> tuple[Any, tuple[str, ...] | None, int]:
    """(the model, its class names, epochs trained) from a checkpoint path or a model."""
    if isinstance(model, str | Path):
        from core.training.checkpoint import load_checkpoint

        ckpt = load_checkpoint(model)
        return ckpt.build_model("cpu"), tuple(ckpt.class_names), int(ckpt.epoch)
    if not (hasattr(model, "embed_audio") and hasattr(model, "embed_visual")):
        from core.data.arrays import ArrayError

        raise ArrayError(
            "model must be a checkpoint file or a model with embed_audio and embed_visual, "
            f"got {type(model).__name__}"
        )
    return model, None, 0


def _input_width(encoder: Any) -> int | None:
    """The feature width an encoder's first linear layer takes (None when it has none)."""
    if encoder is None:
        return None
    for layer in encoder.modules():
        if hasattr(layer, "in_features"):
            return int(layer.in_features)
    return None


def _names(names: Any, n: int) -> tuple[str, ...] | None:
    from core.data.arrays import strings

    return strings(names, n, "names")


def _run(run_dir: Path) -> tuple[Any, Path, Path]:
    """The dataset a run folder's checkpoint was trained on, the checkpoint and the folder."""
    from core.data.dataset import load_h5
    from core.training.checkpoint import load_checkpoint

    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run folder (show() takes arrays or a run folder)")
    checkpoint = next(
        (run_dir / n for n in ("model.pt", "last.pt") if (run_dir / n).is_file()), None
    )
    if checkpoint is None:
        raise UserError(f"{run_dir}: no checkpoint (model.pt or last.pt) in this folder")
    source = load_checkpoint(checkpoint).data_source
    if not source or not Path(source).is_file():
        raise UserError(
            f"{checkpoint}: the data it was trained on ({source or 'not recorded'}) is not there; "
            "open the app on its feature file and load the checkpoint"
        )
    return load_h5(source), checkpoint, run_dir


# ----- Qt ------------------------------------------------------------------------------------
HAND_BACK_MS = 250


def _qt() -> Any:
    from avexplorer.app import qt_application

    return qt_application()


def _event_loop_running() -> bool:
    """Whether a Qt event loop already runs the windows: IPython's ``%gui qt`` (in a Jupyter
    kernel or the terminal). Then ``show`` must not start another one."""
    shell = _ipython_shell()
    if shell is None:
        return False
    kernel = getattr(shell, "kernel", None)
    loop = getattr(kernel, "eventloop", None)
    if loop is not None and "qt" in getattr(loop, "__name__", "").lower():
        return True
    return str(getattr(shell, "active_eventloop", "") or "").startswith("qt")


def _hand_back_to_kernel(app: Any) -> None:
    """Under a Jupyter kernel's ``%gui qt``, leave the kernel's Qt loop a few times a second.

    ipykernel runs Qt in a nested event loop that it leaves when its shell socket signals a
    message; that signal is edge-triggered and can be missed when a request arrives while the
    kernel is busy re-entering the loop (more often on a loaded machine), and the cell then never
    returns. Leaving the loop costs the kernel one pass of its own loop (it re-enters after 1 ms),
    and every waiting request is handled on each pass.
    """
    from PySide6.QtCore import QTimer

    kernel = getattr(_ipython_shell(), "kernel", None)
    loop = getattr(getattr(kernel, "app", None), "qt_event_loop", None)
    if loop is None or app.findChild(QTimer, "avexplorer-hand-back") is not None:
        return  # not a kernel's Qt loop (a terminal's %gui qt uses an input hook), or done
    timer = QTimer(app)  # for the kernel's life: a later cell can meet the same miss
    timer.setObjectName("avexplorer-hand-back")
    timer.setInterval(HAND_BACK_MS)
    timer.timeout.connect(lambda: loop.isRunning() and loop.quit())
    timer.start()


def _ipython_shell() -> Any:
    """The running IPython shell (a Jupyter kernel's or the terminal's), or None."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None
