"""A private PostgreSQL cluster and a private RabbitMQ node that a test may really stop, restart or break.

The shared Postgres and RabbitMQ serve everybody's tests at once, so a test that takes infrastructure
down brings its own: :class:`PrivatePostgres` (``initdb`` + ``pg_ctl`` on a free port, run as the
``postgres`` user when the test runs as root, since ``initdb`` refuses root) and :class:`PrivateRabbit`
(``rabbitmq-server`` as a child process with its own node name, ports, data, logs, configuration, no
plugins, and an Erlang cookie of its own in a private ``HOME``: nothing of the shared node is read or
touched). Both live in a temporary directory that :meth:`remove` deletes, whatever happened.
The fixtures ``private_postgres`` and ``private_rabbit`` (:mod:`tablium_kit.testing`) skip a test when the
binaries are missing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tablium_kit.service_processes import free_port


class MissingBinaries(RuntimeError):
    """The server's binaries are not installed here."""


class PrivatePostgres:
    """A PostgreSQL cluster of one's own: ``start()``, ``stop()`` (really), ``remove()``."""

    def __init__(self, database: str = "tablium") -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found and not shutil.which("pg_ctl"):
            raise MissingBinaries("no PostgreSQL server binaries to start a private instance")
        self.bin = Path(found[-1]).parent if found else Path(shutil.which("pg_ctl") or "").parent
        self.database = database
        self.dir = Path(tempfile.mkdtemp(prefix="tablium-pg-"))
        self.port = free_port()
        # initdb refuses to run as root: run the server as the postgres user then.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust", "-N")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bin / tool), *args], check=True, capture_output=True)  # noqa: S603

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-o", options, "-l", str(self.dir / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url_for(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        return self.url_for(self.database)


def _rabbitmq_scripts() -> Path:
    """Where ``rabbitmq-server`` and ``rabbitmqctl`` themselves are: Debian's ``/usr/sbin`` ones are
    wrappers that switch to the ``rabbitmq`` user (and so to the shared node's cookie and data)."""
    found = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server"))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("rabbitmq-server")
    if which is None or not shutil.which("erl"):
        raise MissingBinaries("no RabbitMQ server (rabbitmq-server, erl) to start a private node")
    return Path(which).parent


class PrivateRabbit:
    """A RabbitMQ node of one's own: ``start()``, ``stop()`` (the whole node), ``remove()``.

    Nothing is shared with the machine's node but epmd (the port-name directory every Erlang node
    registers with): its own node name, AMQP and distribution ports, data and log directories,
    configuration (no ``/etc/rabbitmq`` file is read), no plugins, and its own cookie in its own ``HOME``.
    """

    def __init__(self) -> None:
        self.scripts = _rabbitmq_scripts()
        self.dir = Path(tempfile.mkdtemp(prefix="tablium-rabbit-"))
        self.port = free_port()
        self.node = f"tablium-{secrets.token_hex(4)}@localhost"
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")
        cookie = self.dir / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        # The CLI tools pick their own distribution port: they get no RABBITMQ_DIST_PORT.
        self.cli_env = {
            **base,
            "HOME": str(self.dir),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
        }
        self.server_env = {
            **self.cli_env,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``rabbitmqctl -n <this node> args…`` (not checked)."""
        command = [str(self.scripts / "rabbitmqctl"), "-q", "-n", self.node, *args]
        return subprocess.run(command, env=self.cli_env, capture_output=True, text=True, timeout=timeout)  # noqa: S603

    def start(self, timeout: float = 90) -> None:
        """Start the node and wait until it takes connections."""
        log = (self.dir / "server.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            [str(self.scripts / "rabbitmq-server")],
            env=self.server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
            start_new_session=True,  # its own process group: beam and its helpers go with it
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {self.process.returncode}:\n{self.log_tail()}")
            # await_startup needs the node registered with epmd first: it fails at once until then.
            if self.ctl("await_startup", "--timeout", "30", timeout=40).returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError(f"the private RabbitMQ node did not start within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the whole node (``rabbitmqctl shutdown`` waits for its process), killed if it won't go."""
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.ctl("shutdown", timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever is left of its group
        process.wait(timeout=30)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self) -> str:
        path = self.dir / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""
