import asyncio
import os
import random
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from bot.config import PROJECT_DIR
from bot.ranking import Tally
from bot.storage import Storage
from bot.storage.migrations import migrations, statements
from bot.storage.votes import TalliesCache

GUILD = 111
OTHER_GUILD = 222
EP = "black-mirror/s07e06"
EP2 = "black-mirror/s07e01"
NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


# What each backend raises when a row breaks a constraint.
INTEGRITY_ERRORS = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)


@pytest.fixture
async def storage(database_url, tmp_path):
    store = await Storage.open(database_url, tmp_path)
    yield store
    await store.close()


@pytest.fixture
async def sqlite_storage(tmp_path):
    """For tests of the SQLite backend's own machinery (its writer thread, query plans)."""
    store = await Storage.open(f"sqlite:///{tmp_path}/votes.db", tmp_path)
    yield store
    await store.close()


async def rows(storage, sql, params=()):
    return [tuple(row) for row in await storage.db.fetch_all(sql, params)]


async def test_clustering_the_totals_keeps_every_total_and_votes_keep_adding_to_them(tmp_path):
    # A database at schema 4 (totals in rowid tables) with votes already counted.
    path = tmp_path / "v4.db"
    with sqlite3.connect(path) as old:
        for number, _, script in migrations("sqlite")[:4]:
            for statement in statements(script):
                old.execute(statement)
            old.execute(f"PRAGMA user_version = {number}")
        old.execute(
            "INSERT INTO votes (guild_id, user_id, episode_key, show_slug, score, voted_at) "
            "VALUES (?, 1, ?, 'black-mirror', 7, 0), (?, 2, ?, 'black-mirror', 4, 0)",
            (GUILD, EP, OTHER_GUILD, EP),
        )
        old.execute(
            "INSERT INTO vote_totals (guild_id, episode_key, show_slug, vote_count, score_sum) "
            "VALUES (?, ?, 'black-mirror', 1, 7), (?, ?, 'black-mirror', 1, 4)",
            (GUILD, EP, OTHER_GUILD, EP),
        )
        old.execute(
            "INSERT INTO vote_totals_global (episode_key, show_slug, vote_count, score_sum) "
            "VALUES (?, 'black-mirror', 2, 11)",
            (EP,),
        )
    old.close()
    store = await Storage.open(f"sqlite:///{path}", tmp_path)
    try:
        assert await store.db.schema_version() == len(migrations("sqlite"))
        assert await store.vote_tallies("black-mirror", GUILD) == {EP: Tally(1, 7)}
        assert await store.vote_tallies("black-mirror", None) == {EP: Tally(2, 11)}
        await store.cast_vote(GUILD, 3, EP, 10, now=NOW)
        await store.withdraw_vote(OTHER_GUILD, 2, EP)
        assert await store.vote_tallies("black-mirror", GUILD) == {EP: Tally(2, 17)}
        assert await store.vote_tallies("black-mirror", OTHER_GUILD) == {}
        assert await store.vote_tallies("black-mirror", None) == {EP: Tally(2, 17)}
        assert await store.check_vote_totals() == []
    finally:
        await store.close()


async def member_scores(storage) -> list[tuple]:
    return await rows(storage, "SELECT user_id, episode_key, score FROM votes")


async def test_first_vote_then_change_then_withdraw(storage):
    first = await storage.cast_vote(GUILD, 1, EP, 6, now=NOW)
    assert (first.old_score, first.new_score) == (None, 6)
    changed = await storage.cast_vote(GUILD, 1, EP, 8, now=NOW + timedelta(hours=1))
    assert (changed.old_score, changed.new_score) == (6, 8)
    assert await member_scores(storage) == [(1, EP, 8)]
    assert await rows(storage, "SELECT score, voted_at FROM votes") == [
        (8, int((NOW + timedelta(hours=1)).timestamp()))
    ]
    assert await storage.vote_tallies("black-mirror", GUILD) == {EP: Tally(1, 8)}
    assert await storage.vote_tallies("black-mirror", None) == {EP: Tally(1, 8)}

    withdrawn = await storage.withdraw_vote(GUILD, 1, EP)
    assert (withdrawn.old_score, withdrawn.new_score) == (8, None)
    assert await member_scores(storage) == []
    # Totals rows exist only while they count a vote.
    assert await rows(storage, "SELECT * FROM vote_totals") == []
    assert await rows(storage, "SELECT * FROM vote_totals_global") == []
    assert await storage.check_vote_totals() == []


