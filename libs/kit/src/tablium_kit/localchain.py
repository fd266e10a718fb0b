"""A local Ethereum node (Foundry's ``anvil``) that development and tests run the blockchain service against.

``scripts/ensure-anvil.sh`` installs anvil from the npm package ``@foundry-rs/anvil`` into ``.tools/anvil``
(the platform's binary ships inside the package). :class:`LocalChain` starts it on a free port, as a
child in its own process group, and stops it whole; the service then speaks plain JSON-RPC over HTTP to it,
exactly as to any production endpoint. Tests use the ``local_chain`` fixture (:mod:`tablium_kit.testing`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tablium_kit.private_infra import MissingBinaries
from tablium_kit.service_processes import free_port

# anvil's well-known development mnemonic: its first accounts are funded with 10,000 ETH each.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_CHAIN_ID = 31337
_TOOLS = Path(".tools") / "anvil" / "node_modules" / "@foundry-rs"


def find_anvil() -> Path:
    """The anvil binary: ``TABLIUM_ANVIL_BIN``, else the repository's ``.tools/anvil``, else ``anvil`` on PATH."""
    explicit = os.environ.get("TABLIUM_ANVIL_BIN")
    if explicit:
        return Path(explicit)
    # The kit is installed in editable mode from libs/kit/src: the repository is four levels up. The
    # working directory is tried too (a service started from the repository root).
    for root in (Path(__file__).resolve().parents[4], Path.cwd()):
        found = sorted(glob.glob(str(root / _TOOLS / "anvil-*" / "bin" / "anvil")))
        if found:
            return Path(found[0])
    which = shutil.which("anvil")
    if which:
        return Path(which)
    raise MissingBinaries("no anvil binary: run scripts/ensure-anvil.sh (or make install)")


class LocalChain:
    """An anvil node of one's own: ``start()``, ``rpc()``, ``stop()`` (really: a test may restart it)."""

    def __init__(
        self,
        *,
        chain_id: int = DEV_CHAIN_ID,
        port: int | None = None,
        block_time_s: int | None = None,
        persistent: bool = False,
        directory: Path | None = None,
    ) -> None:
        """``persistent``: the node keeps its chain (blocks, state) in a file across ``stop()`` and ``start()``,
        so a test can take the node away and bring the same chain back. ``directory``: where that file and the
        log live (kept by ``remove()``); by default a temporary directory of the node's own."""
        self.binary = find_anvil()
        self.chain_id = chain_id
        self.port = port or free_port()
        self.block_time_s = block_time_s
        self.persistent = persistent
        self.owns_dir = directory is None
        self.dir = Path(tempfile.mkdtemp(prefix="tablium-anvil-")) if directory is None else directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> None:
        argv = [str(self.binary), "--host", "127.0.0.1", "--port", str(self.port), "--chain-id", str(self.chain_id)]
        argv += ["--mnemonic", DEV_MNEMONIC]
        if self.block_time_s:
            argv += ["--block-time", str(self.block_time_s)]
        if self.persistent:
            argv += ["--state", str(self.dir / "state.json")]
        log = (self.dir / "anvil.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"anvil exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if int(self.rpc("eth_chainId"), 16) == self.chain_id:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"anvil did not answer within {timeout_s} s:\n{self.log_tail()}")

    def rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call (test helpers: mine, snapshot, revert, reorg)."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        answer = httpx.post(self.url, json=body, timeout=30).raise_for_status().json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    @contextlib.contextmanager
    def mining_held(self) -> Iterator[None]:
        """Transactions wait in the mempool (automine off) until :meth:`mine`: how tests make one stuck."""
        self.rpc("evm_setAutomine", False)
        try:
            yield
        finally:
            self.rpc("evm_setAutomine", True)

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        if self.persistent:
            # A graceful stop writes the chain to the state file, which the next start() loads.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # a dev node holds nothing worth waiting for
        process.wait(timeout=30)

    def remove(self) -> None:
        self.stop()
        if self.owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self) -> str:
        path = self.dir / "anvil.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""
