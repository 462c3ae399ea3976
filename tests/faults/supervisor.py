"""Worker and sink processes under a supervisor, as in production.

A scenario kills processes on purpose (SIGKILL: no shutdown, no commit) and
restarts them when it chooses. A process that dies on its own (a crash the
fault provoked, e.g. a Faust timer that raised) is restarted by the
supervisor's thread, as systemd or Kubernetes would, with a growing back-off,
and counted: a crash is not a violation by itself, but a process that never
comes back leaves payments without an outcome, which the checker reports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

from devtools.harness.process import CliProcess
from devtools.stack.errors import StackError

log = logging.getLogger("tests.faults")

POLL_S = 0.5
READY_TIMEOUT_S = 120.0
BACKOFF_MAX_S = 8.0


@dataclass
class Child:
    """One supervised process: ``make`` builds a fresh ``CliProcess`` per start
    (all of them append to the same log file)."""

    name: str
    make: Callable[[], CliProcess]
    process: CliProcess | None = None
    wanted: bool = False  # the supervisor restarts it if it exits
    kills: int = 0
    crashes: list[int] = field(default_factory=list)  # exit codes of unplanned exits
    not_before: float = 0.0  # monotonic time before which it is not restarted

    @property
    def exit_code(self) -> int | None:
        proc = self.process.process if self.process is not None else None
        return None if proc is None else proc.poll()

    @property
    def alive(self) -> bool:
        return (
            self.process is not None
            and self.process.process is not None
            and (self.exit_code is None)
        )


class Supervisor:
    """Starts, kills, stops and watches the children of one scenario."""

    def __init__(self, mark: Callable[[str], None] = lambda _: None) -> None:
        self.mark = mark  # notes a step in the scenario's timeline
        self.children: dict[str, Child] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def add(self, name: str, make: Callable[[], CliProcess]) -> Child:
        child = self.children[name] = Child(name, make)
        return child

    def start(self, name: str, ready_timeout_s: float = READY_TIMEOUT_S) -> bool:
        """Start a child and keep it running; True once it is ready (False if it
        was not within ``ready_timeout_s``: the supervisor keeps trying)."""
        with self._lock:
            child = self.children[name]
            child.wanted = True
            child.not_before = 0.0
            self._spawn(child)
        ready = self.wait_ready(name, ready_timeout_s)
        self.mark(f"started {name}" + ("" if ready else " (not ready yet)"))
        return ready

    def wait_ready(self, name: str, timeout_s: float) -> bool:
        child = self.children[name]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            process = child.process
            if child.alive and process is not None and process.ready():
                return True
            time.sleep(0.5)
        log.warning("%s was not ready within %.0f s", name, timeout_s)
        return False

    def kill(self, name: str) -> None:
        """SIGKILL a child; it stays down until ``start``."""
        with self._lock:
            child = self.children[name]
            child.wanted = False
            if child.process is not None:
                child.process.kill()
            child.kills += 1
        self.mark(f"SIGKILLed {name}")

    def stop(self, name: str) -> None:
        """Stop a child gracefully (SIGTERM); it stays down until ``start``."""
        with self._lock:
            child = self.children[name]
            child.wanted = False
            if child.process is not None:
                child.process.stop(timeout_s=30)
        self.mark(f"stopped {name}")

    def stop_all(self) -> None:
        """Stop the watcher, then every child (SIGTERM, then SIGKILL)."""
        self._stop.set()
        self._thread.join(timeout=30)
        with self._lock:
            for child in self.children.values():
                child.wanted = False
                if child.process is not None:
                    child.process.stop(timeout_s=15)

    def summary(self) -> dict[str, dict[str, object]]:
        """Per child: the kills the scenario made and the exit codes of its crashes."""
        return {c.name: {"kills": c.kills, "crashes": c.crashes} for c in self.children.values()}

    def _spawn(self, child: Child) -> None:
        """Start the process without waiting for it to be ready."""
        child.process = child.make()
        with suppress(StackError):  # not ready yet, or exited: the watcher sees the latter
            child.process.start(timeout_s=0.01)

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            with self._lock:
                for child in self.children.values():
                    if child.wanted and not child.alive and child.process is not None:
                        self._restart(child)

    def _restart(self, child: Child) -> None:
        now = time.monotonic()
        if child.not_before == 0.0:  # first look at this exit
            code = child.exit_code
            child.crashes.append(-1 if code is None else code)
            backoff = min(BACKOFF_MAX_S, 0.5 * 2 ** min(len(child.crashes), 5))
            child.not_before = now + backoff
            self.mark(f"{child.name} exited ({code}): restarting it in {backoff:.1f} s")
        if now >= child.not_before:
            child.not_before = 0.0
            self._spawn(child)