async def test_withdrawing_without_a_vote_changes_nothing(storage):
    await storage.cast_vote(GUILD, 2, EP, 5, now=NOW)
    result = await storage.withdraw_vote(GUILD, 1, EP)
    assert result.old_score is None
    assert await storage.vote_tallies("black-mirror", GUILD) == {EP: Tally(1, 5)}


async def test_servers_are_separate_and_global_pools_them(storage):
    await storage.cast_vote(GUILD, 1, EP, 4, now=NOW)
    await storage.cast_vote(GUILD, 2, EP, 6, now=NOW)
    await storage.cast_vote(OTHER_GUILD, 1, EP, 10, now=NOW)  # same user, other server
    await storage.cast_vote(OTHER_GUILD, 1, EP2, 3, now=NOW)
    assert await storage.vote_tallies("black-mirror", GUILD) == {EP: Tally(2, 10)}
    assert await storage.vote_tallies("black-mirror", OTHER_GUILD) == {
        EP: Tally(1, 10),
        EP2: Tally(1, 3),
    }
    assert await storage.vote_tallies("black-mirror", None) == {EP: Tally(3, 20), EP2: Tally(1, 3)}
    assert await storage.vote_tallies("another-show", GUILD) == {}


@pytest.mark.parametrize("score", [0, 11, -3, 100])
async def test_out_of_range_scores_are_refused_and_nothing_stored(storage, score):
    with pytest.raises(ValueError, match="1 to 10"):
        await storage.cast_vote(GUILD, 1, EP, score, now=NOW)
    assert await rows(storage, "SELECT * FROM votes") == []
    assert await rows(storage, "SELECT * FROM vote_totals") == []


@pytest.mark.parametrize("score", [True, 7.5, "7"])
async def test_non_integer_scores_are_refused(storage, score):
    with pytest.raises(TypeError):
        await storage.cast_vote(GUILD, 1, EP, score, now=NOW)
    assert await rows(storage, "SELECT * FROM votes") == []


async def test_the_schema_allows_one_vote_per_member_episode_and_server(storage):
    await storage.cast_vote(GUILD, 1, EP, 7, now=NOW)
    with pytest.raises(INTEGRITY_ERRORS):
        async with storage.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO votes (guild_id, user_id, episode_key, show_slug, score, voted_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (GUILD, 1, EP, "black-mirror", 3, 0),
            )
    assert await rows(storage, "SELECT score FROM votes") == [(7,)]


async def test_member_votes_lists_one_members_votes_in_one_server(storage):
    await storage.cast_vote(GUILD, 1, EP, 9, now=NOW)
    await storage.cast_vote(GUILD, 1, EP2, 4, now=NOW + timedelta(minutes=5))
    await storage.cast_vote(GUILD, 1, "severance/s01e01", 8, now=NOW)
    await storage.cast_vote(GUILD, 2, EP, 1, now=NOW)
    await storage.cast_vote(OTHER_GUILD, 1, EP, 2, now=NOW)

    mine = await storage.member_votes(GUILD, 1)
    assert [(v.episode_key, v.score) for v in mine] == [
        (EP2, 4),
        (EP, 9),
        ("severance/s01e01", 8),
    ]
    assert mine[0].voted_at == NOW + timedelta(minutes=5)
    only_bm = await storage.member_votes(GUILD, 1, "black-mirror")
    assert [v.episode_key for v in only_bm] == [EP2, EP]
    assert await storage.member_votes(GUILD, 3) == []


