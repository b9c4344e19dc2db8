"""The Bot subclass: local start-up work in setup_hook, hash-gated command sync. Errors go
through ``bot.errors``, the one error path."""

from __future__ import annotations

import hashlib
import json
import logging
import pkgutil
from collections.abc import Callable
from datetime import UTC, datetime

import discord
from discord.ext import commands

import cogs
from bot.config import Settings
from bot.content.sync import sync_content
from bot.errors import EmbargoTree
from bot.lookup import Catalogue
from bot.storage import Storage

log = logging.getLogger(__name__)

INTENTS = discord.Intents.none()
# Guilds only: channel and role caches for permission maths. No privileged intents: member
# join dates come with each interaction, and Embargo never reads message content.
INTENTS.guilds = True


def utc_now() -> datetime:
    return datetime.now(UTC)


def extension_names() -> list[str]:
    """Every module in ``cogs/``: adding a feature is adding a file."""
    return sorted(
        f"{cogs.__name__}.{module.name}"
        for module in pkgutil.iter_modules(cogs.__path__)
        if not module.name.startswith("_")
    )


class EmbargoBot(commands.Bot):
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
            intents=INTENTS,
            tree_cls=EmbargoTree,
            # Nothing Embargo sends may ping anyone, whatever text it echoes.
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.settings = settings
        self.storage = storage
        self.clock = clock
        self.force_sync = force_sync
        self.catalogue = Catalogue(())

    async def setup_hook(self) -> None:
        # Local work only: never wait for the gateway or a guild here (it would deadlock).
        await self.sync_content()
        for name in extension_names():
            await self.load_extension(name)
        await self.sync_commands(force=self.force_sync)

    async def sync_content(self) -> None:
        report = await sync_content(self.storage, self.settings.content_dir)
        for problem in report.problems:
            log.warning("content: %s", problem)
        log.info(
            "content: %d file(s) loaded, %d unchanged, %d removed, %d problem(s)",
            len(report.loaded),
            len(report.unchanged),
            len(report.removed),
            len(report.problems),
        )
        self.catalogue = Catalogue(await self.storage.load_shows())

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
        log.info("ready as %s in %d server(s)", self.user, len(self.guilds))
