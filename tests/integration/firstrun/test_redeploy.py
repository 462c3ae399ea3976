"""A new contract replacing a recorded one starts with an empty record of paid
sequence numbers, so ``paystream chain deploy`` refuses it while payments that
claimed a sequence on the recorded one have no outcome (audit finding 16)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from services.settings import Settings
from services.store.schema import upgrade
from tests.integration.conftest import connect
from tests.integration.firstrun.test_cli_errors import assert_one_line_fix, paystream

pytestmark = pytest.mark.integration


def test_a_redeploy_waits_for_the_payments_in_flight(fresh_db: Settings, tmp_path: Path) -> None:
    upgrade(fresh_db)
    env = {
        "PAYSTREAM_STATE_DIR": str(tmp_path / "state"),
        "PAYSTREAM_PG_DATABASE": fresh_db.pg_database,
    }
    first = paystream(env, "chain", "deploy")
    assert first.returncode == 0, first.stderr
    with connect(fresh_db) as conn:
        conn.execute(
            "INSERT INTO payment_claims (payment_id, payer_account, request_digest, partition,"
            " sequence) VALUES (%s, 'alice', 'digest', 0, 1)",
            (uuid.uuid4(),),
        )
    recorded = next((tmp_path / "state").rglob("deployment*.json"))
    stale = {**json.loads(recorded.read_text()), "code_version": "older-sources"}
    recorded.write_text(json.dumps(stale))  # the engine was built from newer contracts

    assert_one_line_fix(paystream(env, "chain", "deploy"), "have no outcome yet")
    assert json.loads(recorded.read_text())["code_version"] == "older-sources"  # untouched
    forced = paystream(env, "chain", "deploy", "--force")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["settlement"] != stale["settlement"]
