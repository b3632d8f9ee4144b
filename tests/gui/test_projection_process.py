"""The app's UMAP process: warmed up in the background, then making layouts."""

from __future__ import annotations

import numpy as np
import pytest


def _blobs(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 16)) * 4
    return (centres[rng.integers(0, 3, n)] + rng.normal(size=(n, 16))).astype(np.float32)


@pytest.mark.slow
def test_the_app_projection_process_warms_up_then_makes_layouts():
    from avexplorer.jobs.projection import ProjectionProcess

    process = ProjectionProcess()
    try:
        process.warm_up()
        process.warm_up()  # once per session
        a, v = _blobs(40, 0), _blobs(40, 5)
        layout = process.layout(0, a, v, "umap", None)
        assert layout.coords.shape == (80, 2) and np.isfinite(layout.coords).all()
    finally:
        process.close()
