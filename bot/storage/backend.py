"""The seam between Embargo's storage and a database engine.

A backend is a ``Database`` (connections, transactions, migrations, faults) plus the few
areas whose writes are engine-specific fast paths (``VoteBackend``, ``ProgressBackend``).
Areas whose SQL is portable (settings, discussion, watch roles, content) are written once
against ``Database``: SQL uses ``?`` placeholders, which a backend translates if its driver
spells them otherwise, and rows are read by position or by column name.

Changes that other processes' caches must hear of are named ``kind:key``:
``settings:<guild_id>`` (its spoiler, ranking or release-post settings),
``member_spoilers:<guild_id>``, ``watch_roles:<guild_id>``, ``progress:<user_id>``,
``tallies:<show_slug>`` (``tallies:*`` for any show), ``guild:<guild_id>`` (everything of a
server), ``content:catalogue`` (shows or episodes), ``content:reviews`` (reviews or critic
rankings only) and ``content:reload`` (not a change: a request that the leader reload the
content files).

One process at a time leads the shared work (``bot/leader.py``), chosen by the
database's ``LeaderLock``.

Two backends: ``bot/storage/sqlite`` (the default, ``sqlite:///path``) and
``bot/storage/postgres`` (``postgresql://...``, through asyncpg).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bot.storage.errors import StorageBusy

# A row as both drivers give it: by position (row[0], unpacking) or by name (row["slug"]).
Row = Any
Params = Sequence[object]
# One statement and the rows to run it with (executemany), in a batch of writes.
Statement = tuple[str, Sequence[Params]]
T = TypeVar("T")


class Transaction(Protocol):
    """Statements inside one transaction (see ``Database.transaction``)."""

    async def execute(self, sql: str, params: Params = ()) -> None: ...

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None: ...

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None: ...

    async def announce(self, changes: Sequence[str]) -> None:
        """Tell the other processes on this database, once this transaction commits, what
        it changed (their caches drop it; see ``Database.listen``). Nothing on SQLite."""

    async def serialize(self, key: str) -> None:
        """Wait until no other transaction that serialised on ``key`` is in progress, and
        keep them out until this one ends: a read-then-write on that key sees the last
        committed value. (SQLite already runs one writer at a time; PostgreSQL takes a
        transaction-scoped advisory lock, which also covers rows that don't exist yet.)"""


class LeaderLock(Protocol):
    """The lock that makes one process the leader (``bot/leader.py``), held for it by the
    database as long as the process lives and its hold is not lost."""

    async def acquire(self, *, wait: bool) -> bool:
        """Take the lock; with ``wait``, wait until it comes free (returns True), else
        return at once whether it was taken. Raises StorageError if the database can't be
        asked."""

    async def lost(self) -> None:
        """Return once the lock, held, is no longer held (its connection ended)."""

    async def release(self) -> None:
        """Let go of the lock (held or not); stop waiting for it."""


class Database(Protocol):
    """One owner of a database's connections."""

    dialect: str  # "sqlite" or "postgres": which migration files apply
    # Whether write faults are logged: off in one-shot CLI commands, which print the fault
    # as one line instead.
    report_faults: bool

    @property
    def local_file(self) -> Path | None:
        """The file the database lives in, when it is a local file (SQLite), else None."""

    async def open(self) -> None:
        """Connect, check and migrate, or raise StorageError saying what is wrong."""

    async def close(self) -> None: ...

    async def read(self, sql: str, params: Params = ()) -> list[Row]:
        """Rows of one small, index-bounded query, as committed."""

    async def read_together(self, queries: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        """Several small reads from one snapshot: no commit lands between them."""

    async def fetch_all(self, sql: str, params: Params = (), *, tuples: bool = False) -> list[Row]:
        """Rows of a query that may be big (the whole catalogue, a recount), as committed;
        with ``tuples``, plain tuples (cheaper to build when there are many)."""

    def transaction(self, *, wait_s: float = ...) -> AbstractAsyncContextManager[Transaction]:
        """``async with db.transaction() as tx:`` commits on success, rolls back on error;
        waits ``wait_s`` at most to start, then raises StorageBusy."""

    async def transact(
        self, work: Callable[[Transaction], Awaitable[T]], *, wait_s: float = ...
    ) -> T:
        """Run ``work(tx)`` as one transaction; returns what it returns. ``work`` must be
        safe to rerun: it changes nothing outside the transaction. On PostgreSQL it runs once
        more when the connection is lost before COMMIT; lost during COMMIT, it raises
        StorageOutcomeUnknown (the write may have been saved)."""

    async def run_statements(
        self,
        statements: Sequence[Statement],
        *,
        wait_s: float = ...,
        announcing: Sequence[str] = (),
    ) -> None:
        """Run each statement once per row, in order, as one transaction, which announces
        ``announcing`` (see ``Transaction.announce``)."""

    async def listen(
        self,
        on_change: Callable[[Sequence[str]], None],
        on_trust: Callable[[bool], None],
    ) -> None:
        """Call ``on_change`` with the changes other processes announce as they commit; call
        ``on_trust(False)`` when announcements may be missed (the listening connection was
        lost) and ``on_trust(True)`` once listening again. Nothing to do for SQLite, where
        one process owns the file."""

    def leader_lock(self) -> LeaderLock:
        """The lock choosing the leader among the processes on this database (SQLite: one
        process owns the file, which leads at once)."""

    async def schema_version(self) -> int: ...

    def busy(self) -> StorageBusy:
        """The error for a write that could not start in time."""
