"""avexplorer: the Qt app and the command-line interface on top of ``core``."""

__version__ = "0.1.0"
