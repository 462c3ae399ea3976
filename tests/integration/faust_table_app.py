"""A minimal Faust app with one table, on the worker's own Faust setup
(``streams.app.faust_app``: its transport and its table store), for the
table store test. Each record of the source topic is a command: ``set
<key> <value>`` writes the table, ``get <key>`` answers on the sink with
the key's value (``-`` when it has none). Run as ``python -m
tests.integration.faust_table_app worker``; names come from the environment."""

from __future__ import annotations

import os
from typing import Any

from services.settings import Settings
from streams.app import faust_app

settings = Settings(kafka_bootstrap=os.environ["TABLE_BROKER"], kafka_partitions=4)
app = faust_app(settings, os.environ["TABLE_APP_ID"], datadir=os.environ["TABLE_DATADIR"])
table = app.Table("t", partitions=4, key_type=str, value_type=bytes)
source = app.topic(os.environ["TABLE_SOURCE"], key_serializer="raw", value_serializer="raw")
sink = app.topic(os.environ["TABLE_SINK"], key_serializer="raw", value_serializer="raw")


@app.agent(source)
async def commands(stream: Any) -> None:
    async for key, value in stream.items():
        verb, name, *rest = value.decode().split(" ")
        if verb == "set":
            table[name] = rest[0].encode()
        else:
            await sink.send(key=key, value=name.encode() + b"=" + (table.get(name) or b"-"))


if __name__ == "__main__":
    app.main()
