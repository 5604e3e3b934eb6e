"""A throwaway PostgreSQL server for the tests: Debian's `postgresql` binaries, a data directory
in a temporary folder, a loopback port, password authentication, stopped at the end.

`.ci/run` installs the binaries when they are missing. `initdb` and `postgres` refuse to run as
root, so as root the server runs as the `postgres` system user the Debian package creates. The
server is a child process started with a parent-death signal: if the test process dies, so does
the server, and nothing is left running.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "leadscore"
START_TIMEOUT_SECONDS = 60
# Durability is irrelevant for a server that lives as long as a test session.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "60",
}


def binaries_dir() -> Path | None:
    """Where initdb and postgres are: beside pg_ctl on PATH, else Debian's newest version."""
    candidates = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    return next(
        (d for d in candidates if (d / "initdb").exists() and (d / "postgres").exists()), None
    )


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    """`command` as the unprivileged `postgres` user when running as root (with the parent-death
    signal set, so the server stops if this process dies); as is otherwise."""
    drop = []
    if os.geteuid() == 0:
        drop = ["--reuid=postgres", "--regid=postgres", "--clear-groups"]
    return ["setpriv", *drop, "--pdeathsig", "INT", *command]


@dataclass
class PostgresServer:
    bin_dir: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="leadscore-pg-")))
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str) -> str:
        """A libpq/SQLAlchemy URL for `database` on this server."""
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def connection(self, database: str) -> dict[str, str | int]:
        """Keyword arguments for `PostgresWarehouse`."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": SUPERUSER,
            "password": self.password,
            "database": database,
        }

    def environment(self, database: str) -> dict[str, str]:
        """The LEADSCORE_POSTGRES_* variables the pipeline and dbt's profile read."""
        return {
            f"LEADSCORE_POSTGRES_{name.upper()}": str(value)
            for name, value in self.connection(database).items()
        }

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        password_file = self.root / "password"
        password_file.write_text(self.password)
        if os.geteuid() == 0:
            shutil.chown(password_file, "postgres", "postgres")
        subprocess.run(
            _as_server_user(
                [
                    str(self.bin_dir / "initdb"),
                    "--pgdata",
                    str(self.data_dir),
                    "--username",
                    SUPERUSER,
                    "--pwfile",
                    str(password_file),
                    "--auth",
                    "scram-sha-256",
                    "--encoding",
                    "UTF8",
                    "--locale",
                    "C",
                ]
            ),
            check=True,
            capture_output=True,
        )
        password_file.unlink()
        self.port = _free_loopback_port()
        settings = {
            **FAST_SETTINGS,
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "TimeZone": "UTC",
        }
        options = [item for name, value in settings.items() for item in ("-c", f"{name}={value}")]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            _as_server_user([str(self.bin_dir / "postgres"), "-D", str(self.data_dir), *options]),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log_path.read_text()[-2000:]}")
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def create_database(self, name: str) -> str:
        """Create database `name` (dropped first if it exists); returns its URL."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Immediate shutdown (SIGQUIT: no checkpoint, the files are deleted next), then remove
        the files."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
