"""Episode discussion: release posts with a spoiler thread, window-closed posts, ``/upcoming``,
and the moderators' ``/embargo announce`` and ``/embargo announce-off``.

The scheduler is in ``_scheduler.py``, the release post's buttons in ``_buttons.py``. The two
moderator commands join the ``/embargo`` group the spoilers extension owns (one ``/embargo`` on
Discord), so that extension is loaded first, and the group's Manage Server check covers them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.calendar import AnnounceTarget
from bot.discussion_messages import (
    UPCOMING_PAGE_SIZE,
    UpcomingRow,
    announce_permissions,
    announce_warning,
    describe_announce_target,
    upcoming_pages,
)
from bot.errors import UserError
from bot.messages import OutgoingMessage, change_message
from bot.spoilers.policy import window_end
from bot.ui import (
    ShowArg,
    attach_moderator_commands,
    detach_moderator_commands,
    send_messages,
    send_paged,
    server_id,
)
from cogs.discussion._buttons import ReviewButton
from cogs.discussion._scheduler import Scheduler

if TYPE_CHECKING:
    from bot.client import EmbargoBot

# /upcoming shows at most this many pages.
UPCOMING_PAGES = 10
SPOILERS_EXTENSION = "cogs.spoilers"
AnnounceChannel = discord.TextChannel | discord.ForumChannel


def _cog(interaction: discord.Interaction) -> Discussion:
    cog = interaction.client.get_cog(Discussion.__cog_name__)  # type: ignore[attr-defined]
    assert isinstance(cog, Discussion)
    return cog


# -- /embargo announce, /embargo announce-off (added to the /embargo group) ----------------------
# interaction.guild_id is never None here: the group's interaction_check refuses DMs.


@app_commands.command(name="announce", description="Where release posts and spoiler threads go.")
@app_commands.describe(
    channel="A text, announcement or forum channel",
    show="Optional: only for this show (otherwise the server's default)",
    ping="Optional: a role to mention in release posts",
)
async def announce(
    interaction: discord.Interaction,
    channel: AnnounceChannel,
    show: ShowArg | None = None,
    ping: discord.Role | None = None,
) -> None:
    cog = _cog(interaction)
    guild_id = server_id(interaction)
    if ping is not None and ping.is_default():
        raise UserError(
            "Release posts can't ping @everyone: pick a role for the people who want to be "
            "told. Nothing was changed."
        )
    me = channel.guild.me
    perms = channel.permissions_for(me)
    missing = [
        name
        for name in announce_permissions(forum=isinstance(channel, discord.ForumChannel))
        if not getattr(perms, name)
    ]
    storage = cog.bot.storage
    slug = None if show is None else show.slug
    old = await storage.set_announce(
        guild_id, channel.id, None if ping is None else ping.id, show_slug=slug, now=cog.bot.clock()
    )
    cog.scheduler.announce_changed()
    before = old.default if show is None else old.shows.get(show.slug, old.default)
    new = AnnounceTarget(channel.id, None if ping is None else ping.id, cog.bot.clock())
    setting = "Release posts" if show is None else f"Release posts for {show.title}"
    reply = change_message(setting, describe_announce_target(before), describe_announce_target(new))
    notes = [reply.content or ""]
    if missing:
        notes.append(announce_warning(missing, channel.id))
    if ping is not None and not ping.mentionable and not perms.mention_everyone:
        notes.append(
            f"-# {ping.mention} isn't mentionable: posts will show it, but only members who may "
            "mention any role get notified. Make it mentionable in the role's settings."
        )
    await send_messages(interaction, [OutgoingMessage("\n".join(notes), ephemeral=True)])


@app_commands.command(name="announce-off", description="Stop release posts (one show, or all).")
@app_commands.describe(show="Optional: only this show (otherwise every show)")
async def announce_off(interaction: discord.Interaction, show: ShowArg | None = None) -> None:
    cog = _cog(interaction)
    guild_id = server_id(interaction)
    slug = None if show is None else show.slug
    old = await cog.bot.storage.announce_off(guild_id, show_slug=slug, now=cog.bot.clock())
    cog.scheduler.announce_changed()
    if show is None:
        was = describe_announce_target(old.default)
        setting = "Release posts"
    else:
        was = describe_announce_target(old.target_for(show.slug))
        setting = f"Release posts for {show.title}"
    reply = change_message(setting, was, "off")
    await send_messages(
        interaction,
        [OutgoingMessage(f"{reply.content}\n-# Threads already opened stay open.", ephemeral=True)],
    )


MODERATOR_COMMANDS: tuple[app_commands.Command[Any, ..., None], ...] = (announce, announce_off)


class Discussion(commands.Cog):
    def __init__(self, bot: EmbargoBot) -> None:
        self.bot = bot
        self.scheduler = Scheduler(bot)

    async def cog_load(self) -> None:
        attach_moderator_commands(self.bot.tree, MODERATOR_COMMANDS)
        self.bot.add_dynamic_items(ReviewButton)
        self.bot.storage.settings_listeners.append(self.scheduler.settings_changed)
        self.bot.content.swap_listeners.append(self.scheduler.content_changed)
        self.scheduler.start()

    async def cog_unload(self) -> None:
        await self.scheduler.stop()
        self.bot.content.swap_listeners.remove(self.scheduler.content_changed)
        self.bot.storage.settings_listeners.remove(self.scheduler.settings_changed)
        self.bot.remove_dynamic_items(ReviewButton)
        detach_moderator_commands(self.bot.tree, MODERATOR_COMMANDS)

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await self.scheduler.server_left(guild.id)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        # Invited (back): its announce settings, if it kept any, are in force again.
        self.scheduler.announce_changed()

    @app_commands.command(name="upcoming", description="The next releases, and when spoilers open.")
    @app_commands.describe(show="Optional: only this show")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=False)
    async def upcoming(self, interaction: discord.Interaction, show: ShowArg | None = None) -> None:
        now = self.bot.clock()
        settings = await self.bot.storage.get_guild_settings(interaction.guild_id)
        episodes = self.scheduler.calendar.upcoming(
            after=now, show_slug=None if show is None else show.slug
        )[: UPCOMING_PAGES * UPCOMING_PAGE_SIZE]
        rows = [
            UpcomingRow(
                episode,
                episode.title_spoils,
                window_end(episode.release_at, settings.spoilers.window_for(episode.show_slug)),
            )
            for episode in episodes
        ]
        pages = upcoming_pages(
            rows,
            now=now,
            show_title=None if show is None else show.title,
            in_guild=interaction.guild_id is not None,
        )
        await send_paged(interaction, pages)


async def setup(bot: EmbargoBot) -> None:
    if SPOILERS_EXTENSION not in bot.extensions:
        await bot.load_extension(SPOILERS_EXTENSION)
    await bot.add_cog(Discussion(bot))
