"""Running a torch encoder on the CPU through ONNX Runtime, exported once into the user's cache.

EfficientNet-Lite0 costs about a third less per frame in ONNX Runtime than in eager torch on
one thread (convolution, bias and ReLU6 fused into one pass; docs/features.md, "Speed"), and
unlike torch's fast path it needs no batch of 16 frames, so activations stay small. The model
is exported from the torch module the encoder built (the same weights, with its batch norms
already folded) into ``$XDG_CACHE_HOME/avexplorer/models``, under a name that carries what the
graph depends on; a damaged or missing file is exported again. Without onnxruntime or onnx, or
when the export fails, ``cpu_session`` returns None and the encoder stays on torch: the same
features to float rounding, only slower.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path
from typing import Any


def model_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/avexplorer/models`` (``~/.cache/...`` when the variable is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "avexplorer" / "models"


def cpu_session(module: Any, example: Any, name: str, threads: int) -> Any | None:
    """An ONNX Runtime session running ``module`` (called on ``example``, whose first axis is
    the batch) with ``threads`` threads, or None when ONNX Runtime cannot be used here."""
    try:
        import onnxruntime
    except ImportError:
        return None
    import torch

    path = model_cache_dir() / f"{name}-torch{torch.__version__}.onnx"
    for attempt in range(2):
        if not path.is_file() or attempt:
            try:
                _export(module, example, path)
            except Exception as e:  # no onnx package, an unwritable cache, an unexportable op
                warnings.warn(f"encoding on torch, not ONNX Runtime: {e}", stacklevel=2)
                return None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads would spin against the other encoder's thread.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception:  # a damaged file (cut short by a crash, or by hand): export it again
            continue
    return None


def _export(module: Any, example: Any, path: Path) -> None:
    import torch

    from core.atomic import atomic_path

    with (
        atomic_path(path) as tmp,
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        torch.no_grad(),
    ):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(tmp),
            dynamo=False,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            opset_version=17,
        )
