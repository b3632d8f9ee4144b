"""The "one default for every label rate" part of docs/results.md (issue 20): psd as a user runs
it with no flags (its auto fields set by ``core.training.auto`` from the train split) against the
paper's psd, triplet and infonce, the targets it was given, the plot (docs/label_rate.png), the
ablations and the exploration that chose the rule.

Everything is read from the "recipe*" groups of ``benchmarks.results`` (docs/results/runs.json),
so ``--render`` rebuilds it without training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.result_grid import (
    RECIPE_FRACTIONS,
    RECIPE_SHAPE_FRACTIONS,
    SHAPE_NAMES,
    Job,
    _explore_label,
    _percent,
    group_epochs,
    jobs_of,
)
from benchmarks.result_runs import (
    _stats,
    cell_row,
    cell_runs,
    group_named,
    pyplot,
    reflow,
    runs_mean,
    runs_pm,
    table,
)

COLUMNS = ("default", "paper psd", "triplet", "infonce")


def _label(column: str, f: float) -> str:
    return "infonce (uses no labels)" if column == "infonce" else f"{column}, F = {_percent(f)}"


def _settings(shape: str, f: float, epochs: dict[str, int]) -> str:
    """What the default resolved to for this data and label rate (core.training.auto's rule)."""
    row = cell_row("recipe", shape, _label("default", f))
    jobs = jobs_of(group_named("recipe"), shape, row, epochs) if row is not None else []
    if not jobs:
        return "-"
    cfg = Job.resolved(jobs[0])
    text = f"r_end {cfg.schedule.r_end:g}, w {cfg.loss.contrastive_weight:g}"
    if cfg.loss.contrastive_weight > 0:
        text += f", beta {cfg.loss.contrastive_soft:g}"
    if cfg.optim.lr_schedule != "constant":
        text += f", lr {cfg.optim.lr_schedule}"
    if cfg.optim.grad_clip > 0:
        text += f", clip {cfg.optim.grad_clip:g}"
    return text


def values(db: dict[str, Any], shape: str, f: float, epochs: dict[str, int], part: str = "test"):
    """Mean test avg MAP x 100 of each column at one label rate (None: no run)."""
    return {
        c: runs_mean(cell_runs(db, "recipe", shape, _label(c, f), epochs), part) for c in COLUMNS
    }


def summary_table(db: dict[str, Any], shape: str, epochs: dict[str, int]) -> list[str]:
    lines = [
        "| F | labelled pairs (a class) | default resolves to | default | paper psd | triplet "
        "| infonce | default − best of triplet, infonce | default − best of the three "
        "| default, last epoch | paper psd, last epoch |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    any_run = False
    for f in RECIPE_FRACTIONS:
        runs = {c: cell_runs(db, "recipe", shape, _label(c, f), epochs) for c in COLUMNS}
        if not any(runs[c] for c in COLUMNS[:3]):
            continue
        any_run = True
        v = {c: runs_mean(r) for c, r in runs.items()}
        base = [v[c] for c in ("triplet", "infonce") if v[c] is not None]
        every = [v[c] for c in ("paper psd", "triplet", "infonce") if v[c] is not None]
        d1 = "-" if v["default"] is None or not base else f"**{v['default'] - max(base):+.1f}**"
        d2 = "-" if v["default"] is None or not every else f"{v['default'] - max(every):+.1f}"
        n_lab = next((r.get("n_labelled") for c in COLUMNS[:3] for r in runs[c]), None)
        classes = _classes(shape)
        lab = "all" if n_lab is None else f"{n_lab} ({n_lab / classes:.0f})"
        lines.append(
            f"| {_percent(f)} | {lab} | {_settings(shape, f, epochs)} | {runs_pm(runs['default'])} "
            f"| {runs_pm(runs['paper psd'])} | {runs_pm(runs['triplet'])} "
            f"| {runs_pm(runs['infonce'])} "
            f"| {d1} | {d2} | {runs_pm(runs['default'], 'last_test')} "
            f"| {runs_pm(runs['paper psd'], 'last_test')} |"
        )
    return lines if any_run else []


def _classes(shape: str) -> int:
    from benchmarks.result_grid import REAL_SHAPES, synthetic_spec

    return 10 if shape in REAL_SHAPES else synthetic_spec(shape).num_classes


def targets(db: dict[str, Any], epochs: dict[str, int]) -> list[str]:
    """Issue 20's goal, checked on the 3-seed means; a target with missing runs says so."""
    shapes = group_named("recipe").shapes
    out = []

    def check(name: str, cells: list[tuple[str, float | None, float | None, float]]) -> None:
        """cells: (where, default, reference, required margin)."""
        known = [(w, d, r, m) for w, d, r, m in cells if d is not None and r is not None]
        missed = [f"{w} ({d - r:+.1f})" for w, d, r, m in known if d - r < m]
        if not known:
            out.append(f"- {name}: not run.")
            return
        verdict = "**met**" if not missed else "**not met** at " + ", ".join(missed)
        gaps = ", ".join(f"{w} {d - r:+.1f}" for w, d, r, m in known)
        partial = "" if len(known) == len(cells) else f" ({len(known)} of {len(cells)} run)"
        out.append(f"- {name}: {verdict}{partial}. Margins: {gaps}.")

    def best(v: dict[str, float | None], cols: tuple[str, ...]) -> float | None:
        xs = [v[c] for c in cols if v[c] is not None]
        return max(xs) if xs else None

    cells = []
    for shape in shapes:
        for f in RECIPE_FRACTIONS:
            v = values(db, shape, f, epochs)
            where = f"{SHAPE_NAMES[shape].split(' (')[0]} {_percent(f)}"
            cells.append((where, v["default"], best(v, ("paper psd", "triplet", "infonce")), -0.5))
    check(
        "No more than 0.5 points below the best of triplet, infonce and the paper's psd, "
        "everywhere",
        cells,
    )
    cells = []
    for f in (0.05, 0.1, 0.25):
        v = values(db, "vegas", f, epochs)
        cells.append(
            (f"VEGAS-like {_percent(f)}", v["default"], best(v, ("triplet", "infonce")), 8)
        )
    check("At least 8 points above the best of triplet and infonce at 5-25 % on VEGAS-like", cells)
    cells = []
    for f in (0.01, 0.05, 0.1):
        v = values(db, "demo", f, epochs)
        cells.append((f"demo {_percent(f)}", v["default"], v["infonce"], 0.0))
    check("At least infonce on the demo at 1-10 %", cells)
    cells = []
    for shape in shapes:
        v = values(db, shape, 1.0, epochs)
        cells.append((SHAPE_NAMES[shape].split(" (")[0], v["default"], v["triplet"], 0.0))
    check("With every label, at least triplet", cells)
    return out


def stability(db: dict[str, Any], epochs: dict[str, int]) -> str:
    """How much the last epoch loses against the selected one, default and paper psd."""
    worst: dict[str, tuple[float, str]] = {}
    for column in ("default", "paper psd"):
        for shape in group_named("recipe").shapes:
            for f in RECIPE_FRACTIONS:
                sel = values(db, shape, f, epochs)[column]
                last = values(db, shape, f, epochs, "last_test")[column]
                if sel is None or last is None:
                    continue
                where = f"{SHAPE_NAMES[shape].split(' (')[0]} {_percent(f)}"
                if column not in worst or sel - last > worst[column][0]:
                    worst[column] = (sel - last, where)
    if not worst:
        return ""
    parts = [f"{c}: {d:.1f} points ({w})" for c, (d, w) in worst.items()]
    return "Largest loss of the last epoch against the selected one, mean of 3 seeds: " + (
        "; ".join(parts) + "."
    )


def tried(db: dict[str, Any], epochs: dict[str, int]) -> str:
    """What lost, from the exploration runs (seed 0): each figure is test avg MAP x 100, the
    selected epoch and, where the point is stability, the last one."""
    r1 = (("schedule.r_end", 1.0),)

    def e(shape: str, f: float, ov: tuple[tuple[str, Any], ...], part: str = "test") -> str:
        runs = cell_runs(db, "recipe_explore", shape, _explore_label(f, ov), epochs)
        m = runs_mean(runs, part)
        return "n/a" if m is None else f"{m:.1f}"

    def both(shape: str, f: float, ov: tuple[tuple[str, Any], ...]) -> str:
        return f"{e(shape, f, ov)} / {e(shape, f, ov, 'last_test')}"

    w = "loss.contrastive_weight"
    b = "loss.contrastive_soft"
    soft1 = (*r1, (w, 1.0), (b, 1.0))
    soft03 = (*r1, (w, 0.3), (b, 1.0))
    plain = ", ".join(e("vegas", 0.05, (*r1, (w, x))) for x in (0.1, 0.3, 1.0))
    text = f"""
**What lost** (seed 0; test avg MAP x 100, "selected / last epoch" where stability is the
point; the full list is the exploration table below).
The plain contrastive term (beta 0) on VEGAS-like at 5 %: w 0.1, 0.3, 1 give {plain}, against
{e("vegas", 0.05, r1)} without it; a softer temperature (tau 0.5, w 0.3) {
        e("vegas", 0.05, (*r1, (w, 0.3), ("loss.infonce_temperature", 0.5)))
    }. Instance-level contrast pushes apart the
other clips of the anchor's class, which is most of what a 10-class batch holds. With the
teacher's class-mates as positives (beta 1) it adds instead: {e("vegas", 0.05, soft1)} at 5 %,
{e("vegas", 0.1, soft1)} at 10 %, {e("vegas", 0.25, soft1)} at 25 % (w 0.3: {
        e("vegas", 0.05, soft03)
    }, {e("vegas", 0.1, soft03)}, {e("vegas", 0.25, soft03)}). But beta 1 cost points where
the teacher is weak or the set small: AVE-like at 1 % {e("ave", 0.01, soft1)} (against
{e("ave", 0.01, r1)} without a contrastive term and {e("ave", 0.01, (*r1, (w, 1.0)))} with the
plain one), 10 % {e("ave", 0.1, soft1)} (against {e("ave", 0.1, r1)}), 25 % {
        e("ave", 0.25, soft1)
    } (against {e("ave", 0.25, r1)}); the demo at 10 % {e("demo", 0.1, soft1)}, at 25 %
{e("demo", 0.25, soft1)} (against {e("demo", 0.1, r1)} and {e("demo", 0.25, r1)}); partial
shares (beta 0.1, 0.3) sat in between. The plain term also cost points on AVE-like from 5 %
on (w 1: {e("ave", 0.05, (*r1, (w, 1.0)))} against {e("ave", 0.05, r1)} at 5 %; w 0.3
{e("ave", 0.05, (*r1, (w, 0.3)))}) and on the demo at 25 % ({e("demo", 0.25, (*r1, (w, 1.0)))}
against {e("demo", 0.25, r1)}). On the demo at 1-5 % a larger weight (w 3:
{e("demo", 0.01, (*r1, (w, 3.0)))}, {e("demo", 0.05, (*r1, (w, 3.0)))}) or a cosine learning
rate did not close the last gap to infonce; turning l_soft off there (lambda_soft 0, the teacher
is mostly wrong) gave {e("demo", 0.01, (*r1, (w, 1.0), ("loss.lambda_soft", 0.0)))} and
{e("demo", 0.05, (*r1, (w, 1.0), ("loss.lambda_soft", 0.0)))} against {
        e("demo", 0.01, (*r1, (w, 1.0)))
    } and {e("demo", 0.05, (*r1, (w, 1.0)))}, within the seed spread on one seed,
so it is not part of the rule.

**Late decay: nothing tried stopped it.** On VEGAS-like at 25 % (w 0.3, beta 1; selected / last):
as is {both("vegas", 0.25, soft03)}, cosine learning rate {
        both("vegas", 0.25, (*soft03, ("optim.lr_schedule", "cosine")))
    }, cosine and clipping at norm 1 {
        both("vegas", 0.25, (*soft03, ("optim.lr_schedule", "cosine"), ("optim.grad_clip", 1.0)))
    }, learning rate 3e-4
{both("vegas", 0.25, (*soft03, ("optim.lr", 0.0003)))}, r_end 0.3 {
        both("vegas", 0.25, (("schedule.r_end", 0.3), (w, 0.3), (b, 1.0)))
    }, r_end 0.1 {
        both("vegas", 0.25, (("schedule.r_end", 0.1), (w, 0.3), (b, 1.0)))
    }, teacher momentum 0.999 {
        both("vegas", 0.25, (*soft03, ("loss.teacher_momentum", 0.999)))
    }; w 1 {both("vegas", 0.25, soft1)}. On AVE-like
with every label (the paper's psd, which peaks at epoch 2-3 of 30): as is {both("ave", 1.0, ())},
cosine {both("ave", 1.0, (("optim.lr_schedule", "cosine"),))}, learning rate 3e-4 with cosine
{both("ave", 1.0, (("optim.lr", 0.0003), ("optim.lr_schedule", "cosine")))}, weight decay 1e-3
{both("ave", 1.0, (("optim.weight_decay", 0.001),))}, clipping at 0.1 {
        both("ave", 1.0, (("optim.grad_clip", 0.1),))
    }, teacher momentum 0.999 {
        both("ave", 1.0, (("loss.teacher_momentum", 0.999),))
    }. The decay is the student memorising the 25 % wrong train
labels once it has learnt the rest (triplet decays the same way, and with 5 % label noise far
less); a schedule or a clip changes how fast it gets there, not where it goes. So the default
keeps a constant learning rate and no clipping, and model selection on val (which every run
does, `model.pt`) remains what protects a user: keep `model.pt`, not `last.pt`.
"""
    return reflow(text)


def plot(db: dict[str, Any], epochs: dict[str, int], path: Path) -> bool:
    """Test avg MAP against F, one panel per data set; False when matplotlib is missing."""
    plt = pyplot()
    if plt is None:
        return False
    shapes = [
        s
        for s in group_named("recipe").shapes
        if any(values(db, s, f, epochs)["default"] is not None for f in RECIPE_FRACTIONS)
    ]
    if not shapes:
        return False
    fig, axes = plt.subplots(1, len(shapes), figsize=(3.6 * len(shapes), 3.6), squeeze=False)
    styles = {
        "default": ("tab:red", "o", "-"),
        "paper psd": ("tab:orange", "^", ":"),
        "triplet": ("tab:blue", "s", "-"),
    }
    for ax, shape in zip(axes[0], shapes, strict=True):
        for column in COLUMNS:
            xs, ms, sds = [], [], []
            for f in RECIPE_FRACTIONS:
                runs = cell_runs(db, "recipe", shape, _label(column, f), epochs)
                if runs:
                    m, sd = _stats([r["test"]["avg"] for r in runs])
                    xs.append(100 * f)
                    ms.append(100 * m)
                    sds.append(100 * sd)
            if not xs:
                continue
            if column == "infonce":  # one run set for every F: a flat reference line
                ax.axhline(ms[0], color="tab:gray", linestyle="--", label="infonce (no labels)")
                continue
            color, marker, line = styles[column]
            ax.errorbar(
                xs, ms, yerr=sds, color=color, marker=marker, ls=line, capsize=3, label=column
            )
        ax.set_xscale("log")
        ax.set_xticks([100 * f for f in RECIPE_FRACTIONS])
        ax.set_xticklabels([f"{100 * f:g}" for f in RECIPE_FRACTIONS])
        ax.set_xlabel("labelled train pairs F (%)")
        ax.set_title(SHAPE_NAMES[shape].split(" (")[0], fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test avg MAP x 100 (mean ± std, 3 seeds)")
    axes[0][0].legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return True


def section(db: dict[str, Any], epochs: dict[str, int], plot_path: Path | None) -> list[str]:
    """The report's issue-20 part; the plot is drawn to ``plot_path`` unless it is None."""
    group = group_named("recipe")
    out = ["## One default for every label rate", "", SETUP.strip(), ""]
    for shape, fs in RECIPE_SHAPE_FRACTIONS.items():
        out += [
            "The grid had to fit a shared 2-core machine in an afternoon: "
            f"{SHAPE_NAMES[shape]} was run at {' and '.join(_percent(f) for f in fs)} labels "
            "only, for "
            f"{group_epochs(group, shape, epochs)} epochs, and what did not finish in time is "
            "missing or has fewer seeds (the count in brackets).",
            "",
        ]
    for shape in group.shapes:
        lines = summary_table(db, shape, epochs)
        if lines:
            n = group_epochs(group, shape, epochs)
            out += [f"**{SHAPE_NAMES[shape]}** ({n} epochs)", "", *lines, ""]
    if plot_path is not None and plot(db, epochs, plot_path):
        out += [f"![test avg MAP against F]({plot_path.name})", ""]
    out += ["**The targets** (issue 20; 3-seed means of test avg MAP x 100):", ""]
    out += [*targets(db, epochs), ""]
    text = stability(db, epochs)
    if text:
        out += [text, ""]
    out += [FINDINGS.strip(), "", tried(db, epochs), ""]
    for name in ("recipe_ablation", "recipe_explore"):
        g = group_named(name)
        blocks = []
        for shape in g.shapes:
            lines = table(db, g, shape, epochs)
            if lines:
                n = group_epochs(g, shape, epochs)
                blocks += [f"**{SHAPE_NAMES[shape]}** ({n} epochs)", "", *lines, ""]
        if blocks:
            out += [f"### {g.title}", "", INTROS[name].strip(), "", *blocks]
    for shape in group.shapes:
        lines = table(db, group, shape, epochs)
        if lines:
            n = group_epochs(group, shape, epochs)
            out += [
                f"### All runs of the default's grid: {SHAPE_NAMES[shape]} ({n} epochs)",
                "",
                *lines,
                "",
            ]
    return out


SETUP = """
psd as a user runs it with no flags: its "auto" fields (`schedule.r_end`, `loss.contrastive_weight`
w, `loss.contrastive_soft` beta, `optim.lr_schedule`, `optim.grad_clip`) are set when the run starts
from the train split (`core.training.auto.auto_settings`; the rule is in docs/method.md), and the
"default resolves to" column says what they became. "paper psd" is `--recipe paper`: METHOD.md's psd
(r_end 0.3, no contrastive term). triplet trains on the labelled pairs only; infonce uses no label,
so one set of runs stands for every F. Current defaults otherwise (semi-hard mining, standardised
inputs; the demo with batch 64). Data seed 0; training seeds 0, 1, 2, which share one labelled
subset (label seed 0), so "±" spans initialisation, batches and dropout. The generated sets are
shown with the generator's 25 % train label noise and again with 5 % (the same features, fewer
flipped labels); val and test labels are clean. Every method gets the same optimiser steps (an epoch
is a pass over all train pairs, whatever F) and the same model selection on val; "last epoch" is the
final model on test, so a run that peaks and decays shows. A run count in brackets means fewer than
3 seeds finished in the time the grid had.
"""

FINDINGS = """
**What the rule is, and why.** See docs/method.md ("Settings set from the data") for the rule and
the tables below for the evidence. In short: with very few labels a class, the teacher is mostly
wrong and the pairs themselves are the best signal, so the default adds the plain cross-modal
InfoNCE over every pair; with many labels a class, the teacher is right about most unlabelled
pairs, and the contrastive term whose positives are the clips the labels or the teacher put in
the anchor's class (beta = 1) adds to psd; in between, and with every label on small sets, any
contrastive term cost points, so it is off.
"""

INTROS = {
    "recipe_ablation": """
The default with one of its settings changed by a flag (3 seeds). "without the contrastive term"
is `--contrastive-weight 0`: where the rule sets w = 0 anyway the row is the default itself.
""",
    "recipe_explore": """
The seed-0 runs that chose the rule, before the grid (label rate F, then what differs from psd
with `r_end 1` and no contrastive term: w the contrastive weight, beta its soft share, EMA the
teacher momentum, lr a learning rate or its schedule, clip the gradient norm, tau the InfoNCE
temperature). A setting counts as a win only by more than the grid's seed spread (about a point).
""",
}
