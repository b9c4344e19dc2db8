"""What /watched, /unwatched, /progress, /forget-me and the watch roles show, as plain data.

Titles, codes and counts only: nothing here reads a review. Content-file text is escaped as
literal text; roles and channels appear as mentions, which Embargo always sends with mentions
disabled, so they render without pinging anyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.content.models import Episode, Show
from bot.messages import (
    EMBARGO_COLOUR,
    EmbedData,
    EmbedField,
    OutgoingMessage,
    Surface,
    episode_heading,
    timestamp,
)
from bot.progress import (
    RoleSetupProblem,
    RoleSyncFailure,
    RoleSyncProblem,
    ShowProgress,
    WatchRole,
)
from bot.spoilers.policy import TitleRule
from bot.spoilers.render import EMBED_FIELD_VALUE_LIMIT, escape_inline, truncate

EMBED_FIELD_NAME_LIMIT = 256

# Shows per /progress page: one embed field each.
SHOWS_PER_PAGE = 5
# Out-of-order episodes listed by code in one show's field before "and N more".
OUT_OF_ORDER_LISTED = 10
FORGET_TIMEOUT = 60.0  # seconds the /forget-me button stays usable


def _episodes(count: int) -> str:
    return f"{count} episode{'' if count == 1 else 's'}"


def _code(episode: Episode) -> str:
    return f"`{episode.short_code}`"


def _next_line(
    progress: ShowProgress, titles: TitleRule, surface: Surface = Surface.CONTENT
) -> str:
    title = escape_inline(progress.show_title)
    if progress.released == 0:
        return f"Nothing of {title} is out yet."
    if progress.next_up is not None:
        return f"Next to watch: {episode_heading(progress.next_up, titles, surface)}."
    upcoming = progress.upcoming
    if upcoming is None:
        return f"You're caught up with {title}."
    release = upcoming.release_at
    return (
        f"You're caught up with {title}. Next out: {_code(upcoming)} "
        f"{timestamp(release)} ({timestamp(release, 'R')})."
    )


def where_you_are(progress: ShowProgress) -> str:
    """``S7E3 of S7E6``: the furthest episode watched, of the latest released."""
    furthest, latest = progress.furthest, progress.latest
    if latest is None:
        return "nothing released yet"
    if furthest is None:
        return f"not started, {latest.short_code} is out"
    return f"{furthest.short_code} of {latest.short_code}"


# -- /watched and /unwatched -------------------------------------------------------------------


def not_released_text(episode: Episode, titles: TitleRule) -> str:
    release = episode.release_at
    return (
        f"{episode_heading(episode, titles)} isn't out yet: it's released {timestamp(release)} "
        f"({timestamp(release, 'R')}). You can mark it watched then. Nothing was changed."
    )


def _what_changed(
    verb: str, episode: Episode, through: bool, changed: int, already: str, titles: TitleRule
) -> str:
    heading = episode_heading(episode, titles)
    if changed == 0:
        scope = f"{heading} and every episode before it" if through else heading
        return f"{scope} {already}; nothing changed."
    if through:
        return f"{verb}: {_episodes(changed)}, up to {heading}. Saved."
    return f"{verb}: {heading}. Saved."


def watched_message(
    episode: Episode, *, through: bool, marked: int, progress: ShowProgress, titles: TitleRule
) -> OutgoingMessage:
    """After ``/watched``, once committed: ``marked`` episodes were newly marked."""
    already = "were already marked watched" if through else "was already marked watched"
    first = _what_changed("Marked watched", episode, through, marked, already, titles)
    return _progress_reply(first, progress, titles)


def unwatched_message(
    episode: Episode, *, through: bool, unmarked: int, progress: ShowProgress, titles: TitleRule
) -> OutgoingMessage:
    """After ``/unwatched``, once committed: ``unmarked`` episodes were marked before."""
    already = "weren't marked watched" if through else "wasn't marked watched"
    first = _what_changed("No longer marked watched", episode, through, unmarked, already, titles)
    return _progress_reply(first, progress, titles)


def _progress_reply(first: str, progress: ShowProgress, titles: TitleRule) -> OutgoingMessage:
    where = (
        f"{escape_inline(progress.show_title)}: {where_you_are(progress)}, "
        f"{progress.watched} of {_episodes(progress.released)} watched."
    )
    return OutgoingMessage(
        content=f"{first}\n{where} {_next_line(progress, titles)}", ephemeral=True
    )


# -- /progress --------------------------------------------------------------------------------


def _show_field(progress: ShowProgress, titles: TitleRule) -> EmbedField:
    lines = [
        f"**{where_you_are(progress)}** · {progress.watched} of "
        f"{_episodes(progress.released)} watched",
        # Embed text can't hide a spoiling title in tags: it is left out there.
        _next_line(progress, titles, Surface.EMBED),
    ]
    if progress.out_of_order:
        listed = ", ".join(e.short_code for e in progress.out_of_order[:OUT_OF_ORDER_LISTED])
        more = len(progress.out_of_order) - OUT_OF_ORDER_LISTED
        lines.append(f"Marked out of order: {listed}" + (f" and {more} more" if more > 0 else ""))
    if progress.specials_watched:
        lines.append(f"Specials: {progress.specials_watched} of {progress.specials_released}")
    return {
        "name": truncate(escape_inline(progress.show_title), EMBED_FIELD_NAME_LIMIT),
        "value": truncate("\n".join(lines), EMBED_FIELD_VALUE_LIMIT),
        "inline": False,
    }


def progress_pages(
    shows: Sequence[ShowProgress], only: Show | None, titles: TitleRule
) -> list[OutgoingMessage]:
    """One ephemeral page per ``SHOWS_PER_PAGE`` shows, by title."""
    if not shows or (only is not None and not (shows[0].watched or shows[0].specials_watched)):
        where = f"any {escape_inline(only.title)} episode" if only is not None else "anything"
        return [
            OutgoingMessage(
                content=f"You haven't marked {where} watched yet. Try `/watched`.",
                ephemeral=True,
            )
        ]
    total = (len(shows) + SHOWS_PER_PAGE - 1) // SHOWS_PER_PAGE
    pages = []
    for number in range(total):
        chunk = shows[number * SHOWS_PER_PAGE : (number + 1) * SHOWS_PER_PAGE]
        embed: EmbedData = {
            "title": "Your watch progress",
            "color": EMBARGO_COLOUR,
            "fields": [_show_field(progress, titles) for progress in chunk],
            "footer": {
                "text": f"Page {number + 1} of {total} · {len(shows)} show(s) · only you see "
                "this · /watched and /unwatched change it"
            },
        }
        pages.append(OutgoingMessage(embeds=(embed,), ephemeral=True))
    return pages


# -- /forget-me -------------------------------------------------------------------------------


def forget_prompt_message(expires_at: datetime) -> OutgoingMessage:
    return OutgoingMessage(
        content=(
            "This deletes everything Embargo stores about you: the episodes you've marked "
            "watched, and your votes in every server (rankings are updated at once). It can't "
            f"be undone. The button works until {timestamp(expires_at, 'T')} "
            f"({timestamp(expires_at, 'R')})."
        ),
        ephemeral=True,
    )


def forgotten_text(watched_episodes: int, votes: int, servers: int) -> str:
    if watched_episodes == 0 and votes == 0:
        return "Embargo had nothing stored about you; nothing was deleted."
    where = f" in {servers} server{'' if servers == 1 else 's'}" if votes else ""
    return (
        f"Deleted: {_episodes(watched_episodes)} marked watched and "
        f"{votes} vote{'' if votes == 1 else 's'}{where}. Embargo stores nothing else about you."
    )


FORGET_CANCELLED = "Cancelled: nothing was deleted."
FORGET_EXPIRED = "This confirmation has expired: nothing was deleted. Run `/forget-me` again."


# -- watch roles ------------------------------------------------------------------------------


def role_mention(role_id: int) -> str:
    return f"<@&{role_id}>"


def _scope(show_title: str, season: int | None) -> str:
    title = escape_inline(show_title)
    if season is None:
        return f"every released episode of {title}"
    if season == 0:
        return f"every released {title} special"
    return f"every released episode of {title} season {season}"


@dataclass(frozen=True, slots=True)
class RoleOutcome:
    """What happened to one watch role after a member's progress changed."""

    role_id: int
    granted: bool  # False: removed
    problem: RoleSyncProblem | None = None


