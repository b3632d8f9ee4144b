"""Losses with one job each; distances and miners are passed in (pytorch-metric-learning style)."""

from core.training.losses.distances import cosine_distance
from core.training.losses.infonce import InfoNCE
from core.training.losses.labels import LabelLoss
from core.training.losses.miners import MINERS, batch_hard, semi_hard
from core.training.losses.pair_distance import PairDistance
from core.training.losses.soft_triplet import SoftCrossModalTriplet
from core.training.losses.triplet import CrossModalTriplet

__all__ = [
    "MINERS",
    "CrossModalTriplet",
    "InfoNCE",
    "LabelLoss",
    "PairDistance",
    "SoftCrossModalTriplet",
    "batch_hard",
    "cosine_distance",
    "semi_hard",
]
