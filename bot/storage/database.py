"""The one owner of the SQLite connections: opening, pragmas, migrations, reads and transactions.

Three connections to one database file, each with one job:

- the writer, an aiosqlite connection: migrations, transactions, and reads too big to run on
  the event loop (the whole catalogue at start-up, a recount of every vote);
- the reader, a plain ``sqlite3`` connection used on the event loop's own thread for small
  reads (a primary-key lookup, one show's rows), see :meth:`Database.read`;
- the checkpointer, an aiosqlite connection that folds the WAL back in the background.

Why small reads skip aiosqlite: every aiosqlite call is a hand-off to its thread and back,
60-150 µs on a 2-core machine, while the lookups the commands make take SQLite 5-40 µs
from the page cache. A command that hopped for its reads spent most of its time waiting
for a thread. Reading inline is safe because in WAL mode a reader never waits for the writer
(it reads the last committed snapshot), and it is correct in a way the shared writer was not:
the reader sees only committed rows, never another coroutine's transaction in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import TypeVar

import aiosqlite

log = logging.getLogger(__name__)

T = TypeVar("T")

CHECKPOINT_INTERVAL_S = 0.5
# A WAL reader waits only in rare moments (another process recovering the WAL after a crash);
# the loop may block that long, no longer.
READER_BUSY_TIMEOUT_MS = 250
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class StorageError(Exception):
    """Storage could not be opened or migrated; the message says what to do."""


def sqlite_path_from_url(url: str, base_dir: Path) -> Path | str:
    """Turn ``sqlite:///relative.db``, ``sqlite:////abs.db`` or ``sqlite://:memory:`` into a path.

    Relative paths are resolved against ``base_dir`` (the project directory), never the
    working directory, so the bot finds the same database wherever it is started from.
    """
    prefix = "sqlite://"
    if not url.startswith(prefix):
        raise StorageError(
            f"DATABASE_URL {url!r} is not supported: use sqlite:///path/to/embargo.db"
        )
    rest = url[len(prefix) :]
    if rest in (":memory:", "/:memory:"):
        return ":memory:"
    if not rest.startswith("/"):
        raise StorageError(f"DATABASE_URL {url!r} must look like sqlite:///data/embargo.db")
    rest = rest[1:]
    path = Path(rest)
    return path if path.is_absolute() else base_dir / path


def _migrations() -> list[tuple[int, str, str]]:
    """Every numbered migration shipped in ``bot/storage/migrations``, in order."""
    found = []
    for entry in resources.files("bot.storage.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [number for number, _, _ in found]
    if numbers != list(range(1, len(found) + 1)):
        raise StorageError(f"migrations are not numbered 001, 002, ... without gaps: {numbers}")
    return found


def _statements(script: str) -> list[str]:
    """Split a migration into statements (our migrations contain no ';' inside literals)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


