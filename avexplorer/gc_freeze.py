"""Keep Python's cyclic garbage collector from pausing the window.

A full (generation 2) collection walks every object the collector tracks: hundreds of thousands
in the app once Qt, pyqtgraph and a dataset are loaded, a pause of a visible fraction of a second
on a small machine while a run trains (docs/benchmarks_gui.md has the figures). ``gc.freeze()``
moves the objects alive now into a permanent generation that collections skip, so later full
collections walk only what was made since. Objects frozen here are still freed by
reference counting; only cycles among them stay, which is why it runs only when a dataset is
opened (the first just after start-up), not all the time.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Collect once, then exempt every object alive now from later collections."""
    gc.collect()
    gc.freeze()
