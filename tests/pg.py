"""A real, throwaway PostgreSQL server for tests and benchmarks.

``initdb`` into a temp folder, ``postgres`` on a free loopback port with fsync
off (the data is thrown away, so durability only costs time), one fresh database
per ``new_database()`` call. PostgreSQL refuses to run as root, so when we are
root the server runs as the ``postgres`` user that the Debian package creates.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, postgres) are needed: install them with "
    "`apt-get install postgresql` (Debian; `make test` installs it through "
    "scripts/install-system-deps.sh)"
)
START_TIMEOUT_S = 30.0
DB_KINDS = ("sqlite", "postgresql")  # what the db_url fixture is parametrized over


class PostgresUnavailableError(RuntimeError):
    """The server cannot be run here; the message says how to fix it."""


def find_bin_dir() -> Path:
    """The folder with ``initdb`` and ``postgres``: PATH first, then Debian's layout."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("postgres"):
        return Path(on_path).resolve().parent
    # Debian keeps the server binaries off PATH, one folder per major version.
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    for folder in reversed(candidates):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "postgres").is_file():
            return Path(folder)
    raise PostgresUnavailableError(INSTALL_HINT)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One server; ``start()`` returns the admin URL, ``stop()`` removes everything."""

    def __init__(self, name: str = "commune-pg") -> None:
        self._bin = find_bin_dir()
        self._user = self._run_as()
        self._root = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._counter = 0
        self.port = 0

    @staticmethod
    def _run_as() -> pwd.struct_passwd | None:
        """None: run as ourselves; else the unprivileged user to switch to (we are root)."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailableError(
                "running as root, PostgreSQL needs an unprivileged `postgres` user to run "
                f"the server as; {INSTALL_HINT} (the package creates that user)"
            ) from None

    def _popen_kwargs(self) -> dict[str, Any]:
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    @property
    def log_path(self) -> Path:
        return self._root / "server.log"

    def start(self) -> str:
        # Also on an interpreter exit that skips the fixture's teardown (an error in
        # a session hook, sys.exit): never leave a server behind. stop() is idempotent.
        atexit.register(self.stop)
        data = self._root / "data"
        if self._user is not None:
            # mkdtemp made the folder 0700 for root; the server user must own it.
            os.chown(self._root, self._user.pw_uid, self._user.pw_gid)
        init = subprocess.run(
            [
                str(self._bin / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",  # loopback only, a throwaway cluster
                "--encoding=UTF8",
                # A UTF-8 ctype, as a Debian cluster gets: ILIKE then folds the case of
                # every letter (Vietnamese too), not ASCII only as under "C".
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            check=False,
            **self._popen_kwargs(),
        )
        if init.returncode != 0:
            raise PostgresUnavailableError(
                f"initdb failed ({init.returncode}): {init.stderr[-2000:]}"
            )
        last_error = ""
        for _attempt in range(3):  # the free port can be taken between probe and bind
            self.port = _free_port()
            last_error = self._launch(data)
            if not last_error:
                return self.url("postgres")
        raise PostgresUnavailableError(f"postgres did not start: {last_error}")

    def _launch(self, data: Path) -> str:
        """Start the server and wait until it accepts connections; '' on success."""
        with open(self.log_path, "ab") as log:
            if self._user is not None:
                os.chown(self.log_path, self._user.pw_uid, self._user.pw_gid)
            self._proc = subprocess.Popen(
                [
                    str(self._bin / "postgres"),
                    "-D",
                    str(data),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-k",
                    "",  # no Unix socket: nothing to collide with the system cluster
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                **self._popen_kwargs(),
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                return self.log_path.read_text(errors="replace")[-2000:]
            if self._accepts_connections():
                return ""
            time.sleep(0.05)
        self.stop_server()
        return f"not ready after {START_TIMEOUT_S:.0f} s; log: {self.log_path}"

    def _accepts_connections(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self._dsn("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, template: str = "template1") -> str:
        """Create an empty database (a copy of ``template``) and return its SQLAlchemy URL."""
        import psycopg

        self._counter += 1
        name = f"db{self._counter}"
        # CREATE DATABASE cannot run inside a transaction block.
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def stop_server(self) -> None:
        if self._proc is None:
            return
        # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM ("smart") would wait for
        # every client, and a test that leaked a connection would hang the teardown.
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def stop(self) -> None:
        self.stop_server()
        shutil.rmtree(self._root, ignore_errors=True)


def db_url_for(request: Any, folder: Path) -> str:
    """For a fixture parametrized over ``DB_KINDS``: a fresh database of that kind."""
    if request.param == "sqlite":
        return f"sqlite:///{folder / 'db.sqlite'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()
