"""Channel webhooks and members' own messages, for :class:`~.rest.DiscordApi` (a mixin).

Webhooks as Discord keeps them: created in a text channel by a member with Manage Webhooks,
listed, deleted, and executed by id and token (``?wait=true`` returns the message,
``?thread_id=`` posts in a thread of the webhook's channel, and names the thread when such a
message is deleted), each message carrying the ``username`` and ``avatar_url`` it was sent
with, its files within the server's upload limit (``DiscordApi.upload_limit``). Members'
messages are what people type in a channel: stored, and announced with ``MESSAGE_CREATE``
through :meth:`DiscordApi.emit`, as are edits (``MESSAGE_UPDATE``) and deletions
(``MESSAGE_DELETE``). Other bots' messages (embeds and no text) and the system messages
Discord itself posts (a pin notice, a member's arrival) are made the same way.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .world import Channel, User, iso_now, snowflake

if TYPE_CHECKING:
    from .rest import DiscordApi, RecordedRequest, Reply

MANAGE_WEBHOOKS = 1 << 29
READ_MESSAGE_HISTORY = 1 << 16
SUPPRESS_EMBEDS = 1 << 2
MAX_WEBHOOKS_PER_CHANNEL = 15
# Message types (https://discord.com/developers/docs/resources/message#message-object-message-types).
DEFAULT_MESSAGE = 0
CHANNEL_PINNED_MESSAGE = 6
USER_JOIN = 7
REPLY = 19
IS_VOICE_MESSAGE = 1 << 13


@dataclass
class Webhook:
    id: int
    token: str
    channel_id: int
    guild_id: int
    name: str
    application_id: int | None
    deleted: bool = False

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": 1,
            "guild_id": str(self.guild_id),
            "channel_id": str(self.channel_id),
            "name": self.name,
            "avatar": None,
            "token": self.token,
            "application_id": str(self.application_id) if self.application_id else None,
        }


@dataclass(frozen=True)
class MemberFile:
    """A file a member attaches to a message they post."""

    filename: str
    data: bytes
    description: str | None = None


class WebhookRoutes:
    """The webhook routes and member messages; mixed into ``DiscordApi``."""

    webhooks: dict[int, Webhook]

    def _webhook_routes(self: DiscordApi) -> list[tuple[str, str, Callable[..., Reply]]]:
        return [
            ("POST", "/channels/{channel_id}/webhooks", self._create_webhook),
            ("GET", "/channels/{channel_id}/webhooks", self._list_webhooks),
            ("DELETE", "/webhooks/{webhook_id}", self._delete_webhook),
        ]

    # --- webhooks

    def _create_webhook(self: DiscordApi, request: RecordedRequest, channel_id: str) -> Reply:
        from .rest import ApiError

        channel = self._channel(channel_id)
        if channel.is_thread or channel.guild_id is None:
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        if not self._bot_permissions(channel) & MANAGE_WEBHOOKS:
            raise ApiError(403, 50013, "Missing Permissions")
        if sum(
            1 for w in self.webhooks.values() if w.channel_id == channel.id and not w.deleted
        ) >= (MAX_WEBHOOKS_PER_CHANNEL):
            raise ApiError(400, 30007, "Maximum number of webhooks reached (15)")
        name = str((request.json or {}).get("name") or "")
        if not 1 <= len(name) <= 80 or "discord" in name.lower() or "clyde" in name.lower():
            raise ApiError(400, 50035, "Invalid Form Body")
        webhook = Webhook(
            id=snowflake(),
            token=secrets.token_urlsafe(48),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            name=name,
            application_id=self.world.application.id,
        )
        self.webhooks[webhook.id] = webhook
        return 200, webhook.to_payload()

    def _list_webhooks(self: DiscordApi, request: RecordedRequest, channel_id: str) -> Reply:
        from .rest import ApiError

        channel = self._channel(channel_id)
        if not self._bot_permissions(channel) & MANAGE_WEBHOOKS:
            raise ApiError(403, 50013, "Missing Permissions")
        return 200, [
            w.to_payload()
            for w in self.webhooks.values()
            if w.channel_id == channel.id and not w.deleted
        ]

    def _delete_webhook(self: DiscordApi, request: RecordedRequest, webhook_id: str) -> Reply:
        from .rest import ApiError

        webhook = self.webhooks.get(int(webhook_id)) if webhook_id.isdigit() else None
        if webhook is None or webhook.deleted:
            raise ApiError(404, 10015, "Unknown Webhook")
        channel = self._channel(str(webhook.channel_id))
        if not self._bot_permissions(channel) & MANAGE_WEBHOOKS:
            raise ApiError(403, 50013, "Missing Permissions")
        webhook.deleted = True
        return 204, None

    def delete_webhook(self, webhook_id: int) -> None:
        """Someone deleted the webhook in the channel's settings."""
        self.webhooks[webhook_id].deleted = True

    def channel_webhooks(self, channel_id: int) -> list[Webhook]:
        return [w for w in self.webhooks.values() if w.channel_id == channel_id and not w.deleted]

    def _webhook_by_token(self: DiscordApi, webhook_id: str, token: str) -> Webhook:
        from .rest import ApiError

        webhook = self.webhooks.get(int(webhook_id)) if webhook_id.isdigit() else None
        if webhook is None or webhook.deleted or webhook.token != token:
            raise ApiError(404, 10015, "Unknown Webhook")
        return webhook

    def _execute_webhook(
        self: DiscordApi, request: RecordedRequest, webhook_id: str, token: str
    ) -> Reply:
        from .rest import ApiError

        webhook = self._webhook_by_token(webhook_id, token)
        target = self._channel(str(webhook.channel_id))
        thread_id = request.query.get("thread_id")
        if thread_id:
            thread = self._channel(thread_id)
            if not thread.is_thread or thread.parent_id != webhook.channel_id:
                raise ApiError(400, 220001, "Webhook can only post in its channel's threads")
            target = thread
        self._check_upload_size(request)
        body = dict(request.json or {})
        flags = int(body.get("flags") or 0)
        if flags & ~SUPPRESS_EMBEDS:
            raise ApiError(400, 50035, "Invalid Form Body")
        username = body.get("username")
        if username is not None and not 1 <= len(username) <= 80:
            raise ApiError(400, 50035, "Invalid Form Body")
        message = self._new_message(
            channel_id=target.id, body=body, files=request.files, request=request
        )
        message.payload["author"] = {
            "id": str(webhook.id),
            "username": username or webhook.name,
            "avatar": None,
            "discriminator": "0000",
            "bot": True,
        }
        message.payload["webhook_id"] = str(webhook.id)
        if webhook.application_id:
            message.payload["application_id"] = str(webhook.application_id)
        self.emit("MESSAGE_CREATE", message.payload)
        if request.query.get("wait", "").lower() in ("1", "true"):
            return 200, message.payload
        return 204, None

    def _delete_executed_message(
        self: DiscordApi, request: RecordedRequest, webhook_id: str, token: str, message_id: str
    ) -> Reply:
        from .rest import ApiError

        webhook = self._webhook_by_token(webhook_id, token)
        message = self.messages.get(int(message_id)) if message_id.isdigit() else None
        # A message the webhook posted in a thread is found only with that thread's id.
        where = int(request.query.get("thread_id") or webhook.channel_id)
        if (
            message is None
            or message.deleted
            or message.payload.get("webhook_id") != str(webhook.id)
            or message.channel_id != where
        ):
            raise ApiError(404, 10008, "Unknown Message")
        message.deleted = True
        self.emit("MESSAGE_DELETE", _deleted(message.payload))
        return 204, None

    # --- members' messages

    def member_message(
        self: DiscordApi,
        channel: Channel,
        user: User,
        content: str,
        *,
        files: Sequence[MemberFile] = (),
        reply_to: int | None = None,
        forwarded: dict[str, Any] | None = None,
        embeds: Sequence[dict[str, Any]] = (),
        stickers: Sequence[str] = (),
        poll: Sequence[str] = (),
        voice: bool = False,
    ) -> dict[str, Any]:
        """A member posts ``content`` (with ``files``, in reply to message ``reply_to``, or
        forwarding the message payload ``forwarded``) in ``channel``; returns the message.
        ``embeds`` (rich embeds, as another bot posts them) need a bot ``user``: a person's
        client can't send them. ``stickers``: the stickers sent, by name; ``poll``: a poll's
        question, then its answers; ``voice``: a voice message, its recording the one file."""
        if embeds and not user.bot:
            raise ValueError("only a bot posts rich embeds")
        if voice and (content or len(files) != 1):
            raise ValueError("a voice message is one recording and no text")
        from .rest import StoredMessage

        attachments = []
        for file in files:
            attachment_id, url = self.store_attachment(channel.id, file.filename, file.data)
            attachment: dict[str, Any] = {
                "id": str(attachment_id),
                "filename": file.filename,
                "size": len(file.data),
                "url": url,
                "proxy_url": url,
                "content_type": "image/png" if file.filename.endswith(".png") else None,
            }
            if file.description:
                attachment["description"] = file.description
            if voice:
                attachment.update(
                    content_type="audio/ogg", duration_secs=3.5, waveform="AAAAAAAAAAAA"
                )
            attachments.append(attachment)
        payload: dict[str, Any] = {
            "id": str(snowflake()),
            "type": 0,
            "channel_id": str(channel.id),
            "author": user.to_payload(),
            "content": content,
            "timestamp": iso_now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments,
            "embeds": [{"type": "rich", **embed} for embed in embeds],
            "components": [],
            "pinned": False,
            "flags": IS_VOICE_MESSAGE if voice else 0,
        }
        if stickers:
            payload["sticker_items"] = [
                {"id": str(snowflake()), "name": name, "format_type": 1} for name in stickers
            ]
        if poll:
            question, *answers = poll
            expiry = datetime.now(UTC) + timedelta(hours=24)
            payload["poll"] = {
                "question": {"text": question},
                "answers": [
                    {"answer_id": number, "poll_media": {"text": answer}}
                    for number, answer in enumerate(answers, start=1)
                ],
                "expiry": expiry.isoformat(),
                "allow_multiselect": False,
                "layout_type": 1,
            }
        if channel.guild_id is not None:
            payload["guild_id"] = str(channel.guild_id)
        if reply_to is not None:
            payload["type"] = REPLY
            payload["message_reference"] = {
                "type": 0,
                "message_id": str(reply_to),
                "channel_id": str(channel.id),
                "guild_id": str(channel.guild_id),
            }
        if forwarded is not None:
            payload["message_reference"] = {
                "type": 1,
                "message_id": forwarded["id"],
                "channel_id": forwarded["channel_id"],
            }
            payload["message_snapshots"] = [
                {
                    "message": {
                        key: forwarded[key]
                        for key in (
                            "type",
                            "content",
                            "embeds",
                            "attachments",
                            "timestamp",
                            "edited_timestamp",
                            "flags",
                            "mentions",
                            "mention_roles",
                            "components",
                        )
                    }
                }
            ]
        self._fill_mentions(payload)
        message = StoredMessage(payload=payload, channel_id=channel.id)
        self.messages[message.id] = message
        channel.last_message_id = message.id
        self.emit("MESSAGE_CREATE", self._with_member(payload, user))
        return payload

    def system_message(
        self: DiscordApi, channel: Channel, user: User, kind: int, *, pinned: int | None = None
    ) -> dict[str, Any]:
        """A message Discord itself posts in ``channel`` about ``user``: ``USER_JOIN`` (they
        arrived) or ``CHANNEL_PINNED_MESSAGE`` (they pinned message ``pinned``). No content:
        clients write the text from the type."""
        from .rest import StoredMessage

        if kind not in (CHANNEL_PINNED_MESSAGE, USER_JOIN):
            raise ValueError(f"no system message of type {kind} here")
        payload: dict[str, Any] = {
            "id": str(snowflake()),
            "type": kind,
            "channel_id": str(channel.id),
            "author": user.to_payload(),
            "content": "",
            "timestamp": iso_now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "flags": 0,
        }
        if channel.guild_id is not None:
            payload["guild_id"] = str(channel.guild_id)
        if kind == CHANNEL_PINNED_MESSAGE:
            if pinned is None:
                raise ValueError("a pin notice names the message pinned")
            payload["message_reference"] = {
                "type": 0,
                "message_id": str(pinned),
                "channel_id": str(channel.id),
                "guild_id": str(channel.guild_id),
            }
            self.messages[pinned].payload["pinned"] = True
        message = StoredMessage(payload=payload, channel_id=channel.id)
        self.messages[message.id] = message
        channel.last_message_id = message.id
        self.emit("MESSAGE_CREATE", self._with_member(payload, user))
        return payload

    def edit_member_message(self: DiscordApi, message_id: int, content: str) -> dict[str, Any]:
        """The member edits their message; Discord sends ``MESSAGE_UPDATE``."""
        message = self.messages[message_id]
        message.payload["content"] = content
        message.payload["edited_timestamp"] = iso_now()
        self._fill_mentions(message.payload)
        user = self.world.user_by_id(int(message.payload["author"]["id"]))
        assert user is not None
        self.emit("MESSAGE_UPDATE", self._with_member(message.payload, user))
        return message.payload

    def _with_member(self: DiscordApi, payload: dict[str, Any], user: User) -> dict[str, Any]:
        """Gateway message events in a server carry the author's partial member."""
        event = dict(payload)
        guild = self.world.find_guild(int(payload.get("guild_id") or 0))
        member = guild.member(user.id) if guild else None
        if member is not None:
            partial = member.to_payload()
            del partial["user"]
            event["member"] = partial
        return event


def _deleted(payload: dict[str, Any]) -> dict[str, Any]:
    event = {"id": payload["id"], "channel_id": payload["channel_id"]}
    if payload.get("guild_id"):
        event["guild_id"] = payload["guild_id"]
    return event
