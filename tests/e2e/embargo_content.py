"""The content directory the end-to-end Embargo runs on.

The bot process runs on the real clock, so besides a copy of the shipped ``data/`` this adds a
small show, *Clockwork Test*, whose episodes are released relative to the moment the directory
is built: one long ago (any 7-day window is over), one an hour ago (inside it), one in three
days (unreleased). Each has a review with an "Ending explained" section; the recent one's is
long enough to need several Discord messages and full of text that could ping, unfurl or break
out of spoiler tags.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from tests.content_factory import episode_table, review_md, show_toml, write

from .scenario import REPO_ROOT

SHOW_SLUG = "clockwork-test"
SHOW_TITLE = "Clockwork Test"
REVIEW_AUTHOR = "Ottoline Quarrie"


@dataclass(frozen=True)
class ClockEpisode:
    number: int
    title: str
    release_at: datetime
    verdict: str
    body: str
    ending: str

    @property
    def key(self) -> str:
        return f"{SHOW_SLUG}/s01e{self.number:02d}"

    @property
    def label(self) -> str:
        """How autocomplete and headings name it."""
        return f"{SHOW_TITLE} S1E{self.number} · {self.title}"

    @property
    def release_ts(self) -> int:
        return int(self.release_at.timestamp())


@dataclass(frozen=True)
class E2EContent:
    root: Path
    old: ClockEpisode
    recent: ClockEpisode
    upcoming: ClockEpisode

    @property
    def episodes(self) -> tuple[ClockEpisode, ...]:
        return (self.old, self.recent, self.upcoming)


def _long_ending() -> str:
    """About 5,000 characters: more than two messages, with every kind of hazardous text."""
    paragraphs = [
        "### The Twist",
        "Marguerite winds the cathedral clockwork backwards and the whole village relives "
        "Thursday. Everyone except Bartholomew remembers the previous loop.",
        "- Bartholomew pockets the escapement wheel.",
        "- Marguerite confronts the watchmaker beneath the belfry.",
        "> Quoted from the script: nobody leaves before midnight.",
        "Ping attempts that must stay inert: @everyone and @here, <@&123456789012345678>, "
        "<@123456789012345678>. A pipe pair || inside the prose, a `backtick span`, a lone "
        "backslash \\ and an address: https://example.com/clockwork?loop=2|3 should never unfurl.",
    ]
    for n in range(1, 15):
        paragraphs.append(
            f"Loop {n}: the villagers rearrange the pendulum chamber, Marguerite catalogues "
            f"every discrepancy, and Bartholomew hides another counterweight inside the "
            f"bakery chimney. By nightfall the orchestrated chaos resets, yet the chandelier "
            f"keeps swinging a fraction later than yesterday, which is how the archivist "
            f"finally notices that someone outside the loop is watching number {n}."
        )
    paragraphs.append(
        "Finally the archivist stops the mechanism, the loop collapses, and Thursday ends."
    )
    return "\n\n".join(paragraphs)


def write_show(root: Path, episodes: Sequence[ClockEpisode]) -> None:
    """(Re)write the Clockwork Test show file with ``episodes``."""
    tables = [episode_table(1, e.number, e.title, released=e.release_at) for e in episodes]
    write(root, f"shows/{SHOW_SLUG}.toml", show_toml(title=SHOW_TITLE, episodes=tables))


def build_content(root: Path, now: datetime | None = None) -> E2EContent:
    """Copy ``data/`` into ``root`` and add Clockwork Test, released around ``now``."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    shutil.copytree(REPO_ROOT / "data", root, ignore=shutil.ignore_patterns("*.db*"))
    episodes = (
        ClockEpisode(
            number=1,
            title="Pendulum Origins",
            release_at=now - timedelta(days=400),
            verdict="A patient opener.",
            body="A slow, careful pilot that sets up the village and its odd routines.",
            ending="Hortensia was the watchmaker all along.\n\n"
            "The counterfeit almanac explains every missing hour.",
        ),
        ClockEpisode(
            number=2,
            title="Escapement Hour",
            release_at=now - timedelta(hours=1),
            verdict="The best hour of the season.",
            body="Tense and funny at once; the cast is terrific and the score even better.",
            ending=_long_ending(),
        ),
        ClockEpisode(
            number=3,
            title="Tomorrow's Chime",
            release_at=now + timedelta(days=3),
            verdict="Worth the wait.",
            body="An advance screener review that gives nothing away.",
            ending="Wilhelmina sabotages the carillon. Evangeline inherits the workshop.",
        ),
    )
    write_show(root, episodes)
    for episode in episodes:
        text = review_md(
            episode.body,
            episode.ending,
            rating=3.5,
            verdict=episode.verdict,
            author=REVIEW_AUTHOR,
            published=date(2026, 1, 2),
        )
        write(root, f"reviews/{SHOW_SLUG}/s01e{episode.number:02d}.md", text)
    return E2EContent(root, *episodes)
