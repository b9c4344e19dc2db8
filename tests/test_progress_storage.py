"""Watch progress, forgetting a member, and watch-role settings, against real SQLite files and
a real PostgreSQL server."""

import asyncio
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from bot.content.models import Episode
from bot.progress import RoleSyncFailure, RoleSyncProblem, WatchRole
from bot.ranking import Tally, combined, community_ranking
from bot.storage import Storage, StorageError
from bot.storage.migrations import migrations, statements
from bot.storage.progress import PROGRESS_CACHE_SIZE
from bot.storage.sqlite import votes as sqlite_votes
from bot.storage.votes import TalliesCache
from bot.storage.watch_roles import (
    MAX_WATCH_ROLES,
    TooManyWatchRolesError,
    WatchRoleInUseError,
)
from tests.stored import stored_score

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
MEMBER, OTHER = 1001, 1002
G1, G2, G3 = 11, 22, 33
E1, E2, E3 = "bm/s01e01", "bm/s01e02", "bm/s01e03"
SEV1 = "sev/s01e01"


INTEGRITY_ERRORS = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)


@pytest.fixture
async def storage(database_url, tmp_path):
    store = await Storage.open(database_url, tmp_path)
    yield store
    await store.close()


@pytest.fixture
async def sqlite_storage(tmp_path):
    """For tests of the SQLite backend's own machinery (its writer, query plans)."""
    store = await Storage.open(f"sqlite:///{tmp_path}/progress.db", tmp_path)
    yield store
    await store.close()


async def rows(storage, sql, params=()):
    return [tuple(row) for row in await storage.db.fetch_all(sql, params)]


async def stored_tallies(storage, show, guild):
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


# ---- marks -----------------------------------------------------------------------------------


async def test_marking_reports_only_new_marks_and_stores_when(storage):
    assert await storage.mark_watched(MEMBER, [E1, E2], now=NOW) == {E1, E2}
    later = NOW + timedelta(hours=2)
    assert await storage.mark_watched(MEMBER, [E2, E3, SEV1], now=later) == {E3, SEV1}
    assert await storage.watched_keys(MEMBER) == {E1, E2, E3, SEV1}
    assert await rows(
        storage, "SELECT episode_key, watched_at FROM watched_episodes ORDER BY episode_key"
    ) == [
        (E1, int(NOW.timestamp())),
        (E2, int(NOW.timestamp())),  # marking again keeps the first time
        (E3, int(later.timestamp())),
        (SEV1, int(later.timestamp())),
    ]


async def test_unmarking_reports_what_was_marked(storage):
    await storage.mark_watched(MEMBER, [E1, E2, SEV1], now=NOW)
    assert await storage.unmark_watched(MEMBER, [E2, E3, SEV1]) == {E2, SEV1}
    assert await storage.watched_keys(MEMBER) == {E1}
    assert await storage.unmark_watched(MEMBER, [E2]) == frozenset()
    assert await storage.mark_watched(MEMBER, [], now=NOW) == frozenset()


async def test_progress_belongs_to_the_member(storage):
    await storage.mark_watched(MEMBER, [E1], now=NOW)
    await storage.mark_watched(OTHER, [E2], now=NOW)
    await storage.unmark_watched(OTHER, [E1])
    assert await storage.watched_keys(MEMBER) == {E1}
    assert await storage.watched_keys(OTHER) == {E2}
    assert await storage.watched_keys(99) == frozenset()


async def test_marks_survive_reopening(database_url, tmp_path):
    url = database_url
    store = await Storage.open(url, tmp_path)
    await store.mark_watched(MEMBER, [E1, E3], now=NOW)
    await store.close()
    store = await Storage.open(url, tmp_path)
    try:
        assert await store.watched_keys(MEMBER) == {E1, E3}
    finally:
        await store.close()


@pytest.mark.parametrize("bad", ["no-slash", ""])
async def test_a_key_that_is_not_an_episode_key_is_refused_and_nothing_stored(storage, bad):
    with pytest.raises(ValueError, match="not an episode key"):
        await storage.mark_watched(MEMBER, [E1, bad], now=NOW)
    assert await rows(storage, "SELECT * FROM watched_episodes") == []


