"""``avexplorer`` with no subcommand: build the Qt application and open the main window.

Start-up is kept short: the window is shown first, the dataset is opened by a worker right after,
and torch-heavy or numba-heavy work (training, UMAP, feature extraction) only ever starts in
workers, on request.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="avexplorer", description="Open the avexplorer app.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--demo", action="store_true", help="open the built-in demo (the default)")
    src.add_argument("--data", metavar="FILE.h5", help="open a feature file")
    src.add_argument("--folder", metavar="DIR", help="open a folder of clips")
    src.add_argument("--synthetic", metavar="SHAPE", help="open a generated dataset (e.g. tiny)")
    p.add_argument("--checkpoint", metavar="FILE.pt", help="load a checkpoint after opening")
    p.add_argument(
        "--train",
        nargs="?",
        const="psd",
        metavar="METHOD",
        help="start training at once (psd, triplet or infonce)",
    )
    p.add_argument("--epochs", type=int, help="epochs for --train")
    p.add_argument(
        "--label-fraction",
        type=float,
        metavar="F",
        help="for --train: keep the labels of this fraction of the train pairs (simulated)",
    )
    p.add_argument(
        "--tab",
        choices=("training", "explore", "metrics", "time", "labels", "issues"),
        help="tab to show",
    )
    p.add_argument(
        "--query", type=int, metavar="N", help="query with test item N when a model exists"
    )
    return p


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse bad flags before any window opens, with the rules the CLI uses (one line, exit 2)."""
    from core.data.synthetic import SHAPES
    from core.training.config import ConfigError, RunConfig, method_config

    if args.epochs is not None and args.train is None:
        parser.error("--epochs goes with --train")
    if args.label_fraction is not None and args.train is None:
        parser.error("--label-fraction goes with --train")
    if args.train is not None:
        flags = {"optim.epochs": "--epochs", "data.label_fraction": "--label-fraction"}
        given = {"optim.epochs": args.epochs, "data.label_fraction": args.label_fraction}
        try:
            method_config(
                args.train, RunConfig().replace(**{k: v for k, v in given.items() if v is not None})
            )
        except ConfigError as e:
            parser.error(f"{flags.get(e.field, '--train')}: {e.problem}")
    if args.synthetic is not None and args.synthetic not in SHAPES:
        parser.error(
            f"--synthetic: unknown shape {args.synthetic!r}; choose one of {', '.join(SHAPES)}"
        )
    if args.query is not None and args.query < 0:
        parser.error(f"--query: item numbers start at 0, got {args.query}")


def run_app(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    check_args(parser, args)
    from PySide6.QtCore import QTimer

    app = qt_application()

    from avexplorer.gc_freeze import freeze_long_lived
    from avexplorer.main_window import MainWindow
    from avexplorer.state.app_state import AppState

    state = AppState(runs_root=runs_folder())
    window = MainWindow(state)
    window.show()
    show_encoder_problems(window)
    # The first dataset opens right after start-up: freezing then also covers start-up's objects.
    state.signals.datasetChanged.connect(freeze_long_lived)
    QTimer.singleShot(0, lambda: open_initial(window, args))
    wake = close_on_signals(window)  # noqa: F841 (kept alive while the app runs)
    code = app.exec()
    # Closing the window cancelled every job; wait for the workers to end before their Qt
    # objects go away (a stopped run saves its state first, which takes a moment).
    window.jobs.close()
    window.jobs.wait(15_000)
    state.close()
    return code


def qt_application():
    """The QApplication, set up for the app: the running one (a notebook's) or a new one."""
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    import avexplorer.qt_compat  # noqa: F401 (PySide6 6.12 drops references to None, True, False)

    # The training worker runs Python between torch kernels; a shorter GIL switch interval lets
    # the GUI thread in sooner (the default 5 ms would be a visible share of a 50 ms budget).
    sys.setswitchinterval(0.001)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("avexplorer")
    app.setOrganizationName("avexplorer")
    pg.setConfigOptions(antialias=True, background="w", foreground="k", imageAxisOrder="row-major")
    return app


def runs_folder() -> Path:
    """Where the app keeps its training runs (the user's application data folder)."""
    from PySide6.QtCore import QStandardPaths

    location = QStandardPaths.StandardLocation.AppLocalDataLocation
    return Path(QStandardPaths.writableLocation(location)) / "runs"


def show_encoder_problems(window) -> None:
    """A missing pretrained encoder, said in the status bar for as long as the app runs (a
    normal status widget: temporary messages cover it, then it comes back)."""
    from PySide6.QtWidgets import QLabel, QSizePolicy

    from core.diagnostics import encoder_problems

    problems = encoder_problems()
    if problems:
        label = QLabel("⚠ " + "; ".join(problems))
        label.setToolTip("\n".join(problems))
        label.setStyleSheet("color: #a04000")
        # cut on a narrow window rather than widen it; the tooltip has the whole text
        label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        window.statusBar().addWidget(label, 1)


def close_on_signals(window) -> object:
    """Ctrl-C (SIGINT) or SIGTERM in the app's terminal closes the window, as its close button
    does: a running training saves its last step first. Qt's event loop runs no Python code by
    itself, so a timer gives Python a moment, a few times a second, to run the handler."""
    from PySide6.QtCore import QTimer

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: window.close())
    timer = QTimer()
    timer.timeout.connect(lambda: None)
    timer.start(200)
    return timer


