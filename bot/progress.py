"""Watch progress: what a member has watched, where they are, and which watch roles they earn.

Pure: plain catalogue episodes and a member's set of watched episode keys in, plain data out.

The rules, in one place:

- A show's episodes run in order of season, then number. Season 0 holds the specials, which
  sit outside that main line: "through" sweeps up only the line of the episode named, so
  marking S7E3 through covers S1E1..S7E3 and no special, while marking the special S0E4
  through covers the specials S0E1..S0E4.
- Only released episodes (``release_at <= now``) can be marked, and "through" marks only the
  released ones; unmarking removes whatever it names, released or not.
- A member is *through* the last episode of the unbroken run of watched episodes from the
  start of the main line; the first released episode after that run is *next*, and anything
  they marked beyond it is *out of order*.
- A member's watch roles follow their progress in every server, whichever process serves it:
  the process a change reaches brings the roles in line in its own servers, and every other
  process, hearing which member changed, does the same in its servers from the stored
  progress (``member_role_scope``).
- A watch role for a show (or one season) is earned by having watched every episode of it
  released so far (for a whole show: the main line, specials aside; for season 0: the
  specials). An episode released later makes that no longer true, so the role follows the
  member's progress again at their next change or the next periodic re-check. A show or
  season with nothing released earns nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.content.models import Episode

SPECIALS_SEASON = 0


def is_special(episode: Episode) -> bool:
    return episode.season == SPECIALS_SEASON


def is_released(episode: Episode, now: datetime) -> bool:
    return episode.release_at <= now


def in_order(episodes: Iterable[Episode]) -> list[Episode]:
    """Episodes by season, then number (specials, season 0, first)."""
    return sorted(episodes, key=lambda episode: (episode.season, episode.number))


def _main_line(episodes: Iterable[Episode]) -> list[Episode]:
    return in_order(episode for episode in episodes if not is_special(episode))


class NotReleasedError(ValueError):
    """An episode that can't be marked watched yet; the reply names its release time."""

    def __init__(self, episode: Episode) -> None:
        super().__init__(f"{episode.key} is released at {episode.release_at.isoformat()}")
        self.episode = episode


# ---- marking and unmarking ------------------------------------------------------------------


def through_episodes(show_episodes: Iterable[Episode], episode: Episode) -> list[Episode]:
    """The episode and every earlier one on its line (main line or specials), in order."""
    special = is_special(episode)
    return [
        other
        for other in in_order(show_episodes)
        if other.show_slug == episode.show_slug
        and is_special(other) == special
        and (other.season, other.number) <= (episode.season, episode.number)
    ]


def episodes_to_mark(
    show_episodes: Iterable[Episode], episode: Episode, *, through: bool, now: datetime
) -> list[Episode]:
    """What ``/watched episode [through]`` marks, in order: the episode, and with ``through``
    every earlier released one on its line. Raises ``NotReleasedError`` for an unreleased
    episode, marking nothing."""
    if not is_released(episode, now):
        raise NotReleasedError(episode)
    if not through:
        return [episode]
    return [other for other in through_episodes(show_episodes, episode) if is_released(other, now)]


def episodes_to_unmark(
    show_episodes: Iterable[Episode], episode: Episode, *, through: bool
) -> list[Episode]:
    """What ``/unwatched episode [through]`` unmarks: the reverse of marking, released or not."""
    return through_episodes(show_episodes, episode) if through else [episode]


# ---- where a member is ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShowProgress:
    """A member's progress in one show, for ``/progress`` and the replies to ``/watched``."""

    show_slug: str
    show_title: str
    through: Episode | None  # last episode of the unbroken watched run from the start
    next_up: Episode | None  # first released main-line episode not watched; None: caught up
    latest: Episode | None  # the latest released main-line episode
    upcoming: Episode | None  # the first main-line episode not released yet
    out_of_order: tuple[Episode, ...]  # watched main-line episodes after next_up
    watched: int  # released main-line episodes watched
    released: int  # released main-line episodes
    specials_watched: int
    specials_released: int

    @property
    def furthest(self) -> Episode | None:
        """The furthest main-line episode watched (``S7E3`` of ``S7E3 of S7E6``)."""
        return self.out_of_order[-1] if self.out_of_order else self.through

    @property
    def caught_up(self) -> bool:
        return self.released > 0 and self.next_up is None


