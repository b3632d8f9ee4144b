"""``avexplorer``: with no subcommand it opens the app; ``train``, ``eval``, ``embed`` and
``extract`` run headless."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from avexplorer import __version__
from avexplorer.commands import COMMANDS
from core.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avexplorer",
        description="Audio-visual embedding learning with progressive self-distillation. "
        "Run without a subcommand to open the app.",
    )
    parser.add_argument("--version", action="version", version=f"avexplorer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if importlib.util.find_spec(f"avexplorer.commands.{name}") is None:
            continue  # a command still being written on another branch of work
        importlib.import_module(f"avexplorer.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        from avexplorer.app import run_app  # Qt is imported only when the app is wanted

        return run_app(argv)
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UserError as e:
        print(f"avexplorer {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"avexplorer {args.command}: interrupted", file=sys.stderr)
        return 130
