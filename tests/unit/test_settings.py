"""Settings: environment prefix, immutability, secrets kept out of reprs."""

from __future__ import annotations

import pydantic
import pytest

from services.settings import Settings


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSTREAM_KAFKA_PORT", "29092")
    monkeypatch.setenv("PAYSTREAM_ANVIL_BLOCK_TIME_S", "0.5")
    settings = Settings()
    assert settings.kafka_bootstrap == "127.0.0.1:29092"
    assert settings.anvil_block_time_s == 0.5


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(pydantic.ValidationError):
        settings.kafka_port = 1  # type: ignore[misc]


def test_secrets_never_appear_in_repr_or_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSTREAM_PG_PASSWORD", "hunter2-very-secret")
    settings = Settings()
    for text in (repr(settings), str(settings), settings.pg_conninfo):
        assert "hunter2-very-secret" not in text
    assert "junk" not in repr(settings)


def test_invalid_port_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSTREAM_REDIS_PORT", "70000")
    with pytest.raises(pydantic.ValidationError):
        Settings()
