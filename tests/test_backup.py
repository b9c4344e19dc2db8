"""``python -m bot backup FILE``: a consistent, verified copy of the live database."""

import asyncio
import os
import random
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from bot.backup import backup_database
from bot.config import PROJECT_DIR
from bot.storage import Storage

GUILDS = (111, 222)
EPISODES = tuple(f"black-mirror/s07e0{n}" for n in range(1, 7))
NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def cli_env(database):
    env = {k: v for k, v in os.environ.items() if k not in {"DISCORD_TOKEN", "LOG_FILE"}}
    env.update(DISCORD_TOKEN="", DATABASE_URL=f"sqlite:///{database}")
    return env


def run_backup(database, *args, cwd, database_url=None):
    env = cli_env(database)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "bot", "backup", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


async def recount(path):
    storage = await Storage.open(f"sqlite:///{path}", path.parent)
    try:
        return await storage.check_vote_totals()
    finally:
        await storage.close()


def votes_in(path):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT COUNT(*), SUM(score) FROM votes").fetchone()


async def test_a_backup_taken_during_a_vote_storm_is_consistent_and_verified(tmp_path):
    live = tmp_path / "live.db"
    target = tmp_path / "backups" / "copy.db"
    target.parent.mkdir()
    storage = await Storage.open(f"sqlite:///{live}", tmp_path)
    stop = asyncio.Event()
    warmed_up = asyncio.Event()
    cast = 0

    async def member(user_id):
        nonlocal cast
        rng = random.Random(user_id)
        while not stop.is_set():
            guild, episode = rng.choice(GUILDS), rng.choice(EPISODES)
            if rng.random() < 0.1:
                await storage.withdraw_vote(guild, user_id, episode)
            else:
                await storage.cast_vote(guild, user_id, episode, rng.randint(1, 10), now=NOW)
            cast += 1
            if cast >= 2000:
                warmed_up.set()

    members = [asyncio.create_task(member(user_id)) for user_id in range(1, 81)]
    try:
        await asyncio.wait_for(warmed_up.wait(), 60)
        # The operator's command, in its own process, while the votes keep landing.
        before = cast
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "backup",
            str(target),
            env=cli_env(live),
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        during = cast - before
    finally:
        stop.set()
        await asyncio.gather(*members)
        await storage.close()

    assert process.returncode == 0, err.decode()
    assert err.decode() == ""
    lines = out.decode().splitlines()
    assert lines[0].startswith("backed up live.db to backups/copy.db: ")
    assert lines[-1] == "ok: integrity checked, every vote total matches a recount"
    assert during > 0  # votes were being committed while the copy was taken
    # The copy is one self-contained file, and consistent on its own.
    assert sorted(p.name for p in target.parent.iterdir()) == ["copy.db"]
    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert await recount(target) == []
    count, _ = votes_in(target)
    assert 0 < count <= len(GUILDS) * len(EPISODES) * 80
    assert f"{count} vote(s)" in lines[0]


async def test_commits_still_in_the_write_ahead_log_are_in_the_copy(tmp_path):
    live = tmp_path / "live.db"
    await (await Storage.open(f"sqlite:///{live}", tmp_path)).close()
    writer = sqlite3.connect(live, isolation_level=None)
    try:
        writer.execute("PRAGMA wal_autocheckpoint = 0")  # keep the commits in the WAL
        writer.execute("BEGIN")
        for user_id in range(1, 11):
            writer.execute(
                "INSERT INTO votes (guild_id, user_id, episode_key, show_slug, score, voted_at) "
                "VALUES (1, ?, ?, 'black-mirror', 7, 0)",
                (user_id, EPISODES[0]),
            )
        writer.execute(
            "INSERT INTO vote_totals (guild_id, episode_key, show_slug, vote_count, score_sum) "
            "VALUES (1, ?, 'black-mirror', 10, 70)",
            (EPISODES[0],),
        )
        writer.execute(
            "INSERT INTO vote_totals_global (episode_key, show_slug, vote_count, score_sum) "
            "VALUES (?, 'black-mirror', 10, 70)",
            (EPISODES[0],),
        )
        writer.execute("COMMIT")
        assert (tmp_path / "live.db-wal").stat().st_size > 0
        result = await backup_database(live, tmp_path / "copy.db")
    finally:
        writer.close()
    assert result.votes == 10
    assert result.drift == []
    assert votes_in(tmp_path / "copy.db") == (10, 70)


async def test_a_directory_gets_a_time_stamped_file(tmp_path):
    live = tmp_path / "embargo.db"
    await (await Storage.open(f"sqlite:///{live}", tmp_path)).close()
    backups = tmp_path / "backups"
    backups.mkdir()
    result = run_backup(live, backups, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (made,) = backups.iterdir()
    assert made.name.startswith("embargo-")
    assert made.suffix == ".db"
    assert len(made.stem) == len("embargo-20250501-120000")
    assert await recount(made) == []


async def test_drift_in_the_copy_exits_1_and_keeps_the_copy(tmp_path):
    live = tmp_path / "live.db"
    storage = await Storage.open(f"sqlite:///{live}", tmp_path)
    await storage.cast_vote(GUILDS[0], 1, EPISODES[0], 8, now=NOW)
    await storage.close()
    with sqlite3.connect(live) as conn:
        conn.execute("UPDATE vote_totals SET score_sum = 99")
    conn.close()
    result = run_backup(live, tmp_path / "copy.db", cwd=tmp_path)
    assert result.returncode == 1
    assert "drift: guild 111 black-mirror/s07e01: stored 1 vote(s) summing 99" in result.stderr
    assert "check --votes" in result.stderr
    assert (tmp_path / "copy.db").is_file()  # a faithful copy, drift and all


def test_an_older_schema_is_copied_and_integrity_checked_but_not_migrated(tmp_path):
    live = tmp_path / "old.db"
    with sqlite3.connect(live) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    result = run_backup(live, tmp_path / "copy.db", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "votes not recounted" in result.stdout
    with sqlite3.connect(tmp_path / "copy.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("no database", "no database at"),
        ("no target folder", "is not a directory: create it first"),
        ("target exists", "already exists"),
        ("target is the database", "overwrite the live database"),
        ("in memory", "in-memory"),
        ("bad url", "DATABASE_URL"),
        ("postgresql", "pg_dump"),
        ("newer schema", "newer than this code"),
    ],
)
async def test_bad_paths_are_one_line_and_exit_2(tmp_path, case, needle):
    live = tmp_path / "live.db"
    if case != "no database":
        await (await Storage.open(f"sqlite:///{live}", tmp_path)).close()
    target = tmp_path / "copy.db"
    if case == "no target folder":
        target = tmp_path / "missing" / "copy.db"
    elif case == "target exists":
        target.write_bytes(b"keep me")
    elif case == "target is the database":
        target = live
    elif case == "newer schema":
        with sqlite3.connect(live) as conn:
            conn.execute("PRAGMA user_version = 999")
        conn.close()
    before = sorted(p.name for p in tmp_path.iterdir())
    database_url = {
        "in memory": "sqlite:///:memory:",
        "bad url": "mysql://localhost/embargo",
        "postgresql": "postgresql://localhost/embargo",
    }.get(case)
    result = run_backup(live, target, cwd=tmp_path, database_url=database_url)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing left behind
    if case == "target exists":
        assert target.read_bytes() == b"keep me"


def test_backup_is_in_the_help():
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--help"],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=60,
        check=True,
    )
    assert "safe while the bot runs" in " ".join(result.stdout.split())
