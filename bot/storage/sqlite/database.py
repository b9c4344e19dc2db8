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
import functools
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar, cast

import aiosqlite

from bot.storage.backend import Params, Statement
from bot.storage.errors import (
    WRITE_TIMEOUT_S,
    FaultLog,
    StorageBusy,
    StorageDamaged,
    StorageError,
    StorageFull,
    StorageReadOnly,
)
from bot.storage.migrations import MigrationsBroken, migrations, statements

log = logging.getLogger(__name__)

T = TypeVar("T")

CHECKPOINT_INTERVAL_S = 0.5
# A WAL reader waits only in rare moments (another process recovering the WAL after a crash);
# the loop may block that long, no longer.
READER_BUSY_TIMEOUT_MS = 250


def storage_fault(error: BaseException, path: Path | str) -> StorageError | None:
    """The StorageError an SQLite or OS error means for the database at ``path``, or None
    when it is not a fault of the storage itself (a bug in a query, a constraint)."""
    if isinstance(error, StorageError):
        return error
    where = str(path)
    if isinstance(error, OSError):
        reason = error.strerror or str(error)
        return StorageError(
            f"cannot use {where} for the database ({reason}): point DATABASE_URL at a file "
            "in a folder the user running Embargo can write to"
        )
    code = getattr(error, "sqlite_errorcode", None)
    if not isinstance(error, sqlite3.Error) or code is None:
        return None
    said = f"(SQLite: {error})"
    match code & 0xFF:  # the primary result code of an extended one
        case sqlite3.SQLITE_NOTADB:
            return StorageDamaged(
                f"{where} is not an SQLite database {said}: point DATABASE_URL at Embargo's "
                "database, or move this file aside to start a new one"
            )
        case sqlite3.SQLITE_CORRUPT:
            return StorageDamaged(
                f"{where} is damaged {said}: stop Embargo and restore the latest backup, "
                f"or try `sqlite3 {where} .recover`"
            )
        case sqlite3.SQLITE_FULL:
            return StorageFull(
                f"the disk holding {where} is full {said}: free some space; nothing that "
                "failed was saved, and Embargo carries on once there is room"
            )
        case sqlite3.SQLITE_READONLY:
            return StorageReadOnly(
                f"{where} is read-only {said}: let the user running Embargo write to the "
                "file and to its folder (SQLite keeps -wal and -shm files next to it)"
            )
        case sqlite3.SQLITE_BUSY | sqlite3.SQLITE_LOCKED:
            return StorageBusy(
                f"{where} is locked by another program {said}: if another Embargo or a "
                "`check --apply` is using it, wait for it to finish"
            )
        case sqlite3.SQLITE_IOERR:
            return StorageError(
                f"disk I/O error on {where} {said}: check the disk (is it full, read-only "
                "or failing?); Embargo retries on its own"
            )
        case sqlite3.SQLITE_PERM | sqlite3.SQLITE_CANTOPEN:
            return StorageError(
                f"cannot open {where} {said}: check that its folder exists and that the "
                "user running Embargo can read and write there"
            )
    return None


def sqlite_path_from_url(url: str, base_dir: Path) -> Path | str:
    """Turn ``sqlite:///relative.db``, ``sqlite:////abs.db`` or ``sqlite://:memory:`` into a path.

    Relative paths are resolved against ``base_dir`` (the project directory), never the
    working directory, so the bot finds the same database wherever it is started from.
    """
    prefix = "sqlite://"
    if not url.startswith(prefix):
        # Whatever follows the scheme may hold a password: not echoed.
        shown = url.split("://", 1)[0] + "://…" if "://" in url else url
        raise StorageError(
            f"DATABASE_URL {shown!r} is not supported: use sqlite:///path/to/embargo.db or "
            "postgresql://user@host/dbname"
        )
    rest = url[len(prefix) :]
    if rest in (":memory:", "/:memory:"):
        return ":memory:"
    if not rest.startswith("/"):
        raise StorageError(f"DATABASE_URL {url!r} must look like sqlite:///data/embargo.db")
    rest = rest[1:]
    path = Path(rest)
    return path if path.is_absolute() else base_dir / path


class SqliteTransaction:
    """Statements inside one of the writer's transactions (``Database.transaction``)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Params = ()) -> None:
        await self.conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        await self.conn.executemany(sql, rows)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return list(await self.conn.execute_fetchall(sql, params))

    async def fetch_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        rows = await self.conn.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def serialize(self, key: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE made this the only writer."""

    async def announce(self, changes: Sequence[str]) -> None:
        """Nothing to do: one process owns the file and its caches."""


