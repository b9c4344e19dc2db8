"""What the episode discussion shows: release posts, thread names and first messages,
window-closed posts, ``/upcoming`` pages and the announce settings, built as plain data.

The leak rules of ``bot.messages`` hold here too: no review or ending text is ever read, and an
episode title marked as spoiling (``title_spoils``) is spoiler content until the episode's window
ends in the server: it reaches message content only inside spoiler tags (through
``bot.spoilers.render``), and never an embed, a thread name or a button label. Content-file text is
escaped as literal text, and a release post can mention only the one role it is given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.calendar import (
    LATE_NOTICE_AFTER,
    AnnounceSettings,
    AnnounceTarget,
    LedgerEntry,
    PostKey,
    PostState,
)
from bot.content.models import Episode
from bot.messages import (
    EMBARGO_COLOUR,
    PERMISSION_NAMES,
    TITLE_LIMIT,
    EmbedData,
    EmbedField,
    OutgoingMessage,
    Surface,
    episode_title,
    timestamp,
)
from bot.spoilers.durations import format_timedelta
from bot.spoilers.policy import title_open
from bot.spoilers.render import EMBED_FIELD_VALUE_LIMIT, escape_inline, truncate

# Discord's limit on a thread's (and a forum post's) name.
THREAD_NAME_LIMIT = 100
UPCOMING_PAGE_SIZE = 10
_THREAD_SUFFIX = " · spoilers"
# A thread name keeps the title only if at least this much of it fits.
_MIN_TITLE_IN_NAME = 12
# Characters a channel name cannot usefully show: controls, and line or paragraph separators.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


_THREAD_WELCOME = (
    "Spoilers are welcome here. If you haven't watched this episode yet, leave the thread now: "
    "nothing in here is hidden."
)
_FORUM_WELCOME = (
    "Spoilers are welcome in the replies to this post. If you haven't watched this episode yet, "
    "don't read them."
)


@dataclass(frozen=True, slots=True)
class ReleasePost:
    """The release post, the thread opened from it, and the thread's first message."""

    message: OutgoingMessage
    ping_role_id: int | None  # the only mention the post may make (allowed_mentions)
    thread_name: str  # in a forum, the forum post's name
    # None in a forum: the post is the thread's first message and carries the welcome itself.
    thread_message: OutgoingMessage | None


def title_hidden(title_spoils: bool, window_ends_at: datetime | None, now: datetime) -> bool:
    """Whether the episode's title must stay out of plain sight here now: a spoiling title is
    hidden until the episode's spoiler window in this server ends (forever: always)."""
    return not title_open(title_spoils=title_spoils, window_ends_at=window_ends_at, now=now)


def _heading(episode: Episode) -> str:
    return f"**{escape_inline(truncate(episode.show_title, TITLE_LIMIT))} {episode.short_code}**"


def _title_line(episode: Episode, hidden: bool) -> str:
    """The episode title for message content: escaped, or inside spoiler tags when hidden."""
    if not episode.title.strip():
        return ""
    title = episode_title(episode, shown=not hidden, surface=Surface.CONTENT)
    return f"Title (spoiler): {title}" if hidden else f"*{title}*"


def _spoilers_phrase(window_ends_at: datetime | None, now: datetime) -> str:
    if window_ends_at is None:
        return "Spoilers stay hidden in this server for good."
    if window_ends_at <= now:
        return "Spoilers are open now in this server."
    return (
        f"Spoilers stay hidden in this server until {timestamp(window_ends_at)} "
        f"({timestamp(window_ends_at, 'R')})."
    )


def release_post(
    episode: Episode,
    *,
    title_spoils: bool,
    window_ends_at: datetime | None,
    now: datetime,
    ping_role_id: int | None = None,
    late_by: timedelta = timedelta(0),
    forum: bool = False,
) -> ReleasePost:
    """The post made when an episode is released, in the server's announce channel.

    ``window_ends_at`` is when spoilers open in this server (None: never; the release instant
    when the window is off). ``late_by`` is non-zero when the post is a catch-up. In a
    ``forum`` channel the post opens a forum post whose replies are the discussion.
    """
    hidden = title_hidden(title_spoils, window_ends_at, now)
    release = episode.release_at
    lines = []
    if ping_role_id is not None:
        lines.append(f"<@&{ping_role_id}>")
    lines.append(f"## New episode: {_heading(episode)}")
    if title := _title_line(episode, hidden):
        lines.append(title)
    lines.append(f"Released {timestamp(release)} ({timestamp(release, 'R')}).")
    lines.append(_spoilers_phrase(window_ends_at, now))
    lines.append(_FORUM_WELCOME if forum else "Talk about it in the spoiler thread.")
    if late_by > timedelta(0):
        lines.append(f"-# Posted {format_timedelta(late_by)} late: Embargo was offline at release.")
    first = None
    if not forum:
        first = thread_message(
            episode, title_spoils=title_spoils, window_ends_at=window_ends_at, now=now
        )
    return ReleasePost(
        message=OutgoingMessage(content="\n".join(lines)),
        ping_role_id=ping_role_id,
        thread_name=thread_name(episode, title_spoils=title_spoils),
        thread_message=first,
    )


