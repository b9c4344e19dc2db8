"""Everything Embargo shows on Discord, built as plain data.

Cogs turn an ``OutgoingMessage`` into a Discord call without looking inside it. Spoiler text
only ever reaches message *content* through ``bot.spoilers.render`` (never an embed, title,
footer, field name or button label), which is where the leak rules live and are tested.

An episode's title is named only through :func:`episode_title` (and the labels built on it),
which asks the ``TitleRule`` of the request whether it may be shown: a title that spoils is
spoiler content until the episode's window ends there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TypedDict

from bot.content.models import Episode, Review, Show
from bot.guild_settings import GuildSettings
from bot.spoilers.durations import SpoilerWindow
from bot.spoilers.policy import Decision, Delivery, SpoilerSettings, TitleRule
from bot.spoilers.render import (
    EMBED_DESCRIPTION_LIMIT,
    EMBED_FIELD_VALUE_LIMIT,
    EMBED_FOOTER_LIMIT,
    EMBED_TITLE_LIMIT,
    EMBED_TOTAL_LIMIT,
    escape_inline,
    plain_messages,
    spoiler_inline,
    spoiler_messages,
    truncate,
)

EMBARGO_COLOUR = 0xC0392B
# The most of a member's own text an error repeats back to them.
ECHO_LIMIT = 100
# Titles are content-file text of any length; a message shows at most this much of one.
TITLE_LIMIT = 200


class EmbedField(TypedDict):
    name: str
    value: str
    inline: bool


class EmbedFooter(TypedDict):
    text: str


class EmbedData(TypedDict, total=False):
    """An embed as Discord's JSON has it (what ``discord.Embed.from_dict`` reads): the parts
    Embargo uses."""

    title: str
    description: str
    color: int
    fields: list[EmbedField]
    footer: EmbedFooter


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    content: str | None = None
    embeds: tuple[EmbedData, ...] = ()
    ephemeral: bool = False

    @property
    def suppress_embeds(self) -> bool:
        # Link previews are suppressed on every text-only message; a message that carries our
        # own embed can't set the flag (it would hide that embed), and holds no spoiler text.
        return not self.embeds


def echo(text: str, limit: int = ECHO_LIMIT) -> str:
    """What a member typed, repeated in a reply: on one line, at most ``limit`` characters
    (cut with an ellipsis), without control or invisible formatting characters (no bidi
    overrides), and escaped so that it shows as typed: no mention, link, spoiler or markup
    can come out of it. Only the start of the text is ever looked at."""
    head = text[: limit * 4]
    flat = " ".join("".join(ch for ch in head if ch.isprintable() or ch.isspace()).split())
    if len(flat) > limit or (len(text) > len(head) and text[len(head) :].strip()):
        flat = flat[: limit - 1].rstrip() + "…"
    return escape_inline(flat)


def timestamp(moment: datetime, style: str = "f") -> str:
    """A Discord timestamp, shown in each reader's own time zone."""
    return f"<t:{int(moment.timestamp())}:{style}>"


def stars(rating: float) -> str:
    full = int(rating)
    half = rating - full >= 0.5
    return "★" * full + ("½" if half else "") + "☆" * (5 - full - (1 if half else 0))


class Surface(Enum):
    """Where an episode's title is written, which decides how a hidden one is shown."""

    CONTENT = "content"  # message content: Markdown; a hidden title goes inside spoiler tags
    EMBED = "embed"  # embed text: Markdown, but never spoiler text; a hidden title is left out
    # No Markdown at all (embed titles, autocomplete choices, thread names, images): shown as
    # written; a hidden title is left out.
    PLAIN = "plain"


HIDDEN_TITLE = "title hidden"


