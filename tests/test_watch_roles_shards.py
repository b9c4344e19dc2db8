"""Watch roles across the processes of a sharded bot on one PostgreSQL database: each process
sees only its own shards' servers, yet a member's roles follow their progress in every server.
Two bots run in this process against one stand-in, as two ``python -m bot`` processes with
SHARD_COUNT=2 and SHARD_IDS 0 and 1: server A is on shard 0 (with the DMs), server B on
shard 1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import discord
import pytest

from bot.client import EmbargoBot
from bot.config import PROJECT_DIR, Settings
from bot.storage import Storage
from cogs.discussion._buttons import release_view
from tests.support import MEMBER, GuildSpec, Harness, Recorded
from tests.support.specs import base_bot_permissions
from tests.support.standin.world import MANAGE_ROLES, Guild, Role, snowflake, snowflake_on_shard
from tests.test_progress_commands import (
    FINALE,
    IN_THE_WINDOW,
    WATCHERS,
    Clock,
    button,
    ok,
)

SHOW = "black-mirror"
SERVER_A = GuildSpec(
    id=snowflake_on_shard(0, 2),
    roles=(*GuildSpec().roles, WATCHERS),
    bot_permissions=base_bot_permissions() | discord.Permissions(manage_roles=True),
    bot_role_position=5,
)


def settings(url: str, shard_id: int) -> Settings:
    return Settings(
        discord_token=None,
        database_url=url,
        content_dir=PROJECT_DIR / "data",
        log_level="INFO",
        dev_guild_id=None,
        shard_count=2,
        shard_ids=(shard_id,),
    )


def add_server_b(first: Harness) -> tuple[Guild, Role]:
    """Server B, on shard 1, where Embargo may manage a watch role of its own."""
    server = first.world.add_guild("Server B", shard=(1, 2))
    embargo = next(role for role in server.roles if role.name == "Embargo")
    embargo.permissions |= MANAGE_ROLES
    embargo.position = 5
    watchers = Role(id=snowflake(), name="Watched S7 (B)", permissions=0, position=2)
    server.roles.append(watchers)
    return server, watchers


@dataclass
class Processes:
    first: Harness  # shard 0: server A and the DMs
    second: Harness  # shard 1: server B
    stores: Sequence[Storage]
    server_b: Guild
    watchers_b: Role

    def change(self, method: str, guild_id: int, role_id: int) -> tuple[str, int, int, int]:
        return (method, guild_id, MEMBER.id, role_id)

    async def role_change_at(self, change: tuple[str, int, int, int], *, after: int) -> float:
        """When the stand-in accepted ``change`` (among its requests from index ``after``)."""
        standin = self.first.standin

        def accepted() -> float | None:
            for request in standin.requests[after:]:
                if request.status == 204 and request.method == change[0]:
                    _, guild_id, user_id, role_id = change
                    if request.path == f"/guilds/{guild_id}/members/{user_id}/roles/{role_id}":
                        return request.at
            return None

        return await standin.wait_for(accepted, within=5, what=f"{change} in the other process")


async def until(check: Callable[[], object], *, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not await check():  # type: ignore[misc]
        assert time.monotonic() < deadline, f"not within {within_s} s"
        await asyncio.sleep(0.01)


@pytest.fixture
async def processes(postgres_url, tmp_path) -> AsyncIterator[Processes]:
    stores = [await Storage.open(postgres_url, tmp_path) for _ in range(2)]
    clock = Clock(IN_THE_WINDOW)
    bots = [
        EmbargoBot(settings(postgres_url, shard), store, clock=clock)
        for shard, store in enumerate(stores)
    ]
    first = Harness(bots[0], guild=SERVER_A)
    server_b, watchers_b = add_server_b(first)
    try:
        async with first, Harness(bots[1], guild=SERVER_A, standin=first.standin) as second:
            assert [g.id for g in bots[0].guilds] == [SERVER_A.id]
            assert [g.id for g in bots[1].guilds] == [server_b.id]
            first.mark_ready()
            second.mark_ready()
            yield Processes(first, second, stores, server_b, watchers_b)
    finally:
        for store in stores:
            await store.close()


def timing(p: Processes, reply: Recorded, changed_at: float) -> tuple[float, float]:
    """From the interaction's arrival, and from the bot's reply to it, to ``changed_at`` (the
    role change in the other process's server: /forget-me's may come before the reply)."""
    assert reply.callback is not None
    arrived = p.first.standin.interactions[reply.interaction_id].dispatched_at
    return changed_at - arrived, changed_at - reply.callback.at


async def test_a_members_roles_follow_their_progress_in_the_other_processs_servers(processes):
    p = processes
    a, b = SERVER_A.id, p.server_b.id
    member_b = p.server_b.member(MEMBER.id)
    assert member_b is not None
    await p.stores[0].set_watch_role(a, SHOW, 7, WATCHERS.id)
    await p.stores[0].set_watch_role(b, SHOW, 7, p.watchers_b.id)
    standin = p.first.standin
    delays: list[tuple[float, float]] = []

    # /watched in a DM (shard 0): the role in A from this process, in B from the other.
    start = len(standin.requests)
    done = ok(await p.first.slash("watched", episode=FINALE, through=True, in_dm=True))
    assert done.content == f"You now have <@&{WATCHERS.id}>."
    given = await p.role_change_at(p.change("PUT", b, p.watchers_b.id), after=start)
    delays.append(timing(p, done, given))
    assert p.watchers_b.id in member_b.roles

    async def recorded_in_b() -> bool:  # Discord took it; then it is recorded
        return await p.stores[1].role_holders(b, p.watchers_b.id) == [MEMBER.id]

    await until(recorded_in_b)

    # /unwatched in server A: the role in B goes too.
    start = len(standin.requests)
    gone = ok(await p.first.slash("unwatched", episode="black-mirror/s07e02"))
    assert gone.content == f"You no longer have <@&{WATCHERS.id}>."  # only A's, told in A
    taken = await p.role_change_at(p.change("DELETE", b, p.watchers_b.id), after=start)
    delays.append(timing(p, gone, taken))
    assert p.watchers_b.id not in member_b.roles

    # The release post's "I've watched it" in server A gives it back in B.
    post = p.first.bot_message(view=release_view("black-mirror/s07e02"))
    start = len(standin.requests)
    again = ok(await p.first.click("embargo:watched:black-mirror/s07e02", message=post))
    assert again.content == f"You now have <@&{WATCHERS.id}>."
    given = await p.role_change_at(p.change("PUT", b, p.watchers_b.id), after=start)
    delays.append(timing(p, again, given))

    # /forget-me in a DM: both roles go, and with them the record of them.
    start = len(standin.requests)
    prompt = ok(await p.first.slash("forget-me", in_dm=True))
    forgotten = ok(
        await p.first.click(
            button(prompt, "Delete everything")["custom_id"], message=prompt.message
        )
    )
    assert forgotten.content == f"You no longer have <@&{WATCHERS.id}>."
    taken = await p.role_change_at(p.change("DELETE", b, p.watchers_b.id), after=start)
    delays.append(timing(p, forgotten, taken))
    assert p.watchers_b.id not in member_b.roles

    async def unrecorded() -> bool:
        return await p.stores[0].roles_held_by(MEMBER.id) == []

    await until(unrecorded)
    # Each process changed roles only in its own server, each change once, in order.
    changes = standin.role_changes()
    for guild_id, role_id in ((a, WATCHERS.id), (b, p.watchers_b.id)):
        in_server = [(method, role) for method, guild, _, role in changes if guild == guild_id]
        assert in_server == [("PUT", role_id), ("DELETE", role_id)] * 2
    assert len(changes) == 8
    print(
        "interaction / reply to the role change in the other process's server: "
        + ", ".join(
            f"{arrived * 1000:.1f} / {replied * 1000:.1f} ms" for arrived, replied in delays
        )
    )


async def test_roles_of_a_member_forgotten_while_a_process_was_down_go_when_it_is_back(
    postgres_url, tmp_path
):
    clock = Clock(IN_THE_WINDOW)
    first_store = await Storage.open(postgres_url, tmp_path)
    first = Harness(EmbargoBot(settings(postgres_url, 0), first_store, clock=clock), guild=SERVER_A)
    server_b, watchers_b = add_server_b(first)
    b = server_b.id
    member_b = server_b.member(MEMBER.id)
    assert member_b is not None
    standin = first.standin
    try:
        async with first:
            first.mark_ready()
            await first_store.set_watch_role(b, SHOW, 7, watchers_b.id)
            second_store = await Storage.open(postgres_url, tmp_path)
            second_bot = EmbargoBot(settings(postgres_url, 1), second_store, clock=clock)
            try:
                async with Harness(second_bot, guild=SERVER_A, standin=standin) as second:
                    second.mark_ready()
                    ok(await first.slash("watched", episode=FINALE, through=True, in_dm=True))
                    await standin.wait_for(
                        lambda: watchers_b.id in member_b.roles or None, within=5, what="role"
                    )

                    async def recorded() -> bool:
                        held = await first_store.roles_held_by(MEMBER.id)
                        return held == [(b, watchers_b.id)]

                    await until(recorded)  # Discord took it; then it is recorded
            finally:
                await second_store.close()

            # Shard 1's process is down: the member is forgotten, the role in B stays
            # recorded for that process to take back.
            prompt = ok(await first.slash("forget-me", in_dm=True))
            ok(
                await first.click(
                    button(prompt, "Delete everything")["custom_id"], message=prompt.message
                )
            )
            assert await first_store.roles_held_by(MEMBER.id) == [(b, watchers_b.id)]
            assert watchers_b.id in member_b.roles

            back_store = await Storage.open(postgres_url, tmp_path)
            back_bot = EmbargoBot(settings(postgres_url, 1), back_store, clock=clock)
            try:
                async with Harness(back_bot, guild=SERVER_A, standin=standin) as back:
                    back.mark_ready()
                    await standin.wait_for(
                        lambda: watchers_b.id not in member_b.roles or None,
                        within=5,
                        what="the role taken back once shard 1's process is back",
                    )

                    async def unrecorded() -> bool:
                        return await first_store.roles_held_by(MEMBER.id) == []

                    await until(unrecorded)
            finally:
                await back_store.close()
    finally:
        await first_store.close()
    assert standin.role_changes() == [
        ("PUT", b, MEMBER.id, watchers_b.id),
        ("DELETE", b, MEMBER.id, watchers_b.id),
    ]


async def test_one_process_serving_both_servers_brings_both_in_line_from_either(tmp_path):
    """SQLite: one process serves every server; a change made in server A reaches server B
    too, without announcing anything, and the member is told about A's role only
    (/forget-me: about every role taken back)."""
    url = f"sqlite:///{tmp_path}/embargo.db"
    storage = await Storage.open(url, tmp_path)
    one = Settings(
        discord_token=None,
        database_url=url,
        content_dir=PROJECT_DIR / "data",
        log_level="INFO",
        dev_guild_id=None,
    )
    harness = Harness(EmbargoBot(one, storage, clock=Clock(IN_THE_WINDOW)), guild=SERVER_A)
    server_b, watchers_b = add_server_b(harness)
    a, b = SERVER_A.id, server_b.id
    try:
        async with harness:
            await storage.set_watch_role(a, SHOW, 7, WATCHERS.id)
            await storage.set_watch_role(b, SHOW, 7, watchers_b.id)
            done = ok(await harness.slash("watched", episode=FINALE, through=True))
            assert done.content == f"You now have <@&{WATCHERS.id}>."
            assert harness.standin.role_changes() == [
                ("PUT", a, MEMBER.id, WATCHERS.id),
                ("PUT", b, MEMBER.id, watchers_b.id),
            ]
            prompt = ok(await harness.slash("forget-me"))
            forgotten = ok(
                await harness.click(
                    button(prompt, "Delete everything")["custom_id"], message=prompt.message
                )
            )
            # As before shard ranges: every role it takes back is listed.
            assert forgotten.content == (
                f"You no longer have <@&{WATCHERS.id}>.\nYou no longer have <@&{watchers_b.id}>."
            )
            assert harness.standin.role_changes()[2:] == [
                ("DELETE", a, MEMBER.id, WATCHERS.id),
                ("DELETE", b, MEMBER.id, watchers_b.id),
            ]
            assert await storage.roles_held_by(MEMBER.id) == []
    finally:
        await storage.close()
