"""``paystream admin``: each action, against the real contract on anvil and a
database of its own, asks first, does what it says on chain, and leaves its
request and its end in ``admin_actions`` with audit-log rows that ``paystream
audit verify`` accepts; one the contract refuses is recorded as failed; a
withdrawal is bounded by what the treasury holds beyond what the payers are
owed."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from eth_utils.address import to_checksum_address

from paystream.cli import cli
from services.bootstrap import chain_client, pg_connection, prepare_schema
from services.chain.keys import ChainKeys
from services.settings import Settings
from tests.integration.pipeline.conftest import Pipeline, make_pipeline

pytestmark = pytest.mark.integration

SURPLUS = 5_000


def admin(p: Pipeline, *args: str, answer: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["admin", *args], env=p.env, input=answer)


def done(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    last: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return last


async def contract_state(settings: Settings) -> dict[str, Any]:
    client = await chain_client(settings)
    try:
        f = client.settlement.functions
        return {
            "paused": await f.paused().call(),
            "required": await f.requiredApprovals().call(),
            "threshold": await f.approvalThreshold().call(),
            "cap": (await f.dailyCap().call())[0],
            "treasury": await client.treasury_balance(),
        }
    finally:
        await client.close()


async def is_signer(settings: Settings, address: str) -> bool:
    client = await chain_client(settings)
    try:
        return bool(await client.settlement.functions.isSigner(address).call())
    finally:
        await client.close()


async def add_surplus(settings: Settings, amount: int) -> None:
    """Tokens in the treasury that no payer deposited (the ledger owes nobody them)."""
    client = await chain_client(settings)
    try:
        admin_key = ChainKeys.from_settings(settings).admin
        await client.call_token(admin_key, "mint", client.settlement.address, amount)
    finally:
        await client.close()


def audit_rows(settings: Settings) -> list[tuple[str, str, str, dict[str, Any]]]:
    with pg_connection(settings) as conn:
        rows = conn.execute(
            "SELECT actor, action, entity, detail FROM audit_log WHERE action LIKE 'admin.%'"
            " ORDER BY seq"
        ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def test_every_admin_action_is_confirmed_done_on_chain_and_audited(
    fresh_db: Settings, tmp_path: Path
) -> None:
    p = make_pipeline(fresh_db, tmp_path, pg_database=fresh_db.pg_database)
    s = p.settings
    prepare_schema(s)

    declined = admin(p, "pause", "--by", "alice", answer="n\n")
    assert declined.exit_code != 0 and "Send it?" in declined.output
    assert audit_rows(s) == [] and not asyncio.run(contract_state(s))["paused"]

    newcomer = to_checksum_address("0x" + secrets.token_hex(20))
    payee = to_checksum_address("0x" + secrets.token_hex(20))
    asyncio.run(add_surplus(s, SURPLUS))
    actions = [
        ("pause", ["pause"]),
        ("unpause", ["unpause"]),
        ("set-signers", ["set-signers", "--add", newcomer]),
        ("set-policy", ["set-policy", "--required", "1", "--threshold", "777"]),
        ("set-daily-cap", ["set-daily-cap", "123456789"]),
        ("withdraw", ["withdraw", "--to", payee, "--amount", str(SURPLUS)]),
    ]
    hashes = {}
    for name, args in actions:
        answer = done(admin(p, *args, "--yes", "--by", "alice"))
        assert answer["action"] == name and len(answer["tx_hashes"]) == 1
        hashes[name] = answer["tx_hashes"]
        if name == "pause":
            assert asyncio.run(contract_state(s))["paused"]
    state = asyncio.run(contract_state(s))
    assert not state["paused"] and (state["required"], state["threshold"]) == (1, 777)
    assert state["cap"] == 123456789 and asyncio.run(is_signer(s, newcomer))

    over = admin(p, "withdraw", "--to", payee, "--amount", "1", "--yes", "--by", "alice")
    assert over.exit_code == 1 and "surplus" in over.output  # nothing left beyond what is owed
    refused = admin(p, "set-policy", "--required", "99", "--threshold", "0", "--yes", "--by", "bob")
    assert refused.exit_code == 1 and "InvalidPolicy" in refused.output

    rows = audit_rows(s)
    expected = [(f"admin.{n}.{end}", "alice") for n, _ in actions for end in ("requested", "done")]
    expected += [("admin.set-policy.requested", "bob"), ("admin.set-policy.failed", "bob")]
    assert [(action, actor) for actor, action, _, _ in rows] == expected
    for name, _ in actions:
        (finished,) = [d for _, a, _, d in rows if a == f"admin.{name}.done"]
        assert finished["tx_hashes"] == hashes[name] and finished["status"] == "done"
    with pg_connection(s) as conn:
        recorded = conn.execute(
            "SELECT action, status, tx_hashes, actor FROM admin_actions ORDER BY requested_at"
        ).fetchall()
    assert [(r[0], r[1]) for r in recorded] == [(n, "done") for n, _ in actions] + [
        ("set-policy", "failed")
    ]
    verified = CliRunner().invoke(cli, ["audit", "verify"], env=p.env)
    assert verified.exit_code == 0, verified.output
