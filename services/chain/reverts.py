"""Reverts decoded into typed errors, from the custom errors in the ABIs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eth_abi.abi import decode
from eth_utils.crypto import keccak

from services.errors import PaystreamError


class ContractReverted(PaystreamError):
    """A contract call reverted; ``name`` is the custom error (or Error/Panic)."""

    def __init__(self, name: str, args: tuple[Any, ...], raw: bytes) -> None:
        super().__init__(f"{name}{args!r}" if args else name)
        self.name = name
        self.args_decoded = args
        self.raw = raw


def _types(inputs: list[dict[str, Any]]) -> list[str]:
    return [str(i["type"]) for i in inputs]


class RevertDecoder:
    """Maps 4-byte selectors of custom errors (and Error/Panic) to decoders."""

    def __init__(self, abis: Iterable[list[dict[str, Any]]]) -> None:
        self._by_selector: dict[bytes, tuple[str, list[str]]] = {
            keccak(text="Error(string)")[:4]: ("Error", ["string"]),
            keccak(text="Panic(uint256)")[:4]: ("Panic", ["uint256"]),
        }
        for abi in abis:
            for item in abi:
                if item.get("type") == "error":
                    types = _types(item.get("inputs", []))
                    signature = f"{item['name']}({','.join(types)})"
                    self._by_selector[keccak(text=signature)[:4]] = (item["name"], types)

    def decode(self, data: bytes) -> ContractReverted:
        name, types = self._by_selector.get(data[:4], ("UnknownRevert", []))
        if name == "UnknownRevert":
            return ContractReverted(name, (data.hex(),), data)
        try:
            values = tuple(decode(types, data[4:]))
        except Exception:  # noqa: BLE001 - malformed revert data is itself the answer
            values = (data.hex(),)
        return ContractReverted(name, values, data)

    def from_exception(self, exc: Exception) -> ContractReverted:
        """Decode the revert data carried by a web3 ContractLogicError."""
        data: Any = getattr(exc, "data", None)
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            return self.decode(bytes.fromhex(data[2:]))
        return ContractReverted("Reverted", (str(exc),), b"")