async def test_200_concurrent_votes_from_200_members(storage):
    scores = {user: random.Random(user).randint(1, 10) for user in range(1, 201)}
    results = await asyncio.gather(
        *(storage.cast_vote(GUILD, user, EP, score, now=NOW) for user, score in scores.items())
    )
    assert all(r.old_score is None for r in results)
    stored = dict(
        await rows(storage, "SELECT user_id, score FROM votes WHERE guild_id = ?", (GUILD,))
    )
    assert stored == scores
    expected = Tally(200, sum(scores.values()))
    assert await storage.vote_tallies("black-mirror", GUILD) == {EP: expected}
    assert await storage.vote_tallies("black-mirror", None) == {EP: expected}
    assert await storage.check_vote_totals() == []
    # Group commit: the burst went through far fewer transactions than votes.
    assert storage._vote_committer().batches < 200


async def test_50_concurrent_changes_by_one_member_end_on_the_last(storage):
    await storage.cast_vote(GUILD, 7, EP, 5, now=NOW)
    await storage.cast_vote(GUILD, 8, EP, 9, now=NOW)  # someone else's vote stays as it is
    sequence = [random.Random(n).randint(1, 10) for n in range(50)]
    results = await asyncio.gather(
        *(storage.cast_vote(GUILD, 7, EP, score, now=NOW) for score in sequence)
    )
    # Each change reports the score it replaced, in the order the requests were made.
    assert [r.old_score for r in results] == [5, *sequence[:-1]]
    assert [r.new_score for r in results] == sequence
    assert await rows(storage, "SELECT user_id, score FROM votes ORDER BY user_id") == [
        (7, sequence[-1]),
        (8, 9),
    ]
    assert await storage.vote_tallies("black-mirror", GUILD) == {EP: Tally(2, sequence[-1] + 9)}
    assert await storage.check_vote_totals() == []


async def test_concurrent_mix_of_votes_changes_and_withdrawals_matches_a_model(storage):
    rng = random.Random(42)
    keys = [EP, EP2, "severance/s01e01"]
    ops = []
    for _ in range(600):
        guild = rng.choice([GUILD, OTHER_GUILD])
        user = rng.randint(1, 15)
        key = rng.choice(keys)
        ops.append((guild, user, key, None if rng.random() < 0.25 else rng.randint(1, 10)))

    async def run(op):
        guild, user, key, score = op
        if score is None:
            return await storage.withdraw_vote(guild, user, key)
        return await storage.cast_vote(guild, user, key, score, now=NOW)

    results = await asyncio.gather(*(run(op) for op in ops))

    model: dict[tuple[int, int, str], int] = {}
    for (guild, user, key, score), result in zip(ops, results, strict=True):
        assert result.old_score == model.get((guild, user, key))
        if score is None:
            model.pop((guild, user, key), None)
        else:
            model[(guild, user, key)] = score
    stored = await rows(storage, "SELECT guild_id, user_id, episode_key, score FROM votes")
    assert {(g, u, k): s for g, u, k, s in stored} == model
    for guild in (GUILD, OTHER_GUILD):
        for show in ("black-mirror", "severance"):
            expected: dict[str, Tally] = {}
            for (g, _, key), score in model.items():
                if g == guild and key.startswith(show + "/"):
                    expected[key] = expected.get(key, Tally()) + Tally(1, score)
            assert await storage.vote_tallies(show, guild) == expected
    assert await storage.check_vote_totals() == []


async def stored_tallies(storage, show, guild):
    """A show's totals straight from the database, bypassing the storage's cache."""
    if guild is None:
        found = await rows(
            storage,
            "SELECT episode_key, vote_count, score_sum FROM vote_totals_global WHERE show_slug = ?",
            (show,),
        )
    else:
        found = await rows(
            storage,
            "SELECT episode_key, vote_count, score_sum FROM vote_totals "
            "WHERE guild_id = ? AND show_slug = ?",
            (guild, show),
        )
    return {key: Tally(count, total) for key, count, total in found}


async def stored_tallies_now(storage, show, guild):
    """Like stored_tallies, through the small-read path (on SQLite inline on the loop: no
    await that could let a batch commit)."""
    if guild is None:
        found = await storage.db.read(
            "SELECT episode_key, vote_count, score_sum FROM vote_totals_global WHERE show_slug = ?",
            (show,),
        )
    else:
        found = await storage.db.read(
            "SELECT episode_key, vote_count, score_sum FROM vote_totals "
            "WHERE guild_id = ? AND show_slug = ?",
            (guild, show),
        )
    return {key: Tally(count, total) for key, count, total in found}


