"""Sorting each row of a small matrix, the step that dominates the sort-based losses on a CPU.

torch's CPU argsort costs 40-50 ns per element on rows of 128-256 (one thread), numpy's 13-25
(docs/benchmarks.md, "argsort of each row"), so CPU tensors are ordered by numpy and the indices
come back as a tensor; gradients then flow through ``gather``.
"""

from __future__ import annotations

import numpy as np
import torch


def argsort_rows(x: torch.Tensor) -> torch.Tensor:
    """Indices that sort each row of a 2-d tensor ascending. Equal values come in no set order."""
    if x.device.type != "cpu":
        return torch.argsort(x, dim=1)
    return torch.from_numpy(np.argsort(x.detach().numpy(), axis=1)).to(torch.int64)
