"""Fixtures of the fault suite: a scenario's pipeline (``faults.pipeline``),
the shared stack started again after every scenario whatever happened, and the
seed printed with every failure."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.settings import Settings
from tests.faults.pipeline import FaultPipeline, fault_pipeline
from tests.faults.plan import SCALE, SEED, scenario_rng
from tests.faults.stack import restore_stack


@dataclass
class Faults:
    """Builds the pipelines of one scenario; they are torn down after it."""

    base: Settings
    where: Path
    name: str
    stack: ExitStack
    built: int = 0

    def pipeline(self, **overrides: object) -> FaultPipeline:
        rng = scenario_rng(self.name)
        self.built += 1
        where = self.where / f"pipeline-{self.built}"
        return self.stack.enter_context(fault_pipeline(self.base, where, rng, **overrides))


@pytest.fixture
def faults(
    stack_healthy: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Faults]:
    print(f"fault scenario {request.node.name}: PAYSTREAM_FAULTS_SEED={SEED} scale {SCALE}")
    try:
        with ExitStack() as stack:
            yield Faults(stack_healthy, tmp_path, request.node.name, stack)
    finally:
        restarted = restore_stack(stack_healthy)
        if restarted:
            print(f"started again after the scenario: {restarted}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """Name the seed (and scale) in every failed scenario's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        report.sections.append(
            ("fault seed", f"PAYSTREAM_FAULTS_SEED={SEED} PAYSTREAM_FAULTS_SCALE={SCALE}")
        )
