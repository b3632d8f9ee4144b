"""``avexplorer``: with no subcommand it opens the app; ``train``, ``eval``, ``embed`` and
``extract`` run headless."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import signal
import sys
import traceback

from avexplorer import __version__
from avexplorer.commands import COMMANDS
from core.errors import UserError
from core.training.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avexplorer",
        description="Audio-visual embedding learning with progressive self-distillation. "
        "Run without a subcommand to open the app.",
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="show the version, the versions of the stack, the encoders available and the device",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if importlib.util.find_spec(f"avexplorer.commands.{name}") is None:
            continue  # a command still being written on another branch of work
        importlib.import_module(f"avexplorer.commands.{name}").add_parser(sub)
        sub.choices[name].add_argument(
            "--debug", action="store_true", help="show the traceback of an unexpected error"
        )
    return parser


class _VersionAction(argparse.Action):
    """Print the version and ``core.diagnostics.report()`` (computed only when asked: it imports
    torch for the device)."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[override]
        from core.diagnostics import report

        print(f"avexplorer {__version__}\n{report()}")
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        from avexplorer.app import run_app  # Qt is imported only when the app is wanted

        return run_app(argv)
    args = build_parser().parse_args(argv)
    prog = f"avexplorer {args.command}"
    _escape_undecodable_names()
    # SIGTERM stops a command as Ctrl-C does (train saves first; see commands/train.py), so that
    # clean-up runs: temporary files removed, decoding processes ended.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(args.run(args) or 0)
    except ConfigError as e:
        from avexplorer.commands.common import config_flag

        print(f"{prog}: error: --{config_flag(e.field)}: {e.problem}", file=sys.stderr)
        return 2
    except UserError as e:
        print(f"{prog}: error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader stopped early (``| head``): not an error of ours. Point stdout at devnull so
        # the interpreter's final flush does not raise again, and exit as a piped tool does.
        _silence_stdout()
        return 141
    except Exception as e:  # a bug, not bad input: say so, with the traceback on request
        if args.debug:
            traceback.print_exc()
        print(
            f"{prog}: internal error: {type(e).__name__}: {_one_line(str(e))}"
            + ("" if args.debug else " (rerun with --debug for the traceback)"),
            file=sys.stderr,
        )
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


def _escape_undecodable_names() -> None:
    """A file name that is not valid UTF-8 (its bytes kept as lone surrogates) is printed with
    those bytes escaped, rather than failing the print, and with it the command."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:  # not on a stream that is closed or cannot change
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured): nothing to flush
        pass


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _one_line(text: str) -> str:
    """A message on one line: later lines (details of a wrapped error) joined with '; '."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())
