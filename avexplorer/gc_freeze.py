"""Keep Python's cyclic garbage collector from pausing the window.

A full (generation 2) collection walks every object the collector tracks: about 280k in the app
once Qt, pyqtgraph and a dataset are loaded, which took up to 136 ms on 2 cores while a run
trained (docs/benchmarks_gui.md). ``gc.freeze()`` moves the objects alive now into a permanent
generation that collections skip, so later full collections walk only what was made since (about
half as many objects; up to 76 ms in the same probe). Objects frozen here are still freed by
reference counting; only cycles among them stay, which is why it runs only when a dataset is
opened (the first just after start-up), not all the time.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Collect once, then exempt every object alive now from later collections."""
    gc.collect()
    gc.freeze()
