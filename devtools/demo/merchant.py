"""The demo's merchant: registered with an API key, granted mandates by the
demo's payers, it collects payments through the gateway's REST API (with
idempotency keys) and follows each until it ends. Its key is written to
``.state/demo-merchant.json`` (mode 600) for trying ``docs/api.md`` by hand."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from devtools.harness.merchant import register_merchant
from services.settings import Settings

ENDED = ("finalized", "failed", "rejected")


def collect_through_gateway(
    settings: Settings,
    payers: list[str],
    count: int,
    timeout_s: float,
    progress: Callable[[int], None],
) -> dict[str, Any]:
    """Create ``count`` payments over REST and wait until each has ended."""
    merchant = register_merchant(settings, payers, "Demo Shop")
    path = settings.state_dir / "demo-merchant.json"
    secret = json.dumps({"merchant_id": merchant.merchant_id, "api_key": merchant.api_key})
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(secret)
    path.chmod(0o600)  # a file left by an earlier run
    ids = {merchant.create(payers[i % len(payers)], 1_000 + i)["id"] for i in range(count)}
    deadline = time.monotonic() + timeout_s
    ended: dict[str, dict[str, Any]] = {}
    while len(ended) < count and time.monotonic() < deadline:
        for payment in merchant.all_payments():
            if payment["id"] in ids and payment["status"] in ENDED and payment["id"] not in ended:
                ended[payment["id"]] = payment
                progress(1)
        time.sleep(0.5)
    return {
        "merchant_id": merchant.merchant_id,
        "created": count,
        "by_status": dict(Counter(p["status"] for p in ended.values())),
        "not_ended": count - len(ended),
        "key_file": str(path),
    }
