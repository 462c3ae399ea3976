"""``paystream gateway --workers 2``: two uvicorn processes on one port, each
with its own connections, answer payments; ``/metrics`` counts the requests
of both (prometheus-client's multiprocess files), and SIGTERM stops both."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest

from devtools.harness.isolated import free_port
from devtools.harness.process import GatewayProcess
from services.settings import Settings
from tests.support.gateway import grant, new_shop

pytestmark = pytest.mark.integration
POSTED = re.compile(
    r'^paystream_gateway_requests_total\{method="POST",route="/v1/payments",status="202"\} (\S+)$',
    re.MULTILINE,
)


def _serving(directory: Path) -> set[str]:
    """The processes that have counted a request (one metrics file each)."""
    return {p.stem.split("_")[-1] for p in directory.glob("counter_*.db")}


def test_two_workers_answer_on_one_port_and_count_together(
    gw_settings: Settings, tmp_path: Path
) -> None:
    settings = gw_settings.model_copy(update={"gateway_port": free_port(gw_settings.host)})
    env = {
        "PAYSTREAM_PG_DATABASE": settings.pg_database,
        "PAYSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "PAYSTREAM_APP_ID": settings.app_id,
        "PAYSTREAM_ADMISSION_LAG_MAX_S": str(settings.admission_lag_max_s),
        "PAYSTREAM_GATEWAY_WORKERS": "2",
    }
    metrics_dir = settings.state_dir / "gateway" / f"metrics-{settings.gateway_port}"
    shop = new_shop(settings)
    account = f"gw-{uuid.uuid4().hex[:10]}"
    grant(settings, account, shop)
    url = f"http://{settings.host}:{settings.gateway_port}"
    with GatewayProcess(settings, tmp_path / "gateway.log", env) as gateway:
        posted = 0
        # A new connection each time: the kernel hands them to either process.
        while len(_serving(metrics_dir)) < 2 and posted < 400:
            headers = shop.headers | {
                "Idempotency-Key": f"w-{uuid.uuid4()}",
                "Connection": "close",
            }
            body = {"payer_account": account, "amount": 100 + posted, "currency": "PTUSD"}
            answer = httpx.post(f"{url}/v1/payments", json=body, headers=headers, timeout=30)
            assert answer.status_code == 202, answer.text
            posted += 1
        assert len(_serving(metrics_dir)) == 2  # both processes answered some
        exposition = httpx.get(f"{url}/metrics", timeout=30).text
        counted = POSTED.search(exposition)
        assert counted is not None and float(counted.group(1)) == posted
        gateway.stop()
        assert gateway.process is not None and gateway.process.returncode == 0
