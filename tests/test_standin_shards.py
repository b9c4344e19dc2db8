"""The stand-in's shards, as Discord runs them: a session per shard with its own servers, events
routed by ``(guild_id >> 22) % shard_count`` (DMs on shard 0), GET /gateway/bot's limits, and
the IDENTIFY log that pacing tests read. Driven over a raw websocket, as a client would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.support.standin import DiscordStandIn
from tests.support.standin.gateway import GatewaySession
from tests.support.standin.rest import RecordedRequest
from tests.support.standin.world import default_world, snowflake_on_shard


class Client:
    """One raw gateway connection (no compression), identified as one shard."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def receive(self) -> dict[str, Any]:
        message = await self.ws.receive(timeout=5)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        return json.loads(message.data)

    async def identify(self, token: str, shard: list[int] | None) -> None:
        data: dict[str, Any] = {"token": token, "intents": 1, "properties": {}}
        if shard is not None:
            data["shard"] = shard
        await self.ws.send_json({"op": 2, "d": data})

    async def dispatches(self, count: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while len(found) < count:
            frame = await self.receive()
            if frame["op"] == 0:
                found.append(frame)
        return found


@pytest.fixture
async def connect() -> AsyncIterator[Any]:
    async with aiohttp.ClientSession() as http:

        async def open_client(standin: DiscordStandIn) -> Client:
            ws = await http.ws_connect(standin.gateway_url + "?v=10&encoding=json")
            client = Client(ws)
            hello = await client.receive()
            assert hello["op"] == 10
            return client

        yield open_client


def test_snowflakes_land_on_the_shard_asked_for() -> None:
    for count in (1, 2, 3, 16):
        for shard in range(count):
            ids = {snowflake_on_shard(shard, count) for _ in range(5)}
            assert len(ids) == 5
            assert {(i >> 22) % count for i in ids} == {shard}


def test_an_added_server_has_the_first_ones_members_and_channels() -> None:
    world = default_world()
    second = world.add_guild("Second", shard=(1, 4))
    assert (second.id >> 22) % 4 == 1
    assert world.guilds[1] is second
    first = world.guild
    assert {m.user.id for m in second.members} == {m.user.id for m in first.members}
    mod = world.user("mod")
    held = second.member(mod.id)
    assert held is not None
    assert [second.role(r).name for r in held.roles] == ["Moderator"]
    assert [c.name for c in second.channels] == [c.name for c in first.channels]


def test_events_go_to_their_servers_shard_and_the_rest_to_shard_zero() -> None:
    standin = DiscordStandIn()
    assert standin.shard_count == 1
    on_shard_2 = snowflake_on_shard(2, 3)
    standin.sessions.append(GatewaySession(shard=(0, 3)))  # a bot identified as 0 of 3
    assert standin.shard_count == 3
    assert standin.shard_of_event("INTERACTION_CREATE", {"guild_id": str(on_shard_2)}) == 2
    assert standin.shard_of_event("GUILD_UPDATE", {"id": str(on_shard_2)}) == 2
    assert standin.shard_of_event("INTERACTION_CREATE", {"channel_id": "1"}) == 0  # a DM
    assert standin.shard_of_event("USER_UPDATE", {"id": str(on_shard_2)}) == 0


async def test_each_shard_session_gets_its_own_servers_and_their_events(connect) -> None:
    world = default_world()
    first_shard = (world.guild.id >> 22) % 2
    other = world.add_guild("Other", shard=(1 - first_shard, 2))
    async with DiscordStandIn(world, max_concurrency=2) as standin:
        clients = {}
        for shard_id in (0, 1):
            client = await connect(standin)
            await client.identify(standin.token, [shard_id, 2])
            ready, created = await client.dispatches(2)
            assert ready["t"] == "READY"
            assert ready["d"]["shard"] == [shard_id, 2]
            mine = world.guild if shard_id == first_shard else other
            assert [g["id"] for g in ready["d"]["guilds"]] == [str(mine.id)]
            assert created["t"] == "GUILD_CREATE"
            assert created["d"]["id"] == str(mine.id)
            clients[shard_id] = client
        assert sorted(standin.sessions_by_shard) == [0, 1]
        assert [(r.shard_id, r.shard_count, r.bucket) for r in standin.identify_log] == [
            (0, 2, 0),
            (1, 2, 1),
        ]
        assert standin.identify_gaps() == {}  # one IDENTIFY per bucket

        await standin.dispatch("MESSAGE_CREATE", {"guild_id": str(other.id), "id": "7"})
        (event,) = await clients[1 - first_shard].dispatches(1)
        assert event["d"]["id"] == "7"
        await standin.dispatch("INTERACTION_CREATE", {"id": "8", "channel_id": "9"})  # a DM
        (event,) = await clients[0].dispatches(1)
        assert event["d"]["id"] == "8"

        request = RecordedRequest(method="GET", path="/gateway/bot")
        standin.answer(request)
        limits = request.response["session_start_limit"]
        assert limits["max_concurrency"] == 2
        assert limits["remaining"] == limits["total"] - 2


async def test_an_unsharded_client_is_shard_zero_of_one(connect) -> None:
    async with DiscordStandIn() as standin:
        client = await connect(standin)
        await client.identify(standin.token, None)
        ready, _ = await client.dispatches(2)
        assert "shard" not in ready["d"]
        assert standin.sessions_by_shard[0].shard == (0, 1)
        assert standin.current_session is standin.sessions_by_shard[0]


@pytest.mark.parametrize("shard", [[2, 2], [-1, 2], [0, 0], [0], "0,1", [0.0, 1]])
async def test_an_invalid_shard_is_closed_with_4010(connect, shard) -> None:
    async with DiscordStandIn() as standin:
        client = await connect(standin)
        await client.identify(standin.token, shard)
        closed = await client.ws.receive(timeout=5)
        assert closed.type is aiohttp.WSMsgType.CLOSE
        assert closed.data == 4010
        assert standin.sessions == []
