"""Waiting out transient failures: doubling pauses, bounded in total."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import structlog

from pikcha.domain.errors import InfrastructureError

T = TypeVar("T")


def retry_transient(
    action: Callable[[], T],
    *,
    backoff: float,
    max_backoff: float,
    max_wait: float,
    sleep: Callable[[float], None],
    logger: structlog.typing.FilteringBoundLogger,
    event: str,
    give_up: Callable[[InfrastructureError, float], InfrastructureError] | None = None,
) -> T:
    """The result of ``action``, tried again after each transient failure.

    The first pause is ``backoff`` seconds, doubling up to ``max_backoff``;
    each is logged as ``event``. Once the pauses add up to ``max_wait`` the
    last error is raised, or what ``give_up(error, seconds waited)`` makes of
    it. A failure that is not transient is raised at once.
    """
    delay = backoff
    waited = 0.0
    attempt = 1
    while True:
        try:
            return action()
        except InfrastructureError as exc:
            patience = max_wait - waited
            if not exc.transient:
                raise
            if patience <= 0:
                if give_up is None:
                    raise
                raise give_up(exc, waited) from exc
            wait = min(delay, patience)
            logger.warning(event, attempt=attempt, wait=wait, error=str(exc))
            sleep(wait)
            waited += wait
            delay = min(delay * 2, max_backoff)
            attempt += 1