class Database:
    """Owns the database's connections (see the module docstring).

    Small reads go through :meth:`read` and :meth:`read_together`. Writes go through
    :meth:`transaction`, which serialises writers with a lock so that two coroutines never
    interleave statements inside one transaction on the writer.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._conn: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._reader: sqlite3.Connection | None = None

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StorageError("storage is not open")
        return self._conn

    async def open(self) -> None:
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so nothing is committed
        # implicitly and a transaction spans exactly what transaction() wraps.
        self._conn = await aiosqlite.connect(str(self.path), isolation_level=None)
        self._conn.row_factory = aiosqlite.Row
        # aiosqlite enables neither of these by default.
        await self._conn.execute("PRAGMA journal_mode = WAL")
        await self._conn.execute("PRAGMA synchronous = NORMAL")
        await self._conn.execute("PRAGMA foreign_keys = ON")
        await self._conn.execute("PRAGMA busy_timeout = 5000")
        try:
            await self.migrate()
        except BaseException:
            await self.close()
            raise
        if isinstance(self.path, Path):
            await self._start_checkpointer()
            self._open_reader(self.path)

    def _open_reader(self, path: Path) -> None:
        # Autocommit: each statement reads the latest committed snapshot and holds no lock
        # after it (every read fetches all its rows), so checkpoints are never held back.
        reader = sqlite3.connect(path, isolation_level=None)
        reader.row_factory = sqlite3.Row
        reader.execute("PRAGMA query_only = ON")
        reader.execute(f"PRAGMA busy_timeout = {READER_BUSY_TIMEOUT_MS}")
        self._reader = reader

    async def _start_checkpointer(self) -> None:
        """Move WAL checkpoints off the commit path.

        SQLite's automatic checkpoint runs inside whichever COMMIT crosses the threshold, so a
        vote occasionally paid for copying the whole WAL back (and its fsync): at a million
        votes that was most of the time spent committing. A side connection checkpoints
        passively in the background instead; it never blocks writers or readers.
        """
        await self.conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._checkpointer = await aiosqlite.connect(str(self.path), isolation_level=None)
        await self._checkpointer.execute("PRAGMA busy_timeout = 5000")
        self._checkpoint_task = asyncio.create_task(
            self._checkpoint_loop(self._checkpointer), name="embargo-wal-checkpoint"
        )

    @staticmethod
    async def _checkpoint_loop(conn: aiosqlite.Connection) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            try:
                await conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except aiosqlite.Error:
                log.warning("background WAL checkpoint failed; will retry", exc_info=True)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._checkpoint_task is not None:
            self._checkpoint_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoint_task
            self._checkpoint_task = None
        if self._checkpointer is not None:
            await self._checkpointer.close()
            self._checkpointer = None
        if self._conn is not None:
            # Leave a compact database behind: fold the WAL back in before closing.
            with contextlib.suppress(aiosqlite.Error):
                await self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await self._conn.close()
            self._conn = None

    async def read(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Rows of one small, index-bounded query, as committed.

        Runs inline on the event loop's thread (see the module docstring), so use it only for
        queries bounded by an index: a key lookup, one show's or one server's rows. A query
        that may scan a table goes through the writer (``conn.execute_fetchall``) instead.
        An in-memory database has no second connection to read it: the writer answers.
        """
        if self._reader is None:
            return list(await self.conn.execute_fetchall(sql, params))
        return self._reader.execute(sql, params).fetchall()

    async def read_together(
        self, queries: Sequence[tuple[str, Sequence[object]]]
    ) -> list[list[sqlite3.Row]]:
        """Several small reads from one snapshot: no commit lands between them."""
        if self._reader is None:
            # Only the writer: holding its lock keeps our own transactions out from between
            # the statements (and their uncommitted rows out of the answer).
            async with self._write_lock:
                return [list(await self.conn.execute_fetchall(q, p)) for q, p in queries]
        reader = self._reader
        reader.execute("BEGIN")
        try:
            return [reader.execute(q, p).fetchall() for q, p in queries]
        finally:
            reader.execute("COMMIT")

    async def set_trace_callback(self, callback: Callable[[str], object] | None) -> None:
        """Pass every SQL statement the writer and the reader run to ``callback`` (None: stop);
        for diagnostics and for tests that check query plans."""
        await self.conn.set_trace_callback(callback)
        if self._reader is not None:
            self._reader.set_trace_callback(callback)

    async def schema_version(self) -> int:
        async with self.conn.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self) -> None:
        """Apply every migration newer than ``PRAGMA user_version``, each in one transaction."""
        current = await self.schema_version()
        migrations = _migrations()
        if current > len(migrations):
            raise StorageError(
                f"the database is at schema version {current}, newer than this code "
                f"({len(migrations)}): upgrade Embargo or point DATABASE_URL elsewhere"
            )
        for number, name, script in migrations:
            if number <= current:
                continue
            async with self.transaction() as conn:
                for statement in _statements(script):
                    await conn.execute(statement)
                # PRAGMA takes no parameters; number is an int we parsed from a file name.
                await conn.execute(f"PRAGMA user_version = {int(number)}")
            log.info("applied migration %s", name)

    async def run_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(connection)`` as one transaction in a single trip to the writer's thread.

        :meth:`transaction` pays a trip per statement (BEGIN, each statement, COMMIT), 60-150 µs
        each, which was most of what a vote cost; this pays one. ``work`` runs on the writer's
        thread with its ``sqlite3`` connection, so it must be plain, quick, synchronous SQL.

        aiosqlite has no public call for this. Its ``_execute`` (queue a callable on the
        connection's thread, await the result) and ``_conn`` (that thread's ``sqlite3``
        connection) are private but have kept their shape since aiosqlite 0.x; a test pins
        that they still exist, so an upgrade that changes them fails the tests, not the bot.
        """
        async with self._write_lock:
            conn = self.conn
            return await conn._execute(_in_transaction, conn, work)  # see the docstring

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """``async with db.transaction() as conn:`` commits on success, rolls back on error."""
        async with self._write_lock:
            conn = self.conn
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            else:
                await conn.commit()


def _in_transaction(conn: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """On the writer's thread: BEGIN IMMEDIATE, ``work``, COMMIT; ROLLBACK if anything fails."""
    raw = conn._conn  # this thread's sqlite3 connection (see Database.run_transaction)
    raw.execute("BEGIN IMMEDIATE")
    try:
        result = work(raw)
        raw.execute("COMMIT")
    except BaseException:
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        raise
    return result
