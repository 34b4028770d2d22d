"""The feature table computed in Python by the reference implementation."""

from __future__ import annotations

from datetime import datetime

from pikcha.domain.entities import Entity
from pikcha.domain.features import FeatureRow, compute_features
from pikcha.ports.warehouse import Warehouse


class ReferenceFeatureEngine:
    """Reads the warehouse's clean layer and runs :func:`compute_features`.

    Every clean row passes through Python memory, so this engine suits tests
    and small data sets; the others are measured against it.
    """

    name = "reference"

    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse

    def compute(self, as_of: datetime) -> list[FeatureRow]:
        return compute_features(
            self._warehouse.clean_rows(Entity.CUSTOMER),
            self._warehouse.clean_rows(Entity.PURCHASE),
            self._warehouse.clean_rows(Entity.PRODUCT),
            as_of,
        )