def episode_title(episode: Episode, *, shown: bool, surface: Surface) -> str:
    """The episode's title for ``surface``: as written (escaped where Markdown renders), or,
    when it may not be ``shown``, inside spoiler tags in message content and left out
    everywhere else. The one place a title is turned into text."""
    title = truncate(" ".join(episode.title.split()), TITLE_LIMIT)
    if shown:
        return title if surface is Surface.PLAIN else escape_inline(title)
    if surface is Surface.CONTENT:
        return spoiler_inline(title)
    return f"*{HIDDEN_TITLE}*" if surface is Surface.EMBED else HIDDEN_TITLE


def episode_label(episode: Episode, titles: TitleRule, surface: Surface) -> str:
    """``Black Mirror S7E6 · USS Callister: Into Infinity``, the title as ``titles`` allows."""
    show = " ".join(episode.show_title.split())
    if surface is not Surface.PLAIN:
        show = escape_inline(show)
    title = episode_title(episode, shown=titles.shows(episode), surface=surface)
    return f"{show} {episode.short_code} · {title}"


def episode_heading(episode: Episode, titles: TitleRule, surface: Surface = Surface.CONTENT) -> str:
    return f"**{episode_label(episode, titles, surface)}**"


def _plain_title(episode: Episode, titles: TitleRule) -> str:
    # Embed titles don't render markdown reliably; keep the raw text but bounded.
    title = episode_title(episode, shown=titles.shows(episode), surface=Surface.PLAIN)
    return truncate(
        f"{episode.show_title} · S{episode.season}E{episode.number} · {title}",
        EMBED_TITLE_LIMIT,
    )


# -- /review ----------------------------------------------------------------------------------


def review_message(episode: Episode, review: Review | None, titles: TitleRule) -> OutgoingMessage:
    released = f"{timestamp(episode.release_at, 'D')} ({timestamp(episode.release_at, 'R')})"
    if review is None:
        return OutgoingMessage(
            content=(
                f"There's no review of {episode_heading(episode, titles)} yet. "
                f"It was released {released}."
            ),
            ephemeral=True,
        )
    fields: list[EmbedField] = [
        {"name": "Rating", "value": f"{stars(review.rating)} {review.rating:g}/5", "inline": True},
        {"name": "Released", "value": released, "inline": True},
        {
            "name": "Verdict",
            "value": truncate(review.verdict, EMBED_FIELD_VALUE_LIMIT),
            "inline": False,
        },
    ]
    footer = truncate(
        f"Review by {review.author} · {review.published.isoformat()}", EMBED_FOOTER_LIMIT
    )
    title = _plain_title(episode, titles)
    used = len(title) + len(footer) + sum(len(f["name"]) + len(f["value"]) for f in fields)
    budget = min(EMBED_DESCRIPTION_LIMIT, EMBED_TOTAL_LIMIT - used)
    embed: EmbedData = {
        "title": title,
        "description": truncate(review.body, budget),
        "color": EMBARGO_COLOUR,
        "fields": fields,
        "footer": {"text": footer},
    }
    return OutgoingMessage(embeds=(embed,))


# -- /ending ----------------------------------------------------------------------------------


def _window_phrase(decision: Decision) -> str:
    if decision.window_ends_at is None:
        return "Spoilers for it stay hidden here for good"
    ends = decision.window_ends_at
    return f"Spoilers stay hidden here until {timestamp(ends)} ({timestamp(ends, 'R')})"


