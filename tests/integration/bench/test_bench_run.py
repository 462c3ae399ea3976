"""A smoke-sized ``paystream bench run``: the harness runs end to end on the real
stack and its numbers are present and sane (not fast: speed lives in
``make bench``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from devtools.bench.pipeline import BenchPlan
from devtools.bench.report import TARGETS, markdown
from devtools.bench.run import Outputs, run_bench
from services.settings import Settings

pytestmark = pytest.mark.integration

SMOKE = BenchPlan(
    payers=20,
    payees=5,
    saturation_count=300,
    step_s=2.0,
    max_steps=2,
    final_s=3.0,
    drain_timeout_s=120.0,
    warmup_count=20,
    raw_records=2_000,
    faust_records=1_000,
    baseline_repeats=1,
)


@pytest.mark.timeout(900)
def test_a_smoke_run_reports_every_number(stack_healthy: Settings, tmp_path: Path) -> None:
    outputs = Outputs(tmp_path / "result.json", tmp_path / "result.png", record=False)
    result = run_bench(stack_healthy, SMOKE, "smoke", outputs, Console(stderr=True))

    assert json.loads(outputs.json_path.read_text()) == result
    assert outputs.png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for key in ("payments_per_s", "raw_4hop_per_s", "faust_noop_per_s"):
        assert result[key] > 0, key
    assert result["ratios"]["pipeline_vs_raw"] == pytest.approx(
        result["payments_per_s"] / result["raw_4hop_per_s"], rel=0.01
    )
    # every payment of every phase was funded and valid: all settle, none lost
    assert result["missing"] == 0 and result["dlq_count"] == 0
    assert result["success_rate"] == 1.0
    low, high = result["success_rate_95ci"]
    assert 0.9 < low < 1.0 and high == pytest.approx(1.0)
    latency = result["latency_ms"]
    for stage in ("scored", "submitted", "settled"):
        q = latency[stage]
        assert 0 <= q["p50"] <= q["p95"] <= q["p99"] <= q["p99_9"], stage
    # Each payment is scored before it is submitted or settled, and every stage's
    # quantiles are over the same payments (those seen at every stage), so that
    # order holds exactly. Submitted and settled have no order: a batch's
    # chain.submitted records are stamped once its submitter has checked the
    # mined transaction, and the chain listener may record the settlement first.
    for q in ("p50", "p95", "p99", "p99_9"):
        assert latency["scored"][q] <= latency["submitted"][q], q
        assert latency["scored"][q] <= latency["settled"][q], q
    assert 5_000 < result["gas_per_payment"] < 100_000
    assert result["onchain_transactions"] >= 1
    usage = result["processes"]["saturation"]
    assert {"worker", "sink", "bench", "kafka"} <= set(usage)
    assert all(u["rss_mib"] > 0 for u in usage.values())
    assert set(result["targets"]) == set(TARGETS)
    assert "| target | measured | target | met |" in markdown(result, None)
