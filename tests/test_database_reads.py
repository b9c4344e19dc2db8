"""Database.read and read_together (small reads on the event loop, committed rows only) and
run_transaction (a whole transaction in one trip to the writer's thread)."""

import asyncio
import inspect
import sqlite3

import aiosqlite
import pytest

from bot.storage.sqlite.database import Database

META = "SELECT meta_value FROM bot_meta WHERE meta_key = ?"


@pytest.fixture
async def db(tmp_path):
    database = Database(tmp_path / "reads.db")
    await database.open()
    yield database
    await database.close()


async def test_a_read_sees_only_committed_rows(db):
    entered, release = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO bot_meta (meta_key, meta_value) VALUES ('k', 'v')")
            entered.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await entered.wait()
    # The row exists only inside the writer's open transaction: a reader must not see it.
    assert await db.read(META, ("k",)) == []
    release.set()
    await task
    assert [tuple(row) for row in await db.read(META, ("k",))] == [("v",)]


async def test_reads_together_come_from_one_snapshot_and_answer_each_query(db):
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO bot_meta (meta_key, meta_value) VALUES ('a', '1')")
        await conn.execute("INSERT INTO bot_meta (meta_key, meta_value) VALUES ('b', '2')")
    first, second, missing = await db.read_together(
        [(META, ("a",)), (META, ("b",)), (META, ("c",))]
    )
    assert (first[0]["meta_value"], second[0]["meta_value"], missing) == ("1", "2", [])
    # The snapshot is released afterwards: a write still commits and is read back.
    async with db.transaction() as conn:
        await conn.execute("UPDATE bot_meta SET meta_value = '3' WHERE meta_key = 'a'")
    assert (await db.read(META, ("a",)))[0]["meta_value"] == "3"


async def test_the_reader_cannot_write(db):
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await db.read("INSERT INTO bot_meta (meta_key, meta_value) VALUES ('x', 'y')")
    assert await db.read(META, ("x",)) == []


async def test_an_in_memory_database_is_read_through_the_writer():
    database = Database(":memory:")
    await database.open()
    try:
        async with database.transaction() as conn:
            await conn.execute("INSERT INTO bot_meta (meta_key, meta_value) VALUES ('m', 'n')")
        assert [tuple(r) for r in await database.read(META, ("m",))] == [("n",)]
        (rows,) = await database.read_together([(META, ("m",))])
        assert [tuple(r) for r in rows] == [("n",)]
    finally:
        await database.close()


async def test_run_transaction_commits_its_work_and_returns_its_result(db):
    def work(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO bot_meta (meta_key, meta_value) VALUES ('t', '1')")
        return conn.execute("SELECT COUNT(*) FROM bot_meta").fetchone()[0]

    assert await db.run_transaction(work) == 1
    assert [tuple(row) for row in await db.read(META, ("t",))] == [("1",)]


async def test_run_transaction_rolls_back_everything_when_its_work_fails(db):
    def work(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO bot_meta (meta_key, meta_value) VALUES ('u', '1')")
        conn.execute("INSERT INTO bot_meta (meta_key, meta_value) VALUES ('u', '2')")  # same key

    with pytest.raises(sqlite3.IntegrityError):
        await db.run_transaction(work)
    assert await db.read(META, ("u",)) == []
    # The writer is usable afterwards: nothing was left open.
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO bot_meta (meta_key, meta_value) VALUES ('u', '3')")
    assert [tuple(row) for row in await db.read(META, ("u",))] == [("3",)]


def test_the_private_aiosqlite_calls_run_transaction_relies_on_still_exist():
    # Database.run_transaction uses aiosqlite's Connection._execute and ._conn; an aiosqlite
    # release that renames them must fail here rather than in the bot.
    assert inspect.iscoroutinefunction(aiosqlite.Connection._execute)
    assert isinstance(inspect.getattr_static(aiosqlite.Connection, "_conn"), property)
