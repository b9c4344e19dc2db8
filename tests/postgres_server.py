"""A throwaway PostgreSQL server for the tests: initdb and pg_ctl from Debian's
``postgresql`` package, in a temporary folder, listening on a Unix socket only.

Started once per test run (``tests/conftest.py``); each test that asks for it gets a database
of its own. PostgreSQL refuses to run as root, so when the tests run as root the server runs
as an unprivileged user (``postgres`` if the package created it, else ``nobody``) that owns
the temporary folder.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REQUIRE_VARIABLE = "EMBARGO_REQUIRE_POSTGRES"
# A folder holding initdb, pg_ctl, createdb and dropdb, for installs outside Debian's layout.
BIN_VARIABLE = "EMBARGO_POSTGRES_BIN"
SUPERUSER = "embargo"


class PostgresMissing(Exception):
    """No PostgreSQL server binaries on this machine."""


def server_binaries() -> Path:
    """The newest installed PostgreSQL's bin folder (Debian: /usr/lib/postgresql/N/bin)."""
    chosen = os.environ.get(BIN_VARIABLE)
    if chosen:
        if not (Path(chosen) / "initdb").is_file():
            raise PostgresMissing(f"{BIN_VARIABLE}={chosen} holds no initdb")
        return Path(chosen)
    found = sorted(
        (Path(path).parent for path in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda folder: int(folder.parent.name) if folder.parent.name.isdigit() else 0,
    )
    if not found:
        on_path = shutil.which("initdb")
        if on_path is None:
            raise PostgresMissing(
                "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
                "apt-get install postgresql to run these tests on PostgreSQL too"
            )
        return Path(on_path).parent
    return found[-1]


def _runner() -> tuple[list[str], int | None]:
    """The command prefix that runs the server as an unprivileged user, and that user's
    uid to give the folder to (none needed when not root)."""
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"], (
            user.pw_uid
        )
    raise PostgresMissing("running as root and no unprivileged user to run PostgreSQL as")


@dataclass
class PostgresServer:
    folder: Path
    bin: Path
    prefix: Sequence[str]
    _names: itertools.count = itertools.count(1)  # noqa: RUF009 - one counter per server

    @property
    def socket_dir(self) -> Path:
        return self.folder / "socket"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}"

    @classmethod
    def start(cls, *, durable: bool = False) -> PostgresServer:
        """Start a server; ``durable`` keeps PostgreSQL's own durability (every commit
        flushed to disk), for benchmarks; tests run without it, to spare the disk."""
        binaries = server_binaries()
        prefix, uid = _runner()
        # Short: a Unix socket's path must fit in about a hundred bytes.
        folder = Path(tempfile.mkdtemp(prefix="embargo-pg-"))
        (folder / "socket").mkdir()
        if uid is not None:
            for path in (folder, folder / "socket"):
                os.chown(path, uid, -1)
        server = cls(folder, binaries, prefix)
        server._run(
            "initdb",
            "-D",
            str(folder / "data"),
            "-U",
            SUPERUSER,
            "--auth=trust",
            *(() if durable else ("--no-sync",)),
            "--encoding=UTF8",
            "--locale=C",
        )
        settings = f"-k {folder / 'socket'} -c listen_addresses='' -c max_connections=200"
        if not durable:
            settings += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        server._run(
            "pg_ctl",
            "-D",
            str(folder / "data"),
            "-l",
            str(folder / "server.log"),
            "-w",
            "-o",
            settings,
            "start",
        )
        return server

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def create_database(self) -> str:
        """A new, empty database; returns its URL."""
        name = f"test_{next(self._names)}"
        self._run("createdb", "-h", str(self.socket_dir), "-U", SUPERUSER, name)
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        self._run(
            "dropdb", "--force", "--if-exists", "-h", str(self.socket_dir), "-U", SUPERUSER, name
        )

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [*self.prefix, str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{program} failed ({result.returncode}): {result.stderr.strip()}\n{tail}"
            )
