"""The PostgreSQL backend's own behaviour: several processes on one database, migrations under
a lock, faults as one line. (Everything else storage does runs on both backends in the other
storage tests.)"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import asyncpg.transaction
import pytest

from bot.calendar import PostKey, PostKind
from bot.config import PROJECT_DIR
from bot.ranking import Tally
from bot.storage import Storage, StorageError
from bot.storage.errors import StorageOutcomeUnknown
from bot.storage.migrations import migrations
from bot.storage.postgres.database import announcement, lock_id, redacted, to_postgres
from bot.storage.postgres.votes import SLOT_LOCKS
from tests.postgres_server import BIN_VARIABLE, REQUIRE_VARIABLE

NOW = datetime(2026, 1, 1, tzinfo=UTC)
GUILDS = (101, 202, 303)
EPISODES = ("bm/s01e01", "bm/s01e02", "sev/s01e01")


async def open_processes(url: str, count: int) -> list[Storage]:
    """``count`` storages on one database, opened together as processes starting at once."""
    return list(await asyncio.gather(*(Storage.open(url, Path(".")) for _ in range(count))))


async def close_all(stores: list[Storage]) -> None:
    await asyncio.gather(*(store.close() for store in stores))


async def test_processes_starting_together_apply_each_migration_once(postgres_url):
    # Without the migration lock the second process runs 001 too and fails on a table that
    # already exists.
    stores = await open_processes(postgres_url, 4)
    try:
        for store in stores:
            assert await store.db.schema_version() == len(migrations("postgres"))
        rows = await stores[0].db.fetch_all("SELECT version FROM embargo_schema")
        assert [tuple(row) for row in rows] == [(len(migrations("postgres")),)]
    finally:
        await close_all(stores)


async def test_a_database_newer_than_the_code_is_refused(postgres_url):
    store = await Storage.open(postgres_url, Path("."))
    async with store.db.transaction() as tx:
        await tx.execute("UPDATE embargo_schema SET version = 999")
    await store.close()
    with pytest.raises(StorageError, match="schema version 999, newer than this code"):
        await Storage.open(postgres_url, Path("."))


async def test_no_server_there_is_one_clear_line(tmp_path):
    url = f"postgresql://embargo:secret-password@/embargo?host={tmp_path}"
    with pytest.raises(StorageError) as caught:
        await Storage.open(url, tmp_path)
    message = str(caught.value)
    assert message.startswith("cannot reach PostgreSQL at postgresql://embargo@")
    assert "\n" not in message
    assert "secret-password" not in message


async def test_a_database_that_does_not_exist_is_named(postgres_server):
    url = postgres_server.url("no_such_database")
    with pytest.raises(StorageError, match="no_such_database does not exist"):
        await Storage.open(url, Path("."))


def test_placeholders_and_urls():
    assert to_postgres("SELECT a FROM t WHERE b = ? AND c IN (?, ?)") == (
        "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
    )
    assert redacted("postgresql://bot:hunter2@db.example:5433/embargo?sslmode=require") == (
        "postgresql://bot@db.example:5433/embargo"
    )
    assert announcement("me", ["settings:1", "tallies:bm", "settings:1"]) == (
        "me settings:1 tallies:bm"
    )
    # NOTIFY takes 8000 bytes at most: a longer list becomes one change nobody knows, on
    # which every cache empties.
    assert announcement("me", [f"tallies:show-{n}" for n in range(1000)]) == "me everything"


async def test_votes_from_three_processes_stay_exactly_once_and_totals_exact(postgres_url):
    """Three processes vote on the same keys at once. For every key the replies form one
    chain (each reports the score the one before it set), the stored score is the chain's
    end, and every total (per server and pooled) equals a recount."""
    stores = await open_processes(postgres_url, 3)
    rng = random.Random(7)
    try:
        ops = []
        for guild in GUILDS:
            for user in range(1, 9):
                for episode in EPISODES:
                    # Distinct scores per key, so the chain of replies can be followed.
                    for score in rng.sample(range(1, 11), rng.randint(1, 5)):
                        ops.append((rng.randrange(3), (guild, user, episode), score))
        rng.shuffle(ops)
        results = await asyncio.gather(
            *(stores[process].cast_vote(*key, score, now=NOW) for process, key, score in ops)
        )
        chains: dict[tuple[int, int, str], dict[int | None, int]] = {}
        for (_, key, _), result in zip(ops, results, strict=True):
            follows = chains.setdefault(key, {})
            assert result.old_score not in follows, f"two votes replaced one score: {key}"
            follows[result.old_score] = result.new_score
        for key, follows in chains.items():
            score, walked = None, 0
            while score in follows:
                score, walked = follows[score], walked + 1
            assert walked == len(follows), f"the replies for {key} are not one chain"
            rows = await stores[0].db.read(
                "SELECT score FROM votes WHERE guild_id = ? AND user_id = ? AND episode_key = ?",
                key,
            )
            assert rows[0][0] == score
        assert await stores[1].check_vote_totals() == []
        pooled: dict[str, Tally] = {}
        for (_, _, episode), follows in chains.items():
            final = next(new for new in follows.values() if new not in follows)
            pooled[episode] = pooled.get(episode, Tally()) + Tally(1, final)
        assert await stores[2].vote_tallies("bm", None) == {
            key: tally for key, tally in pooled.items() if key.startswith("bm/")
        }
    finally:
        await close_all(stores)


async def test_forgetting_a_member_while_other_processes_vote_keeps_totals_exact(postgres_url):
    stores = await open_processes(postgres_url, 3)
    try:
        await asyncio.gather(
            *(
                stores[user % 3].cast_vote(guild, user, episode, 5, now=NOW)
                for guild in GUILDS
                for user in range(1, 6)
                for episode in EPISODES
            )
        )
        jobs = [
            stores[(user + guild) % 3].cast_vote(guild, user, episode, 9, now=NOW)
            for guild in GUILDS
            for user in range(1, 6)
            for episode in EPISODES
        ]
        jobs.insert(20, stores[0].forget_member(3))
        jobs.insert(40, stores[1].forget_member(4))
        await asyncio.gather(*jobs)
        assert await stores[2].check_vote_totals() == []
    finally:
        await close_all(stores)


async def pooled_rows(store: Storage) -> list[tuple[str, int, int, int]]:
    rows = await store.db.fetch_all(
        "SELECT episode_key, slot, vote_count, score_sum FROM vote_totals_global "
        "ORDER BY episode_key, slot"
    )
    return [tuple(row) for row in rows]


async def test_a_batch_writes_the_pooled_totals_of_a_slot_no_other_transaction_holds(
    postgres_url,
):
    """Another process's batch holding slot 0 doesn't make this one wait: it writes slot 1
    (a withdrawal there counts -1). The totals read, cached or not, are the sums; the next
    batch that gets slot 0 folds slot 1 back into it."""
    store = await Storage.open(postgres_url, Path("."))
    other = await asyncpg.connect(postgres_url)
    try:
        await store.cast_vote(GUILDS[0], 1, EPISODES[0], 4, now=NOW)
        assert await pooled_rows(store) == [(EPISODES[0], 0, 1, 4)]
        other_batch = other.transaction()
        await other_batch.start()
        await other.execute("SELECT pg_advisory_xact_lock($1::int, 0)", SLOT_LOCKS)
        # Would wait for the other transaction (2 s, then StorageBusy) on one shared row.
        async with asyncio.timeout(1):
            await store.withdraw_vote(GUILDS[0], 1, EPISODES[0])
            await store.cast_vote(GUILDS[1], 2, EPISODES[0], 7, now=NOW)
        assert await pooled_rows(store) == [(EPISODES[0], 0, 1, 4), (EPISODES[0], 1, 0, 3)]
        assert await store.vote_tallies("bm", None) == {EPISODES[0]: Tally(1, 7)}
        store._vote_tallies_cache().clear()
        assert await store.vote_tallies("bm", None) == {EPISODES[0]: Tally(1, 7)}
        assert await store.check_vote_totals() == []
        await other_batch.rollback()
        await store.cast_vote(GUILDS[2], 3, EPISODES[0], 2, now=NOW)
        assert await pooled_rows(store) == [(EPISODES[0], 0, 2, 9)]
        # A slot's row that adds up to nothing goes.
        await store.withdraw_vote(GUILDS[2], 3, EPISODES[0])
        await store.withdraw_vote(GUILDS[1], 2, EPISODES[0])
        assert await pooled_rows(store) == []
        assert await store.vote_tallies("bm", None) == {}
    finally:
        await other.close()
        await store.close()


async def test_a_process_keeps_at_most_its_pool_size_plus_one_listening_connection(postgres_url):
    store = await Storage.open(postgres_url, Path("."), pool_size=3)
    admin = await asyncpg.connect(postgres_url)
    try:
        # Twelve slow reads at once: three run at a time on the pool's connections.
        await asyncio.gather(*(store.db.read("SELECT pg_sleep(0.05)") for _ in range(12)))
        counted = await admin.fetchval(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'embargo' "
            "AND datname = current_database()"
        )
        assert counted == 3 + 1
    finally:
        await admin.close()
        await store.close()


async def test_writes_after_the_server_dropped_every_connection_go_through(postgres_url):
    store = await Storage.open(postgres_url, Path("."))
    try:
        await store.cast_vote(GUILDS[0], 1, EPISODES[0], 4, now=NOW)
        assert await store.vote_tallies("bm", GUILDS[0]) == {EPISODES[0]: Tally(1, 4)}
        admin = await asyncpg.connect(postgres_url)
        try:
            # The server ends every other session, as a restart or a failover would.
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        # Written on a fresh connection (nothing of it reached a COMMIT on the dead one).
        await store.cast_vote(GUILDS[0], 2, EPISODES[0], 6, now=NOW)
        await store.set_min_votes(GUILDS[0], 3)
        assert (await store.get_guild_settings(GUILDS[0])).min_votes == 3
        assert await store.check_vote_totals() == []
        assert await store.vote_tallies("bm", GUILDS[0]) == await store.vote_tallies("bm", None)
    finally:
        await store.close()


def run_settings_test(**env: str) -> subprocess.CompletedProcess[str]:
    """One storage test, on both backends, in a pytest of its own with ``env``."""
    clean = {k: v for k, v in os.environ.items() if k not in {REQUIRE_VARIABLE, BIN_VARIABLE}}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-rs",
            "tests/test_storage_settings.py::test_meta_round_trip",
        ],
        capture_output=True,
        text=True,
        env={**clean, **env},
        cwd=PROJECT_DIR,
        timeout=120,
        check=False,
    )


def test_without_postgres_its_runs_are_skipped_saying_why_unless_required(tmp_path):
    missing = run_settings_test(**{BIN_VARIABLE: str(tmp_path)})
    assert missing.returncode == 0, missing.stdout
    assert "1 passed, 1 skipped" in missing.stdout
    assert f"{BIN_VARIABLE}={tmp_path} holds no initdb" in missing.stdout

    required = run_settings_test(**{BIN_VARIABLE: str(tmp_path), REQUIRE_VARIABLE: "1"})
    assert required.returncode == 1, required.stdout
    assert f"{REQUIRE_VARIABLE}=1 makes this a failure" in required.stdout
    assert "1 passed, 1 error" in required.stdout


async def eventually(check, within_s: float = 1.0) -> float:
    """Seconds until ``check()`` (a coroutine function) is true; fails after ``within_s``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await check():
        assert loop.time() - started < within_s, "not within the time allowed"
        await asyncio.sleep(0.005)
    return loop.time() - started


