"""The discussion calendar: which release and window-closed posts are due, and when the next is.

Pure: takes the catalogue's episodes, each server's announce and spoiler settings, the ledger of
what was already posted or skipped, and the current time; returns plain data. The scheduler that
sends the posts sits on top and sleeps until :meth:`Calendar.next_due`.

The rules, per server, episode and kind of post:

* A **release post** (with its discussion thread) falls due at the episode's release instant, if
  the server announces the show and the episode was released at or after the announce channel
  was set.
* A **window-closed post** falls due when the episode's spoiler window in the server ends (the
  window in force now, per show or the server's), if that instant is at or after the channel was
  set. A window that is ``off`` has nothing to close; ``forever`` never closes.
* Posts that fell due while the scheduler was not running are posted once if they are less than
  :data:`CATCH_UP_LIMIT` late (the post says how late); older ones are recorded as skipped.
* A moderator who changes a server's window moves its close posts: the scheduler asks for that
  server to be rechecked, and every close post the new window has already reached is posted at
  once (it was not due before the change, so it is not late).
* A post that failed is retried after a growing delay, at most :data:`MAX_ATTEMPTS` times.
* A server's ledger is pruned of episodes released before its horizon (:func:`prune_before`:
  every post of theirs long settled under the server's windows); those episodes are never
  looked at again for the server, so a later window change posts nothing for them.

One wake of the scheduler, in order (``retryable_posts``, ``ledger_entries`` and the rest are
``bot.storage.discussion``)::

    retry = await storage.retryable_posts()
    found = calendar.candidates(index, now=now, since=checked_through,
                                content_changed=..., recheck=servers_whose_window_changed,
                                retry=retry)
    plan = settle(found, await storage.ledger_entries(c.key for c in found), now=now)
    # send plan.post (message nonce: post_nonce(item.key)), recording each outcome;
    # record plan.skip as skipped; then set_calendar_checked_through(now)
    wake = earliest_wake(calendar.next_due(index, after=now), plan.retry_at)

Scale: nothing here walks the cross product of servers and episodes. Each show's episodes are
sorted by release once; servers are grouped per show by their effective window once per settings
change (:class:`ScheduleIndex`). Finding what is due in an interval is then two binary searches
per (show, window) group plus the items actually due, and the next due instant is one search per
group.
"""

from __future__ import annotations

import hashlib
import heapq
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from bot.content.models import Episode
from bot.spoilers.durations import SpoilerWindow
from bot.spoilers.policy import SpoilerSettings, window_end

# A post that fell due while the scheduler was down is still worth making up to this late.
CATCH_UP_LIMIT = timedelta(hours=24)
# Sending a post is tried at most this many times; the delays between tries grow.
RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
RETRY_DELAYS_TOTAL = sum(RETRY_DELAYS, timedelta(0))
# A post this late says so; less is ordinary scheduling delay.
LATE_NOTICE_AFTER = timedelta(minutes=5)
# The ledger remembers a server's posts at least this long after the last of an episode's
# posts could fall due under its windows (see :func:`prune_before`).
LEDGER_KEEP = timedelta(days=30)


class PostKind(StrEnum):
    RELEASE = "release"  # the release post and its discussion thread
    WINDOW_CLOSED = "window-closed"


class PostState(StrEnum):
    POSTED = "posted"
    SKIPPED = "skipped"  # fell due too long ago while the bot was down; never posted
    FAILED = "failed"  # the last try failed; retried until MAX_ATTEMPTS


class DueReason(StrEnum):
    ON_TIME = "on-time"  # fell due since the last look
    CATCH_UP = "catch-up"  # fell due while the scheduler was not running; posted late
    WINDOW_CHANGED = "window-changed"  # a moderator's window change made it due
    RETRY = "retry"  # an earlier try failed


class PostKey(NamedTuple):
    """The identity of a post: at most one per server, episode and kind."""

    guild_id: int
    episode_key: str
    kind: PostKind


@dataclass(frozen=True, slots=True)
class AnnounceTarget:
    """Where a server's release posts go, and since when."""

    channel_id: int
    ping_role_id: int | None
    set_at: datetime  # timezone-aware


@dataclass(frozen=True, slots=True)
class AnnounceSettings:
    """A server's announce settings: a default target and per-show overrides.

    ``shows`` maps a show slug to its own target, or to ``None`` when announcing is off for it.
    """

    default: AnnounceTarget | None = None
    shows: Mapping[str, AnnounceTarget | None] = field(default_factory=dict)

    def target_for(self, show_slug: str) -> AnnounceTarget | None:
        if show_slug in self.shows:
            return self.shows[show_slug]
        return self.default

    @property
    def is_empty(self) -> bool:
        return self.default is None and not any(self.shows.values())


NO_ANNOUNCE = AnnounceSettings()


