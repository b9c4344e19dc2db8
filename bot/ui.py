"""Discord-facing glue shared by the cogs: sending rendered messages (paged or not), episode and
show options, and asking the policy about the place an interaction came from."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Self

import discord
from discord import app_commands
from discord.utils import MISSING

from bot.content.models import Episode, Show
from bot.errors import ErrorRoutedView, UserError, errors_reported
from bot.help_messages import CommandHelp, CommandOption
from bot.lookup import MAX_CHOICES
from bot.messages import (
    OutgoingMessage,
    Surface,
    episode_label,
    missing_permissions_text,
    permissions_needed,
    too_long_text,
    unknown_episode_text,
    unknown_show_text,
)
from bot.progress import order_for_unwatched, order_for_watched, up_next
from bot.spoilers.policy import Decision, TitleRule, decide

if TYPE_CHECKING:
    from bot.client import EmbargoBot

CHOICE_NAME_LIMIT = 100
NO_MENTIONS = discord.AllowedMentions.none()


async def send_messages(
    interaction: discord.Interaction,
    messages: Sequence[OutgoingMessage],
    *,
    view: discord.ui.View | None = None,
) -> None:
    """Send rendered messages in order: the first as the interaction response, the rest as
    follow-ups. Every message goes out with mentions disabled; text-only ones without link
    previews. ``view`` is attached to the first message.

    Refuses (``UserError``, before anything is sent) when Embargo lacks a channel permission
    the messages need, naming it."""
    require_permissions(interaction, messages)
    followup: discord.Webhook | None = None
    for index, message in enumerate(messages):
        # MISSING is discord.py's "not given": the request leaves that part out.
        attached = view if view is not None and index == 0 else MISSING
        if interaction.response.is_done():
            if followup is None:  # the property builds a new Webhook on every read
                followup = interaction.followup
            await followup.send(
                message.content if message.content is not None else MISSING,
                embeds=_embeds(message),
                ephemeral=message.ephemeral,
                allowed_mentions=NO_MENTIONS,
                suppress_embeds=message.suppress_embeds,
                view=attached,
            )
        else:
            await interaction.response.send_message(
                message.content,
                embeds=_embeds(message),
                ephemeral=message.ephemeral,
                allowed_mentions=NO_MENTIONS,
                suppress_embeds=message.suppress_embeds,
                view=attached,
            )


def require_permissions(
    interaction: discord.Interaction,
    messages: Sequence[OutgoingMessage],
    *,
    with_file: bool = False,
) -> None:
    """Raise a ``UserError`` naming the channel permissions Embargo lacks for ``messages``
    (``interaction.app_permissions``: its own in this channel, overwrites included), so the
    member learns what the moderators must give instead of getting a half-sent reply."""
    if interaction.guild_id is None:
        return  # DMs: nothing for a moderator to give
    needed = permissions_needed(
        messages,
        with_file=with_file,
        in_thread=isinstance(interaction.channel, discord.Thread),
    )
    has = interaction.app_permissions
    missing = [name for name in needed if not getattr(has, name)]
    if missing:
        raise UserError(missing_permissions_text(missing))


# Interaction tokens last 15 minutes; the pager must stop (and grey out its buttons, which
# needs the token) before that.
PAGER_TIMEOUT = 600.0
NOT_YOURS = (
    "These buttons belong to whoever ran the command. Run it yourself to get pages you can turn."
)


def _embeds(message: OutgoingMessage) -> list[discord.Embed]:
    return [discord.Embed.from_dict(embed) for embed in message.embeds]


class Pager(ErrorRoutedView):
    """Previous/Next over pre-rendered pages. Only the member who ran the command can turn
    them; when the view times out its buttons are disabled on the message itself."""

    def __init__(
        self, origin: discord.Interaction, pages: Sequence[OutgoingMessage], *, timeout: float
    ) -> None:
        super().__init__(timeout=timeout)
        self.origin = origin
        self.owner_id = origin.user.id
        self.pages = pages  # kept as given: ranking pages are built when first shown
        self.index = 0
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        self.previous.disabled = self.index == 0
        self.next.disabled = self.index >= len(self.pages) - 1

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message(
            NOT_YOURS, ephemeral=True, allowed_mentions=NO_MENTIONS
        )
        return False

    async def _show(self, interaction: discord.Interaction, index: int) -> None:
        self.index = min(max(index, 0), len(self.pages) - 1)
        self._sync_buttons()
        current = self.pages[self.index]
        await interaction.response.edit_message(
            content=current.content, embeds=_embeds(current), view=self
        )

    @discord.ui.button(label="Previous", emoji="\N{LEFTWARDS BLACK ARROW}")
    async def previous(
        self, interaction: discord.Interaction, button: discord.ui.Button[Pager]
    ) -> None:
        await self._show(interaction, self.index - 1)

    @discord.ui.button(label="Next", emoji="\N{BLACK RIGHTWARDS ARROW}")
    async def next(
        self, interaction: discord.Interaction, button: discord.ui.Button[Pager]
    ) -> None:
        await self._show(interaction, self.index + 1)

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        # If the message was deleted or the token expired there is nothing left to grey out.
        with contextlib.suppress(discord.HTTPException):
            await self.origin.edit_original_response(view=self)


async def send_paged(
    interaction: discord.Interaction,
    pages: Sequence[OutgoingMessage],
    *,
    file: discord.File | None = None,
) -> None:
    """Send the first page, with Previous/Next when there is more than one."""
    first = pages[0]
    require_permissions(interaction, [first], with_file=file is not None)
    view = Pager(interaction, pages, timeout=PAGER_TIMEOUT) if len(pages) > 1 else None
    if file is None:
        await send_messages(interaction, [first], view=view)
        return
    await interaction.response.send_message(
        first.content,
        embeds=_embeds(first),
        ephemeral=first.ephemeral,
        allowed_mentions=NO_MENTIONS,
        file=file,
        view=view if view is not None else MISSING,
    )


def channel_ids(interaction: discord.Interaction) -> frozenset[int]:
    """Where the interaction came from, as the spoilers-ok rule sees it: the channel, a
    thread's parent channel, and the category either sits in. Marking a category marks
    everything inside it."""
    channel = interaction.channel
    candidates = (
        interaction.channel_id,
        getattr(channel, "parent_id", None),  # threads
        getattr(channel, "category_id", None),  # channels, and threads through their parent
    )
    return frozenset(item for item in candidates if isinstance(item, int))


async def decide_here(
    bot: EmbargoBot, interaction: discord.Interaction, episode: Episode, *, for_asker: bool = False
) -> Decision:
    """The policy's decision for the place the interaction came from; ``for_asker``: for the
    member who asked, who may have marked the episode watched (the ending unlocks for them)."""
    settings = await bot.storage.get_guild_settings(interaction.guild_id)
    spoilers = settings.spoilers
    # A discussion thread Embargo opened is spoilers-ok. Only threads are looked up (one
    # primary-key read), so a command anywhere else costs nothing more.
    thread_id = interaction.channel_id
    if (
        isinstance(interaction.channel, discord.Thread)
        and thread_id is not None
        and await bot.storage.is_discussion_thread(thread_id)
    ):
        spoilers = replace(
            spoilers, spoilers_ok_channels=spoilers.spoilers_ok_channels | {thread_id}
        )
    watched = for_asker and episode.key in await bot.storage.watched_keys(interaction.user.id)
    return decide(
        release_at=episode.release_at,
        now=bot.clock(),
        settings=spoilers,
        show_slug=episode.show_slug,
        channel_ids=channel_ids(interaction),
        watched=watched,
    )


def button_episode(bot: EmbargoBot, episode_key: str) -> Episode:
    """The episode a persistent button names; refused when the content no longer has it (a
    button on an old post outlives a show removed since)."""
    episode = bot.catalogue.by_key.get(episode_key)
    if episode is None:
        raise UserError("That episode is no longer in the catalogue.")
    return episode


# An episode key as content files produce it: "show-slug/s01e02".
EPISODE_KEY_PATTERN = r"[a-z0-9-]+/s\d+e\d+"


class EpisodeButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    # DynamicItem wants a template on every subclass: each button's own replaces this one.
    template=rf"embargo:[a-z-]+:(?P<key>{EPISODE_KEY_PATTERN})",
):
    """A persistent button about one episode: its custom id is ``embargo:<action>:<episode
    key>``, so a post from last month still answers after any number of restarts. Posts already
    in servers carry these ids: an action once released must never change.

    A subclass names its action and look in its class line (``action="review", label=...,
    emoji=..., style=...``) and says what a click does in ``clicked``; each is registered with
    ``bot.add_dynamic_items`` by the cog that answers it.
    """

    action: ClassVar[str]
    label: ClassVar[str]
    emoji: ClassVar[str]
    style: ClassVar[discord.ButtonStyle]

    def __init_subclass__(
        cls, *, action: str, label: str, emoji: str, style: discord.ButtonStyle
    ) -> None:
        super().__init_subclass__(template=rf"embargo:{action}:(?P<key>{EPISODE_KEY_PATTERN})")
        cls.action = action
        cls.label = label
        cls.emoji = emoji
        cls.style = style

    def __init__(self, episode_key: str) -> None:
        super().__init__(
            discord.ui.Button(
                label=self.label,
                emoji=self.emoji,
                style=self.style,
                custom_id=f"embargo:{self.action}:{episode_key}",
            )
        )
        self.episode_key = episode_key

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls(match["key"])

    async def callback(self, interaction: discord.Interaction) -> None:
        # discord.py types an Item callback's client with a TypeVar no override can narrow.
        bot: EmbargoBot = interaction.client  # type: ignore[assignment]
        # discord.py only logs a dynamic item's errors; the clicker must always get an answer.
        async with errors_reported(interaction):
            await self.clicked(bot, interaction, button_episode(bot, self.episode_key))

    async def clicked(
        self, bot: EmbargoBot, interaction: discord.Interaction, episode: Episode
    ) -> None:
        """Answer a click on this button about ``episode`` (still in the catalogue)."""
        raise NotImplementedError


async def titles_here(bot: EmbargoBot, guild_id: int | None) -> TitleRule:
    """Which titles may be shown in plain sight in this server (the defaults in DMs), now."""
    settings = await bot.storage.get_guild_settings(guild_id)
    return TitleRule(settings.spoilers, bot.clock())


def _runs_here(command: app_commands.Command[Any, ..., Any] | app_commands.Group, dm: bool) -> bool:
    contexts = command.allowed_contexts
    if dm:
        return not command.guild_only and (contexts is None or bool(contexts.dm_channel))
    return contexts is None or bool(contexts.guild)


def commands_for(
    tree: app_commands.CommandTree[Any], interaction: discord.Interaction
) -> list[CommandHelp]:
    """Every slash command the member who sent ``interaction`` can run where they sent it,
    read from the command tree itself, so a new command is listed without touching /help.

    In a server a command hidden by ``default_permissions`` is listed only for members who
    hold those permissions (Discord shows it to no one else); it counts as a moderator command
    when Manage Server is among them. In DMs only commands allowed there are listed."""
    dm = interaction.guild_id is None
    member_permissions = interaction.permissions
    guild = discord.Object(interaction.guild_id) if interaction.guild_id else None
    roots = {command.name: command for command in tree.get_commands(guild=None)}
    if guild is not None:  # a development server's copy, when the tree was copied to it
        roots.update({command.name: command for command in tree.get_commands(guild=guild)})
    found: list[CommandHelp] = []
    for root in roots.values():
        if not isinstance(root, app_commands.Command | app_commands.Group):
            continue  # context menus are not typed
        if not _runs_here(root, dm):
            continue
        required = root.default_permissions
        if required is not None and not dm and not member_permissions >= required:
            continue
        moderator = required is not None and required.manage_guild
        leaves = root.walk_commands() if isinstance(root, app_commands.Group) else [root]
        for command in leaves:
            if not isinstance(command, app_commands.Command):
                continue
            found.append(
                CommandHelp(
                    name=command.qualified_name,
                    description=command.description,
                    options=tuple(
                        CommandOption(parameter.display_name, parameter.required)
                        for parameter in command.parameters
                    ),
                    moderator=moderator,
                )
            )
    return found


# Option lengths, declared to Discord (which then refuses longer input in its client) and
# checked again here, before any work, against clients that ignore the declaration.
# An episode or a show: titles and codes as members type them, or a picked choice's value
# (an episode key or show slug), which Discord caps at 100 characters.
EPISODE_MAX_LENGTH = 100
SHOW_MAX_LENGTH = 100
# A duration: the longest spelling the parser accepts that anyone would type, such as
# "1 week 2 days 3 hours 30 minutes", with room to spare.
DURATION_MAX_LENGTH = 40
EPISODE_HELP = "Title or code, e.g. “into infinity”, “s7e6” or “bm s07e06”"


def server_id(interaction: discord.Interaction) -> int:
    """The server a moderator command runs in. The ``/embargo`` group's check has already
    refused DMs; this says so to the type checker, with the same refusal."""
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage
    return interaction.guild_id


def _choice_name(text: str) -> str:
    return text if len(text) <= CHOICE_NAME_LIMIT else text[: CHOICE_NAME_LIMIT - 1] + "…"


class Text(app_commands.Transformer["EmbargoBot"]):
    """A free-text option with a maximum length declared to Discord and enforced here."""

    def __init__(self, max_length: int, what: str) -> None:
        self.max_length = max_length
        self.what = what  # "a duration": what the option holds, for the refusal

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.string

    @property
    def max_value(self) -> int:
        # discord.py declares a string option's max_value as its max_length.
        return self.max_length

    def bounded(self, value: str) -> str:
        if len(value) > self.max_length:
            raise UserError(too_long_text(self.what, self.max_length, len(value)))
        return value

    async def transform(self, interaction: discord.Interaction[EmbargoBot], value: str, /) -> Any:
        return self.bounded(value)


class EpisodeOption(Text):
    """An episode, typed or picked: autocomplete offers matching episodes (their keys as
    values, so a pick resolves exactly) and the command receives the resolved ``Episode``."""

    def __init__(self) -> None:
        super().__init__(EPISODE_MAX_LENGTH, "an episode")

    async def transform(
        self, interaction: discord.Interaction[EmbargoBot], value: str, /
    ) -> Episode:
        catalogue = interaction.client.catalogue
        text = self.bounded(value)
        titles = await titles_here(interaction.client, interaction.guild_id)
        episode = catalogue.resolve(text, titles=titles)
        if episode is None:
            suggestions = catalogue.suggest(text, titles=titles)
            raise UserError(unknown_episode_text(text, suggestions, titles))
        return episode

    async def autocomplete(
        self, interaction: discord.Interaction[EmbargoBot], value: int | float | str, /
    ) -> list[app_commands.Choice[int | float | str]]:
        text = str(value)  # always a string: the option's type is string
        if len(text) > self.max_length:
            return []
        titles = await titles_here(interaction.client, interaction.guild_id)
        # Choice names can't render spoiler tags: a hidden title is left out of them.
        return [
            app_commands.Choice(
                name=_choice_name(episode_label(episode, titles, Surface.PLAIN)), value=episode.key
            )
            for episode in (await self.offered(interaction, text, titles))[:MAX_CHOICES]
        ]

    async def offered(
        self, interaction: discord.Interaction[EmbargoBot], value: str, titles: TitleRule
    ) -> list[Episode]:
        """The episodes autocomplete offers for ``value``, best first."""
        return interaction.client.catalogue.search(value, limit=MAX_CHOICES, titles=titles)


# How many matches /watched and /unwatched reorder before offering the first 25: enough for
# a member's next episode to be among them when they type only a show's name.
PROGRESS_CANDIDATES = 250


class WatchedEpisodeOption(EpisodeOption):
    """``/watched``: the member's next episode of each show they watch first, then unwatched
    released ones, then watched ones, then unreleased ones (which can't be marked yet)."""

    async def offered(
        self, interaction: discord.Interaction[EmbargoBot], value: str, titles: TitleRule
    ) -> list[Episode]:
        bot = interaction.client
        catalogue = bot.catalogue
        now = bot.clock()
        watched = await bot.storage.watched_keys(interaction.user.id)
        by_show = {slug: show.episodes for slug, show in catalogue.shows_by_slug.items()}
        next_episodes = up_next(by_show, watched, now)
        candidates = catalogue.search(value, limit=PROGRESS_CANDIDATES, titles=titles)
        if not value.strip():  # nothing typed: the member's next episodes, then the newest
            candidates = [*next_episodes, *candidates]
        return order_for_watched(candidates, next_episodes, watched, now)


class UnwatchedEpisodeOption(EpisodeOption):
    """``/unwatched``: episodes the member marked watched first."""

    async def offered(
        self, interaction: discord.Interaction[EmbargoBot], value: str, titles: TitleRule
    ) -> list[Episode]:
        bot = interaction.client
        watched = await bot.storage.watched_keys(interaction.user.id)
        candidates = bot.catalogue.search(value, limit=PROGRESS_CANDIDATES, titles=titles)
        return order_for_unwatched(candidates, watched)


class ShowOption(Text):
    """A show, typed or picked: autocomplete offers matching shows (slugs as values) and the
    command receives the resolved ``Show``."""

    def __init__(self) -> None:
        super().__init__(SHOW_MAX_LENGTH, "a show")

    async def transform(self, interaction: discord.Interaction[EmbargoBot], value: str, /) -> Show:
        catalogue = interaction.client.catalogue
        text = self.bounded(value)
        show = catalogue.resolve_show(text)
        if show is None:
            raise UserError(unknown_show_text(text, catalogue.suggest_shows(text)))
        return show

    async def autocomplete(
        self, interaction: discord.Interaction[EmbargoBot], value: int | float | str, /
    ) -> list[app_commands.Choice[int | float | str]]:
        text = str(value)  # always a string: the option's type is string
        if len(text) > self.max_length:
            return []
        return [
            app_commands.Choice(name=_choice_name(show.title), value=show.slug)
            for show in interaction.client.catalogue.search_shows(text, limit=MAX_CHOICES)
        ]


# The annotations the cogs use: ``episode: EpisodeArg`` receives an ``Episode``.
EpisodeArg = app_commands.Transform[Episode, EpisodeOption]
WatchedEpisodeArg = app_commands.Transform[Episode, WatchedEpisodeOption]
UnwatchedEpisodeArg = app_commands.Transform[Episode, UnwatchedEpisodeOption]
ShowArg = app_commands.Transform[Show, ShowOption]
DurationArg = app_commands.Transform[str, Text(DURATION_MAX_LENGTH, "a duration")]


class OneOf(app_commands.Transformer):
    """A string option with fixed choices that are also enforced here, on the server side.

    Discord's client only offers the registered choices, but discord.py passes whatever value
    arrives straight through for ``Literal`` options; a modified client could send anything.
    """

    def __init__(self, *values: str) -> None:
        self.values = values

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.string

    @property
    def max_value(self) -> int:
        return max(len(value) for value in self.values)  # declared as the max_length

    @property
    def choices(self) -> list[app_commands.Choice[int | float | str]]:
        return [app_commands.Choice(name=value, value=value) for value in self.values]

    async def transform(self, interaction: discord.Interaction, value: str, /) -> str:
        if value not in self.values:
            raise app_commands.TransformerError(value, self.type, self)
        return value


# -- /embargo subcommands owned by other cogs ---------------------------------------------------

EMBARGO_GROUP = "embargo"


def attach_moderator_commands(
    tree: app_commands.CommandTree[Any], commands: Sequence[app_commands.Command[Any, ..., Any]]
) -> None:
    """Add a cog's own subcommands to the one ``/embargo`` group (cogs/spoilers.py owns it and
    loads first), so each feature keeps its settings beside its code: every cog adds its
    subcommands this way, in cog_load (``detach_moderator_commands`` in cog_unload). The group's
    moderator check runs for them as for its own (tests/test_meta.py checks every one); they
    must be direct subcommands, as discord.py runs only the direct parent's check."""
    group = tree.get_command(EMBARGO_GROUP)
    if not isinstance(group, app_commands.Group):
        raise RuntimeError("the /embargo group is not loaded: cogs.spoilers must load first")
    for command in commands:
        group.add_command(command)


def detach_moderator_commands(
    tree: app_commands.CommandTree[Any], commands: Sequence[app_commands.Command[Any, ..., Any]]
) -> None:
    group = tree.get_command(EMBARGO_GROUP)
    if isinstance(group, app_commands.Group):
        for command in commands:
            group.remove_command(command.name)
