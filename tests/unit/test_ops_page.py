"""What the ops page shows: a dead letter never with a quoted value, the
success rate with its interval."""

from __future__ import annotations

from paystream.gateway.ops import success_of
from services.metrics.stats import wilson
from streams.ops.dead_letters import redact


def test_quoted_values_and_pydantic_inputs_are_redacted() -> None:
    error = (
        "1 validation error for PaymentRequested\npayer_account\n  String should match "
        "pattern [type=string_pattern_mismatch, input_value='alice@example.com', "
        "input_type=str]\n  more\n  and more"
    )
    shown = redact(error)
    assert "alice" not in shown and "example.com" not in shown
    assert shown.startswith("1 validation error for PaymentRequested payer_account")
    assert "and more" not in shown  # the first three lines only
    assert redact('bad "secret-token" here') == "bad '…' here"
    assert len(redact("x" * 1000)) == 200


def test_the_success_rate_comes_with_its_wilson_interval_from_the_counts() -> None:
    panels = {
        "settlements_5m": {"values": [{"labels": {}, "value": 263.0}]},
        "settled_ok_5m": {"values": [{"labels": {}, "value": 81.0}]},
    }
    success = success_of(panels)
    assert (success["ok"], success["decided"]) == (81, 263)
    assert success["ci95"] == list(wilson(81, 263))
    assert success_of({})["rate"] is None  # nothing decided in 5 minutes: no rate
