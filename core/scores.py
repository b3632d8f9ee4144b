"""Retrieval scores as plain data (no torch), so that front ends can import them cheaply."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MapScores:
    a2v: float
    v2a: float
    avg: float
    n: int  # queries scored per direction (audio queries; visual queries are the same pairs)

    def as_dict(self) -> dict[str, float]:
        return {"a2v": self.a2v, "v2a": self.v2a, "avg": self.avg, "n": self.n}
