"""The one error path: what a member is told when something goes wrong, and a traceback in the
log for anything unexpected.

Slash commands reach it through ``EmbargoTree.on_error``, views and modals through
``ErrorRoutedView`` and ``ErrorRoutedModal``, and persistent buttons (whose errors discord.py
only logs) through ``errors_reported``. Every route ends in ``report_error``, so the member
always gets one clean ephemeral message.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands

from bot.messages import PERMISSION_NAMES, missing_permissions_text
from bot.storage.errors import StorageError

if TYPE_CHECKING:
    from bot.client import EmbargoBot

log = logging.getLogger(__name__)

GENERIC_FAILURE = (
    "Something went wrong on Embargo's side. It has been logged for the maintainers; "
    "please try again in a moment."
)


class UserError(Exception):
    """Something the user can fix. The message is shown to them ephemerally and nothing
    alarming is logged; state is unchanged because the error is raised before any write."""


def error_text(error: app_commands.AppCommandError) -> str | None:
    """The friendly message for an expected error, or None for a bug worth a traceback."""
    # A command body's exception arrives as ``original``; a transformer's as the cause of the
    # TransformerError discord.py wraps it in.
    cause = getattr(error, "original", None) or error.__cause__
    if isinstance(cause, UserError):
        return str(cause)
    if isinstance(cause, StorageError):  # busy, disk full...: logged where it happened
        return cause.member_message
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


async def report_error(interaction: discord.Interaction[Any], error: Exception) -> None:
    """Tell the member what went wrong, ephemerally; log a traceback for anything unexpected."""
    message = error_text(error) if isinstance(error, app_commands.AppCommandError) else None
    refused = _cause(error)
    if message is None and isinstance(refused, discord.Forbidden):
        # Discord refused a send: name what Embargo lacks here rather than apologise vaguely.
        message = forbidden_text(interaction, refused)
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
    no_mentions = discord.AllowedMentions.none()
    try:
        if interaction.response.is_done():
            await interaction.followup.send(
                message, ephemeral=True, allowed_mentions=no_mentions, suppress_embeds=True
            )
        else:
            await interaction.response.send_message(
                message, ephemeral=True, allowed_mentions=no_mentions, suppress_embeds=True
            )
    except discord.HTTPException:
        log.warning("could not deliver an error message for interaction %s", interaction.id)


def _cause(error: BaseException) -> BaseException:
    return getattr(error, "original", None) or error.__cause__ or error


def forbidden_text(interaction: discord.Interaction[Any], refused: discord.Forbidden) -> str:
    """A refusal by Discord, told as the channel permissions Embargo lacks where it answered."""
    has = interaction.app_permissions
    in_thread = isinstance(interaction.channel, discord.Thread)
    relevant = [
        name
        for name in PERMISSION_NAMES
        if name != ("send_messages" if in_thread else "send_messages_in_threads")
    ]
    missing = [name for name in relevant if not getattr(has, name)]
    log.warning(
        "Discord refused a reply in channel %s (%s); missing there: %s",
        interaction.channel_id,
        refused.text or refused.code,
        ", ".join(missing) or "none of the usual permissions",
    )
    return missing_permissions_text(missing)


@contextlib.asynccontextmanager
async def errors_reported(interaction: discord.Interaction[Any]) -> AsyncIterator[None]:
    """Route an exception inside the block to ``report_error``: for callbacks whose errors
    discord.py would only log, such as a ``DynamicItem``'s (a button must always answer)."""
    try:
        yield
    except Exception as error:
        await report_error(interaction, error)


class ErrorRoutedView(discord.ui.View):
    """The base of every Embargo view: an error in a button or select reaches the member."""

    async def on_error(
        self, interaction: discord.Interaction[Any], error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        await report_error(interaction, error)


class ErrorRoutedModal(discord.ui.Modal):
    """The base of every Embargo modal: an error on submit reaches the member."""

    # discord.py's own Modal.on_error drops BaseView's ``item`` argument; this matches Modal.
    async def on_error(  # type: ignore[override]
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        await report_error(interaction, error)


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
    """Routes every app-command error to ``report_error``: a clean ephemeral message for the
    user, a traceback in the log for anything unexpected."""

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
