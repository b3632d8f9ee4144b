"""Pieces shared by the headless subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.data.dataset import AVDataset, Split, load_h5
from core.device import resolve_device
from core.errors import UserError
from core.training.checkpoint import Checkpoint, data_differences, load_checkpoint
from core.training.config import AUTO, RunConfig, auto_fields, flat_fields
from core.training.model import AVEmbedder

# Flags whose dotted config name reads badly on a command line get a short name.
_SHORT = {
    "loss.method": "method",
    "optim.epochs": "epochs",
    "optim.batch_size": "batch-size",
    "optim.lr": "lr",
    "schedule.shape": "schedule",
    "seed": "seed",
    "device": "device",
    "threads": "threads",
}


# What a flag's dotted name and default do not say.
_HELP = {
    "recipe": "default: fields left at auto are set from the train split's label rate; paper: "
    "the paper's psd (METHOD.md's values); see docs/method.md",
}


def flag_name(dotted: str) -> str:
    return _SHORT.get(dotted, dotted.split(".")[-1].replace("_", "-"))


def _config_flags() -> dict[str, str]:
    """Dotted config name -> flag name (without the dashes)."""
    flags: dict[str, str] = {}
    for dotted, _, _ in flat_fields():
        name = flag_name(dotted)
        if name in flags.values():  # two sections with one leaf name: fall back to the dotted one
            name = dotted.replace(".", "-").replace("_", "-")
        flags[dotted] = name
    return flags


def config_flag(dotted: str) -> str:
    """The command-line flag (without dashes) of a dotted config field, for error messages."""
    return _config_flags().get(dotted, dotted)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config field (``--margin``, ``--r-end``, ``--mining`` ...), default None so
    that only the flags a user gives override the config (METHOD.md's defaults otherwise)."""
    group = parser.add_argument_group("config (defaults from docs/method.md)")
    flags = _config_flags()
    auto = auto_fields()
    for dotted, default, _ in flat_fields():
        name = flags[dotted]
        kind = type(auto.get(dotted, default))
        parse = _parse_bool if kind is bool else kind
        extra = ""
        if dotted in auto:  # "auto" (the default) or a value
            parse = _auto_or(parse)
            extra = f"; auto: set from the train split's label rate, paper: {auto[dotted]}"
        group.add_argument(
            f"--{name}",
            dest=f"cfg:{dotted}",
            default=None,
            metavar=kind.__name__.upper() + ("|auto" if dotted in auto else ""),
            type=parse,
            help=f"{dotted} (default {default}{extra})"
            + (f". {_HELP[dotted]}" if dotted in _HELP else ""),
        )


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg:") and v is not None}


def load_data(path: str | Path, config: RunConfig, lazy_train: bool = False) -> AVDataset:
    """The feature file, its val split carved as ``config`` says; ``lazy_train`` leaves the
    train features on disk (see ``load_h5``) for a run to stream or load as its config says."""
    return load_h5(
        path, val_fraction=config.data.val_fraction, seed=config.seed, lazy_train=lazy_train
    )


def add_model_split_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint")
    parser.add_argument("data")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--device", default="auto")


def load_model_and_split(args: argparse.Namespace) -> tuple[AVEmbedder, Checkpoint, Split, Any]:
    """The checkpoint's model on the chosen device and the split it should read, checked to fit.

    The val split is carved exactly as in training (same fraction and seed from the checkpoint).
    """
    ckpt = load_checkpoint(args.checkpoint)
    data = load_data(args.data, ckpt.config)
    differences = data_differences(ckpt, data)
    if differences:
        raise UserError(f"{args.checkpoint} does not fit {data.source}: {'; '.join(differences)}")
    split = data.split(args.split)
    if not len(split):  # nothing to score or embed: an error, never a NaN score
        raise UserError(f"{data.source}: the {args.split} split has no pairs")
    device = resolve_device(args.device)
    return ckpt.build_model(device), ckpt, split, device


def _auto_or(parse: Any) -> Any:
    def parse_auto(text: str) -> Any:
        return AUTO if text == AUTO else parse(text)

    parse_auto.__name__ = getattr(parse, "__name__", "value")  # argparse names it in errors
    return parse_auto


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
