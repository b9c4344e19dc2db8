"""What hiding a message as a spoiler shows: the repost, the invoker's replies and the log
entry, built as plain data.

The repost is the member's whole text rendered by ``bot.spoilers.render.spoiler_messages``, the
same leak rules as endings: no character readable outside tags, links wrapped so they can't
unfurl. Mentions never ping (everything Embargo sends disables them), and names are echoed as
literal text. The log entry links to the repost and never quotes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.hiding import CannotHide, GuardMode, MemberSpoilerSettings, Refusal, has_visible_text
from bot.messages import EmbedField, OutgoingMessage, echo, timestamp
from bot.spoilers.render import (
    DISCORD_MESSAGE_LIMIT,
    EMBED_FIELD_VALUE_LIMIT,
    escape_inline,
    spoiler_messages,
    truncate,
)

# How much of a display name the "hidden by" line repeats.
NAME_ECHO_LIMIT = 40

# The channel permissions hiding needs, as Discord's channel settings name them.
HIDE_PERMISSION_NAMES = {
    "manage_webhooks": "Manage Webhooks",
    "manage_messages": "Manage Messages",
    "attach_files": "Attach Files",
    "view_channel": "View Channel",
    "read_message_history": "Read Message History",
}
HIDE_PERMISSIONS = ("view_channel", "manage_webhooks", "manage_messages")
# Discord's JSON error code for an upload over the limit.
REQUEST_TOO_LARGE = 40005


def hidden_by_line(hider_name: str, *, automatic: bool = False) -> str:
    if automatic:
        return "-# hidden as a spoiler by Embargo's guard"
    return f"-# hidden as a spoiler by {echo(hider_name, NAME_ECHO_LIMIT)}"


@dataclass(frozen=True, slots=True)
class RepostPart:
    """One message of a repost: its content and the attachments it uploads (indexes into the
    original's attachments)."""

    content: str
    files: tuple[int, ...] = ()


def repost_parts(
    text: str,
    *,
    hider_name: str,
    reply_url: str | None = None,
    automatic: bool = False,
    uploads: Sequence[Sequence[int]] = (),
    limit: int = DISCORD_MESSAGE_LIMIT,
) -> list[RepostPart]:
    """The repost's messages, in order: the reply's jump link first, the text wrapped in
    spoiler tags (split within Discord's limit), the first of ``uploads`` (``upload_groups``)
    with the last of them and each further upload in a message of its own; the "hidden by"
    line ends the last message."""
    footer = hidden_by_line(hider_name, automatic=automatic)
    header = f"-# ↪ reply to <{reply_url}>" if reply_url else ""
    if has_visible_text(text):
        contents = spoiler_messages(text, header=header, limit=limit - len(footer) - 1)
    else:
        contents = [header] if header else []
    parts = [RepostPart(content) for content in contents]
    for index, files in enumerate(uploads):
        if index == 0 and parts:
            parts[-1] = RepostPart(parts[-1].content, tuple(files))
        else:
            parts.append(RepostPart("", tuple(files)))
    last = parts.pop() if parts else RepostPart("")
    parts.append(RepostPart(f"{last.content}\n{footer}" if last.content else footer, last.files))
    return parts


def hidden_message(jump_url: str) -> OutgoingMessage:
    return OutgoingMessage(content=f"Hidden: <{jump_url}>", ephemeral=True)


def refusal_message(problem: CannotHide, *, upload_limit: int = 0) -> OutgoingMessage:
    texts = {
        Refusal.NOT_ALLOWED: (
            "You can hide your own messages. Hiding someone else's needs **Manage Messages** "
            "in this channel or the server's spoiler helpers role. Nothing was changed."
        ),
        Refusal.SYSTEM_MESSAGE: (
            "That's a system message, not a member's words: there is nothing to hide. "
            "Nothing was changed."
        ),
        Refusal.ALREADY_HIDDEN: "That message is already Embargo's: nothing was changed.",
        Refusal.NOTHING_TO_HIDE: (
            "That message has no text or files Embargo can repost (only embeds from another "
            "bot), so it was left as it was."
        ),
        Refusal.STICKER: (
            "Embargo can't repost a sticker (no webhook can send one), so hiding that message "
            "would lose it: the message was left as it was."
        ),
        Refusal.POLL: (
            "A poll can't be reposted without losing its votes, so the message was left as it was."
        ),
        Refusal.EMBEDS: (
            "That message carries embeds (another bot's or an app's), which Embargo can't "
            "repost, so hiding it would lose them: the message was left as it was."
        ),
        Refusal.ATTACHMENT_TOO_LARGE: (
            f"The attachment “{echo(problem.detail, 60)}” is larger than Embargo may upload "
            f"here ({upload_limit // (1024 * 1024)} MiB), so it can't be reposted as a "
            "spoiler. The message was left as it was."
        ),
    }
    return OutgoingMessage(content=texts[problem.refusal], ephemeral=True)


def missing_hide_permissions_message(missing: Sequence[str]) -> OutgoingMessage:
    names = [f"**{HIDE_PERMISSION_NAMES.get(n, n.replace('_', ' ').title())}**" for n in missing]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return OutgoingMessage(
        content=(
            f"Embargo needs {listed} in this channel to hide a message as a spoiler (it reposts "
            "the message through a webhook, then deletes the original). Ask a moderator to "
            "give Embargo's role that permission here (channel settings → Permissions). The "
            "message was left as it was."
        ),
        ephemeral=True,
    )


def message_gone_message() -> OutgoingMessage:
    return OutgoingMessage(
        content="That message was deleted before Embargo could hide it: nothing was posted.",
        ephemeral=True,
    )


def repost_refused_message(
    reason: str, *, part: int = 1, parts: int = 1, left_behind: Sequence[str] = ()
) -> OutgoingMessage:
    """Discord refused part ``part`` of ``parts`` of the repost; the parts before it were
    withdrawn, except ``left_behind`` (their links), and the original was kept."""
    what = "the spoiler repost" if parts == 1 else f"part {part} of {parts} of the spoiler repost"
    removed = ""
    if left_behind:
        links = " ".join(f"<{url}>" for url in left_behind)
        removed = (
            f" Embargo could not remove what it had already posted of it: delete {links} by hand."
        )
    elif part > 1:
        removed = " The parts already posted were removed."
    return OutgoingMessage(
        content=f"Discord refused {what}: {reason}.{removed} The message was left as it was.",
        ephemeral=True,
    )


def discord_refusal_reason(status: int, code: int, text: str) -> str:
    """Why Discord refused a part of a repost, for the moderator who asked."""
    if status == 413 or code == REQUEST_TOO_LARGE:
        return "its files are larger than Discord lets Embargo upload in this server"
    if status == 403:
        return (
            "Embargo lacks a permission there (it needs **Manage Webhooks** and "
            "**Manage Messages** in this channel)"
        )
    return f"Discord answered {status} ({echo(text, 100) or 'no reason given'})"


def already_being_hidden_message() -> OutgoingMessage:
    return OutgoingMessage(
        content="Embargo is hiding that message already: nothing more to do.", ephemeral=True
    )


def kept_changing_message() -> OutgoingMessage:
    return OutgoingMessage(
        content=(
            "That message was edited each time Embargo reposted it, so it was left as it was "
            "(nothing of the repost stays). Try again once it has settled."
        ),
        ephemeral=True,
    )


def original_kept_message(jump_url: str) -> OutgoingMessage:
    return OutgoingMessage(
        content=(
            f"The spoiler repost is up (<{jump_url}>) but Discord refused to delete the original: "
            "Embargo needs **Manage Messages** in this channel. Delete the original by hand."
        ),
        ephemeral=True,
    )


def hide_log_message(
    *, hider_id: int | None, author_id: int, channel_id: int, jump_url: str
) -> OutgoingMessage:
    """The log channel's entry: who hid whose message where, with a link; never the text."""
    who = "Embargo's guard" if hider_id is None else f"<@{hider_id}>"
    return OutgoingMessage(
        content=f"🙈 {who} hid a message by <@{author_id}> in <#{channel_id}> as a spoiler: "
        f"<{jump_url}>"
    )


# -- the guard -----------------------------------------------------------------------------------


def guard_episode_name(show_title: str, short_code: str) -> str:
    """The episode as the guard names it: the show and its code, never the episode's title
    (a title may itself spoil)."""
    return f"{escape_inline(show_title)} {short_code}"


def flag_message(label: str, window_end: datetime | None) -> OutgoingMessage:
    """The guard's short reply to a member whose message shows an active episode's terms."""
    until = (
        "whose spoilers stay hidden here for good"
        if window_end is None
        else f"whose spoiler window here runs until {timestamp(window_end)}"
    )
    return OutgoingMessage(
        content=f"That looks like a spoiler for {label}, {until}: wrap it in `||…||`."
    )


def guard_log_message(
    *, hidden: bool, author_id: int, channel_id: int, label: str, jump_url: str
) -> OutgoingMessage:
    """The log entry for the guard's flag (a hide logs ``hide_log_message``); never the text."""
    what = "hid" if hidden else "flagged"
    return OutgoingMessage(
        content=f"🚩 Embargo's guard {what} a message by <@{author_id}> in <#{channel_id}> "
        f"(spoiler terms of {label}): <{jump_url}>"
    )


def guard_unavailable_message() -> OutgoingMessage:
    return OutgoingMessage(
        content=(
            "The guard reads members' messages, which needs Discord's **Message Content** "
            "intent, and this Embargo doesn't ask for it. Whoever runs Embargo can turn it on: "
            "set `MESSAGE_GUARD=on` in `.env`, tick Message Content in the developer portal "
            "(Bot → Privileged Gateway Intents) and restart. Nothing was changed."
        ),
        ephemeral=True,
    )


def guard_settings_fields(
    settings: MemberSpoilerSettings, *, guard_available: bool
) -> list[EmbedField]:
    """The members' spoilers part of /embargo settings."""
    mode = f"**{settings.guard_mode.value}**"
    if not guard_available and settings.guard_mode is not GuardMode.OFF:
        mode += " (inactive: Embargo runs without the Message Content intent)"
    ignored = " ".join(f"<#{channel}>" for channel in sorted(settings.guard_ignored)) or "none"
    return [
        {"name": "Guard", "value": mode, "inline": True},
        {
            "name": "Guard ignores",
            "value": truncate(ignored, EMBED_FIELD_VALUE_LIMIT),
            "inline": True,
        },
        {
            "name": "Spoiler helpers",
            "value": "none"
            if settings.helper_role_id is None
            else f"<@&{settings.helper_role_id}>",
            "inline": True,
        },
        {
            "name": "Spoiler log",
            "value": "off" if settings.log_channel_id is None else f"<#{settings.log_channel_id}>",
            "inline": True,
        },
    ]
