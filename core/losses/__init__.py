"""Losses with one job each; distances and miners are passed in (pytorch-metric-learning style)."""

from core.losses.distances import cosine_distance
from core.losses.infonce import InfoNCE
from core.losses.labels import LabelLoss
from core.losses.miners import MINERS, batch_hard, semi_hard
from core.losses.pair_distance import PairDistance
from core.losses.soft_triplet import SoftCrossModalTriplet
from core.losses.triplet import CrossModalTriplet

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
