"""/spoilers for everyone, and the moderators' /embargo settings group."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discussion_messages import announce_field
from bot.errors import UserError
from bot.guild_settings import MAX_MIN_MEMBER_DAYS, MAX_MIN_VOTES
from bot.hiding_messages import guard_settings_fields
from bot.messages import EmbedField, change_message, settings_message, spoiler_rules_message
from bot.progress_messages import watch_role_fields
from bot.spoilers.durations import EXAMPLES, DurationError, SpoilerWindow, parse_window
from bot.spoilers.policy import SpoilerMode
from bot.ui import (
    DurationArg,
    EpisodeArg,
    OneOf,
    ShowArg,
    decide_here,
    send_messages,
    server_id,
    titles_here,
)

if TYPE_CHECKING:
    from bot.client import EmbargoBot

MANAGE_GUILD = discord.Permissions(manage_guild=True)
AnyChannel = app_commands.AppCommandChannel | app_commands.AppCommandThread


def parse_duration_option(text: str) -> SpoilerWindow:
    try:
        return parse_window(text)
    except DurationError as error:
        raise UserError(f"{error} Nothing was changed.") from error


class ModeratorGroup(app_commands.Group):
    """``default_permissions`` only hides the group, and server admins can change it, so every
    subcommand is also checked here, on our side, against the member's real permissions."""

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage
        if not interaction.permissions.manage_guild:
            raise app_commands.MissingPermissions(["manage_guild"])
        return True