def show_progress(
    show_episodes: Sequence[Episode], watched: AbstractSet[str], now: datetime
) -> ShowProgress:
    """Where a member is in one show (``show_episodes``: all of one show's episodes).

    One pass over the show in order: ``/progress`` runs it for every show a member watches."""
    if not show_episodes:
        raise ValueError("a show's progress needs its episodes")
    first = show_episodes[0]
    through: Episode | None = None
    next_up: Episode | None = None
    latest: Episode | None = None
    upcoming: Episode | None = None
    out_of_order: list[Episode] = []
    seen_count = released = specials_watched = specials_released = 0
    for episode in in_order(show_episodes):
        if episode.release_at > now:
            if upcoming is None and episode.season != SPECIALS_SEASON:
                upcoming = episode
            continue
        seen = episode.key in watched
        if episode.season == SPECIALS_SEASON:
            specials_released += 1
            specials_watched += seen
            continue
        released += 1
        latest = episode
        seen_count += seen
        if next_up is None:
            if seen:
                through = episode
            else:
                next_up = episode
        elif seen:
            out_of_order.append(episode)
    return ShowProgress(
        show_slug=first.show_slug,
        show_title=first.show_title,
        through=through,
        next_up=next_up,
        latest=latest,
        upcoming=upcoming,
        out_of_order=tuple(out_of_order),
        watched=seen_count,
        released=released,
        specials_watched=specials_watched,
        specials_released=specials_released,
    )


def show_slug_of_key(episode_key: str) -> str:
    return episode_key.split("/", 1)[0]


def member_progress(
    episodes_by_show: Mapping[str, Sequence[Episode]], watched: AbstractSet[str], now: datetime
) -> list[ShowProgress]:
    """Progress in every show the member has marked anything in and the catalogue still has,
    ordered by show title (the order ``/progress`` pages through)."""
    slugs = {show_slug_of_key(key) for key in watched}
    shows = [
        show_progress(episodes_by_show[slug], watched, now)
        for slug in slugs
        if episodes_by_show.get(slug)
    ]
    return sorted(shows, key=lambda p: (p.show_title.casefold(), p.show_slug))


def next_to_watch(
    show_episodes: Sequence[Episode], watched: AbstractSet[str], now: datetime
) -> Episode | None:
    """The first released main-line episode the member hasn't watched (None: caught up)."""
    return next(
        (
            episode
            for episode in _main_line(show_episodes)
            if is_released(episode, now) and episode.key not in watched
        ),
        None,
    )


# ---- autocomplete ---------------------------------------------------------------------------


def up_next(
    episodes_by_show: Mapping[str, Sequence[Episode]], watched: AbstractSet[str], now: datetime
) -> list[Episode]:
    """The next episode of every show the member is watching, newest release first."""
    found = []
    for slug in {show_slug_of_key(key) for key in watched}:
        episode = next_to_watch(episodes_by_show.get(slug, ()), watched, now)
        if episode is not None:
            found.append(episode)
    return sorted(found, key=lambda e: (e.release_at, e.key), reverse=True)


def order_for_watched(
    candidates: Sequence[Episode],
    next_episodes: Iterable[Episode],
    watched: AbstractSet[str],
    now: datetime,
) -> list[Episode]:
    """``/watched`` autocomplete: the member's next episodes first (in ``next_episodes``
    order, those among the candidates), then unwatched released ones, then those already
    watched, then unreleased ones (which can't be marked), each group in candidate order."""
    wanted = {episode.key for episode in candidates}
    first = [episode for episode in next_episodes if episode.key in wanted]
    placed = {episode.key for episode in first}

    def group(episode: Episode) -> int:
        if not is_released(episode, now):
            return 2
        return 1 if episode.key in watched else 0

    rest = sorted(
        (episode for episode in candidates if episode.key not in placed), key=group
    )  # stable: candidate order within each group
    return list(dict.fromkeys([*first, *rest]))


def order_for_unwatched(candidates: Sequence[Episode], watched: AbstractSet[str]) -> list[Episode]:
    """``/unwatched`` autocomplete: watched episodes first, in candidate order."""
    return sorted(candidates, key=lambda episode: episode.key not in watched)


# ---- watch roles ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchRole:
    """A server's role for members who have watched a show, or one season of it."""

    guild_id: int
    show_slug: str
    season: int | None  # None: the whole show (main line)
    role_id: int


def scope_episodes(
    show_episodes: Iterable[Episode], season: int | None, now: datetime
) -> list[Episode]:
    """The released episodes a watch role for ``season`` (None: the whole show) asks for."""
    return [
        episode
        for episode in show_episodes
        if is_released(episode, now)
        and (not is_special(episode) if season is None else episode.season == season)
    ]


def has_completed(
    show_episodes: Iterable[Episode], season: int | None, watched: AbstractSet[str], now: datetime
) -> bool:
    """Whether the member has watched every released episode of the show (or season)."""
    needed = scope_episodes(show_episodes, season, now)
    return bool(needed) and all(episode.key in watched for episode in needed)


class RoleSyncProblem(StrEnum):
    """Why granting or removing a watch role failed (stored: the values are stable)."""

    MISSING_PERMISSION = "missing-permission"  # Embargo lacks Manage Roles
    ROLE_TOO_HIGH = "role-too-high"  # the role is not below Embargo's own top role
    ROLE_DELETED = "role-deleted"
    DISCORD_ERROR = "discord-error"  # anything else Discord refused


