"""/watched, /unwatched, /progress, /forget-me, and the moderators' watch roles.

Progress belongs to the person, not the server: the member commands work in servers and DMs.
Every change is committed before the reply; watch roles are granted or removed right after it
(never while the database is held), and a failure is told to the member and kept for
``/embargo settings``. A process sees only its own shards' servers: it brings the member's
roles in line in those, and every other process on the database, hearing which member
changed, does the same in its servers from the stored progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.content.models import Episode, Show
from bot.errors import ErrorRoutedView, UserError
from bot.messages import OutgoingMessage
from bot.progress import (
    NotReleasedError,
    RoleSyncProblem,
    WatchRole,
    episodes_to_mark,
    episodes_to_unmark,
    member_progress,
    member_role_scope,
    next_release_after,
    released_between,
    role_changes,
    role_setup_problems,
    roles_to_recheck,
    show_progress,
    show_slug_of_key,
)
from bot.progress_messages import (
    FORGET_CANCELLED,
    FORGET_EXPIRED,
    FORGET_TIMEOUT,
    RoleOutcome,
    forget_prompt_message,
    forgotten_text,
    not_released_text,
    progress_pages,
    role_outcomes_text,
    role_setup_text,
    too_many_watch_roles_text,
    unknown_season_text,
    unwatched_message,
    watch_role_in_use_text,
    watch_role_off_message,
    watch_role_set_message,
    watched_message,
)
from bot.storage import StorageError
from bot.storage.watch_roles import MAX_WATCH_ROLES, TooManyWatchRolesError, WatchRoleInUseError
from bot.ui import (
    EPISODE_HELP,
    NO_MENTIONS,
    EpisodeButton,
    ShowArg,
    UnwatchedEpisodeArg,
    WatchedEpisodeArg,
    attach_moderator_commands,
    detach_moderator_commands,
    send_messages,
    send_paged,
    server_id,
    titles_here,
)

if TYPE_CHECKING:
    from bot.client import EmbargoBot

log = logging.getLogger(__name__)

SeasonArg = app_commands.Range[int, 0, 999]
# The last release instant whose watch roles were checked (bot_meta), kept per shard under
# "<this key>:<shard count>:<shard id>" (each process re-checks its own shards' servers; the
# bare key is what versions before shard ranges kept), and the longest the re-check sleeps,
# so that an episode a content reload adds is noticed within that time.
RECHECKED_META = "watch_roles_rechecked_at"
RECHECK_MAX_SLEEP = 6 * 3600.0
RECHECK_RETRY = 60.0  # after a storage fault or a Discord error
THROUGH_HELP = "Also every earlier episode of the show (specials only when you name one)"


class Progress(commands.Cog):
    def __init__(self, bot: EmbargoBot) -> None:
        self.bot = bot
        # Every process re-checks the servers of its own shards (not leader work: the
        # leader's gateway cache holds only its own shards' servers and members).
        self._rechecks: asyncio.Task[None]
        # Members whose progress another process changed: their roles being brought in line
        # here, and those changed again meanwhile (brought in line once more after).
        self._resyncs: dict[int, asyncio.Task[None]] = {}
        self._resync_again: set[int] = set()
        # Subcommands of the one /embargo group (cogs/spoilers.py owns it).
        self.settings_commands: list[app_commands.Command[Any, ..., Any]] = [
            app_commands.Command(
                name="watch-role",
                description="Give a role to members who watched a show (or season).",
                callback=self.watch_role,
            ),
            app_commands.Command(
                name="watch-role-off",
                description="Stop giving a show's watch role.",
                callback=self.watch_role_off,
            ),
        ]

    async def cog_load(self) -> None:
        attach_moderator_commands(self.bot.tree, self.settings_commands)
        self.bot.add_dynamic_items(WatchedButton)
        self._rechecks = asyncio.create_task(self._recheck_releases(), name="embargo-watch-roles")
        self.bot.storage.progress_listeners.append(self._progress_heard)

    async def cog_unload(self) -> None:
        detach_moderator_commands(self.bot.tree, self.settings_commands)
        self.bot.remove_dynamic_items(WatchedButton)
        with contextlib.suppress(ValueError):
            self.bot.storage.progress_listeners.remove(self._progress_heard)
        tasks = [self._rechecks, *self._resyncs.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- watch roles: after another process changed a member's progress -----------------------

    def _progress_heard(self, user_id: int) -> None:
        if user_id in self._resyncs:
            self._resync_again.add(user_id)  # read once more when the running one ends
            return
        self._resyncs[user_id] = asyncio.create_task(
            self._resync_heard(user_id), name="embargo-member-roles"
        )

    async def _resync_heard(self, user_id: int) -> None:
        """One member at a time, so an older read of their progress never lands last."""
        try:
            await self.bot.wait_until_ready()
            while True:
                self._resync_again.discard(user_id)
                try:
                    await self.resync_member(user_id)
                except StorageError as error:
                    log.warning("member %s's watch roles not brought in line: %s", user_id, error)
                except Exception:
                    log.exception("member %s's watch roles not brought in line", user_id)
                if user_id not in self._resync_again:
                    return
        finally:
            del self._resyncs[user_id]

    async def resync_member(self, user_id: int) -> list[RoleOutcome]:
        """Bring the member's watch roles in line with their stored progress in every server
        this process serves (whatever changed): grant what they earned, take back what they
        no longer earn. With nothing watched (after /forget-me), the record of the roles
        Embargo gave them in these servers goes too, whether or not taking them back worked."""
        storage = self.bot.storage
        watched = await storage.watched_keys(user_id)
        held = {
            (guild_id, role_id)
            for guild_id, role_id in await storage.roles_held_by(user_id)
            if self.bot.serves_guild(guild_id)
        }
        roles = await storage.watch_roles_for_shows({show_slug_of_key(key) for key in watched})
        for guild_id in sorted({guild_id for guild_id, _ in held}):
            roles += (await storage.watch_role_settings(guild_id)).roles
        outcomes: list[RoleOutcome] = []
        for guild_id, in_guild in member_role_scope(roles, watched, held).items():
            # Another process's server: that process brings the roles in line there.
            guild = self.bot.get_guild(guild_id) if self.bot.serves_guild(guild_id) else None
            member = await _member_of(guild, user_id) if guild is not None else None
            if guild is not None and member is not None:
                outcomes += await self._sync_in(guild, member, in_guild, watched)
        if not watched:
            await storage.forget_role_holds(user_id, {guild_id for guild_id, _ in held})
        return outcomes

    async def take_back_from_forgotten(self) -> None:
        """Take back the roles of members forgotten while this process was not running (the
        record of them waits for the process serving the server)."""
        for user_id in await self.bot.storage.holders_without_progress():
            await self.resync_member(user_id)

    # -- watch roles: when new episodes come out ----------------------------------------------

    async def _recheck_releases(self) -> None:
        """Sleep until the next release instant, then take watch roles back from the members
        who are no longer complete. The instant last checked is kept in the database, so
        releases while Embargo was offline are checked when it starts (and nothing twice)."""
        await self.bot.wait_until_ready()
        try:
            await self.take_back_from_forgotten()
        except StorageError as error:
            log.warning("could not take back the watch roles of forgotten members: %s", error)
        except Exception:
            log.exception("could not take back the watch roles of forgotten members")
        since = await self.rechecked_through()
        while True:
            try:
                now = self.bot.clock()
                await self.recheck_releases(since, now)
                since = now
                await self.record_rechecked(now)
                due = next_release_after(self.bot.catalogue.episodes, since)
                delay = (
                    RECHECK_MAX_SLEEP if due is None else (due - self.bot.clock()).total_seconds()
                )
            except StorageError as error:
                log.warning("the watch-role re-check failed (%s); retrying later", error)
                delay = RECHECK_RETRY
            except Exception:
                log.exception("the watch-role re-check failed; retrying later")
                delay = RECHECK_RETRY
            # A content reload can add an earlier episode: look again after RECHECK_MAX_SLEEP.
            await asyncio.sleep(min(max(delay, 0.0), RECHECK_MAX_SLEEP))

    def _recheck_keys(self) -> list[str]:
        """Where each shard this process runs keeps its last re-check: this process sees only
        its shards' servers, and the others re-check theirs from their own instants."""
        count = self.bot.shard_count or 1
        ids = self.bot.shard_ids if self.bot.shard_ids is not None else range(count)
        return [f"{RECHECKED_META}:{count}:{shard_id}" for shard_id in ids]

    async def rechecked_through(self) -> datetime:
        """The earliest instant one of this process's shards was re-checked through: the
        releases after it are checked now (a shard never checked: the instant kept before
        shard ranges, else now)."""
        storage = self.bot.storage
        before_shards = await storage.get_meta(RECHECKED_META)
        stamps = [await storage.get_meta(key) for key in self._recheck_keys()]
        known = [int(stamp) for stamp in (s or before_shards for s in stamps) if stamp is not None]
        if len(known) < len(stamps):
            known.append(int(self.bot.clock().timestamp()))
        return datetime.fromtimestamp(min(known), tz=UTC)

    async def record_rechecked(self, through: datetime) -> None:
        for key in self._recheck_keys():
            await self.bot.storage.set_meta(key, str(int(through.timestamp())))

    async def recheck_releases(self, since: datetime, until: datetime) -> int:
        """For the episodes released in ``(since, until]``: every member Embargo gave a watch
        role whose show or season gained an episode is checked again (and loses the role
        unless they have somehow watched it). Returns how many roles were taken back."""
        storage = self.bot.storage
        released = released_between(self.bot.catalogue.episodes, since, until)
        taken = 0
        for show_slug in dict.fromkeys(episode.show_slug for episode in released):
            roles = await storage.watch_roles_for_show(show_slug)
            new = [episode for episode in released if episode.show_slug == show_slug]
            for role in roles_to_recheck(roles, new):
                guild = self.bot.get_guild(role.guild_id)
                if guild is None:
                    continue  # not in that server now; checked if it comes back and changes
                in_guild = [r for r in roles if r.guild_id == guild.id]
                for user_id in await storage.role_holders(guild.id, role.role_id):
                    member = await _member_of(guild, user_id)
                    if member is None:  # left the server: the role left with them
                        await storage.record_role_holder(
                            guild.id, role.role_id, user_id, holds=False
                        )
                        continue
                    watched = await storage.watched_keys(user_id)
                    outcomes = await self._sync_in(guild, member, in_guild, watched)
                    taken += sum(1 for o in outcomes if not o.granted and o.problem is None)
        return taken

    def _show_of(self, episode: Episode) -> Show:
        show = self.bot.catalogue.shows_by_slug.get(episode.show_slug)
        if show is None:  # an Episode always comes from a loaded show
            raise UserError("That episode's show is no longer in the catalogue.")
        return show

    # -- /watched, /unwatched -----------------------------------------------------------------

    @app_commands.command(
        name="watched", description="Mark an episode watched: its ending unlocks for you."
    )
    @app_commands.describe(episode=EPISODE_HELP, through=THROUGH_HELP)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=False)
    async def watched(
        self, interaction: discord.Interaction, episode: WatchedEpisodeArg, through: bool = False
    ) -> None:
        await self.mark_watched(interaction, episode, through=through)

    async def mark_watched(
        self, interaction: discord.Interaction, episode: Episode, *, through: bool
    ) -> None:
        """Mark ``episode`` (and with ``through``, every earlier one) watched for whoever
        interacted, commit, answer privately, then bring their watch roles in line: /watched
        and the release post's **I've watched it** button."""
        show = self._show_of(episode)
        now = self.bot.clock()
        try:
            marking = episodes_to_mark(show.episodes, episode, through=through, now=now)
        except NotReleasedError:
            titles = await titles_here(self.bot, interaction.guild_id)
            raise UserError(not_released_text(episode, titles)) from None
        user_id = interaction.user.id
        added = await self.bot.storage.mark_watched(user_id, [e.key for e in marking], now=now)
        watched = await self.bot.storage.watched_keys(user_id)
        progress = show_progress(show.episodes, watched, now)
        titles = await titles_here(self.bot, interaction.guild_id)
        reply = watched_message(
            episode, through=through, marked=len(added), progress=progress, titles=titles
        )
        await send_messages(interaction, [reply])
        # Even when nothing new was marked: a role that failed before is tried again.
        await self._after_change(interaction, [show.slug])

    @app_commands.command(name="unwatched", description="Unmark an episode you marked watched.")
    @app_commands.describe(episode=EPISODE_HELP, through=THROUGH_HELP)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=False)
    async def unwatched(
        self, interaction: discord.Interaction, episode: UnwatchedEpisodeArg, through: bool = False
    ) -> None:
        show = self._show_of(episode)
        now = self.bot.clock()
        unmarking = episodes_to_unmark(show.episodes, episode, through=through)
        user_id = interaction.user.id
        removed = await self.bot.storage.unmark_watched(user_id, [e.key for e in unmarking])
        watched = await self.bot.storage.watched_keys(user_id)
        progress = show_progress(show.episodes, watched, now)
        titles = await titles_here(self.bot, interaction.guild_id)
        reply = unwatched_message(
            episode, through=through, unmarked=len(removed), progress=progress, titles=titles
        )
        await send_messages(interaction, [reply])
        await self._after_change(interaction, [show.slug])

    # -- /progress ----------------------------------------------------------------------------

    @app_commands.command(name="progress", description="How far you are in each show, privately.")
    @app_commands.describe(show="Optional: only this show")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=False)
    async def progress(self, interaction: discord.Interaction, show: ShowArg | None = None) -> None:
        watched = await self.bot.storage.watched_keys(interaction.user.id)
        now = self.bot.clock()
        if show is not None:
            shows = [show_progress(show.episodes, watched, now)] if show.episodes else []
        else:
            catalogue = self.bot.catalogue
            by_show = {slug: s.episodes for slug, s in catalogue.shows_by_slug.items()}
            shows = member_progress(by_show, watched, now)
        titles = await titles_here(self.bot, interaction.guild_id)
        await send_paged(interaction, progress_pages(shows, show, titles))

    # -- /forget-me ---------------------------------------------------------------------------

    @app_commands.command(
        name="forget-me", description="Delete everything Embargo stores about you (asks first)."
    )
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=False)
    async def forget_me(self, interaction: discord.Interaction) -> None:
        expires_at = discord.utils.utcnow() + timedelta(seconds=FORGET_TIMEOUT)
        view = ForgetView(self, interaction)
        await send_messages(interaction, [forget_prompt_message(expires_at)], view=view)

    # -- watch roles: after a member's progress changed -----------------------------------------

    async def _after_change(
        self, interaction: discord.Interaction, show_slugs: Collection[str]
    ) -> None:
        """Right after the commit: bring the member's watch roles in line, then tell them what
        changed or what failed."""
        outcomes = await self.sync_member_roles(interaction, show_slugs)
        text = role_outcomes_text(outcomes)
        if text is not None:
            await send_messages(interaction, [OutgoingMessage(content=text, ephemeral=True)])

    async def sync_member_roles(
        self, interaction: discord.Interaction, show_slugs: Collection[str]
    ) -> list[RoleOutcome]:
        """Grant or remove the member's watch roles for ``show_slugs`` in every server this
        process serves (the other processes, hearing of the change, do theirs). Returns what
        happened where the member can see it: in the server the interaction came from, or,
        from a DM, everywhere."""
        storage = self.bot.storage
        user_id = interaction.user.id
        here = interaction.guild if isinstance(interaction.user, discord.Member) else None
        by_guild: dict[int, list[WatchRole]] = {}
        for role in await storage.watch_roles_for_shows(show_slugs):
            by_guild.setdefault(role.guild_id, []).append(role)
        if not by_guild:
            return []
        watched = await storage.watched_keys(user_id)
        outcomes: list[RoleOutcome] = []
        # The server the member is in first: what they are told about.
        for guild_id in sorted(by_guild, key=lambda g: here is None or g != here.id):
            if here is not None and guild_id == here.id:
                guild: discord.Guild | None = here
                member: discord.Member | None = cast(discord.Member, interaction.user)
            else:
                guild = self.bot.get_guild(guild_id)
                member = await _member_of(guild, user_id) if guild is not None else None
            if guild is None or member is None:
                continue
            changed = await self._sync_in(guild, member, by_guild[guild_id], watched)
            if here is None or guild.id == here.id:
                outcomes += changed
        return outcomes

    async def _sync_in(
        self,
        guild: discord.Guild,
        member: discord.Member,
        roles: Sequence[WatchRole],
        watched: Collection[str],
    ) -> list[RoleOutcome]:
        now = self.bot.clock()
        shows = self.bot.catalogue.shows_by_slug
        by_show = {r.show_slug: shows[r.show_slug].episodes for r in roles if r.show_slug in shows}
        held = {role.id for role in member.roles}
        changes = role_changes(roles, by_show, frozenset(watched), held, now)
        outcomes = []
        for role in changes.grant:
            outcomes.append(await self._change_role(guild, member, role.role_id, grant=True))
        for role in changes.revoke:
            outcomes.append(await self._change_role(guild, member, role.role_id, grant=False))
        return outcomes

    async def _change_role(
        self, guild: discord.Guild, member: discord.Member, role_id: int, *, grant: bool
    ) -> RoleOutcome:
        role = guild.get_role(role_id)
        me = guild.me
        problem: RoleSyncProblem | None = None
        if role is None:
            problem = RoleSyncProblem.ROLE_DELETED
        elif not me.guild_permissions.manage_roles:
            problem = RoleSyncProblem.MISSING_PERMISSION
        elif role >= me.top_role:
            problem = RoleSyncProblem.ROLE_TOO_HIGH
        else:
            reason = "Watch role: watched every released episode" if grant else "Watch role"
            try:
                if grant:
                    await member.add_roles(role, reason=reason)
                else:
                    await member.remove_roles(role, reason=reason)
            except discord.NotFound:
                problem = RoleSyncProblem.ROLE_DELETED
            except discord.HTTPException as error:
                # Forbidden although our copy of the server said it would work: its
                # permissions or role order changed since.
                log.warning("watch role %s in %s refused: %s", role_id, guild.id, error)
                problem = RoleSyncProblem.DISCORD_ERROR
        if problem is not None:
            await self.bot.storage.record_role_sync_failure(
                guild.id, role_id, problem, now=self.bot.clock()
            )
        else:
            await self.bot.storage.record_role_holder(guild.id, role_id, member.id, holds=grant)
        return RoleOutcome(role_id=role_id, granted=grant, problem=problem)

    # -- /embargo watch-role, watch-role-off --------------------------------------------------
    # interaction.guild is never None below: the group's check refuses DMs.

    @app_commands.describe(
        show="The show",
        role="The role; Embargo's own role must be above it, with Manage Roles",
        season="Optional: only this season (0: the specials)",
    )
    async def watch_role(
        self,
        interaction: discord.Interaction,
        show: ShowArg,
        role: discord.Role,
        season: SeasonArg | None = None,
    ) -> None:
        guild: discord.Guild = interaction.guild  # type: ignore[assignment]
        _check_season(show, season)
        me = guild.me
        problems = role_setup_problems(
            is_everyone=role.is_default(),
            managed=role.managed,
            can_manage_roles=me.guild_permissions.manage_roles,
            role_position=role.position,
            top_role_position=me.top_role.position,
        )
        if problems:
            raise UserError(role_setup_text(role.id, problems))
        try:
            replaced = await self.bot.storage.set_watch_role(guild.id, show.slug, season, role.id)
        except WatchRoleInUseError as in_use:
            title = self._title(in_use.existing.show_slug)
            raise UserError(watch_role_in_use_text(in_use.existing, title)) from None
        except TooManyWatchRolesError:
            raise UserError(too_many_watch_roles_text(MAX_WATCH_ROLES)) from None
        message = watch_role_set_message(show.title, season, role.id, replaced)
        await send_messages(interaction, [message])

    @app_commands.describe(show="The show", season="Optional: the season whose role to remove")
    async def watch_role_off(
        self, interaction: discord.Interaction, show: ShowArg, season: SeasonArg | None = None
    ) -> None:
        guild_id = server_id(interaction)
        removed = await self.bot.storage.remove_watch_role(guild_id, show.slug, season)
        await send_messages(interaction, [watch_role_off_message(show.title, season, removed)])

    def _title(self, show_slug: str) -> str | None:
        show = self.bot.catalogue.shows_by_slug.get(show_slug)
        return show.title if show is not None else None


