"""PostgreSQL from Debian's packages, as a private instance of this checkout.

The server refuses to run as root, so when the stack runs as root the server
programs are run as the ``postgres`` user through ``runuser``. That user may
not be able to reach the checkout at all (a clone under ``/root`` or any other
0700 directory), so as root the cluster lives in the ``postgres`` user's home,
in a directory named after a digest of this checkout's state directory: each
checkout has its own cluster, ``reset`` and ``down`` find it again, and no
permission outside the project is changed. Run by another user, the cluster
stays in the state directory. ``paystream stack status`` shows where it is.
Password authentication (SCRAM) is on from the first start.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
from pathlib import Path

import psycopg
from psycopg import sql

from devtools.stack.base import StatePaths
from devtools.stack.errors import MissingDependency
from devtools.stack.process import (
    PidFile,
    apt_install,
    is_root,
    run,
    wait_until,
)
from services.settings import Settings

_PG_USER = "postgres"


def _server_bindir() -> Path | None:
    """The newest installed server's bin directory (Debian layout)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


def cluster_home(state_dir: Path) -> Path:
    """Where this checkout's cluster lives: in the ``postgres`` user's home when
    the stack runs as root (that user can always reach it), else in the state
    directory. Before Debian's package has created the user, the state
    directory is named (nothing has been written anywhere yet)."""
    state_home = state_dir / "postgres"
    if not is_root():
        return state_home
    try:
        owner_home = Path(pwd.getpwnam(_PG_USER).pw_dir)
    except KeyError:
        return state_home
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]
    return owner_home / "paystream-clusters" / digest


class PostgresService:
    name = "postgres"

    def __init__(self, settings: Settings, paths: StatePaths) -> None:
        self.settings = settings
        self.paths = paths

    @property
    def home(self) -> Path:
        return cluster_home(self.paths.root)

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def _pidfile(self) -> PidFile:
        return PidFile(self.data / "postmaster.pid", marker=str(self.data))

    def url(self) -> str:
        s = self.settings
        return f"postgresql://{s.pg_user}@{s.host}:{s.pg_port}/{s.pg_database}"

    def ports(self) -> dict[str, int]:
        return {"PAYSTREAM_PG_PORT": self.settings.pg_port}

    def log_path(self) -> Path:
        """The server writes its log as the ``postgres`` user, so it lives in the
        cluster's home; ``.state/logs/postgres.log`` links to it."""
        return self.home / "postgres.log"

    def data_paths(self) -> list[Path]:
        return [self.home]

    def install(self) -> None:
        if _server_bindir() is None:
            apt_install(["postgresql"])
        if _server_bindir() is None:
            raise MissingDependency(
                "PostgreSQL server programs not found under /usr/lib/postgresql/*/bin "
                "after installing `postgresql`"
            )

    def _as_owner(self, argv: list[str]) -> list[str]:
        if not is_root():
            return argv
        runuser = shutil.which("runuser")
        if runuser is None:
            raise MissingDependency("runuser not found: install Debian's `util-linux`")
        return [runuser, "-u", _PG_USER, "--", *argv]

    def _chown(self, *targets: Path) -> None:
        if not is_root():
            return
        entry = pwd.getpwnam(_PG_USER)
        for target in targets:
            os.chown(target, entry.pw_uid, entry.pw_gid)

    def _connect(self, dbname: str) -> psycopg.Connection[tuple[object, ...]]:
        s = self.settings
        return psycopg.connect(
            host=s.host,
            port=s.pg_port,
            dbname=dbname,
            user=s.pg_user,
            password=s.pg_password.get_secret_value(),
            connect_timeout=2,
            autocommit=True,
        )

    def healthy(self) -> bool:
        """True when the configured database accepts the configured user."""
        try:
            with self._connect(self.settings.pg_database) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def pid(self) -> int | None:
        return self._pidfile.read()

    def _initdb(self, bindir: Path) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data.mkdir(mode=0o700, exist_ok=True)
        pwfile = self.home / ".pwfile"
        pwfile.write_text(self.settings.pg_password.get_secret_value() + "\n")
        pwfile.chmod(0o600)
        self._chown(self.home, self.data, pwfile)
        try:
            run(
                self._as_owner(
                    [
                        str(bindir / "initdb"),
                        "-D",
                        str(self.data),
                        "-U",
                        self.settings.pg_user,
                        f"--pwfile={pwfile}",
                        "--auth=scram-sha-256",
                        "-E",
                        "UTF8",
                        "--no-locale",
                    ]
                ),
                what=f"initialising the PostgreSQL data directory {self.data} (initdb)",
                timeout_s=180,
                cwd=self.home,  # the server user may not be able to enter the caller's directory
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self) -> None:
        bindir = _server_bindir()
        if bindir is None:
            raise MissingDependency("PostgreSQL is not installed: run `paystream stack up`")
        self._initdb(bindir)
        socket_dir = self.home / "socket"
        socket_dir.mkdir(exist_ok=True)
        log = self.log_path()
        log.touch()
        self._chown(socket_dir, log)
        self._link_log(log)
        s = self.settings
        options = (
            f"-p {s.pg_port} -k {socket_dir} -c listen_addresses={s.host} "
            "-c shared_buffers=256MB -c max_connections=200"
        )
        run(
            self._as_owner(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(log),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(int(s.stack_start_timeout_s)),
                    "start",
                ]
            ),
            what=f"starting PostgreSQL (log: {log})",
            timeout_s=s.stack_start_timeout_s + 10,
            cwd=self.home,
        )
        self._create_database()
        wait_until(self.healthy, timeout_s=s.stack_start_timeout_s, what="PostgreSQL", log=log)

    def _link_log(self, log: Path) -> None:
        """``.state/logs/postgres.log`` points at the server's log, beside the
        other services' logs."""
        link = self.paths.log("postgres")
        if link == log:
            return
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(log)

    def _create_database(self) -> None:
        with self._connect("postgres") as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.settings.pg_database,)
            ).fetchone()
            if exists is None:
                conn.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.settings.pg_database))
                )

    def stop(self) -> bool:
        # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit.
        return self._pidfile.stop(timeout_s=self.settings.stack_stop_timeout_s, sig=signal.SIGINT)
