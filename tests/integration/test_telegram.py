"""The Telegram notifier against a local Bot API: retries, errors, limits, wiring."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from pikcha.adapters.telegram import MESSAGE_LIMIT, TelegramNotifier, format_message
from pikcha.domain.errors import ConfigurationError, InfrastructureError, PikchaError
from pikcha.entrypoints.container import make_notifier
from pikcha.entrypoints.settings import Settings
from pikcha.ports.notifier import Alert
from tests.services.ports import free_port
from tests.services.telegram import CHAT_ID, PROXY_VARIABLES, TOKEN, BotApi, read_alert

ALERT = Alert(
    "Pikcha: duplicate share above 50% in raw_stores",
    "Table raw_stores: duplicate share 66.7% is above 50%.",
    labels={"table": "raw_stores", "share": "66.7%"},
)


class Sleeps(list[float]):
    """A stand-in for ``time.sleep`` that records the waits instead."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def notifier(
    bot_api: BotApi, sleeps: Sleeps, token: str = TOKEN, chat_id: int = CHAT_ID
) -> TelegramNotifier:
    return TelegramNotifier(token, str(chat_id), bot_api.url, sleep=sleeps)


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_an_alert_is_one_plain_json_send_message(bot_api: BotApi) -> None:
    """send posts chat_id, text and no link previews, with no parse_mode."""
    notifier(bot_api, Sleeps()).send(ALERT)

    [request] = bot_api.requests
    assert (request.token, request.method) == (TOKEN, "sendMessage")
    assert request.content_type == "application/json"
    assert request.body == {
        "chat_id": CHAT_ID,
        "text": format_message(ALERT),
        "disable_web_page_preview": True,
    }


def test_the_message_starts_with_the_title_then_a_blank_line(bot_api: BotApi) -> None:
    """A reader sees the title, a blank line, the text, then the labels."""
    notifier(bot_api, Sleeps()).send(ALERT)

    assert bot_api.texts() == [
        "Pikcha: duplicate share above 50% in raw_stores\n"
        "\n"
        "Table raw_stores: duplicate share 66.7% is above 50%.\n"
        "\n"
        "severity: warning\n"
        "table: raw_stores\n"
        "share: 66.7%"
    ]


def test_a_429_is_retried_after_the_wait_telegram_asks_for(bot_api: BotApi) -> None:
    """After 429 with retry_after=3 the notifier sleeps 3 s and sends again."""
    bot_api.fail(429, "Too Many Requests: retry after 3", retry_after=3)
    sleeps = Sleeps()

    notifier(bot_api, sleeps).send(ALERT)

    assert sleeps == [3.0]
    assert [r.status for r in bot_api.requests] == [429, 200]
    assert bot_api.alerts() == [ALERT]


def test_a_429_asking_for_more_than_the_bound_is_not_waited_for(
    bot_api: BotApi,
) -> None:
    """A retry_after above max_wait gives up at once with a transient error."""
    bot_api.fail(429, "Too Many Requests: retry after 600", retry_after=600)
    sleeps = Sleeps()

    with pytest.raises(InfrastructureError) as caught:
        notifier(bot_api, sleeps).send(ALERT)

    assert caught.value.transient
    assert "wait 600 s" in str(caught.value)
    assert sleeps == []
    assert len(bot_api.requests) == 1


def test_a_5xx_is_retried_with_growing_waits_until_it_succeeds(
    bot_api: BotApi,
) -> None:
    """Two answers 500 are retried after 0.5 s then 1 s; the third delivers."""
    bot_api.fail(500, "Internal Server Error", times=2)
    sleeps = Sleeps()

    notifier(bot_api, sleeps).send(ALERT)

    assert sleeps == [0.5, 1.0]
    assert bot_api.alerts() == [ALERT]