class Spoilers(commands.Cog):
    embargo = ModeratorGroup(
        name="embargo",
        description="Moderators: how this server hides spoilers (Manage Server required).",
        guild_only=True,
        # Both the legacy dm_permission flag and the newer contexts list: servers only.
        allowed_contexts=app_commands.AppCommandContext(guild=True),
        allowed_installs=app_commands.AppInstallationType(guild=True),
        default_permissions=MANAGE_GUILD,
    )

    def __init__(self, bot: EmbargoBot) -> None:
        self.bot = bot

    def _show_titles(self) -> dict[str, str]:
        return {show.slug: show.title for show in self.bot.catalogue.shows}

    async def _announce_field(self, guild_id: int) -> EmbedField:
        """Where release posts go, and why the last one failed if it did."""
        storage = self.bot.storage
        announce = await storage.get_announce(guild_id)
        return announce_field(announce, self._show_titles(), await storage.last_post(guild_id))

    # -- everyone ---------------------------------------------------------------------------

    @app_commands.command(name="spoilers", description="This server's spoiler rules.")
    @app_commands.describe(episode="Optional: when this episode's spoilers open here")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=False)
    async def spoilers(
        self,
        interaction: discord.Interaction,
        episode: EpisodeArg | None = None,
    ) -> None:
        settings = await self.bot.storage.get_guild_settings(interaction.guild_id)
        decision = None
        if episode is not None:
            decision = await decide_here(self.bot, interaction, episode)
        extra = []
        if interaction.guild_id is not None:
            extra.append(await self._announce_field(interaction.guild_id))
        message = spoiler_rules_message(
            settings.spoilers,
            self._show_titles(),
            in_guild=interaction.guild_id is not None,
            episode=episode,
            decision=decision,
            titles=await titles_here(self.bot, interaction.guild_id),
            extra_fields=extra,
        )
        await send_messages(interaction, [message])

    # -- moderators -------------------------------------------------------------------------

    @embargo.command(name="window", description="How long after release spoilers stay hidden.")
    @app_commands.describe(duration=f"e.g. {EXAMPLES}; at most 3650 days")
    async def window(self, interaction: discord.Interaction, duration: DurationArg) -> None:
        new = parse_duration_option(duration)
        old = await self.bot.storage.set_spoiler_window(server_id(interaction), new)
        message = change_message("Spoiler window", old.describe(), new.describe())
        await send_messages(interaction, [message])

    @embargo.command(name="show-window", description="A different spoiler window for one show.")
    @app_commands.describe(
        show="The show",
        duration="e.g. `30d`, `2w`, `off`, `forever`, or `default` for the server's window",
    )
    async def show_window(
        self,
        interaction: discord.Interaction,
        show: ShowArg,
        duration: DurationArg,
    ) -> None:
        new = None if duration.strip().lower() == "default" else parse_duration_option(duration)
        old = await self.bot.storage.set_show_window(server_id(interaction), show.slug, new)
        message = change_message(
            f"Spoiler window for {show.title}",
            "server default" if old is None else old.describe(),
            "server default" if new is None else new.describe(),
        )
        await send_messages(interaction, [message])

    @embargo.command(name="mode", description="How spoilers are hidden while the window runs.")
    @app_commands.describe(
        mode="tagged: behind spoiler tags · private: only the asker sees it · refuse: not shown"
    )
    async def mode(
        self,
        interaction: discord.Interaction,
        mode: app_commands.Transform[str, OneOf(*SpoilerMode)],
    ) -> None:
        new = SpoilerMode(mode)
        old = await self.bot.storage.set_spoiler_mode(server_id(interaction), new)
        await send_messages(interaction, [change_message("Spoiler mode", old.value, new.value)])

    @embargo.command(name="channel", description="Mark a channel where spoilers are always fine.")
    @app_commands.describe(
        channel="The channel", policy="spoilers-ok: endings in plain text · default: server rules"
    )
    async def channel(
        self,
        interaction: discord.Interaction,
        channel: AnyChannel,
        policy: app_commands.Transform[str, OneOf("spoilers-ok", "default")],
    ) -> None:
        ok = policy == "spoilers-ok"
        was_ok = await self.bot.storage.set_spoilers_ok_channel(
            server_id(interaction),
            channel.id,
            ok,
        )
        message = change_message(
            f"Policy for {channel.mention}",
            "spoilers-ok" if was_ok else "default",
            "spoilers-ok" if ok else "default",
        )
        await send_messages(interaction, [message])

    @embargo.command(name="min-votes", description="Votes an episode needs to rank on its own.")
    @app_commands.describe(count="The m of the weighted score (1 to 1000)")
    async def min_votes(
        self, interaction: discord.Interaction, count: app_commands.Range[int, 1, MAX_MIN_VOTES]
    ) -> None:
        if not 1 <= count <= MAX_MIN_VOTES:  # Discord enforces the range; so do we.
            raise UserError(f"Minimum votes must be between 1 and {MAX_MIN_VOTES}.")
        old = await self.bot.storage.set_min_votes(server_id(interaction), count)
        await send_messages(interaction, [change_message("Minimum votes", str(old), str(count))])

    @embargo.command(
        name="min-member-days", description="How long someone must be a member before voting."
    )
    @app_commands.describe(days="Days of membership required (0 to 3650)")
    async def min_member_days(
        self,
        interaction: discord.Interaction,
        days: app_commands.Range[int, 0, MAX_MIN_MEMBER_DAYS],
    ) -> None:
        if not 0 <= days <= MAX_MIN_MEMBER_DAYS:
            raise UserError(f"Member age must be between 0 and {MAX_MIN_MEMBER_DAYS} days.")
        old = await self.bot.storage.set_min_member_days(server_id(interaction), days)
        message = change_message("Member age to vote", f"{old} days", f"{days} days")
        await send_messages(interaction, [message])

    @embargo.command(
        name="settings", description="Everything the moderators have set, in one view."
    )
    async def settings(self, interaction: discord.Interaction) -> None:
        settings = await self.bot.storage.get_guild_settings(interaction.guild_id)
        guild_id = server_id(interaction)
        members = await self.bot.storage.member_spoiler_settings(guild_id)
        roles = await self.bot.storage.watch_role_settings(guild_id)
        titles = self._show_titles()
        extra = [
            await self._announce_field(guild_id),
            *guard_settings_fields(members, guard_available=self.bot.intents.message_content),
            *watch_role_fields(roles.roles, roles.last_failure, titles),
        ]
        message = settings_message(settings, titles, extra)
        await send_messages(interaction, [message])


async def setup(bot: EmbargoBot) -> None:
    await bot.add_cog(Spoilers(bot))
