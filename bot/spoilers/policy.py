"""The spoiler policy: may this episode's ending be shown here, now, and how? And may its
title be shown in plain sight?

Pure: takes plain values (release instant, the server's settings, a channel id, the current
time) and returns a Decision. Every branch is tested directly.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.spoilers.durations import DEFAULT_SPOILER_WINDOW, SpoilerWindow

if TYPE_CHECKING:
    from bot.content.models import Episode


class SpoilerMode(StrEnum):
    """How a server hides spoilers while the window runs."""

    TAGGED = "tagged"  # posted in the channel, every character inside spoiler tags
    PRIVATE = "private"  # ephemeral to the asker, tagged as well
    REFUSE = "refuse"  # not shown; says when the window ends


class Delivery(StrEnum):
    UNRELEASED = "unreleased"  # no spoiler text at all; says when it unlocks
    TAGGED = "tagged"
    PRIVATE = "private"
    REFUSED = "refused"
    PLAIN = "plain"


@dataclass(frozen=True, slots=True)
class SpoilerSettings:
    """One server's spoiler rules (DMs use the defaults)."""

    window: SpoilerWindow = DEFAULT_SPOILER_WINDOW
    mode: SpoilerMode = SpoilerMode.TAGGED
    # Per-show overrides as (show slug, window) pairs, by slug. A tuple, not a dict: one
    # server's settings are cached and shared by every request, so nothing may change them.
    show_windows: tuple[tuple[str, SpoilerWindow], ...] = ()
    spoilers_ok_channels: frozenset[int] = frozenset()

    def window_for(self, show_slug: str) -> SpoilerWindow:
        for slug, window in self.show_windows:  # a server overrides a handful of shows
            if slug == show_slug:
                return window
        return self.window


@dataclass(frozen=True, slots=True)
class Decision:
    delivery: Delivery
    release_at: datetime
    # When spoilers open in plain sight here; None when the window is forever.
    window_ends_at: datetime | None
    window: SpoilerWindow
    reason: str  # short, user-facing explanation of why this delivery was chosen
    # Private only because the asker marked the episode watched (the server would refuse).
    because_watched: bool = False

    @property
    def ephemeral(self) -> bool:
        return self.delivery is Delivery.PRIVATE


def window_end(release_at: datetime, window: SpoilerWindow) -> datetime | None:
    return None if window.length is None else release_at + window.length


def decide(
    *,
    release_at: datetime,
    now: datetime,
    settings: SpoilerSettings,
    show_slug: str,
    channel_ids: Collection[int] = (),
    watched: bool = False,
) -> Decision:
    """Decide how an episode's ending may be delivered.

    The boundaries are half-open: an episode is released at exactly ``release_at`` and the
    window covers ``[release_at, release_at + window)``, so at the instant the window ends the
    text is plain. ``channel_ids`` holds the channel asked in and, for a thread, its parent, so
    a thread inside a spoilers-ok channel is spoilers-ok too.

    ``watched``: the asker marked the episode watched. Where the server refuses spoilers they
    get the ending privately instead; everywhere else the decision is the server's, so in
    ``tagged`` mode the channel post stays tagged for everyone else who reads it.
    """
    if release_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("release_at and now must be timezone-aware")
    window = settings.window_for(show_slug)
    ends_at = window_end(release_at, window)

    def result(delivery: Delivery, reason: str) -> Decision:
        return Decision(delivery, release_at, ends_at, window, reason)

    if now < release_at:
        return result(Delivery.UNRELEASED, "not released yet")
    if not settings.spoilers_ok_channels.isdisjoint(channel_ids):
        return result(Delivery.PLAIN, "this channel is marked spoilers-ok")
    if ends_at is not None and now >= ends_at:
        reason = "this server has no spoiler window" if window.is_off else "spoiler window over"
        return result(Delivery.PLAIN, reason)
    if settings.mode is SpoilerMode.REFUSE and watched:
        return Decision(
            Delivery.PRIVATE, release_at, ends_at, window, "you've marked it watched", True
        )
    if settings.mode is SpoilerMode.REFUSE:
        return result(Delivery.REFUSED, "spoiler window running; this server refuses spoilers")
    if settings.mode is SpoilerMode.PRIVATE:
        return result(Delivery.PRIVATE, "spoiler window running; shown privately")
    return result(Delivery.TAGGED, "spoiler window running")


# -- titles that spoil ---------------------------------------------------------------------------


def title_open(*, title_spoils: bool, window_ends_at: datetime | None, now: datetime) -> bool:
    """Whether an episode's title may be shown in plain sight: always, unless the title itself
    spoils; then only once the episode's spoiler window has ended (never, for ``forever``).

    Half-open like :func:`decide`: at the instant the window ends the title is open. With the
    window ``off`` it ends at release, so a spoiling title stays hidden until the episode is out.
    """
    return not title_spoils or (window_ends_at is not None and now >= window_ends_at)


def title_visible(episode: Episode, settings: SpoilerSettings, now: datetime) -> bool:
    """Whether ``episode``'s title may be shown in plain sight under ``settings`` (those of the
    server it is shown in, even for a ranking of every server's votes; the defaults in DMs) at
    ``now``.

    Only the server's window counts, not spoilers-ok channels: the same title reaches places
    that belong to no channel (autocomplete, a member's own votes), so it is shown or hidden
    alike across a server.
    """
    if not episode.title_spoils:
        return True
    window = settings.window_for(episode.show_slug)
    return title_open(
        title_spoils=True, window_ends_at=window_end(episode.release_at, window), now=now
    )


@dataclass(frozen=True, slots=True)
class TitleRule:
    """Which titles may be shown in plain sight where a request came from, at one instant: the
    server's spoiler settings (the defaults in DMs) and the time. Passed to everything that
    finds or shows episodes for that request."""

    settings: SpoilerSettings
    now: datetime

    def shows(self, episode: Episode) -> bool:
        return title_visible(episode, self.settings, self.now)


# Where nothing says which server or time applies: every spoiling title stays hidden.
HIDE_SPOILING_TITLES = TitleRule(
    SpoilerSettings(window=SpoilerWindow(None)), datetime.min.replace(tzinfo=UTC)
)
