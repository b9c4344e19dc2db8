"""Threads as the stand-in answers them: a public thread started from a message, a forum post
(a thread with its first message), a thread started without a message, and the server's
active threads.

As on Discord, a thread started from a message, and a forum post's thread, have the id of
their starter message; a message can start one thread only; starting one needs Create Public
Threads (in a forum, Send Messages: a post is a message); a thread's permissions are its parent's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import validation
from .rest import ApiError, RecordedRequest, Reply, _snowflake
from .world import (
    CREATE_PUBLIC_THREADS,
    FORUM_CHANNEL,
    PUBLIC_THREAD,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    Channel,
    snowflake,
)

if TYPE_CHECKING:
    from .rest import DiscordApi, Handler

THREAD_NAME_LIMIT = 100
# Discord accepts these auto-archive durations (minutes) and no others.
ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)
HAS_THREAD = 1 << 5  # message flag: a thread was started from it


def thread_routes(api: DiscordApi) -> list[tuple[str, str, Handler]]:
    def from_message(request: RecordedRequest, channel_id: str, message_id: str) -> Reply:
        return _thread_from_message(api, request, channel_id, message_id)

    def without_message(request: RecordedRequest, channel_id: str) -> Reply:
        return _thread_in_channel(api, request, channel_id)

    def active(request: RecordedRequest, guild_id: str) -> Reply:
        return _active_threads(api, guild_id)

    return [
        ("POST", "/channels/{channel_id}/messages/{message_id}/threads", from_message),
        ("POST", "/channels/{channel_id}/threads", without_message),
        ("GET", "/guilds/{guild_id}/threads/active", active),
    ]


def threads_of(api: DiscordApi, parent_id: int) -> list[Channel]:
    """The threads (and forum posts) started in ``parent_id``, oldest first."""
    return sorted(
        (
            channel
            for guild in api.world.guilds
            for channel in guild.channels
            if channel.is_thread and channel.parent_id == parent_id
        ),
        key=lambda channel: channel.id,
    )


def _active_threads(api: DiscordApi, guild_id: str) -> Reply:
    """The server's threads in channels the bot can see (the stand-in never archives one)."""
    guild = api._guild(guild_id)
    threads = []
    for channel in guild.channels:
        parent = api.world.find_channel(channel.parent_id or 0) if channel.is_thread else None
        if parent is not None and api._bot_permissions(parent) & VIEW_CHANNEL:
            threads.append(channel.to_payload())
    return 200, {"threads": threads, "members": []}


def _thread_fields(body: dict[str, Any]) -> tuple[str, int]:
    problems: validation.Problems = []
    name = body.get("name")
    validation.check_length(problems, "name", name, THREAD_NAME_LIMIT, 1)
    if name is None:
        problems.append(("name", "This field is required"))
    duration = body.get("auto_archive_duration", 1440)
    if duration not in ARCHIVE_DURATIONS:
        problems.append(("auto_archive_duration", "Value must be one of 60, 1440, 4320, 10080."))
    if problems:
        raise ApiError.form(problems)
    return str(name), int(duration)


def _new_thread(api: DiscordApi, parent: Channel, thread_id: int, body: dict[str, Any]) -> Channel:
    name, duration = _thread_fields(body)
    guild = api.world.find_guild(parent.guild_id or 0)
    assert guild is not None
    thread = Channel(
        id=thread_id,
        name=name,
        guild_id=guild.id,
        type=PUBLIC_THREAD,
        parent_id=parent.id,
        owner_id=api.world.bot_user.id,
        auto_archive_duration=duration,
    )
    guild.channels.append(thread)
    return thread


def _thread_from_message(
    api: DiscordApi, request: RecordedRequest, channel_id: str, message_id: str
) -> Reply:
    parent, message = api._channel_message(channel_id, message_id, request)
    if parent.is_thread:
        raise ApiError(400, 50024, "Cannot execute action on this channel type")
    perms = api._bot_permissions(parent)
    if not perms & CREATE_PUBLIC_THREADS:
        raise ApiError(403, 50013, "Missing Permissions")
    if api.world.find_channel(message.id) is not None:
        raise ApiError(400, 160004, "A thread has already been created for this message")
    thread = _new_thread(api, parent, message.id, dict(request.json or {}))
    message.payload["flags"] = int(message.payload.get("flags") or 0) | HAS_THREAD
    message.payload["thread"] = thread.to_payload()
    api.notify()
    return 201, thread.to_payload()


def _thread_in_channel(api: DiscordApi, request: RecordedRequest, channel_id: str) -> Reply:
    parent = api._channel(channel_id)
    perms = api._bot_permissions(parent)
    if not perms & VIEW_CHANNEL:
        raise ApiError(403, 50001, "Missing Access")
    body = dict(request.json or {})
    if parent.type != FORUM_CHANNEL:
        if not perms & CREATE_PUBLIC_THREADS:
            raise ApiError(403, 50013, "Missing Permissions")
        if body.get("type", PUBLIC_THREAD) != PUBLIC_THREAD:
            raise ApiError(400, 0, "the stand-in starts public threads only")
        thread = _new_thread(api, parent, snowflake(), body)
        return 201, thread.to_payload()
    # A forum post: the thread and its first message, which has the thread's id.
    if not perms & SEND_MESSAGES:
        raise ApiError(403, 50013, "Missing Permissions")
    first = body.get("message")
    if not isinstance(first, dict):
        raise ApiError.form([("message", "This field is required")])
    _thread_fields(body)  # refuse a bad name before anything is stored
    message = api._new_message(
        channel_id=_snowflake(channel_id, "channel_id"),
        body=first,
        files=request.files,
        request=request,
    )
    # The post lives in its thread, whose id is the message's.
    del api.messages[message.id]
    thread = _new_thread(api, parent, message.id, body)
    message.channel_id = thread.id
    message.payload["channel_id"] = str(thread.id)
    api.messages[message.id] = message
    thread.last_message_id = message.id
    payload = thread.to_payload()
    payload["message"] = message.payload
    return 201, payload
