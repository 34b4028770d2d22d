"""Alerts as Telegram messages, sent with the Bot API's ``sendMessage``."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog

from pikcha.domain.errors import ConfigurationError, InfrastructureError, PikchaError
from pikcha.ports.notifier import Alert

DEFAULT_BASE_URL = "https://api.telegram.org"
MESSAGE_LIMIT = 4096
"""The longest text ``sendMessage`` takes, counted in UTF-16 code units."""
ELLIPSIS = "…"
USAGE = "telegram://?chat_id=CHAT[&base_url=https://api.telegram.org]"

_TOKEN = re.compile(r"[0-9]+:[A-Za-z0-9_-]+")
_CHAT_ID = re.compile(r"-?[0-9]+|@[A-Za-z0-9_]+")
_OPTIONS = ("chat_id", "base_url")
_REDACTED = "***"
_DESCRIPTION_CHARS = 300

log = structlog.get_logger("pikcha.telegram")


class TelegramNotifier:
    """Sends each alert as one plain-text message to one chat.

    The text is laid out by :func:`format_message`. An answer 429 is retried
    after the ``retry_after`` Telegram asks for, unless that is longer than
    ``max_wait`` seconds; answers 5xx, timeouts and lost connections are
    retried after ``backoff`` seconds, doubled each time; ``attempts`` bounds
    the tries of one alert. Delivery is at least once: a request that timed
    out may have arrived, and then its retry shows the alert twice. Proxies
    come from the usual ``https_proxy`` and ``no_proxy`` variables.
    """

    def __init__(
        self,
        token: str,
        chat_id: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 5.0,
        attempts: int = 4,
        backoff: float = 0.5,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not _TOKEN.fullmatch(token):
            raise ConfigurationError(
                "PIKCHA_TELEGRAM_TOKEN does not look like a bot token (digits, a "
                "colon, then letters, digits, '_' or '-'); copy it again from "
                "@BotFather"
            )
        if not _CHAT_ID.fullmatch(chat_id):
            raise ConfigurationError(
                f"chat_id={chat_id!r} in PIKCHA_NOTIFIER is neither a numeric chat "
                "id nor a @channel name; write " + USAGE
            )
        parts = urlsplit(base_url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.query
            or parts.fragment
            or not base_url.isprintable()
            or " " in base_url
        ):
            raise ConfigurationError(
                f"base_url={base_url!r} in PIKCHA_NOTIFIER is not an http(s) URL "
                f"without query; write e.g. base_url={DEFAULT_BASE_URL}"
            )
        if attempts < 1:
            raise ConfigurationError(f"attempts = {attempts}: give 1 or more")
        self.chat_id = chat_id
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.max_wait = max_wait
        self._token = token
        self._sleep = sleep
        self._opener = urllib.request.build_opener()

    @classmethod
    def from_url(cls, url: str, token: str | None, **options: Any) -> TelegramNotifier:
        """The notifier a ``PIKCHA_NOTIFIER`` URL and the bot's token describe."""
        parts = urlsplit(url)
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - set(_OPTIONS))
        if parts.netloc or parts.path or unknown:
            extra = f" (unknown: {', '.join(unknown)})" if unknown else ""
            raise ConfigurationError(
                f"PIKCHA_NOTIFIER={url} is not a Telegram notifier URL{extra}; "
                f"write {USAGE}"
            )
        repeated = sorted(name for name, values in query.items() if len(values) > 1)
        if repeated:
            raise ConfigurationError(
                f"PIKCHA_NOTIFIER={url} gives {', '.join(repeated)} more than "
                f"once; write {USAGE}"
            )
        chat_id = query.get("chat_id", [""])[0]
        if not chat_id:
            raise ConfigurationError(
                f"PIKCHA_NOTIFIER={url} names no chat; write {USAGE}"
            )
        if not token:
            raise ConfigurationError(
                f"PIKCHA_NOTIFIER={url} needs the bot's token; set "
                "PIKCHA_TELEGRAM_TOKEN to the token @BotFather gave the bot"
            )
        base_url = query.get("base_url", [DEFAULT_BASE_URL])[0]

        return cls(token, chat_id, base_url, **options)

    def send(self, alert: Alert) -> None:
        chat: int | str = int(self.chat_id) if self.chat_id[0] != "@" else self.chat_id
        body = json.dumps(
            {
                "chat_id": chat,
                "text": format_message(alert),
                "disable_web_page_preview": True,
            }
        ).encode("ascii")

        for attempt in range(1, self.attempts + 1):
            reply = self._post(body)
            if reply.ok:
                return
            wait = self._wait(reply, attempt)
            if wait is None:
                raise self._error(reply, attempt, alert)
            log.warning(
                "telegram_retry",
                chat_id=self.chat_id,
                attempt=attempt,
                wait=wait,
                status=reply.status,
                reason=reply.reason,
            )
            self._sleep(wait)

    def _post(self, body: bytes) -> _Reply:
        request = urllib.request.Request(
            f"{self.base_url}/bot{self._token}/sendMessage",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        # The request URL holds the token, and urllib's errors keep it (and may
        # print it), so each failure becomes a reply here and no error of
        # urllib outlives this method.
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return self._parse(response.status, response.read())
        except urllib.error.HTTPError as exc:
            try:
                raw = exc.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                exc.close()
            return self._parse(exc.code, raw)
        except (OSError, http.client.HTTPException) as exc:
            return _Reply(None, self._scrub(_transport_reason(exc, self.timeout)))

    def _parse(self, status: int, raw: bytes) -> _Reply:
        try:
            document = json.loads(raw)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            return _Reply(status, "(not a Bot API answer)")
        description = str(document.get("description") or "(no description)")
        parameters = document.get("parameters")
        if not isinstance(parameters, dict):
            parameters = {}
        retry_after = parameters.get("retry_after")
        migrate_to = parameters.get("migrate_to_chat_id")

        return _Reply(
            status,
            self._scrub(description)[:_DESCRIPTION_CHARS],
            ok=status == 200 and document.get("ok") is True,
            retry_after=_seconds(retry_after),
            migrate_to=migrate_to if isinstance(migrate_to, int) else None,
        )

    def _wait(self, reply: _Reply, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if attempt >= self.attempts:
            return None
        backoff = min(self.backoff * 2.0 ** (attempt - 1), self.max_wait)
        if reply.status == 429:
            if reply.retry_after is None:
                return backoff
            return reply.retry_after if reply.retry_after <= self.max_wait else None
        if reply.status is None or reply.status >= 500:
            return backoff

        return None

    def _error(self, reply: _Reply, attempt: int, alert: Alert) -> PikchaError:
        status, reason = reply.status, reply.reason
        where = f"Telegram chat {self.chat_id} at {self.base_url}"
        if status in (401, 404):
            setting = "PIKCHA_TELEGRAM_TOKEN"
            if status == 404:
                setting += " (and base_url in PIKCHA_NOTIFIER)"
            return ConfigurationError(
                f"{self.base_url} refused the bot token: {status} {reason}; "
                f"check {setting}"
            )
        if status == 400 and reply.migrate_to is not None:
            return ConfigurationError(
                f"{where}: {reason}; set chat_id={reply.migrate_to} in PIKCHA_NOTIFIER"
            )
        if status == 403 or (status == 400 and "chat" in reason.lower()):
            return ConfigurationError(
                f"{where} cannot be sent to: {status} {reason}; check chat_id in "
                "PIKCHA_NOTIFIER and that the bot is a member of that chat"
            )
        if status == 429 and (reply.retry_after or 0) > self.max_wait:
            return InfrastructureError(
                f"{where} asks to wait {reply.retry_after:g} s before the next "
                f"message, longer than the {self.max_wait:g} s Pikcha waits; the "
                f"alert {alert.title!r} was not sent",
                transient=True,
            )
        if status is not None and 400 <= status < 500 and status != 429:
            return InfrastructureError(
                f"{where} refused the alert {alert.title!r}: {status} {reason}"
            )
        answer = reason if status is None else f"{status} {reason}"
        tries = f"{attempt} attempt" + ("s" if attempt > 1 else "")

        return InfrastructureError(
            f"could not send the alert {alert.title!r} to {where} after {tries}: "
            f"{answer}; check that {self.base_url} is reachable, or set base_url "
            "in PIKCHA_NOTIFIER",
            transient=status is None or status == 429 or status >= 500,
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, _REDACTED)


@dataclass(frozen=True)
class _Reply:
    status: int | None
    """The HTTP status, None when no answer came."""
    reason: str
    ok: bool = False
    retry_after: float | None = None
    migrate_to: int | None = None


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None

    return float(value)


def _transport_reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror

    return f"{type(exc).__name__}: {exc}"


def format_message(alert: Alert) -> str:
    """The text of the message that carries ``alert``.

    The title, a blank line, the text, a blank line, then ``severity: ...``
    and one ``name: value`` line per label. The title, the severity and each
    label name and value stay on one line: one that is empty, has a line break
    or another unprintable character, spaces at either end, or starts with a
    double quote (a name also: holds a colon) is written as a JSON string, so
    that a reader can recover the alert whole. To fit :data:`MESSAGE_LIMIT`,
    the text is cut and ends with :data:`ELLIPSIS`; should the rest alone be
    too long, the whole message is cut.
    """
    head = _one_line(alert.title)
    lines = [f"severity: {_one_line(alert.severity)}"]
    lines += [
        f"{_one_line(name, ':')}: {_one_line(value)}"
        for name, value in alert.labels.items()
    ]
    tail = "\n".join(lines)
    message = f"{head}\n\n{alert.text}\n\n{tail}"
    excess = _utf16_length(message) - MESSAGE_LIMIT
    if excess <= 0:
        return message

    room = _utf16_length(alert.text) - excess - _utf16_length(ELLIPSIS)
    if room >= 0:
        return f"{head}\n\n{_utf16_prefix(alert.text, room)}{ELLIPSIS}\n\n{tail}"

    cut = MESSAGE_LIMIT - _utf16_length(ELLIPSIS)

    return _utf16_prefix(message, cut) + ELLIPSIS


def _one_line(value: str, forbidden: str = "") -> str:
    plain = (
        value != ""
        and value.isprintable()
        and value == value.strip()
        and not value.startswith('"')
        and not any(char in value for char in forbidden)
    )

    return value if plain else json.dumps(value, ensure_ascii=False)


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _utf16_prefix(text: str, units: int) -> str:
    """The longest start of ``text`` that is at most ``units`` UTF-16 units."""
    data = text.encode("utf-16-le", "surrogatepass")[: 2 * units]
    # Never end on the first half of a surrogate pair.
    if len(data) >= 2 and 0xD800 <= int.from_bytes(data[-2:], "little") <= 0xDBFF:
        data = data[:-2]

    return data.decode("utf-16-le", "surrogatepass")