def thread_name(episode: Episode, *, title_spoils: bool) -> str:
    """``<Show> S7E6 · <Title> · spoilers``, within Discord's 100 characters.

    A thread name can't hide text, and it outlives the window, so a spoiling title is never in
    it. The title is cut first, then the show's name; the code and the suffix always stay.
    Names are shown as written (Discord renders no markup in them), so nothing is escaped; cuts
    never leave a dangling backslash or half a markup pair.
    """
    show = _name_text(episode.show_title)
    code = episode.short_code
    title = "" if title_spoils else _name_text(episode.title)
    fixed = f" {code}{_THREAD_SUFFIX}"
    if title:
        name = f"{show} {code} · {title}{_THREAD_SUFFIX}"
        if len(name) <= THREAD_NAME_LIMIT:
            return name
        room = THREAD_NAME_LIMIT - len(f"{show} {code} · {_THREAD_SUFFIX}")
        if room >= _MIN_TITLE_IN_NAME:
            return f"{show} {code} · {truncate(title, room)}{_THREAD_SUFFIX}"
    room = THREAD_NAME_LIMIT - len(fixed)
    return f"{truncate(show, room) if show else 'Episode'}{fixed}"


def _name_text(text: str) -> str:
    return " ".join(_UNPRINTABLE.sub(" ", text).split())


def thread_message(
    episode: Episode, *, title_spoils: bool, window_ends_at: datetime | None, now: datetime
) -> OutgoingMessage:
    """The first message in the discussion thread."""
    hidden = title_hidden(title_spoils, window_ends_at, now)
    lines = [f"**Spoiler thread for {_heading(episode)}.**"]
    if title := _title_line(episode, hidden):
        lines.append(title)
    lines.append(_THREAD_WELCOME)
    if window_ends_at is None or window_ends_at > now:
        lines.append(f"-# Outside this thread: {_spoilers_phrase(window_ends_at, now)}")
    return OutgoingMessage(content="\n".join(lines))


def window_closed_post(episode: Episode, *, closed_at: datetime, now: datetime) -> OutgoingMessage:
    """The post made when the episode's spoiler window in the server ends (``closed_at``);
    posted late, it says since when."""
    text = f"Spoilers for {_heading(episode)} are now open everywhere in this server."
    if now - closed_at > LATE_NOTICE_AFTER:
        text = (
            f"Spoilers for {_heading(episode)} have been open everywhere in this server since "
            f"{timestamp(closed_at)} ({timestamp(closed_at, 'R')})."
        )
    return OutgoingMessage(content=text)


# -- /upcoming ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpcomingRow:
    episode: Episode
    title_spoils: bool
    window_ends_at: datetime | None  # when spoilers open where it was asked (None: never)


def upcoming_pages(
    rows: Sequence[UpcomingRow],
    *,
    now: datetime,
    show_title: str | None = None,
    in_guild: bool = True,
) -> list[OutgoingMessage]:
    """``/upcoming``: the releases given (soonest first), :data:`UPCOMING_PAGE_SIZE` a page.
    Always at least one page, which says so when nothing is known."""
    chunks = [rows[i : i + UPCOMING_PAGE_SIZE] for i in range(0, len(rows), UPCOMING_PAGE_SIZE)]
    chunks = chunks or [rows]
    where = "in this server" if in_guild else "here (the default rules)"
    subject = escape_inline(truncate(show_title, TITLE_LIMIT)) if show_title else "all shows"
    title = "Upcoming releases" if show_title is None else f"Upcoming: {truncate(show_title, 200)}"
    pages = []
    for number, chunk in enumerate(chunks, start=1):
        if chunk:
            description = "\n\n".join(_upcoming_row(row, now, where) for row in chunk)
        else:
            description = f"No upcoming releases of {subject} are known yet."
        embed: EmbedData = {
            "title": title,
            "description": description,
            "color": EMBARGO_COLOUR,
        }
        if len(chunks) > 1:
            embed["footer"] = {"text": f"Page {number}/{len(chunks)}"}
        pages.append(OutgoingMessage(embeds=(embed,), ephemeral=True))
    return pages


