"""The one owner of the PostgreSQL connections: a pool, transactions, migrations, faults.

SQL shared with SQLite is written with ``?`` placeholders; each statement is translated once
to asyncpg's ``$1, $2, ...`` (our SQL has no ``?`` inside a literal). Every pooled connection
bounds its lock waits (``lock_timeout``), so a write that waits for another process's row
lock gives up within ``WRITE_TIMEOUT_S`` with StorageBusy, as it does on SQLite.

Other processes on the database hear of every change their caches hold: a write sends the
names of what it changed (``announce``, a NOTIFY in the same transaction, so it is delivered
only if and when the transaction commits) and each process listens on a connection of its
own (``listen``). While that connection is down the process trusts no cache.

Migrations run on a connection of their own holding a session advisory lock, so two
processes starting together apply each migration once: the second waits, then finds the
schema current. The schema version is kept in ``embargo_schema``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import asyncpg
import asyncpg.transaction

from bot.storage.backend import Params, Statement
from bot.storage.errors import (
    WRITE_TIMEOUT_S,
    FaultLog,
    StorageBusy,
    StorageDamaged,
    StorageError,
    StorageFull,
    StorageOutcomeUnknown,
    StorageReadOnly,
)
from bot.storage.migrations import MigrationsBroken, migrations

if TYPE_CHECKING:
    from bot.storage.postgres.leader import AdvisoryLeaderLock

log = logging.getLogger(__name__)

T = TypeVar("T")

# Connections per process for queries, unless DATABASE_POOL_SIZE says otherwise: the group
# commit keeps vote writes to one at a time, so these serve concurrent reads and the other
# writes. Each process also holds one connection that listens (``listen``). Each PostgreSQL
# connection is a server process: README, "Connection pool sizing".
POOL_SIZE = 10
# An arbitrary constant naming Embargo's migration lock among advisory locks.
MIGRATION_LOCK = 0x456D_6261_7267_6F01
# A transaction that deadlocked or failed to serialise is run again this many times at most.
RETRIES = 5
# The NOTIFY channel of cache announcements; a payload is "<sender> <change> <change>...".
CHANNEL = "embargo_changes"
# NOTIFY payloads stop at 8000 bytes: longer lists of changes are sent as "everything".
MAX_PAYLOAD = 7900
# Waits between tries to listen again after the listening connection was lost.
RELISTEN_DELAYS_S = (0.1, 0.5, 1.0, 2.0, 5.0)
_PLACEHOLDER = re.compile(r"\?")
# The connection is gone (the server restarted, a network fault, a session terminated).
CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    ConnectionError,
    OSError,
)
# Anything that may mean the database, not our code, failed.
DATABASE_ERRORS = (asyncpg.PostgresError, *CONNECTION_LOST)
# Another process's transaction got in the way: running this one again will work.
CONFLICTS = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


def announcement(sender: str, changes: Sequence[str]) -> str:
    """The NOTIFY payload for ``changes`` (an unknown change, "everything", if too long)."""
    payload = " ".join([sender, *dict.fromkeys(changes)])
    return payload if len(payload.encode()) <= MAX_PAYLOAD else f"{sender} everything"


def lock_id(key: str) -> int:
    """A 64-bit advisory lock id for ``key`` (a collision only serialises two keys)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@functools.lru_cache(maxsize=1024)