@dataclass(frozen=True, slots=True)
class GuildSchedule:
    """What the calendar needs to know about one server."""

    guild_id: int
    announce: AnnounceSettings
    spoilers: SpoilerSettings
    # Episodes released before this are done with in the server: their ledger rows were
    # pruned, so none of their posts may ever be made again (see :func:`prune_before`).
    pruned_before: datetime | None = None

    def keeps(self, episode: Episode) -> bool:
        return self.pruned_before is None or episode.release_at >= self.pruned_before


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What happened to a post so far (the store keeps one per PostKey)."""

    state: PostState
    attempts: int
    updated_at: datetime  # the last try, or when it was recorded as skipped
    channel_id: int | None = None
    message_id: int | None = None
    thread_id: int | None = None
    last_error: str | None = None

    @property
    def settled(self) -> bool:
        """Nothing more will be tried: posted, skipped, or failed too many times."""
        return self.state is not PostState.FAILED or self.attempts >= MAX_ATTEMPTS

    @property
    def retry_at(self) -> datetime | None:
        if self.settled:
            return None
        delay = RETRY_DELAYS[min(max(self.attempts, 1), len(RETRY_DELAYS)) - 1]
        return self.updated_at + delay


@dataclass(frozen=True, slots=True)
class Candidate:
    """A post that exists under the current settings and whose due instant has passed."""

    key: PostKey
    episode: Episode
    due_at: datetime
    target: AnnounceTarget
    window: SpoilerWindow  # the server's window for this show, for the post's wording
    reason: DueReason


@dataclass(frozen=True, slots=True)
class DueItem:
    """A post to make now."""

    key: PostKey
    episode: Episode
    due_at: datetime
    channel_id: int
    ping_role_id: int | None
    window: SpoilerWindow
    reason: DueReason
    late_by: timedelta  # zero unless it is a catch-up (then the post says how late)

    @property
    def window_ends_at(self) -> datetime | None:
        return window_end(self.episode.release_at, self.window)


@dataclass(frozen=True, slots=True)
class Plan:
    post: list[DueItem]  # oldest due first
    skip: list[Candidate]  # record as skipped: too late to post
    retry_at: datetime | None  # the earliest failed post waiting for its next try


@dataclass(frozen=True, slots=True)
class _Group:
    """Servers that announce one show with the same spoiler window."""

    window: SpoilerWindow
    members: tuple[tuple[GuildSchedule, AnnounceTarget], ...]


class ScheduleIndex:
    """The servers' settings arranged per show and window; rebuild it when settings change.

    Building it is O(servers x shows); the calendar's queries then cost per group, not per
    server, until they produce items.
    """

    def __init__(self, guilds: Iterable[GuildSchedule], show_slugs: Iterable[str]) -> None:
        self.guilds = {guild.guild_id: guild for guild in guilds}
        self._groups: dict[str, list[_Group]] = {}
        for slug in show_slugs:
            by_window: dict[SpoilerWindow, list[tuple[GuildSchedule, AnnounceTarget]]] = (
                defaultdict(list)
            )
            for guild in self.guilds.values():
                target = guild.announce.target_for(slug)
                if target is not None:
                    by_window[guild.spoilers.window_for(slug)].append((guild, target))
            self._groups[slug] = [
                _Group(window, tuple(members)) for window, members in by_window.items()
            ]

    def groups(self, show_slug: str) -> list[_Group]:
        return self._groups.get(show_slug, [])


class Calendar:
    """The catalogue's release instants, sorted per show; rebuild it when content changes."""

    def __init__(self, episodes: Iterable[Episode]) -> None:
        by_show: dict[str, list[Episode]] = defaultdict(list)
        self._by_key: dict[str, Episode] = {}
        for episode in episodes:
            by_show[episode.show_slug].append(episode)
            self._by_key[episode.key] = episode
        self._episodes: dict[str, list[Episode]] = {}
        self._releases: dict[str, list[datetime]] = {}
        for slug, show_episodes in by_show.items():
            show_episodes.sort(key=lambda e: (e.release_at, e.key))
            self._episodes[slug] = show_episodes
            self._releases[slug] = [e.release_at for e in show_episodes]

    def index(self, guilds: Iterable[GuildSchedule]) -> ScheduleIndex:
        return ScheduleIndex(guilds, self._episodes)

    # -- what is due ---------------------------------------------------------------------------

    def candidates(
        self,
        index: ScheduleIndex,
        *,
        now: datetime,
        since: datetime | None,
        content_changed: bool = False,
        recheck: Collection[int] = (),
        retry: Iterable[PostKey] = (),
    ) -> list[Candidate]:
        """Every post that exists under the current settings, is not in the future, and needs a
        decision now; the caller looks their keys up in the ledger and calls :func:`settle`.

        ``since`` is the instant through which every post was settled by an earlier plan (None
        before the first). Posts due in ``(since, now]`` are candidates; with
        ``content_changed`` (or no ``since``) so is the whole last :data:`CATCH_UP_LIMIT`, so an
        episode added a little after its release still gets its posts. ``recheck`` names
        servers whose spoiler window just changed: all their close posts due by now are
        candidates. ``retry`` names failed posts (from the ledger) to try again, if they still
        exist under the current settings.
        """
        _check_aware(now)
        lower = now - CATCH_UP_LIMIT
        if since is not None and not content_changed:
            lower = since
        elif since is not None:
            lower = min(since, lower)
        found: dict[PostKey, Candidate] = {}

        for slug, episodes in self._episodes.items():
            releases = self._releases[slug]
            groups = index.groups(slug)
            if not groups:
                continue
            released = episodes[bisect_right(releases, lower) : bisect_right(releases, now)]
            for group in groups:
                for guild, target in group.members if released else ():
                    for episode in released:
                        if episode.release_at >= target.set_at and guild.keeps(episode):
                            key = PostKey(guild.guild_id, episode.key, PostKind.RELEASE)
                            self._add(found, key, episode, episode.release_at, target, group.window)
                length = _closing_length(group.window)
                if length is None:
                    continue
                closed = episodes[
                    bisect_right(releases, lower - length) : bisect_right(releases, now - length)
                ]
                for guild, target in group.members if closed else ():
                    for episode in closed:
                        closes_at = episode.release_at + length
                        if closes_at >= target.set_at and guild.keeps(episode):
                            key = PostKey(guild.guild_id, episode.key, PostKind.WINDOW_CLOSED)
                            self._add(found, key, episode, closes_at, target, group.window)

        for guild_id in recheck:
            self._recheck(found, index, guild_id, now)
        for key in retry:
            self._retry(found, index, key, now)
        return sorted(found.values(), key=lambda c: (c.due_at, c.key))

    @staticmethod
    def _add(
        found: dict[PostKey, Candidate],
        key: PostKey,
        episode: Episode,
        due_at: datetime,
        target: AnnounceTarget,
        window: SpoilerWindow,
        reason: DueReason = DueReason.ON_TIME,
    ) -> None:
        found.setdefault(key, Candidate(key, episode, due_at, target, window, reason))

    def _recheck(
        self, found: dict[PostKey, Candidate], index: ScheduleIndex, guild_id: int, now: datetime
    ) -> None:
        guild = index.guilds.get(guild_id)
        if guild is None:
            return
        for slug, episodes in self._episodes.items():
            target = guild.announce.target_for(slug)
            window = guild.spoilers.window_for(slug)
            length = _closing_length(window)
            if target is None or length is None:
                continue
            releases = self._releases[slug]
            first = bisect_left(releases, target.set_at - length)
            last = bisect_right(releases, now - length)
            for episode in episodes[first:last]:
                if not guild.keeps(episode):
                    continue
                key = PostKey(guild_id, episode.key, PostKind.WINDOW_CLOSED)
                closes_at = episode.release_at + length
                self._add(found, key, episode, closes_at, target, window, DueReason.WINDOW_CHANGED)

    def _retry(
        self, found: dict[PostKey, Candidate], index: ScheduleIndex, key: PostKey, now: datetime
    ) -> None:
        guild = index.guilds.get(key.guild_id)
        episode = self._by_key.get(key.episode_key)
        if guild is None or episode is None or not guild.keeps(episode):
            return
        candidate = _candidate(guild, episode, key.kind, DueReason.RETRY)
        if candidate is not None and candidate.due_at <= now:
            found.setdefault(key, candidate)

    def upcoming(self, *, after: datetime, show_slug: str | None = None) -> list[Episode]:
        """Episodes released after ``after`` (of one show, or all), soonest first."""
        _check_aware(after)
        slugs = [show_slug] if show_slug is not None else list(self._episodes)
        lists = [
            self._episodes[slug][bisect_right(self._releases[slug], after) :]
            for slug in slugs
            if slug in self._episodes
        ]
        return list(heapq.merge(*lists, key=lambda e: (e.release_at, e.key)))

    # -- when to wake --------------------------------------------------------------------------

    def next_due(self, index: ScheduleIndex, *, after: datetime) -> datetime | None:
        """The first instant after ``after`` at which a post falls due, or None if none ever
        will under the current settings and catalogue."""
        _check_aware(after)
        earliest: datetime | None = None
        for slug, releases in self._releases.items():
            groups = index.groups(slug)
            if not groups:
                continue
            # A target set after ``after`` would hold back earlier releases; set_at is never in
            # the future for targets the store hands out, so the first later release is due.
            position = bisect_right(releases, after)
            if position < len(releases):
                earliest = _earlier(earliest, releases[position])
            for group in groups:
                length = _closing_length(group.window)
                if length is None:
                    continue
                position = bisect_right(releases, after - length)
                if position < len(releases):
                    earliest = _earlier(earliest, releases[position] + length)
        return earliest


