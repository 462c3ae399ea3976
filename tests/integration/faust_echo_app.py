"""A minimal Faust app for the round-trip test: it copies records from one topic
to another with an agent. Run as ``python -m tests.integration.faust_echo_app
worker``; topic names, broker and data directory come from the environment."""

from __future__ import annotations

import os
from typing import Any

import faust

app = faust.App(
    os.environ["ECHO_APP_ID"],
    broker=f"kafka://{os.environ['ECHO_BROKER']}",
    store="memory://",
    datadir=os.environ["ECHO_DATADIR"],
    web_enabled=False,
    topic_partitions=4,
    broker_commit_every=10,
)
# Raw bytes in and out: decoding is the code's job, so a bad record cannot crash the agent.
source = app.topic(os.environ["ECHO_SOURCE"], key_serializer="raw", value_serializer="raw")
sink = app.topic(os.environ["ECHO_SINK"], key_serializer="raw", value_serializer="raw")


@app.agent(source)
async def echo(stream: Any) -> None:
    async for key, value in stream.items():
        await sink.send(key=key, value=b"echo:" + value)


if __name__ == "__main__":
    app.main()
