"""Notifier: delivers an alert to people."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Alert:
    title: str
    text: str
    severity: str = "warning"
    labels: Mapping[str, str] = field(default_factory=dict)


class Notifier(Protocol):
    """Delivers an alert, or raises a :class:`~pikcha.domain.errors.PikchaError`
    once its own retries are spent. Never logs or shows a secret."""

    def send(self, alert: Alert) -> None: ...