async def test_concurrent_marks_by_one_member_each_report_their_own_change(storage):
    results = await asyncio.gather(
        *(storage.mark_watched(MEMBER, [E1, E2, E3], now=NOW) for _ in range(5))
    )
    assert sorted(len(r) for r in results) == [0, 0, 0, 0, 3]
    assert await storage.watched_keys(MEMBER) == {E1, E2, E3}


async def test_the_schema_allows_one_row_per_member_and_episode(storage):
    await storage.mark_watched(MEMBER, [E1], now=NOW)
    with pytest.raises(INTEGRITY_ERRORS):
        async with storage.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO watched_episodes (user_id, show_slug, episode_key, watched_at) "
                "VALUES (?, 'bm', ?, 0)",
                (MEMBER, E1),
            )


# ---- the per-member cache --------------------------------------------------------------------


async def test_marks_are_read_once_and_every_write_drops_the_entry(sqlite_storage):
    storage = sqlite_storage
    await storage.mark_watched(MEMBER, [E1], now=NOW)
    statements: list[str] = []
    await storage.db.set_trace_callback(statements.append)
    try:
        assert await storage.watched_keys(MEMBER) == {E1}
        assert await storage.watched_keys(MEMBER) == {E1}
        assert (
            sum(s.startswith("SELECT episode_key FROM watched_episodes") for s in statements) == 1
        )
        await storage.mark_watched(MEMBER, [E2], now=NOW)
        assert await storage.watched_keys(MEMBER) == {E1, E2}
        await storage.unmark_watched(MEMBER, [E1])
        assert await storage.watched_keys(MEMBER) == {E2}
    finally:
        await storage.db.set_trace_callback(None)


async def test_a_read_overtaken_by_a_write_is_not_cached(storage, monkeypatch):
    await storage.mark_watched(MEMBER, [E1], now=NOW)
    read = storage.db.read

    async def read_then_write_lands(sql, params=()):
        found = await read(sql, params)
        # A write by the same member commits after the rows were read.
        await storage.mark_watched(MEMBER, [E2], now=NOW)
        return found

    monkeypatch.setattr(storage.db, "read", read_then_write_lands)
    assert await storage.watched_keys(MEMBER) == {E1}  # what the read saw
    monkeypatch.setattr(storage.db, "read", read)
    assert await storage.watched_keys(MEMBER) == {E1, E2}


async def test_a_failed_write_leaves_no_stale_entry(storage, monkeypatch):
    await storage.mark_watched(MEMBER, [E1], now=NOW)
    assert await storage.watched_keys(MEMBER) == {E1}

    async def fail(*args):
        raise StorageError("disk I/O error")

    monkeypatch.setattr(storage.progress_backend, "mark", fail)
    with pytest.raises(StorageError):
        await storage.mark_watched(MEMBER, [E2], now=NOW)
    assert MEMBER not in storage._progress_cache


async def test_the_cache_keeps_the_most_recent_members(storage):
    for user in range(PROGRESS_CACHE_SIZE + 3):
        await storage.watched_keys(user)
    assert len(storage._progress_cache) == PROGRESS_CACHE_SIZE
    assert 0 not in storage._progress_cache
    assert PROGRESS_CACHE_SIZE + 2 in storage._progress_cache


# ---- forgetting a member ---------------------------------------------------------------------


def episodes(show, count):
    return [
        Episode(show, show.title(), 1, n, f"Episode {n}", NOW - timedelta(days=30))
        for n in range(1, count + 1)
    ]


async def ranked_keys(storage, show_episodes, guild):
    tallies = await storage.vote_tallies(show_episodes[0].show_slug, guild)
    ranking = community_ranking(
        show_episodes, tallies, min_votes=1, prior=combined(tallies.values())
    )
    return [row.episode.key for row in ranking.rows]


