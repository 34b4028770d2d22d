"""structlog set-up: a console renderer on a terminal, JSON lines otherwise.

A processor redacts secrets before anything is rendered: values under keys
that name a secret, and any occurrence of a registered secret value.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

SECRET_WORDS = ("token", "password", "secret", "mask_key", "api_key", "authorization")
REDACTED = "***"


class Redactor:
    """Replaces secret values in an event dict, wherever they appear."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = [secret for secret in secrets if secret]

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            if any(word in key.lower() for word in SECRET_WORDS):
                event[key] = REDACTED
            else:
                event[key] = self._scrub(value)

        return event

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {key: self._scrub(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._scrub(item) for item in value]

        return value


def configure_logging(
    secrets: Iterable[str] = (), level: str = "INFO", json: bool | None = None
) -> None:
    """Configure structlog for the process; ``json`` defaults to "not a terminal"."""
    as_json = not sys.stderr.isatty() if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            Redactor(secrets),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
