"""Build content files for tests and benchmarks: single files and whole synthetic catalogues.

The text helpers write exactly the documented file formats, so a test states the values it
cares about and nothing else. :func:`write_catalogue` generates a deterministic catalogue of
any size (by default 200 shows x 100 episodes with a ~3 KB review for every episode).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

_FILLER = (
    "the episode finally lets its cast breathe and the writing follows through on what "
    "earlier seasons promised while the direction stays patient enough to let silence carry "
    "a scene every performance lands though the middle act drags before a confident close"
)
_WORDS = tuple(_FILLER.split())


def toml_value(value: object) -> str:
    """A Python value as TOML (strings, numbers, booleans, dates, datetimes, lists)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # JSON string escapes are valid TOML basic-string escapes.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def episode_table(
    season: int,
    number: int,
    title: str | None = None,
    released: object = date(2024, 1, 1),
    aliases: Sequence[str] = (),
) -> dict[str, object]:
    table: dict[str, object] = {
        "season": season,
        "number": number,
        "title": title if title is not None else f"Episode {season}.{number}",
        "released": released,
    }
    if aliases:
        table["aliases"] = list(aliases)
    return table


def show_toml(
    title: str = "Test Show",
    network: str = "Test Network",
    timezone: str = "Europe/London",
    episodes: Iterable[dict[str, object]] = (),
) -> str:
    """A show file; each episode is a dict of keys (use :func:`episode_table`)."""
    lines = [
        f"title = {toml_value(title)}",
        f"network = {toml_value(network)}",
        f"timezone = {toml_value(timezone)}",
    ]
    for episode in episodes:
        lines += ["", "[[episodes]]"]
        lines += [f"{key} = {toml_value(value)}" for key, value in episode.items()]
    return "\n".join(lines) + "\n"


def review_md(
    body: str = "A spoiler-free review.",
    ending: str | None = None,
    *,
    rating: object = 4.0,
    verdict: str = "Worth your evening.",
    author: str = "A. Critic",
    published: object = date(2024, 1, 2),
    spoiler_terms: Sequence[str] = (),
) -> str:
    front = [
        f"rating = {toml_value(rating)}",
        f"verdict = {toml_value(verdict)}",
        f"author = {toml_value(author)}",
        f"published = {toml_value(published)}",
    ]
    if spoiler_terms:
        front.append(f"spoiler_terms = {toml_value(list(spoiler_terms))}")
    text = "+++\n" + "\n".join(front) + "\n+++\n\n" + body + "\n"
    if ending is not None:
        text += "\n## Ending explained\n\n" + ending + "\n"
    return text


def ranking_toml(
    codes: Sequence[str], *, order: str = "best-to-worst", author: str = "A. Critic"
) -> str:
    return (
        f"author = {toml_value(author)}\norder = {toml_value(order)}\n"
        "episodes = [\n" + "".join(f"  {toml_value(c)},\n" for c in codes) + "]\n"
    )


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@dataclass(frozen=True)
class Catalogue:
    root: Path
    show_slugs: tuple[str, ...]
    episodes: int
    reviews: int
    rankings: int
    total_bytes: int


def _prose(rng: random.Random, size: int) -> str:
    """About ``size`` characters of paragraphs (cut at a word, ending with a full stop)."""
    paragraphs: list[str] = []
    length = 0
    while length < size:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(40, 70))]
        paragraph = " ".join(words).capitalize() + "."
        paragraphs.append(paragraph)
        length += len(paragraph) + 2
    text = "\n\n".join(paragraphs)
    return text[:size].rsplit(" ", 1)[0].rstrip(".") + "."


def write_catalogue(
    root: Path,
    *,
    shows: int = 200,
    episodes_per_show: int = 100,
    episodes_per_season: int = 10,
    review_bytes: int = 3000,
    rankings: bool = True,
    seed: int = 0,
) -> Catalogue:
    """Write a valid synthetic catalogue under ``root`` (the content directory).

    Every episode gets a review of about ``review_bytes`` bytes (a fifth of it as the
    "Ending explained" section) and, with ``rankings``, every show a full critic ranking.
    Deterministic for a given ``seed``.
    """
    rng = random.Random(seed)
    timezones = ("Europe/London", "America/New_York", "Asia/Tokyo", "UTC")
    slugs: list[str] = []
    total = 0
    review_count = 0
    for s in range(shows):
        slug = f"show-{s:04d}"
        slugs.append(slug)
        episodes = []
        codes = []
        for e in range(episodes_per_show):
            season, number = e // episodes_per_season + 1, e % episodes_per_season + 1
            released = date(2000 + s % 25, 1, 1) + timedelta(weeks=e)
            episodes.append(
                episode_table(season, number, f"Show {s} Episode {e + 1}", released, [f"ep{e + 1}"])
            )
            codes.append(f"s{season:02d}e{number:02d}")
            text = review_md(
                _prose(rng, review_bytes * 4 // 5),
                _prose(rng, review_bytes // 5),
                rating=rng.randint(0, 10) / 2,
                verdict=f"Verdict for {slug} {codes[-1]}.",
                published=released,
            )
            write(root, f"reviews/{slug}/{codes[-1]}.md", text)
            total += len(text.encode())
            review_count += 1
        text = show_toml(f"Show {s}", "Synthetic", timezones[s % len(timezones)], episodes)
        write(root, f"shows/{slug}.toml", text)
        total += len(text.encode())
        if rankings:
            shuffled = codes[:]
            rng.shuffle(shuffled)
            text = ranking_toml(shuffled, order="worst-to-best")
            write(root, f"rankings/{slug}.toml", text)
            total += len(text.encode())
    return Catalogue(
        root=root,
        show_slugs=tuple(slugs),
        episodes=shows * episodes_per_show,
        reviews=review_count,
        rankings=shows if rankings else 0,
        total_bytes=total,
    )


def write_broken_tree(root: Path) -> None:
    """A content directory with one of each kind of problem, within files and across them."""
    write(root, "shows/good.toml", show_toml(episodes=[episode_table(1, 1), episode_table(1, 2)]))
    write(root, "shows/broken.toml", show_toml(timezone="Mars/Olympus"))
    write(root, "shows/Bad Name.toml", show_toml())
    write(root, "shows/notes.txt", "not content")
    write(root, "reviews/good/s01e01.md", review_md("Fine.", "Twist."))
    write(root, "reviews/good/s01e05.md", review_md())  # no such episode
    write(root, "reviews/good/s01e02.md", review_md(rating=7))
    write(root, "reviews/good/S1E3.md", review_md())
    write(root, "reviews/broken/s01e01.md", review_md())  # its show did not load
    write(root, "reviews/ghost/s01e01.md", review_md())  # no show file at all
    write(root, "reviews/ghost/s01e02.md", review_md())
    write(root, "rankings/good.toml", ranking_toml(["s01e02", "s09e09", "s01e02"]))
    write(root, "rankings/ghost.toml", ranking_toml(["s01e01"]))