async def cache_everything(store: Storage, guild: int, member: int) -> None:
    await store.get_guild_settings(guild)
    await store.watched_keys(member)
    await store.watch_role_settings(guild)
    await store.vote_tallies("bm", guild)
    await store.vote_tallies("bm", None)


async def test_a_change_in_one_process_reaches_the_others_caches_within_a_second(postgres_url):
    one, other = await open_processes(postgres_url, 2)
    guild, member = GUILDS[0], 42
    try:
        await cache_everything(other, guild, member)
        assert guild in other._settings_cache  # cached: only an announcement can refresh it
        await one.set_min_votes(guild, 17)
        await one.mark_watched(member, [EPISODES[0]], now=NOW)
        await one.set_watch_role(guild, "bm", None, 555)
        await one.cast_vote(guild, member, EPISODES[0], 8, now=NOW)

        async def settings_seen() -> bool:
            return (await other.get_guild_settings(guild)).min_votes == 17

        async def progress_seen() -> bool:
            return await other.watched_keys(member) == {EPISODES[0]}

        async def roles_seen() -> bool:
            return [r.role_id for r in (await other.watch_role_settings(guild)).roles] == [555]

        async def tallies_seen() -> bool:
            expected = {EPISODES[0]: Tally(1, 8)}
            return (
                await other.vote_tallies("bm", guild) == expected
                and await other.vote_tallies("bm", None) == expected
            )

        for seen in (settings_seen, progress_seen, roles_seen, tallies_seen):
            await eventually(seen)
        # Forgetting the member in one process empties the other's view of them too.
        await cache_everything(other, guild, member)
        await one.forget_member(member)

        async def forgotten() -> bool:
            return (
                await other.watched_keys(member) == frozenset()
                and await other.vote_tallies("bm", None) == {}
            )

        await eventually(forgotten)
    finally:
        await close_all([one, other])