async def test_forget_me_removes_progress_and_votes_everywhere_and_the_totals_stay_exact(storage):
    bm = episodes("bm", 3)
    await storage.mark_watched(MEMBER, [E1, E2, SEV1], now=NOW)
    await storage.mark_watched(OTHER, [E1], now=NOW)
    # The member loves E3 in two servers; OTHER prefers E1 a little; G3 has only OTHER.
    for guild in (G1, G2):
        await storage.cast_vote(guild, MEMBER, E3, 10, now=NOW)
        await storage.cast_vote(guild, MEMBER, E1, 1, now=NOW)
        await storage.cast_vote(guild, OTHER, E1, 7, now=NOW)
        await storage.cast_vote(guild, OTHER, E3, 6, now=NOW)
    await storage.cast_vote(G3, OTHER, E2, 5, now=NOW)
    await storage.cast_vote(G1, MEMBER, SEV1, 9, now=NOW)
    # Read (and cache) every scope's totals and the member's marks first.
    before = {guild: await ranked_keys(storage, bm, guild) for guild in (G1, G2, None)}
    assert before == {G1: [E3, E1], G2: [E3, E1], None: [E3, E2, E1]}
    assert await storage.watched_keys(MEMBER) == {E1, E2, SEV1}

    forgotten = await storage.forget_member(MEMBER)

    assert forgotten.watched_episodes == 3
    assert forgotten.votes == 5
    assert forgotten.vote_guild_ids == {G1, G2}
    assert await storage.check_vote_totals() == []
    assert await storage.watched_keys(MEMBER) == frozenset()
    assert await storage.watched_keys(OTHER) == {E1}
    assert await rows(storage, "SELECT * FROM votes WHERE user_id = ?", (MEMBER,)) == []
    # The rankings change accordingly, from the cache and from the database alike.
    after = {guild: await ranked_keys(storage, bm, guild) for guild in (G1, G2, None)}
    assert after == {G1: [E1, E3], G2: [E1, E3], None: [E1, E3, E2]}
    for (guild, show), cached in storage._tallies_cache.entries().items():
        assert cached == await stored_tallies(storage, show, guild)
    assert await storage.vote_tallies("sev", G1) == {}
    assert await storage.vote_tallies("bm", G3) == {E2: Tally(1, 5)}
    # Forgetting again finds nothing.
    again = await storage.forget_member(MEMBER)
    assert (again.watched_episodes, again.votes, again.vote_guild_ids) == (0, 0, frozenset())


async def test_a_vote_queued_before_forget_me_is_not_written_back_after_it(storage):
    await storage.cast_vote(G1, MEMBER, E1, 4, now=NOW)
    assert await storage.vote_tallies("bm", G1) == {E1: Tally(1, 4)}  # cached
    # Votes queued just before, alongside other members' votes, and one just after.
    before = [
        asyncio.create_task(storage.cast_vote(G1, MEMBER, E2, 9, now=NOW)),
        asyncio.create_task(storage.cast_vote(G2, MEMBER, E1, 8, now=NOW)),
        asyncio.create_task(storage.cast_vote(G1, OTHER, E2, 3, now=NOW)),
    ]
    forget = asyncio.create_task(storage.forget_member(MEMBER))
    after = asyncio.create_task(storage.cast_vote(G2, MEMBER, E3, 6, now=NOW))
    await asyncio.gather(*before, forget, after)
    assert forget.result().votes == 3  # E1 in G1 plus the two queued before it
    assert await rows(
        storage, "SELECT guild_id, episode_key, score FROM votes WHERE user_id = ?", (MEMBER,)
    ) == [(G2, E3, 6)]
    assert await storage.check_vote_totals() == []
    assert await storage.vote_tallies("bm", G1) == {E2: Tally(1, 3)}
    assert await storage.vote_tallies("bm", None) == {E2: Tally(1, 3), E3: Tally(1, 6)}