def to_postgres(sql: str) -> str:
    """``?`` placeholders as ``$1, $2, ...``."""
    counter = iter(range(1, 100_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


def redacted(url: str) -> str:
    """The URL without its password, to name the database in messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{parts.path}"


def postgres_fault(error: BaseException, where: str) -> StorageError | None:
    """The StorageError an asyncpg or OS error means for the database ``where``, or None
    when it is not a fault of the storage itself (a bug in a query, a constraint)."""
    if isinstance(error, StorageError):
        return error
    said = f"(PostgreSQL: {error})"
    match error:
        case asyncpg.DiskFullError():
            return StorageFull(
                f"the disk holding {where} is full {said}: free some space; nothing that "
                "failed was saved, and Embargo carries on once there is room"
            )
        case asyncpg.ReadOnlySQLTransactionError():
            return StorageReadOnly(
                f"{where} is read-only {said}: point DATABASE_URL at the primary server, "
                "not a standby, or let Embargo's user write"
            )
        case (
            asyncpg.LockNotAvailableError()
            | asyncpg.QueryCanceledError()
            | asyncpg.DeadlockDetectedError()
            | asyncpg.SerializationError()
        ):
            return StorageBusy(
                f"{where} stayed locked for more than {WRITE_TIMEOUT_S:g} s {said}: if a "
                "maintenance job holds the tables, wait for it to finish"
            )
        case asyncpg.DataCorruptedError() | asyncpg.IndexCorruptedError():
            return StorageDamaged(f"{where} is damaged {said}: restore the latest backup")
        case asyncpg.InvalidPasswordError() | asyncpg.InvalidAuthorizationSpecificationError():
            return StorageError(
                f"PostgreSQL refused the login to {where} {said}: check the user and password "
                "in DATABASE_URL and the server's pg_hba.conf"
            )
        case asyncpg.InvalidCatalogNameError():
            return StorageError(
                f"{where} does not exist {said}: create it (createdb) or fix DATABASE_URL"
            )
        case asyncpg.TooManyConnectionsError():
            return StorageError(
                f"{where} has no connection free {said}: raise max_connections or run fewer "
                "processes"
            )
        case asyncpg.InsufficientPrivilegeError():
            return StorageError(
                f"Embargo's user may not do this in {where} {said}: let it own the database "
                "(ALTER DATABASE ... OWNER TO ...)"
            )
        case (
            asyncpg.PostgresConnectionError()
            | asyncpg.CannotConnectNowError()
            | asyncpg.AdminShutdownError()
            | asyncpg.InterfaceError()
            | asyncpg.InternalClientError()
            | ConnectionError()
            | OSError()
        ):
            reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
            return StorageError(
                f"cannot reach PostgreSQL at {where} ({reason}): check that the server is "
                "running and DATABASE_URL names it"
            )
    return None


class PostgresTransaction:
    """Statements inside one transaction on one pooled connection."""

    def __init__(self, conn: asyncpg.Connection, sender: str) -> None:
        self.conn = conn
        self.sender = sender

    async def execute(self, sql: str, params: Params = ()) -> None:
        await self.conn.execute(to_postgres(sql), *params)

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        if rows:
            await self.conn.executemany(to_postgres(sql), rows)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.conn.fetch(to_postgres(sql), *params)
        return rows

    async def fetch_one(self, sql: str, params: Params = ()) -> asyncpg.Record | None:
        return await self.conn.fetchrow(to_postgres(sql), *params)

    async def serialize(self, key: str) -> None:
        await self.conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id(key))

    async def announce(self, changes: Sequence[str]) -> None:
        await announce(self.conn, self.sender, changes)


class Database:
    """Owns the PostgreSQL connection pool (see the module docstring)."""

    def __init__(
        self, url: str, *, pool_size: int = POOL_SIZE, faults: FaultLog | None = None
    ) -> None:
        self.dialect = "postgres"
        self.url = url
        self.where = redacted(url)
        self.pool_size = pool_size
        self.faults = faults or FaultLog()
        self.report_faults = True
        self._opening = False
        self._pool: asyncpg.Pool | None = None
        # Names this process in its announcements, so it skips its own.
        self.sender = secrets.token_hex(6)
        self._listener: asyncpg.Connection | None = None
        self._on_change: Callable[[Sequence[str]], None] | None = None
        self._on_trust: Callable[[bool], None] | None = None
        self._relisten_task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def local_file(self) -> Path | None:
        return None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StorageError("storage is not open")
        return self._pool

    async def open(self) -> None:
        """Connect, migrate and fill the pool, or raise StorageError saying what is wrong."""
        self._opening = True
        try:
            async with asyncio.timeout(30):
                await self.migrate()
                self._pool = await asyncpg.create_pool(
                    self.url,
                    min_size=1,
                    max_size=self.pool_size,
                    server_settings={
                        "lock_timeout": str(int(WRITE_TIMEOUT_S * 1000)),
                        "application_name": "embargo",
                    },
                )
        except BaseException as error:
            await self.close()
            if isinstance(error, TimeoutError):
                raise StorageError(
                    f"PostgreSQL at {self.where} did not answer within 30 s: check that the "
                    "server is up and reachable, and that no other Embargo is stuck migrating"
                ) from error
            fault = postgres_fault(error, self.where)
            if fault is None or fault is error:
                raise
            raise fault from error
        finally:
            self._opening = False

    async def close(self) -> None:
        self._closing = True
        if self._relisten_task is not None:
            self._relisten_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relisten_task
            self._relisten_task = None
        if self._listener is not None:
            listener, self._listener = self._listener, None
            with contextlib.suppress(*DATABASE_ERRORS):
                await listener.close(timeout=5)
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                async with asyncio.timeout(10):
                    await pool.close()
            except TimeoutError:  # a connection still busy after 10 s: drop it
                pool.terminate()

    async def listen(
        self,
        on_change: Callable[[Sequence[str]], None],
        on_trust: Callable[[bool], None],
    ) -> None:
        self._on_change, self._on_trust = on_change, on_trust
        try:
            await self._start_listening()
        except DATABASE_ERRORS as error:
            raise self._fault(error) from error

    async def _start_listening(self) -> None:
        conn = await asyncpg.connect(self.url, server_settings={"application_name": "embargo"})
        try:
            await conn.add_listener(CHANNEL, self._heard)
        except BaseException:
            await conn.close()
            raise
        conn.add_termination_listener(self._listener_lost)
        self._listener = conn

    def _heard(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        sender, *changes = payload.split(" ")
        if sender != self.sender and self._on_change is not None:
            self._on_change(changes)

    def _listener_lost(self, _conn: object) -> None:
        if self._closing or self._on_trust is None:
            return
        self._listener = None
        # Changes committed from now until listening again would go unheard.
        self._on_trust(False)
        log.warning(
            "lost the connection that hears other processes' changes to %s: caches are off "
            "until it is back",
            self.where,
        )
        self._relisten_task = asyncio.create_task(self._relisten(), name="embargo-relisten")

    async def _relisten(self) -> None:
        for attempt in itertools.count():
            await asyncio.sleep(RELISTEN_DELAYS_S[min(attempt, len(RELISTEN_DELAYS_S) - 1)])
            try:
                await self._start_listening()
            except DATABASE_ERRORS:
                continue
            assert self._on_trust is not None  # set before the listener was first started
            # Listening: whatever was cached may predate changes unheard meanwhile, so the
            # caches start empty (and fills in flight are dropped).
            self._on_trust(True)
            log.warning("hearing other processes' changes to %s again: caches are on", self.where)
            self._relisten_task = None
            return

    def leader_lock(self) -> AdvisoryLeaderLock:
        from bot.storage.postgres.leader import AdvisoryLeaderLock

        return AdvisoryLeaderLock(self.url)

    async def read(self, sql: str, params: Params = ()) -> list[asyncpg.Record]:
        try:
            rows: list[asyncpg.Record] = await self.pool.fetch(to_postgres(sql), *params)
            return rows
        except DATABASE_ERRORS as error:
            raise self._fault(error) from error

    async def fetch_all(
        self, sql: str, params: Params = (), *, tuples: bool = False
    ) -> list[asyncpg.Record] | list[tuple[object, ...]]:
        rows = await self.read(sql, params)
        return [tuple(row) for row in rows] if tuples else rows

    async def read_together(
        self, queries: Sequence[tuple[str, Params]]
    ) -> list[list[asyncpg.Record]]:
        try:
            async with (
                self.pool.acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                return [await conn.fetch(to_postgres(sql), *params) for sql, params in queries]
        except DATABASE_ERRORS as error:
            raise self._fault(error) from error

    @asynccontextmanager
    async def transaction(
        self, *, wait_s: float = WRITE_TIMEOUT_S
    ) -> AsyncIterator[PostgresTransaction]:
        """``async with db.transaction() as tx:`` commits on success, rolls back on error. A
        connection lost during COMMIT raises StorageOutcomeUnknown. Never run again: a body
        that is safe to rerun goes through ``transact``, which survives a lost connection."""
        async with self._connection(wait_s) as conn:
            transaction = conn.transaction()
            try:
                await transaction.start()
            except DATABASE_ERRORS as error:
                raise self._fault(error) from error
            try:
                yield PostgresTransaction(conn, self.sender)
            except BaseException as error:
                await _roll_back(conn, transaction)
                if isinstance(error, DATABASE_ERRORS):
                    raise self._fault(error) from error
                raise
            await self._commit(transaction)

    async def transact(
        self,
        work: Callable[[PostgresTransaction], Awaitable[T]],
        *,
        wait_s: float = WRITE_TIMEOUT_S,
    ) -> T:
        """Run ``work(tx)`` as one transaction and return what it returns. ``work`` must be
        safe to run again from the start (it changes nothing outside the transaction): when
        the connection is lost before COMMIT, nothing of it was saved, and it runs once more
        on a fresh connection. A connection lost during COMMIT raises StorageOutcomeUnknown
        and is never rerun: the first run may have been saved."""
        return await self.run_transaction(
            lambda conn: work(PostgresTransaction(conn, self.sender)),
            wait_s=wait_s,
            reruns_after_loss=1,
        )

    async def run_transaction(
        self,
        work: Callable[[asyncpg.Connection], Awaitable[T]],
        *,
        wait_s: float = WRITE_TIMEOUT_S,
        reruns_after_loss: int = RETRIES,
    ) -> T:
        """Run ``work(connection)`` as one transaction. It is run again from the start, on a
        fresh connection if need be, when it deadlocked or could not be serialised with
        another process's transaction (``RETRIES`` times at most), or when the connection
        was lost before COMMIT (then nothing of it was saved; ``reruns_after_loss`` times at
        most). A connection lost during COMMIT raises StorageOutcomeUnknown: the write may or
        may not be saved."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        conflicts = losses = 0
        while True:
            async with self._connection(max(0.001, deadline - loop.time())) as conn:
                transaction = conn.transaction()
                try:
                    await transaction.start()
                    result = await work(conn)
                except BaseException as error:
                    await _roll_back(conn, transaction)
                    if isinstance(error, CONFLICTS) and conflicts < RETRIES:
                        conflicts += 1
                    elif isinstance(error, CONNECTION_LOST) and losses < reruns_after_loss:
                        losses += 1
                    elif isinstance(error, DATABASE_ERRORS):
                        raise self._fault(error) from error
                    else:
                        raise
                    log.info("running a transaction again after %s", type(error).__name__)
                    continue
                await self._commit(transaction)
                return result

    async def _commit(self, transaction: asyncpg.transaction.Transaction) -> None:
        try:
            await transaction.commit()
        except CONNECTION_LOST as error:
            raise self._fault(
                StorageOutcomeUnknown(
                    f"the connection to {self.where} was lost while committing ({error}): "
                    "the last write may or may not be saved"
                )
            ) from error
        except asyncpg.PostgresError as error:
            raise self._fault(error) from error

    async def run_statements(
        self,
        statements: Sequence[Statement],
        *,
        wait_s: float = WRITE_TIMEOUT_S,
        announcing: Sequence[str] = (),
    ) -> None:
        """Run each statement once per row, in order, as one transaction, which announces
        ``announcing`` to the other processes as it commits."""

        async def run(conn: asyncpg.Connection) -> None:
            for sql, rows in statements:
                await conn.executemany(to_postgres(sql), rows)
            await announce(conn, self.sender, announcing)

        await self.run_transaction(run, wait_s=wait_s)

    @asynccontextmanager
    async def _connection(self, wait_s: float) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection, waiting ``wait_s`` at most for one."""
        try:
            conn = await self.pool.acquire(timeout=wait_s)
        except TimeoutError:
            raise self._fault(self.busy()) from None
        except DATABASE_ERRORS as error:
            raise self._fault(error) from error
        try:
            yield conn
        finally:
            await self.pool.release(conn)

    async def schema_version(self) -> int:
        rows = await self.read("SELECT version FROM embargo_schema")
        return int(rows[0][0]) if rows else 0

    async def migrate(self) -> None:
        """Apply every migration newer than the stored version, each in one transaction,
        holding the migration lock (see the module docstring)."""
        try:
            shipped = migrations(self.dialect)
        except MigrationsBroken as error:
            raise StorageError(str(error)) from error
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS embargo_schema (version INTEGER NOT NULL)"
            )
            current = await conn.fetchval("SELECT version FROM embargo_schema") or 0
            if current > len(shipped):
                raise StorageError(
                    f"the database is at schema version {current}, newer than this code "
                    f"({len(shipped)}): upgrade Embargo or point DATABASE_URL elsewhere"
                )
            for migration in shipped:
                if migration.number <= current:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.script)
                    await conn.execute("DELETE FROM embargo_schema")
                    await conn.execute(
                        "INSERT INTO embargo_schema (version) VALUES ($1)", migration.number
                    )
                log.info("applied migration %s", migration.name)
        finally:
            # Closing the session releases the advisory lock too.
            await conn.close()

    def busy(self) -> StorageBusy:
        return StorageBusy(
            f"no connection to {self.where} came free within {WRITE_TIMEOUT_S:g} s: the "
            "database is overloaded or unreachable"
        )

    def _fault(self, error: BaseException) -> BaseException:
        """What to raise for ``error``: the StorageError it means (logged for the operator,
        at most once a minute per kind), or ``error`` itself when it is a bug."""
        fault = postgres_fault(error, self.where)
        if fault is None:
            return error
        if self.report_faults and not self._opening:
            self.faults.failed(f"database ({type(fault).__name__})", str(fault))
        return fault


async def _roll_back(
    conn: asyncpg.Connection, transaction: asyncpg.transaction.Transaction
) -> None:
    """Roll back, unless the connection is gone (then the server did; a pooled connection
    lost is already back in its pool, where asking about it raises)."""
    with contextlib.suppress(*DATABASE_ERRORS):
        if not conn.is_closed():
            await transaction.rollback()


async def announce(conn: asyncpg.Connection, sender: str, changes: Sequence[str]) -> None:
    """NOTIFY the other processes of ``changes`` when the current transaction commits."""
    if changes:
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, announcement(sender, changes))