def test_retries_are_bounded_and_end_in_a_clear_error(bot_api: BotApi) -> None:
    """A server that keeps failing gets four attempts, then a transient error."""
    bot_api.fail(502, "Bad Gateway", times=10)
    sleeps = Sleeps()

    with pytest.raises(InfrastructureError) as caught:
        notifier(bot_api, sleeps).send(ALERT)

    assert len(bot_api.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert caught.value.transient
    message = str(caught.value)
    assert "after 4 attempts: 502 Bad Gateway" in message
    assert f"chat {CHAT_ID} at {bot_api.url}" in message
    assert "PIKCHA_NOTIFIER" in message


def test_an_answer_that_is_not_json_is_retried_as_a_server_error(
    bot_api: BotApi,
) -> None:
    """A proxy's HTML page with 502 counts as a failed attempt, then delivery."""
    bot_api.answer_raw(502)

    notifier(bot_api, Sleeps()).send(ALERT)

    assert [r.status for r in bot_api.requests] == [502, 200]


def test_a_refused_connection_is_retried_then_reported(bot_api: BotApi) -> None:
    """With nothing listening, every attempt fails and the error says so."""
    closed = f"http://127.0.0.1:{free_port()}"
    sleeps = Sleeps()
    notifier = TelegramNotifier(TOKEN, str(CHAT_ID), closed, sleep=sleeps)

    with pytest.raises(InfrastructureError) as caught:
        notifier.send(ALERT)

    assert sleeps == [0.5, 1.0, 2.0]
    assert caught.value.transient
    assert "Connection refused" in str(caught.value)


def test_an_answer_later_than_the_timeout_is_retried(bot_api: BotApi) -> None:
    """A request with no answer within the timeout is sent again."""
    bot_api.stall(3.0)
    sleeps = Sleeps()
    notifier = TelegramNotifier(
        TOKEN, str(CHAT_ID), bot_api.url, timeout=0.5, sleep=sleeps
    )

    notifier.send(ALERT)

    assert sleeps == [0.5]
    assert len(bot_api.requests) == 2


def test_an_unknown_token_is_a_configuration_error_naming_the_setting(
    bot_api: BotApi,
) -> None:
    """401 from Telegram is not retried and points at PIKCHA_TELEGRAM_TOKEN."""
    sleeps = Sleeps()

    with pytest.raises(ConfigurationError, match="check PIKCHA_TELEGRAM_TOKEN"):
        notifier(bot_api, sleeps, token="999:wrong").send(ALERT)

    assert sleeps == []
    assert [r.status for r in bot_api.requests] == [401]


def test_an_unknown_chat_is_a_configuration_error_with_telegrams_words(
    bot_api: BotApi,
) -> None:
    """400 "chat not found" names the chat, Telegram's reason and the setting."""
    with pytest.raises(ConfigurationError) as caught:
        notifier(bot_api, Sleeps(), chat_id=7).send(ALERT)

    message = str(caught.value)
    assert "chat 7" in message
    assert "Bad Request: chat not found" in message
    assert "chat_id in PIKCHA_NOTIFIER" in message


def test_a_blocked_bot_is_a_configuration_error_about_the_chat(
    bot_api: BotApi,
) -> None:
    """403 says the bot may not write to the chat, and is not retried."""
    bot_api.fail(403, "Forbidden: bot was blocked by the user")

    with pytest.raises(ConfigurationError, match="bot was blocked"):
        notifier(bot_api, Sleeps()).send(ALERT)

    assert len(bot_api.requests) == 1


def _scenarios() -> dict[str, Callable[[BotApi], tuple[str, str]]]:
    """Ways to fail, each giving the (token, base URL) the notifier should use."""

    def script(*args: Any, **kwargs: Any) -> Callable[[BotApi], tuple[str, str]]:
        def arrange(api: BotApi) -> tuple[str, str]:
            api.fail(*args, **kwargs)
            return TOKEN, api.url

        return arrange

    return {
        "401": script(401, "Unauthorized"),
        "404": script(404, "Not Found"),
        "400": script(400, "Bad Request: chat not found"),
        "403": script(403, "Forbidden: bot is not a member of the channel chat"),
        "429 too long": script(429, "Too Many Requests", retry_after=3600),
        "5xx spent": script(500, "Internal Server Error", times=4),
        "echoed URL": script(500, f"no route for /bot{TOKEN}/sendMessage", times=4),
        "refused": lambda api: (TOKEN, f"http://127.0.0.1:{free_port()}"),
    }


@pytest.mark.parametrize("scenario", sorted(_scenarios()))
def test_the_token_never_appears_in_errors_or_logs(
    bot_api: BotApi, scenario: str
) -> None:
    """Whatever fails, neither the error, its traceback nor a log line holds it."""
    token, base_url = _scenarios()[scenario](bot_api)
    notifier = TelegramNotifier(token, str(CHAT_ID), base_url, sleep=Sleeps())

    with capture_logs() as logs, pytest.raises(PikchaError) as caught:
        notifier.send(ALERT)

    shown = [
        str(caught.value),
        repr(caught.value),
        "".join(traceback.format_exception(caught.value)),
        repr(logs),
    ]
    assert not [text for text in shown if TOKEN in text]


def test_each_retry_is_logged_without_the_token(bot_api: BotApi) -> None:
    """A retry logs the attempt, the wait and the reason, token scrubbed."""
    bot_api.fail(500, f"no route for /bot{TOKEN}/sendMessage")

    with capture_logs() as logs:
        notifier(bot_api, Sleeps()).send(ALERT)

    assert logs == [
        {
            "event": "telegram_retry",
            "log_level": "warning",
            "chat_id": str(CHAT_ID),
            "attempt": 1,
            "wait": 0.5,
            "status": 500,
            "reason": "no route for /bot***/sendMessage",
        }
    ]


def test_a_long_text_is_cut_to_the_limit_in_utf16_units(bot_api: BotApi) -> None:
    """A text of 6000 UTF-16 units is cut with an ellipsis; title and labels stay."""
    long = Alert("title", "😀" * 3000, labels={"table": "raw_stores"})

    notifier(bot_api, Sleeps()).send(long)

    [text] = bot_api.texts()
    assert MESSAGE_LIMIT - 1 <= utf16_length(text) <= MESSAGE_LIMIT
    delivered = read_alert(text)
    assert delivered.text.endswith("😀…")
    assert (delivered.title, delivered.labels) == (long.title, long.labels)


def test_a_title_too_long_for_a_message_cuts_the_whole_message() -> None:
    """When even title and labels pass the limit, the message itself is cut."""
    text = format_message(Alert("я" * 5000, "text"))

    assert utf16_length(text) == MESSAGE_LIMIT
    assert text.endswith("яя…")


def test_a_message_at_the_limit_is_left_whole() -> None:
    """A message of exactly 4096 UTF-16 units is not cut."""
    room = MESSAGE_LIMIT - utf16_length(format_message(Alert("t", "")))
    alert = Alert("t", "x" * room)

    assert read_alert(format_message(alert)) == alert


def test_the_url_gives_the_chat_and_the_base_url(bot_api: BotApi) -> None:
    """telegram://?chat_id=42&base_url=... sends to chat 42 at that server."""
    url = f"telegram://?chat_id={CHAT_ID}&base_url={bot_api.url}"

    TelegramNotifier.from_url(url, TOKEN).send(ALERT)

    assert bot_api.alerts() == [ALERT]


def test_without_a_token_the_error_names_the_token_setting() -> None:
    """A telegram:// notifier with no token asks for PIKCHA_TELEGRAM_TOKEN."""
    with pytest.raises(ConfigurationError, match="set PIKCHA_TELEGRAM_TOKEN"):
        TelegramNotifier.from_url("telegram://?chat_id=42", None)


def test_without_a_chat_the_error_names_the_notifier_setting() -> None:
    """A telegram:// URL without chat_id points at PIKCHA_NOTIFIER."""
    with pytest.raises(ConfigurationError, match="PIKCHA_NOTIFIER=telegram://"):
        TelegramNotifier.from_url("telegram://", TOKEN)


@pytest.mark.parametrize(
    "url",
    [
        "telegram://?chat=42",
        "telegram://42",
        "telegram://?chat_id=42&chat_id=43",
        "telegram://?chat_id=someone",
        "telegram://?chat_id=42&base_url=ftp://example.org",
    ],
)
def test_a_malformed_url_is_a_configuration_error(url: str) -> None:
    """Unknown options, a chat in the host, twice the chat, bad values: refused."""
    with pytest.raises(ConfigurationError, match="PIKCHA_NOTIFIER"):
        TelegramNotifier.from_url(url, TOKEN)


def test_a_malformed_token_is_refused_without_showing_it() -> None:
    """A token that cannot be a bot token is refused, and not echoed."""
    with pytest.raises(ConfigurationError) as caught:
        TelegramNotifier("not a token/..", "42")

    assert "PIKCHA_TELEGRAM_TOKEN" in str(caught.value)
    assert "not a token" not in str(caught.value)


def test_the_container_builds_a_telegram_notifier_from_settings() -> None:
    """PIKCHA_NOTIFIER=telegram://... with a token gives a TelegramNotifier."""
    settings = Settings(
        notifier="telegram://?chat_id=-1001&base_url=http://127.0.0.1:1",
        telegram_token=TOKEN,
    )

    built = make_notifier(settings)

    assert isinstance(built, TelegramNotifier)
    assert (built.chat_id, built.base_url) == ("-1001", "http://127.0.0.1:1")


# The acceptance: a whole `pikcha run` alerts once per table over the threshold.

NOW, AS_OF, PURCHASES = "2025-09-30T12:00:00", "2025-09-30", "50"


def _pikcha(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pikcha.entrypoints.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr

    return result.stdout


def test_pikcha_run_alerts_once_per_table_over_the_threshold(
    bot_api: BotApi, tmp_path: Path
) -> None:
    """Stores above 0.5 alert; products below and customers, purchases at 0.5 don't.

    Before the run, the stores are published twice and the products once with
    other names. The run repeats every record (``--repeated 1``): the stores
    reach 3 rows per id (share 2/3), the products 3 rows of 2 contents (1/3),
    customers and purchases 2 rows of one content (exactly 1/2).
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PIKCHA_") and name.lower() not in PROXY_VARIABLES
    }
    env |= {
        "PIKCHA_HOME": str(tmp_path / "var"),
        "PIKCHA_NOTIFIER": f"telegram://?chat_id={CHAT_ID}&base_url={bot_api.url}",
        "PIKCHA_TELEGRAM_TOKEN": TOKEN,
        "PIKCHA_FEATURES": "clickhouse",
    }
    source = tmp_path / "generated"
    _pikcha(
        env,
        *["generate", "--out", str(source), "--now", NOW, "--format", "jsonl"],
        *["--purchases", PURCHASES],
    )
    stores, products = tmp_path / "stores", tmp_path / "products"
    (stores / "stores").mkdir(parents=True)
    (products / "products").mkdir(parents=True)
    for line in (source / "stores").glob("*.jsonl"):
        (stores / "stores" / line.name).write_text(line.read_text())
    renamed = [
        json.dumps({**json.loads(line), "name": "old name"}, ensure_ascii=False)
        for path in (source / "products").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    (products / "products" / "products.jsonl").write_text("\n".join(renamed))
    for step in (
        ["load", str(stores)],
        ["publish"],
        ["publish", "--resend"],
        ["load", str(products)],
        ["publish"],
    ):
        _pikcha(env, *step)

    out = _pikcha(
        env,
        *["run", "--now", NOW, "--as-of", AS_OF, "--repeated", "1"],
        *["--purchases", PURCHASES],
    )

    report_path = re.search(r"quality report: (\S+)", out)
    assert report_path, out
    shares = {
        table["table"]: table["duplicate_share"]
        for table in json.loads(Path(report_path[1]).read_text())["tables"]
    }
    assert shares == pytest.approx(
        {
            "raw_stores": 2 / 3,
            "raw_products": 1 / 3,
            "raw_customers": 1 / 2,
            "raw_purchases": 1 / 2,
        }
    )
    alerts = bot_api.alerts()
    assert [alert.labels["table"] for alert in alerts] == ["raw_stores"]
    assert alerts[0].title == "Pikcha: duplicate share above 50% in raw_stores"
