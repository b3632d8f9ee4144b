"""Retrieval scores as plain data (no torch), so that front ends can import them cheaply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MapScores:
    """The lineage's MAP per direction and averaged, with the cheap true-partner numbers.

    ``recall_at_1`` and ``median_rank`` ({"a2v": ..., "v2a": ...}) are None in histories written
    before they were computed.
    """

    a2v: float
    v2a: float
    avg: float
    n: int  # queries scored per direction (audio queries; visual queries are the same pairs)
    recall_at_1: dict[str, float] | None = None  # share of queries whose partner ranks first
    median_rank: dict[str, float] | None = None  # of the partner; 1 is best
    # The split's pairs when the queries were a seeded sample of them (each against the whole
    # gallery; core.evaluation.metrics.cross_modal_map); None when every pair was a query.
    sampled_from: int | None = None

    @property
    def recall_at_1_avg(self) -> float:
        """Recall@1 averaged over both directions; NaN when not computed."""
        return _mean(self.recall_at_1)

    @property
    def median_rank_avg(self) -> float:
        """The median partner rank averaged over both directions; NaN when not computed."""
        return _mean(self.median_rank)

    def as_dict(self, ranks: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"a2v": self.a2v, "v2a": self.v2a, "avg": self.avg, "n": self.n}
        if ranks and self.recall_at_1 is not None:
            out["recall_at_1"] = dict(self.recall_at_1)
        if ranks and self.median_rank is not None:
            out["median_rank"] = dict(self.median_rank)
        if self.sampled_from is not None:
            out["sampled_from"] = self.sampled_from
        return out

    def sample_note(self) -> str:
        """What the queries were, for a line of output: empty when every pair was one."""
        if self.sampled_from is None:
            return ""
        return f"a seeded sample of {self.n:,} of {self.sampled_from:,} queries, full gallery"


def _mean(by_direction: dict[str, float] | None) -> float:
    if not by_direction:
        return float("nan")
    return sum(by_direction.values()) / len(by_direction)