async def test_cached_totals_stay_exact_while_forgets_and_votes_race(storage, monkeypatch):
    storage._tallies_cache = TalliesCache(capacity=2)
    commit = storage.db.run_transaction

    async def slow_to_return(work, **options):
        result = await commit(work, **options)
        for _ in range(3):
            await asyncio.sleep(0)
        return result

    monkeypatch.setattr(storage.db, "run_transaction", slow_to_return)
    scopes = [("bm", G1), ("bm", G2), ("bm", None)]
    done = asyncio.Event()

    async def poll():
        while not done.is_set():
            for show, guild in scopes:
                await storage.vote_tallies(show, guild)
            await asyncio.sleep(0)

    poller = asyncio.create_task(poll())
    for round_ in range(10):
        jobs = [
            storage.cast_vote(guild, user, key, (user + round_) % 10 + 1, now=NOW)
            for user in range(1, 6)
            for guild, key in ((G1, E1), (G2, E2), (G1, E3))
        ]
        jobs.insert(7, storage.forget_member(1 + round_ % 5))
        await asyncio.gather(*jobs)
    done.set()
    await poller
    assert await storage.check_vote_totals() == []
    for (guild, show), cached in storage._tallies_cache.entries().items():
        assert cached == await stored_tallies(storage, show, guild)
    for show, guild in scopes:
        assert await storage.vote_tallies(show, guild) == await stored_tallies(storage, show, guild)


async def test_forget_me_is_one_transaction_a_failure_deletes_nothing(sqlite_storage, monkeypatch):
    storage = sqlite_storage
    await storage.mark_watched(MEMBER, [E1], now=NOW)
    await storage.cast_vote(G1, MEMBER, E1, 7, now=NOW)
    assert await storage.vote_tallies("bm", G1) == {E1: Tally(1, 7)}

    def progress_then_fail(user_id, conn):
        conn.execute("DELETE FROM watched_episodes WHERE user_id = ?", (user_id,))
        raise sqlite3.OperationalError("disk full")

    monkeypatch.setattr(sqlite_votes, "delete_member_progress", progress_then_fail)
    with pytest.raises(sqlite3.OperationalError):
        await storage.forget_member(MEMBER)
    assert await stored_score(storage, G1, MEMBER, E1) == 7
    assert await storage.watched_keys(MEMBER) == {E1}
    assert await storage.vote_tallies("bm", G1) == {E1: Tally(1, 7)}
    assert await storage.check_vote_totals() == []


SCANNED = re.compile(r"^SCAN (\w+)")


async def test_progress_and_forgetting_never_scan_a_table(sqlite_storage):
    """Every statement marking, reading and forgetting runs finds its rows by an index
    (SQLite plans without statistics as if every table were large)."""
    storage = sqlite_storage
    await storage.cast_vote(G1, OTHER, E1, 3, now=NOW)
    await storage.cast_vote(G2, MEMBER, E1, 3, now=NOW)
    statements: list[str] = []
    await storage.db.set_trace_callback(statements.append)
    try:
        await storage.mark_watched(MEMBER, [E1, E2, SEV1], now=NOW)
        await storage.unmark_watched(MEMBER, [E2])
        await storage.watched_keys(MEMBER)
        await storage.forget_member(MEMBER)
        await storage.set_watch_role(G1, "bm", None, 5)
        await storage.watch_role_settings(G1)
        await storage.watch_roles_for_show("bm")
        await storage.remove_watch_role(G1, "bm", None)
    finally:
        await storage.db.set_trace_callback(None)
    checked = [
        sql
        for sql in dict.fromkeys(statements)
        if re.search(r"watched_episodes|watch_role|FROM votes|DELETE FROM vote", sql)
    ]
    assert any("RECURSIVE" in sql for sql in checked)
    assert len(checked) >= 10
    conn = storage.db.conn
    for sql in checked:
        plan = [row[3] for row in await conn.execute_fetchall("EXPLAIN QUERY PLAN " + sql)]
        named = set(re.findall(r"\b(\w+)\s*\(\w+\)\s*AS\s*\(", sql))
        for detail in plan:
            scanned = SCANNED.match(detail)
            assert scanned is None or scanned.group(1) in named, (sql, plan)


