"""The training loop, written once as a generator of events for every front end.

    for event in train(config, data, out_dir=run_dir, control=control):
        ...

Pause and stop are flags of ``control``, checked between steps. A stop (or Ctrl-C in the CLI)
writes ``last.pt`` at the exact step, and ``train(..., resume_from=run_dir / "last.pt")``
continues the same run (on the same data only): weights, optimiser, teacher, schedule position
and every RNG. Each epoch end also writes ``last.pt`` (a crash loses at most the current epoch),
``model.pt`` when the val MAP improves, and ``history.jsonl`` (rewritten whole from the run's
state, so it always matches ``last.pt`` and never holds an epoch twice or another run's lines).

The run folder is locked while the run writes it and must be new or empty unless the run resumes
from it (see core/rundir.py). Every file is written atomically (core/atomic.py). A loss or a
weight that stops being finite ends the run with an error naming the step; nothing from that
step on is saved.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.atomic import atomic_write
from core.data.dataset import AVDataset, Split
from core.data.labels import hide_labels
from core.data.stream import BatchFeed, column_sums, is_on_disk, moments, streams
from core.device import resolve_device, set_threads
from core.errors import UserError
from core.evaluation.metrics import MapScores, cross_modal_map, scoring_problem
from core.rundir import open_run_dir
from core.training.auto import resolve
from core.training.batches import BatchSampler, batch_slices, epoch_order
from core.training.checkpoint import Checkpoint, data_differences, load_checkpoint, save_checkpoint
from core.training.config import RunConfig
from core.training.control import TrainControl
from core.training.distributed import DistContext, context_from_env
from core.training.embedding import embed_split
from core.training.events import (
    AlignmentSnapshot,
    CheckpointSaved,
    EpochEnd,
    Event,
    Paused,
    Resumed,
    RunFinished,
    RunStarted,
    StepEnd,
)
from core.training.model import AVEmbedder
from core.training.objective import Objective
from core.training.pseudo_labels import pseudo_labels
from core.training.schedules import learning_rate, ratio_schedule
from core.training.teacher import make_teacher

__all__ = ["TrainControl", "batch_slices", "epoch_order", "evaluate", "train"]


@dataclass
class _RunState:
    """What a checkpoint must hold beyond weights to continue a run exactly."""

    epoch: int = 0  # epochs done; the epoch in progress is number epoch + 1
    step: int = 0  # steps of the epoch in progress done
    best_avg: float = -1.0
    best_epoch: int = 0  # number (from 1) of the best epoch so far; 0: none yet
    best_val: dict[str, float] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    loss_sums: dict[str, float] = field(default_factory=dict)  # of the epoch in progress
    loss_steps: int = 0


# Past this many pairs, a split is scored on a seeded sample of this many queries against its
# whole gallery (core.evaluation.metrics.cross_modal_map), which the output says: the full
# protocol's cost grows with the square of the pairs (about a minute at 100k; docs/scaling.md).
EVAL_QUERIES = 20_000


def evaluate(model: AVEmbedder, split: Split, device: torch.device, name: str = "the") -> MapScores:
    """Cross-modal MAP of ``model`` on ``split``; an error, never NaN or a meaningless 1.0, when
    the split cannot be scored."""
    problem = scoring_problem(split.labels)
    if problem:
        raise UserError(f"{name} split cannot be scored: {problem}")
    audio, visual = embed_split(model, split, device)
    scores = cross_modal_map(audio, visual, split.labels, max_queries=EVAL_QUERIES)
    if scores.n == 0 or not math.isfinite(scores.avg):
        raise UserError(f"{name} split has no pairs that can be scored ({len(split)} pairs)")
    return scores


def training_problem(data: AVDataset) -> str | None:
    """Why a run cannot train and score on ``data`` (one line), or None when it can: the rule
    ``train`` refuses data by, and the app disables Start by."""
    where = data.source or "the data"
    if len(data.train) < 2:
        return f"{where}: the train split needs at least 2 pairs (it has {len(data.train)})"
    for name in ("val", "test"):
        problem = scoring_problem(data.split(name).labels)
        if problem:
            hint = " (raise --val-fraction)" if name == "val" and data.val_carved else ""
            return f"{where}: the {name} split cannot be scored: {problem}{hint}"
    return None


def check_splits(data: AVDataset) -> None:
    """Refuse data a run cannot train and score on, before anything is written."""
    problem = training_problem(data)
    if problem is not None:
        raise UserError(problem)


class NonFiniteError(UserError):
    """The loss or the weights stopped being finite numbers; the run cannot go on."""


def train(
    config: RunConfig,
    data: AVDataset,
    out_dir: str | Path | None = None,
    control: TrainControl | None = None,
    resume_from: str | Path | None = None,
    dist: DistContext | None = None,
    overwrite: bool = False,
) -> Iterator[Event]:
    """Train ``config.loss.method`` on ``data``, yielding events (see core/training/events.py).

    ``out_dir`` must be new or empty, or hold the run ``resume_from`` continues; ``overwrite``
    lets a new run replace the run files of a used folder (see core/rundir.py).

    Under ``torchrun`` (or with ``dist``) the batches are shared out across processes (see
    core/training/distributed.py); only the main process writes files.
    """
    control = control or TrainControl()
    device = resolve_device(config.device)
    dist = dist or context_from_env(device)
    check_splits(data)
    # Everything that can refuse the run (settings, the checkpoint and its state, the batches)
    # is done before the run folder is opened: nothing is written for a run that cannot start.
    run = _start(config, data, resume_from, dist, device)
    out = Path(out_dir) if out_dir is not None and dist.is_main else None
    run_dir = None
    if out is not None:
        run_dir = open_run_dir(out, resume_from=resume_from, overwrite=overwrite)
    try:
        yield from _train(run, data, out, control, dist, device)
    finally:
        if run_dir is not None:
            run_dir.close()


@dataclass
class _Start:
    """A run ready to train: resolved config, model, optimiser and position (restored on resume)."""

    config: RunConfig
    settings: str
    train_split: Split
    streamed: bool  # train features read from the file as training goes (core/data/stream.py)
    sampler: BatchSampler
    model: AVEmbedder
    optimizer: torch.optim.Optimizer
    teacher: Any
    objective: Objective
    generator: torch.Generator
    state: _RunState


def _start(
    config: RunConfig,
    data: AVDataset,
    resume_from: str | Path | None,
    dist: DistContext,
    device: torch.device,
) -> _Start:
    set_threads(config.threads)
    torch.manual_seed(config.seed)
    ckpt = load_checkpoint(resume_from) if resume_from is not None else None
    # Every "auto" setting gets its value here, before anything reads it (a resumed run keeps
    # the values it recorded); the run saves and reports the resolved config only.
    config, settings = resolve(config, data, ckpt.config if ckpt is not None else None)
    train_split = hide_labels(data.train, config.data.label_fraction, config.data.label_seed)
    streamed = is_on_disk(train_split.audio) and streams(
        config.data.stream_above_mb, train_split.audio.nbytes + train_split.visual.nbytes
    )
    if is_on_disk(train_split.audio) and not streamed:  # small enough: in memory, as loaded
        train_split = replace(
            train_split, audio=train_split.audio.load(), visual=train_split.visual.load()
        )
    try:
        sampler = BatchSampler(
            train_split.labelled,
            config.loss.method,
            config.optim.batch_size,
            config.optim.labelled_share,
            config.seed,
        )
    except ValueError as e:
        raise UserError(str(e)) from None

    model = AVEmbedder(data.audio_dim, data.visual_dim, data.num_classes, config.model).to(device)
    if config.model.standardize:  # before the teacher copies the student
        if streamed:  # one pass over the file in chunks, shared out among the processes
            model.set_input_moments(
                *(
                    moments(dist.sum_array(column_sums(x, dist.rank, dist.world), device))
                    for x in (train_split.audio, train_split.visual)
                )
            )
        else:
            model.set_input_stats(train_split.audio, train_split.visual)
    # The fused kernel does Adam's whole update in one pass per tensor (CPU and CUDA).
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay, fused=True
    )
    teacher = (
        make_teacher(config.loss.teacher, model, config.loss.teacher_momentum)
        if config.loss.method == "psd"
        else None
    )
    objective = Objective(config.loss)
    generator = torch.Generator().manual_seed(config.seed)  # draws of the annotated subsets
    state = _RunState()
    if ckpt is not None:
        assert resume_from is not None
        state = _restore(ckpt, resume_from, config, data, model, optimizer, teacher, generator)
        if state.step >= sampler.steps_per_epoch:
            raise UserError(
                f"{resume_from}: it stopped at step {state.step} of an epoch, which has "
                f"{sampler.steps_per_epoch} steps on this data; start a new run"
            )
        if state.epoch > config.optim.epochs:
            raise UserError(
                f"{resume_from}: it has trained {state.epoch} epochs already; --epochs must be at "
                f"least that (asked for {config.optim.epochs})"
            )
    return _Start(
        config,
        settings,
        train_split,
        streamed,
        sampler,
        model,
        optimizer,
        teacher,
        objective,
        generator,
        state,
    )


def _train(
    run: _Start,
    data: AVDataset,
    out: Path | None,
    control: TrainControl,
    dist: DistContext,
    device: torch.device,
) -> Iterator[Event]:
    config, settings, train_split, sampler = run.config, run.settings, run.train_split, run.sampler
    model, optimizer, teacher, objective = run.model, run.optimizer, run.teacher, run.objective
    generator, state, streamed = run.generator, run.state, run.streamed
    if out is not None:
        with atomic_write(out / "config.json", "w") as f:
            f.write(json.dumps(config.to_dict(), indent=2) + "\n")

    epochs = config.optim.epochs
    ratios = ratio_schedule(config.schedule, epochs)
    labels = torch.as_tensor(train_split.labels, device=device)
    steps_per_epoch = sampler.steps_per_epoch
    total_steps = epochs * steps_per_epoch
    features = _BatchFeatures(train_split, streamed, sampler, dist, total_steps, device)
    unlabelled = np.flatnonzero(~train_split.labelled)
    best_weights: dict[str, torch.Tensor] | None = None

    def snapshot_checkpoint(kind: str, path: Path) -> CheckpointSaved:
        ckpt = Checkpoint(
            config=config,
            class_names=list(data.class_names),
            audio_dim=data.audio_dim,
            visual_dim=data.visual_dim,
            model=model.state_dict(),
            attrs=dict(data.attrs),
            epoch=state.epoch,
            step=state.step,
            optimizer=optimizer.state_dict(),
            teacher=teacher.state_dict() if teacher is not None else None,
            rng=_rng_state(generator),
            run=_run_dict(state),
            data_source=data.source,
            data_fingerprint=data.fingerprint,
        )
        save_checkpoint(path, ckpt)
        # After an epoch's end state.epoch counts it; mid-epoch the epoch in progress is one more.
        return CheckpointSaved(path=path, epoch=state.epoch + (state.step > 0), kind=kind)

    yield RunStarted(
        config=config.to_dict(),
        device=str(device),
        n_train=len(train_split),
        n_val=len(data.val),
        steps_per_epoch=steps_per_epoch,
        total_epochs=epochs,
        start_epoch=state.epoch + 1,
        start_step=state.step,
        n_labelled=int(train_split.labelled.sum()),
        settings=settings,
    )
    try:
        while state.epoch < epochs:
            # The one place a position becomes the number everything shows
            # (core/training/events.py).
            epoch, r = state.epoch + 1, float(ratios[state.epoch])
            use_soft = state.epoch >= config.loss.soft_start
            started = time.perf_counter()
            model.train()
            while state.step < steps_per_epoch:
                if control.paused:
                    yield Paused(epoch, state.step)
                    control.wait_while_paused()
                    if not control.stopped:
                        yield Resumed(epoch, state.step)
                if dist.any(control.stopped, device):
                    raise _Stop
                idx = sampler.batch(state.epoch, state.step).to(device)
                local = idx[dist.shard(len(idx))]
                audio, visual = features.batch(state.epoch * steps_per_epoch + state.step, local)
                result = objective(
                    model,
                    teacher,
                    audio,
                    visual,
                    labels[idx],
                    r,
                    generator,
                    dist,
                    use_soft,
                )
                optimizer.zero_grad(set_to_none=True)
                result.total.backward()
                dist.sum_gradients(model)
                if config.optim.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
                lr = learning_rate(
                    config.optim, state.epoch * steps_per_epoch + state.step, total_steps
                )
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.step()
                if teacher is not None:
                    teacher.update()
                losses = {"total": result.total.item()} | {
                    k: v.item() for k, v in result.parts.items()
                }
                if not all(math.isfinite(v) for v in losses.values()):
                    bad = ", ".join(f"{k} {v}" for k, v in losses.items() if not math.isfinite(v))
                    raise NonFiniteError(
                        f"the loss is not a finite number at epoch {epoch}, step "
                        f"{state.step + 1} ({bad}); the run is stopped and nothing from this "
                        f"epoch is saved{_LOWER_LR}"
                    )
                for k, v in losses.items():
                    state.loss_sums[k] = state.loss_sums.get(k, 0.0) + v
                state.loss_steps += 1
                state.step += 1
                global_step = state.epoch * steps_per_epoch + state.step
                yield StepEnd(epoch, state.step, global_step, total_steps, losses, r)
                if config.snapshot_every and (global_step - 1) % config.snapshot_every == 0:
                    yield _alignment(epoch, global_step, result, labels[idx], idx)

            _check_weights(model, f"the end of epoch {epoch}")
            # Reported by the main process only (the others write nothing); they change nothing.
            pseudo = (
                pseudo_labels(epoch, model, teacher, config, train_split, unlabelled, device)
                if dist.is_main
                else None
            )
            val = evaluate(model, data.val, device, "the val")
            improved = val.avg > state.best_avg
            if improved:
                state.best_avg, state.best_epoch, state.best_val = val.avg, epoch, val.as_dict()
                best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            mean_losses = {k: v / max(state.loss_steps, 1) for k, v in state.loss_sums.items()}
            seconds = time.perf_counter() - started
            record = {
                "epoch": epoch,
                "r": r,
                "losses": mean_losses,
                "val": val.as_dict(),
                "seconds": seconds,
                "best": improved,
                "n_labelled": int(train_split.labelled.sum()),
            }
            if pseudo is not None:
                record["pseudo"] = {
                    "accuracy": pseudo.accuracy,
                    "confidence": float(pseudo.confidence.mean()) if len(unlabelled) else None,
                    "n": len(unlabelled),
                }
            state.history.append(record)
            state.epoch, state.step, state.loss_sums, state.loss_steps = epoch, 0, {}, 0
            if pseudo is not None:
                yield pseudo
            yield EpochEnd(
                epoch,
                mean_losses,
                val,
                r,
                seconds,
                improved,
                pseudo.accuracy if pseudo is not None else None,
            )
            if out is not None:
                if improved:
                    yield snapshot_checkpoint("best", out / "model.pt")
                yield snapshot_checkpoint("last", out / "last.pt")
                _write_history(out, state.history)
    except _Stop:
        # Stops land between steps only, so the state saved here is exactly resumable.
        if out is not None:
            _check_weights(model, f"epoch {state.epoch + 1}, step {state.step}")
            yield snapshot_checkpoint("interrupt", out / "last.pt")
        best = MapScores(**state.best_val) if state.best_val else None
        yield RunFinished(
            stopped=True, best_epoch=state.best_epoch, best_val=best, history=list(state.history)
        )
        return
    finally:
        features.close()  # stops the reader thread, also when the run fails or is abandoned

    # The test split is touched once, by the model that was best on val.
    if best_weights is None and out is not None and (out / "model.pt").exists():
        best_weights = load_checkpoint(out / "model.pt").model  # best epoch came before a resume
    if best_weights is not None:
        model.load_state_dict(best_weights)
    test = evaluate(model, data.test, device, "the test")
    best = MapScores(**state.best_val) if state.best_val else None
    yield RunFinished(
        stopped=False,
        best_epoch=state.best_epoch,
        best_val=best,
        test=test,
        history=list(state.history),
    )


# Rows of the train split one group of steps holds when it is streamed: the reader thread reads
# the next group while the model trains on this one (75 MB at 128 + 1,024 float32 dims).
FEED_ROWS = 16_384


class _BatchFeatures:
    """The features of each step's pairs: indexed from memory, or read ahead from the file."""

    def __init__(
        self,
        split: Split,
        streamed: bool,
        sampler: BatchSampler,
        dist: DistContext,
        total_steps: int,
        device: torch.device,
    ):
        self.device, self.feed = device, None
        if not streamed:
            self.audio = torch.as_tensor(split.audio, device=device)
            self.visual = torch.as_tensor(split.visual, device=device)
            return
        steps = sampler.steps_per_epoch

        def positions(g: int) -> np.ndarray:
            idx = sampler.batch(g // steps, g % steps)
            return idx[dist.shard(len(idx))].numpy()

        local_rows = math.ceil(len(sampler.batch(0, 0)) / dist.world)
        self.feed = BatchFeed(
            split.audio,  # type: ignore[arg-type]
            split.visual,  # type: ignore[arg-type]
            positions,
            total_steps,
            group=max(1, FEED_ROWS // local_rows),
        )

    def batch(self, global_step: int, local: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio, visual) of the pairs at ``local``, the positions of step ``global_step``
        (counted from 0) that this process embeds."""
        if self.feed is None:
            return self.audio[local], self.visual[local]
        audio, visual = self.feed.batch(global_step)
        return torch.from_numpy(audio).to(self.device), torch.from_numpy(visual).to(self.device)

    def close(self) -> None:
        if self.feed is not None:
            self.feed.close()


class _Stop(Exception):
    """Raised inside the loop when the control asks to stop."""


_LOWER_LR = "; a lower --lr (or a larger --infonce-temperature / --temperature) may help"


def _check_weights(model: AVEmbedder, when: str) -> None:
    """Refuse to go on (and so to save) with weights that are not finite numbers."""
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            raise NonFiniteError(
                f"the weights are not finite numbers at {when} ({name}); the run is stopped and "
                f"they are not saved{_LOWER_LR}"
            )


def _write_history(out: Path, history: list[dict[str, Any]]) -> None:
    """``history.jsonl``, one line per finished epoch, rewritten whole from the run's state."""
    with atomic_write(out / "history.jsonl", "w") as f:
        f.writelines(json.dumps(record) + "\n" for record in history)


def _alignment(
    epoch: int, global_step: int, result: Any, labels: torch.Tensor, idx: torch.Tensor
) -> AlignmentSnapshot:
    with torch.no_grad():
        student = (result.za @ result.zv.T).float().cpu().numpy()
    return AlignmentSnapshot(
        epoch=epoch,
        global_step=global_step,
        soft=result.soft.detach().float().cpu().numpy(),
        student=student,
        labels=labels.cpu().numpy().astype(np.int64),
        annotated=result.annotated.cpu().numpy(),
        indices=idx.cpu().numpy().astype(np.int64),
    )


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def _run_dict(state: _RunState) -> dict[str, Any]:
    return {
        "best_avg": state.best_avg,
        "best_epoch": state.best_epoch,
        "best_val": state.best_val,
        "history": state.history,
        "loss_sums": state.loss_sums,
        "loss_steps": state.loss_steps,
    }


def _restore(
    ckpt: Checkpoint,
    path: str | Path,
    config: RunConfig,
    data: AVDataset,
    model: AVEmbedder,
    optimizer: torch.optim.Optimizer,
    teacher: Any,
    generator: torch.Generator,
) -> _RunState:
    differences = data_differences(ckpt, data)
    if differences:
        raise UserError(
            f"{path}: trained on other data ({'; '.join(differences)}); resume on the data it "
            f"was trained on ({ckpt.data_source or 'not recorded'}), or start a new run"
        )
    if not ckpt.data_fingerprint:  # nothing to check the data against: never guess
        raise UserError(
            f"{path}: it does not record which data it was trained on (no data fingerprint), so "
            "resuming cannot be checked to continue on the same data; start a new run"
        )
    if ckpt.data_fingerprint != data.fingerprint:
        raise UserError(
            f"{path}: trained on other data ({ckpt.data_source or 'unknown file'}) than "
            f"{data.source or 'this data'} (same shapes, different contents); resume on the "
            "same data, or start a new run"
        )
    # The architecture and the method must match; the epoch budget may grow on resume.
    fixed = ckpt.config.replace(
        **{
            "optim.epochs": config.optim.epochs,
            "device": config.device,
            "threads": config.threads,
            "data.stream_above_mb": config.data.stream_above_mb,
        }
    )
    if fixed != config:
        raise UserError(
            f"{path}: its config differs from this run's (only --epochs, --device, "
            "--threads and --stream-above-mb may change on resume)"
        )
    model.load_state_dict(ckpt.model)
    # The checkpoint's fields were checked when it was read (core/training/checkpoint.py); what
    # only the live model can check (the optimiser's shapes, whose mismatch crashes the fused
    # Adam kernel) is checked here, and anything torch still refuses is one line naming it.
    if ckpt.optimizer is not None:
        _load_part(path, "optimizer", lambda: _load_optimizer(optimizer, ckpt.optimizer))
    if teacher is not None and ckpt.teacher is not None:
        _load_part(path, "teacher", lambda: teacher.load_state_dict(ckpt.teacher))
    if "torch" in ckpt.rng:
        _load_part(path, "rng", lambda: _set_rng(ckpt.rng, generator))
    if "cuda" in ckpt.rng and torch.cuda.is_available():
        _load_part(path, "rng", lambda: torch.cuda.set_rng_state_all(ckpt.rng["cuda"]))
    run = ckpt.run
    return _RunState(
        epoch=ckpt.epoch,
        step=ckpt.step,
        best_avg=run.get("best_avg", -1.0),
        best_epoch=run.get("best_epoch", 0),
        best_val=run.get("best_val"),
        history=list(run.get("history", [])),
        loss_sums=dict(run.get("loss_sums", {})),
        loss_steps=run.get("loss_steps", 0),
    )


def _load_part(path: str | Path, name: str, load: Any) -> None:
    try:
        load()
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
        raise UserError(
            f"{path}: its {name} state does not fit this run ({_first_line(e)}); the checkpoint "
            "is damaged"
        ) from None


def _load_optimizer(optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    groups = saved.get("param_groups")
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise ValueError("param_groups is not a list of groups")
    ids = [i for g in groups for i in g.get("params", [])]
    if len(ids) != len(params):
        raise ValueError(f"it holds {len(ids)} parameters, the model has {len(params)}")
    state = saved.get("state")
    if not isinstance(state, dict):
        raise ValueError("state is not a mapping")
    for i, p in zip(ids, params, strict=True):
        for key, value in (state.get(i) or {}).items():
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"state {i} {key} is not a tensor")
            if key != "step" and value.shape != p.shape:
                raise ValueError(
                    f"state {i} {key} has shape {tuple(value.shape)}, the parameter "
                    f"{tuple(p.shape)}"
                )
            if not torch.isfinite(value).all():
                raise ValueError(f"state {i} {key} holds NaN or infinite values")
    optimizer.load_state_dict(saved)


def _set_rng(rng: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(rng["torch"])
    generator.set_state(rng["generator"])


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:200] if lines else type(e).__name__
