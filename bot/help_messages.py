"""/help and /about, as plain data: what Embargo does, the commands a member can use where they
asked, the spoiler rules there, and what Embargo keeps about a server and for how long."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.messages import EMBARGO_COLOUR, EmbedData, EmbedField, OutgoingMessage
from bot.retention import RETENTION_DAYS
from bot.spoilers.durations import SpoilerWindow
from bot.spoilers.policy import SpoilerMode, SpoilerSettings
from bot.spoilers.render import (
    EMBED_DESCRIPTION_LIMIT,
    EMBED_FIELD_VALUE_LIMIT,
    EMBED_FOOTER_LIMIT,
    EMBED_TOTAL_LIMIT,
    escape_inline,
    truncate,
)

# An embed holds at most this many fields.
EMBED_FIELD_COUNT_LIMIT = 25

WHAT_EMBARGO_DOES = (
    "Embargo keeps TV episode talk spoiler-safe.\n"
    "Read an episode's spoiler-free review with `/review`, and its ending explained with "
    "`/ending`, hidden as this server's spoiler rules say.\n"
    "Vote on episodes and see the community's rankings with `/vote` and `/rankings`."
)

_MODE_LINES = {
    SpoilerMode.TAGGED: "endings are posted behind spoiler tags",
    SpoilerMode.PRIVATE: "endings are shown only to the member who asks",
    SpoilerMode.REFUSE: "endings are not shown until the window ends",
}


@dataclass(frozen=True, slots=True)
class CommandOption:
    name: str
    required: bool


@dataclass(frozen=True, slots=True)
class CommandHelp:
    """One command a member can run, as /help lists it."""

    name: str  # "spoilers", or "embargo window" for a subcommand
    description: str
    options: tuple[CommandOption, ...] = ()
    moderator: bool = False  # needs Manage Server

    @property
    def usage(self) -> str:
        options = "".join(
            f" {option.name}:" if option.required else f" [{option.name}:]"
            for option in self.options
        )
        return f"/{self.name}{options}"


def _window_line(window: SpoilerWindow) -> str:
    if window.is_forever:
        return "forever: endings never open in plain sight"
    if window.is_off:
        return "off: endings are plain as soon as an episode is out"
    return f"{window.describe()} after each episode's release"


def spoiler_rule_lines(
    spoilers: SpoilerSettings, show_titles: dict[str, str], *, in_guild: bool
) -> list[str]:
    """The rules where /help was asked, one line each."""
    lines = [
        f"**Spoiler window:** {_window_line(spoilers.window)}",
        f"**While it runs:** {_MODE_LINES[spoilers.mode]} (`{spoilers.mode.value}`)",
    ]
    if spoilers.show_windows:
        shows = "; ".join(
            f"{escape_inline(show_titles.get(slug, slug))}: {window.describe()}"
            for slug, window in spoilers.show_windows
        )
        lines.append(f"**Per-show windows:** {shows}")
    elif in_guild:
        lines.append("**Per-show windows:** none")
    if in_guild:
        channels = " ".join(
            f"<#{channel_id}>" for channel_id in sorted(spoilers.spoilers_ok_channels)
        )
        lines.append(f"**Spoilers-ok channels:** {channels or 'none'}")
    return lines


def _command_line(command: CommandHelp) -> str:
    # Descriptions are Embargo's own (declared with each command), usage is built from the
    # command tree: neither comes from a member.
    return f"`{command.usage}`: {command.description}"


def _packed_fields(name: str, lines: Sequence[str]) -> list[EmbedField]:
    """``lines`` as few fields as fit Discord's field limit, a line never split across two."""
    fields: list[EmbedField] = []
    current: list[str] = []
    size = 0
    for line in lines:
        line = truncate(line, EMBED_FIELD_VALUE_LIMIT)
        if current and size + 1 + len(line) > EMBED_FIELD_VALUE_LIMIT:
            fields.append({"name": name, "value": "\n".join(current), "inline": False})
            name, current, size = f"{name} (more)", [], 0
        size += len(line) + (1 if current else 0)
        current.append(line)
    if current:
        fields.append({"name": name, "value": "\n".join(current), "inline": False})
    return fields


