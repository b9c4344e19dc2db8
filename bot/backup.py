"""``python -m bot backup FILE``: a consistent copy of the live database, verified.

SQLite's online backup API copies the database as one snapshot, including commits still in
the write-ahead log, while the bot keeps running: in WAL mode a reader never blocks writers,
so votes keep landing during the copy and simply aren't in it. The copy is written beside the
target, checked (``PRAGMA integrity_check``, then the vote recount of ``check --votes``), made
a single self-contained file (rollback journal, no ``-wal``), and only then renamed into place.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot.storage import POSTGRES_SCHEMES, Storage, StorageError
from bot.storage.migrations import migrations
from bot.storage.sqlite.database import sqlite_path_from_url
from bot.storage.votes import TotalsDrift

# The bot writes in bursts; the copy waits this long for a moment's lock, never forever.
BUSY_TIMEOUT_MS = 10_000


class BackupError(Exception):
    """The backup could not be made; the message is one line saying what to do."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    size: int
    schema_version: int
    votes: int
    # None: not recounted (the copy's schema is older than this code's)
    drift: list[TotalsDrift] | None


def source_path(database_url: str, base_dir: Path) -> Path:
    if database_url.startswith(POSTGRES_SCHEMES):
        raise BackupError(
            "backup copies an SQLite file; back a PostgreSQL database up with the server's "
            "own tools (pg_dump, or continuous archiving)"
        )
    try:
        path = sqlite_path_from_url(database_url, base_dir)
    except StorageError as error:
        raise BackupError(str(error)) from None
    if not isinstance(path, Path):
        raise BackupError("DATABASE_URL is an in-memory database: there is nothing to back up")
    if not path.is_file():
        raise BackupError(f"no database at {path}: check DATABASE_URL in .env")
    return path


def target_path(target: Path, source: Path, now: datetime) -> Path:
    """``target`` itself, or a time-stamped file inside it when it is a directory; absolute."""
    target = target.absolute()
    if target.is_dir():
        target = target / f"{source.stem}-{now.astimezone(UTC):%Y%m%d-%H%M%S}{source.suffix}"
    if target.resolve() == source.resolve():
        raise BackupError("the backup would overwrite the live database: choose another file")
    if target.exists():
        raise BackupError(f"{target} already exists: choose a new file name or a directory")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a directory: create it first")
    if not os.access(target.parent, os.W_OK):
        raise BackupError(f"{target.parent} is not writable by this user")
    return target


def _copy(source: Path, partial: Path) -> int:
    """Copy ``source`` to ``partial`` in one snapshot; return the copy's schema version."""
    try:
        # mode=rw: never create an empty database where the live one should be.
        src = sqlite3.connect(f"file:{source}?mode=rw", uri=True)
    except sqlite3.Error as error:
        raise BackupError(f"can't open {source}: {error}") from None
    try:
        src.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # every page in one step: one consistent snapshot
            dst.execute("PRAGMA journal_mode = DELETE")  # one file, no -wal beside it
            return int(dst.execute("PRAGMA user_version").fetchone()[0])
        finally:
            dst.close()
    except sqlite3.Error as error:
        raise BackupError(f"the copy of {source} failed: {error}") from None
    finally:
        src.close()


def _integrity(path: Path) -> tuple[list[str], int]:
    """Problems ``PRAGMA integrity_check`` finds (none: []) and the number of votes."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        has_votes = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'votes'"
        ).fetchone()
        votes = conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0] if has_votes else 0
    finally:
        conn.close()
    return ([] if rows == ["ok"] else rows), int(votes)


async def _recount(path: Path) -> list[TotalsDrift]:
    if not path.is_absolute():
        raise ValueError(f"{path} is relative: Storage would resolve it elsewhere")
    storage = await Storage.open(f"sqlite:///{path}", path.parent)
    try:
        return await storage.check_vote_totals()
    finally:
        await storage.close()


def _finish(partial: Path, target: Path) -> int:
    """Make the verified copy one self-contained file, move it into place; return its size."""
    # Opening it through Storage switched the copy to WAL.
    conn = sqlite3.connect(partial)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()
    os.replace(partial, target)
    return target.stat().st_size


async def backup_database(source: Path, target: Path) -> BackupResult:
    """Copy, verify and move the copy into place; raises BackupError, leaving nothing behind."""
    partial = target.with_name(target.name + ".partial")
    try:
        schema = await asyncio.to_thread(_copy, source, partial)
        code_schema = len(migrations("sqlite"))
        if schema > code_schema:
            raise BackupError(
                f"the database is at schema version {schema}, newer than this code "
                f"({code_schema}): back it up with the Embargo version that runs it"
            )
        problems, votes = await asyncio.to_thread(_integrity, partial)
        if problems:
            raise BackupError(f"the copy fails SQLite's integrity check: {problems[0]}")
        drift = await _recount(partial) if schema == code_schema else None
        size = await asyncio.to_thread(_finish, partial, target)
    except BaseException:
        for suffix in ("", "-journal", "-wal", "-shm"):
            leftover = partial.with_name(partial.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        raise
    return BackupResult(target, size, schema, votes, drift)
