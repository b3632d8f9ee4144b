"""The progressive annotated ratio r_t, precomputed per epoch (DINO-style arrays)."""

from __future__ import annotations

import math

import numpy as np

from core.training.config import OptimConfig, ScheduleConfig


def ratio_schedule(cfg: ScheduleConfig, epochs: int) -> np.ndarray:
    """r for each epoch 0..epochs-1, going from r_start (first epoch) to r_end (last epoch).

    linear: evenly spaced; cosine: slow start and end (half cosine); step: ``cfg.steps``
    equal-length plateaus whose values are evenly spaced from r_start to r_end.
    """
    if epochs < 1:
        raise ValueError("epochs must be at least 1")
    for name in ("r_start", "r_end"):
        v = getattr(cfg, name)
        if isinstance(v, str):
            raise ValueError(
                f"schedule.{name} is {v!r}: resolve the config first (core.training.auto)"
            )
        if not 0.0 < v <= 1.0:
            raise ValueError(f"schedule.{name} must be in (0, 1], got {v}")
    progress = np.arange(epochs) / max(epochs - 1, 1)  # 0 at the first epoch, 1 at the last
    if cfg.shape == "linear":
        shaped = progress
    elif cfg.shape == "cosine":
        shaped = 0.5 * (1.0 - np.cos(math.pi * progress))
    elif cfg.shape == "step":
        if cfg.steps < 1:
            raise ValueError("schedule.steps must be at least 1")
        plateau = np.minimum((np.arange(epochs) * cfg.steps) // epochs, cfg.steps - 1)
        shaped = plateau / max(cfg.steps - 1, 1)
    else:
        raise ValueError(f"unknown schedule shape {cfg.shape!r}; choose linear, cosine or step")
    return cfg.r_start + (cfg.r_end - cfg.r_start) * shaped


def soft_weight(lambda_soft: float, r: float) -> float:
    """lambda_soft(t): the configured constant, or 1 - r_t when the config says "auto" (< 0)."""
    return 1.0 - r if lambda_soft < 0 else lambda_soft


def learning_rate(cfg: OptimConfig, step: int, total_steps: int) -> float:
    """The learning rate of optimiser step ``step`` (0-based) of ``total_steps``: constant, or a
    half cosine from ``lr`` at the first step towards 0 after the last. A pure function of the
    step, so a resumed run needs no scheduler state."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    raise ValueError(f"unknown lr_schedule {cfg.lr_schedule!r}; choose constant or cosine")
