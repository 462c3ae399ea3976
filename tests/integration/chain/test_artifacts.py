"""The committed ABI/bytecode artifacts match the Solidity sources."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from devtools.stack.anvil import ensure_node_packages
from services.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration


def test_artifacts_are_not_stale() -> None:
    ensure_node_packages()
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, "deploy/chain/compile.js", "--check"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr + done.stdout
