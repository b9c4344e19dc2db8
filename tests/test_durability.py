"""Acknowledged votes and settings survive a power cut: the writer commits with
``synchronous=FULL`` in WAL mode (NORMAL survives only a crash of the process)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from bot.spoilers.durations import parse_window
from bot.storage import Storage

FULL = 2


async def test_the_writer_commits_durably(tmp_path):
    storage = await Storage.open(f"sqlite:///{tmp_path}/embargo.db", tmp_path)
    try:
        conn = storage.db.conn
        assert (await conn.execute_fetchall("PRAGMA synchronous"))[0][0] == FULL
        assert (await conn.execute_fetchall("PRAGMA journal_mode"))[0][0] == "wal"
        assert await storage.db.synchronous() == "FULL"
        # Both kinds of acknowledged write go through that connection.
        await storage.cast_vote(1, 2, "show/s01e01", 7, now=datetime(2026, 1, 1, tzinfo=UTC))
        await storage.set_spoiler_window(1, parse_window("30d"))
        assert (await conn.execute_fetchall("PRAGMA synchronous"))[0][0] == FULL
    finally:
        await storage.close()
    with sqlite3.connect(tmp_path / "embargo.db") as check:
        assert check.execute("SELECT score FROM votes").fetchall() == [(7,)]
    check.close()
