"""Data: audio-visual pairs in the lineage's HDF5 layout, and the datasets avexplorer ships or
makes.

- ``dataset``: ``AVDataset`` and its ``Split``s, ``load_h5`` / ``save_h5``, stratified splits.
- ``labels``: hidden labels for a label rate, labelled copies and manifests.
- ``segments``: the time axis (per-segment features and their pooling).
- ``synthetic``: generated lineage-shaped data with web-style label noise.
- ``demo``: the built-in demo (spoken and handwritten digits); ``composites``: multi-digit clips
  whose timing is known, built from the demo's sources.
- ``arrays``: in-memory arrays as a dataset (``avexplorer.show``).

The bottom layer: may import only core's run-time helpers (``errors``, ``atomic``).
"""
