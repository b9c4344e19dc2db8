"""``python -m bot migrate-to``: an SQLite database copied whole into PostgreSQL, checked,
and never into a database that already holds anything."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.calendar import PostKey, PostKind
from bot.config import PROJECT_DIR
from bot.content.sync import sync_content
from bot.hiding import GuardMode
from bot.progress import RoleSyncProblem
from bot.spoilers.durations import parse_window
from bot.spoilers.policy import SpoilerMode
from bot.storage import Storage
from bot.storage.members import StoredWebhook

NOW = datetime(2026, 2, 1, tzinfo=UTC)
EPISODE = "black-mirror/s07e06"


def run_bot(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DISCORD_TOKEN", "DATABASE_URL"}}
    env.update(DISCORD_TOKEN="", DATABASE_URL=database_url, LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_DIR,
        timeout=120,
        check=False,
    )


async def every_row(storage: Storage) -> dict[str, list[tuple]]:
    if storage.db.dialect == "postgres":
        sql = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_name <> 'embargo_schema'"
        )
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    tables = [row[0] for row in await storage.db.fetch_all(sql)]
    every: dict[str, list[tuple]] = {}
    for table in tables:
        rows = [
            dict(zip(row.keys(), row, strict=True))
            for row in await storage.db.fetch_all(f"SELECT * FROM {table}")
        ]
        if storage.db.dialect == "postgres" and table == "vote_totals_global":
            # PostgreSQL's own column (migration 015): a copy lands in slot 0.
            assert {row.pop("slot") for row in rows} <= {0}
        # Rows as (column, value) pairs: the two schemas may order a table's columns differently.
        every[table] = sorted((tuple(sorted(row.items())) for row in rows), key=repr)
    return every


async def fill(storage: Storage, content: Path) -> None:
    await sync_content(storage, content)
    await storage.set_spoiler_window(1, parse_window("30d"))
    await storage.set_spoiler_mode(1, SpoilerMode.PRIVATE)
    await storage.set_show_window(1, "black-mirror", parse_window("forever"))
    await storage.set_spoilers_ok_channel(1, 77, True)
    await asyncio.gather(
        *(
            storage.cast_vote(guild, user, EPISODE, (guild + user) % 10 + 1, now=NOW)
            for guild in (1, 2)
            for user in range(20)
        )
    )
    await storage.mark_watched(5, [EPISODE], now=NOW)
    await storage.set_watch_role(1, "black-mirror", None, 900)
    await storage.record_role_sync_failure(1, 900, RoleSyncProblem.DISCORD_ERROR, now=NOW)
    await storage.record_role_holder(1, 900, 5, holds=True)
    await storage.set_announce(1, 10, None, now=NOW)
    await storage.set_announce(1, 11, 12, show_slug="black-mirror", now=NOW)
    key = PostKey(1, EPISODE, PostKind.RELEASE)
    await storage.record_posted(key, due_at=NOW, channel_id=11, message_id=13, now=NOW)
    await storage.record_thread(key, thread_id=14, parent_id=11, now=NOW)
    closed = PostKey(1, EPISODE, PostKind.WINDOW_CLOSED)
    await storage.record_forum_post_started(closed, channel_id=15, now=NOW)
    await storage.prune_ledger({2: NOW - timedelta(days=90)})
    await storage.record_departure(2, NOW)
    await storage.set_meta("command_tree_hash", "abc")
    await storage.reserve_identify(0, interval_s=5.0, horizon_s=5.0)
    # Members' spoilers, with ids as large as Discord's.
    await storage.set_guard_mode(1, GuardMode.HIDE)
    await storage.set_spoiler_helpers_role(1, 1_300_000_000_000_900_001)
    await storage.set_guard_ignored(1, 1_300_000_000_000_900_002, True)
    await storage.save_spoiler_webhook(
        1, 1_300_000_000_000_900_003, StoredWebhook(1_300_000_000_000_900_004, "token")
    )
    await storage.schedule_flag_deletion(
        1, 1_300_000_000_000_900_003, 1_300_000_000_000_900_005, NOW
    )


async def test_everything_is_copied_and_checked_and_never_over_existing_data(
    postgres_url, tmp_path
):
    content = tmp_path / "data"
    shutil.copytree(PROJECT_DIR / "data", content, ignore=shutil.ignore_patterns("*.db*"))
    review = next((content / "reviews").glob("*/*.md"))
    review.write_text(
        review.read_text().replace("+++\n", '+++\nspoiler_terms = ["Bête Noire"]\n', 1)
    )
    sqlite_url = f"sqlite:///{tmp_path}/embargo.db"
    source = await Storage.open(sqlite_url, tmp_path)
    try:
        await fill(source, content)
        expected = await every_row(source)
    finally:
        await source.close()
    assert all(expected.values()), [table for table, rows in expected.items() if not rows]

    copied = await asyncio.to_thread(run_bot, "migrate-to", postgres_url, database_url=sqlite_url)
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.startswith("ok: copied ")
    assert "40 of them votes" in copied.stdout

    target = await Storage.open(postgres_url, tmp_path)
    try:
        assert await every_row(target) == expected
        assert (await target.get_guild_settings(1)).spoilers.mode is SpoilerMode.PRIVATE
        assert (await target.member_spoiler_settings(1)).guard_mode is GuardMode.HIDE
        assert list((await target.episode_spoiler_terms()).values()) == [("Bête Noire",)]
    finally:
        await target.close()
    checked = await asyncio.to_thread(run_bot, "check", "--votes", database_url=postgres_url)
    assert checked.returncode == 0, checked.stderr

    again = await asyncio.to_thread(run_bot, "migrate-to", postgres_url, database_url=sqlite_url)
    assert again.returncode == 2
    assert again.stderr.startswith("embargo: the target database already holds ")
    assert len(again.stderr.strip().splitlines()) == 1


def test_the_target_must_be_postgresql(tmp_path):
    refused = run_bot(
        "migrate-to", f"sqlite:///{tmp_path}/other.db", database_url=f"sqlite:///{tmp_path}/x.db"
    )
    assert refused.returncode == 2
    assert refused.stderr == (
        "embargo: migrate-to copies into PostgreSQL: give a postgresql://... URL\n"
    )
