"""Run the benchmarks and write docs/benchmarks.md.

    python -m benchmarks                 # everything (< ~10 min on 2 quiet cores), writes the doc
    python -m benchmarks --quick         # CI smoke run (< 1 min); prints, writes only with --out
    python -m benchmarks --only retrieval,evaluation   # reruns those, keeps the others' rows
    python -m benchmarks --only streaming   # training from disk at 200k-2M pairs (~13 GB, ~20 min)
    BENCH_HNSW_1M=1 python -m benchmarks     # also build HNSW over 1M items (~11 min on 2 cores)

Each section runs in its own subprocess, so that peak memory and thread pools do not leak from
one section into the next. A section is a module with ``run(quick: bool) -> list[dict]`` (rows as
built by ``benchmarks.common.row``); ``benchmarks/gui_*.py`` modules are picked up too (full runs
only, or by name with ``--only``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ["evaluation", "retrieval", "training", "projection", "extraction"]
# Run only when named (--only): they write gigabytes and take tens of minutes.
BY_NAME = ["streaming"]
DOC = ROOT / "docs" / "benchmarks.md"
ROWS = ROOT / "docs" / "results" / "benchmarks.json"  # the rows behind DOC, for --only merges


def all_sections() -> list[str]:
    gui = sorted(p.stem for p in (ROOT / "benchmarks").glob("gui_*.py"))
    return SECTIONS + gui + BY_NAME


def run_section(name: str, quick: bool) -> list[dict]:
    import importlib

    module = importlib.import_module(f"benchmarks.{name}")
    rows = module.run(quick)
    for r in rows:  # other modules' rows may name things differently
        r["module"] = name
        r.setdefault("section", "GUI" if name.startswith("gui_") else name.title())
        r.setdefault("case", r.get("figure", ""))
        if isinstance(r.get("ratio"), float):  # NaN: no alternative to compare with (0 / 0)
            r["ratio"] = f"{r['ratio']:.3g}x" if r["ratio"] == r["ratio"] else "n/a"
    return rows


def _child(name: str, quick: bool) -> tuple[list[dict], float, str]:
    cmd = [sys.executable, "-m", "benchmarks", "--section", name] + (["--quick"] if quick else [])
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return [], seconds, tail[0]
    return json.loads(out.stdout.strip().splitlines()[-1]), seconds, ""


def _cell(x: object) -> str:
    if x is None:
        return ""
    if isinstance(x, bool):
        return "yes" if x else "**no**"
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, list | tuple):  # one verdict per target, in the target's order
        return " / ".join(_cell(v) for v in x)
    return str(x).replace("|", "\\|")


def render(rows: list[dict], info: dict, timings: dict, errors: dict, quick: bool) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m benchmarks`" + (" --quick" if quick else "") + "; do not edit by "
        "hand. Each row: the figure, the alternative measured in the same run, their ratio, the "
        "peak memory (MB; what each row's note says it covers), and the target where the issue "
        "set one. See docs/scaling.md for what the figures mean at larger scales.",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        "",
        "The machine is shared with other jobs: absolute times are noisy (compare the ratios, "
        "which are measured within one run).",
        "",
    ]
    sections: dict[str, list[dict]] = {}
    for r in rows:
        sections.setdefault(r.get("section", "Other"), []).append(r)
    for section, items in sections.items():
        lines += [
            f"## {section}",
            "",
            "| case | figure | alternative (same run) | ratio | peak MB | target | met | notes |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in items:
            cells = [r.get(k) for k in ("case", "value", "alternative", "ratio", "peak_mb")]
            cells += [r.get("target"), r.get("met"), r.get("notes")]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    lines += ["## Run", ""]
    lines += [f"- {name}: {seconds:.0f} s" for name, seconds in timings.items()]
    lines += [f"- {name} FAILED: {err}" for name, err in errors.items()]
    lines.append("")
    return "\n".join(lines)


def _merge(
    before: dict, names: list[str], rows: list[dict], timings: dict, errors: dict
) -> tuple[list[dict], dict, dict]:
    """The last written run with the sections in ``names`` replaced by this run's, in the order
    of ``all_sections()``."""
    kept = [r for r in before["rows"] if r.get("module") not in names]
    merged = sorted(kept + rows, key=lambda r: _order(r.get("module", "")))
    times = {k: v for k, v in before["timings"].items() if k not in names} | timings
    errs = {k: v for k, v in before.get("errors", {}).items() if k not in names} | errors
    return merged, dict(sorted(times.items(), key=lambda kv: _order(kv[0]))), errs


def _order(name: str) -> int:
    order = all_sections()
    return order.index(name) if name in order else len(order)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="CI smoke run, < 1 minute")
    parser.add_argument("--only", help="comma-separated sections: " + ", ".join(all_sections()))
    parser.add_argument(
        "--out",
        help="markdown file to write (default: docs/benchmarks.md, or nothing with --quick)",
    )
    parser.add_argument("--section", help=argparse.SUPPRESS)  # child mode: print JSON rows
    args = parser.parse_args(argv)

    if args.section:
        print(json.dumps(run_section(args.section, args.quick)))
        return 0

    from benchmarks.common import machine

    # The GUI benchmark trains for 2 x 10 s even when quick: left out of --quick unless named.
    default = SECTIONS if args.quick else [s for s in all_sections() if s not in BY_NAME]
    names = args.only.split(",") if args.only else default
    unknown = sorted(set(names) - set(all_sections()))
    if unknown:
        parser.error(f"unknown section {unknown[0]!r}; choose from {', '.join(all_sections())}")
    info = machine()
    rows, timings, errors = [], {}, {}
    for name in names:
        print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
        got, seconds, err = _child(name, args.quick)
        rows += got
        timings[name] = seconds
        if err:
            errors[name] = err
            print(f"[benchmarks] {name} failed: {err}", file=sys.stderr, flush=True)
    writes_doc = not args.quick and not args.out
    if writes_doc and args.only and ROWS.exists():
        earlier = json.loads(ROWS.read_text())
        rows, timings, errors = _merge(earlier, names, rows, timings, errors)
        load = info.get("load average (1 min) at start", "?")
        # One line per section rerun, replacing that section's earlier line.
        info = {k: v for k, v in earlier["info"].items() if k != "rerun later"}
        info |= {f"rerun later: {name}": f"load average {load}" for name in names}
    if writes_doc:
        ROWS.parent.mkdir(parents=True, exist_ok=True)
        state = {"info": info, "rows": rows, "timings": timings, "errors": errors}
        ROWS.write_text(json.dumps(state, indent=1) + "\n")
    text = render(rows, info, timings, errors, args.quick)
    out = args.out or (None if args.quick else str(DOC))
    if out:
        Path(out).write_text(text)
        print(f"[benchmarks] wrote {out}", file=sys.stderr)
    else:
        print(text)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
