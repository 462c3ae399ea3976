"""Receipts and logs straight from JSON-RPC, without web3's result formatters.

web3 formats every field of every log (each address checksummed with a keccak);
a receipt of a 200-payment batch has 600 logs, and the worker reads one per
batch and the listener every log of every block. Here only the fields paystream
reads are converted: numbers to ``int``, hashes, topics and data to ``bytes``,
addresses kept as lower-case hex.
"""

from __future__ import annotations

from typing import Any

from web3 import AsyncWeb3
from web3.types import RPCEndpoint

from services.errors import ChainUnavailable

_INTS = ("blockNumber", "logIndex", "transactionIndex", "status", "gasUsed", "type")
_BYTES = ("blockHash", "transactionHash", "data")


async def call(w3: AsyncWeb3[Any], method: str, params: list[Any]) -> Any:
    """One JSON-RPC call; an error answer is ChainUnavailable."""
    response = await w3.provider.make_request(RPCEndpoint(method), params)
    if "error" in response:
        raise ChainUnavailable(f"{method}: {response['error']}")
    return response.get("result")


def _fields(raw: dict[str, Any]) -> dict[str, Any]:
    out = dict(raw)
    for key in _INTS:
        if isinstance(raw.get(key), str):
            out[key] = int(raw[key], 16)
    for key in _BYTES:
        if isinstance(raw.get(key), str):
            out[key] = bytes.fromhex(raw[key][2:])
    return out


def log_of(raw: dict[str, Any]) -> dict[str, Any]:
    log = _fields(raw)
    log["topics"] = [bytes.fromhex(t[2:]) for t in raw.get("topics", [])]
    return log


def receipt_of(raw: dict[str, Any]) -> dict[str, Any]:
    receipt = _fields(raw)
    receipt["logs"] = [log_of(g) for g in raw.get("logs", [])]
    return receipt


async def receipt(w3: AsyncWeb3[Any], tx_hash: bytes) -> dict[str, Any] | None:
    """The receipt of a mined transaction, None while it is not mined."""
    raw = await call(w3, "eth_getTransactionReceipt", ["0x" + tx_hash.hex()])
    return receipt_of(raw) if raw else None


async def logs(w3: AsyncWeb3[Any], query: dict[str, Any]) -> list[dict[str, Any]]:
    """``eth_getLogs`` (block numbers as ints in ``query``)."""
    params = {
        k: hex(v) if k in ("fromBlock", "toBlock") and isinstance(v, int) else v
        for k, v in query.items()
    }
    return [log_of(g) for g in await call(w3, "eth_getLogs", [params]) or []]
