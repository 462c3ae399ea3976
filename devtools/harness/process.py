"""``paystream ARGS...`` as a child process, its output in a log file: the one
wrapper for every process the demo, the bench and the tests start (the worker,
the ledger sink, the approval signer and the merchant gateway here; the bench's
hop and no-op Faust workers build on ``CliProcess`` in ``devtools/bench/``).

A child runs in its own session, so a SIGINT to the driver's terminal does not
reach it; ``stop`` sends SIGTERM and waits, then SIGKILLs, and ``kill`` is the
crash the fault tests need.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from devtools.stack.errors import StackError
from devtools.stack.process import port_open
from services.settings import Settings

CLI = "from paystream.cli import main; main()"


class CliProcess(ABC):
    """``paystream ARGS...`` as a child process in its own session."""

    def __init__(self, settings: Settings, log: Path, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.log = log
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    @abstractmethod
    def command(self) -> tuple[str, ...]:
        """The ``paystream`` arguments."""

    def ready(self) -> bool:
        return True

    def start(self, timeout_s: float = 90.0) -> Any:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", CLI, *self.command()],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StackError(
                    f"{self.command()[0]} exited ({self.process.returncode}); see {self.log}"
                )
            if self.ready():
                return self
            time.sleep(0.5)
        raise StackError(f"{self.command()[0]} was not ready in {timeout_s:.0f} s; see {self.log}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no commit (a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class SinkProcess(CliProcess):
    def command(self) -> tuple[str, ...]:
        return ("sink",)


class SignerProcess(CliProcess):
    """``paystream signer``: ready once its port answers."""

    def command(self) -> tuple[str, ...]:
        return ("signer",)

    def ready(self) -> bool:
        return port_open(self.settings.host, self.settings.signer_port)


class GatewayProcess(CliProcess):
    """``paystream gateway``: ready once ``/healthz`` answers."""

    def command(self) -> tuple[str, ...]:
        return ("gateway", "--port", str(self.settings.gateway_port))

    def ready(self) -> bool:
        url = f"http://{self.settings.host}:{self.settings.gateway_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False


class WorkerProcess(CliProcess):
    def command(self) -> tuple[str, ...]:
        return ("worker", "-l", "info", "--web-port", str(self.settings.worker_web_port))

    def ready(self) -> bool:
        return self.balance("-") is not None

    def wait_credited(
        self,
        accounts: list[str],
        amount: int,
        timeout_s: float,
        others: Sequence[WorkerProcess] = (),
    ) -> None:
        """Wait until each account has at least ``amount`` available (its deposit was
        confirmed and credited); StackError after ``timeout_s``. With several
        workers (``others``), each knows only the accounts of its partitions."""
        workers = (self, *others)
        deadline = time.monotonic() + timeout_s
        waiting = set(accounts)
        while waiting and time.monotonic() < deadline:
            waiting = {
                a
                for a in waiting
                if all((w.balance(a) or {}).get("available", 0) < amount for w in workers)
            }
            if waiting:
                time.sleep(0.5)
        if waiting:
            raise StackError(
                f"{len(waiting)} deposits were not credited within "
                f"{timeout_s:.0f} s, e.g. {sorted(waiting)[:3]}"
            )

    def balance(self, account: str) -> dict[str, int] | None:
        """The worker's view of an account's balance (None if it does not answer)."""
        data: dict[str, int] | None = self.get_json(f"/balances/{account}/")
        return data

    def get_json(self, path: str) -> Any:
        """GET a path of the worker's web view as JSON (None if it does not answer)."""
        try:
            return json.loads(self.get_text(path))
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def table_entries(self, table: str) -> int | None:
        """The size of one of the worker's tables (``paystream_table_entries``)."""
        pattern = rf'^paystream_table_entries{{table="{table}"}} (\S+)$'
        found = re.search(pattern, self.get_text("/metrics"), re.M)
        return int(float(found.group(1))) if found else None

    def get_text(self, path: str) -> str:
        url = f"http://{self.settings.host}:{self.settings.worker_web_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
