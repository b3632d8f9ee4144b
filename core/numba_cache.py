"""numba with its on-disk cache in avexplorer's cache folder: the one place that sets it up.

numba compiles a ``cache=True`` function once and stores the machine code on disk; a later
process loads it instead of compiling again. Where it stores it is read when numba is imported,
so every module that compiles with numba imports it through ``import_numba``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType


def numba_cache_dir() -> Path:
    """Where numba keeps compiled code between sessions: ``$XDG_CACHE_HOME/avexplorer/numba``
    (``~/.cache/...`` when the variable is unset), unless ``NUMBA_CACHE_DIR`` is set."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "avexplorer" / "numba"


def import_numba() -> ModuleType:
    """numba, its cache folder set to ``numba_cache_dir()`` (also when something imported numba
    before without one)."""
    folder = str(numba_cache_dir())
    os.environ.setdefault("NUMBA_CACHE_DIR", folder)
    already = "numba" in sys.modules
    import numba

    if already and not numba.config.CACHE_DIR:  # its config was read before the variable was set
        numba.config.CACHE_DIR = folder
    return numba
