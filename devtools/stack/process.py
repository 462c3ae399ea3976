"""Process plumbing for the local stack: pid files, waiting, commands, packages.

A service's process is known only by the pid the stack recorded when it started
it; stopping sends signals to that pid (after checking that the process still
belongs to this stack) and never looks processes up by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from devtools.stack.errors import MissingDependency, StackError


def is_root() -> bool:
    return os.geteuid() == 0


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file, or a note that there is none."""
    if not path.exists():
        return f"(no log at {path})"
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 64 * 1024))
        data = fh.read().decode("utf-8", errors="replace")
    return "\n".join(data.splitlines()[-lines:])


def run(
    argv: Sequence[str],
    *,
    what: str,
    timeout_s: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Run a command to completion; raise StackError with its output on failure."""
    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError as exc:
        raise MissingDependency(f"{what}: program {argv[0]!r} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{what}: no result within {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()[-25:]
        raise StackError(f"{what} failed (exit {done.returncode}):\n" + "\n".join(output))
    return done.stdout


def ensure_program(program: str, debian_package: str) -> str:
    """The path of a program, installing its Debian package when it is missing."""
    found = shutil.which(program)
    if found:
        return found
    apt_install([debian_package])
    found = shutil.which(program)
    if not found:
        raise MissingDependency(
            f"{program} is still missing after installing {debian_package}; "
            f"check `apt-cache policy {debian_package}`"
        )
    return found


def apt_install(packages: Sequence[str]) -> None:
    """Install Debian packages (as root), or explain the command to run."""
    names = " ".join(packages)
    if not is_root() or not shutil.which("apt-get"):
        raise MissingDependency(
            f"missing Debian package(s) {names}: install them with "
            f"`sudo apt-get update && sudo apt-get install -y {names}`"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Installs are rare (only what is missing), so the package lists are refreshed each time.
    run(["apt-get", "update"], what="apt-get update", timeout_s=600, env=env)
    run(
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
        what=f"apt-get install {names}",
        timeout_s=900,
        env=env,
    )


def wait_until(
    check: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    log: Path | None = None,
    alive: Callable[[], bool] | None = None,
    interval_s: float = 0.25,
) -> None:
    """Poll ``check`` until it is true; fail with the log's tail on timeout or death."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            break
        time.sleep(interval_s)
    else:
        reason = f"{what}: not ready within {timeout_s:.0f} s"
        raise StackError(reason + (f"; last lines of {log}:\n{tail(log)}" if log else ""))
    reason = f"{what}: the process exited"
    raise StackError(reason + (f"; last lines of {log}:\n{tail(log)}" if log else ""))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) counts as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
    return True


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace")


class PidFile:
    """The pid of one process the stack started, checked against its command line.

    ``marker`` is a string the process's command line must contain (for example
    its data directory), so that a pid reused by an unrelated process after a
    reboot is never signalled.
    """

    def __init__(self, path: Path, marker: str) -> None:
        self.path = path
        self.marker = marker

    def read(self) -> int | None:
        """The recorded pid if that process is alive and still ours."""
        try:
            pid = int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if pid_alive(pid) and self.marker in cmdline(pid):
            return pid
        return None

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{pid}\n")

    def stop(self, *, timeout_s: float, sig: signal.Signals = signal.SIGTERM) -> bool:
        """Signal the process and wait; SIGKILL after the timeout. True if it ran."""
        pid = self.read()
        if pid is None:
            self.path.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while pid_alive(pid):
                time.sleep(0.05)
        self.path.unlink(missing_ok=True)
        return True


def spawn(argv: Sequence[str], *, log: Path, cwd: Path | None = None) -> int:
    """Start a long-running process in its own session, output into ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc.pid
