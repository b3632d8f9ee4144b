"""``avexplorer train DATA.h5 --method psd --epochs 30 --seed 0 --out RUN_DIR [--resume]``"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from tqdm import tqdm

from avexplorer.commands.common import add_config_flags, config_overrides, load_data
from core.errors import UserError
from core.evaluation.scores import MapScores
from core.training.checkpoint import resume_point
from core.training.config import RunConfig, method_config
from core.training.distributed import launch_from_env
from core.training.events import CheckpointSaved, EpochEnd, RunFinished, RunStarted, StepEnd
from core.training.loop import TrainControl, train


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on a feature file",
        description="Train psd, triplet or infonce on a feature file. Writes "
        "RUN_DIR/model.pt (best on val), RUN_DIR/last.pt (for --resume) and "
        "RUN_DIR/history.jsonl. Ctrl-C (or SIGTERM) saves RUN_DIR/last.pt and exits. RUN_DIR "
        "must be new or empty (or hold the run --resume continues); one run writes it at a time.",
    )
    p.add_argument("data", help="feature file in the lineage's HDF5 layout")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument(
        "--force",
        action="store_true",
        help="start a new run in a used --out, replacing its run files (model.pt, last.pt, ...)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar, one line per epoch")
    add_config_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    overrides = config_overrides(args)
    resume_from = None
    if args.resume:
        resume_from, config = resume_point(out)
        allowed = {"optim.epochs", "device", "threads", "data.stream_above_mb"}
        if set(overrides) - allowed:
            raise UserError(
                "on --resume only --epochs, --device, --threads and --stream-above-mb may change"
            )
        config = config.replace(**overrides)
    else:
        method = overrides.pop("loss.method", "psd")
        config = method_config(method, RunConfig().replace(**overrides))
    if args.force and args.resume:
        raise UserError("--force starts a new run; it does not go with --resume")
    data = load_data(args.data, config, lazy_train=True)  # large train splits stream
    main_process = launch_from_env().rank == 0  # under torchrun only rank 0 reports

    control = TrainControl()
    handler = _stop_on_first_signal(control)
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        events = train(
            config,
            data,
            out_dir=out,
            control=control,
            resume_from=resume_from,
            overwrite=args.force,
        )
        return _consume(events, quiet=args.quiet, silent=not main_process)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _stop_on_first_signal(control: TrainControl):
    """First Ctrl-C or SIGTERM: stop after the current step (and save). Second: abort at once."""

    def handler(signum, frame):
        if control.stopped:
            raise KeyboardInterrupt
        control.stop()
        what = "Ctrl-C" if signum == signal.SIGINT else "the signal"
        print(f"\nstopping after this step; {what} again aborts without saving", file=sys.stderr)

    return handler


def _consume(events, quiet: bool, silent: bool = False) -> int:
    bar = None
    for ev in events:
        if silent:
            if isinstance(ev, RunFinished):
                return 130 if ev.stopped else 0
            continue
        if isinstance(ev, RunStarted):
            # The run's first line: what its "auto" settings became (core.training.auto), kept with
            # the results on stdout.
            if ev.settings:
                print(ev.settings, flush=True)
            if not quiet:
                bar = tqdm(
                    total=ev.total_epochs * ev.steps_per_epoch,
                    unit="step",
                    initial=(ev.start_epoch - 1) * ev.steps_per_epoch + ev.start_step,
                    dynamic_ncols=True,
                )
            labelled = f" ({ev.n_labelled} labelled)" if 0 <= ev.n_labelled < ev.n_train else ""
            print(
                f"training {ev.config['loss']['method']} on {ev.device}: {ev.n_train} train"
                f"{labelled} / {ev.n_val} val pairs, {ev.total_epochs} epochs x "
                f"{ev.steps_per_epoch} steps"
                + (
                    f", resuming at epoch {ev.start_epoch}"
                    if ev.start_epoch > 1 or ev.start_step
                    else ""
                ),
                file=sys.stderr,
            )
        elif isinstance(ev, StepEnd) and bar is not None:
            bar.update(1)
            bar.set_postfix(epoch=ev.epoch, loss=f"{ev.losses['total']:.3f}", r=f"{ev.r:.2f}")
        elif isinstance(ev, EpochEnd):
            line = (
                f"epoch {ev.epoch}: loss {ev.losses.get('total', float('nan')):.4f}  "
                f"val MAP a2v {ev.val.a2v:.4f} v2a {ev.val.v2a:.4f} avg {ev.val.avg:.4f}  "
                + _pair_ranks(ev.val)
                + f"r {ev.r:.2f}  {ev.seconds:.1f}s"
                + (
                    ""
                    if ev.pseudo_accuracy is None
                    else f"  pseudo-labels {100 * ev.pseudo_accuracy:.1f}% right"
                )
                + ("  *best" if ev.best else "")
                + (f"  (val: {ev.val.sample_note()})" if ev.val.sampled_from else "")
            )
            (bar.write if bar is not None else print)(line)
        elif isinstance(ev, CheckpointSaved) and ev.kind == "interrupt":
            print(f"saved {ev.path} in epoch {ev.epoch}; continue with --resume", file=sys.stderr)
        elif isinstance(ev, RunFinished):
            if bar is not None:
                bar.close()
            if ev.stopped:
                return 130
            if ev.test is not None:
                print(
                    f"best epoch {ev.best_epoch}; test MAP a2v {ev.test.a2v:.4f} "
                    f"v2a {ev.test.v2a:.4f} avg {ev.test.avg:.4f}"
                    + (f" ({ev.test.sample_note()})" if ev.test.sampled_from else "")
                )
    return 0


def _pair_ranks(val: MapScores) -> str:
    """Recall@1 and the median rank of the true pair, averaged over both directions."""
    if val.recall_at_1 is None or val.median_rank is None:
        return ""
    return f"R@1 {val.recall_at_1_avg:.3f} median rank {val.median_rank_avg:g}  "
