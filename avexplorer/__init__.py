"""avexplorer: the Qt app and the command-line interface on top of ``core``.

``avexplorer.show(...)`` opens the app from a notebook or a script (``avexplorer/notebook.py``);
Qt and torch load only when it is called, so ``import avexplorer`` stays cheap.
"""

from typing import Any

__version__ = "0.1.0"


def show(*args: Any, **kwargs: Any) -> Any:
    """Open the app on arrays or a run folder; see ``avexplorer.notebook.show``."""
    from avexplorer.notebook import show as _show

    return _show(*args, **kwargs)