async def test_a_process_that_cannot_hear_changes_trusts_no_cache_until_it_can(postgres_url):
    one, other = await open_processes(postgres_url, 2)
    guild = GUILDS[1]
    try:
        await other.get_guild_settings(guild)
        listener_pid = other.db._listener.get_server_pid()
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", listener_pid)
        finally:
            await admin.close()

        async def untrusting() -> bool:
            return not other._caching

        await eventually(untrusting)
        # Nothing cached is used meanwhile: a change is seen at once, without an announcement.
        await one.set_min_votes(guild, 11)
        assert (await other.get_guild_settings(guild)).min_votes == 11
        assert guild not in other._settings_cache

        async def listening_again() -> bool:
            return other._caching

        await eventually(listening_again, within_s=5)
        assert other.db._listener.get_server_pid() != listener_pid
        await other.get_guild_settings(guild)
        assert guild in other._settings_cache
        await one.set_min_votes(guild, 12)

        async def heard() -> bool:
            return (await other.get_guild_settings(guild)).min_votes == 12

        await eventually(heard)
    finally:
        await close_all([one, other])


async def test_an_unknown_change_empties_every_cache(postgres_url):
    (store,) = await open_processes(postgres_url, 1)
    try:
        await cache_everything(store, GUILDS[0], 42)
        store.changed_elsewhere(["everything"])
        assert store._settings_cache == {}
        assert store._vote_tallies_cache().entries() == {}
        assert store._caching
    finally:
        await store.close()


