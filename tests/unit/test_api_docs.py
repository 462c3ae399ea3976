"""docs/api.md lists every error code the gateway answers and every engine
failure code beside its API code (one to one)."""

from __future__ import annotations

from pathlib import Path

from paystream.gateway.errors import CODES
from schemas.api import api_code
from schemas.codes import FailureCode

API_MD = (Path(__file__).parents[2] / "docs" / "api.md").read_text()


def test_every_engine_code_is_listed_beside_its_api_code() -> None:
    for code in FailureCode:
        assert f"| `{api_code(code)}` | `{code.value}` |" in API_MD, code


def test_every_gateway_code_is_listed_with_its_status() -> None:
    engine = {api_code(c) for c in FailureCode}
    for code, status in CODES.items():
        if code not in engine:
            assert f"| {status} | `{code}` |" in API_MD, code
