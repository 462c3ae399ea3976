"""anvil, Foundry's local EVM node, pinned in ``deploy/chain/package.json``.

``npm ci`` installs anvil (and solc, OpenZeppelin) into ``deploy/chain/node_modules``
once per lock file. The node runs with a fixed mnemonic and chain id and dumps
its state to the state directory on exit (and every few seconds), so the chain
survives ``down``/``up``.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path

from devtools.stack.base import DEPLOY_DIR, StatePaths
from devtools.stack.process import PidFile, ensure_program, pid_alive, run, spawn, wait_until
from services.settings import LOCAL_MNEMONIC, Settings

CHAIN_DEPLOY = DEPLOY_DIR / "chain"
NODE_MODULES = CHAIN_DEPLOY / "node_modules"
ANVIL_BIN = NODE_MODULES / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
ACCOUNTS = 20


def ensure_node_packages() -> None:
    """``npm ci`` in deploy/chain when node_modules does not match the lock file."""
    ensure_program("node", "nodejs")
    npm = ensure_program("npm", "npm")
    lock = CHAIN_DEPLOY / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = NODE_MODULES / ".paystream-lock.sha256"
    if stamp.exists() and stamp.read_text() == digest and ANVIL_BIN.exists():
        return
    run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        what="installing anvil, solc and OpenZeppelin (npm ci in deploy/chain)",
        timeout_s=900,
        cwd=CHAIN_DEPLOY,
    )
    stamp.write_text(digest)


def rpc(url: str, method: str, params: list[object], timeout_s: float) -> object:
    """One JSON-RPC call over HTTP (used for health checks only)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    request = urllib.request.Request(  # noqa: S310 - the URL is our own http node
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
        reply = json.loads(response.read())
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


class AnvilService:
    name = "anvil"

    def __init__(self, settings: Settings, paths: StatePaths) -> None:
        self.settings = settings
        self.paths = paths
        self.home = paths.service_dir("anvil")
        self.state_file = self.home / "state.json"
        self._pidfile = PidFile(paths.pidfile("anvil"), marker=str(self.state_file))

    def url(self) -> str:
        # Always the local node, even when the engine is pointed at a remote one.
        return f"http://{self.settings.host}:{self.settings.anvil_port}"

    def ports(self) -> dict[str, int]:
        return {"PAYSTREAM_ANVIL_PORT": self.settings.anvil_port}

    def log_path(self) -> Path:
        return self.paths.log("anvil")

    def data_paths(self) -> list[Path]:
        return [self.home]

    def install(self) -> None:
        ensure_node_packages()

    def healthy(self) -> bool:
        """True when the node answers eth_chainId with the configured chain id."""
        try:
            result = rpc(self.url(), "eth_chainId", [], timeout_s=1)
        except (OSError, ValueError, RuntimeError, urllib.error.URLError):
            return False
        return isinstance(result, str) and int(result, 16) == self.settings.chain_id

    def pid(self) -> int | None:
        return self._pidfile.read()

    def start(self) -> None:
        s = self.settings
        self.home.mkdir(parents=True, exist_ok=True)
        argv = [
            str(ANVIL_BIN),
            "--host",
            s.host,
            "--port",
            str(s.anvil_port),
            "--chain-id",
            str(s.chain_id),
            "--mnemonic",
            s.chain_mnemonic.get_secret_value() if s.chain_mnemonic else LOCAL_MNEMONIC,
            "--accounts",
            str(ACCOUNTS),
            "--state",
            str(self.state_file),
            "--state-interval",
            "5",
        ]
        if s.anvil_block_time_s > 0:
            argv += ["--block-time", f"{s.anvil_block_time_s:g}"]
        pid = spawn(argv, log=self.log_path())
        self._pidfile.write(pid)
        wait_until(
            self.healthy,
            timeout_s=s.stack_start_timeout_s,
            what="anvil",
            log=self.log_path(),
            alive=lambda: pid_alive(pid),
        )

    def stop(self) -> bool:
        # On SIGTERM anvil writes its state file before it exits.
        return self._pidfile.stop(timeout_s=self.settings.stack_stop_timeout_s)
