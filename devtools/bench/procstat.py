"""CPU and memory of the processes under test, sampled while a benchmark runs."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

import psutil


@dataclass
class _Track:
    process: psutil.Process
    family: list[psutil.Process]  # the process and its children when sampling began
    cpu_start_s: float
    rss_max: int = 0
    cpu_end_s: float | None = None


@dataclass
class ProcessSampler:
    """Samples named processes every ``interval_s`` in a background thread.

    ``usage()`` gives, per name, the average CPU in percent of one core over the
    sampled time and the peak resident memory in MiB. A process that exits keeps
    the figures of its last sample.
    """

    pids: dict[str, int]
    interval_s: float = 0.5
    _tracks: dict[str, _Track] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = 0.0
    _elapsed: float = 0.0

    def __enter__(self) -> ProcessSampler:
        tracked = set(self.pids.values())
        for name, pid in self.pids.items():
            try:
                process = psutil.Process(pid)
                # its children too (Kafka's JVM under its launcher), but not those
                # tracked under their own name (the bench's worker and sink)
                family = [process, *_children(process, tracked)]
                self._tracks[name] = _Track(process, family, _cpu_s(family))
            except psutil.Error:
                continue
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="procstat", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sample()
        self._elapsed = time.monotonic() - self._started

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        for track in self._tracks.values():
            try:
                track.cpu_end_s = _cpu_s(track.family)
                track.rss_max = max(track.rss_max, track.process.memory_info().rss)
            except psutil.Error:
                continue  # exited: keep the last sample

    def usage(self) -> dict[str, dict[str, float]]:
        elapsed = self._elapsed or (time.monotonic() - self._started)
        return {
            name: {
                "cpu_percent": round(
                    100 * ((t.cpu_end_s or t.cpu_start_s) - t.cpu_start_s) / max(elapsed, 1e-9), 1
                ),
                "rss_mib": round(t.rss_max / 2**20, 1),
            }
            for name, t in self._tracks.items()
        }


def _children(process: psutil.Process, tracked: set[int]) -> list[psutil.Process]:
    found = []
    for child in process.children():
        if child.pid not in tracked:
            found += [child, *_children(child, tracked)]
    return found


def _cpu_s(family: list[psutil.Process]) -> float:
    """User + system CPU seconds of a process and its children (e.g. Kafka's JVM
    under its launcher)."""
    total = 0.0
    for p in family:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total
