"""The discussion calendar's Discord side: one task that sleeps until the next post falls due,
sends what is due (release posts and their threads, window-closed posts) and records each
outcome in the ledger. What is due is decided by ``bot.calendar``; the words by
``bot.discussion_messages``.

- **Once.** Each post is recorded as soon as it is sent; a message is sent with a nonce derived
  from its key and ``enforce_nonce``, so a retry after a crash between sending and recording
  returns the first message instead of making a second. A forum post takes no nonce: its try
  is recorded before it is made, and a try after one cut short looks for the post among the
  server's active threads first. The watermark (``checked_through``) moves only after a whole
  wake was settled, so a restart finishes what a crash cut short.
- **Failures** (a deleted channel, a missing permission, a Discord error) are recorded with the
  reason ``/embargo settings`` shows, logged once at WARNING, and retried by the calendar's
  rules; they never stop the task or other servers' posts. A channel or server that is gone
  (Unknown Channel, Unknown Guild, Embargo removed from the server) is not tried again. A busy
  database ends the wake early and it is tried again shortly.
- **One process.** Of several processes on one database, only the leader (``bot/leader.py``)
  runs the task; the others hear of settings and content changes as it does, and a process
  that takes over the lead starts from the watermark in the database. The leader posts for
  every server: one on another process's shards, which its gateway cache doesn't hold, is
  reached through REST (``_remote.py``), with the same permission checks, and counts as
  joined until that process records Embargo's removal.
- **Fan-out** paces its own requests below Discord's global limit (about 50 a second per bot)
  with a few workers, so one release in many servers neither draws 429s nor delays
  interactions, whose answers are not counted against that limit.
- **Upkeep**: once a day, at a wake, each server's ledger rows of long-settled episodes are
  pruned (``bot.calendar.prune_before``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

import discord

from bot.calendar import (
    Calendar,
    DueItem,
    DueReason,
    GuildSchedule,
    LedgerEntry,
    PostKey,
    PostKind,
    ScheduleIndex,
    earliest_wake,
    post_nonce,
    prune_before,
    settle,
)
from bot.discussion_messages import (
    FORUM_THREAD_PERMISSIONS,
    POST_PERMISSIONS,
    THREAD_PERMISSIONS,
    missing_permissions_reason,
    release_post,
    thread_message,
    thread_name,
    window_closed_post,
)
from bot.leader import LeaderWork
from bot.messages import OutgoingMessage
from bot.spoilers.policy import window_end
from bot.storage import StorageError
from cogs.discussion._buttons import release_view
from cogs.discussion._remote import NotInServer, RemoteServers

if TYPE_CHECKING:
    from bot.client import EmbargoBot

log = logging.getLogger(__name__)

# Discord allows a bot about 50 requests a second in all; the fan-out keeps a margin for the
# bot's other requests.
FAN_OUT_REQUESTS_PER_S = 45.0
# Posts in flight at once: enough to keep the pace with Discord's latency, few enough that
# a slow answer never queues much behind it.
FAN_OUT_CONCURRENCY = 16
# A thread with no message for this long is archived (a week, Discord's longest).
THREAD_ARCHIVE_MINUTES: Final = 10080
# Discord's error code for a second thread started from the same message.
THREAD_EXISTS = 160004
# Discord's error codes for a channel or server that does not exist (or is hidden from Embargo).
UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
SERVER_LEFT = "Embargo is no longer in this server."
# The longest single sleep: the event loop's clock and the wall clock can drift apart.
MAX_SLEEP_S = 6 * 3600.0
# The ledger's old rows are pruned at a wake at most this often (wakes come anyway: a
# release, a window's end, or the longest sleep).
PRUNE_EVERY = timedelta(days=1)
# After a storage fault or an unexpected error, look again this much later.
RETRY_AFTER_FAULT_S = 30.0


class PostFailed(Exception):
    """A post that can't be made now; the message is the reason kept in the ledger. A final
    failure can never succeed, so it is not tried again."""

    def __init__(self, reason: str, *, final: bool = False) -> None:
        super().__init__(reason)
        self.final = final


class Pacer:
    """At most ``rate`` requests in any one second, across every task that asks, and never
    closer together than half their even spacing: a request that slipped (a busy loop) can
    catch up, but a stalled loop can't release a burst."""

    def __init__(self, rate: float) -> None:
        self.interval = 0.5 / rate
        self.per_second = int(rate)
        self._sent: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._sent and self._sent[0] <= now - 1.0:
                    self._sent.popleft()
                due = now
                if self._sent:
                    due = max(due, self._sent[-1] + self.interval)
                if len(self._sent) >= self.per_second:
                    due = max(due, self._sent[0] + 1.0)
                if due <= now:
                    self._sent.append(now)
                    return
                await asyncio.sleep(due - now)


