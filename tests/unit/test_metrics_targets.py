"""A worker is a Prometheus target while it runs, through the local
Prometheus's targets directory, and only when there is one."""

from __future__ import annotations

import json
from pathlib import Path

from services.metrics.targets import registered, targets_dir
from services.settings import Settings


def test_a_worker_is_a_target_while_it_runs(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    targets_dir(settings).mkdir(parents=True)
    with registered(settings, "worker-6067", "127.0.0.1:6067") as path:
        assert path is not None
        assert json.loads(path.read_text()) == [{"targets": ["127.0.0.1:6067"]}]
        assert [p.name for p in targets_dir(settings).iterdir()] == ["worker-6067.json"]
    assert list(targets_dir(settings).iterdir()) == []


def test_the_target_goes_when_the_worker_exits(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    targets_dir(settings).mkdir(parents=True)
    try:
        with registered(settings, "worker-6066", "127.0.0.1:6066"):
            raise SystemExit(1)
    except SystemExit:
        pass
    assert list(targets_dir(settings).iterdir()) == []


def test_without_a_local_prometheus_nothing_is_written(tmp_path: Path) -> None:
    with registered(Settings(state_dir=tmp_path), "worker-6066", "127.0.0.1:6066") as path:
        assert path is None
    assert list(tmp_path.iterdir()) == []
