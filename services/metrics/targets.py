"""Prometheus finds the workers by file: each worker writes its ``/metrics``
address into the local Prometheus's targets directory while it runs
(Prometheus's file-based service discovery), so every worker is scraped,
whatever port it was started on.

The directory is ``<state_dir>/prometheus/targets``, made by ``paystream stack
up`` when it starts Prometheus; a worker whose state directory has none (a
deployment with its own Prometheus, or a test pipeline) registers nothing. A
worker that stops removes its file: Prometheus forgets it. One that dies
(SIGKILL, or an exit code the runbook lists) leaves it: Prometheus keeps
asking, and ``TargetDown`` fires until it is back on the same port.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.settings import Settings


def targets_dir(settings: Settings) -> Path:
    """Where Prometheus looks for ``*.json`` target files (``file_sd_configs``)."""
    return settings.state_dir / "prometheus" / "targets"


@contextmanager
def registered(settings: Settings, name: str, address: str) -> Iterator[Path | None]:
    """``address`` (host:port of a ``/metrics``) is a target while the block
    runs; the file written (None: no local Prometheus to tell)."""
    directory = targets_dir(settings)
    if not directory.is_dir():
        yield None
        return
    path = directory / f"{name}.json"
    partial = path.with_suffix(".partial")  # not *.json: Prometheus never reads half a file
    partial.write_text(json.dumps([{"targets": [address]}]))
    partial.replace(path)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def worker_addresses(settings: Settings) -> list[str]:
    """The web addresses (host:port) of the running workers: those registered
    here, and the settings' own worker port (a worker that registers nothing)."""
    found = [f"{settings.host}:{settings.worker_web_port}"]
    directory = targets_dir(settings)
    for path in sorted(directory.glob("worker-*.json")) if directory.is_dir() else []:
        try:
            groups = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being replaced, or removed since it was listed
        for group in groups if isinstance(groups, list) else []:
            found += [str(t) for t in group.get("targets", []) if isinstance(group, dict)]
    return list(dict.fromkeys(found))
