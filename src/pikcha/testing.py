"""A test harness for code built on Pikcha: every port in memory, no service.

``memory_pipeline()`` returns a :class:`~pikcha.application.pipeline.Pipeline`
on the in-memory adapters and the reference feature engine; its adapters keep
state a test can look at (``pipeline.notifier.sent``, the event log's streams,
the objects written). Time and ids can be fixed for repeatable tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pikcha.adapters.memory import (
    InMemoryCrmStore,
    InMemoryEventLog,
    InMemoryNotifier,
    InMemoryObjectStore,
)
from pikcha.adapters.memory_warehouse import InMemoryWarehouse
from pikcha.adapters.reference_features import ReferenceFeatureEngine
from pikcha.application.pipeline import Pipeline
from pikcha.domain.masking import Masker

__all__ = ["fixed_clock", "memory_pipeline", "sequential_ids"]

TEST_KEY = b"pikcha-test-key-not-secret-0000"


def fixed_clock(moment: datetime) -> Callable[[], datetime]:
    """A clock that always says ``moment`` (made timezone-aware as UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    return lambda: aware


def sequential_ids(prefix: str = "evt-") -> Callable[[], str]:
    """Ids ``evt-000001``, ``evt-000002``, … in call order."""
    counter = itertools.count(1)

    return lambda: f"{prefix}{next(counter):06d}"


def memory_pipeline(**overrides: Any) -> Pipeline:
    """A pipeline on in-memory adapters; keyword arguments replace any field."""
    warehouse = overrides.pop("warehouse", None) or InMemoryWarehouse()
    parts: dict[str, Any] = {
        "event_log": InMemoryEventLog(),
        "warehouse": warehouse,
        "crm": InMemoryCrmStore(),
        "objects": InMemoryObjectStore(),
        "features": ReferenceFeatureEngine(warehouse),
        "notifier": InMemoryNotifier(),
        "masker": Masker(TEST_KEY, "test"),
    }
    parts.update(overrides)

    return Pipeline(**parts)
