"""The "Hide as spoiler" message command and its /embargo settings (spoiler helpers, log)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.hiding import CannotHide, Hider, Refusal, check_hideable, may_hide
from bot.hiding_messages import HIDE_PERMISSIONS, missing_hide_permissions_message, refusal_message
from bot.messages import OutgoingMessage, change_message
from bot.ui import (
    NO_MENTIONS,
    attach_moderator_commands,
    detach_moderator_commands,
    send_messages,
    server_id,
)
from cogs.members._repost import Reposter, hide_source

if TYPE_CHECKING:
    from bot.client import EmbargoBot


class Members(commands.Cog):
    def __init__(self, bot: EmbargoBot, reposter: Reposter) -> None:
        self.bot = bot
        self.reposter = reposter
        self.hide_menu = app_commands.ContextMenu(
            name="Hide as spoiler",
            callback=self.hide_as_spoiler,
            allowed_contexts=app_commands.AppCommandContext(guild=True),
            allowed_installs=app_commands.AppInstallationType(guild=True),
        )
        self.hide_menu.guild_only = True
        self.settings_commands: list[app_commands.Command[Any, ..., Any]] = [
            app_commands.Command(
                name="spoiler-helpers",
                description="A role whose members may hide any message as a spoiler.",
                callback=self.spoiler_helpers,
            ),
            app_commands.Command(
                name="spoiler-helpers-off",
                description="Only moderators and authors may hide messages as spoilers.",
                callback=self.spoiler_helpers_off,
            ),
            app_commands.Command(
                name="log",
                description="Log every message hidden as a spoiler in a channel.",
                callback=self.log_channel,
            ),
            app_commands.Command(
                name="log-off",
                description="Stop logging hidden messages.",
                callback=self.log_off,
            ),
        ]

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.hide_menu)
        attach_moderator_commands(self.bot.tree, self.settings_commands)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.hide_menu.name, type=self.hide_menu.type)
        detach_moderator_commands(self.bot.tree, self.settings_commands)

    # -- the message command ---------------------------------------------------------------

    async def hide_as_spoiler(
        self, interaction: discord.Interaction, message: discord.Message
    ) -> None:
        guild = interaction.guild
        if guild is None or not isinstance(interaction.user, discord.Member):
            raise app_commands.NoPrivateMessage
        settings = await self.bot.storage.member_spoiler_settings(guild.id)
        hider = Hider(
            user_id=interaction.user.id,
            role_ids=frozenset(role.id for role in interaction.user.roles),
            manage_messages=interaction.permissions.manage_messages,
        )
        if not may_hide(hider, message.author.id, settings.helper_role_id):
            await send_messages(interaction, [refusal_message(CannotHide(Refusal.NOT_ALLOWED))])
            return
        refusal = self._refusal(message, interaction.app_permissions, interaction.filesize_limit)
        if refusal is not None:
            await send_messages(interaction, [refusal])
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        outcome = await self.reposter.hide(
            message,
            channel=_message_channel(interaction, message),
            hider_id=interaction.user.id,
            hider_name=interaction.user.display_name,
            log_channel_id=settings.log_channel_id,
            upload_limit=interaction.filesize_limit,
        )
        await interaction.followup.send(
            outcome.reply.content or "", ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    def _refusal(
        self, message: discord.Message, permissions: discord.Permissions, upload_limit: int
    ) -> OutgoingMessage | None:
        """Why the message can't be hidden here, before anything is sent (None: it can)."""
        assert self.bot.user is not None
        problem = check_hideable(hide_source(message, self.bot.user.id), upload_limit=upload_limit)
        if problem is not None:
            return refusal_message(problem, upload_limit=upload_limit)
        missing = [name for name in HIDE_PERMISSIONS if not getattr(permissions, name)]
        if message.attachments and not permissions.attach_files:
            missing.append("attach_files")
        return missing_hide_permissions_message(missing) if missing else None

    # -- /embargo settings -----------------------------------------------------------------
    # interaction.guild_id is never None: ModeratorGroup.interaction_check refuses DMs.

    @app_commands.describe(role="Members with this role may hide any message as a spoiler")
    async def spoiler_helpers(self, interaction: discord.Interaction, role: discord.Role) -> None:
        old = await self.bot.storage.set_spoiler_helpers_role(server_id(interaction), role.id)
        message = change_message("Spoiler helpers", _role_text(old), _role_text(role.id))
        await send_messages(interaction, [message])

    async def spoiler_helpers_off(self, interaction: discord.Interaction) -> None:
        old = await self.bot.storage.set_spoiler_helpers_role(server_id(interaction), None)
        await send_messages(
            interaction, [change_message("Spoiler helpers", _role_text(old), "none")]
        )

    @app_commands.describe(channel="Where each hidden message is logged (a link, never the text)")
    async def log_channel(
        self, interaction: discord.Interaction, channel: discord.TextChannel
    ) -> None:
        old = await self.bot.storage.set_spoiler_log_channel(server_id(interaction), channel.id)
        message = change_message("Spoiler log", _channel_text(old), _channel_text(channel.id))
        await send_messages(interaction, [message])

    async def log_off(self, interaction: discord.Interaction) -> None:
        old = await self.bot.storage.set_spoiler_log_channel(server_id(interaction), None)
        await send_messages(interaction, [change_message("Spoiler log", _channel_text(old), "off")])


def _role_text(role_id: int | None) -> str:
    return "none" if role_id is None else f"<@&{role_id}>"


def _channel_text(channel_id: int | None) -> str:
    return "off" if channel_id is None else f"<#{channel_id}>"


def _message_channel(
    interaction: discord.Interaction, message: discord.Message
) -> discord.abc.MessageableChannel:
    """The message's channel as the interaction knows it (a thread the cache never saw
    included); the message's own when the interaction names none a message can be in."""
    here = interaction.channel
    if here is None or isinstance(here, discord.ForumChannel | discord.CategoryChannel):
        return message.channel
    return here
