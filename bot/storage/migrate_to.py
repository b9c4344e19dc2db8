"""``python -m bot migrate-to postgresql://...``: copy an SQLite database, every table of it,
into an empty PostgreSQL database, in one transaction, then check the copy.

Both databases are first brought to the same schema version (opening migrates them). The
target must be empty: nothing there is ever overwritten. Rows go through PostgreSQL's COPY,
tables in an order that satisfies their foreign keys. The copy is checked before this
returns: every table holds as many rows as the source's, and the vote totals equal a recount
of the copied votes. The source is not changed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from bot.content.reload_signal import PidFile, pid_file_for
from bot.storage import POSTGRES_SCHEMES, Storage
from bot.storage.errors import StorageError
from bot.storage.postgres.database import Database as PostgresDatabase
from bot.storage.sqlite.database import Database as SqliteDatabase

log = logging.getLogger(__name__)

# Tables another table refers to come first (episodes refer to shows).
FIRST = ("shows",)
ROWS_PER_COPY = 10_000


@dataclass(frozen=True, slots=True)
class Copied:
    rows: dict[str, int]  # table -> rows copied


async def migrate_to(source_url: str, target_url: str, base_dir: Path) -> Copied:
    """Copy the SQLite database at ``source_url`` into the empty PostgreSQL database at
    ``target_url``; raises StorageError, changing nothing in the target, if it can't."""
    if not target_url.startswith(POSTGRES_SCHEMES):
        raise StorageError("migrate-to copies into PostgreSQL: give a postgresql://... URL")
    if source_url.startswith(POSTGRES_SCHEMES):
        raise StorageError("migrate-to copies an SQLite database: DATABASE_URL is not one")
    source = await Storage.open(source_url, base_dir)
    source.db.report_faults = False  # a fault is the caller's to report, as one line
    try:
        assert isinstance(source.db, SqliteDatabase)
        running = _running_bot(source.db)
        if running is not None:
            raise StorageError(
                f"Embargo is running on {running}: stop it first, so that nothing is written "
                "while the copy is made"
            )
        target = await Storage.open(target_url, base_dir)
        target.db.report_faults = False
        try:
            assert isinstance(target.db, PostgresDatabase)
            return await _copy(source.db, target)
        finally:
            await target.close()
    finally:
        await source.close()


def _running_bot(db: SqliteDatabase) -> Path | None:
    """The database file if a live bot holds its pid file, else None."""
    path = db.local_file
    if path is None:
        return None
    pid_file = PidFile(pid_file_for(path))
    try:
        if not pid_file.acquire():
            return path
    except (ImportError, OSError):  # no fcntl (Windows), or a folder we can't write to
        return None
    pid_file.release()
    return None


async def _copy(source: SqliteDatabase, target: Storage) -> Copied:
    target_db = target.db
    assert isinstance(target_db, PostgresDatabase)
    tables = [
        str(row[0])
        for row in await source.fetch_all(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    target_tables = {
        str(row[0])
        for row in await target_db.fetch_all(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
    } - {"embargo_schema"}
    if set(tables) != target_tables:
        raise StorageError(
            "the two databases' tables differ (source only: "
            f"{sorted(set(tables) - target_tables)}, target only: "
            f"{sorted(target_tables - set(tables))}): are both from this version of Embargo?"
        )
    tables.sort(key=lambda table: (table not in FIRST, table))
    for table in tables:  # names read from the schema, never input
        rows = await target_db.fetch_all(f"SELECT 1 FROM {table} LIMIT 1")
        if rows:
            raise StorageError(
                f"the target database already holds {table} rows: migrate-to copies only into "
                "an empty database, so that nothing there is overwritten"
            )
    copied: dict[str, int] = {}
    async with target_db.transaction() as tx:
        for table in tables:
            info = await source.fetch_all(f"PRAGMA table_info({table})")
            columns = [str(row[1]) for row in info]
            # SQLite keeps a BOOLEAN as 0 or 1; PostgreSQL's COPY takes only true or false.
            flags = [i for i, row in enumerate(info) if str(row[2]).upper().startswith("BOOL")]
            count = 0
            async for chunk in _chunks(source, table, columns, flags):
                await tx.conn.copy_records_to_table(table, records=chunk, columns=columns)
                count += len(chunk)
            copied[table] = count
            log.info("copied %d row(s) of %s", count, table)
    for table, count in copied.items():
        (counted,) = await target_db.fetch_all(f"SELECT COUNT(*) FROM {table}")
        if counted[0] != count:  # COUNT(*) is a bigint: an int
            raise StorageError(f"the copy of {table} holds {counted[0]} rows, not {count}")
    drift = await target.check_vote_totals()
    if drift:
        raise StorageError(
            f"the copied vote totals disagree with a recount ({drift[0].describe()}): the "
            "source had drifted; run `python -m bot check --votes` on it"
        )
    return Copied(copied)


async def _chunks(
    source: SqliteDatabase, table: str, columns: list[str], flags: list[int]
) -> AsyncIterator[list[tuple[object, ...]]]:
    """The table's rows in runs of ROWS_PER_COPY, read by one cursor on the writer's
    connection, without holding the whole table in memory; the ``flags`` columns as bools."""
    async with source.conn.execute(f"SELECT {', '.join(columns)} FROM {table}") as cursor:
        cursor.row_factory = None  # plain tuples, as COPY takes them
        while chunk := await cursor.fetchmany(ROWS_PER_COPY):
            if not flags:
                # aiosqlite types rows as sqlite3.Row; without a row_factory they are tuples.
                yield cast("list[tuple[object, ...]]", list(chunk))
                continue
            rows = [list(row) for row in chunk]
            for row in rows:
                for index in flags:
                    if row[index] is not None:
                        row[index] = bool(row[index])
            yield [tuple(row) for row in rows]
