"""Several real ``python -m bot`` processes on one database and one Discord stand-in.

A :class:`Cluster` starts one :class:`~.scenario.BotProcess` per environment given (each
process's own ``SHARD_IDS``, say) and knows which gateway sessions each process opened, so a
test can act as Discord does towards one process: :meth:`Cluster.scenario` returns a
:class:`~.scenario.Scenario` whose interactions are delivered on that process's session.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.standin import DiscordStandIn
from tests.support.standin.gateway import GatewaySession
from tests.support.standin.world import (
    CATEGORY_CHANNEL,
    EVERYONE_DEFAULT,
    MANAGE_GUILD,
    MANAGE_MESSAGES,
    Channel,
    Guild,
    Member,
    Role,
    World,
    snowflake,
)

from .scenario import EMBARGO_ARGV, BotProcess, InteractionHandle, Scenario


def guild_id_on_shard(shard_id: int, shard_count: int) -> int:
    """A new guild id that Discord routes to ``shard_id`` of ``shard_count``:
    ``(guild_id >> 22) % shard_count`` (the id's millisecond timestamp) picks the shard."""
    while True:
        candidate = snowflake()
        if (candidate >> 22) % shard_count == shard_id:
            return candidate
        # The next millisecond gives the next shard: wait for it rather than spin.
        time.sleep(0.001)


def add_guild(world: World, name: str, guild_id: int) -> Guild:
    """A server like the default one (owner, "Moderator" role, ``#general``), with the bot in
    it; its members are added with :meth:`World.add_user` and ``guild=``."""
    bot = world.bot_user
    owner = world.user("owner")
    guild = Guild(
        id=guild_id,
        name=name,
        owner_id=owner.id,
        roles=[
            Role(id=guild_id, name="@everyone", permissions=EVERYONE_DEFAULT, position=0),
            Role(id=snowflake(), name="Embargo", permissions=EVERYONE_DEFAULT, position=1),
            Role(
                id=snowflake(),
                name="Moderator",
                permissions=MANAGE_GUILD | MANAGE_MESSAGES,
                position=2,
            ),
        ],
    )
    category = Channel(
        id=snowflake(), name="Text Channels", guild_id=guild_id, type=CATEGORY_CHANNEL
    )
    guild.channels = [
        category,
        Channel(id=snowflake(), name="general", guild_id=guild_id, parent_id=category.id),
    ]
    founded = (datetime.now(UTC) - timedelta(days=730)).isoformat()
    guild.members += [
        Member(user=owner, joined_at=founded),
        Member(user=bot, roles=[guild.role("Embargo").id], joined_at=founded),
    ]
    world.guilds.append(guild)
    return guild


class ProcessScenario(Scenario):
    """A :class:`Scenario` whose interactions reach one process, on its gateway session."""

    def __init__(self, standin: DiscordStandIn, node: Node) -> None:
        super().__init__(standin, node.bot)
        self.node = node

    async def _send(self, payload: dict[str, Any]) -> InteractionHandle:
        if not self.bot.running:
            raise AssertionError(f"the bot is not running\n{self.bot.tail()}")
        return await self.deliver(payload)

    async def deliver(self, payload: dict[str, Any]) -> InteractionHandle:
        """Send the interaction on the process's session whether the process runs or not:
        Discord keeps a dead session's events for a RESUME that never comes."""
        record = self.standin.expect_interaction(payload)
        await self.standin._dispatch_to(self.node.session, "INTERACTION_CREATE", payload)
        record.dispatched_at = time.monotonic()
        return InteractionHandle(self, record)


@dataclass
class Node:
    """One bot process of the cluster and the gateway sessions it opened (last run's last)."""

    name: str
    bot: BotProcess
    sessions: list[GatewaySession] = field(default_factory=list)

    @property
    def session(self) -> GatewaySession:
        if not self.sessions:
            raise AssertionError(f"{self.name} has no gateway session\n{self.bot.tail()}")
        return self.sessions[-1]


class Cluster:
    """``python -m bot`` once per environment in ``envs``, all on ``database_url``."""

    def __init__(
        self,
        standin: DiscordStandIn,
        *,
        workdir: Path,
        content_dir: Path,
        envs: Sequence[Mapping[str, str]],
        argv: Sequence[str] = EMBARGO_ARGV,
    ) -> None:
        self.standin = standin
        self.nodes = [
            Node(
                name=f"process {i + 1}",
                bot=BotProcess(
                    standin,
                    argv=argv,
                    workdir=workdir / f"process-{i + 1}",
                    content_dir=content_dir,
                    env=env,
                ),
            )
            for i, env in enumerate(envs)
        ]

    def scenario(self, index: int) -> ProcessScenario:
        return ProcessScenario(self.standin, self.nodes[index])

    async def start(self) -> None:
        """Start every process in turn; each one is up once its session holds READY and its
        servers, and the commands are registered."""
        for node in self.nodes:
            await self.start_node(node)

    async def start_node(self, node: Node) -> None:
        before = len(self.standin.sessions)
        await node.bot.start()
        node.sessions += self.standin.sessions[before:]

    async def kill(self, node: Node) -> None:
        """``kill -9``: the process gets no chance to close anything."""
        await node.bot.stop(signum=signal.SIGKILL, within=5.0)

    async def stop(self) -> None:
        await asyncio.gather(*(node.bot.stop() for node in self.nodes if node.bot.running))

    @property
    def output(self) -> str:
        return "\n".join(node.bot.output for node in self.nodes)
