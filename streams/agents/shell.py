"""The loop every agent runs: decode nothing itself, call the stage's handle(),
route the outcome. No exception escapes: a broken invariant stops the worker
without acking; anything else unexpected sends the record to the DLQ."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from services.errors import InvariantViolation
from streams.outcomes import Outcome, dead
from streams.runtime import EXIT_INVARIANT, Runtime, die, log

D = TypeVar("D")
Handle = Callable[[bytes, str, int, int, D], Outcome]  # raw, key, partition, offset, deps
Prepare = Callable[[bytes], Awaitable[None]]  # what a stage awaits before it decides


async def run(
    stream: Any,
    handle: Handle[D],
    deps: D,
    runtime: Runtime,
    stage: str,
    prepare: Prepare | None = None,
) -> None:
    async for event in stream.events():
        message = event.message
        raw: bytes = message.value or b""
        key = message.key.decode("utf-8", errors="replace") if message.key else ""
        with runtime.progress.handling(message.topic, message.partition, message.offset):
            try:
                if prepare is not None:
                    await prepare(raw)
                outcome = handle(raw, key, message.partition, message.offset, deps)
            except InvariantViolation as exc:
                die(
                    EXIT_INVARIANT,
                    f"{stage}: invariant broken at {message.topic}"
                    f"[{message.partition}]@{message.offset}: {exc}",
                )
                return
            except Exception as exc:  # noqa: BLE001 - a bug must not lose the record
                log.exception("%s: unexpected error", stage)
                outcome = dead(f"{stage}: unexpected {type(exc).__name__}: {exc}")
            await runtime.route(outcome, message, stage)
