"""The spoiler guard: members' new, edited and forwarded messages matched against the spoiler
terms of the episodes whose window runs in their server, then flagged or hidden.

Matching is ``bot.spoilers.terms.GuardIndex``: one automaton per distinct set of active terms,
rebuilt when a window opens or closes (the task sleeps until ``expires_at``), when settings
change and when content reloads. The guard needs the Message Content intent, requested only
with ``MESSAGE_GUARD=on``; without it ``/embargo guard`` explains how to turn it on.

A flag reply's deletion is stored with the reply, and a second task sleeps until the next one
falls due, so a restart in between still deletes it (on start-up, if it fell due meanwhile). A
row goes only once Discord deleted the reply or said it was gone, so nothing is deleted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.content.models import Episode
from bot.errors import UserError
from bot.hiding import GuardMode, MemberSpoilerSettings, check_hideable
from bot.hiding_messages import (
    HIDE_PERMISSIONS,
    flag_message,
    guard_episode_name,
    guard_log_message,
    guard_unavailable_message,
)
from bot.messages import change_message
from bot.spoilers.policy import SpoilerSettings, window_end
from bot.spoilers.terms import EpisodeTerms, GuardIndex
from bot.storage import StorageError
from bot.storage.members import FLAG_DELETION_BATCH, FlagDeletion, TooManyIgnoredChannelsError
from bot.ui import (
    NO_MENTIONS,
    OneOf,
    attach_moderator_commands,
    detach_moderator_commands,
    send_messages,
    server_id,
)
from cogs.members._repost import Reposter, hide_source

if TYPE_CHECKING:
    from bot.client import EmbargoBot

log = logging.getLogger(__name__)

FLAG_SECONDS = 60
# The longest single sleep before looking at the flag replies again: the event loop's clock and
# the wall clock can drift apart (a suspended machine, a corrected clock).
MAX_SLEEP_S = 6 * 3600.0
# After a storage fault or Discord trouble, try the flag replies again this much later.
RETRY_S = 60.0
# Messages already judged, by id, with the text judged: an edit that leaves the text as it was
# (a link preview arriving) is not flagged twice.
JUDGED_LIMIT = 10_000
AnyChannel = app_commands.AppCommandChannel | app_commands.AppCommandThread


class Guard(commands.Cog):
    def __init__(self, bot: EmbargoBot, reposter: Reposter) -> None:
        self.bot = bot
        self.reposter = reposter
        self.index: GuardIndex | None = None
        self.guarded: dict[int, MemberSpoilerSettings] = {}
        self.spoiler_settings: dict[int, SpoilerSettings] = {}
        self.episodes: dict[str, Episode] = {}
        self._judged: OrderedDict[int, str] = OrderedDict()
        # (channel, member) -> when their last flag reply goes (time.monotonic()), oldest first.
        self._replied: OrderedDict[tuple[int, int], float] = OrderedDict()
        self.flag_seconds: float = FLAG_SECONDS
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flags_wake = asyncio.Event()
        self._flags_task: asyncio.Task[None] | None = None
        self.settings_commands: list[app_commands.Command[Any, ..., Any]] = [
            app_commands.Command(
                name="guard",
                description="Flag or hide members' messages naming an episode in its window.",
                callback=self.guard,
            ),
            app_commands.Command(
                name="guard-ignore",
                description="The guard leaves this channel alone.",
                callback=self.guard_ignore,
            ),
            app_commands.Command(
                name="guard-watch",
                description="The guard watches this channel again.",
                callback=self.guard_watch,
            ),
        ]

    @property
    def available(self) -> bool:
        return self.bot.intents.message_content

    async def cog_load(self) -> None:
        attach_moderator_commands(self.bot.tree, self.settings_commands)
        if self.available:
            self.bot.storage.settings_listeners.append(self._changed)
            self.bot.storage.member_spoiler_listeners.append(self._changed)
            self.bot.content.reload_listeners.append(self.rebuild_soon)
            self._task = asyncio.create_task(self._run(), name="embargo-guard")
        # Also without the intent now: flag replies an earlier run left still go.
        self._flags_task = asyncio.create_task(self._delete_flags(), name="embargo-guard-flags")

    async def cog_unload(self) -> None:
        detach_moderator_commands(self.bot.tree, self.settings_commands)
        with contextlib.suppress(ValueError):
            self.bot.storage.settings_listeners.remove(self._changed)
        with contextlib.suppress(ValueError):
            self.bot.storage.member_spoiler_listeners.remove(self._changed)
        with contextlib.suppress(ValueError):
            self.bot.content.reload_listeners.remove(self.rebuild_soon)
        for task in (self._task, self._flags_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def _changed(self, guild_id: int | None) -> None:
        self.rebuild_soon()

    def rebuild_soon(self) -> None:
        self._wake.set()

    # -- the index ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.rebuild()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the spoiler guard could not rebuild its terms; trying again soon")
                await asyncio.sleep(60)
                continue
            expires = self.index.expires_at if self.index is not None else None
            timeout = None
            if expires is not None:
                timeout = max(0.0, (expires - self.bot.clock()).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def rebuild(self) -> None:
        """Read the servers that guard, their windows and the content's terms, and build the
        index for now (reusing the matchers of sets that did not change)."""
        terms = await self.bot.storage.episode_spoiler_terms()
        episodes = {
            episode.key: episode
            for show in self.bot.catalogue.shows
            for episode in show.episodes
            if episode.key in terms
        }
        guarded = await self.bot.storage.guarded_guilds()
        spoilers = {
            guild_id: (await self.bot.storage.get_guild_settings(guild_id)).spoilers
            for guild_id in guarded
        }
        self.index = GuardIndex.build(
            [EpisodeTerms(episode, terms[key]) for key, episode in episodes.items()],
            spoilers,
            self.bot.clock(),
            previous=self.index,
        )
        self.guarded, self.spoiler_settings, self.episodes = guarded, spoilers, episodes

    # -- flag replies' deletion --------------------------------------------------------------

    def flags_changed(self) -> None:
        """Look at the flag replies again now (one was added, or time moved)."""
        self._flags_wake.set()

    async def _delete_flags(self) -> None:
        while True:
            self._flags_wake.clear()
            try:
                delay = await self.delete_due_flags()
            except asyncio.CancelledError:
                raise
            except StorageError as error:
                log.warning("could not read the guard's flag replies (%s); retrying later", error)
                delay = RETRY_S
            except Exception:
                log.exception("deleting the guard's flag replies failed; retrying later")
                delay = RETRY_S
            timeout = None if delay is None else min(max(delay, 0.0), MAX_SLEEP_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flags_wake.wait(), timeout)

    async def delete_due_flags(self) -> float | None:
        """Delete every flag reply now due; returns the seconds until the next one falls due
        (None: none pending)."""
        now = self.bot.clock()
        due, upcoming = await self.bot.storage.flag_deletions(now)
        for flag in due:
            if not await self._delete_flag(flag):
                return RETRY_S
        if len(due) == FLAG_DELETION_BATCH:
            return 0.0  # more are due
        return None if upcoming is None else (upcoming - now).total_seconds()

    async def _delete_flag(self, flag: FlagDeletion) -> bool:
        """Delete one reply and forget it; False when Discord failed (kept, tried later)."""
        channel = self.bot.get_partial_messageable(flag.channel_id)
        try:
            await channel.get_partial_message(flag.message_id).delete()
        except discord.NotFound:
            pass  # someone deleted it already (or its channel): done
        except discord.Forbidden:
            log.info("may no longer delete the guard's reply %s: left as it is", flag.message_id)
        except discord.HTTPException as error:
            log.warning("could not delete the guard's reply %s: %s", flag.message_id, error)
            return False
        await self.bot.storage.flag_deleted(flag.message_id)
        return True

    # -- messages ----------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        await self.judge(message)

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        await self.judge(payload.message)

    async def judge(self, message: discord.Message) -> None:
        index, guild = self.index, message.guild
        if index is None or guild is None or message.author.bot or message.webhook_id:
            return
        settings = self.guarded.get(guild.id)
        if settings is None or settings.guard_mode is GuardMode.OFF:
            return
        text = "\n".join(
            [
                message.content,
                *(snapshot.content for snapshot in message.message_snapshots),
                *_poll_texts(message.poll),
            ]
        )
        if self._judged.get(message.id) == text:
            return
        self._judged[message.id] = text
        self._judged.move_to_end(message.id)
        while len(self._judged) > JUDGED_LIMIT:
            self._judged.popitem(last=False)
        keys = index.match(guild.id, text)
        if not keys:
            return
        channel = message.channel
        where = {
            channel.id,
            getattr(channel, "parent_id", None),
            getattr(channel, "category_id", None),
        }
        spoilers = self.spoiler_settings[guild.id]
        if where & settings.guard_ignored or where & spoilers.spoilers_ok_channels:
            return
        if isinstance(channel, discord.Thread) and await self.bot.storage.is_discussion_thread(
            channel.id
        ):
            return
        episode = self.episodes[min(keys)]
        label = guard_episode_name(episode.show_title, episode.short_code)
        if settings.guard_mode is GuardMode.HIDE and self._can_hide(message):
            outcome = await self.reposter.hide(
                message,
                channel=channel,
                hider_id=None,
                hider_name="",
                log_channel_id=settings.log_channel_id,
                upload_limit=guild.filesize_limit,
            )
            if outcome.jump_url is not None or outcome.busy:
                return  # hidden (or being hidden, edits included)
            log.info("the guard could not hide message %s: %s", message.id, outcome.reply.content)
        if self._may_reply(channel.id, message.author.id):
            ends = window_end(episode.release_at, spoilers.window_for(episode.show_slug))
            try:
                reply = await message.reply(
                    flag_message(label, ends).content or "",
                    allowed_mentions=NO_MENTIONS,
                    suppress_embeds=True,
                )
            except discord.HTTPException as error:
                log.info("the guard could not flag message %s: %s", message.id, error)
            else:
                await self._delete_later(reply)
        await self.reposter.post_log(
            settings.log_channel_id,
            guard_log_message(
                hidden=False,
                author_id=message.author.id,
                channel_id=channel.id,
                label=label,
                jump_url=message.jump_url,
            ),
        )

    def _may_reply(self, channel_id: int, author_id: int) -> bool:
        """One flag reply per member and channel while the last is up: a member posting
        several spoilers in a row gets one reply (each message is still logged), not a
        channel full of Embargo's."""
        now = time.monotonic()
        while self._replied and next(iter(self._replied.values())) <= now:
            self._replied.popitem(last=False)  # all last as long: the oldest end first
        if (channel_id, author_id) in self._replied:
            return False
        self._replied[(channel_id, author_id)] = now + self.flag_seconds
        return True

    async def _delete_later(self, reply: discord.Message) -> None:
        """Have the flag reply deleted after ``flag_seconds``, across restarts."""
        delete_at = self.bot.clock() + timedelta(seconds=self.flag_seconds)
        guild_id = reply.guild.id if reply.guild is not None else 0
        try:
            await self.bot.storage.schedule_flag_deletion(
                guild_id, reply.channel.id, reply.id, delete_at
            )
        except StorageError as error:
            # Not stored: deleted by this run all the same, unless it stops first.
            log.warning("could not store the deletion of reply %s: %s", reply.id, error)
            await reply.delete(delay=self.flag_seconds)
            return
        self.flags_changed()

    def _can_hide(self, message: discord.Message) -> bool:
        """Whether a repost can be made here now; otherwise the guard flags instead."""
        assert self.bot.user is not None
        guild = message.guild
        channel = message.channel
        if guild is None or not isinstance(channel, discord.abc.GuildChannel | discord.Thread):
            return False
        permissions = channel.permissions_for(guild.me)
        if not all(getattr(permissions, name) for name in HIDE_PERMISSIONS):
            return False
        problem = check_hideable(
            hide_source(message, self.bot.user.id), upload_limit=guild.filesize_limit
        )
        return problem is None

    # -- /embargo guard ----------------------------------------------------------------------
    # interaction.guild_id is never None: ModeratorGroup.interaction_check refuses DMs.

    @app_commands.describe(
        mode="off · flag: a short reply, deleted after a minute · hide: reposted as a spoiler"
    )
    async def guard(
        self,
        interaction: discord.Interaction,
        mode: app_commands.Transform[str, OneOf(*GuardMode)],
    ) -> None:
        if not self.available:
            await send_messages(interaction, [guard_unavailable_message()])
            return
        new = GuardMode(mode)
        old = await self.bot.storage.set_guard_mode(server_id(interaction), new)
        await send_messages(interaction, [change_message("Guard", old.value, new.value)])

    @app_commands.describe(channel="The channel (or category) the guard leaves alone")
    async def guard_ignore(self, interaction: discord.Interaction, channel: AnyChannel) -> None:
        await self._set_ignored(interaction, channel, ignored=True)

    @app_commands.describe(channel="The channel (or category) the guard watches again")
    async def guard_watch(self, interaction: discord.Interaction, channel: AnyChannel) -> None:
        await self._set_ignored(interaction, channel, ignored=False)

    async def _set_ignored(
        self, interaction: discord.Interaction, channel: AnyChannel, *, ignored: bool
    ) -> None:
        try:
            was = await self.bot.storage.set_guard_ignored(
                server_id(interaction),
                channel.id,
                ignored,
            )
        except TooManyIgnoredChannelsError:
            raise UserError(
                "The guard already ignores 100 channels: let it watch one again first. "
                "Nothing was changed."
            ) from None
        message = change_message(
            f"Guard in {channel.mention}",
            "ignored" if was else "watched",
            "ignored" if ignored else "watched",
        )
        await send_messages(interaction, [message])


def _poll_texts(poll: discord.Poll | None) -> list[str]:
    """A poll's question and answers: members' words the guard reads too."""
    if poll is None:
        return []
    return [poll.question, *(answer.text for answer in poll.answers)]
