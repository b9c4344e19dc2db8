"""Several real ``python -m bot`` processes on one database and one Discord stand-in.

A :class:`Cluster` starts one :class:`~.scenario.BotProcess` per environment given (each with
its own ``SHARD_IDS``), all at once as an operator would, and tells which process runs which
shard. The stand-in routes each server's interactions to its shard's session, so a
:class:`~.scenario.Scenario` acting in a server reaches the process that serves it.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.standin import DiscordStandIn
from tests.support.standin.world import Guild

from .scenario import EMBARGO_ARGV, BotProcess, InteractionHandle, Scenario


@dataclass
class Node:
    """One bot process of the cluster."""

    name: str
    bot: BotProcess

    @property
    def shard_ids(self) -> tuple[int, ...]:
        return self.bot.shards[1]


class Cluster:
    """``python -m bot`` once per environment in ``envs``."""

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
        self._requests_before = 0
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

    def node_of(self, guild: Guild) -> Node:
        """The process that runs the server's shard."""
        shard = self.standin.shard_of_guild(guild.id)
        return next(node for node in self.nodes if shard in node.shard_ids)

    def scenario(self, guild: Guild) -> Scenario:
        """Members acting in ``guild``, answered by the process that serves it."""
        return Scenario(self.standin, self.node_of(guild).bot)

    async def start(self, *, within: float = 60.0) -> None:
        """Start every process at once; return when each shard's session holds READY and its
        servers, and the commands are registered."""
        self._requests_before = len(self.standin.requests)
        await asyncio.gather(*(self.start_node(node, within=within) for node in self.nodes))

    async def start_node(self, node: Node, *, within: float = 60.0) -> None:
        await node.bot.start(within=within, require_commands=False)
        await self.standin.wait_for(
            lambda: any(self.standin.commands.values()),
            within=within,
            what="the commands to be registered",
            abort=node.bot.exit_reason,
        )

    async def kill(self, node: Node) -> None:
        """``kill -9``: the process gets no chance to close anything."""
        await node.bot.stop(signum=signal.SIGKILL, within=5.0)

    async def stop(self) -> None:
        await asyncio.gather(*(node.bot.stop() for node in self.nodes if node.bot.running))

    async def send(self, scenario: Scenario, payload: dict[str, Any]) -> InteractionHandle:
        """Send the interaction whether or not the process serving it runs: Discord keeps a
        dead session's events for a RESUME that never comes."""
        return InteractionHandle(scenario, await self.standin.send_interaction(payload))

    async def send_to(
        self, node: Node, scenario: Scenario, payload: dict[str, Any]
    ) -> InteractionHandle:
        """Send the interaction on ``node``'s session, whichever shard its server is on.
        Discord never does that; a test does, to read what each process holds for a server."""
        record = self.standin.expect_interaction(payload)
        await self.standin.dispatch("INTERACTION_CREATE", payload, shard_id=node.shard_ids[0])
        record.dispatched_at = time.monotonic()
        return InteractionHandle(scenario, record)

    def command_syncs(self) -> int:
        """How many times the processes registered the commands since they were started."""
        return sum(
            1
            for r in self.standin.requests[self._requests_before :]
            if r.method == "PUT" and r.path.endswith("/commands")
        )

    @property
    def output(self) -> str:
        return "\n".join(node.bot.output for node in self.nodes)