def show_tab(window, name: str) -> None:
    tabs = {
        "training": window.training_split,
        "explore": window.explore_split,
        "metrics": window.metrics_view,
        "labels": window.labelling_view,
        "issues": window.data_issues_view,
    }
    window.tabs.setCurrentWidget(tabs.get(name, window.time_view))


def open_initial(window, args: argparse.Namespace) -> None:
    """Open the dataset the arguments ask for, then run the requested follow-ups once it is in."""
    state = window.state

    def after_dataset() -> None:
        state.signals.datasetChanged.disconnect(after_dataset)
        if args.checkpoint:
            window.load_checkpoint(args.checkpoint)  # shows the Explore tab, unless --tab says
        if args.tab:
            show_tab(window, args.tab)
        if args.train:
            panel = window.training_panel
            panel.set_values(**{"loss.method": args.train})
            config = panel.config()
            if args.epochs:  # checked by check_args; the form's spin box may show less
                panel.set_values(**{"optim.epochs": args.epochs})
                config = config.replace(**{"optim.epochs": args.epochs})
            if args.label_fraction is not None:
                panel.set_values(**{"data.label_fraction": args.label_fraction})
                config = config.replace(**{"data.label_fraction": args.label_fraction})
            state.runs.request_training(config)
            if args.tab:
                show_tab(window, args.tab)
        if args.query is not None:

            def query() -> None:
                if state.retrieval.gallery is not None:
                    state.signals.modelChanged.disconnect(query)
                    n = len(state.catalog.dataset.test)
                    if args.query >= n:
                        window.show_error(
                            "No such item", f"--query {args.query}: the test split has {n} items"
                        )
                        return
                    state.retrieval.set_item_query("test", args.query)

            state.signals.modelChanged.connect(query)

    state.signals.datasetChanged.connect(after_dataset)
    if args.data:
        window.open_h5(args.data)
    elif args.folder:
        window.open_folder(args.folder)
    elif args.synthetic:
        from core.data.synthetic import make_dataset

        state.set_dataset(make_dataset(args.synthetic, seed=0))
    elif args.checkpoint and not args.demo and (source := checkpoint_data(args.checkpoint)):
        window.open_h5(source)
    else:
        window.open_demo()


def checkpoint_data(path: str) -> str | None:
    """The feature file a checkpoint was trained on, when it is still there: what
    ``--checkpoint`` alone opens (the demo would refuse a checkpoint of other data)."""
    from core.training.checkpoint import load_checkpoint

    try:
        source = load_checkpoint(path).data_source
    except Exception:  # an unreadable checkpoint: load_checkpoint's dialog says why, later
        return None
    return source if source and Path(source).is_file() else None