# ---- watch roles -----------------------------------------------------------------------------


async def test_watch_roles_set_replace_list_and_remove(storage):
    assert (await storage.watch_role_settings(G1)).roles == ()
    assert await storage.set_watch_role(G1, "bm", None, 501) is None
    assert await storage.set_watch_role(G1, "bm", 7, 502) is None
    assert await storage.set_watch_role(G1, "bm", 0, 503) is None
    assert await storage.set_watch_role(G2, "bm", None, 601) is None
    assert (await storage.watch_role_settings(G1)).roles == (
        WatchRole(G1, "bm", None, 501),
        WatchRole(G1, "bm", 0, 503),
        WatchRole(G1, "bm", 7, 502),
    )
    # Another role for the same target replaces the binding.
    assert await storage.set_watch_role(G1, "bm", 7, 504) == WatchRole(G1, "bm", 7, 502)
    # Setting the same binding again is allowed and changes nothing.
    assert await storage.set_watch_role(G1, "bm", 7, 504) == WatchRole(G1, "bm", 7, 504)
    assert await storage.watch_roles_for_show("bm") == [
        WatchRole(G1, "bm", None, 501),
        WatchRole(G1, "bm", 0, 503),
        WatchRole(G1, "bm", 7, 504),
        WatchRole(G2, "bm", None, 601),
    ]
    assert await storage.remove_watch_role(G1, "bm", 7) == WatchRole(G1, "bm", 7, 504)
    assert await storage.remove_watch_role(G1, "bm", 7) is None
    assert [r.role_id for r in (await storage.watch_role_settings(G1)).roles] == [501, 503]


async def test_a_role_marks_one_target_per_server(storage):
    await storage.set_watch_role(G1, "bm", None, 501)
    with pytest.raises(WatchRoleInUseError) as refused:
        await storage.set_watch_role(G1, "sev", 1, 501)
    assert refused.value.existing == WatchRole(G1, "bm", None, 501)
    assert await storage.watch_roles_for_show("sev") == []
    await storage.set_watch_role(G2, "sev", 1, 501)  # another server's binding is separate


async def test_a_server_has_at_most_so_many_watch_roles(storage):
    for season in range(MAX_WATCH_ROLES):
        await storage.set_watch_role(G1, "bm", season, 1000 + season)
    with pytest.raises(TooManyWatchRolesError):
        await storage.set_watch_role(G1, "sev", None, 2000)
    # Replacing an existing binding's role is still allowed.
    await storage.set_watch_role(G1, "bm", 0, 2000)
    assert len((await storage.watch_role_settings(G1)).roles) == MAX_WATCH_ROLES


async def test_a_negative_season_is_refused(storage):
    with pytest.raises(ValueError, match="no season"):
        await storage.set_watch_role(G1, "bm", -1, 501)
    assert await storage.watch_roles_for_show("bm") == []


async def test_the_last_role_failure_is_kept_per_server_until_the_moderators_act(storage):
    await storage.set_watch_role(G1, "bm", None, 501)
    assert (await storage.watch_role_settings(G1)).last_failure is None
    await storage.record_role_sync_failure(G1, 501, RoleSyncProblem.ROLE_DELETED, now=NOW)
    later = NOW + timedelta(minutes=5)
    await storage.record_role_sync_failure(G1, 501, RoleSyncProblem.ROLE_TOO_HIGH, now=later)
    assert (await storage.watch_role_settings(G1)).last_failure == RoleSyncFailure(
        501, RoleSyncProblem.ROLE_TOO_HIGH, later
    )
    assert (await storage.watch_role_settings(G2)).last_failure is None
    await storage.set_watch_role(G1, "bm", None, 502)
    assert (await storage.watch_role_settings(G1)).last_failure is None
    await storage.record_role_sync_failure(G1, 502, RoleSyncProblem.MISSING_PERMISSION, now=NOW)
    await storage.remove_watch_role(G1, "bm", None)
    assert (await storage.watch_role_settings(G1)).last_failure is None


