"""The repost behind "Hide as spoiler" and the guard's ``hide``: a webhook per channel (a
thread uses its parent's, with ``thread_id``), the member's words wrapped by the renderer, and
only after Discord confirmed every part of the repost, the original's deletion."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord

from bot.hiding import HideSource, SourceAttachment, upload_groups, webhook_name
from bot.hiding_messages import (
    RepostPart,
    already_being_hidden_message,
    discord_refusal_reason,
    hidden_message,
    hide_log_message,
    kept_changing_message,
    message_gone_message,
    missing_hide_permissions_message,
    original_kept_message,
    repost_parts,
    repost_refused_message,
)
from bot.messages import OutgoingMessage
from bot.storage.members import StoredWebhook
from bot.ui import NO_MENTIONS

if TYPE_CHECKING:
    from bot.client import EmbargoBot

log = logging.getLogger(__name__)

WEBHOOK_NAME = "Embargo spoilers"
UNKNOWN_WEBHOOK = 10015
# Reposts made of a message its author keeps editing meanwhile, before giving up on it.
REPOST_ATTEMPTS = 2


@dataclass(frozen=True, slots=True)
class HideOutcome:
    """What became of one hide: the reply for whoever asked, and the repost's link if made."""

    reply: OutgoingMessage
    jump_url: str | None = None
    busy: bool = False  # another hide of the message was underway: this one did nothing


