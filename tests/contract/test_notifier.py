"""The Notifier contract, run against every adapter of the port."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from pikcha.adapters.log_notifier import RESERVED_KEYS, LogNotifier
from pikcha.adapters.memory import InMemoryNotifier
from pikcha.domain.errors import InfrastructureError
from pikcha.ports.notifier import Alert, Notifier

Delivered = Callable[[], list[Alert]]
# Each adapter's class runs the inherited property with its own fresh notifier.
_SHARED = [HealthCheck.function_scoped_fixture, HealthCheck.differing_executors]

alerts = st.builds(
    Alert,
    title=st.text(max_size=30),
    text=st.text(max_size=200),
    severity=st.sampled_from(["info", "warning", "critical"]),
    labels=st.dictionaries(
        st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10).filter(
            lambda name: not name.startswith("label_")
        ),
        st.text(max_size=10),
        max_size=3,
    ),
)


def duplicates_alert(table: str = "customer") -> Alert:
    return Alert(
        title="Дубликатов больше порога",
        text=f"{table}: 62% repeated rows (threshold 50%)",
        severity="critical",
        labels={"table": table, "metric": "duplicate_share"},
    )


class NotifierContract:
    @pytest.fixture
    def subject(self) -> Iterator[tuple[Notifier, Delivered]]:
        """The notifier and a function reading back what it delivered."""
        raise NotImplementedError

    def test_a_sent_alert_is_delivered_whole(
        self, subject: tuple[Notifier, Delivered]
    ) -> None:
        """send delivers the title, text, severity and labels of the alert."""
        notifier, delivered = subject

        notifier.send(duplicates_alert())

        assert delivered() == [duplicates_alert()]

    def test_alerts_are_delivered_in_order(
        self, subject: tuple[Notifier, Delivered]
    ) -> None:
        """Alerts sent one after another are delivered in that order."""
        notifier, delivered = subject

        for table in ("store", "product", "customer"):
            notifier.send(duplicates_alert(table))

        assert [a.labels["table"] for a in delivered()] == [
            "store",
            "product",
            "customer",
        ]

    def test_labels_named_like_alert_fields_are_kept(
        self, subject: tuple[Notifier, Delivered]
    ) -> None:
        """A label called title, severity or level reaches the reader intact."""
        notifier, delivered = subject
        labels = {"title": "a", "severity": "b", "level": "c", "exc_info": "d"}
        alert = Alert("t", "x", labels=labels)

        notifier.send(alert)

        assert delivered() == [alert]

    def test_sends_from_several_threads_are_all_delivered(
        self, subject: tuple[Notifier, Delivered]
    ) -> None:
        """Concurrent sends each deliver their alert once."""
        notifier, delivered = subject

        def send_twenty(thread: int) -> None:
            for n in range(20):
                notifier.send(Alert(f"{thread}-{n}", "x"))

        threads = [threading.Thread(target=send_twenty, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        titles = sorted(a.title for a in delivered())
        assert titles == sorted(f"{t}-{n}" for t in range(4) for n in range(20))

    @settings(max_examples=40, deadline=None, suppress_health_check=_SHARED)
    @given(alert=alerts)
    def test_any_alert_is_delivered_unchanged(
        self, subject: tuple[Notifier, Delivered], alert: Alert
    ) -> None:
        """Whatever its text and labels, the delivered alert equals the sent one."""
        notifier, delivered = subject
        before = len(delivered())

        notifier.send(alert)

        assert delivered()[before:] == [alert]


class TestInMemoryNotifier(NotifierContract):
    @pytest.fixture
    def subject(self) -> Iterator[tuple[Notifier, Delivered]]:
        notifier = InMemoryNotifier()
        yield notifier, lambda: list(notifier.sent)

    def test_a_given_error_is_raised_and_nothing_recorded(self) -> None:
        """With an error set, send raises it and sent stays empty."""
        error = InfrastructureError("chat unreachable", transient=True)
        notifier = InMemoryNotifier(error=error)

        with pytest.raises(InfrastructureError) as caught:
            notifier.send(duplicates_alert())

        assert caught.value is error
        assert notifier.sent == []


class TestLogNotifier(NotifierContract):
    @pytest.fixture
    def subject(self) -> Iterator[tuple[Notifier, Delivered]]:
        with capture_logs() as events:
            yield LogNotifier(), lambda: [_alert(event) for event in events]

    def test_an_alert_is_a_warning_event(self) -> None:
        """Each alert is logged once as the warning event 'alert'."""
        with capture_logs() as events:
            LogNotifier().send(duplicates_alert())

        assert events == [
            {
                "event": "alert",
                "log_level": "warning",
                "title": "Дубликатов больше порога",
                "text": "customer: 62% repeated rows (threshold 50%)",
                "severity": "critical",
                "table": "customer",
                "metric": "duplicate_share",
            }
        ]


def _alert(event: MutableMapping[str, Any]) -> Alert:
    fields = {k: v for k, v in event.items() if k not in {"event", "log_level"}}
    title, text, severity = (fields.pop(k) for k in ("title", "text", "severity"))
    labels = {
        name.removeprefix("label_")
        if name.removeprefix("label_") in RESERVED_KEYS
        else name: value
        for name, value in fields.items()
    }

    return Alert(title, text, severity, labels)


class TestTelegramNotifier(NotifierContract):
    @pytest.fixture
    def subject(self, bot_api: Any) -> Iterator[tuple[Notifier, Delivered]]:
        from pikcha.adapters.telegram import TelegramNotifier
        from tests.services.telegram import CHAT_ID, TOKEN

        notifier = TelegramNotifier(TOKEN, str(CHAT_ID), bot_api.url)
        yield notifier, bot_api.alerts
