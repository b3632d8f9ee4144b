"""The training process: the core's generator run in a child process, events sent in batches.

Training runs in a child process, not a thread: the loop spends much of each step in Python
(batching, losses, events), and in a thread it would hold the GIL against the GUI thread, which
then stalls for hundreds of ms on a loaded two-core machine. The child also runs at a lower CPU
priority, so under contention the window wins. This module imports no Qt, so the child (started
with ``spawn``) stays light; ``jobs.controller`` runs ``train_in_process`` in a pump thread.
"""

from __future__ import annotations

import pickle
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from avexplorer.jobs.spawning import main_module_hidden
from avexplorer.projections import EpochEmbeddings, compute_layout
from core.errors import UserError
from core.training.control import TrainControl
from core.training.events import CheckpointSaved, EpochEnd, StepEnd

PROCESS_NAME = "avexplorer-train"


def _child(
    conn: Any,
    config: Any,
    data: Any,
    out_dir: Path,
    control: TrainControl,
    nice: int,
    embed_epochs: bool,
    resume: bool,
) -> None:
    """Entry point of the training process: run the core's generator, send event batches."""
    import os
    import signal

    # Ctrl-C in the terminal reaches the whole process group; the app decides what it means
    # (stop the run through ``control``, which saves it), so the child does not die of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if nice:
            os.nice(nice)
        from core.training.loop import train

        batches = training_batches(train, config, data, out_dir, control, embed_epochs, resume)
        for batch in batches:
            _send(conn, "events", batch)
        _send(conn, "done", None)
    except BaseException as exc:  # everything goes back to the app, which shows it
        msg = (
            str(exc)
            if isinstance(exc, UserError)
            else (f"{type(exc).__name__}: {exc}\n\n" + traceback.format_exc())
        )
        _send(conn, "error", msg)
    finally:
        conn.close()


def _send(conn: Any, kind: str, payload: Any) -> None:
    # Plain pickle, not the connection's: torch registers shared-memory reducers there, whose
    # file descriptors vanish when the child exits before the app has read the message.
    conn.send_bytes(pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL))


def train_in_process(
    config: Any,
    data: Any,
    out_dir: Path,
    control: TrainControl,
    ctx: Any,
    nice: int = 5,
    embed_epochs: bool = True,
    resume: bool = False,
    started: Callable[[Any], None] | None = None,
) -> Iterator[list[Any]]:
    """Start the training process and yield its event batches (runs in a pump thread).

    ``resume``: continue the stopped run in ``out_dir`` (``config`` is then its recorded one);
    ``started(process)`` is called once the process runs, so that the app can end it on quit.
    """
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_child,
        args=(child, config, data, out_dir, control, nice, embed_epochs, resume),
        daemon=True,
        name=PROCESS_NAME,
    )
    with main_module_hidden():
        proc.start()
    child.close()
    if started is not None:
        started(proc)
    try:
        while True:
            if parent.poll(0.1):
                try:
                    kind, payload = pickle.loads(parent.recv_bytes())
                except EOFError:  # it ended without sending "done" or an error: it died
                    proc.join(timeout=5)
                    kind, payload = "error", _death(proc.exitcode, out_dir)
                if kind == "events":
                    yield payload
                elif kind == "done":
                    return
                else:
                    raise TrainingProcessError(payload)
            elif not proc.is_alive() and not parent.poll():
                raise TrainingProcessError(_death(proc.exitcode, out_dir))
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
        parent.close()


def _death(exitcode: int | None, out_dir: Path) -> str:
    """What to tell the user when the training process ended without a word."""
    import signal

    if exitcode is not None and exitcode < 0:
        try:
            how = f"was killed ({signal.Signals(-exitcode).name})"
        except ValueError:
            how = f"was killed (signal {-exitcode})"
    else:
        how = f"ended unexpectedly (exit code {exitcode})"
    return (
        f"the training process {how}; the run did not finish. {out_dir} keeps what its last "
        "finished epoch saved (last.pt, model.pt, history.jsonl)"
    )


class TrainingProcessError(UserError):
    """An error raised in the training process, with its message (and traceback) as text."""


def training_batches(
    train_fn: Callable[..., Iterator[Any]],
    config: Any,
    data: Any,
    out_dir: Path,
    control: Any,
    embed_epochs: bool = True,
    resume: bool = False,
    flush_seconds: float = 0.05,
) -> Iterator[list[Any]]:
    """Run the core's training generator, yielding its events in batches.

    With ``resume`` the stopped run in ``out_dir`` continues from its ``last.pt`` with the config
    it recorded, as ``avexplorer train --resume`` does (``core.training.checkpoint.resume_point``).

    Steps are batched (at most one hand-over per ``flush_seconds``, half a frame of the loss
    plot's 10 Hz) so that a fast loop on a small dataset does not flood the GUI thread with one
    queued signal per step, while the plot still gets new steps at every frame; every other event
    is handed over at once. After each epoch's ``last`` checkpoint the test split is embedded with
    that checkpoint here (an ``EpochEmbeddings`` in the batch) for the map and the retrieval view,
    with its PCA layout (aligned to the previous epoch's), so that the GUI thread only draws.
    """
    buf: list[Any] = []
    last_flush = time.monotonic()
    epoch = 0  # the last epoch that ended (numbered from 1); 0: none yet
    embedded: set[int] = set()
    previous: np.ndarray | None = None
    extra: dict[str, Any] = {}
    if resume:
        from core.training.checkpoint import resume_point

        extra["resume_from"], config = resume_point(out_dir)
    for ev in train_fn(config, data, out_dir=out_dir, control=control, **extra):
        buf.append(ev)
        if isinstance(ev, EpochEnd):
            epoch = ev.epoch
        elif (
            isinstance(ev, CheckpointSaved)
            and embed_epochs
            and ev.kind in ("last", "interrupt")
            and epoch > 0
            and epoch not in embedded
        ):
            # An interrupt checkpoint holds the weights a few steps past `epoch`; named by it.
            embedded.add(epoch)
            emb = embed_checkpoint(ev.path, data.test, epoch)
            if len(data.test) >= 2:
                emb.layout = compute_layout(emb, "pca", previous)
                previous = emb.layout.coords
            buf.append(emb)
        now = time.monotonic()
        if not isinstance(ev, StepEnd) or now - last_flush >= flush_seconds:
            yield buf
            buf, last_flush = [], now
    if buf:
        yield buf


def embed_checkpoint(path: str | Path, split: Any, epoch: int) -> EpochEmbeddings:
    from core.training.checkpoint import load_checkpoint
    from core.training.embedding import embed_split

    model = load_checkpoint(path).build_model("cpu")
    audio, visual = embed_split(model, split, "cpu")
    return EpochEmbeddings(epoch, audio, visual, model, Path(path))
