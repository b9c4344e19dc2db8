"""Commands that write answer within Discord's 3 s even while another program holds the
database's write lock: "busy, try again, nothing was saved", and nothing is."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.client import EmbargoBot
from bot.config import PROJECT_DIR, Settings
from bot.storage import Storage
from bot.storage.errors import WRITE_TIMEOUT_S
from tests.stored import stored_score
from tests.support import MODERATOR, Harness, UserSpec

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
FINALE = "black-mirror/s07e06"
VOTER = UserSpec(id=1_300_000_000_000_010_001, name="voter")
DEADLINE_S = 3.0

_HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()  # until the test closes our stdin
conn.execute("ROLLBACK")
"""


@contextmanager
def locked_by_another_process(database: Path) -> Iterator[None]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)


class Clock:
    def __call__(self) -> datetime:
        return NOW


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[tuple[Harness, Storage, Path]]:
    database = tmp_path / "embargo.db"
    url = f"sqlite:///{database}"
    storage = await Storage.open(url, tmp_path)
    settings = Settings(
        discord_token=None,
        database_url=url,
        content_dir=PROJECT_DIR / "data",
        log_level="INFO",
        dev_guild_id=None,
    )
    try:
        async with Harness(EmbargoBot(settings, storage, clock=Clock())) as harness:
            yield harness, storage, database
    finally:
        await storage.close()


def assert_busy_reply(reply, took: float) -> None:
    assert took < DEADLINE_S, f"answered after {took:.2f} s"
    assert reply.ephemeral
    assert "busy" in reply.content
    assert "Nothing was saved" in reply.content


async def test_a_vote_while_another_process_holds_the_lock(bot):
    harness, storage, database = bot
    with locked_by_another_process(database):
        started = time.monotonic()
        reply = await harness.slash("vote", as_user=VOTER, episode=FINALE, score=9)
        took = time.monotonic() - started
    assert_busy_reply(reply, took)
    assert took >= WRITE_TIMEOUT_S * 0.9  # it did wait for the lock, as long as it could
    assert await stored_score(storage, harness.guild.id, VOTER.id, FINALE) is None
    # Once the lock is gone, voting works again without anything being restarted.
    again = await harness.slash("vote", as_user=VOTER, episode=FINALE, score=9)
    assert "busy" not in again.content + str(again.embeds)
    assert await stored_score(storage, harness.guild.id, VOTER.id, FINALE) == 9


async def test_votes_arriving_together_while_locked_all_answer_in_time(bot):
    harness, storage, database = bot
    voters = [UserSpec(id=1_300_000_000_000_020_000 + n, name=f"v{n}") for n in range(20)]
    with locked_by_another_process(database):
        started = time.monotonic()
        replies = await asyncio.gather(
            *(harness.slash("vote", as_user=voter, episode=FINALE, score=7) for voter in voters)
        )
        took = time.monotonic() - started
    # They queue for the same lock: the whole group, not each in turn, waits the bounded time.
    assert took < DEADLINE_S
    for reply, voter in zip(replies, voters, strict=True):
        assert_busy_reply(reply, took)
        assert await stored_score(storage, harness.guild.id, voter.id, FINALE) is None


async def test_a_setting_while_another_process_holds_the_lock(bot):
    harness, storage, database = bot
    before = await storage.get_guild_settings(harness.guild.id)
    with locked_by_another_process(database):
        started = time.monotonic()
        reply = await harness.slash(
            "embargo", subcommand="window", as_user=MODERATOR, duration="30d"
        )
        took = time.monotonic() - started
    assert_busy_reply(reply, took)
    assert await storage.get_guild_settings(harness.guild.id) == before
