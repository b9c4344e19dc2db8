"""The stand-in's threads, forum posts, message nonces and global rate limit behave as
Discord documents them (the discussion tests rely on each)."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.support.standin import DiscordStandIn
from tests.support.standin.rest import DiscordApi, RecordedRequest
from tests.support.standin.threads import threads_of
from tests.support.standin.world import FORUM_CHANNEL, Channel, snowflake


def call(api: DiscordApi, method: str, path: str, body: Any = None) -> RecordedRequest:
    request = RecordedRequest(method=method, path=path, json=body)
    api.answer(request)
    return request


def general(api: DiscordApi) -> Channel:
    return api.world.guild.channel("general")


def with_threads(api: DiscordApi) -> DiscordApi:
    api.world.guild.role("Embargo").permissions |= 1 << 35  # Create Public Threads
    return api


def test_same_nonce_with_enforce_nonce_returns_the_first_message() -> None:
    api = DiscordApi()
    path = f"/channels/{general(api).id}/messages"
    first = call(api, "POST", path, {"content": "hi", "nonce": "abc", "enforce_nonce": True})
    again = call(api, "POST", path, {"content": "hi", "nonce": "abc", "enforce_nonce": True})
    assert first.status == again.status == 200
    assert first.response["id"] == again.response["id"]
    unenforced = call(api, "POST", path, {"content": "hi", "nonce": "abc"})
    assert unenforced.response["id"] != first.response["id"]
    assert len(api.channel_messages(general(api).id)) == 2


def test_thread_from_a_message_has_its_id_and_only_one_per_message() -> None:
    api = with_threads(DiscordApi())
    channel = general(api)
    message = call(api, "POST", f"/channels/{channel.id}/messages", {"content": "post"})
    path = f"/channels/{channel.id}/messages/{message.response['id']}/threads"
    too_long = call(api, "POST", path, {"name": "x" * 101})
    assert too_long.response["code"] == 50035
    started = call(api, "POST", path, {"name": "talk", "auto_archive_duration": 10080})
    assert started.status == 201
    assert started.response["id"] == message.response["id"]
    assert started.response["thread_metadata"]["auto_archive_duration"] == 10080
    again = call(api, "POST", path, {"name": "talk", "auto_archive_duration": 10080})
    assert (again.status, again.response["code"]) == (400, 160004)
    assert [t.name for t in threads_of(api, channel.id)] == ["talk"]
    inside = call(api, "POST", f"/channels/{started.response['id']}/messages", {"content": "!"})
    assert inside.status == 200


def test_a_thread_needs_create_public_threads() -> None:
    api = DiscordApi()  # the bot's role lacks it
    channel = general(api)
    message = call(api, "POST", f"/channels/{channel.id}/messages", {"content": "post"})
    path = f"/channels/{channel.id}/messages/{message.response['id']}/threads"
    refused = call(api, "POST", path, {"name": "talk"})
    assert (refused.status, refused.response["code"]) == (403, 50013)
    assert threads_of(api, channel.id) == []


def test_a_forum_post_is_a_thread_with_its_first_message() -> None:
    api = DiscordApi()
    guild = api.world.guild
    forum = Channel(id=snowflake(), name="forum", guild_id=guild.id, type=FORUM_CHANNEL)
    guild.channels.append(forum)
    body = {"name": "S1E1", "auto_archive_duration": 10080, "message": {"content": "new!"}}
    created = call(api, "POST", f"/channels/{forum.id}/threads", body)
    assert created.status == 201
    thread_id = int(created.response["id"])
    assert created.response["message"]["id"] == str(thread_id)
    assert created.response["message"]["channel_id"] == str(thread_id)
    assert [m.payload["content"] for m in api.channel_messages(thread_id)] == ["new!"]
    missing = call(api, "POST", f"/channels/{forum.id}/threads", {"name": "no message"})
    assert missing.response["code"] == 50035
    plain = call(api, "POST", f"/channels/{forum.id}/messages", {"content": "loose"})
    assert plain.status == 200  # (Discord refuses these; the bot never sends them)


def test_the_global_limit_answers_429_and_spares_interaction_routes() -> None:
    api = DiscordApi()
    api.global_limit = 5
    answers = [call(api, "GET", "/users/@me") for _ in range(7)]
    assert [a.status for a in answers] == [200] * 5 + [429] * 2
    assert answers[-1].response["global"] is True
    assert 0 < answers[-1].response["retry_after"] <= 1.0
    assert api.globally_limited == answers[5:]
    callback = call(api, "POST", "/interactions/1/token/callback", {"type": 1})
    assert callback.status != 429  # interaction answers are not counted against it


async def test_a_global_429_carries_discords_headers() -> None:
    async with DiscordStandIn() as standin:
        standin.global_limit = 1
        headers = {"Authorization": f"Bot {standin.token}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.get(f"{standin.api_base}/users/@me") as first:
                assert first.status == 200
            async with session.get(f"{standin.api_base}/users/@me") as second:
                assert second.status == 429
                assert second.headers["X-RateLimit-Global"] == "true"
                assert second.headers["X-RateLimit-Scope"] == "global"
                assert "Retry-After" in second.headers
                assert (await second.json())["global"] is True
        assert len(standin.globally_limited) == 1
