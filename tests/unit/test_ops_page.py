"""What the ops page shows of a dead letter: never a quoted value."""

from __future__ import annotations

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
