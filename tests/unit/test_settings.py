"""Settings: environment prefix, immutability, secrets kept out of reprs."""

from __future__ import annotations

import pydantic
import pytest

from services.settings import LOCAL_MNEMONIC, PROJECT_ROOT, Settings


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


def test_a_remote_endpoint_is_a_secret_shown_by_host_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYSTREAM_CHAIN_RPC_ENDPOINT", "https://node.example:8545/v3/KEY123")
    settings = Settings()
    assert settings.chain_rpc_url == "https://node.example:8545/v3/KEY123"
    assert settings.chain_rpc_shown == "https://node.example:8545"
    assert "KEY123" not in repr(settings)


@pytest.mark.parametrize(
    ("secrets", "refused"),
    [
        ({}, ["PAYSTREAM_PG_PASSWORD", "PAYSTREAM_SIGNER_TOKEN", "PAYSTREAM_OPS_TOKEN"]),
        (
            {"PAYSTREAM_CHAIN_MNEMONIC": LOCAL_MNEMONIC, "PAYSTREAM_PG_PASSWORD": "own"},
            ["PAYSTREAM_CHAIN_MNEMONIC", "PAYSTREAM_SIGNER_TOKEN"],
        ),
        (
            {
                "PAYSTREAM_PG_PASSWORD": "own",
                "PAYSTREAM_SIGNER_TOKEN": "own-token",
                "PAYSTREAM_OPS_TOKEN": "own-ops",
            },
            [],
        ),
    ],
)
def test_public_defaults_are_refused_off_the_local_chain(
    monkeypatch: pytest.MonkeyPatch, secrets: dict[str, str], refused: list[str]
) -> None:
    Settings()  # the local chain (31337) takes them
    monkeypatch.setenv("PAYSTREAM_CHAIN_ID", "1")
    monkeypatch.setenv("PAYSTREAM_CONFIRMATIONS_MIN", "12")
    monkeypatch.setenv("PAYSTREAM_FINALITY_DEPTH", "12")
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    if not refused:
        assert Settings().chain_id == 1
        return
    with pytest.raises(pydantic.ValidationError) as caught:
        Settings()
    message = str(caught.value)
    assert all(name in message for name in refused), message
    assert "own" not in message  # a secret never appears in the error


@pytest.mark.parametrize(
    ("chain_id", "confirmations", "override", "ok"),
    [
        (31337, 1, False, True),  # the local chain: anything
        (1, 11, False, False),  # Ethereum needs 12
        (1, 12, False, True),
        (137, 32, False, False),  # Polygon PoS needs 64
        (424242, 11, False, False),  # an unknown chain: 12
        (1, 1, True, True),  # said explicitly
    ],
)
def test_too_few_confirmations_are_refused_off_the_local_chain(
    monkeypatch: pytest.MonkeyPatch, chain_id: int, confirmations: int, override: bool, ok: bool
) -> None:
    for name in ("PAYSTREAM_PG_PASSWORD", "PAYSTREAM_SIGNER_TOKEN", "PAYSTREAM_OPS_TOKEN"):
        monkeypatch.setenv(name, "not-the-default")
    monkeypatch.setenv("PAYSTREAM_CHAIN_ID", str(chain_id))
    monkeypatch.setenv("PAYSTREAM_CONFIRMATIONS_MIN", str(confirmations))
    monkeypatch.setenv("PAYSTREAM_FINALITY_DEPTH", str(max(3, confirmations)))
    monkeypatch.setenv("PAYSTREAM_CONFIRMATIONS_OVERRIDE", str(override).lower())
    if ok:
        assert Settings().confirmations_min == confirmations
        return
    with pytest.raises(pydantic.ValidationError, match="PAYSTREAM_CONFIRMATIONS_OVERRIDE"):
        Settings()


def test_finality_comes_after_confirmation() -> None:
    assert Settings(confirmations_min=2, finality_depth=2).finality_depth == 2
    with pytest.raises(pydantic.ValidationError, match="PAYSTREAM_FINALITY_DEPTH"):
        Settings(confirmations_min=4, finality_depth=3)


def test_invalid_port_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSTREAM_REDIS_PORT", "70000")
    with pytest.raises(pydantic.ValidationError):
        Settings()


def test_env_example_lists_every_setting_and_parses() -> None:
    example = PROJECT_ROOT / ".env.example"
    listed = {
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in example.read_text().splitlines()
        if line.lstrip("# ").startswith("PAYSTREAM_")
    }
    expected = {f"PAYSTREAM_{name.upper()}" for name in Settings.model_fields}
    assert sorted(expected - listed) == []
    assert sorted(listed - expected) == []
    from_example, default = Settings(_env_file=example), Settings(_env_file=None)
    assert PROJECT_ROOT / from_example.state_dir == default.state_dir  # relative to the root
    assert from_example.model_dump(exclude={"state_dir"}) == default.model_dump(
        exclude={"state_dir"}
    )
