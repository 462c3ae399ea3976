"""The end of every scenario: bring the pipeline to rest, read the facts from
the real sources, check the invariants, and print the report (pytest shows it
with a failure, and with ``-rx`` for an expected one)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

from devtools.harness.load import LoadGenerator, Sent
from tests.faults.invariants import Violation, check, describe
from tests.faults.pipeline import STALL_S, FaultPipeline
from tests.faults.plan import SCALE, SEED
from tests.faults.sources import TopicFacts, gather, stuck_states


@contextmanager
def publishing(load: LoadGenerator, rate_per_s: float, count: int) -> Iterator[Future[Sent]]:
    """Publish in the background while the block injects faults."""
    with ThreadPoolExecutor(1, thread_name_prefix="load") as pool:
        yield pool.submit(load.publish, rate_per_s, None, count)


def verdict(
    pipeline: FaultPipeline,
    ids: list[str],
    timeout_s: float,
    earlier: TopicFacts | None = None,
    stall_s: float = STALL_S,
) -> tuple[list[Violation], str]:
    """The violations once the pipeline is at rest (the outcomes of ``ids``
    in), and the report to show. Every request on the topics is checked."""
    notes = pipeline.rest(ids, timeout_s, stall_s)
    facts = gather(pipeline.settings, pipeline.env, earlier)
    violations = check(facts)
    stuck = {v.detail.split(" ", 1)[0] for v in violations if v.kind == "no_outcome"}
    if stuck:
        notes += [f"no outcome, last state: {s}" for s in stuck_states(pipeline.settings, stuck)]
    pipeline.mark("checked")
    report = "\n".join(
        [
            describe(violations),
            *(f"note: {n}" for n in notes),
            f"payments {len(ids)}, processes {pipeline.supervisor.summary()}, "
            f"proxy faults {dict(pipeline.proxy.seen)}",
            f"reconcile counts {(facts.reconcile.report or {}).get('counts')}",
            "timeline:",
            *pipeline.timeline,
            f"logs {pipeline.logs}; PAYSTREAM_FAULTS_SEED={SEED} PAYSTREAM_FAULTS_SCALE={SCALE}",
        ]
    )
    print(report)
    pipeline.logs.mkdir(parents=True, exist_ok=True)
    (pipeline.logs / "verdict.txt").write_text(report + "\n")  # kept with the logs
    return violations, report


def assert_invariants(
    pipeline: FaultPipeline,
    ids: list[str],
    timeout_s: float,
    earlier: TopicFacts | None = None,
    stall_s: float = STALL_S,
) -> None:
    violations, report = verdict(pipeline, ids, timeout_s, earlier, stall_s)
    assert not violations, report