def ending_messages(
    episode: Episode, review: Review | None, decision: Decision, titles: TitleRule
) -> list[OutgoingMessage]:
    """The reply to /ending (or the reveal button) for a decision the policy already made."""
    heading = episode_heading(episode, titles)
    if decision.delivery is Delivery.UNRELEASED:
        release = decision.release_at
        return [
            OutgoingMessage(
                content=(
                    f"{heading} isn't out yet: it's released {timestamp(release)} "
                    f"({timestamp(release, 'R')}). The ending explained unlocks then."
                ),
                ephemeral=True,
            )
        ]
    if review is None or not review.ending:
        return [
            OutgoingMessage(
                content=f"There's no ending explained for {heading} yet.", ephemeral=True
            )
        ]
    if decision.delivery is Delivery.REFUSED:
        return [
            OutgoingMessage(
                content=(
                    f"This server doesn't post spoilers for {heading} yet. "
                    f"{_window_phrase(decision)}. Ask again then, or in a spoilers-ok channel."
                ),
                ephemeral=True,
            )
        ]
    if decision.delivery is Delivery.PLAIN:
        header = f"## Ending explained: {heading}"
        return [
            OutgoingMessage(content=text) for text in plain_messages(review.ending, header=header)
        ]
    why = "Shown only to you because you've marked it watched. " if decision.because_watched else ""
    header = (
        f"## Ending explained: {heading}\n"
        f"-# {why}{_window_phrase(decision)}. Click the black bars to reveal."
    )
    ephemeral = decision.delivery is Delivery.PRIVATE
    return [
        OutgoingMessage(content=text, ephemeral=ephemeral)
        for text in spoiler_messages(review.ending, header=header)
    ]


def reveal_privately(messages: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
    """The reveal button always answers only the person who clicked."""
    return [OutgoingMessage(content=m.content, embeds=m.embeds, ephemeral=True) for m in messages]


# -- /spoilers and /embargo settings -----------------------------------------------------------


def _describe_window(window: SpoilerWindow) -> str:
    if window.is_forever:
        return "**forever** (spoilers never open in plain sight)"
    if window.is_off:
        return "**off** (spoilers are plain as soon as an episode is out)"
    return f"**{window.describe()}** after release"


def _settings_fields(spoilers: SpoilerSettings, show_titles: dict[str, str]) -> list[EmbedField]:
    overrides = [
        f"{escape_inline(show_titles.get(slug, slug))}: {window.describe()}"
        for slug, window in spoilers.show_windows
    ]
    channels = [f"<#{channel_id}>" for channel_id in sorted(spoilers.spoilers_ok_channels)]
    return [
        {"name": "Spoiler window", "value": _describe_window(spoilers.window), "inline": False},
        {"name": "Mode", "value": f"**{spoilers.mode.value}**", "inline": True},
        {
            "name": "Per-show windows",
            "value": truncate("\n".join(overrides) or "none", EMBED_FIELD_VALUE_LIMIT),
            "inline": False,
        },
        {
            "name": "Spoilers-ok channels",
            "value": truncate(" ".join(channels) or "none", EMBED_FIELD_VALUE_LIMIT),
            "inline": False,
        },
    ]


def spoiler_rules_message(
    spoilers: SpoilerSettings,
    show_titles: dict[str, str],
    *,
    in_guild: bool,
    episode: Episode | None = None,
    decision: Decision | None = None,
    titles: TitleRule,
    extra_fields: Sequence[EmbedField] = (),
) -> OutgoingMessage:
    where = "this server" if in_guild else "direct messages (the default rules)"
    description = f"How Embargo hides endings in {where}."
    if episode is not None and decision is not None:
        heading = episode_heading(episode, titles, Surface.EMBED)
        description = f"{heading}: {_episode_status(decision)}\n\n{description}"
    embed: EmbedData = {
        "title": "Spoiler rules",
        "description": description,
        "color": EMBARGO_COLOUR,
        "fields": [*_settings_fields(spoilers, show_titles), *extra_fields],
    }
    return OutgoingMessage(embeds=(embed,), ephemeral=True)


def _episode_status(decision: Decision) -> str:
    release = decision.release_at
    ends = decision.window_ends_at
    if decision.delivery is Delivery.UNRELEASED:
        opens = (
            "never in plain sight"
            if ends is None
            else f"{timestamp(ends)} ({timestamp(ends, 'R')})"
        )
        return f"released {timestamp(release)}; spoilers open here {opens}."
    if decision.delivery is Delivery.PLAIN:
        return f"spoilers are open here ({decision.reason})."
    if ends is None:
        return "spoilers stay hidden here for good."
    return f"spoilers stay hidden here until {timestamp(ends)} ({timestamp(ends, 'R')})."


def settings_message(
    settings: GuildSettings,
    show_titles: dict[str, str],
    extra_fields: Sequence[EmbedField] = (),
) -> OutgoingMessage:
    """The moderators' overview; ``extra_fields`` are other features' settings, as embed
    fields their own message modules build."""
    fields = _settings_fields(settings.spoilers, show_titles)
    fields.append({"name": "Minimum votes (m)", "value": str(settings.min_votes), "inline": True})
    fields.append(
        {
            "name": "Member age to vote",
            "value": f"{settings.min_member_days} days",
            "inline": True,
        }
    )
    fields += extra_fields
    embed: EmbedData = {
        "title": "Embargo settings",
        "description": "Change these with `/embargo …` (Manage Server required).",
        "color": EMBARGO_COLOUR,
        "fields": fields,
    }
    return OutgoingMessage(embeds=(embed,), ephemeral=True)


def change_message(setting: str, old: str, new: str) -> OutgoingMessage:
    if old == new:
        text = f"{setting} was already **{new}**; nothing changed."
    else:
        text = f"{setting}: **{old}** → **{new}**. Saved."
    return OutgoingMessage(content=text, ephemeral=True)


def unknown_episode_text(query: str, suggestions: Sequence[Episode], titles: TitleRule) -> str:
    shown = echo(query)
    if not suggestions:
        return f"I couldn't find an episode matching “{shown}”. Try a title or a code like `s7e6`."
    lines = "\n".join(f"- {episode_label(e, titles, Surface.CONTENT)}" for e in suggestions)
    return f"I couldn't find an episode matching “{shown}”. Did you mean:\n{lines}"


def unknown_show_text(query: str, suggestions: Sequence[Show]) -> str:
    hint = (
        " Did you mean: " + ", ".join(escape_inline(show.title) for show in suggestions) + "?"
        if suggestions
        else ""
    )
    return f"I don't know a show called “{echo(query)}”.{hint}"


# -- channel permissions ----------------------------------------------------------------------

# The channel permissions a reply can need, by discord.py's flag name, as Discord's channel
# settings name them (what a moderator looks for).
PERMISSION_NAMES = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "send_messages_in_threads": "Send Messages in Threads",
    "embed_links": "Embed Links",
    "attach_files": "Attach Files",
    "create_public_threads": "Create Public Threads",
}


