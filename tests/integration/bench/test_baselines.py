"""The throughput baselines run end to end on the stack's Kafka: every timed
record arrives on T4 exactly once, the processes were sampled, and the run's
topics are gone afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from devtools.bench.baselines import BaselineResult, run_faust_noop, run_raw_4hop
from services.settings import Settings

pytestmark = pytest.mark.integration

RECORDS = 2_000


@pytest.fixture
def bench_settings(stack_healthy: Settings, tmp_path: Path) -> Settings:
    """The stack's Kafka, with logs and Faust data in a scratch state dir."""
    return stack_healthy.model_copy(update={"state_dir": tmp_path / "state"})


def _listed(settings: Settings) -> set[str]:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    return set(admin.list_topics(timeout=30).topics)


def _check(result: BaselineResult, settings: Settings, name: str, processes: set[str]) -> None:
    assert result.name == name
    assert result.records == RECORDS
    assert result.duplicates == 0
    assert result.seconds > 0
    assert result.per_s == pytest.approx(RECORDS / result.seconds)
    assert set(result.processes) == processes
    for usage in result.processes.values():
        assert usage["rss_mib"] > 0
    hops = [t.rsplit("-", 1)[1] for t in result.topics if t.rsplit("-", 1)[1].startswith("t")]
    assert hops == ["t0", "t1", "t2", "t3", "t4"]
    run_prefix = "-".join(result.topics[0].split("-")[:2]) + "-"  # bench-<run>-
    assert all(t.startswith(run_prefix) for t in result.topics)
    assert not [t for t in _listed(settings) if t.startswith(run_prefix)]


def test_raw_4hop_passes_every_record(bench_settings: Settings) -> None:
    arrived: list[int] = []

    result = run_raw_4hop(bench_settings, RECORDS, progress=arrived.append)

    assert sum(arrived) == RECORDS
    _check(result, bench_settings, "raw_4hop", {"hop1", "hop2", "hop3", "hop4"})


def test_faust_noop_passes_every_record(bench_settings: Settings) -> None:
    arrived: list[int] = []

    result = run_faust_noop(bench_settings, RECORDS, record_bytes=400, progress=arrived.append)

    assert sum(arrived) == RECORDS
    _check(result, bench_settings, "faust_noop", {"worker"})
    assert any(t.endswith("__assignor-__leader") for t in result.topics)
    leftover = bench_settings.state_dir / "bench"
    assert not leftover.exists() or not any(leftover.iterdir())  # Faust's datadir removed