class SoleLeader:
    """The leader lock of a database one process owns: that process leads from the start,
    and for as long as it runs."""

    async def acquire(self, *, wait: bool) -> bool:
        return True

    async def lost(self) -> None:
        await asyncio.Event().wait()  # never: only a cancellation ends this wait

    async def release(self) -> None:
        """Nothing held."""


class Database:
    """Owns the database's connections (see the module docstring).

    Small reads go through :meth:`read` and :meth:`read_together`. Writes go through
    :meth:`transaction`, which serialises writers with a lock so that two coroutines never
    interleave statements inside one transaction on the writer.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        checkpoint_interval: float = CHECKPOINT_INTERVAL_S,
        faults: FaultLog | None = None,
    ) -> None:
        self.dialect = "sqlite"
        self.path = path
        self.checkpoint_interval = checkpoint_interval
        self.faults = faults or FaultLog()
        # Whether write faults are logged (see _fault). While opening, and in one-shot CLI
        # commands, the fault is raised to whoever reports it as one line instead.
        self.report_faults = True
        self._opening = False
        self._conn: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._reader: sqlite3.Connection | None = None

    @property
    def local_file(self) -> Path | None:
        return self.path if isinstance(self.path, Path) else None

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StorageError("storage is not open")
        return self._conn

    async def open(self) -> None:
        """Open, check and migrate the database, or raise StorageError saying what is wrong.

        Nothing is written to a file until it has been read as a sound SQLite database, and on
        any failure every connection is closed again (an open aiosqlite connection's thread
        would keep the process from exiting).
        """
        self._opening = True
        try:
            await self._open()
        except BaseException as error:
            await self.close()
            fault = storage_fault(error, self.path)
            if fault is None or fault is error:
                raise
            raise fault from error
        finally:
            self._opening = False

    async def _open(self) -> None:
        if isinstance(self.path, Path):
            _check_path(self.path)
            # Plain sqlite3 in a worker thread: an aiosqlite connection that fails to open
            # leaves its thread to report on a loop that may be gone by then.
            await asyncio.to_thread(_inspect, self.path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so nothing is committed
        # implicitly and a transaction spans exactly what transaction() wraps.
        self._conn = await aiosqlite.connect(str(self.path), isolation_level=None)
        self._conn.row_factory = aiosqlite.Row
        await self._conn.execute(f"PRAGMA busy_timeout = {int(WRITE_TIMEOUT_S * 1000)}")
        # aiosqlite enables neither of these by default.
        await self._conn.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL survives a crash of the process but not a power cut or an OS
        # crash: the last commits, already acknowledged to members, could be lost. FULL
        # syncs the WAL at every commit; the votes' group commit makes that one sync a batch.
        await self._conn.execute("PRAGMA synchronous = FULL")
        await self._conn.execute("PRAGMA foreign_keys = ON")
        await self.migrate()
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

    async def _checkpoint_loop(self, conn: aiosqlite.Connection) -> None:
        """Checkpoint every ``checkpoint_interval`` seconds until cancelled. A checkpoint that
        fails (a full or read-only disk) is retried on the next round; the operator hears
        about it once a minute at most, and once more when it works again."""
        kind = "background WAL checkpoint"
        while True:
            await asyncio.sleep(self.checkpoint_interval)
            try:
                await conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as error:
                fault = storage_fault(error, self.path)
                self.faults.failed(kind, str(fault or error))
            else:
                self.faults.recovered(kind)

    async def close(self) -> None:
        """Close every connection, whatever state opening or a fault left them in."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._checkpoint_task is not None:
            self._checkpoint_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoint_task
            self._checkpoint_task = None
        if self._checkpointer is not None:
            checkpointer, self._checkpointer = self._checkpointer, None
            with contextlib.suppress(sqlite3.Error):  # aiosqlite stops its thread regardless
                await checkpointer.close()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            # Leave a compact database behind: fold the WAL back in before closing.
            with contextlib.suppress(sqlite3.Error):
                await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            with contextlib.suppress(sqlite3.Error):
                await conn.close()

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

    async def listen(
        self,
        on_change: Callable[[Sequence[str]], None],
        on_trust: Callable[[bool], None],
    ) -> None:
        """Nothing to listen to: one process owns the file and its caches."""

    def leader_lock(self) -> SoleLeader:
        return SoleLeader()

    async def fetch_all(
        self, sql: str, params: Params = (), *, tuples: bool = False
    ) -> list[sqlite3.Row] | list[tuple[object, ...]]:
        """Rows of a query too big for the event loop, read on the writer's thread."""
        if not tuples:
            return list(await self.conn.execute_fetchall(sql, params))
        async with self.conn.execute(sql, params) as cursor:
            cursor.row_factory = None  # plain tuples: a third of the time of sqlite3.Row
            return list(await cursor.fetchall())

    async def set_trace_callback(self, callback: Callable[[str], object] | None) -> None:
        """Pass every SQL statement the writer and the reader run to ``callback`` (None: stop);
        for diagnostics and for tests that check query plans."""
        # aiosqlite annotates the handler without None, which sqlite3 takes to stop tracing.
        await self.conn.set_trace_callback(callback)  # type: ignore[arg-type]
        if self._reader is not None:
            self._reader.set_trace_callback(callback)

    async def synchronous(self) -> str:
        """The writer's ``PRAGMA synchronous`` as a name (``FULL``): how durable commits are."""
        rows = await self.conn.execute_fetchall("PRAGMA synchronous")
        level = int(next(iter(rows))[0])
        return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(level, str(level))

    async def schema_version(self) -> int:
        async with self.conn.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self) -> None:
        """Apply every migration newer than ``PRAGMA user_version``, each in one transaction."""
        current = await self.schema_version()
        try:
            shipped = migrations(self.dialect)
        except MigrationsBroken as error:
            raise StorageError(str(error)) from error
        if current > len(shipped):
            raise StorageError(
                f"the database is at schema version {current}, newer than this code "
                f"({len(shipped)}): upgrade Embargo or point DATABASE_URL elsewhere"
            )
        for migration in shipped:
            if migration.number <= current:
                continue
            async with self.transaction() as tx:
                for statement in statements(migration.script):
                    await tx.execute(statement)
                # PRAGMA takes no parameters; number is an int we parsed from a file name.
                await tx.execute(f"PRAGMA user_version = {int(migration.number)}")
            log.info("applied migration %s", migration.name)

    async def run_transaction(
        self, work: Callable[[sqlite3.Connection], T], *, wait_s: float = WRITE_TIMEOUT_S
    ) -> T:
        """Run ``work(connection)`` as one transaction in a single trip to the writer's thread.

        :meth:`transaction` pays a trip per statement (BEGIN, each statement, COMMIT), 60-150 µs
        each, which was most of what a vote cost; this pays one. ``work`` runs on the writer's
        thread with its ``sqlite3`` connection, so it must be plain, quick, synchronous SQL.
        Waiting for the write lock is bounded by ``wait_s`` (see WRITE_TIMEOUT_S); a fault of
        the storage itself (busy, full, read-only...) is raised as a StorageError after
        rolling back, so nothing of ``work`` is saved.

        aiosqlite has no public call for this. Its ``_execute`` (queue a callable on the
        connection's thread, await the result) and ``_conn`` (that thread's ``sqlite3``
        connection) are private but have kept their shape since aiosqlite 0.x; a test pins
        that they still exist, so an upgrade that changes them fails the tests, not the bot.
        """
        async with self._writing(wait_s) as busy_ms:
            conn = self.conn
            try:
                # aiosqlite leaves _execute unannotated: it returns what the callable returns.
                execute = cast("Callable[..., Awaitable[T]]", conn._execute)
                return await execute(_in_transaction, conn, work, busy_ms)  # see above
            except sqlite3.Error as error:
                raise self._fault(error) from error

    async def run_statements(
        self,
        statements: Sequence[Statement],
        *,
        wait_s: float = WRITE_TIMEOUT_S,
        announcing: Sequence[str] = (),
    ) -> None:
        """Run each statement once per row, in order, as one transaction in one trip to the
        writer's thread (nothing to announce: one process owns the file)."""
        await self.run_transaction(functools.partial(_executemanys, statements), wait_s=wait_s)

    @asynccontextmanager
    async def transaction(
        self, *, wait_s: float = WRITE_TIMEOUT_S
    ) -> AsyncIterator[SqliteTransaction]:
        """``async with db.transaction() as tx:`` commits on success, rolls back on error.

        Waiting for the write lock is bounded by ``wait_s``, and faults of the storage itself
        are raised as StorageError, as in :meth:`run_transaction`.
        """
        async with self._writing(wait_s) as busy_ms:
            conn = self.conn
            try:
                await conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
                await conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as error:
                raise self._fault(error) from error
            try:
                yield SqliteTransaction(conn)
                await conn.commit()
            except BaseException as error:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        await conn.rollback()
                if isinstance(error, sqlite3.Error):
                    raise self._fault(error) from error
                raise

    async def transact(
        self,
        work: Callable[[SqliteTransaction], Awaitable[T]],
        *,
        wait_s: float = WRITE_TIMEOUT_S,
    ) -> T:
        """Run ``work(tx)`` as one transaction (see ``transaction``) and return what it
        returns. Never rerun here: this process owns the file, and no connection is lost."""
        async with self.transaction(wait_s=wait_s) as tx:
            return await work(tx)

    @asynccontextmanager
    async def _writing(self, wait_s: float) -> AsyncIterator[int]:
        """Hold the write lock, waiting ``wait_s`` seconds at most; yields the milliseconds
        left of it, for SQLite's busy timeout (waiting for another process's lock)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        try:
            async with asyncio.timeout(wait_s):
                await self._write_lock.acquire()
        except TimeoutError:
            raise self._fault(self.busy()) from None
        try:
            yield max(1, int((deadline - loop.time()) * 1000))
        finally:
            self._write_lock.release()

    def busy(self) -> StorageBusy:
        """The error for a write that could not start in time."""
        return StorageBusy(
            f"{self.path} stayed locked for more than {WRITE_TIMEOUT_S:g} s: if another "
            "program (another Embargo, a `check --apply`, a backup) is writing to it, wait "
            "for it to finish"
        )

    def _fault(self, error: BaseException) -> BaseException:
        """What to raise for ``error`` from a write: the StorageError it means (logged for the
        operator, at most once a minute per kind), or ``error`` itself when it is a bug."""
        fault = storage_fault(error, self.path)
        if fault is None:
            return error
        if self.report_faults and not self._opening:
            self.faults.failed(f"database write ({type(fault).__name__})", str(fault))
        return fault


def _check_path(path: Path) -> None:
    """Refuse, before SQLite sees it, a path that can't be a database file (SQLite's own
    errors for these say only "unable to open database file")."""
    if path.is_dir():
        raise StorageError(
            f"{path} is a folder: point DATABASE_URL at a file inside it, such as "
            f"sqlite:///{path / 'embargo.db'}"
        )
    if path.exists() and not path.is_file():
        raise StorageError(f"{path} is not a regular file: point DATABASE_URL at a file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise StorageError(
                    f"{parent} is a file, so {path} can't be created in it: point "
                    "DATABASE_URL somewhere else"
                )
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError(
            f"cannot create the folder {path.parent} for the database "
            f"({error.strerror or error}): create it, or point DATABASE_URL elsewhere"
        ) from error
    # Checked before SQLite opens the file: it would fall back to reading only, and create
    # -wal and -shm files beside a database it can't write.
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise StorageReadOnly(
            f"{path} is read-only: let the user running Embargo read and write it (and its "
            "folder, where SQLite keeps -wal and -shm files), or copy it somewhere writable"
        )
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise StorageReadOnly(
            f"the folder {path.parent} is read-only: let the user running Embargo write "
            "there (SQLite keeps -wal and -shm files next to the database)"
        )


def _inspect(path: Path) -> None:
    """Read the whole database once and check it could be written, changing nothing: a file
    that is not a database, damaged pages or a read-only file, folder or disk are refused
    here, before anything writes to the file (a fraction of a second at a million votes)."""
    checked = False
    if path.exists() and not path.with_name(path.name + "-wal").exists():
        # Nothing is in a write-ahead log, so the file alone is the database: read it as
        # immutable, which takes no lock and creates no -wal or -shm file beside a file that
        # may turn out damaged (a normal connection would, and several commands racing to
        # close theirs could leave them behind or checkpoint into it).
        reader = sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)
        try:
            _check_pages(reader, path)
        finally:
            reader.close()
        checked = True
    conn = sqlite3.connect(path, isolation_level=None, timeout=WRITE_TIMEOUT_S)
    try:
        if not checked:
            _check_pages(conn, path)
        conn.execute("BEGIN IMMEDIATE")  # takes the write lock without writing a byte
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def _check_pages(conn: sqlite3.Connection, path: Path) -> None:
    problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(3)").fetchall()]
    if problems != ["ok"]:
        found = " ".join(" ".join(problems).split())
        found = found if len(found) <= 160 else found[:159] + "…"
        raise StorageDamaged(
            f"{path} is damaged ({found}): stop Embargo and restore the latest backup, "
            f"or try `sqlite3 {path} .recover`"
        )


def _in_transaction(
    conn: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T], busy_ms: int
) -> T:
    """On the writer's thread: BEGIN IMMEDIATE, ``work``, COMMIT; ROLLBACK if anything fails."""
    raw = conn._conn  # this thread's sqlite3 connection (see Database.run_transaction)
    raw.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
    raw.execute("BEGIN IMMEDIATE")
    try:
        result = work(raw)
        raw.execute("COMMIT")
    except BaseException:
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        raise
    return result


def _executemanys(statements: Sequence[Statement], conn: sqlite3.Connection) -> None:
    for sql, rows in statements:
        conn.executemany(sql, rows)
