"""Plain data for the content Embargo serves: shows, episodes, reviews and critic rankings.

These types carry no Discord objects and no SQL: the parser builds them from files, storage
persists them, and the rest of the core reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


def episode_code(season: int, number: int) -> str:
    """The canonical code used in file names and rankings: ``s07e06``."""
    return f"s{season:02d}e{number:02d}"


def episode_key(show_slug: str, season: int, number: int) -> str:
    """The stable identifier of an episode across content reloads: ``black-mirror/s07e06``.

    Votes refer to episodes by this key rather than by a row id, so that replacing a show's
    rows when its file changes never orphans or deletes anyone's vote.
    """
    return f"{show_slug}/{episode_code(season, number)}"


def show_slug_of(episode_key: str) -> str:
    """The show part of an ``episode_key``."""
    return episode_key.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class Episode:
    show_slug: str
    show_title: str
    season: int
    number: int
    title: str
    release_at: datetime  # timezone-aware, UTC
    aliases: tuple[str, ...] = ()
    # The title itself gives something away ("X is killed"): it is spoiler content until the
    # episode's spoiler window ends where it is shown (bot.spoilers.policy.title_visible).
    title_spoils: bool = False
    # Derived once: keys are looked up on every vote, ranking row and button click.
    code: str = field(init=False, repr=False, compare=False)
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        code = episode_code(self.season, self.number)
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "key", f"{self.show_slug}/{code}")

    @property
    def short_code(self) -> str:
        """Human form used in labels: ``S7E6``."""
        return f"S{self.season}E{self.number}"


@dataclass(frozen=True, slots=True)
class Show:
    slug: str
    title: str
    network: str
    timezone: str  # IANA name, used to place date-only release values
    episodes: tuple[Episode, ...] = ()


@dataclass(frozen=True, slots=True)
class Review:
    episode_key: str
    rating: float  # 0-5 in half steps
    verdict: str
    author: str
    published: date
    body: str  # spoiler-free Markdown
    ending: str | None  # the "Ending explained" section: spoiler content, or None if absent
    # Phrases that spoil the episode: the guard watches for them while its window runs.
    spoiler_terms: tuple[str, ...] = ()


class RankingOrder(StrEnum):
    WORST_TO_BEST = "worst-to-best"
    BEST_TO_WORST = "best-to-worst"


@dataclass(frozen=True, slots=True)
class CriticRanking:
    show_slug: str
    author: str
    # Episode codes ("s07e06") best first, whatever order the file listed them in.
    best_first: tuple[str, ...] = field(default_factory=tuple)
