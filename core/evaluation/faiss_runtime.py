"""FAISS, imported once with a passive OpenMP wait policy for its own runtime.

FAISS ships its own OpenMP runtime next to torch's. With both spin-waiting after each parallel
region they can starve each other on a small machine (a probe on 2 busy cores saw FAISS searches
3-25x slower next to torch work; the benchmark's interleaved probe did not reproduce it, see
docs/benchmarks.md), so FAISS is imported lazily with ``OMP_WAIT_POLICY=PASSIVE`` for its runtime
only, which costs nothing measurable. Import FAISS through :func:`import_faiss` to keep that
setting. This module imports neither FAISS nor torch itself, so code that needs FAISS alone (the
app's UMAP process: ``core.exploration.projection``) does not pay for torch.
"""

from __future__ import annotations

import os
import threading
from typing import Any

_faiss: Any = None
_faiss_lock = threading.Lock()


def import_faiss() -> Any:
    """Import FAISS with a passive OpenMP wait policy for its own runtime (module docstring)."""
    global _faiss
    with _faiss_lock:
        if _faiss is None:
            before = os.environ.get("OMP_WAIT_POLICY")
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
            try:
                import faiss
            finally:
                if before is None:
                    del os.environ["OMP_WAIT_POLICY"]
                else:
                    os.environ["OMP_WAIT_POLICY"] = before
            _faiss = faiss
    return _faiss