def role_outcomes_text(outcomes: Sequence[RoleOutcome]) -> str | None:
    """The follow-up after /watched or /unwatched changed a member's watch roles."""
    lines = []
    for outcome in outcomes:
        role = role_mention(outcome.role_id)
        if outcome.problem is None:
            lines.append(
                f"You now have {role}." if outcome.granted else f"You no longer have {role}."
            )
        else:
            action = "give you" if outcome.granted else "remove"
            lines.append(
                f"Embargo couldn't {action} {role}: {role_problem_text(outcome.problem)} "
                "The moderators can see this in `/embargo settings`; your progress is saved."
            )
    return "\n".join(lines) or None


def role_problem_text(problem: RoleSyncProblem) -> str:
    return {
        RoleSyncProblem.MISSING_PERMISSION: "it needs the **Manage Roles** permission.",
        RoleSyncProblem.ROLE_TOO_HIGH: (
            "the role is not below Embargo's own highest role (Server Settings → Roles: drag "
            "Embargo's role above it)."
        ),
        RoleSyncProblem.ROLE_DELETED: "the role no longer exists.",
        RoleSyncProblem.DISCORD_ERROR: "Discord refused the change.",
    }[problem]


def role_setup_text(role_id: int, problems: Sequence[RoleSetupProblem]) -> str:
    """Why the role can't be a watch role, and exactly what to fix."""
    role = role_mention(role_id)
    if RoleSetupProblem.EVERYONE in problems:
        return "@everyone can't be a watch role: every member has it. Pick or create another role."
    if RoleSetupProblem.MANAGED in problems:
        return (
            f"{role} is managed by a bot or an integration, so only Discord can give it. "
            "Pick or create another role. Nothing was changed."
        )
    fixes = []
    if RoleSetupProblem.MISSING_PERMISSION in problems:
        fixes.append("give Embargo's role the **Manage Roles** permission")
    if RoleSetupProblem.ROLE_TOO_HIGH in problems:
        fixes.append(f"move Embargo's role above {role} (Server Settings → Roles: drag it higher)")
    return (
        f"Embargo can't give {role} yet: " + " and ".join(fixes) + ", then run this again. "
        "Nothing was changed."
    )


