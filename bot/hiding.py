"""Hiding a member's message as a spoiler: who may, and whether a message can be reposted.

Plain data in, plain data out: the cog turns the Discord message into a ``HideSource`` and the
invoker into a ``Hider``, and sends what ``bot.hiding_messages`` renders. Nothing here deletes
anything: the cog deletes the original only after the repost is confirmed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum

# Discord's limits on a webhook's display name.
WEBHOOK_NAME_LIMIT = 80
# Discord refuses a webhook name containing these words.
_FORBIDDEN_NAME_WORDS = re.compile(r"discord|clyde", re.IGNORECASE)
SPOILER_PREFIX = "SPOILER_"
# Discord refuses a message whose upload, its files and its own fields together, is larger than
# the server's upload limit: this much of the limit is kept for the fields (up to 2,000
# characters, escaped as JSON) and the multipart framing of up to ten files.
UPLOAD_HEADROOM = 32 * 1024
MAX_FILES_PER_MESSAGE = 10


@dataclass(frozen=True, slots=True)
class SourceAttachment:
    filename: str
    size: int


@dataclass(frozen=True, slots=True)
class HideSource:
    """The message to hide, as far as the decision needs it."""

    author_id: int
    text: str  # a forwarded message's text is its snapshot's
    attachments: tuple[SourceAttachment, ...] = ()
    # Embeds a bot or an app posted ("rich"), which no repost can carry; a member's link
    # previews come back from the repost's links and don't count.
    rich_embeds: int = 0
    stickers: int = 0  # no webhook can send a sticker
    poll: bool = False  # a repost would lose its votes
    system: bool = False  # a join, a pin, a boost...: not a member's words
    from_embargo: bool = False  # already one of Embargo's reposts or replies
    reply_url: str | None = None  # the message it answered


@dataclass(frozen=True, slots=True)
class Hider:
    user_id: int
    role_ids: frozenset[int]
    manage_messages: bool  # in that channel


class GuardMode(StrEnum):
    OFF = "off"
    FLAG = "flag"  # a short reply to the author, then a log entry
    HIDE = "hide"  # what "Hide as spoiler" does, automatically


@dataclass(frozen=True, slots=True)
class MemberSpoilerSettings:
    helper_role_id: int | None = None
    log_channel_id: int | None = None
    guard_mode: GuardMode = GuardMode.OFF
    guard_ignored: frozenset[int] = frozenset()


class Refusal(Enum):
    NOT_ALLOWED = "not_allowed"
    SYSTEM_MESSAGE = "system_message"
    ALREADY_HIDDEN = "already_hidden"
    NOTHING_TO_HIDE = "nothing_to_hide"  # no text, no files: only embeds (another bot's)
    ATTACHMENT_TOO_LARGE = "attachment_too_large"
    STICKER = "sticker"
    POLL = "poll"
    EMBEDS = "embeds"  # text along with a bot's embeds: the repost would lose them


@dataclass(frozen=True, slots=True)
class CannotHide:
    refusal: Refusal
    detail: str = ""  # the attachment's name, for ATTACHMENT_TOO_LARGE


def may_hide(hider: Hider, author_id: int, helper_role_id: int | None) -> bool:
    """Members with Manage Messages in the channel, the message's author, and holders of the
    server's spoiler helpers role."""
    return (
        hider.manage_messages
        or hider.user_id == author_id
        or (helper_role_id is not None and helper_role_id in hider.role_ids)
    )


def check_hideable(source: HideSource, *, upload_limit: int) -> CannotHide | None:
    """Why the message can't be reposted as a spoiler (None: it can). ``upload_limit`` is the
    largest file Embargo may upload in that server, in bytes."""
    if source.system:
        return CannotHide(Refusal.SYSTEM_MESSAGE)
    if source.from_embargo:
        return CannotHide(Refusal.ALREADY_HIDDEN)
    if source.poll:
        return CannotHide(Refusal.POLL)
    if source.stickers:
        return CannotHide(Refusal.STICKER)
    if not has_visible_text(source.text) and not source.attachments:
        return CannotHide(Refusal.NOTHING_TO_HIDE)
    if source.rich_embeds:
        return CannotHide(Refusal.EMBEDS)
    for attachment in source.attachments:
        if attachment.size > upload_limit - UPLOAD_HEADROOM:
            return CannotHide(Refusal.ATTACHMENT_TOO_LARGE, attachment.filename)
    return None


def upload_groups(sizes: Sequence[int], upload_limit: int) -> list[list[int]]:
    """The attachments (by index, in the member's order) split into the uploads of the
    repost's messages: as many files in each as fit within ``upload_limit`` and Discord's
    ten per message. Every file must fit on its own (``check_hideable``)."""
    room = upload_limit - UPLOAD_HEADROOM
    groups: list[list[int]] = []
    used = 0
    for index, size in enumerate(sizes):
        if not groups or used + size > room or len(groups[-1]) == MAX_FILES_PER_MESSAGE:
            groups.append([])
            used = 0
        groups[-1].append(index)
        used += size
    return groups


def has_visible_text(text: str) -> bool:
    return any(not ch.isspace() for ch in text)


def spoiler_filename(filename: str) -> str:
    """The name Discord's clients blur an attachment by."""
    return filename if filename.startswith(SPOILER_PREFIX) else SPOILER_PREFIX + filename


def webhook_name(display_name: str) -> str:
    """The author's server display name as a webhook may carry it: one line, at most Discord's
    length, without the words Discord refuses in a webhook's name."""
    flat = " ".join("".join(ch for ch in display_name if ch.isprintable()).split())
    cleaned = " ".join(_FORBIDDEN_NAME_WORDS.sub("", flat).split())
    return cleaned[:WEBHOOK_NAME_LIMIT].strip() or "member"
