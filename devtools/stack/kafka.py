"""Apache Kafka, one KRaft node (broker and controller in one process).

The broker's jars come from Maven Central through ``deploy/local/kafka/pom.xml``
(``mvn dependency:copy-dependencies``); the storage is formatted once with a
fresh cluster id; the broker runs as ``java -cp <libs>/* kafka.Kafka``.
"""

from __future__ import annotations

import base64
import hashlib
import string
import uuid
from pathlib import Path

from devtools.stack.base import DEPLOY_DIR, StatePaths
from devtools.stack.process import (
    PidFile,
    ensure_program,
    pid_alive,
    port_open,
    run,
    spawn,
    wait_until,
)
from services.settings import Settings

KAFKA_DEPLOY = DEPLOY_DIR / "local" / "kafka"


class KafkaService:
    name = "kafka"

    def __init__(self, settings: Settings, paths: StatePaths) -> None:
        self.settings = settings
        self.paths = paths
        self.home = paths.service_dir("kafka")
        self.libs = self.home / "libs"
        self.data = self.home / "data"
        self.config = self.home / "server.properties"
        self._pidfile = PidFile(paths.pidfile("kafka"), marker=str(self.config))

    def url(self) -> str:
        return f"kafka://{self.settings.kafka_bootstrap}"

    def ports(self) -> dict[str, int]:
        return {
            "PAYSTREAM_KAFKA_PORT": self.settings.kafka_port,
            "PAYSTREAM_KAFKA_CONTROLLER_PORT": self.settings.kafka_controller_port,
        }

    def log_path(self) -> Path:
        return self.paths.log("kafka")

    def data_paths(self) -> list[Path]:
        return [self.data, self.config]

    def install(self) -> None:
        """Java and Maven from Debian if missing; the broker's jars once per pom."""
        ensure_program("java", "default-jre-headless")
        ensure_program("mvn", "maven")
        pom = KAFKA_DEPLOY / "pom.xml"
        digest = hashlib.sha256(pom.read_bytes()).hexdigest()
        stamp = self.libs / ".pom.sha256"
        if stamp.exists() and stamp.read_text() == digest:
            return
        self.libs.mkdir(parents=True, exist_ok=True)
        for old in self.libs.glob("*.jar"):
            old.unlink()
        run(
            [
                "mvn",
                "-B",
                "-q",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={self.libs}",
                "-DincludeScope=runtime",
            ],
            what="resolving the Kafka broker from Maven Central (mvn)",
            timeout_s=900,
        )
        stamp.write_text(digest)

    def healthy(self) -> bool:
        """True when the broker answers a metadata request."""
        from confluent_kafka.admin import AdminClient  # heavy import, used here only

        if not port_open(self.settings.host, self.settings.kafka_port):
            return False
        admin = AdminClient(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "socket.timeout.ms": 2000,
                "log_level": 0,  # a failed probe is an answer here, not an error to log
            }
        )
        try:
            metadata = admin.list_topics(timeout=2)
        except Exception:  # noqa: BLE001 - any failure means "not healthy yet"
            return False
        return bool(metadata.brokers)

    def pid(self) -> int | None:
        return self._pidfile.read()

    def _render_config(self) -> None:
        template = string.Template((KAFKA_DEPLOY / "server.properties.in").read_text())
        self.config.write_text(
            template.substitute(
                host=self.settings.host,
                port=self.settings.kafka_port,
                controller_port=self.settings.kafka_controller_port,
                data_dir=self.data,
                partitions=self.settings.kafka_partitions,
            )
        )

    def tool(self, main_class: str, *args: str) -> list[str]:
        """The command line of one of Kafka's own tools (e.g.
        ``org.apache.kafka.tools.consumer.group.ConsumerGroupCommand``) on the
        stack's broker jars."""
        return self._java(main_class, *args)

    def _java(self, main_class: str, *args: str) -> list[str]:
        heap = self.settings.kafka_heap_mb
        return [
            "java",
            f"-Xmx{heap}m",
            f"-Xms{min(heap, 256)}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={KAFKA_DEPLOY / 'log4j2.xml'}",
            "-cp",
            f"{self.libs}/*",
            main_class,
            *args,
        ]

    def _format_once(self) -> None:
        if (self.data / "meta.properties").exists():
            return
        self.data.mkdir(parents=True, exist_ok=True)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(self.config),
            ),
            what="formatting the Kafka storage",
            timeout_s=120,
        )

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._render_config()
        self._format_once()
        pid = spawn(self._java("kafka.Kafka", str(self.config)), log=self.log_path())
        self._pidfile.write(pid)
        wait_until(
            self.healthy,
            timeout_s=self.settings.stack_start_timeout_s,
            what="Kafka broker",
            log=self.log_path(),
            alive=lambda: pid_alive(pid),
            interval_s=0.5,
        )

    def stop(self) -> bool:
        return self._pidfile.stop(timeout_s=self.settings.stack_stop_timeout_s)