def permissions_needed(
    messages: Sequence[OutgoingMessage], *, with_file: bool = False, in_thread: bool = False
) -> list[str]:
    """The channel permissions Embargo needs to send ``messages`` in order, the first as the
    interaction's response and the rest as follow-ups (``with_file``: the first carries an
    attachment). Ephemeral messages need none: only the member sees them."""
    needed: list[str] = []
    for index, message in enumerate(messages):
        if message.ephemeral:
            continue
        wanted = []
        if index > 0:
            wanted.append("send_messages_in_threads" if in_thread else "send_messages")
        if message.embeds:
            wanted.append("embed_links")
        if with_file and index == 0:
            wanted.append("attach_files")
        needed += [name for name in wanted if name not in needed]
    return needed


def missing_permissions_text(missing: Sequence[str]) -> str:
    """What a member is told when Embargo lacks channel permissions for its reply."""
    names = [
        f"**{PERMISSION_NAMES.get(name, name.replace('_', ' ').title())}**" for name in missing
    ]
    if not names:
        return (
            "Discord refused Embargo's reply in this channel: a moderator should check "
            "Embargo's permissions here (channel settings → Permissions). Nothing was posted."
        )
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return (
        f"Embargo needs {listed} in this channel to post this reply. Ask a moderator to give "
        "Embargo's role that permission here (channel settings → Permissions), or try "
        "another channel. Nothing was posted."
    )


def too_long_text(what: str, limit: int, length: int) -> str:
    # Never echoes the value: a long echo would itself be refused by Discord.
    return (
        f"That's too long for {what}: at most {limit} characters, and this has {length:,}. "
        "Nothing was changed."
    )
