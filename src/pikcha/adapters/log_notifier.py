"""The default notifier: alerts become warning events in the log."""

from __future__ import annotations

import structlog

from pikcha.ports.notifier import Alert

# The alert's own keys and those that structlog's processors give a meaning.
RESERVED_KEYS = frozenset(
    {"event", "title", "text", "severity", "level", "log_level", "logger"}
    | {"logger_name", "timestamp", "exc_info", "exception", "stack_info"}
)


class LogNotifier:
    """Logs each alert as the event ``alert`` of the logger ``pikcha.alerts``.

    Labels become keys of the event; a label named like one of
    :data:`RESERVED_KEYS` is logged as ``label_<name>``.
    """

    def __init__(self, logger_name: str = "pikcha.alerts") -> None:
        self.logger_name = logger_name

    def send(self, alert: Alert) -> None:
        labels = {
            f"label_{name}" if name in RESERVED_KEYS else name: value
            for name, value in alert.labels.items()
        }
        structlog.get_logger(self.logger_name).warning(
            "alert",
            title=alert.title,
            text=alert.text,
            severity=alert.severity,
            **labels,
        )
