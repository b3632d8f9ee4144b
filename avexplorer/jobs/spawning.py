"""Start the app's child processes without re-running the script that opened the app.

``spawn`` makes each child re-import the parent's ``__main__`` (by path, for a script) before it
runs its target. A user script that calls ``avexplorer.show(...)`` at its top level, without an
``if __name__ == "__main__":`` guard (as docs/notebook.md's example does), would then run again in
the child and open a second window there, and the child would never serve the app. The app's
children run functions of ``avexplorer`` and ``core`` only, so they never need ``__main__``.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager

_swap = threading.Lock()  # two threads starting children at once must not interleave the swap


@contextmanager
def main_module_hidden() -> Iterator[None]:
    """While children start inside this block, they do not import the parent's ``__main__``."""
    with _swap:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main
