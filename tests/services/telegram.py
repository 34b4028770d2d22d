"""A local stand-in for the Telegram Bot API that speaks ``sendMessage``.

One server runs for the session, in a thread, on a free loopback port. Like
the real API it knows one bot token (:data:`TOKEN`) and one chat
(:data:`CHAT_ID`): another token gets 401, another chat 400 "chat not found",
a text over 4096 UTF-16 units 400. It records every request with the status it
answered, and can be told to answer the next requests otherwise: 429 with
``retry_after``, 500, 401, or a late answer.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pikcha.ports.notifier import Alert

TOKEN = "123:abc"
CHAT_ID = 42
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
_PATH = re.compile(r"/bot(?P<token>[^/]*)/(?P<method>\w+)")


@dataclass(frozen=True)
class BotRequest:
    token: str
    method: str
    content_type: str
    body: Mapping[str, Any]
    status: int


@dataclass(frozen=True)
class _Answer:
    status: int | None
    """None: answer as the Bot API would."""
    document: Mapping[str, Any] | None
    """None: a body that is not JSON."""
    delay: float = 0.0


def _refusal(status: int, description: str, **parameters: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "ok": False,
        "error_code": status,
        "description": description,
    }
    if parameters:
        document["parameters"] = parameters

    return document


class BotApi:
    """The server, what it was asked, and what it will answer next."""

    def __init__(self) -> None:
        self.requests: list[BotRequest] = []
        self._script: deque[_Answer] = deque()
        self._lock = threading.Lock()
        self._messages = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.api = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL to give the notifier (``base_url``)."""
        host, port = self._server.server_address[:2]

        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._script.clear()

    def fail(
        self,
        status: int,
        description: str,
        *,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``times`` requests with an error, whatever they hold."""
        parameters = {} if retry_after is None else {"retry_after": retry_after}
        answer = _Answer(status, _refusal(status, description, **parameters))
        with self._lock:
            self._script.extend([answer] * times)

    def answer_raw(self, status: int, *, times: int = 1) -> None:
        """Answer the next requests with a body that is not JSON (a proxy's page)."""
        with self._lock:
            self._script.extend([_Answer(status, None)] * times)

    def stall(self, seconds: float, *, times: int = 1) -> None:
        """Answer the next requests normally, but only after ``seconds``."""
        with self._lock:
            self._script.extend([_Answer(None, None, seconds)] * times)

    def texts(self) -> list[str]:
        """The text of every message delivered (answered 200), in arrival order."""
        with self._lock:
            return [
                str(request.body["text"])
                for request in self.requests
                if request.status == 200
            ]

    def alerts(self) -> list[Alert]:
        return [read_alert(text) for text in self.texts()]

    def _handle(self, path: str, content_type: str, raw: bytes) -> _Answer:
        match = _PATH.fullmatch(path)
        token, method = (match["token"], match["method"]) if match else ("", "")
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        with self._lock:
            answer = self._script.popleft() if self._script else _Answer(None, {})
            if answer.status is None:
                status, document = self._reply(token, method, body)
                answer = _Answer(status, document, answer.delay)
            assert answer.status is not None
            self.requests.append(
                BotRequest(token, method, content_type, body, answer.status)
            )

        return answer

    def _reply(
        self, token: str, method: str, body: Mapping[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        text = body.get("text")
        if token != TOKEN:
            return 401, _refusal(401, "Unauthorized")
        if method != "sendMessage":
            return 404, _refusal(404, "Not Found")
        if str(body.get("chat_id")) != str(CHAT_ID):
            return 400, _refusal(400, "Bad Request: chat not found")
        if not isinstance(text, str) or not text.strip():
            return 400, _refusal(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le", "surrogatepass")) > 2 * 4096:
            return 400, _refusal(400, "Bad Request: message is too long")
        self._messages += 1
        result = {
            "message_id": self._messages,
            "date": int(time.time()),
            "chat": {"id": CHAT_ID, "type": "private"},
            "text": text,
        }

        return 200, {"ok": True, "result": result}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        api: BotApi = self.server.api  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = api._handle(self.path, self.headers.get("Content-Type", ""), raw)
        time.sleep(answer.delay)
        payload = (
            b"<html>502 Bad Gateway</html>"
            if answer.document is None
            else json.dumps(answer.document).encode("utf-8")
        )
        try:
            self.send_response(answer.status or 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except ConnectionError:
            pass  # the client gave up waiting, as a stalled answer intends

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the requests are recorded on the server instead."""


def read_alert(text: str) -> Alert:
    """The alert a message text carries, laid out as ``format_message`` does."""
    head, _, rest = text.partition("\n\n")
    body, _, tail = rest.rpartition("\n\n")
    severity_line, *label_lines = tail.split("\n")
    labels = dict(_name_and_value(line) for line in label_lines)

    return Alert(
        title=_value(head),
        text=body,
        severity=_value(severity_line.removeprefix("severity: ")),
        labels=labels,
    )


def _name_and_value(line: str) -> tuple[str, str]:
    if line.startswith('"'):
        name, end = json.JSONDecoder().raw_decode(line)
        rest = line[end:]
    else:
        name, colon, rest = line.partition(":")
        rest = colon + rest

    return name, _value(rest.removeprefix(": "))


def _value(written: str) -> str:
    if written.startswith('"'):
        value: str = json.loads(written)
        return value

    return written


@pytest.fixture(scope="session")
def bot_api_server() -> Iterator[BotApi]:
    """The Bot API stand-in of the session; tests use :func:`bot_api`."""
    api = BotApi()
    api.start()
    yield api
    api.stop()


@pytest.fixture
def bot_api(bot_api_server: BotApi, monkeypatch: pytest.MonkeyPatch) -> BotApi:
    """The Bot API stand-in with nothing recorded or scripted, reached directly."""
    # A proxy from the environment would carry loopback requests off the machine.
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    bot_api_server.reset()

    return bot_api_server