async def test_a_deadlock_between_two_transactions_reruns_one_and_both_commit(postgres_url):
    store = await Storage.open(postgres_url, Path("."))
    try:
        async with store.db.transaction() as tx:
            await tx.execute("INSERT INTO bot_meta VALUES ('a', '0'), ('b', '0')")
        tries: list[str] = []
        both_locked_one = asyncio.Barrier(2)

        def crossing(first: str, second: str):
            async def work(conn: asyncpg.Connection) -> None:
                tries.append(first)
                # Past the deadlock detector's second, however loaded the machine: the lock
                # wait must end as a deadlock, not as the 2 s lock timeout (StorageBusy).
                await conn.execute("SET LOCAL lock_timeout = '20s'")
                await conn.execute("UPDATE bot_meta SET meta_value = $1 WHERE meta_key = $1", first)
                if len(tries) <= 2:  # the first tries wait for each other: a deadlock
                    await both_locked_one.wait()
                await conn.execute(
                    "UPDATE bot_meta SET meta_value = $1 WHERE meta_key = $2", first, second
                )

            return work

        await asyncio.gather(
            store.db.run_transaction(crossing("a", "b"), wait_s=10),
            store.db.run_transaction(crossing("b", "a"), wait_s=10),
        )
        # PostgreSQL cancelled one and it ran again and committed. On a loaded machine the
        # rerun can take its first lock before the survivor is granted it and deadlock once
        # more, to be rerun again: what must hold is a rerun, and both committed.
        assert sorted(tries[:2]) == ["a", "b"]
        assert len(tries) >= 3
        rows = dict(tuple(row) for row in await store.db.fetch_all("SELECT * FROM bot_meta"))
        assert rows in ({"a": "a", "b": "a"}, {"a": "b", "b": "b"})
    finally:
        await store.close()