@dataclass(frozen=True, slots=True)
class RoleSyncFailure:
    """The last time a server's watch role could not be granted or removed."""

    role_id: int
    problem: RoleSyncProblem
    failed_at: datetime


@dataclass(frozen=True, slots=True)
class RoleChanges:
    grant: tuple[WatchRole, ...]
    revoke: tuple[WatchRole, ...]


def role_changes(
    roles: Iterable[WatchRole],
    episodes_by_show: Mapping[str, Sequence[Episode]],
    watched: AbstractSet[str],
    held_role_ids: AbstractSet[int],
    now: datetime,
) -> RoleChanges:
    """Which of one server's watch roles to grant and remove so the member holds exactly the
    ones they have earned. A role whose show is no longer in the catalogue is left alone (a
    content file removed by mistake must not strip everyone's roles). A role bound to several
    targets is earned by meeting any of them."""
    earned: dict[int, bool] = {}
    bound: dict[int, WatchRole] = {}
    for role in roles:
        episodes = episodes_by_show.get(role.show_slug)
        if not episodes:
            continue
        bound.setdefault(role.role_id, role)
        met = has_completed(episodes, role.season, watched, now)
        earned[role.role_id] = earned.get(role.role_id, False) or met
        if met:
            bound[role.role_id] = role
    grant = tuple(bound[r] for r, met in earned.items() if met and r not in held_role_ids)
    revoke = tuple(bound[r] for r, met in earned.items() if not met and r in held_role_ids)
    return RoleChanges(grant=grant, revoke=revoke)


def member_role_scope(
    roles: Iterable[WatchRole],
    watched: AbstractSet[str],
    held: AbstractSet[tuple[int, int]],
) -> dict[int, list[WatchRole]]:
    """By server, the watch roles to bring in line for a member whose progress changed
    (without knowing what changed): the roles of the shows they have marked anything of,
    which they may have earned, and the roles Embargo gave them (``held``: server, role),
    which they may no longer earn. ``roles``: at least those, as the servers bind them."""
    shows = {show_slug_of_key(key) for key in watched}
    scope: dict[int, list[WatchRole]] = {}
    for role in dict.fromkeys(roles):
        if role.show_slug in shows or (role.guild_id, role.role_id) in held:
            scope.setdefault(role.guild_id, []).append(role)
    return scope


class RoleSetupProblem(StrEnum):
    """Why a role can't be a watch role, found when a moderator sets it."""

    EVERYONE = "everyone"  # @everyone: every member holds it already
    MANAGED = "managed"  # a bot's or an integration's role: Discord assigns it alone
    MISSING_PERMISSION = "missing-permission"  # Embargo lacks Manage Roles
    ROLE_TOO_HIGH = "role-too-high"  # not below Embargo's own highest role


def role_setup_problems(
    *,
    is_everyone: bool,
    managed: bool,
    can_manage_roles: bool,
    role_position: int,
    top_role_position: int,
) -> list[RoleSetupProblem]:
    """Everything that stops Embargo from granting the role, as Discord checks it: Manage
    Roles, and a role strictly below Embargo's highest one. Empty: the role can be used."""
    if is_everyone:
        return [RoleSetupProblem.EVERYONE]
    if managed:
        return [RoleSetupProblem.MANAGED]
    problems = []
    if not can_manage_roles:
        problems.append(RoleSetupProblem.MISSING_PERMISSION)
    if role_position >= top_role_position:
        problems.append(RoleSetupProblem.ROLE_TOO_HIGH)
    return problems


# ---- the re-check when episodes come out -----------------------------------------------------


def next_release_after(episodes: Iterable[Episode], moment: datetime) -> datetime | None:
    """The first release instant strictly after ``moment`` (None: nothing is still to come)."""
    return min((e.release_at for e in episodes if e.release_at > moment), default=None)


def released_between(
    episodes: Iterable[Episode], since: datetime, until: datetime
) -> list[Episode]:
    """The episodes released in ``(since, until]``, in order."""
    return in_order(e for e in episodes if since < e.release_at <= until)


def roles_to_recheck(roles: Iterable[WatchRole], released: Iterable[Episode]) -> list[WatchRole]:
    """The watch roles newly released episodes can take away: those whose scope (see
    ``scope_episodes``) gained an episode. A release never makes anyone complete: nobody can
    have watched it yet."""
    new = list(released)

    def gained(role: WatchRole) -> bool:
        return any(
            episode.show_slug == role.show_slug
            and (not is_special(episode) if role.season is None else episode.season == role.season)
            for episode in new
        )

    return [role for role in roles if gained(role)]