def _check_season(show: Show, season: int | None) -> None:
    if season is not None and all(episode.season != season for episode in show.episodes):
        raise UserError(unknown_season_text(show, season))


async def _member_of(guild: discord.Guild, user_id: int) -> discord.Member | None:
    """The member from the cache, or asked of Discord (Embargo has no members intent)."""
    member = guild.get_member(user_id)
    if member is not None:
        return member
    try:
        return await guild.fetch_member(user_id)
    except discord.NotFound:
        return None  # not in that server
    except discord.HTTPException as error:
        log.warning("could not look up member %s in %s: %s", user_id, guild.id, error)
        return None


class WatchedButton(
    EpisodeButton,
    action="watched",
    label="I've watched it",
    emoji="\N{WHITE HEAVY CHECK MARK}",
    style=discord.ButtonStyle.success,
):
    """The release post's **I've watched it**: /watched for whoever clicks, answered privately."""

    async def clicked(
        self, bot: EmbargoBot, interaction: discord.Interaction, episode: Episode
    ) -> None:
        cog = bot.get_cog(Progress.__cog_name__)
        if cog is None:  # the extension was unloaded; a post sent before keeps its button
            raise UserError("Watch progress is unavailable right now. Please try again later.")
        # No isinstance: a post sent in this run holds this class from the module the
        # discussion extension imported, apart from the loaded extension's copy.
        await cast(Progress, cog).mark_watched(interaction, episode, through=False)