class Scheduler:
    def __init__(self, bot: EmbargoBot) -> None:
        self.bot = bot
        self.pacer = Pacer(FAN_OUT_REQUESTS_PER_S)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set while asleep with no wake asked for
        self._work = LeaderWork(bot.leadership, self._run, name="embargo-discussion")
        # Servers on other processes' shards: the leader posts there too, through REST.
        self.remote = RemoteServers(bot, self.pacer.wait)
        self._calendar: Calendar | None = None
        self._calendar_source: object = None  # the catalogue the calendar was built from
        self._index: ScheduleIndex | None = None
        self._settings_dirty = True
        self._content_changed = False
        self._recheck: set[int] = set()
        self._recheck_all = False  # any server's settings may have changed unheard
        self._stale: set[int] = set()  # servers whose spoiler settings changed since the index
        self.last_wake: datetime | None = None  # the instant the last finished wake ran at
        self._next_prune: datetime | None = None  # at the first wake, then once a day

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Run the calendar whenever this process leads (see the module docstring)."""
        self._work.start()

    async def stop(self) -> None:
        await self._work.stop()

    def wake(self) -> None:
        """Look at the calendar again now (time moved, or something changed)."""
        self._idle.clear()
        self._wake.set()

    async def wait_idle(self) -> None:
        """Until the scheduler sleeps with nothing asked of it (for tests and shutdown)."""
        await self._idle.wait()

    def settings_changed(self, guild_id: int | None) -> None:
        """A server's spoiler settings changed (None: any server's may have): its close posts
        may have moved."""
        self.remote.forget(guild_id)
        if guild_id is None:
            self._recheck_all = True
            self._settings_dirty = True
        else:
            self._recheck.add(guild_id)
            self._stale.add(guild_id)
        self.wake()

    def announce_changed(self) -> None:
        self._settings_dirty = True
        self.wake()

    def content_changed(self) -> None:
        self._content_changed = True
        self.wake()

    @property
    def calendar(self) -> Calendar:
        """The calendar of the catalogue served now (rebuilt after a content reload)."""
        catalogue = self.bot.catalogue
        if self._calendar is None or self._calendar_source is not catalogue:
            self._calendar = Calendar(catalogue.episodes)
            self._calendar_source = catalogue
            self._index = None
        return self._calendar

    async def _run(self) -> None:
        # Taking over the lead: whatever this process knew may predate the last leader's work.
        self._settings_dirty = True
        self._idle.clear()
        # Channels are resolved from the gateway's cache: start once it is filled.
        await self.bot.wait_until_ready()
        try:
            await self.finish_threads()
        except StorageError as error:
            log.warning("release calendar: storage fault (%s) finishing threads", error)
        while True:
            self._wake.clear()
            try:
                wake_at = await self.run_once()
            except StorageError as error:
                log.warning("release calendar: storage fault (%s); trying again shortly", error)
                wake_at = self.bot.clock() + timedelta(seconds=RETRY_AFTER_FAULT_S)
            except Exception:
                log.exception("release calendar: unexpected error; trying again shortly")
                wake_at = self.bot.clock() + timedelta(seconds=RETRY_AFTER_FAULT_S)
            timeout = MAX_SLEEP_S
            if wake_at is not None:
                delay = (wake_at - self.bot.clock()).total_seconds()
                timeout = min(max(delay, 0.0), MAX_SLEEP_S)
            if not self._wake.is_set():
                self._idle.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    # -- one wake ----------------------------------------------------------------------------

    async def run_once(self) -> datetime | None:
        """Send everything due now and record it; returns when to wake next (None: nothing is
        scheduled under the current settings and catalogue)."""
        storage = self.bot.storage
        calendar = self.calendar
        recheck, self._recheck = self._recheck, set()
        recheck_all, self._recheck_all = self._recheck_all, False
        content_changed, self._content_changed = self._content_changed, False
        try:
            index = await self._current_index(calendar)
            if recheck_all:
                recheck |= index.guilds.keys()
            now = self.bot.clock()
            since = await storage.calendar_checked_through()
            retry = await storage.retryable_posts()
            found = calendar.candidates(
                index,
                now=now,
                since=since,
                content_changed=content_changed,
                recheck=recheck,
                retry=retry,
            )
            plan = settle(found, await storage.ledger_entries(c.key for c in found), now=now)
            if plan.skip:
                await storage.record_skipped([(c.key, c.due_at) for c in plan.skip], now=now)
                log.info("release calendar: %d post(s) too late to make, skipped", len(plan.skip))
            retry_at = await self.fan_out(plan.post)
            await storage.set_calendar_checked_through(now)
            if self._next_prune is None or now >= self._next_prune:
                await self._prune_ledger(calendar, index, now)
                self._next_prune = now + PRUNE_EVERY
            self.last_wake = now
        except BaseException:
            self.remote.clear()
            # Nothing was lost: what this wake was asked to look at is looked at next time.
            self._recheck |= recheck
            self._recheck_all |= recheck_all
            self._content_changed |= content_changed
            raise
        self.remote.clear()  # fetched for this wake's posts; the next wake asks afresh
        return earliest_wake(calendar.next_due(index, after=now), plan.retry_at, retry_at)

    async def finish_threads(self) -> None:
        """Open the threads of release posts sent just before the bot last stopped."""
        for key, channel_id, message_id in await self.bot.storage.releases_without_thread():
            episode = self.bot.catalogue.by_key.get(key.episode_key)
            if episode is None:
                continue
            try:
                channel, me = await self._channel(key, channel_id)
            except (PostFailed, NotInServer, discord.HTTPException) as error:
                log.info("%s: its thread can't be opened (%s)", _describe(key), error)
                continue
            if isinstance(channel, discord.ForumChannel):
                # A forum post is its own thread, with the post's id.
                await self.bot.storage.record_thread(
                    key, thread_id=message_id, parent_id=channel_id, now=self.bot.clock()
                )
            elif isinstance(channel, discord.TextChannel):
                settings = await self.bot.storage.get_guild_settings(key.guild_id)
                window = settings.spoilers.window_for(episode.show_slug)
                title_spoils = episode.title_spoils
                ends = window_end(episode.release_at, window)
                first = thread_message(
                    episode, title_spoils=title_spoils, window_ends_at=ends, now=self.bot.clock()
                )
                name = thread_name(episode, title_spoils=title_spoils)
                message = channel.get_partial_message(message_id)
                await self._open_thread(key, channel, me, message, name, first)

    async def _current_index(self, calendar: Calendar) -> ScheduleIndex:
        """The index of every announcing server's settings: read afresh after an announce
        change (or at start), and for only the servers whose spoiler settings changed
        otherwise, so one moderator's change never costs a read per server."""
        if self._index is None or self._settings_dirty:
            self._settings_dirty = False
            self._stale.clear()
            self._index = calendar.index(await self._read_schedules())
            return self._index
        if self._stale:
            stale, self._stale = self._stale, set()
            try:
                schedules = dict(self._index.guilds)
                for guild_id in stale:
                    schedule = await self._read_schedule(guild_id, schedules.get(guild_id))
                    if schedule is None:
                        schedules.pop(guild_id, None)
                    else:
                        schedules[guild_id] = schedule
            except BaseException:
                self._stale |= stale
                raise
            self._index = calendar.index(schedules.values())
        return self._index

    async def _read_schedule(
        self, guild_id: int, known: GuildSchedule | None
    ) -> GuildSchedule | None:
        """One server's schedule read afresh (its announce settings too: another process may
        have changed them), or None if it posts nothing."""
        announce = await self.bot.storage.get_announce(guild_id)
        if announce.is_empty or not self._in_server(guild_id, await self._departed()):
            return None
        settings = await self.bot.storage.get_guild_settings(guild_id)
        if known is not None:
            pruned_before = known.pruned_before
        else:
            pruned_before = (await self.bot.storage.ledger_horizons()).get(guild_id)
        return GuildSchedule(guild_id, announce, settings.spoilers, pruned_before)

    async def _read_schedules(self) -> list[GuildSchedule]:
        storage = self.bot.storage
        horizons = await storage.ledger_horizons()
        departed = await self._departed()
        guilds = []
        for guild_id, announce in (await storage.all_announce()).items():
            if announce.is_empty or not self._in_server(guild_id, departed):
                continue  # nothing to post, or Embargo is not in the server (any more)
            settings = await storage.get_guild_settings(guild_id)
            guilds.append(
                GuildSchedule(guild_id, announce, settings.spoilers, horizons.get(guild_id))
            )
        return guilds

    async def _departed(self) -> set[int]:
        return {departure.guild_id for departure in await self.bot.storage.departures()}

    def _in_server(self, guild_id: int, departed: set[int]) -> bool:
        """Whether Embargo is in the server: this process's gateway knows for its own shards;
        for another process's, that process records Embargo's removal."""
        if self.bot.serves_guild(guild_id):
            return self.bot.get_guild(guild_id) is not None
        return guild_id not in departed

    async def _prune_ledger(self, calendar: Calendar, index: ScheduleIndex, now: datetime) -> None:
        """Forget the posts of episodes whose every post is long settled, server by server;
        the calendar then never looks at those episodes again for the server."""
        horizons = {}
        for guild in index.guilds.values():
            before = prune_before(guild, now=now)
            if guild.pruned_before is None or before > guild.pruned_before:
                horizons[guild.guild_id] = before
        if not horizons:
            return
        await self.bot.storage.prune_ledger(horizons)
        if self._index is index:
            self._index = calendar.index(
                replace(guild, pruned_before=horizons.get(guild.guild_id, guild.pruned_before))
                for guild in index.guilds.values()
            )

    async def fan_out(self, items: Sequence[DueItem]) -> datetime | None:
        """Make the posts, a few at a time; returns the earliest retry of those that failed.
        A storage fault is raised once every post in flight has finished.

        A fixed set of workers takes the posts in order: thousands of servers due at once
        cost a few tasks, not one task each, so the event loop (and with it every command
        being answered) never has thousands of waiting tasks to step through."""
        if not items:
            return None
        queue = iter(items)
        retry_at: datetime | None = None

        async def worker() -> None:
            nonlocal retry_at
            for item in queue:
                retry_at = earliest_wake(retry_at, await self._post(item))

        workers = min(FAN_OUT_CONCURRENCY, len(items))
        results = await asyncio.gather(*(worker() for _ in range(workers)), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return retry_at

    async def _post(self, item: DueItem) -> datetime | None:
        final = False
        try:
            if item.key.kind is PostKind.RELEASE:
                await self._release(item)
            else:
                await self._window_closed(item)
            return None
        except PostFailed as failure:
            reason, final = str(failure), failure.final
        except discord.NotFound as error:
            reason = "The announce channel no longer exists (or Embargo can't see it)."
            # A deleted channel or server never comes back (a new one has a new id).
            final = error.code in (UNKNOWN_CHANNEL, UNKNOWN_GUILD)
        except NotInServer:
            # Given up on as when the server's own process hears of the removal.
            reason, final = SERVER_LEFT, True
        except discord.Forbidden as error:
            reason = f"Discord refused the post: {error.text or 'Missing Permissions'}."
        except discord.HTTPException as error:
            reason = f"Discord error {error.status}: {error.text or 'no details'}."
        entry = await self.bot.storage.record_failed(
            item.key,
            due_at=item.due_at,
            channel_id=item.channel_id,
            error=reason,
            final=final,
            now=self.bot.clock(),
        )
        _log_failure(item.key, entry, reason, final=final)
        return entry.retry_at

    async def server_left(self, guild_id: int) -> None:
        """Embargo was removed from a server: nothing more is posted there (its settings stay,
        for a re-invite), and posts waiting for another try are given up on, saying why."""
        given_up = await self.bot.storage.give_up_posts(
            guild_id, error=SERVER_LEFT, now=self.bot.clock()
        )
        if given_up:
            log.info("removed from server %s: %d failed post(s) not retried", guild_id, given_up)
        self.announce_changed()

    # -- the posts -------------------------------------------------------------------------

    async def _channel(
        self, key: PostKey, channel_id: int
    ) -> tuple[discord.TextChannel | discord.ForumChannel | discord.Thread, discord.Member]:
        """The channel to post in and Embargo's member to check its permissions for: from
        the gateway's cache for this process's shards, through REST for another's."""
        channel: object
        if not self.bot.serves_guild(key.guild_id):
            channel, me = await self.remote.channel(key.guild_id, channel_id)
            if isinstance(channel, discord.Thread):
                # Announce channels are text, announcement or forum channels; a thread's
                # permissions would need its parent from a cache this process doesn't have.
                raise PostFailed("The announce channel is a thread: pick its channel instead.")
        else:
            guild = self.bot.get_guild(key.guild_id)
            if guild is None:
                raise PostFailed(SERVER_LEFT, final=True)  # removed while the post waited
            channel = guild.get_channel_or_thread(channel_id)
            if channel is None:
                await self.pacer.wait()
                channel = await self.bot.fetch_channel(channel_id)
            me = guild.me
        if not isinstance(channel, discord.TextChannel | discord.ForumChannel | discord.Thread):
            raise PostFailed("The announce channel is not a text, announcement or forum channel.")
        return channel, me

    async def _release(self, item: DueItem) -> None:
        storage = self.bot.storage
        channel, me = await self._channel(item.key, item.channel_id)
        forum = isinstance(channel, discord.ForumChannel)
        perms = channel.permissions_for(me)
        missing = [name for name in POST_PERMISSIONS if not getattr(perms, name)]
        if missing:
            raise PostFailed(missing_permissions_reason(missing, "post"))
        episode = item.episode
        post = release_post(
            episode,
            title_spoils=episode.title_spoils,
            window_ends_at=item.window_ends_at,
            now=self.bot.clock(),
            ping_role_id=item.ping_role_id,
            late_by=item.late_by,
            forum=forum,
        )
        view = release_view(episode.key)
        mentions = _mentions(item.ping_role_id)
        if isinstance(channel, discord.ForumChannel):
            # The forum post is the release post; its thread is the discussion.
            thread_id = await self._forum_post(
                item.key,
                channel,
                name=post.thread_name,
                content=post.message.content or "",
                view=view,
                mentions=mentions,
            )
            await storage.record_posted(
                item.key,
                due_at=item.due_at,
                channel_id=channel.id,
                message_id=thread_id,
                thread_id=thread_id,
                now=self.bot.clock(),
            )
            return
        await self.pacer.wait()
        message = await channel.send(
            post.message.content,
            view=view,
            allowed_mentions=mentions,
            nonce=post_nonce(item.key),
            suppress_embeds=True,
        )
        await storage.record_posted(
            item.key,
            due_at=item.due_at,
            channel_id=channel.id,
            message_id=message.id,
            now=self.bot.clock(),
        )
        if isinstance(channel, discord.Thread):
            return  # announcing into a thread: no thread can start from its messages
        await self._open_thread(
            item.key, channel, me, message, post.thread_name, post.thread_message
        )

    async def _forum_post(
        self,
        key: PostKey,
        channel: discord.ForumChannel,
        *,
        name: str,
        content: str,
        view: discord.ui.View | None,
        mentions: discord.AllowedMentions,
    ) -> int:
        """Make the forum post for ``key``, or find the one an earlier try made; returns its
        id (a forum post's thread and first message share it).

        A forum post takes no nonce, so the try is recorded before the post is made: a try
        after one cut short between making and recording looks through the server's active
        threads for Embargo's post of that name in that forum before making another.
        """
        storage = self.bot.storage
        if await storage.forum_post_started(key):
            found = await self._find_forum_post(channel, name)
            if found is not None:
                log.info("%s: found the post an earlier try made", _describe(key))
                return found
        else:
            await storage.record_forum_post_started(
                key, channel_id=channel.id, now=self.bot.clock()
            )
        await self.pacer.wait()
        created = await channel.create_thread(
            name=name,
            content=content,
            view=discord.utils.MISSING if view is None else view,
            allowed_mentions=mentions,
            auto_archive_duration=THREAD_ARCHIVE_MINUTES,
            suppress_embeds=True,
        )
        return created.thread.id

    async def _find_forum_post(self, channel: discord.ForumChannel, name: str) -> int | None:
        """The newest active post named ``name`` that Embargo made in the forum and has not
        recorded as another post's thread."""
        me = self.bot.user
        if me is None:
            return None
        await self.pacer.wait()
        threads = await channel.guild.active_threads()
        for thread in sorted(threads, key=lambda t: t.id, reverse=True):
            if (
                thread.parent_id == channel.id
                and thread.owner_id == me.id
                and thread.name == name
                and not await self.bot.storage.is_discussion_thread(thread.id)
            ):
                return thread.id
        return None

    async def _open_thread(
        self,
        key: PostKey,
        channel: discord.TextChannel,
        me: discord.Member,
        message: discord.Message | discord.PartialMessage,
        name: str,
        first: OutgoingMessage | None,
    ) -> None:
        storage = self.bot.storage
        perms = channel.permissions_for(me)
        missing = [name for name in THREAD_PERMISSIONS if not getattr(perms, name)]
        if missing:
            reason = missing_permissions_reason(missing, "open the discussion thread")
            await storage.record_thread_failed(key, error=reason, now=self.bot.clock())
            _log_thread_failure(key, reason)
            return
        try:
            await self.pacer.wait()
            thread = await message.create_thread(
                name=name, auto_archive_duration=THREAD_ARCHIVE_MINUTES
            )
        except discord.HTTPException as error:
            if error.code == THREAD_EXISTS:
                # A try cut short after opening it: the thread has the message's id.
                await storage.record_thread(
                    key, thread_id=message.id, parent_id=channel.id, now=self.bot.clock()
                )
                return
            reason = f"The discussion thread could not be opened: {error.text or error.status}."
            await storage.record_thread_failed(key, error=reason, now=self.bot.clock())
            _log_thread_failure(key, reason)
            return
        await storage.record_thread(
            key, thread_id=thread.id, parent_id=channel.id, now=self.bot.clock()
        )
        if first is None:
            return
        try:
            await self.pacer.wait()
            await thread.send(
                first.content or "",
                allowed_mentions=discord.AllowedMentions.none(),
                suppress_embeds=True,
            )
        except discord.HTTPException as error:
            reason = f"The thread's first message failed: {error.text or error.status}."
            await storage.record_thread_failed(key, error=reason, now=self.bot.clock())
            _log_thread_failure(key, reason)

    async def _window_closed(self, item: DueItem) -> None:
        """In a text channel, a message; in a forum, a reply in the episode's release post
        (a forum has no place for a loose message, and the post is where its readers are),
        or a post of its own when there is no release post to reply in."""
        storage = self.bot.storage
        channel, me = await self._channel(item.key, item.channel_id)
        now = self.bot.clock()
        # A window shortened past its end opened spoilers now, not when it would have ended.
        closed_at = now if item.reason is DueReason.WINDOW_CHANGED else item.due_at
        post = window_closed_post(item.episode, closed_at=closed_at, now=now)
        target: discord.abc.Messageable
        if isinstance(channel, discord.ForumChannel):
            perms = channel.permissions_for(me)
            wanted = ("view_channel", *FORUM_THREAD_PERMISSIONS)
            missing = [name for name in wanted if not getattr(perms, name)]
            if missing:
                raise PostFailed(missing_permissions_reason(missing, "post"))
            release = PostKey(item.key.guild_id, item.key.episode_key, PostKind.RELEASE)
            entry = (await storage.ledger_entries([release])).get(release)
            if entry is None or entry.thread_id is None or entry.channel_id != channel.id:
                thread_id = await self._forum_post(
                    item.key,
                    channel,
                    name=thread_name(item.episode, title_spoils=True),
                    content=post.content or "",
                    view=None,
                    mentions=discord.AllowedMentions.none(),
                )
                await storage.record_posted(
                    item.key,
                    due_at=item.due_at,
                    channel_id=channel.id,
                    message_id=thread_id,
                    now=self.bot.clock(),
                )
                return
            target = self.bot.get_partial_messageable(entry.thread_id, guild_id=channel.guild.id)
        else:
            perms = channel.permissions_for(me)
            missing = [name for name in POST_PERMISSIONS if not getattr(perms, name)]
            if missing:
                raise PostFailed(missing_permissions_reason(missing, "post"))
            target = channel
        await self.pacer.wait()
        message = await target.send(
            post.content or "",
            allowed_mentions=discord.AllowedMentions.none(),
            nonce=post_nonce(item.key),
            suppress_embeds=True,
        )
        await storage.record_posted(
            item.key,
            due_at=item.due_at,
            channel_id=channel.id,
            message_id=message.id,
            now=self.bot.clock(),
        )


def _mentions(ping_role_id: int | None) -> discord.AllowedMentions:
    """Nothing Embargo sends may ping anyone, apart from a release post's one chosen role."""
    if ping_role_id is None:
        return discord.AllowedMentions.none()
    return discord.AllowedMentions(
        everyone=False, users=False, roles=[discord.Object(ping_role_id)], replied_user=False
    )


def _describe(key: PostKey) -> str:
    return f"{key.kind.value} post for {key.episode_key} in server {key.guild_id}"


def _log_failure(key: PostKey, entry: LedgerEntry, reason: str, *, final: bool = False) -> None:
    if final:
        log.warning("%s failed (%s); not tried again", _describe(key), reason)
    elif entry.settled:
        log.warning(
            "%s failed (%s); giving up after %d tries", _describe(key), reason, entry.attempts
        )
    else:
        log.warning(
            "%s failed (%s); try %d, next at %s",
            _describe(key),
            reason,
            entry.attempts,
            entry.retry_at.isoformat() if entry.retry_at else "?",
        )


def _log_thread_failure(key: PostKey, reason: str) -> None:
    log.warning("%s went out without its thread: %s", _describe(key), reason)
