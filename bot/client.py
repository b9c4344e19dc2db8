"""The Bot subclass: local start-up work in setup_hook, one error path, hash-gated command sync."""

from __future__ import annotations

import hashlib
import json
import logging
import pkgutil
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import discord
from discord import app_commands
from discord.ext import commands

import cogs
from bot.config import Settings
from bot.content.sync import sync_content
from bot.errors import UserError
from bot.lookup import Catalogue
from bot.storage import Storage, StorageError

log = logging.getLogger(__name__)

INTENTS = discord.Intents.none()
# Guilds only: channel and role caches for permission maths. No privileged intents: member
# join dates come with each interaction, and Embargo never reads message content.
INTENTS.guilds = True

GENERIC_FAILURE = (
    "Something went wrong on Embargo's side. It has been logged for the maintainers; "
    "please try again in a moment."
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def error_text(error: app_commands.AppCommandError) -> str | None:
    """The friendly message for an expected error, or None for a bug worth a traceback."""
    original = getattr(error, "original", error)
    if isinstance(original, UserError):
        return str(original)
    if isinstance(original, StorageError):  # busy, disk full...: logged where it happened
        return original.member_message
    if isinstance(error, app_commands.MissingPermissions):
        return (
            "Only members with the **Manage Server** permission can change Embargo's settings. "
            "Nothing was changed."
        )
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command only works in a server, not in direct messages."
    if isinstance(error, app_commands.TransformerError):
        allowed = ", ".join(f"`{choice.value}`" for choice in error.transformer.choices or ())
        expected = f"one of {allowed}" if allowed else f"a valid {error.transformer.type.name}"
        return f"That value isn't {expected}. Nothing was changed."
    if isinstance(error, app_commands.CommandSignatureMismatch | app_commands.CommandNotFound):
        # The member's client holds an older copy of the command tree (Discord caches it).
        return (
            "This command has changed since your Discord app loaded it. Reload Discord "
            "(Ctrl+R, or restart the app) and try again."
        )
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down a little: try again in {error.retry_after:.0f}s."
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here."
    return None


_VALUE_TYPES: dict[discord.AppCommandOptionType, type | tuple[type, ...]] = {
    discord.AppCommandOptionType.string: str,
    discord.AppCommandOptionType.integer: int,
    discord.AppCommandOptionType.number: (int, float),
    discord.AppCommandOptionType.boolean: bool,
}


def mistyped_command(
    tree: app_commands.CommandTree[Any], data: dict[str, Any], guild_id: int | None
) -> app_commands.Command[Any, ..., Any] | None:
    """The command whose option values in ``data`` don't have the registered types, if any.

    discord.py hands option values to the callback as they arrive; a client with an old copy
    of the tree could send a number where a text option now is.
    """
    guild = discord.Object(guild_id) if guild_id else None
    command = tree.get_command(data.get("name", ""), guild=guild) or tree.get_command(
        data.get("name", "")
    )
    options = data.get("options", [])
    while isinstance(command, app_commands.Group):
        sub = next((option for option in options if option.get("type") in (1, 2)), None)
        if sub is None:
            return None  # discord.py reports the mismatch itself
        command = command.get_command(sub.get("name", ""))
        options = sub.get("options", [])
    if command is None:
        return None
    parameters = {parameter.display_name: parameter for parameter in command.parameters}
    for option in options:
        parameter = parameters.get(option.get("name", ""))
        expected = _VALUE_TYPES.get(parameter.type) if parameter is not None else None
        if expected is None or "value" not in option:
            continue
        value = option["value"]
        is_bool = isinstance(value, bool)
        if not isinstance(value, expected) or (is_bool and expected is not bool):
            return command
    return None


class EmbargoTree(app_commands.CommandTree["EmbargoBot"]):
    """Routes every app-command error to one place: a clean ephemeral message for the user, a
    traceback in the log for anything unexpected."""

    async def interaction_check(self, interaction: discord.Interaction[EmbargoBot], /) -> bool:
        if interaction.type is discord.InteractionType.application_command:
            data = cast(dict[str, Any], interaction.data or {})
            stale = mistyped_command(self, data, interaction.guild_id)
            if stale is not None:
                # Raised here, it reaches on_error like any other command error.
                raise app_commands.CommandSignatureMismatch(stale)
        return True

    async def on_error(
        self, interaction: discord.Interaction[EmbargoBot], error: app_commands.AppCommandError
    ) -> None:
        await report_error(interaction, error)


async def report_error(interaction: discord.Interaction, error: Exception) -> None:
    message = error_text(error) if isinstance(error, app_commands.AppCommandError) else None
    if message is None:
        if isinstance(error, UserError):
            message = str(error)
        elif isinstance(error, StorageError):
            message = error.member_message
        else:
            command = interaction.command.qualified_name if interaction.command else "?"
            log.error("unhandled error in %s", command, exc_info=error)
            message = GENERIC_FAILURE
    # Error text may echo what the user typed: no pings, no link previews.
    options = {
        "ephemeral": True,
        "allowed_mentions": discord.AllowedMentions.none(),
        "suppress_embeds": True,
    }
    try:
        if interaction.response.is_done():
            await interaction.followup.send(message, **options)  # type: ignore[arg-type]
        else:
            await interaction.response.send_message(message, **options)  # type: ignore[arg-type]
    except discord.HTTPException:
        log.warning("could not deliver an error message for interaction %s", interaction.id)


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
