"""avexplorer's core library: audio-visual embedding learning without any GUI dependency.

The folders are the layers, each allowed to import only those below it (pyproject.toml's
import-linter contracts hold them):

    diagnostics                  what this installation can do (encoders, stack, device)
    exploration                  projection, selection, locate
    training   features          the method and its loop | decoding, encoders, extraction
    evaluation data              metrics and search      | the HDF5 layout and datasets
    errors atomic device rundir numba_cache   run-time helpers, used by every layer

Nothing in core imports Qt or the app.
"""