async def test_a_connection_lost_while_committing_empties_the_cached_totals(
    postgres_url, monkeypatch
):
    store = await Storage.open(postgres_url, Path("."))
    try:
        await store.cast_vote(GUILDS[0], 1, EPISODES[0], 4, now=NOW)
        assert await store.vote_tallies("bm", GUILDS[0]) == {EPISODES[0]: Tally(1, 4)}
        assert store._vote_tallies_cache().entries()  # cached
        real_commit = asyncpg.transaction.Transaction.commit

        async def committed_then_lost(transaction):
            await real_commit(transaction)  # the server has it...
            raise asyncpg.ConnectionDoesNotExistError("connection was closed")  # ...we don't

        monkeypatch.setattr(asyncpg.transaction.Transaction, "commit", committed_then_lost)
        with pytest.raises(StorageOutcomeUnknown, match="may or may not be saved"):
            await store.cast_vote(GUILDS[0], 2, EPISODES[0], 6, now=NOW)
        monkeypatch.setattr(asyncpg.transaction.Transaction, "commit", real_commit)
        # The cache could not know whether the vote counted: it was emptied, not guessed.
        assert store._vote_tallies_cache().entries() == {}
        assert await store.vote_tallies("bm", GUILDS[0]) == {EPISODES[0]: Tally(2, 10)}
        assert await store.check_vote_totals() == []
    finally:
        await store.close()


async def waiting_write(admin: asyncpg.Connection, *, not_pid: int = 0) -> int:
    """The server process id of the Embargo connection (not ``not_pid``) whose write waits
    for a lock."""
    for _ in range(1000):
        # Inside a transaction, pg_stat_activity keeps what it said first unless told not to.
        await admin.execute("SELECT pg_stat_clear_snapshot()")
        pid = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'embargo' "
            "AND datname = current_database() AND wait_event_type = 'Lock' AND pid <> $1",
            not_pid,
        )
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.005)
    raise AssertionError("no write waited for the lock")


async def terminate_the_waiting_write(admin: asyncpg.Connection, *, not_pid: int = 0) -> int:
    """End the connection of the Embargo write waiting for a lock, mid-transaction, as a server
    restart or a network fault would; returns its pid."""
    pid = await waiting_write(admin, not_pid=not_pid)
    assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    return pid


async def test_a_setting_whose_connection_is_lost_mid_transaction_is_written_once_more(
    postgres_url,
):
    store = await Storage.open(postgres_url, Path("."))
    admin = await asyncpg.connect(postgres_url)
    try:
        assert await store.set_min_votes(GUILDS[0], 4) == 5  # the default before
        held = admin.transaction()
        await held.start()  # another writer of this server's settings, still in progress
        await admin.execute("SELECT pg_advisory_xact_lock($1)", lock_id(f"settings:{GUILDS[0]}"))
        change = asyncio.create_task(store.set_min_votes(GUILDS[0], 7))
        killed = await terminate_the_waiting_write(admin)
        # Nothing of the first run was saved: it runs again, on a fresh connection.
        await waiting_write(admin, not_pid=killed)
        await held.rollback()
        assert await change == 4  # the value it replaced, read by the run that committed
        assert (await store.get_guild_settings(GUILDS[0])).min_votes == 7
    finally:
        await admin.close()
        await store.close()