async def test_watch_role_settings_are_cached_and_dropped_on_every_write(sqlite_storage):
    storage = sqlite_storage
    await storage.set_watch_role(G1, "bm", None, 501)
    statements: list[str] = []
    await storage.db.set_trace_callback(statements.append)
    try:
        first = await storage.watch_role_settings(G1)
        assert await storage.watch_role_settings(G1) is first
        assert sum("FROM watch_roles WHERE guild_id" in s for s in statements) == 1
    finally:
        await storage.db.set_trace_callback(None)
    await storage.record_role_sync_failure(G1, 501, RoleSyncProblem.DISCORD_ERROR, now=NOW)
    assert (await storage.watch_role_settings(G1)).last_failure.problem is (
        RoleSyncProblem.DISCORD_ERROR
    )


async def test_the_migration_adds_progress_to_a_database_with_votes(tmp_path):
    path = tmp_path / "old.db"
    progress = next(m[0] for m in migrations("sqlite") if "watch_progress" in m[1])
    previous = [m for m in migrations("sqlite") if m[0] < progress]
    with sqlite3.connect(path) as old:
        for number, _, script in previous:
            for statement in statements(script):
                old.execute(statement)
            old.execute(f"PRAGMA user_version = {number}")
    old.close()
    store = await Storage.open(f"sqlite:///{path}", tmp_path)
    try:
        assert await store.db.schema_version() == len(migrations("sqlite"))
        await store.mark_watched(MEMBER, [E1], now=NOW)
        assert await store.watched_keys(MEMBER) == {E1}
    finally:
        await store.close()


# ---- who holds a watch role ------------------------------------------------------------------


async def test_role_holders_are_recorded_and_go_with_the_member(storage):
    await storage.record_role_holder(G1, 5, MEMBER, holds=True)
    await storage.record_role_holder(G1, 5, MEMBER, holds=True)  # twice: one row
    await storage.record_role_holder(G1, 5, OTHER, holds=True)
    await storage.record_role_holder(G2, 6, MEMBER, holds=True)
    assert await storage.role_holders(G1, 5) == [MEMBER, OTHER]
    assert await storage.roles_held_by(MEMBER) == [(G1, 5), (G2, 6)]
    await storage.record_role_holder(G1, 5, OTHER, holds=False)
    assert await storage.role_holders(G1, 5) == [MEMBER]
    await storage.mark_watched(OTHER, [E1], now=NOW)
    # OTHER no longer holds one; MEMBER holds two and has nothing watched.
    assert await storage.holders_without_progress() == [MEMBER]
    # /forget-me keeps the record until the process serving each server took them back.
    await storage.forget_member(MEMBER)
    assert await storage.roles_held_by(MEMBER) == [(G1, 5), (G2, 6)]
    await storage.forget_role_holds(MEMBER, [G1])  # G1's process took its role back
    assert await storage.roles_held_by(MEMBER) == [(G2, 6)]
    await storage.forget_role_holds(MEMBER, [G2, G2])
    assert await storage.roles_held_by(MEMBER) == []
    assert await storage.role_holders(G1, 5) == []
    assert await storage.role_holders(G2, 6) == []
    assert await storage.holders_without_progress() == []
    await storage.forget_role_holds(MEMBER, [])  # nothing to forget: nothing happens


async def test_watch_roles_for_several_shows_come_in_one_read_by_server(storage):
    await storage.set_watch_role(G2, "bm", None, 601)
    await storage.set_watch_role(G1, "sev", 1, 702)
    await storage.set_watch_role(G1, "bm", 7, 502)
    await storage.set_watch_role(G1, "other", None, 801)
    assert await storage.watch_roles_for_shows({"sev", "bm"}) == [
        WatchRole(G1, "bm", 7, 502),
        WatchRole(G1, "sev", 1, 702),
        WatchRole(G2, "bm", None, 601),
    ]
    assert await storage.watch_roles_for_shows(()) == []
