"""What the approval signer approved in the last 24 hours, kept on disk.

One JSON line per batch approved (its payments' hash, total and time),
flushed and fsynced before the signatures leave the signer, so a restart
neither forgets what the daily cap already counts nor counts a batch twice.
Lines older than the window are dropped when the journal is opened.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DAY_S = 24 * 3600


@dataclass(frozen=True)
class Approval:
    payments_hash: str
    total: int
    at: float  # unix seconds


class ApprovalJournal:
    def __init__(self, path: Path, clock: Callable[[], float], window_s: int = DAY_S) -> None:
        self.path = path
        self.clock = clock
        self.window_s = window_s
        self._approvals: dict[str, Approval] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    a = Approval(**json.loads(line))
                    self._approvals[a.payments_hash] = a
        self._prune()
        self._rewrite()

    def _prune(self) -> None:
        horizon = self.clock() - self.window_s
        self._approvals = {h: a for h, a in self._approvals.items() if a.at > horizon}

    def _rewrite(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as f:
            for a in self._approvals.values():
                f.write(json.dumps(a.__dict__) + "\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)

    def approved(self, payments_hash: str) -> bool:
        self._prune()
        return payments_hash in self._approvals

    def spent(self) -> int:
        """The total of the distinct batches approved within the window."""
        self._prune()
        return sum(a.total for a in self._approvals.values())

    def record(self, payments_hash: str, total: int) -> None:
        approval = Approval(payments_hash, total, self.clock())
        with self.path.open("a") as f:
            f.write(json.dumps(approval.__dict__) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._approvals[payments_hash] = approval