def settle(
    candidates: Iterable[Candidate], ledger: Mapping[PostKey, LedgerEntry], *, now: datetime
) -> Plan:
    """Decide each candidate against the ledger: post it, record it as skipped, or leave it
    (already settled, or a failed post still waiting for its next try)."""
    _check_aware(now)
    post: list[DueItem] = []
    skip: list[Candidate] = []
    retry_at: datetime | None = None
    for candidate in candidates:
        entry = ledger.get(candidate.key)
        reason = candidate.reason
        if entry is not None:
            if entry.settled:
                continue
            next_try = entry.retry_at
            if next_try is not None and next_try > now:
                retry_at = _earlier(retry_at, next_try)
                continue
            reason = DueReason.RETRY
        late_by = now - candidate.due_at
        if reason is DueReason.ON_TIME and late_by >= CATCH_UP_LIMIT:
            skip.append(candidate)
            continue
        if reason is DueReason.WINDOW_CHANGED:
            late_by = timedelta(0)
        elif reason is DueReason.ON_TIME and late_by > LATE_NOTICE_AFTER:
            reason = DueReason.CATCH_UP
        post.append(
            DueItem(
                key=candidate.key,
                episode=candidate.episode,
                due_at=candidate.due_at,
                channel_id=candidate.target.channel_id,
                ping_role_id=candidate.target.ping_role_id,
                window=candidate.window,
                reason=reason,
                late_by=late_by if reason is DueReason.CATCH_UP else timedelta(0),
            )
        )
    return Plan(post=post, skip=skip, retry_at=retry_at)