class ForgetView(ErrorRoutedView):
    """The /forget-me confirmation: Delete or Cancel, usable for ``FORGET_TIMEOUT`` seconds."""

    def __init__(self, cog: Progress, origin: discord.Interaction) -> None:
        super().__init__(timeout=FORGET_TIMEOUT)
        self.cog = cog
        self.origin = origin

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        # The prompt is ephemeral, so only its owner sees it; checked all the same.
        return interaction.user.id == self.origin.user.id

    @discord.ui.button(label="Delete everything", style=discord.ButtonStyle.danger)
    async def confirm(
        self, interaction: discord.Interaction, button: discord.ui.Button[ForgetView]
    ) -> None:
        self.stop()
        storage = self.cog.bot.storage
        forgotten = await storage.forget_member(interaction.user.id)
        text = forgotten_text(
            forgotten.watched_episodes, forgotten.votes, len(forgotten.vote_guild_ids)
        )
        await interaction.response.edit_message(
            content=text, view=None, allowed_mentions=NO_MENTIONS, suppress_embeds=True
        )
        # Nothing is watched any more: the watch roles Embargo gave go, in this process's
        # servers here and in the others' by the processes serving them.
        outcomes = await self.cog.resync_member(interaction.user.id)
        follow = role_outcomes_text(outcomes)
        if follow is not None:
            await send_messages(interaction, [OutgoingMessage(content=follow, ephemeral=True)])

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(
        self, interaction: discord.Interaction, button: discord.ui.Button[ForgetView]
    ) -> None:
        self.stop()
        await interaction.response.edit_message(
            content=FORGET_CANCELLED, view=None, allowed_mentions=NO_MENTIONS, suppress_embeds=True
        )

    async def on_timeout(self) -> None:
        with contextlib.suppress(discord.HTTPException):
            await self.origin.edit_original_response(content=FORGET_EXPIRED, view=None)


async def setup(bot: EmbargoBot) -> None:
    await bot.add_cog(Progress(bot))