@pytest.mark.parametrize("seed", range(4))
async def test_cached_tallies_always_equal_the_stored_ones_while_votes_land(
    storage, seed, monkeypatch
):
    """Reads race the batches: a poller keeps reading (and, with room for only two entries,
    keeps refilling the cache) while batches are written, so some reads land while a batch
    is in flight and some between its commit and the cache catching up. Whatever each read
    cached, every later read must equal the committed totals."""
    # Room for two of the six scopes: reads keep missing, so entries keep being filled.
    storage._tallies_cache = TalliesCache(capacity=2)
    # Widen the gap between a commit and the cache catching up, as a busy loop would: the
    # poller gets several turns in it.
    commit = storage.db.run_transaction

    async def slow_to_return(work, **options):
        result = await commit(work, **options)
        for _ in range(3):
            await asyncio.sleep(0)
        return result

    monkeypatch.setattr(storage.db, "run_transaction", slow_to_return)
    rng = random.Random(seed)
    keys = [EP, EP2, "black-mirror/s01e01", "severance/s01e01"]
    scopes = [
        (show, guild)
        for show in ("black-mirror", "severance")
        for guild in (GUILD, OTHER_GUILD, None)
    ]

    async def vote(guild, user, key, score):
        if score is None:
            await storage.withdraw_vote(guild, user, key)
        else:
            await storage.cast_vote(guild, user, key, score, now=NOW)

    cache = storage._tallies_cache

    async def poll(done: asyncio.Event) -> None:
        while not done.is_set():
            for show, guild in scopes:
                await storage.vote_tallies(show, guild)
                # With no batch in flight every committed batch has reached the cache: each
                # entry must equal the database right now. (SQLite's reader answers inline,
                # so nothing commits between these reads; PostgreSQL's answer is compared
                # only if no batch started meanwhile.)
                if cache.writing == 0:
                    generation = cache.generation
                    for (scope, slug), cached in cache.entries().items():
                        stored = await stored_tallies_now(storage, slug, scope)
                        if cache.writing == 0 and cache.generation == generation:
                            assert cached == stored
                await asyncio.sleep(0)

    for _ in range(25):
        jobs = []
        for _ in range(rng.randint(1, 12)):
            score = None if rng.random() < 0.3 else rng.randint(1, 10)
            guild, user = rng.choice([GUILD, OTHER_GUILD]), rng.randint(1, 6)
            jobs.append(vote(guild, user, rng.choice(keys), score))
        done = asyncio.Event()
        poller = asyncio.create_task(poll(done))
        await asyncio.gather(*jobs)
        done.set()
        await poller
        for (guild, show), cached in storage._tallies_cache.entries().items():
            assert cached == await stored_tallies(storage, show, guild), (show, guild)
        for show, guild in rng.sample(scopes, len(scopes)):
            assert await storage.vote_tallies(show, guild) == await stored_tallies(
                storage, show, guild
            ), (show, guild)
    assert await storage.check_vote_totals() == []


async def test_a_cached_show_is_served_without_a_query_and_the_least_recent_is_dropped(
    sqlite_storage,
):
    storage = sqlite_storage
    storage._tallies_cache = TalliesCache(capacity=2)
    await storage.cast_vote(GUILD, 1, EP, 7, now=NOW)
    statements: list[str] = []
    await storage.db.set_trace_callback(statements.append)
    try:
        for show in ("black-mirror", "severance", "black-mirror", "the-bear"):
            await storage.vote_tallies(show, GUILD)
        # black-mirror (read, then read again: cached), severance, the-bear: three queries,
        # and the-bear pushed out severance, the least recently read.
        assert sum("FROM vote_totals" in sql for sql in statements) == 3
        statements.clear()
        await storage.vote_tallies("black-mirror", GUILD)
        await storage.vote_tallies("severance", GUILD)
        assert sum("FROM vote_totals" in sql for sql in statements) == 1
    finally:
        await storage.db.set_trace_callback(None)
    # A vote on a cached show moves its entry: the next read is served from memory, right.
    await storage.cast_vote(GUILD, 2, EP, 3, now=NOW)
    assert await storage.vote_tallies("black-mirror", GUILD) == {EP: Tally(2, 10)}


