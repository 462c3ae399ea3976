"""Compiled contract artifacts (ABI and bytecode) committed under ``artifacts/``.

They are produced by ``node deploy/chain/compile.js`` with the pinned solc;
``tests/integration/chain/test_artifacts.py`` fails when they are stale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ARTIFACT_DIR = Path(__file__).resolve().parent / "artifacts"


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str


@cache
def load(name: str) -> Artifact:
    data = json.loads((ARTIFACT_DIR / f"{name}.json").read_text())
    return Artifact(name=name, abi=data["abi"], bytecode=data["bytecode"])