def _upcoming_row(row: UpcomingRow, now: datetime, where: str) -> str:
    episode = row.episode
    hidden = title_hidden(row.title_spoils, row.window_ends_at, now)
    # Embeds never hold spoiler text, so a hidden title is left out rather than tagged.
    title = episode_title(episode, shown=not hidden, surface=Surface.EMBED)
    release = episode.release_at
    ends = row.window_ends_at
    if ends is None:
        opens = f"spoilers never open {where}"
    elif ends <= release:
        opens = f"spoilers open {where} at release"
    else:
        opens = f"spoilers open {where} {timestamp(ends)}"
    return (
        f"{_heading(episode)} · {title}\n{timestamp(release)} ({timestamp(release, 'R')}) · {opens}"
    )


# -- /embargo settings and /spoilers -------------------------------------------------------------


def announce_field(
    announce: AnnounceSettings,
    show_titles: Mapping[str, str],
    last: tuple[PostKey, LedgerEntry] | None = None,
) -> EmbedField:
    """The announce settings as an embed field, with why the last post failed if it did."""
    lines = [f"Default: {describe_announce_target(announce.default)}"]
    for slug, target in sorted(announce.shows.items()):
        name = escape_inline(truncate(show_titles.get(slug, slug), 80))
        lines.append(f"{name}: {describe_announce_target(target)}")
    if last is not None:
        _, entry = last
        when = f"{timestamp(entry.updated_at)} ({timestamp(entry.updated_at, 'R')})"
        if entry.state is PostState.FAILED:
            reason = escape_inline(entry.last_error or "unknown error")
            lines.append(f"⚠️ The last post failed {when}: {reason}")
        elif entry.last_error:
            lines.append(f"⚠️ The last post went out {when}, but: {escape_inline(entry.last_error)}")
    return {
        "name": "Release posts",
        "value": truncate("\n".join(lines), EMBED_FIELD_VALUE_LIMIT),
        "inline": False,
    }


def describe_announce_target(target: AnnounceTarget | None) -> str:
    """One target as ``/embargo announce`` shows it, old and new: ``<#1>, pinging <@&2>``."""
    if target is None:
        return "off"
    ping = f", pinging <@&{target.ping_role_id}>" if target.ping_role_id is not None else ""
    return f"<#{target.channel_id}>{ping}"


# -- where release posts can go ----------------------------------------------------------------

# What Embargo needs in an announce channel, by discord.py's permission name: to post (in a
# forum, Send Messages is what creates a post) and to open and greet the discussion thread.
POST_PERMISSIONS = ("view_channel", "send_messages")
THREAD_PERMISSIONS = ("create_public_threads", "send_messages_in_threads")
FORUM_THREAD_PERMISSIONS = ("send_messages_in_threads",)
ANNOUNCE_PERMISSIONS = ("view_channel", "send_messages", "embed_links", *THREAD_PERMISSIONS)
FORUM_ANNOUNCE_PERMISSIONS = (
    "view_channel",
    "send_messages",
    "embed_links",
    "send_messages_in_threads",
)


def announce_permissions(*, forum: bool) -> tuple[str, ...]:
    """Every channel permission ``/embargo announce`` checks (a forum post is a message)."""
    return FORUM_ANNOUNCE_PERMISSIONS if forum else ANNOUNCE_PERMISSIONS


def permission_list(names: Sequence[str]) -> str:
    """``**View Channel**, **Send Messages** and **Embed Links**``."""
    shown = [f"**{PERMISSION_NAMES.get(name, name.replace('_', ' ').title())}**" for name in names]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def missing_permissions_reason(missing: Sequence[str], what: str) -> str:
    """Why a post or thread failed, as the ledger keeps it and ``/embargo settings`` shows it;
    ``what`` is what could not be done ("post", "open the discussion thread")."""
    plain = [PERMISSION_NAMES.get(name, name.replace("_", " ").title()) for name in missing]
    listed = plain[0] if len(plain) == 1 else ", ".join(plain[:-1]) + " and " + plain[-1]
    return f"Embargo needs {listed} in the announce channel to {what}."


def announce_warning(missing: Sequence[str], channel_id: int) -> str:
    """Added to ``/embargo announce``'s answer when Embargo can't yet do everything there."""
    return (
        f"⚠️ Embargo can't do everything it needs in <#{channel_id}> yet: give its role "
        f"{permission_list(missing)} there (channel settings → Permissions). Until then "
        "release posts or their threads will fail, and `/embargo settings` will say why."
    )