async def test_a_flusher_cancelled_mid_batch_leaves_no_cached_total_behind(sqlite_storage):
    storage = sqlite_storage
    await storage.cast_vote(GUILD, 1, EP, 7, now=NOW)
    assert await storage.vote_tallies("black-mirror", GUILD) == {EP: Tally(1, 7)}  # cached
    vote = asyncio.create_task(storage.cast_vote(GUILD, 2, EP, 3, now=NOW))
    await asyncio.sleep(0)  # queued, and the flusher started
    flusher = storage._vote_committer().flusher
    await asyncio.sleep(0)  # the flusher is waiting for the writer's thread
    flusher.cancel()
    await asyncio.gather(flusher, return_exceptions=True)
    vote.cancel()
    await storage.db.run_transaction(lambda conn: None)  # the writer's queue has drained
    assert storage._tallies_cache.entries() == {}
    assert await storage.vote_tallies("black-mirror", GUILD) == await stored_tallies(
        storage, "black-mirror", GUILD
    )


async def test_a_bad_request_does_not_sink_the_rest_of_its_batch(storage):
    committer = storage._vote_committer()
    # Bypass cast_vote's validation so the database's CHECK constraint rejects this one.
    bad = committer.submit((GUILD, 99, EP), 11, 0)
    good = [storage.cast_vote(GUILD, user, EP, 6, now=NOW) for user in range(1, 6)]
    outcome = await asyncio.gather(bad, *good, return_exceptions=True)
    assert isinstance(outcome[0], INTEGRITY_ERRORS)
    assert all(r.new_score == 6 for r in outcome[1:])
    assert await storage.vote_tallies("black-mirror", GUILD) == {EP: Tally(5, 30)}
    assert (99, EP, 11) not in await member_scores(storage)
    assert len(await member_scores(storage)) == 5
    assert await storage.check_vote_totals() == []


async def test_a_cancelled_caller_still_gets_its_vote_committed(storage):
    task = asyncio.create_task(storage.cast_vote(GUILD, 1, EP, 9, now=NOW))
    await asyncio.sleep(0)  # queued
    task.cancel()
    await storage.drain_votes()
    assert await member_scores(storage) == [(1, EP, 9)]
    assert await storage.check_vote_totals() == []


async def test_check_reports_every_kind_of_drift(storage):
    await storage.cast_vote(GUILD, 1, EP, 6, now=NOW)
    await storage.cast_vote(GUILD, 2, EP, 8, now=NOW)
    await storage.cast_vote(OTHER_GUILD, 1, EP2, 3, now=NOW)
    assert await storage.check_vote_totals() == []
    async with storage.db.transaction() as conn:
        # A total that miscounts, one with no votes behind it, and a global one gone missing.
        await conn.execute(
            "UPDATE vote_totals SET score_sum = 99 WHERE guild_id = ? AND episode_key = ?",
            (GUILD, EP),
        )
        await conn.execute(
            "INSERT INTO vote_totals (guild_id, episode_key, show_slug, vote_count, score_sum) "
            "VALUES (?, 'black-mirror/s01e01', 'black-mirror', 1, 5)",
            (GUILD,),
        )
        await conn.execute("DELETE FROM vote_totals_global WHERE episode_key = ?", (EP2,))
    drift = await storage.check_vote_totals()
    found = {(d.guild_id, d.episode_key): (d.stored, d.recounted) for d in drift}
    assert found == {
        (GUILD, EP): (Tally(2, 99), Tally(2, 14)),
        (GUILD, "black-mirror/s01e01"): (Tally(1, 5), Tally()),
        (None, EP2): (Tally(), Tally(1, 3)),
    }
    assert {d.describe() for d in drift} == {
        "guild 111 black-mirror/s07e06: stored 2 vote(s) summing 99, recount 2 summing 14",
        "guild 111 black-mirror/s01e01: stored 1 vote(s) summing 5, recount 0 summing 0",
        "global black-mirror/s07e01: stored 0 vote(s) summing 0, recount 1 summing 3",
    }