async def test_a_discussion_write_rerun_after_a_lost_connection_counts_once(postgres_url):
    store = await Storage.open(postgres_url, Path("."))
    admin = await asyncpg.connect(postgres_url)
    key = PostKey(GUILDS[0], EPISODES[0], PostKind.RELEASE)
    try:
        entry = await store.record_failed(key, due_at=NOW, channel_id=5, error="first")
        assert entry.attempts == 1
        held = admin.transaction()
        await held.start()
        await admin.execute("SELECT 1 FROM discussion_posts FOR UPDATE")
        second = asyncio.create_task(
            store.record_failed(key, due_at=NOW, channel_id=5, error="second")
        )
        killed = await terminate_the_waiting_write(admin)
        await waiting_write(admin, not_pid=killed)
        await held.rollback()
        assert (await second).attempts == 2  # the killed run's +1 was never saved
    finally:
        await admin.close()
        await store.close()


async def test_a_write_lost_twice_or_not_rerunnable_fails_with_nothing_saved(postgres_url):
    store = await Storage.open(postgres_url, Path("."))
    store.db.report_faults = False
    admin = await asyncpg.connect(postgres_url)
    try:
        held = admin.transaction()
        await held.start()
        await admin.execute("SELECT pg_advisory_xact_lock($1)", lock_id(f"settings:{GUILDS[0]}"))
        change = asyncio.create_task(store.set_min_votes(GUILDS[0], 7))
        killed = await terminate_the_waiting_write(admin)
        await terminate_the_waiting_write(admin, not_pid=killed)  # the one rerun, lost too
        with pytest.raises(StorageError, match="cannot reach PostgreSQL") as failed:
            await change
        assert "nothing was saved" in failed.value.member_message

        async def plain() -> None:  # a transaction not marked safe to rerun
            async with store.db.transaction() as tx:
                await tx.serialize(f"settings:{GUILDS[0]}")
                await tx.execute("INSERT INTO bot_meta VALUES ('plain', 'x')")

        write = asyncio.create_task(plain())
        await terminate_the_waiting_write(admin)
        with pytest.raises(StorageError, match="cannot reach PostgreSQL"):
            await write
        await held.rollback()
        assert (await store.get_guild_settings(GUILDS[0])).min_votes == 5  # the default
        assert await store.get_meta("plain") is None
    finally:
        await admin.close()
        await store.close()


async def test_a_connection_lost_while_committing_a_setting_is_never_rerun(
    postgres_url, monkeypatch
):
    store = await Storage.open(postgres_url, Path("."))
    store.db.report_faults = False
    runs = 0
    real_commit = asyncpg.transaction.Transaction.commit

    async def committed_then_lost(transaction):
        nonlocal runs
        runs += 1
        await real_commit(transaction)  # the server has it...
        raise asyncpg.ConnectionDoesNotExistError("connection was closed")  # ...we don't

    try:
        assert (await store.get_guild_settings(GUILDS[0])).min_votes == 5  # cached
        monkeypatch.setattr(asyncpg.transaction.Transaction, "commit", committed_then_lost)
        with pytest.raises(StorageOutcomeUnknown, match="may or may not be saved") as lost:
            await store.set_min_votes(GUILDS[0], 7)
        assert "can't tell whether it was saved" in lost.value.member_message
        # The cached value was dropped, not kept: the write may have landed (it did).
        assert (await store.get_guild_settings(GUILDS[0])).min_votes == 7
        with pytest.raises(StorageOutcomeUnknown):
            async with store.db.transaction() as tx:
                await tx.execute("INSERT INTO bot_meta VALUES ('plain', 'x')")
        monkeypatch.setattr(asyncpg.transaction.Transaction, "commit", real_commit)
        assert runs == 2  # one COMMIT each: neither was run again
        assert (await store.get_guild_settings(GUILDS[0])).min_votes == 7
        assert await store.get_meta("plain") == "x"
    finally:
        await store.close()
