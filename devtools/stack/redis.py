"""Redis from Debian's packages, as a private instance in the state directory.

Append-only persistence keeps the data across ``down``/``up``.
"""

from __future__ import annotations

import socket
from pathlib import Path

from devtools.stack.base import StatePaths
from devtools.stack.process import PidFile, ensure_program, run, wait_until
from services.settings import Settings


class RedisService:
    name = "redis"

    def __init__(self, settings: Settings, paths: StatePaths) -> None:
        self.settings = settings
        self.paths = paths
        self.home = paths.service_dir("redis")
        # redis-server rewrites its argv to "redis-server host:port", so the port
        # is what identifies our process.
        self._pidfile = PidFile(
            paths.pidfile("redis"), marker=f"{settings.host}:{settings.redis_port}"
        )

    def url(self) -> str:
        return self.settings.redis_url

    def ports(self) -> dict[str, int]:
        return {"PAYSTREAM_REDIS_PORT": self.settings.redis_port}

    def log_path(self) -> Path:
        return self.paths.log("redis")

    def data_paths(self) -> list[Path]:
        return [self.home]

    def install(self) -> None:
        ensure_program("redis-server", "redis-server")

    def healthy(self) -> bool:
        """True when the server answers PING."""
        try:
            with socket.create_connection(
                (self.settings.host, self.settings.redis_port), timeout=1
            ) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def pid(self) -> int | None:
        return self._pidfile.read()

    def start(self) -> None:
        server = ensure_program("redis-server", "redis-server")
        self.home.mkdir(parents=True, exist_ok=True)
        s = self.settings
        run(
            [
                server,
                "--bind",
                s.host,
                "--port",
                str(s.redis_port),
                "--dir",
                str(self.home),
                "--daemonize",
                "yes",
                "--pidfile",
                str(self._pidfile.path),
                "--logfile",
                str(self.log_path()),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--maxmemory",
                "1gb",
                "--maxmemory-policy",
                "noeviction",
            ],
            what="starting Redis",
            timeout_s=30,
        )
        wait_until(
            self.healthy, timeout_s=s.stack_start_timeout_s, what="Redis", log=self.log_path()
        )

    def stop(self) -> bool:
        return self._pidfile.stop(timeout_s=self.settings.stack_stop_timeout_s)
