"""FeatureEngine: the thirty customer features for an ``as_of`` instant."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pikcha.domain.features import FeatureRow

__all__ = ["FeatureEngine", "FeatureRow"]


class FeatureEngine(Protocol):
    """Computes the feature table of FEATURES.md from the clean layer.

    Every engine returns the same rows for the same data: one per clean
    customer registered at or before ``as_of``, sorted by ``customer_id``, with
    values equal to :func:`pikcha.domain.features.compute_features`. ``as_of``
    is the shop's wall-clock time, naive.
    """

    name: str

    def compute(self, as_of: datetime) -> list[FeatureRow]: ...
