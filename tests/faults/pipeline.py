"""One scenario's world: an isolated pipeline (its own app id, topics, scratch
database and contract deployment) on a private anvil behind the RPC proxy,
with supervised ``paystream worker`` and ``paystream sink`` processes, funded
payers, and the waits that bring it to rest before the invariants are checked.

Only the worker talks to the chain through the proxy; deployment, deposits and
every read of the checker go to anvil directly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from eth_account import Account

from devtools.harness.chain import fund_payers
from devtools.harness.collect import Collector
from devtools.harness.database import scratch_database
from devtools.harness.isolated import Isolated, free_port, isolated, private_chain
from devtools.harness.load import LoadGenerator
from devtools.harness.process import CLI, SignerProcess, SinkProcess, WorkerProcess
from devtools.stack.anvil import rpc
from schemas.topics import (
    CHAIN_EVENTS,
    CHAIN_SUBMITTED,
    FRAUD_SCORED,
    PAYMENTS_FINALIZED,
    PAYMENTS_REORGED,
    PAYMENTS_REQUESTED,
    PAYMENTS_SETTLED,
    REVIEW_DECISIONS,
)
from services.bootstrap import kafka_consumer_config
from services.chain.keys import ChainKeys
from services.errors import PaystreamError
from services.settings import Settings
from streams.sink import DECODERS, group_id
from tests.faults.proxy import RpcProxy
from tests.faults.sources import chain_events, chain_facts, read_topic
from tests.faults.supervisor import Supervisor
from tests.support.kafka import delete_topics_quietly

log = logging.getLogger("tests.faults")

DEPOSIT = 10**11  # per payer: far more than a scenario spends, so nothing fails for funds
MAX_AMOUNT = 1_000_000
CREDIT_TIMEOUT_S = 120.0
REST_TIMEOUT_S = 30.0  # for the chain, the listener and the sink to catch up, together
# No new outcome for this long (after the faults), with the workers' lag not
# shrinking, means the rest are stuck: the sweeper re-sends after 5 s, a dead
# worker's partitions move after 10 s, and a partition Faust never fetches stops
# its worker after 20 s quiet (``partition_stall_s``) plus 10 s idle, for a restart
# and a rebalance of about 20 s more.
STALL_S = 75.0
# Every scenario: the sweeper re-sends lost batches after 5 s, and the fraud
# rules' velocity limits (120 requests a minute per payer) stay out of the way:
# reviews have a scenario of their own (test_reviews.py).
DEFAULTS: dict[str, object] = {
    "batch_timeout_s": 5.0,
    "fraud_velocity_max_count": 10**6,
    "fraud_velocity_max_amount": 10**15,
    "partition_stall_s": 20.0,
}
# Faust's consumer session: a SIGKILLed worker's partitions are handed over
# after 10 s instead of Faust's default 60 s. Faust reads its settings from the
# environment too; each worker also gets a client id of its own (``leader``).
FAUST_ENV = {"BROKER_SESSION_TIMEOUT": "10"}


@dataclass
class FaultPipeline:
    run: Isolated
    proxy: RpcProxy
    logs: Path
    rng: random.Random
    supervisor: Supervisor
    collector: Collector
    started_s: float = field(default_factory=time.monotonic)
    timeline: list[str] = field(default_factory=list)
    since_block: int = 0  # chain events before it are on topics since deleted
    worker_env: dict[str, str] = field(default_factory=dict)  # for workers declared next

    def mark(self, what: str) -> None:
        """Note a step and when it happened (seconds since the pipeline was built)."""
        self.timeline.append(f"{time.monotonic() - self.started_s:6.1f}s {what}")

    @property
    def settings(self) -> Settings:
        """The pipeline's settings, pointing at anvil directly (not the proxy)."""
        return self.run.settings

    @property
    def base(self) -> Settings:
        """The shared stack's settings (its services' pid files)."""
        return self.run.base

    @property
    def env(self) -> dict[str, str]:
        return self.run.env

    @property
    def workers(self) -> list[str]:
        return [n for n in self.supervisor.children if n.startswith("worker")]

    def add_workers(self, count: int) -> list[str]:
        """Declare ``count`` more workers (each with a web port of its own)."""
        env = {**self.env, **FAUST_ENV, "PAYSTREAM_CHAIN_RPC_ENDPOINT": self.proxy.url}
        env.update(self.worker_env)
        names = []
        for _ in range(count):
            name = f"worker-{len(self.workers) + 1}"
            own = self.settings.model_copy(update={"worker_web_port": free_port()})
            log_path = self.logs / f"{name}.log"
            named = {**env, "BROKER_CLIENT_ID": self._client_id(name)}  # see ``leader``
            self.supervisor.add(name, _worker_factory(own, log_path, named))
            names.append(name)
        return names

    def start(self, workers: int = 1) -> list[str]:
        """The sink and ``workers`` workers, running and ready."""
        self.supervisor.add(
            "sink", lambda: SinkProcess(self.settings, self.logs / "sink.log", self.env)
        )
        self.supervisor.start("sink", ready_timeout_s=5)
        names = self.add_workers(workers)
        for name in names:
            if not self.supervisor.start(name):
                raise PaystreamError(f"{name} did not start: see {self.logs / name}.log")
        self.mark(f"started the sink and {workers} worker(s)")
        return names

    def start_signer(self) -> None:
        """The approval signer (``paystream signer``), running and ready."""
        if "signer" not in self.supervisor.children:
            self.supervisor.add(
                "signer", lambda: SignerProcess(self.settings, self.logs / "signer.log", self.env)
            )
        if not self.supervisor.start("signer", ready_timeout_s=30):
            raise PaystreamError(f"the signer did not start: see {self.logs / 'signer.log'}")
        self.mark("started the approval signer")

    def _client_id(self, worker: str) -> str:
        return f"{self.settings.app_id}-{worker}"

    def leader(self) -> str | None:
        """The worker Faust elected leader (it runs the chain listener): the
        member of the app's consumer group assigned the leader topic."""
        topic = f"{self.settings.app_id}-__assignor-__leader"
        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap})
        group = admin.describe_consumer_groups([self.settings.app_id])[self.settings.app_id]
        for member in group.result(timeout=10).members:
            parts = member.assignment.topic_partitions if member.assignment else []
            if any(tp.topic == topic for tp in parts):
                by_id = {self._client_id(w): w for w in self.workers}
                return by_id.get(member.client_id)
        return None

    def worker(self, name: str) -> WorkerProcess:
        process = self.supervisor.children[name].process
        assert isinstance(process, WorkerProcess), name
        return process

    def payers(self, count: int, tag: str = "payer") -> list[str]:
        return [f"{self.settings.app_id}-{tag}-{i:04d}" for i in range(count)]

    def fund(self, payers: list[str]) -> None:
        """A real deposit of ``DEPOSIT`` per payer, credited by the engine."""
        asyncio.run(fund_payers(self.settings, payers, DEPOSIT))
        running = [self.worker(n) for n in self.workers if self.supervisor.children[n].wanted]
        running[0].wait_credited(payers, DEPOSIT, CREDIT_TIMEOUT_S, running[1:])
        self.mark(f"funded {len(payers)} payers")

    def load(
        self, payers: list[str], payees: int, merchant_of: dict[str, str] | None = None
    ) -> LoadGenerator:
        """Requests from these payers to fresh payees (and the payout addresses
        in ``merchant_of``, naming their merchant), with the scenario's seed."""
        fresh = [str(Account.create().address) for _ in range(payees)]
        merchants = merchant_of or {}
        return LoadGenerator(
            self.settings,
            payers,
            fresh + list(merchants),
            MAX_AMOUNT,
            seed=self.rng.randrange(2**31),
            merchant_of=merchants,
        )

    def wait_outcomes(self, ids: list[str], timeout_s: float, stall_s: float = STALL_S) -> int:
        """Wait until these payments have an outcome, or ``timeout_s`` passed, or
        the pipeline stalled: no outcome came for ``stall_s`` and the workers'
        consumer lag did not shrink meanwhile (a worker that recovers its tables
        or works through a backlog after a restart is not stalled); how many
        have one."""
        deadline = time.monotonic() + timeout_s
        last, changed = -1, time.monotonic()
        lag_before: int | None = None
        while True:
            done = self.collector.wait_finished(ids, timeout_s=1.0)
            now = time.monotonic()
            if done != last:
                last, changed, lag_before = done, now, None
            if done >= len(ids) or now > deadline:
                return done
            if now - changed > stall_s:
                lag = group_lag(self.settings, self.settings.app_id, WORKER_TOPICS)
                if lag is None or lag_before is None or lag < lag_before:
                    lag_before, changed = lag, now  # still working: look again later
                    continue
                return done

    def sleep(self, low_s: float, high_s: float) -> float:
        """Sleep a random time (the scenario's seed) between the bounds."""
        pause = self.rng.uniform(low_s, high_s)
        time.sleep(pause)
        return pause

    def rest(self, ids: list[str], timeout_s: float, stall_s: float = STALL_S) -> list[str]:
        """Bring the pipeline to rest: every outcome of ``ids`` in (or none for
        ``stall_s``, or ``timeout_s`` passed), no transaction in flight, the
        listener and the ledger sink caught up. Returns what did not come to
        rest (noted with the violations)."""
        notes = []
        done = self.wait_outcomes(ids, timeout_s, stall_s)
        self.mark(f"{done} of {len(ids)} outcomes in")
        if done < len(ids):
            notes.append(
                f"{len(ids) - done} of {len(ids)} payments had no outcome after {timeout_s:.0f} s"
            )
        deadline = time.monotonic() + REST_TIMEOUT_S
        for what, ok in (
            ("transactions still pending", self._chain_idle),
            ("the listener lags the chain", self._listener_caught_up),
            ("settlements not yet final", self._settlements_final),
            ("the ledger sink lags its topics", self._sink_caught_up),
        ):
            if not _until(ok, deadline):
                notes.append(f"{what} after {REST_TIMEOUT_S:.0f} s")
        self.mark("at rest")
        return notes

    def cli(self, *args: str, timeout_s: float = 120.0) -> str:
        """``paystream ARGS...`` with the scenario's settings; its standard output
        (a failure raises, with its output)."""
        done = subprocess.run(
            [sys.executable, "-c", CLI, *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if done.returncode != 0:
            raise PaystreamError(
                f"paystream {' '.join(args)}: exit {done.returncode}: {done.stderr}"
            )
        return done.stdout

    def node(self, method: str, *params: object) -> Any:
        """One JSON-RPC call to the scenario's anvil (not through the proxy)."""
        return rpc(self.settings.chain_rpc_url, method, list(params), timeout_s=10)

    def _chain_idle(self) -> bool:
        operator = ChainKeys.from_settings(self.settings).operator.address
        latest = self.node("eth_getTransactionCount", operator, "latest")
        return bool(latest == self.node("eth_getTransactionCount", operator, "pending"))

    def _listener_caught_up(self) -> bool:
        """Every settlement and deposit on chain (since ``since_block``) is on
        ``chain.events``."""
        chain = asyncio.run(chain_facts(self.settings, set()))
        refs = [e.at for e in chain.settled] + [e.at for e in chain.deposits]
        on_chain = {
            (at.tx_hash.lower(), at.log_index) for at in refs if at.block_number >= self.since_block
        }
        emitted = {
            (str(v.get("tx_hash")).lower(), v.get("log_index"))
            for v in chain_events(read_topic(self.settings, CHAIN_EVENTS))
        }
        return on_chain <= emitted

    def _settlements_final(self) -> bool:
        """Every settlement on ``payments.settled`` that no ``payments.reorged``
        undid has its ``payments.finalized`` (anvil keeps mining: it comes
        ``finality_depth`` blocks later)."""

        def told(topic: str) -> set[tuple[str, int]]:
            return {
                (str(r.value.get("payment_id")), int(r.value.get("reorgs") or 0))
                for r in read_topic(self.settings, topic)
                if isinstance(r.value, dict)
            }

        undone = told(PAYMENTS_REORGED)
        settled = {(pid, n) for pid, n in told(PAYMENTS_SETTLED) if (pid, n + 1) not in undone}
        return settled <= told(PAYMENTS_FINALIZED)

    def _sink_caught_up(self) -> bool:
        """The ledger sink's group has committed every record of its topics."""
        return group_lag(self.settings, group_id(self.settings), tuple(DECODERS)) == 0


WORKER_TOPICS = (PAYMENTS_REQUESTED, FRAUD_SCORED, CHAIN_SUBMITTED, CHAIN_EVENTS, REVIEW_DECISIONS)


def group_lag(settings: Settings, group: str, topics: tuple[str, ...]) -> int | None:
    """Records of ``topics`` that consumer ``group`` has not committed yet (None:
    Kafka did not answer)."""
    names = [settings.topic(t) for t in topics]
    consumer = Consumer(kafka_consumer_config(settings, group))
    try:
        parts = [
            TopicPartition(t, p)
            for t in names
            for p in consumer.list_topics(t, timeout=10).topics[t].partitions
        ]
        lag = 0
        for tp in consumer.committed(parts, timeout=10):
            high = consumer.get_watermark_offsets(tp, timeout=10)[1]
            lag += max(0, high - max(tp.offset, 0))
        return lag
    except KafkaException:
        return None
    finally:
        consumer.close()


def _worker_factory(settings: Settings, log_path: Path, env: dict[str, str]) -> Any:
    def make() -> WorkerProcess:
        return WorkerProcess(settings, log_path, env)

    return make


def _until(ok: Any, deadline: float) -> bool:
    """Poll ``ok`` until it is true (True) or the monotonic ``deadline`` (False)."""
    while True:
        with suppress(Exception):
            if ok():
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


@contextmanager
def fault_pipeline(
    base: Settings, where: Path, rng: random.Random, **overrides: object
) -> Iterator[FaultPipeline]:
    """A scenario's pipeline; everything it started is stopped and removed after."""
    name = f"faults-{uuid.uuid4().hex[:8]}"
    began = time.monotonic()
    with ExitStack() as stack:
        chain = stack.enter_context(private_chain(base.model_copy(update={"state_dir": where})))
        db = stack.enter_context(scratch_database(base, "faults"))
        proxy = RpcProxy(chain.chain_rpc_url, base.host).start()
        stack.callback(proxy.stop)
        values = {**DEFAULTS, **overrides}
        run = isolated(
            base,
            name,
            where / "pipeline",
            anvil_port=chain.anvil_port,
            pg_database=db.pg_database,
            **values,
        )
        stack.callback(delete_topics_quietly, run.settings, f"{name}-")
        supervisor = Supervisor()
        stack.callback(supervisor.stop_all)
        collector = Collector(run.settings).start()
        pipeline = FaultPipeline(run, proxy, where / "logs", rng, supervisor, collector, began)
        stack.callback(lambda: pipeline.collector.stop())  # the current one: it may be replaced
        supervisor.mark = pipeline.mark
        pipeline.mark(f"built {name}: private anvil, scratch database, contracts, topics")
        yield pipeline