def _fitted(embed: EmbedData, fields: list[EmbedField]) -> EmbedData:
    """Keep fields in order while the embed stays within Discord's total and count limits."""
    used = len(embed.get("title", "")) + len(embed.get("description", ""))
    if "footer" in embed:
        used += len(embed["footer"]["text"])
    kept = []
    for field in fields[:EMBED_FIELD_COUNT_LIMIT]:
        size = len(field["name"]) + len(field["value"])
        if used + size > EMBED_TOTAL_LIMIT:
            break
        used += size
        kept.append(field)
    return {**embed, "fields": kept}


def help_message(
    commands: Sequence[CommandHelp],
    spoilers: SpoilerSettings,
    show_titles: dict[str, str],
    *,
    in_guild: bool,
    version: str,
) -> OutgoingMessage:
    """The /help reply: for this member, here. Moderator commands are listed only when
    ``commands`` holds them (the caller passes what the member may run)."""
    everyone = sorted((c for c in commands if not c.moderator), key=lambda c: c.name)
    moderators = sorted((c for c in commands if c.moderator), key=lambda c: c.name)
    fields = _packed_fields("Your commands", [_command_line(c) for c in everyone])
    if moderators:
        fields += _packed_fields(
            "Moderator commands (Manage Server)", [_command_line(c) for c in moderators]
        )
    where = "Spoiler rules in this server" if in_guild else "Spoiler rules in DMs (the defaults)"
    fields += _packed_fields(where, spoiler_rule_lines(spoilers, show_titles, in_guild=in_guild))
    embed: EmbedData = {
        "title": "Embargo help",
        "description": truncate(WHAT_EMBARGO_DOES, EMBED_DESCRIPTION_LIMIT),
        "color": EMBARGO_COLOUR,
        "footer": {
            "text": truncate(f"Embargo {version} · /about for data and source", EMBED_FOOTER_LIMIT)
        },
    }
    return OutgoingMessage(embeds=(_fitted(embed, fields),), ephemeral=True)


STORED_DATA = (
    "- **Per server that changed a setting:** the settings `/embargo settings` shows, "
    "including the ids of spoilers-ok channels, announce channels and watch roles.\n"
    "- **Per vote:** the server id, your user id, the episode, the score and when you gave it. "
    "`/unvote` deletes a vote; `/myvotes` shows yours.\n"
    "- **Your watch progress:** your user id and the episodes you marked watched, with when "
    "(the same in every server and DM). `/progress` shows it; `/unwatched` removes marks.\n"
    "- **Watch roles Embargo gave you:** the server and role, to take them back when a new "
    "episode comes out.\n"
    "- **`/forget-me`** deletes your watch progress and your votes in every server at once.\n"
    "- **Nothing else about members:** no names, no messages (Embargo can't read them), and "
    "your join date is only checked, never kept."
)
RETENTION = (
    f"Everything above is kept while Embargo is in the server. If it is removed, the server's "
    f"settings and votes are kept for **{RETENTION_DAYS} days**, so inviting it back restores "
    "them, and then deleted for good."
)


def about_message(*, version: str, source_url: str | None) -> OutgoingMessage:
    source = (
        f"<{source_url}>"
        if source_url
        else "not published by the people who run this bot (they can set `SOURCE_URL`)"
    )
    embed: EmbedData = {
        "title": "About Embargo",
        "description": truncate(
            f"Embargo **{version}**: spoiler-safe TV episode discussion.\nSource: {source}",
            EMBED_DESCRIPTION_LIMIT,
        ),
        "color": EMBARGO_COLOUR,
        "fields": [
            {"name": "What Embargo stores", "value": STORED_DATA, "inline": False},
            {"name": "For how long", "value": RETENTION, "inline": False},
        ],
    }
    return OutgoingMessage(embeds=(embed,), ephemeral=True)
