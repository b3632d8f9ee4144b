"""Training past memory: a psd epoch with the train split streamed from the HDF5 file.

Peak RSS and seconds per epoch as the file grows (200k, 600k and 2M pairs of 128 + 1,024 float32
features: 0.9, 2.8 and 9.2 GB), and streamed against in-memory training at the VEGAS size. Every
run is ``core.training.train`` in a fresh subprocess (its own ``ru_maxrss``), opened as the CLI's
``train`` opens a file (train features left on disk), one torch thread, under the caller's nice.

The files are made once by a generator that writes in chunks (never the whole array in memory)
into ``BENCH_STREAM_DIR`` (default: a folder in the temp dir) and reused by later runs; a size
whose file does not fit the free disk is skipped and said so. Not part of a default run (it takes
~20 minutes): ``python -m benchmarks --only streaming``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from benchmarks.common import fmt_s, row, run_worker

SECTION = "Training from disk"
ROOT = Path(__file__).resolve().parent.parent
DA, DV = 128, 1024
PAIR_BYTES = 4 * (DA + DV)
VEGAS_TRAIN = 22_482
SIZES = (200_000, 600_000, 2_000_000)


def write_pairs_file(path: Path, n_train: int, n_eval: int = 2_000, seed: int = 0) -> Path:
    """A feature file of ``n_train`` train pairs (and ``n_eval`` val and test pairs) at the
    VEGAS dimensions, 309 classes (VGGSound's count) of Gaussian clusters, written 16k rows at a
    time into a temporary name, then renamed."""
    classes, chunk = 309, 16_384
    rng = np.random.default_rng(seed)
    centres_a = rng.standard_normal((classes, DA), dtype=np.float32)
    centres_v = rng.standard_normal((classes, DV), dtype=np.float32)
    tmp = path.with_name(path.name + ".part")
    with h5py.File(tmp, "w") as f:
        for split, n in (("train", n_train), ("val", n_eval), ("test", n_eval)):
            audio = f.create_dataset(f"audio_{split}", (n, DA), np.float32)
            visual = f.create_dataset(f"visual_{split}", (n, DV), np.float32)
            labels = rng.integers(0, classes, n)
            f.create_dataset(f"lab_{split}", data=labels)
            for s in range(0, n, chunk):
                y = labels[s : s + chunk]
                noise_a = rng.standard_normal((len(y), DA), dtype=np.float32)
                noise_v = rng.standard_normal((len(y), DV), dtype=np.float32)
                audio[s : s + len(y)] = centres_a[y] + 1.5 * noise_a
                visual[s : s + len(y)] = centres_v[y] + 1.5 * noise_v
        names = np.array([f"class {c}" for c in range(classes)], dtype=object)
        f.create_dataset("class_names", data=names, dtype=h5py.string_dtype())
    tmp.replace(path)
    return path


# ---------------------------------------------------------------- worker (inside a subprocess)


def _worker(spec: dict) -> dict:
    import torch

    from core.data.dataset import load_h5
    from core.training.config import method_config
    from core.training.events import EpochEnd
    from core.training.loop import train

    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    data = load_h5(spec["data"], lazy_train=spec["lazy"])
    cfg = method_config("psd").replace(
        **{
            "optim.epochs": 1,
            "threads": 1,
            "seed": 0,
            "snapshot_every": 0,
            "data.stream_above_mb": spec.get("stream_above_mb", "auto"),
        }
    )
    epoch = None
    for event in train(cfg, data):
        if isinstance(event, EpochEnd):
            epoch = event.seconds
    audio = data.train.audio
    return {
        "epoch_seconds": epoch,
        "total_seconds": time.perf_counter() - started,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows_read": getattr(audio, "rows_read", 0),
        "load": [load, os.getloadavg()[0]],
    }


def _spawn(spec: dict) -> dict:
    return run_worker("benchmarks.streaming", spec)


# ---------------------------------------------------------------- run


def _file(folder: Path, n: int) -> Path | None:
    """The file of ``n`` train pairs, made if missing; None when it would not fit the disk."""
    path = folder / f"pairs_{n}.h5"
    if path.exists():
        return path
    need = (n + 4_000) * PAIR_BYTES * 1.05
    if shutil.disk_usage(folder).free < need + 2 * 2**30:  # keep 2 GB free for the others
        return None
    return write_pairs_file(path, n)


def _load_note(result: dict) -> str:
    a, b = result["load"]
    return f"load average {a:.1f} at start, {b:.1f} at end"


def run(quick: bool) -> list[dict]:
    folder = Path(os.environ.get("BENCH_STREAM_DIR", Path(tempfile.gettempdir()) / "avx-stream"))
    folder.mkdir(parents=True, exist_ok=True)
    sizes = (20_000,) if quick else SIZES
    rows = []
    per_n = {}
    for n in sizes:
        path = _file(folder, n)
        gb = (n + 4_000) * PAIR_BYTES / 1e9
        if path is None:
            rows.append(
                row(
                    SECTION,
                    f"psd epoch streamed, {n:,} pairs ({gb:.1f} GB)",
                    "not run",
                    notes=f"the file does not fit the free disk of {folder}",
                )
            )
            continue
        per_n[n] = r = _spawn({"data": str(path), "lazy": True, "stream_above_mb": "0"})
        rows.append(
            row(
                SECTION,
                f"psd epoch streamed from a {gb:.1f} GB file, {n:,} train pairs, 1 thread",
                fmt_s(r["epoch_seconds"]),
                f"{1000 * r['epoch_seconds'] / n:.3g} s per 1k pairs",
                "",
                r["maxrss_mb"],
                "peak RSS < 1.5 GB" if n >= 600_000 else "",
                r["maxrss_mb"] < 1536 if n >= 600_000 else None,
                f"{_load_note(r)}; whole run {fmt_s(r['total_seconds'])} (open, the "
                f"standardisation's pass, epoch, val, test); {r['rows_read']:,} audio rows read",
            )
        )
    if len(per_n) > 1:
        rss = [r["maxrss_mb"] for r in per_n.values()]
        rows.append(
            row(
                SECTION,
                f"peak RSS as the file grows, {min(per_n):,} to {max(per_n):,} pairs",
                f"{min(rss):.0f} to {max(rss):.0f} MB",
                f"{max(per_n) / min(per_n):.0f}x the pairs",
                f"{max(rss) / min(rss):.2f}x the RSS",
                max(rss),
                "flat",
                max(rss) / min(rss) < 1.25,
            )
        )
    rows += _against_memory(folder, quick)
    return rows


def _against_memory(folder: Path, quick: bool) -> list[dict]:
    """Streamed against in-memory at the VEGAS size, runs interleaved, median of each."""
    n = 5_000 if quick else VEGAS_TRAIN
    path = _file(folder, n)
    if path is None:
        return []
    reps = 1 if quick else 3
    runs: dict[str, list[dict]] = {"memory": [], "stream": []}
    for _ in range(reps):
        runs["memory"].append(_spawn({"data": str(path), "lazy": False}))
        runs["stream"].append(_spawn({"data": str(path), "lazy": True, "stream_above_mb": "0"}))
    med = {k: float(np.median([r["epoch_seconds"] for r in v])) for k, v in runs.items()}
    ratio = med["stream"] / med["memory"]
    spread = "; ".join(
        f"{k}: " + ", ".join(f"{r['epoch_seconds']:.2f}" for r in v) for k, v in runs.items()
    )
    loads = [x for v in runs.values() for r in v for x in r["load"]]
    return [
        row(
            SECTION,
            f"psd epoch at the VEGAS size ({n:,} pairs), streamed vs in memory, 1 thread "
            f"(median of {reps}, interleaved)",
            fmt_s(med["stream"]),
            f"in memory: {fmt_s(med['memory'])}",
            f"{ratio:.2f}x",
            runs["stream"][0]["maxrss_mb"],
            "streamed within 1.3x" if not quick else "",
            ratio <= 1.3 if not quick else None,
            f"epochs (s): {spread}; in-memory peak RSS {runs['memory'][0]['maxrss_mb']:.0f} MB; "
            f"load average {min(loads):.1f} to {max(loads):.1f}",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", required=True)
    args = parser.parse_args()
    print(json.dumps(_worker(json.loads(args.worker))))


if __name__ == "__main__":
    main()
