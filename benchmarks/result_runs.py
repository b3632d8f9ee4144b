"""Running the grid's jobs into docs/results/runs.json, and reading the runs back as
table rows (mean and spread over seeds) for the report and its sections."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.result_grid import (
    BASE_OVERRIDES,
    DATA_SEED,
    GROUPS,
    REAL_SHAPES,
    Group,
    Job,
    Row,
    _dataset,
    jobs_of,
)


def run_job(job: Job, data: Any, clean: Any = None) -> dict[str, Any]:
    """Train one run (best-on-val checkpoint into a temp dir) and return its record.

    ``clean``: the generator's train labels before label noise, to score pseudo-labels against
    the truth as well as against the (noisy) labels that were hidden."""
    import torch

    from core.training.checkpoint import load_checkpoint
    from core.training.events import EpochEnd, PseudoLabels, RunFinished, RunStarted
    from core.training.loop import evaluate, train

    cfg = job.config()
    seconds: list[float] = []
    pseudo: list[float | None] = []
    pseudo_clean: list[float] = []
    n_labelled = -1
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="avx-bench-") as tmp:
        for ev in train(cfg, data, out_dir=tmp):
            if isinstance(ev, RunStarted):
                n_labelled = ev.n_labelled
            elif isinstance(ev, PseudoLabels) and clean is not None:
                hit = ev.predicted == clean[ev.indices]
                pseudo_clean.append(round(float(hit.mean()), 4))
            elif isinstance(ev, EpochEnd):
                seconds.append(ev.seconds)
                pseudo.append(None if ev.pseudo_accuracy is None else round(ev.pseudo_accuracy, 4))
                print(
                    f"    epoch {ev.epoch}/{job.epochs}: val avg {ev.val.avg:.4f} r {ev.r:.2f}"
                    f" {ev.seconds:.1f}s"
                    + ("" if ev.pseudo_accuracy is None else f" pseudo {ev.pseudo_accuracy:.3f}")
                    + (" *" if ev.best else ""),
                    file=sys.stderr,
                    flush=True,
                )
            elif isinstance(ev, RunFinished):
                finished = ev
        # The final epoch's model on test: how much a run without model selection would lose.
        last = load_checkpoint(Path(tmp) / "last.pt").build_model(torch.device("cpu"))
        last_test = evaluate(last, data.test, torch.device("cpu"))
    return {
        "shape": job.shape,
        "data_seed": DATA_SEED,
        "method": job.method,
        "overrides": dict(job.overrides),
        "data": dict(job.data),
        "seed": job.seed,
        "epochs": job.epochs,
        "best_epoch": finished.best_epoch,
        "val": _scores(finished.best_val),
        "test": _scores(finished.test),
        "last_test": _scores(last_test),
        "val_curve": [round(h["val"]["avg"], 4) for h in finished.history],
        **({"pseudo_curve": pseudo} if any(p is not None for p in pseudo) else {}),
        **({"pseudo_clean_curve": pseudo_clean} if pseudo_clean else {}),
        **({"n_labelled": n_labelled} if cfg.data.label_fraction < 1 else {}),
        "sec_per_epoch": round(sum(seconds) / len(seconds), 3),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def _scores(s: Any) -> dict[str, float]:
    return {"a2v": round(s.a2v, 5), "v2a": round(s.v2a, 5), "avg": round(s.avg, 5)}


def load_runs(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {"meta": {}, "runs": {}}


def save_runs(path: Path, db: dict[str, Any], merge: bool = False) -> None:
    """Write ``db``; with ``merge``, keep the runs that another process wrote to the file
    meanwhile (two processes may fill one JSON side by side, e.g. ``--method psd`` and
    ``--method triplet``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if merge and path.exists():
        db["runs"] = {**json.loads(path.read_text()).get("runs", {}), **db["runs"]}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(db, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def run_all(args: argparse.Namespace, json_path: Path) -> dict[str, Any]:
    import torch

    from core.data.synthetic import make_dataset

    torch.set_num_threads(1)
    db = load_runs(json_path)
    db["meta"].update(
        {
            "data_seed": DATA_SEED,
            "threads": 1,
            "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(),
            "note": "2-core machine shared with other jobs: seconds per epoch are contended",
        }
    )
    todo: list[Job] = []
    for group in GROUPS:
        if args.group and group.name not in args.group:
            continue
        for shape in group.shapes:
            if args.shape and shape not in args.shape:
                continue
            for row in group.rows:
                for job in jobs_of(group, shape, row, args.epochs):
                    if args.seeds is not None and job.seed not in args.seeds:
                        continue
                    if args.method and job.method not in args.method:
                        continue
                    if args.row and not any(row.label.startswith(x) for x in args.row):
                        continue
                    fraction = dict(job.overrides).get("data.label_fraction", 1.0)
                    if args.fractions is not None and fraction not in args.fractions:
                        continue
                    if job.key not in db["runs"] and job not in todo:
                        todo.append(job)
    print(f"{len(todo)} runs to do", file=sys.stderr)
    datasets: dict[str, Any] = {}
    for i, job in enumerate(todo, 1):
        data_key = (job.shape, job.data)
        if data_key not in datasets:
            datasets.clear()  # one dataset in memory at a time
            datasets[data_key] = _dataset(job.shape, job.data)
            if job.shape not in REAL_SHAPES:  # the same features, drawn before the label flips
                clean_spec = replace(job.spec(), label_noise=0.0)
                datasets["clean"] = make_dataset(clean_spec, DATA_SEED).train.labels
        print(
            f"[{i}/{len(todo)}] {job.shape} {job.method} seed {job.seed} {dict(job.overrides)} "
            f"{dict(job.data)}",
            file=sys.stderr,
            flush=True,
        )
        record = run_job(job, datasets[data_key], datasets.get("clean"))
        db["runs"][job.key] = record
        save_runs(json_path, db, merge=True)
        t = record["test"]
        print(
            f"  test avg {t['avg']:.4f} (a2v {t['a2v']:.4f} v2a {t['v2a']:.4f}), best epoch "
            f"{record['best_epoch']}, {record['sec_per_epoch']:.2f} s/epoch",
            file=sys.stderr,
            flush=True,
        )
    return db


def diagnose(out_path: Path, seed: int = 0) -> dict[str, Any]:
    """How good are the teacher's labels? One psd run (defaults) and one triplet run on AVE-like;
    after each epoch, the argmax of the EMA teacher's (psd) or the model's own (triplet) class
    probabilities on the *train* pairs, compared with the clean labels (which the generator
    knows) and with the noisy ones the run was trained on, over the mislabelled pairs."""

    import numpy as np
    import torch

    from core.data.synthetic import SHAPES, make_dataset
    from core.training.auto import paper_settings
    from core.training.config import RunConfig, method_config
    from core.training.loop import batch_slices, epoch_order, evaluate
    from core.training.model import AVEmbedder
    from core.training.objective import Objective
    from core.training.schedules import ratio_schedule
    from core.training.teacher import make_teacher

    torch.set_num_threads(1)
    data = make_dataset("ave", DATA_SEED)
    # Same seed and spec without noise: the train features are drawn before the label flips,
    # so they are identical and only the labels differ.
    clean = make_dataset(replace(SHAPES["ave"], label_noise=0.0), DATA_SEED).train
    assert np.array_equal(clean.audio, data.train.audio)
    y_clean = torch.as_tensor(clean.labels)
    y_noisy = torch.as_tensor(data.train.labels)
    flipped = y_clean != y_noisy
    result: dict[str, Any] = {
        "seed": seed,
        "n_train": len(y_noisy),
        "n_flipped": int(flipped.sum()),
        "runs": {},
    }
    for method in ("psd", "triplet"):
        base = RunConfig(device="cpu", threads=1, snapshot_every=0, seed=seed, recipe="paper")
        # This loop runs the steps itself, so it sets the paper's values of the auto fields.
        base = base.replace(**paper_settings(), **dict(BASE_OVERRIDES))
        cfg = method_config(method, base)
        torch.manual_seed(seed)
        model = AVEmbedder(data.audio_dim, data.visual_dim, data.num_classes, cfg.model)
        opt = torch.optim.Adam(
            model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay
        )
        teacher = make_teacher("ema", model, cfg.loss.teacher_momentum) if method == "psd" else None
        objective = Objective(cfg.loss)
        gen = torch.Generator().manual_seed(seed)
        ratios = ratio_schedule(cfg.schedule, cfg.optim.epochs)
        audio = torch.as_tensor(data.train.audio)
        visual = torch.as_tensor(data.train.visual)
        slices = batch_slices(len(y_noisy), cfg.optim.batch_size)
        rows = []
        for epoch in range(cfg.optim.epochs):
            model.train()
            order = epoch_order(seed, epoch, len(y_noisy))
            for sl in slices:
                idx = order[sl]
                out = objective(
                    model, teacher, audio[idx], visual[idx], y_noisy[idx], float(ratios[epoch]), gen
                )
                opt.zero_grad(set_to_none=True)
                out.total.backward()
                opt.step()
                if teacher is not None:
                    teacher.update()
            judge = teacher.model if teacher is not None else model
            with torch.no_grad():
                judge.eval()
                pa = judge.classify(judge.embed_audio(audio)).argmax(1)
                pv = judge.classify(judge.embed_visual(visual)).argmax(1)
            model.train()
            pred = torch.cat([pa, pv])
            yc, yn, fl = (torch.cat([t, t]) for t in (y_clean, y_noisy, flipped))
            rows.append(
                {
                    "epoch": epoch + 1,
                    "r": round(float(ratios[epoch]), 3),
                    "acc_clean_all": round(float((pred == yc).float().mean()), 4),
                    "flipped_pred_clean": round(float((pred[fl] == yc[fl]).float().mean()), 4),
                    "flipped_pred_noisy": round(float((pred[fl] == yn[fl]).float().mean()), 4),
                    "val_avg": round(evaluate(model, data.val, torch.device("cpu")).avg, 4),
                }
            )
            print(method, rows[-1], file=sys.stderr, flush=True)
        result["runs"][method] = rows
    save_runs(out_path, result)
    return result


def diagnosis_table(diag: dict[str, Any]) -> list[str]:
    lines = [
        f"Train pairs: {diag['n_train']}, of which {diag['n_flipped']} carry a wrong label. "
        f"Predictions of both modalities are pooled (seed {diag['seed']}).",
        "",
        "| epoch | r (psd) | psd teacher: acc. vs clean | on mislabelled: = clean "
        "| on mislabelled: = noisy | triplet model: acc. vs clean | = clean | = noisy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    psd, tri = diag["runs"]["psd"], diag["runs"]["triplet"]
    for p, t in zip(psd, tri, strict=True):
        if p["epoch"] in (1, 2, 3, 5, 10, 15, 20, 25, 30):
            lines.append(
                f"| {p['epoch']} | {p['r']:.2f} | {100 * p['acc_clean_all']:.1f} "
                f"| {100 * p['flipped_pred_clean']:.1f} | {100 * p['flipped_pred_noisy']:.1f} "
                f"| {100 * t['acc_clean_all']:.1f} | {100 * t['flipped_pred_clean']:.1f} "
                f"| {100 * t['flipped_pred_noisy']:.1f} |"
            )
    return lines


# ---------------------------------------------------------------------------------------------
# Report


def _stats(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


def _pm(xs: list[float]) -> str:
    m, sd = _stats(xs)
    return f"{100 * m:.2f} ± {100 * sd:.2f}"


def row_runs(
    db: dict[str, Any], group: Group, shape: str, row: Row, epochs: dict[str, int]
) -> list[dict[str, Any]]:
    return [db["runs"][j.key] for j in jobs_of(group, shape, row, epochs) if j.key in db["runs"]]


def table(db: dict[str, Any], group: Group, shape: str, epochs: dict[str, int]) -> list[str]:
    lines = [
        "| setting | seeds | test A2V | test V2A | test avg | val avg (selected) "
        "| test avg, last epoch | best epoch | s/epoch |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    any_row = False
    for row in group.rows:
        runs = row_runs(db, group, shape, row, epochs)
        if not runs:
            continue
        any_row = True

        def get(part: str, k: str, runs: list[dict[str, Any]] = runs) -> list[float]:
            return [r[part][k] for r in runs]

        best = ", ".join(str(r["best_epoch"]) for r in runs)
        spe = _stats([r["sec_per_epoch"] for r in runs])[0]
        lines.append(
            f"| {row.label} | {len(runs)} | {_pm(get('test', 'a2v'))} | {_pm(get('test', 'v2a'))} "
            f"| **{_pm(get('test', 'avg'))}** | {_pm(get('val', 'avg'))} "
            f"| {_pm(get('last_test', 'avg'))} | {best} "
            f"| {spe:.2f} |"
        )
    return lines if any_row else []


def mean_avg(
    db: dict[str, Any], group: str, shape: str, label: str, epochs: dict[str, int]
) -> float | None:
    g = next(g for g in GROUPS if g.name == group)
    row = next(r for r in g.rows if r.label == label)
    runs = row_runs(db, g, shape, row, epochs)
    return _stats([r["test"]["avg"] for r in runs])[0] if runs else None


def group_named(name: str) -> Group:
    return next(g for g in GROUPS if g.name == name)


def cell_row(group: str, shape: str, label: str) -> Row | None:
    """The row of ``group`` called ``label`` that covers ``shape``, if any."""
    return next(
        (
            r
            for r in group_named(group).rows
            if r.label == label and (r.only is None or shape in r.only)
        ),
        None,
    )


def cell_runs(
    db: dict[str, Any], group: str, shape: str, label: str, epochs: dict[str, int]
) -> list[dict[str, Any]]:
    """The recorded runs (one a seed) of one cell of a report table."""
    row = cell_row(group, shape, label)
    return row_runs(db, group_named(group), shape, row, epochs) if row is not None else []


def runs_mean(runs: list[dict[str, Any]], part: str = "test") -> float | None:
    """Mean average MAP of ``runs`` on ``part``, in points."""
    return 100 * _stats([r[part]["avg"] for r in runs])[0] if runs else None


def runs_pm(runs: list[dict[str, Any]], part: str = "test") -> str:
    """ "mean ± sd" in points, with the run count when it is not the 3 seeds."""
    if not runs:
        return "-"
    m, sd = _stats([r[part]["avg"] for r in runs])
    return f"{100 * m:.1f} ± {100 * sd:.1f}" + ("" if len(runs) == 3 else f" ({len(runs)})")


def reflow(text: str, width: int = 100) -> str:
    """Reflow each paragraph of a report's prose: the numbers filled into it make its lines
    uneven."""
    import textwrap

    paragraphs = [" ".join(p.split()) for p in text.strip().split("\n\n")]
    return "\n\n".join(textwrap.fill(p, width, break_on_hyphens=False) for p in paragraphs)


def pyplot() -> Any:
    """matplotlib's pyplot on a file backend, or None (said on stderr) when it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            "matplotlib is not installed (pip install avexplorer[bench]): no plot", file=sys.stderr
        )
        return None
    return plt
