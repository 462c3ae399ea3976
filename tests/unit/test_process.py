"""The process plumbing of the local stack, with real child processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devtools.stack.errors import MissingDependency, StackError
from devtools.stack.process import PidFile, pid_alive, run, spawn, tail, wait_until


def _sleeper(marker: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])


def test_pidfile_stops_only_the_process_it_recorded(tmp_path: Path) -> None:
    ours = _sleeper("paystream-test-marker")
    try:
        pidfile = PidFile(tmp_path / "svc.pid", marker="paystream-test-marker")
        pidfile.write(ours.pid)
        assert pidfile.read() == ours.pid
        assert pidfile.stop(timeout_s=5) is True
        ours.wait(timeout=5)
        assert not pidfile.path.exists()
        assert pidfile.stop(timeout_s=5) is False
    finally:
        ours.kill()


def test_pidfile_ignores_a_pid_reused_by_another_process(tmp_path: Path) -> None:
    stranger = _sleeper("somebody-else")
    try:
        pidfile = PidFile(tmp_path / "svc.pid", marker="paystream-test-marker")
        pidfile.write(stranger.pid)
        assert pidfile.read() is None
        assert pidfile.stop(timeout_s=1) is False
        assert stranger.poll() is None  # not signalled
    finally:
        stranger.kill()
        stranger.wait()


def test_pidfile_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    stubborn = subprocess.Popen([sys.executable, "-c", code, "stubborn-marker"])
    try:
        pidfile = PidFile(tmp_path / "svc.pid", marker="stubborn-marker")
        pidfile.write(stubborn.pid)
        assert pidfile.stop(timeout_s=0.5) is True
        assert stubborn.wait(timeout=5) != 0
    finally:
        stubborn.kill()


def test_wait_until_reports_the_log_when_the_service_dies(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    pid = spawn([sys.executable, "-c", "print('bind: address already in use')"], log=log)
    with pytest.raises(StackError, match="exited") as info:
        wait_until(lambda: False, timeout_s=10, what="svc", log=log, alive=lambda: pid_alive(pid))
    assert "address already in use" in str(info.value)


def test_wait_until_times_out_with_a_clear_message() -> None:
    with pytest.raises(StackError, match="not ready within"):
        wait_until(lambda: False, timeout_s=0.3, what="svc", interval_s=0.05)


def test_run_names_a_missing_program_and_a_failing_one() -> None:
    with pytest.raises(MissingDependency, match="no-such-program"):
        run(["no-such-program-paystream"], what="probe", timeout_s=5)
    with pytest.raises(StackError, match=r"exit 3"):
        run([sys.executable, "-c", "import sys; sys.exit(3)"], what="probe", timeout_s=5)


def test_tail_returns_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert tail(log, 3) == "line 97\nline 98\nline 99"
    assert "no log" in tail(tmp_path / "missing.log")
