"""The real ``python -m bot`` process running shards (SHARD_COUNT) against the stand-in.

Each shard opens its own gateway session and gets its own servers; interactions in each server,
and in a DM (shard 0), are answered; and logins follow Discord's pacing: with one session-start
bucket (``max_concurrency`` 1) the two shards identify at least 5 s apart, with two buckets at
once; a restart waits for the turn the previous process took, and two processes started
together on one PostgreSQL database take turns. The stand-in's shard routing is itself checked
here, since the multi-process tests build on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.shards import IDENTIFY_INTERVAL_S
from tests.support.standin import DiscordStandIn
from tests.support.standin.world import Guild, default_world

from .embargo_content import E2EContent
from .scenario import EMBARGO_ARGV, BotProcess, Scenario

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

FINALE = "black-mirror/s07e06"


def two_shard_standin(max_concurrency: int) -> tuple[DiscordStandIn, dict[int, Guild]]:
    """A stand-in whose world has one server on each of two shards."""
    world = default_world()
    first = world.guild
    first_shard = (first.id >> 22) % 2
    second = world.add_guild("Second Server", shard=(1 - first_shard, 2))
    standin = DiscordStandIn(world, max_concurrency=max_concurrency)
    return standin, {first_shard: first, 1 - first_shard: second}


@pytest_asyncio.fixture(loop_scope="module")
async def one_bucket() -> AsyncIterator[tuple[DiscordStandIn, dict[int, Guild]]]:
    standin, guilds = two_shard_standin(max_concurrency=1)
    async with standin:
        yield standin, guilds


def sharded_bot(standin: DiscordStandIn, workdir: Path, content: E2EContent) -> BotProcess:
    return BotProcess(
        standin,
        argv=EMBARGO_ARGV,
        workdir=workdir,
        content_dir=content.root,
        # Discord's own spacing of logins, not the end-to-end runs' short one.
        env={"SHARD_COUNT": "2", "EMBARGO_E2E_IDENTIFY_SPACING_S": ""},
    )


async def test_each_shard_gets_its_servers_and_answers_them_paced_one_bucket(
    one_bucket: tuple[DiscordStandIn, dict[int, Guild]],
    content: E2EContent,
    tmp_path: Path,
) -> None:
    standin, guilds = one_bucket
    bot = sharded_bot(standin, tmp_path, content)
    await bot.start(within=60.0)
    try:
        sessions = standin.sessions_by_shard
        assert sorted(sessions) == [0, 1]
        for shard_id, session in sessions.items():
            assert session.identify is not None
            assert session.identify["shard"] == [shard_id, 2]
            created = [e.data["id"] for e in session.events if e.name == "GUILD_CREATE"]
            assert created == [str(guilds[shard_id].id)]  # its own server, and only that

        # One bucket: the second IDENTIFY waited for Discord's interval after the first.
        assert [(r.shard_id, r.bucket) for r in standin.identify_log] == [(0, 0), (1, 0)]
        (gap,) = standin.identify_gaps()[0]
        assert gap >= IDENTIFY_INTERVAL_S
        assert "shard 1 waits" in bot.output
        assert "Discord allows 1 concurrent login(s)" in bot.output
        await standin.wait_for(
            lambda: "in 2 server(s), on shard(s) 0,1 of 2" in bot.output,
            within=10.0,
            what="the bot's ready line",
            abort=bot.exit_reason,
        )

        scenario = Scenario(standin, bot)
        for shard_id, guild in guilds.items():
            handle = await scenario.slash(
                "review", episode=FINALE, in_channel=guild.channel("general")
            )
            reply = await handle.reply()
            assert reply.embeds, reply.payload
            delivered = [
                e.data["id"] for e in sessions[shard_id].events if e.name == "INTERACTION_CREATE"
            ]
            assert str(handle.id) in delivered  # on the server's shard, not the other one
        dm = await scenario.slash("help", in_channel="dm")
        assert (await dm.reply()).embeds
        assert any(
            e.name == "INTERACTION_CREATE" and e.data["id"] == str(dm.id)
            for e in sessions[0].events
        )
        scenario.assert_clean()

        # A restart waits for its turn after the last login of the process before it.
        last_login = standin.identify_log[-1].at
        await bot.restart(require_commands=False, within=60.0)
        first_again = standin.identify_log[2]
        assert first_again.shard_id == 0
        assert first_again.at - last_login >= IDENTIFY_INTERVAL_S
        assert "shard 0 waits" in bot.last_run_output
    finally:
        assert await bot.stop() == 0


async def test_shards_in_different_buckets_log_in_without_waiting(
    content: E2EContent, tmp_path: Path
) -> None:
    standin, guilds = two_shard_standin(max_concurrency=2)
    async with standin:
        bot = sharded_bot(standin, tmp_path, content)
        await bot.start(within=60.0)
        try:
            assert [(r.shard_id, r.bucket) for r in standin.identify_log] == [(0, 0), (1, 1)]
            gap = standin.identify_log[1].at - standin.identify_log[0].at
            assert gap < IDENTIFY_INTERVAL_S
            assert "waits" not in bot.output
            assert "Discord allows 2 concurrent login(s)" in bot.output
            scenario = Scenario(standin, bot)
            handle = await scenario.slash(
                "review", episode=FINALE, in_channel=guilds[1].channel("general")
            )
            assert (await handle.reply()).embeds
            scenario.assert_clean()
        finally:
            assert await bot.stop() == 0


async def test_two_processes_on_one_database_take_turns_to_log_in(
    content: E2EContent, postgres_url: str, tmp_path: Path
) -> None:
    # Started together, shards 0 and 1 in two processes on one PostgreSQL database: one
    # session-start bucket, so one of them waits for the other's turn.
    standin, guilds = two_shard_standin(max_concurrency=1)
    async with standin:
        bots = [
            BotProcess(
                standin,
                argv=EMBARGO_ARGV,
                workdir=tmp_path / f"shard-{shard_id}",
                content_dir=content.root,
                env={
                    "SHARD_COUNT": "2",
                    "SHARD_IDS": str(shard_id),
                    "DATABASE_URL": postgres_url,
                    "EMBARGO_E2E_IDENTIFY_SPACING_S": "",
                },
            )
            for shard_id in (0, 1)
        ]
        try:
            await asyncio.gather(*(bot.start(within=60.0) for bot in bots))
            assert sorted(r.shard_id for r in standin.identify_log) == [0, 1]
            (gap,) = standin.identify_gaps()[0]
            assert gap >= IDENTIFY_INTERVAL_S
            waited = [bot for bot in bots if "waits" in bot.output]
            assert len(waited) == 1, [bot.tail() for bot in bots]
            for shard_id, bot in enumerate(bots):
                scenario = Scenario(standin, bot)
                handle = await scenario.slash(
                    "review", episode=FINALE, in_channel=guilds[shard_id].channel("general")
                )
                assert (await handle.reply()).embeds
        finally:
            for bot in bots:
                if bot.running:
                    assert await bot.stop() == 0


async def test_too_few_shards_for_discord_is_one_line_and_exit_code_2(
    content: E2EContent, tmp_path: Path
) -> None:
    # Discord closes the gateway with 4011 when a shard would hold too many servers.
    async with DiscordStandIn(max_guilds_per_shard=0) as standin:
        bot = BotProcess(
            standin,
            argv=EMBARGO_ARGV,
            workdir=tmp_path,
            content_dir=content.root,
            env={"SHARD_COUNT": "1"},
        )
        assert await bot.run_to_exit(within=60) == 2
        said = [line for line in bot.lines if line.startswith("[err] embargo:")]
        assert len(said) == 1, bot.tail()
        assert said[0].startswith("[err] embargo: Discord refused SHARD_COUNT=1: a shard may hold")
        assert "Traceback" not in bot.output, bot.tail()
