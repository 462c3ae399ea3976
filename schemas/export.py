"""JSON Schema of every record, exported to docs/schemas/ (``python -m schemas.export``);
tests/unit/test_schemas.py fails when the files are stale."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas.chain import DEPOSIT_RECORD, ChainEvents, ReconciliationAlert
from schemas.payments import (
    BatchSubmitted,
    DeadLetter,
    PaymentFailed,
    PaymentFinalized,
    PaymentReorged,
    PaymentRequested,
    PaymentScored,
    PaymentSettled,
)
from schemas.review import ReviewDecision, ReviewHeld

DOCS = Path(__file__).resolve().parent.parent / "docs" / "schemas"

MODELS: dict[str, type[BaseModel]] = {
    "payments.requested": PaymentRequested,
    "fraud.scored": PaymentScored,
    "chain.submitted": BatchSubmitted,
    "payments.settled": PaymentSettled,
    "payments.failed": PaymentFailed,
    "payments.dlq": DeadLetter,
    "reconciliation.alerts": ReconciliationAlert,
    "payments.review": ReviewHeld,
    "review.decisions": ReviewDecision,
    "payments.reorged": PaymentReorged,
    "payments.finalized": PaymentFinalized,
}


def schemas() -> dict[str, dict[str, Any]]:
    out = {topic: model.model_json_schema() for topic, model in MODELS.items()}
    out["chain.events"] = ChainEvents.model_json_schema()
    out["deposits.credited"] = DEPOSIT_RECORD.json_schema()
    return out


def render() -> dict[str, str]:
    return {
        f"{t}.json": json.dumps(s, indent=2, sort_keys=True) + "\n" for t, s in schemas().items()
    }


def main() -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (DOCS / name).write_text(text)
        print(f"wrote docs/schemas/{name}")


if __name__ == "__main__":
    main()