class RepostRefused(Exception):
    """Discord refused part ``part`` of ``parts`` of the repost; whatever was posted of it has
    been removed, except the messages at ``left_behind``."""

    def __init__(
        self, reason: str, *, part: int = 1, parts: int = 1, left_behind: tuple[str, ...] = ()
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.part = part
        self.parts = parts
        self.left_behind = left_behind

    def message(self) -> OutgoingMessage:
        return repost_refused_message(
            self.reason, part=self.part, parts=self.parts, left_behind=self.left_behind
        )


def hide_source(message: discord.Message, bot_id: int) -> HideSource:
    text, attachments = message.content, message.attachments
    if message.message_snapshots:  # a forwarded message: its words are the snapshot's
        snapshot = message.message_snapshots[0]
        text = "\n".join(part for part in (text, snapshot.content) if part)
        attachments = [*attachments, *snapshot.attachments]
    reference = message.reference
    reply_url = (
        reference.jump_url
        if reference is not None and reference.message_id and not message.message_snapshots
        else None
    )
    own = message.author.id == bot_id or (
        message.webhook_id is not None and message.application_id == bot_id
    )
    return HideSource(
        author_id=message.author.id,
        text=text,
        attachments=tuple(SourceAttachment(a.filename, a.size) for a in attachments),
        rich_embeds=sum(1 for embed in message.embeds if embed.type == "rich"),
        stickers=len(message.stickers),
        poll=message.poll is not None,
        system=message.is_system(),
        from_embargo=own,
        reply_url=reply_url,
    )


class Reposter:
    """Hides messages as spoilers for the message command and the guard alike."""

    def __init__(self, bot: EmbargoBot) -> None:
        self.bot = bot
        self._hiding: set[int] = set()  # ids of the messages being hidden now

    async def hide(
        self,
        message: discord.Message,
        *,
        channel: discord.abc.MessageableChannel,
        hider_id: int | None,
        hider_name: str,
        log_channel_id: int | None,
        upload_limit: int,
    ) -> HideOutcome:
        """Repost ``message`` as a spoiler through the channel's webhook, then delete it. The
        original is deleted only once every part of the repost is confirmed and the original
        is still as reposted; when the repost fails, the original stays and the outcome says
        why. ``channel`` is the message's, as the interaction knows it (a thread the cache
        never saw included). ``hider_id`` None: the guard. ``upload_limit``: the largest
        upload Embargo may make there, in bytes. One hide of a message at a time: another
        asked meanwhile (a second moderator, the guard seeing an edit) is told so."""
        if message.id in self._hiding:
            return HideOutcome(already_being_hidden_message(), busy=True)
        self._hiding.add(message.id)
        try:
            return await self._hide(
                message,
                channel=channel,
                hider_id=hider_id,
                hider_name=hider_name,
                log_channel_id=log_channel_id,
                upload_limit=upload_limit,
            )
        finally:
            self._hiding.discard(message.id)

    async def _hide(
        self,
        message: discord.Message,
        *,
        channel: discord.abc.MessageableChannel,
        hider_id: int | None,
        hider_name: str,
        log_channel_id: int | None,
        upload_limit: int,
    ) -> HideOutcome:
        try:
            # The message may be gone since the menu was opened: nothing to repost then.
            current = await channel.fetch_message(message.id)
        except discord.NotFound:
            return HideOutcome(message_gone_message())
        except discord.Forbidden:
            return HideOutcome(missing_hide_permissions_message(["read_message_history"]))
        for _ in range(REPOST_ATTEMPTS):
            author = await self._author(current)
            try:
                posted = await self._repost_message(
                    current,
                    channel,
                    author,
                    hider_name=hider_name,
                    automatic=hider_id is None,
                    upload_limit=upload_limit,
                )
            except discord.Forbidden:
                return HideOutcome(missing_hide_permissions_message(["manage_webhooks"]))
            except RepostRefused as refused:
                return HideOutcome(refused.message())
            try:
                latest = await channel.fetch_message(current.id)
            except discord.NotFound:
                # Deleted while it was reposted (by its author, say): the repost goes too.
                await self._withdraw(posted)
                return HideOutcome(message_gone_message())
            except discord.HTTPException:
                latest = current  # can't look again: the repost is of its last known words
            if latest.content == current.content and latest.edited_at == current.edited_at:
                return await self._replace(
                    current, posted, hider_id=hider_id, author=author, log_channel_id=log_channel_id
                )
            # Edited while it was reposted: the repost has the old words. Again, with the new.
            left_behind = await self._withdraw(posted)
            if left_behind:
                return HideOutcome(
                    repost_refused_message(
                        "the message was edited while Embargo reposted it",
                        left_behind=left_behind,
                    )
                )
            current = latest
        return HideOutcome(kept_changing_message())

    async def _author(self, message: discord.Message) -> discord.Member | discord.User:
        """Whose name and avatar the repost carries: a fetched message has the user only, so
        the server display name and avatar are the member's (no members intent needed to
        fetch one); someone no longer a member keeps their account's."""
        author = message.author
        if not isinstance(author, discord.Member) and message.guild is not None:
            with contextlib.suppress(discord.HTTPException):
                return message.guild.get_member(author.id) or await message.guild.fetch_member(
                    author.id
                )
        return author

    async def _repost_message(
        self,
        message: discord.Message,
        channel: discord.abc.MessageableChannel,
        author: discord.Member | discord.User,
        *,
        hider_name: str,
        automatic: bool,
        upload_limit: int,
    ) -> list[discord.WebhookMessage]:
        """The message's words and files as a spoiler repost, every part confirmed; raises
        ``RepostRefused`` (nothing of it left but what it names) or ``Forbidden``."""
        assert self.bot.user is not None
        source = hide_source(message, self.bot.user.id)
        attachments = list(message.attachments)
        if message.message_snapshots:
            attachments += message.message_snapshots[0].attachments
        parts = repost_parts(
            source.text,
            hider_name=hider_name,
            reply_url=source.reply_url,
            automatic=automatic,
            uploads=upload_groups([a.size for a in attachments], upload_limit),
        )
        try:
            files = [await attachment.to_file(spoiler=True) for attachment in attachments]
        except discord.HTTPException as error:
            log.warning("could not download an attachment of message %s", message.id)
            raise RepostRefused("one of its attachments could not be downloaded") from error
        return await self._repost(
            channel,
            parts,
            files,
            username=webhook_name(author.display_name),
            avatar_url=author.display_avatar.url,
        )

    async def _replace(
        self,
        original: discord.Message,
        posted: list[discord.WebhookMessage],
        *,
        hider_id: int | None,
        author: discord.Member | discord.User,
        log_channel_id: int | None,
    ) -> HideOutcome:
        """The repost is up and matches the original: delete the original, and log it."""
        jump_url = posted[0].jump_url
        try:
            await original.delete()
        except discord.NotFound:
            pass  # deleted this very moment: the repost is all that is left, as asked
        except discord.HTTPException:
            return HideOutcome(original_kept_message(jump_url), jump_url)
        await self.post_log(
            log_channel_id,
            hide_log_message(
                hider_id=hider_id,
                author_id=author.id,
                channel_id=original.channel.id,
                jump_url=jump_url,
            ),
        )
        return HideOutcome(hidden_message(jump_url), jump_url)

    async def _repost(
        self,
        channel: discord.abc.Messageable,
        parts: list[RepostPart],
        files: list[discord.File],
        *,
        username: str,
        avatar_url: str,
    ) -> list[discord.WebhookMessage]:
        """Post every part through the channel's webhook (recreated once if someone deleted
        it); on a refusal, delete the parts already posted and raise ``RepostRefused`` (or
        ``Forbidden`` when nothing could be posted for want of a permission)."""
        thread = channel if isinstance(channel, discord.Thread) else None
        parent_id = thread.parent_id if thread is not None else getattr(channel, "id", 0)
        posted: list[discord.WebhookMessage] = []
        webhook: discord.Webhook | None = None
        for attempt in range(2):
            try:
                webhook = await self._webhook(parent_id, fresh=attempt > 0)
                for part in parts[len(posted) :]:
                    kwargs: dict[str, Any] = {
                        "content": part.content,
                        "username": username,
                        "avatar_url": avatar_url,
                        "allowed_mentions": NO_MENTIONS,
                        "suppress_embeds": True,
                        "wait": True,
                    }
                    if part.files:
                        kwargs["files"] = [files[index] for index in part.files]
                    if thread is not None:
                        kwargs["thread"] = thread
                    posted.append(await webhook.send(**kwargs))
                return posted
            except discord.HTTPException as error:
                gone = isinstance(error, discord.NotFound) and error.code == UNKNOWN_WEBHOOK
                if gone and attempt == 0 and webhook is not None:
                    log.info("the spoiler webhook of channel %s is gone: a new one", parent_id)
                    await self.bot.storage.forget_spoiler_webhook(parent_id, webhook.id)
                    for file in files:
                        file.reset()
                    continue
                left_behind = await self._withdraw(posted)
                if isinstance(error, discord.Forbidden) and not posted:
                    raise  # no webhook could be made or used: the permission is named
                raise RepostRefused(
                    discord_refusal_reason(error.status, error.code, error.text),
                    part=len(posted) + 1,
                    parts=len(parts),
                    left_behind=left_behind,
                ) from error
        raise AssertionError("unreachable")

    async def _withdraw(self, posted: list[discord.WebhookMessage]) -> tuple[str, ...]:
        """Delete the parts of a repost that failed; returns the links of those that stay."""
        left: list[str] = []
        for message in posted:
            try:
                try:
                    await message.delete()
                except discord.NotFound as error:
                    if error.code != UNKNOWN_WEBHOOK:
                        continue  # someone deleted it already
                    # Someone deleted the webhook, which leaves its messages: delete this one
                    # as any other (hiding needs Manage Messages anyway).
                    channel = self.bot.get_partial_messageable(message.channel.id)
                    await channel.get_partial_message(message.id).delete()
            except discord.NotFound:
                pass
            except discord.HTTPException:
                log.warning("could not remove part %s of a failed spoiler repost", message.id)
                left.append(message.jump_url)
        return tuple(left)

    async def _webhook(self, channel_id: int, *, fresh: bool) -> discord.Webhook:
        """The channel's spoiler webhook: the stored one, or a new one (``fresh``: always)."""
        stored = None if fresh else await self.bot.storage.spoiler_webhook(channel_id)
        if stored is not None:
            return discord.Webhook.partial(stored.webhook_id, stored.token, client=self.bot)
        channel = self.bot.get_channel(channel_id)
        if not isinstance(
            channel, discord.TextChannel | discord.ForumChannel | discord.VoiceChannel
        ):
            raise RepostRefused("this kind of channel can't have the webhook Embargo posts with")
        webhook = await channel.create_webhook(name=WEBHOOK_NAME, reason="Hide as spoiler")
        assert webhook.token is not None
        await self.bot.storage.save_spoiler_webhook(
            channel.guild.id, channel_id, StoredWebhook(webhook.id, webhook.token)
        )
        return webhook

    async def post_log(self, channel_id: int | None, message: OutgoingMessage) -> None:
        if channel_id is None:
            return
        channel = self.bot.get_channel(channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            log.warning("the spoiler log channel %s is gone", channel_id)
            return
        try:
            await channel.send(
                message.content or "", allowed_mentions=NO_MENTIONS, suppress_embeds=True
            )
        except discord.HTTPException as error:
            log.warning("could not log a hidden message in channel %s: %s", channel_id, error)