def prune_before(guild: GuildSchedule, *, now: datetime) -> datetime:
    """From when on the server's ledger must be kept: every post of an episode released
    before this instant fell due, and was posted, skipped or given up on, at least
    :data:`LEDGER_KEEP` ago under the server's current windows, so the ledger rows can go and
    the episode is never looked at again for the server (a later window change included:
    no close post for an episode from before the horizon).

    Never earlier than the server's last horizon: it only moves forward."""
    _check_aware(now)
    windows = [guild.spoilers.window, *(window for _, window in guild.spoilers.show_windows)]
    longest = max((_closing_length(w) or timedelta(0) for w in windows), default=timedelta(0))
    horizon = now - longest - CATCH_UP_LIMIT - RETRY_DELAYS_TOTAL - LEDGER_KEEP
    if guild.pruned_before is not None and guild.pruned_before > horizon:
        return guild.pruned_before
    return horizon


def earliest_wake(*instants: datetime | None) -> datetime | None:
    """The earliest of the instants given, ignoring None: combine ``next_due`` and a plan's
    ``retry_at`` into the scheduler's next wake."""
    result: datetime | None = None
    for instant in instants:
        result = _earlier(result, instant)
    return result


def post_nonce(key: PostKey) -> str:
    """A nonce for the post's message, the same on every try, so a retry shortly after a try
    whose outcome was lost (a crash between sending and recording) cannot make a second message
    when sent with ``enforce_nonce``. Discord allows up to 25 characters."""
    digest = hashlib.blake2b(
        f"{key.guild_id}/{key.episode_key}/{key.kind.value}".encode(), digest_size=12
    )
    return digest.hexdigest()  # 24 characters


def _candidate(
    guild: GuildSchedule, episode: Episode, kind: PostKind, reason: DueReason
) -> Candidate | None:
    """The post as the current settings define it, or None if they define none."""
    target = guild.announce.target_for(episode.show_slug)
    if target is None:
        return None
    window = guild.spoilers.window_for(episode.show_slug)
    due_at = _due_at(episode, kind, window)
    if due_at is None or due_at < target.set_at:
        return None
    key = PostKey(guild.guild_id, episode.key, kind)
    return Candidate(key, episode, due_at, target, window, reason)


def _due_at(episode: Episode, kind: PostKind, window: SpoilerWindow) -> datetime | None:
    if kind is PostKind.RELEASE:
        return episode.release_at
    length = _closing_length(window)
    return None if length is None else episode.release_at + length


def _closing_length(window: SpoilerWindow) -> timedelta | None:
    """The window's length if it ever closes with a post: not forever and not off."""
    if window.length is None or window.is_off:
        return None
    return window.length


def _earlier(current: datetime | None, candidate: datetime | None) -> datetime | None:
    if candidate is None:
        return current
    if current is None or candidate < current:
        return candidate
    return current


def _check_aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError("times given to the calendar must be timezone-aware")
