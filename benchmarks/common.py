"""Shared helpers: timing, peak memory, machine description, result rows, synthetic embeddings."""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def row(
    section: str,
    case: str,
    value: str,
    alternative: str = "",
    ratio: str = "",
    peak_mb: float | None = None,
    target: str = "",
    met: bool | None = None,
    notes: str = "",
) -> dict:
    """One result row (the schema every benchmark's ``run(quick)`` returns; see __init__.py)."""
    return {
        "section": section,
        "case": case,
        "value": value,
        "alternative": alternative,
        "ratio": ratio,
        "peak_mb": None if peak_mb is None else round(peak_mb, 1),
        "target": target,
        "met": met,
        "notes": notes,
    }


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class Peak:
    """Peak resident memory while a block ran: absolute (``mb``) and above the start."""

    mb: float = float("nan")
    delta_mb: float = float("nan")


@contextmanager
def peak_memory() -> Iterator[Peak]:
    """Measure the process's peak RSS inside the block (Linux: resets VmHWM via clear_refs;
    elsewhere falls back to ru_maxrss, which is the peak since the process started)."""
    gc.collect()
    result = Peak()
    reset = False
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        pass
    start = _status_kb("VmRSS") or 0
    try:
        yield result
    finally:
        hwm = _status_kb("VmHWM") if reset else None
        if hwm is None:
            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result.mb = hwm / 1024
        result.delta_mb = (hwm - start) / 1024


def timeit(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> np.ndarray:
    """Wall-clock seconds of ``repeat`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = np.empty(repeat)
    for i in range(repeat):
        t = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t
    return out


def fmt_s(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def fmt_ratio(slow: float, fast: float) -> str:
    return f"{slow / fast:.3g}x" if fast > 0 else "n/a"


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import torch

    info = {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    try:
        import faiss

        info["faiss"] = faiss.__version__
    except ImportError:
        pass
    with suppress(OSError):
        info["load average (1 min) at start"] = f"{os.getloadavg()[0]:.2f}"
    return info


def embedding_like(
    n: int,
    d: int = 128,
    seed: int = 0,
    latent: int = 16,
    clusters: int = 100,
    chunk: int = 200_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors shaped like learned embeddings: a 16-d latent mixture of ``clusters``
    Gaussians, linearly mapped to ``d`` dims plus isotropic noise. Returns (x [n, d] float32,
    cluster labels [n]). The same seed gives the same arrays; the cluster geometry is shared
    across seeds so that queries (one seed) and galleries (another) come from one distribution."""
    geometry = np.random.default_rng(1234)
    centres = (2.0 * geometry.standard_normal((clusters, latent))).astype(np.float32)
    proj = geometry.standard_normal((latent, d)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = np.empty((n, d), dtype=np.float32)
    labels = rng.integers(0, clusters, n)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        z = centres[labels[s:e]] + rng.standard_normal((e - s, latent), dtype=np.float32)
        block = z @ proj + 0.3 * rng.standard_normal((e - s, d), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        x[s:e] = block
    return x, labels


def isotropic_clusters(
    n: int, d: int = 128, seed: int = 0, clusters: int = 1000, spread: float = 0.6
) -> np.ndarray:
    """A hard case for approximate search: clusters with full-dimensional isotropic noise, so
    that within a cluster every item is nearly as far as every other (no low-dimensional
    structure for IVF or HNSW to exploit)."""
    geometry = np.random.default_rng(4321)
    centres = geometry.standard_normal((clusters, d)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, clusters, n)]
    x += (spread / np.sqrt(d)) * rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def fresh_python(
    code: str,
    *args: str,
    cwd: Path | str = ROOT,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> Any:
    """Run ``code`` in a new Python process (a cold start: imports, caches and OpenMP runtimes
    load anew) and return the JSON value its last line of output prints."""
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_worker(module: str, spec: dict) -> dict:
    """Run ``python -m MODULE --worker SPEC`` in a fresh process (its peak RSS and thread
    settings its own) and return the JSON of its last line of output."""
    out = subprocess.run(
        [sys.executable, "-m", module, "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{module} worker failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
