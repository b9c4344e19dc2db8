"""The Bot subclass: local start-up work in setup_hook, hash-gated command sync, the shards
this process runs (SHARD_COUNT, SHARD_IDS) and their turns to log in. Errors go through
``bot.errors``, the one error path.

Of the processes on one database, only the leader (``bot/leader.py``) reads the content
files and syncs the commands; the others load the catalogue from storage and follow the
leader's content writes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import pkgutil
import signal
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import aiohttp
import discord
from discord.ext import commands

import cogs
from bot.config import Settings
from bot.content.reload import LiveContent, log_report
from bot.content.reload_signal import PidFile, pid_file_for
from bot.content.watch import watch_content
from bot.errors import EmbargoTree
from bot.leader import Leadership, LeaderWork
from bot.lookup import Catalogue
from bot.ratelimits import amortise_bucket_sweeps
from bot.shards import IDENTIFY_SPACING_S, guild_shard, identify_bucket, queue_horizon_s
from bot.storage import Storage, StorageError
from bot.storage.content import RELOAD_REQUESTED

log = logging.getLogger(__name__)

# The extension that defines the /embargo group (see extension_names).
EMBARGO_GROUP_OWNER = f"{cogs.__name__}.spoilers"

INTENTS = discord.Intents.none()
# Guilds only: channel and role caches for permission maths. No privileged intents: member
# join dates come with each interaction, and "Hide as spoiler" gets the message with it.
INTENTS.guilds = True


def intents_for(settings: Settings) -> discord.Intents:
    """The gateway intents: the spoiler guard alone reads members' messages, and asks for them
    (the privileged Message Content) only when the operator turned it on."""
    intents = discord.Intents(INTENTS.value)
    if settings.message_guard:
        intents.guild_messages = True
        intents.message_content = True
    return intents


def utc_now() -> datetime:
    return datetime.now(UTC)


def sharded_range(settings: Settings) -> dict[str, Any]:
    """The shard ids this process runs (SHARD_IDS), as discord.py takes them: unset unless
    given (then every shard of the count)."""
    return {} if settings.shard_ids is None else {"shard_ids": list(settings.shard_ids)}


def extension_names() -> list[str]:
    """Every module in ``cogs/``: adding a feature is adding a file. The one owning the
    ``/embargo`` group loads first: other cogs attach their subcommands to it."""
    names = (
        f"{cogs.__name__}.{module.name}"
        for module in pkgutil.iter_modules(cogs.__path__)
        if not module.name.startswith("_")
    )
    return sorted(names, key=lambda name: (name != EMBARGO_GROUP_OWNER, name))


def settle_heap() -> None:
    """Once the gateway has filled the cache: collect, then set every surviving object aside
    from the garbage collector (``gc.freeze``). The servers' cache is most of the heap and
    lives as long as the process; left in reach, each full collection walks all of it, one
    long pause of every command at a time. A later READY (a new session, a refilled cache)
    first hands the set-aside objects back, so the old cache can still be collected."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class EmbargoBot(commands.AutoShardedBot):
    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        *,
        clock: Callable[[], datetime] = utc_now,
        force_sync: bool = False,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=intents_for(settings),
            tree_cls=EmbargoTree,
            # Nothing Embargo sends may ping anyone, whatever text it echoes.
            allowed_mentions=discord.AllowedMentions.none(),
            # None: Discord's recommended count, every shard in this process.
            shard_count=settings.shard_count,
            **sharded_range(settings),
        )
        amortise_bucket_sweeps(self.http)
        self.settings = settings
        self.storage = storage
        self.clock = clock
        self.force_sync = force_sync
        self.content = LiveContent(storage, settings.content_dir)
        self.leadership = Leadership(storage.db.leader_lock())
        # While leading: catch up, then reload on every change to the content files.
        self._content_lead = LeaderWork(self.leadership, self._lead_content, name="embargo-content")
        # Whether the content and commands were synced since this process last took the lead.
        self._content_current = False
        self._content_tasks: set[asyncio.Task[object]] = set()
        self._pid_file: PidFile | None = None
        self._max_concurrency: int | None = None  # Discord's session-start buckets, once known

    @property
    def catalogue(self) -> Catalogue:
        """The shows and episodes served now; a reload replaces it whole (see LiveContent)."""
        return self.content.catalogue

    async def setup_hook(self) -> None:
        # Local work only: never wait for the gateway or a guild here (it would deadlock).
        # Heard from now on: a content write committed after the catalogue is loaded below
        # is rebuilt once following starts (start_content_reloads).
        self.storage.content_listeners.append(self._content_changed_elsewhere)
        await self.leadership.start()
        leading = self.leadership.leading
        if leading:
            await self.sync_content()
        else:
            await self.content.load()  # the leader syncs the files
        for name in extension_names():
            if name not in self.extensions:  # an extension may load the one it builds on
                await self.load_extension(name)
        if leading or self.force_sync:
            await self.sync_commands(force=self.force_sync)
        self._content_current = leading
        if not self.force_sync:
            self.start_content_reloads()

    async def sync_content(self) -> None:
        """Load the content directory at start-up (storage errors end the start)."""
        log_report(await self.content.reload())

    def start_content_reloads(self) -> None:
        """While leading, reload on changes to the content files, on SIGHUP and on
        ``python -m bot reload``; whether leading or not, follow the content writes of
        other processes."""
        self._spawn_content_task(self.content.follow())
        self._content_lead.start()
        database = self.storage.db.local_file
        if database is None:
            return  # in memory, or on a database server: no file to put the pid beside
        try:
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP, self._reload_requested, "SIGHUP"
            )
            pid_file = PidFile(pid_file_for(database))
            if pid_file.acquire():
                self._pid_file = pid_file
            else:
                log.warning(
                    "another Embargo process runs on %s: `python -m bot reload` signals that "
                    "one, not this one",
                    database,
                )
        except (AttributeError, NotImplementedError, ImportError):
            log.info("no SIGHUP on this platform: content reloads on file changes only")
        except OSError as error:
            log.warning("could not record the pid beside the database (%s): %s", database, error)

    async def _lead_content(self) -> None:
        """The leader's content work: on taking over the lead, catch up with the files and
        the command tree (whoever led before may have missed changes), then reload after
        each change to the files until the lead is lost."""
        if not self._content_current:
            await self.content.reload_and_log("now leading")
            try:
                await self.sync_commands()
            except (discord.HTTPException, StorageError) as error:
                log.warning("could not sync the commands on taking the lead: %s", error)
        self._content_current = False  # the next lead catches up again
        await watch_content(
            self.settings.content_dir,
            lambda: self.content.reload_and_log("files changed"),
            asyncio.Event(),  # set by the watcher itself when this work is cancelled
        )

    def _content_changed_elsewhere(self, change: str | None) -> None:
        if change == RELOAD_REQUESTED:
            self._reload_requested("python -m bot reload")
        else:
            self.content.changed_elsewhere(change)

    def _reload_requested(self, reason: str) -> None:
        if self.leadership.leading:  # the leader alone reads the files
            self._spawn_content_task(self.content.reload_and_log(reason))

    def _spawn_content_task(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(work, name="embargo-content")
        self._content_tasks.add(task)
        task.add_done_callback(self._content_task_done)

    def _content_task_done(self, task: asyncio.Task[object]) -> None:
        self._content_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("content reloads stopped", exc_info=task.exception())

    async def stop_content_reloads(self) -> None:
        await self._content_lead.stop()
        with contextlib.suppress(ValueError):
            self.storage.content_listeners.remove(self._content_changed_elsewhere)
        with contextlib.suppress(NotImplementedError, AttributeError, RuntimeError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for task in list(self._content_tasks):
            task.cancel()
        await asyncio.gather(*self._content_tasks, return_exceptions=True)
        if self._pid_file is not None:
            self._pid_file.release()
            self._pid_file = None

    async def close(self) -> None:
        await self.stop_content_reloads()
        await super().close()
        # Last: the next leader starts the shared work only once this one stopped it.
        await self.leadership.stop()

    def command_payload_hash(self, guild: discord.abc.Snowflake | None) -> str:
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        encoded = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(encoded).hexdigest()

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Register the command tree with Discord only when it changed since the last sync.

        Syncing at every start gets rate-limited, so the hash of the exact payloads is kept in
        the database per application and scope.
        """
        guild = discord.Object(self.settings.dev_guild_id) if self.settings.dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        scope = f"guild:{guild.id}" if guild else "global"
        meta_key = f"command_tree_hash:{self.application_id}:{scope}"
        digest = self.command_payload_hash(guild)
        if not force and await self.storage.get_meta(meta_key) == digest:
            log.info("commands unchanged since the last sync (%s); not syncing", scope)
            return False
        synced = await self.tree.sync(guild=guild)
        await self.storage.set_meta(meta_key, digest)
        log.info("synced %d command(s) (%s)", len(synced), scope)
        return True

    async def on_ready(self) -> None:
        settle_heap()
        shards = sorted(self.shards)
        log.info(
            "ready as %s in %d server(s), on shard(s) %s of %d",
            self.user,
            len(self.guilds),
            ",".join(map(str, shards)),
            self.shard_count,
        )

    def serves_guild(self, guild_id: int) -> bool:
        """Whether this process runs the shard that gets the server's events (before the
        gateway is reached: whether it will)."""
        count: int | None = self.shard_count  # None until Discord recommended one
        if count is None or self.shard_ids is None:
            return True  # every shard of the bot runs here
        return guild_shard(guild_id, count) in self.shard_ids

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Wait for the shard's turn to log in: one IDENTIFY per session-start bucket every
        5 s, over every process on the database (``bot/shards.py``)."""
        shard = shard_id or 0
        max_concurrency = await self.max_concurrency()
        bucket = identify_bucket(shard, max_concurrency)
        horizon_s = queue_horizon_s(self.shard_count, max_concurrency, IDENTIFY_SPACING_S)
        try:
            slot = await self.storage.reserve_identify(
                bucket, interval_s=IDENTIFY_SPACING_S, horizon_s=horizon_s
            )
            wait_s = slot.wait_s
        except StorageError as error:
            # Without the database no turn can be agreed: at worst Discord refuses a login
            # that came too early, and discord.py logs in again.
            wait_s = IDENTIFY_SPACING_S
            log.warning(
                "shard %d: no turn to log in reserved (%s); waiting %gs", shard, error, wait_s
            )
        if wait_s > 0:
            log.info(
                "shard %d waits %.1fs for its turn to log in (bucket %d)", shard, wait_s, bucket
            )
            await asyncio.sleep(wait_s)

    async def max_concurrency(self) -> int:
        """Discord's number of session-start buckets for this bot (GET /gateway/bot), asked
        once; 1, the strictest, while Discord can't be asked."""
        if self._max_concurrency is None:
            try:
                limits = await self.fetch_session_start_limits()
            except (
                discord.HTTPException,
                discord.GatewayNotFound,
                aiohttp.ClientError,
                OSError,
                TimeoutError,
            ) as error:
                log.warning(
                    "Discord's session-start limits unknown (%s): one login per %g s at most",
                    error,
                    IDENTIFY_SPACING_S,
                )
                return 1
            self._max_concurrency = max(1, limits.max_concurrency)
            log.info(
                "Discord allows %d concurrent login(s); %d of %d session starts left today",
                self._max_concurrency,
                limits.remaining,
                limits.total,
            )
            shards = len(self.shard_ids) if self.shard_ids is not None else self.shard_count
            if limits.remaining < shards:
                # Past the limit Discord starts no session until the count resets.
                log.warning(
                    "only %d session start(s) left for %d shard(s) here, until Discord resets "
                    "the count in %.0f minute(s): find what keeps restarting the bot",
                    limits.remaining,
                    shards,
                    limits.reset_after / 60_000,
                )
        return self._max_concurrency