def run_check_votes(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DISCORD_TOKEN", "DATABASE_URL"}}
    env.update(DISCORD_TOKEN="", DATABASE_URL=database_url, LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "-m", "bot", "check", "--votes"],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_DIR,
        timeout=60,
        check=False,
    )


async def test_cli_check_votes_exits_1_on_drift_and_0_when_consistent(database_url, tmp_path):
    url = database_url
    store = await Storage.open(url, tmp_path)
    try:
        await store.cast_vote(GUILD, 1, EP, 7, now=NOW)
        await store.cast_vote(GUILD, 2, EP, 9, now=NOW)
    finally:
        await store.close()
    clean = await asyncio.to_thread(run_check_votes, url)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.startswith("ok:")

    store = await Storage.open(url, tmp_path)
    try:
        async with store.db.transaction() as conn:
            await conn.execute("UPDATE vote_totals_global SET vote_count = 5")
    finally:
        await store.close()
    drifted = await asyncio.to_thread(run_check_votes, url)
    assert drifted.returncode == 1
    assert (
        "drift: global black-mirror/s07e06: stored 5 vote(s) summing 16, recount 2 summing 16"
        in drifted.stderr
    )
    assert "1 vote total(s) disagree" in drifted.stderr


async def test_a_batch_spanning_several_lookups_reports_every_old_score(storage):
    # More distinct votes in one batch than one SELECT looks up (333 keys): every chunk's
    # existing scores must come back, and absent ones stay None.
    existing = {user: random.Random(user).randint(1, 10) for user in range(0, 800, 2)}
    await asyncio.gather(
        *(storage.cast_vote(GUILD, user, EP, score, now=NOW) for user, score in existing.items())
    )
    results = await asyncio.gather(
        *(storage.cast_vote(GUILD, user, EP, 5, now=NOW) for user in range(800))
    )
    assert [r.old_score for r in results] == [existing.get(user) for user in range(800)]
    assert await storage.vote_tallies("black-mirror", GUILD) == {EP: Tally(800, 4000)}
    assert await storage.check_vote_totals() == []


SCANNED = re.compile(r"^SCAN (\w+)")


async def test_voting_and_reading_votes_never_scan_a_votes_table(sqlite_storage):
    """At a million votes a scan costs hundreds of milliseconds: every statement that casting,
    changing, withdrawing and reading votes runs must find its rows through an index.
    SQLite plans without statistics as if every table were large, so these plans are the ones
    a big database gets (the scan this guards against showed up here too)."""
    storage = sqlite_storage
    conn = storage.db.conn
    await storage.cast_vote(GUILD, 1, EP2, 3, now=NOW)
    statements: list[str] = []
    await storage.db.set_trace_callback(statements.append)
    try:
        await asyncio.gather(
            *(storage.cast_vote(GUILD, user, EP, 6, now=NOW) for user in range(1, 5)),
            storage.cast_vote(GUILD, 1, EP2, 9, now=NOW),
        )
        await storage.withdraw_vote(GUILD, 2, EP)
        await storage.member_votes(GUILD, 1)
        await storage.member_votes(GUILD, 1, "black-mirror")
        await storage.vote_tallies("black-mirror", GUILD)
        await storage.vote_tallies("black-mirror", None)
    finally:
        await storage.db.set_trace_callback(None)
    checked = [sql for sql in dict.fromkeys(statements) if "vote" in sql.lower()]
    assert sum(sql.startswith(("SELECT", "WITH")) for sql in checked) >= 5
    assert any(sql.startswith("DELETE FROM votes") for sql in checked)
    for sql in checked:
        plan = [row[3] for row in await conn.execute_fetchall("EXPLAIN QUERY PLAN " + sql)]
        named = set(re.findall(r"\bWITH\s+(\w+)", sql, flags=re.IGNORECASE))
        for detail in plan:
            scanned = SCANNED.match(detail)
            if scanned and "CONSTANT ROW" not in detail:  # a VALUES list
                assert scanned[1] in named, f"{detail!r} in the plan of {sql[:200]!r}"
