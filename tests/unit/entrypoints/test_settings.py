"""Settings: one URL per port, embedded defaults, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pikcha.domain.errors import ConfigurationError
from pikcha.entrypoints.logging import REDACTED, Redactor
from pikcha.entrypoints.settings import Settings, local_path, redact_url


def test_defaults_are_embedded_under_home() -> None:
    """With nothing set, every port lives under the home folder."""
    settings = Settings(home=Path("var"))

    assert settings.url("event_log") == "sqlite:///var/events.db"
    assert settings.url("warehouse") == "chdb:///var/warehouse"
    assert settings.url("crm") == "sqlite:///var/crm.db"
    assert settings.url("objects") == "file:///var/objects"
    assert settings.url("notifier") == "log://"


def test_an_unknown_scheme_names_the_variable_and_the_choices() -> None:
    """A wrong URL says which variable and which schemes would do."""
    settings = Settings(event_log="postgres://db/x")

    with pytest.raises(ConfigurationError, match=r"PIKCHA_EVENT_LOG.*sqlite://"):
        settings.url("event_log")


def test_passwords_never_appear_in_messages() -> None:
    """A server URL's password is hidden in the error."""
    settings = Settings(warehouse="ftp://user:hunter2@host/db")

    with pytest.raises(ConfigurationError) as info:
        settings.url("warehouse")
    assert "hunter2" not in str(info.value)
    assert redact_url("http://u:pw@h:8123/db") == "http://u:***@h:8123/db"


def test_local_paths_follow_sqlalchemy_slashes(tmp_path: Path) -> None:
    """Three slashes are relative, four absolute."""
    assert local_path("sqlite:///var/x.db", "V") == Path("var/x.db").resolve()
    assert local_path(f"sqlite:///{tmp_path}/x.db", "V") == tmp_path / "x.db"


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """PIKCHA_* variables set the fields."""
    monkeypatch.setenv("PIKCHA_FEATURES", "reference")
    monkeypatch.setenv("PIKCHA_DUPLICATE_THRESHOLD", "0.25")

    settings = Settings()
    assert settings.features == "reference"
    assert settings.duplicate_threshold == 0.25


def test_the_redactor_hides_secret_keys_and_values() -> None:
    """Secrets are replaced by key name and by value, nested too."""
    redact = Redactor(["s3cr3t-value"])
    event = redact(
        None,
        "info",
        {"event": "x", "telegram_token": "abc", "note": ["has s3cr3t-value inside"]},
    )

    assert event["telegram_token"] == REDACTED
    assert event["note"] == [f"has {REDACTED} inside"]