def watch_role_set_message(
    show_title: str, season: int | None, role_id: int, replaced: WatchRole | None
) -> OutgoingMessage:
    scope = _scope(show_title, season)
    role = role_mention(role_id)
    was = ""
    if replaced is not None and replaced.role_id != role_id:
        was = f" (instead of {role_mention(replaced.role_id)})"
    elif replaced is not None:
        return OutgoingMessage(
            content=f"{role} was already the role for members who watched {scope}; "
            "nothing changed.",
            ephemeral=True,
        )
    return OutgoingMessage(
        content=(
            f"Saved: members who have watched {scope} get {role}{was}. They get it (or lose it) "
            "the next time they mark or unmark an episode, and when a new episode comes out."
        ),
        ephemeral=True,
    )


def watch_role_off_message(
    show_title: str, season: int | None, removed: WatchRole | None
) -> OutgoingMessage:
    scope = _scope(show_title, season)
    if removed is None:
        return OutgoingMessage(
            content=f"There was no role for members who watched {scope}; nothing changed.",
            ephemeral=True,
        )
    return OutgoingMessage(
        content=(
            f"Saved: {role_mention(removed.role_id)} is no longer given for {scope}. Members "
            "who have it keep it until a moderator removes it."
        ),
        ephemeral=True,
    )


def watch_role_in_use_text(existing: WatchRole, show_title: str | None) -> str:
    season = "" if existing.season is None else f" season {existing.season}"
    what = escape_inline(show_title or existing.show_slug) + season
    return (
        f"{role_mention(existing.role_id)} is already the watch role for {what}. Use another "
        "role, or remove that one with `/embargo watch-role-off`. Nothing was changed."
    )


def too_many_watch_roles_text(limit: int) -> str:
    return (
        f"This server already has {limit} watch roles, the most Embargo keeps. Remove one with "
        "`/embargo watch-role-off` first. Nothing was changed."
    )


def unknown_season_text(show: Show, season: int) -> str:
    seasons = ", ".join(str(s) for s in sorted({e.season for e in show.episodes})) or "none"
    return f"{escape_inline(show.title)} has no season {season}. Seasons: {seasons}."


def watch_role_fields(
    roles: Sequence[WatchRole], failure: RoleSyncFailure | None, show_titles: dict[str, str]
) -> list[EmbedField]:
    """The watch-role part of ``/embargo settings``."""
    lines = [
        f"{role_mention(role.role_id)}: "
        + escape_inline(show_titles.get(role.show_slug, role.show_slug))
        + ("" if role.season is None else f" season {role.season}")
        for role in roles
    ]
    fields: list[EmbedField] = [
        {
            "name": "Watch roles",
            "value": truncate("\n".join(lines) or "none", EMBED_FIELD_VALUE_LIMIT),
            "inline": False,
        }
    ]
    if failure is not None:
        fields.append(
            {
                "name": "Last watch-role problem",
                "value": truncate(
                    f"{timestamp(failure.failed_at, 'R')}: {role_mention(failure.role_id)}: "
                    f"{role_problem_text(failure.problem)}",
                    EMBED_FIELD_VALUE_LIMIT,
                ),
                "inline": False,
            }
        )
    return fields
