"""``paystream bench``: a SIGTERM unwinds a run like Ctrl-C, so the processes it
started (worker, sink, its own anvil) are stopped by its ``finally`` blocks
instead of being left running."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from paystream.cli.bench import bench
from services.settings import Settings


@pytest.fixture
def sigterm_restored() -> Iterator[None]:
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


@pytest.mark.usefixtures("sigterm_restored")
def test_a_sigterm_during_any_bench_command_unwinds_with_its_exit_status() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    result = CliRunner().invoke(bench, ["load", "--rate", "0"], obj=Settings())
    assert result.exit_code == 2  # the usage error: it stopped before starting anything
    handler = signal.getsignal(signal.SIGTERM)
    assert callable(handler)
    with pytest.raises(SystemExit) as stopped:
        handler(signal.SIGTERM, None)
    assert stopped.value.code == 128 + signal.SIGTERM
