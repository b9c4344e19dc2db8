"""Show files: ``shows/<slug>.toml``, one show and its episodes."""

from __future__ import annotations

import tomllib
from datetime import date, datetime

from bot.content.files.fields import (
    is_int,
    must_be,
    release_instant,
    text_field,
    timezone_problem,
    toml_value,
    unknown_keys,
)
from bot.content.files.problems import ContentProblem, has_errors
from bot.content.files.toml_text import TomlLines, open_named_toml
from bot.content.models import (
    Episode,
    Show,
    episode_code,
)

_SHOW_KEYS = ("title", "network", "timezone", "episodes")
_EPISODE_KEYS = ("season", "number", "title", "released", "aliases", "title_spoils")


def parse_show_bytes(data: bytes, rel: str) -> tuple[Show | None, list[ContentProblem]]:
    opened = open_named_toml(data, rel, _SHOW_KEYS)
    if isinstance(opened, list):
        return None, opened
    slug, doc, lines, problems = opened

    def error(message: str, line: int | None) -> None:
        problems.append(ContentProblem(rel, line, message))

    title = text_field(doc.get("title"))
    if title is None:
        error(
            "'title' must be the show's name, like title = \"Black Mirror\"",
            lines.key_line("title"),
        )
    network = text_field(doc.get("network"))
    if network is None:
        error(
            "'network' must be a non-empty string, like network = \"Netflix\"",
            lines.key_line("network"),
        )
    timezone = doc.get("timezone")
    tz_problem = timezone_problem(timezone)
    if tz_problem:
        error(tz_problem, lines.key_line("timezone"))

    raw_episodes = doc.get("episodes", [])
    if not isinstance(raw_episodes, list) or not all(isinstance(e, dict) for e in raw_episodes):
        error("'episodes' must be a list of [[episodes]] tables", lines.key_line("episodes"))
        raw_episodes = []
    elif not raw_episodes:
        problems.append(ContentProblem(rel, None, "no [[episodes]] yet", "warning"))

    episodes: list[Episode] = []
    first_seen: dict[tuple[int, int], int] = {}  # (season, number) -> index of its table
    for index, raw in enumerate(raw_episodes):
        episode = _parse_episode(
            raw,
            index,
            rel,
            slug,
            title or "",
            timezone if tz_problem is None and isinstance(timezone, str) else None,
            lines,
            problems,
        )
        # Duplicates are found from the raw numbers, so an episode with another error
        # still counts as a first listing.
        season, number = raw.get("season"), raw.get("number")
        if (
            is_int(season)
            and is_int(number)
            and isinstance(season, int)
            and isinstance(number, int)
        ):
            where = (season, number)
            if where in first_seen:
                earlier = lines.header_line("episodes", first_seen[where])
                also = f" (first listed on line {earlier})" if earlier is not None else ""
                error(
                    f"episode {episode_code(*where)} is listed twice{also}",
                    lines.header_line("episodes", index),
                )
                continue
            first_seen[where] = index
        if episode is not None:
            episodes.append(episode)

    if has_errors(problems) or title is None or network is None or not isinstance(timezone, str):
        return None, problems
    episodes.sort(key=lambda e: (e.season, e.number))
    return Show(slug, title, network, timezone, tuple(episodes)), problems


def _parse_episode(
    raw: dict[str, object],
    index: int,
    rel: str,
    slug: str,
    show_title: str,
    timezone: str | None,
    lines: TomlLines,
    problems: list[ContentProblem],
) -> Episode | None:
    """One [[episodes]] table; appends its problems and returns None if it has errors."""
    problems_before = len(problems)

    def line(key: str) -> int | None:
        return lines.key_line(key, "episodes", index)

    season, number = raw.get("season"), raw.get("number")
    season_ok = is_int(season) and isinstance(season, int) and season >= 0
    number_ok = is_int(number) and isinstance(number, int) and number >= 1
    if season_ok and number_ok and isinstance(season, int) and isinstance(number, int):
        label = f"episode {episode_code(season, number)}"
    else:
        label = f"episode #{index + 1}"

    def error(message: str, key: str) -> None:
        problems.append(ContentProblem(rel, line(key), f"{label}: {message}"))

    if not season_ok:
        error(must_be("season", "a whole number, 0 for specials", season), "season")
    if not number_ok:
        error(must_be("number", "a whole number from 1", number), "number")
    title = text_field(raw.get("title"))
    if title is None:
        error("'title' must be the episode's name (a non-empty string)", "title")

    released = raw.get("released")
    release_at: datetime | None = None
    if released is None:
        error(
            "'released' is missing: add a date or a time with an offset, like "
            "released = 2025-04-10 or released = 2025-04-10T21:00:00Z",
            "released",
        )
    elif isinstance(released, datetime):
        if released.tzinfo is None:
            local = released.isoformat()
            error(
                f"'released' {local} has no UTC offset: add Z for UTC or an offset, like "
                f"released = {local}Z or released = {local}-05:00",
                "released",
            )
        else:
            release_at = release_instant(released, "UTC")
    elif isinstance(released, date):
        if timezone is not None:
            release_at = release_instant(released, timezone)
    elif isinstance(released, str):
        unquoted = _as_toml_date(released)
        fix = (
            f": released = {unquoted}"
            if unquoted
            else f", like released = 2025-04-10, got {toml_value(released)}"
        )
        error(f"'released' must be a TOML date, written without quotes{fix}", "released")
    else:
        error(
            must_be(
                "released",
                "a date or a time with an offset",
                released,
                "released = 2025-04-10 or released = 2025-04-10T21:00:00Z",
            ),
            "released",
        )

    aliases_raw = raw.get("aliases", [])
    aliases: list[str] = []
    if not isinstance(aliases_raw, list):
        error("'aliases' must be a list of strings, like aliases = [\"Callister 2\"]", "aliases")
    else:
        for alias in aliases_raw:
            text = text_field(alias)
            if text is None or "\n" in text or "\r" in text:
                error(
                    f"each alias must be a non-empty one-line string, got {toml_value(alias)}",
                    "aliases",
                )
            else:
                aliases.append(text)

    title_spoils = raw.get("title_spoils", False)
    if not isinstance(title_spoils, bool):
        requirement = "true or false, without quotes"
        error(
            must_be("title_spoils", requirement, title_spoils, "title_spoils = true"),
            "title_spoils",
        )

    for key in unknown_keys(raw, _EPISODE_KEYS):
        problems.append(
            ContentProblem(rel, line(key), f"{label}: unknown key {key!r} (ignored)", "warning")
        )

    if (
        has_errors(problems[problems_before:])
        or release_at is None
        or title is None
        or not (season_ok and number_ok and isinstance(season, int) and isinstance(number, int))
    ):
        return None
    return Episode(
        show_slug=slug,
        show_title=show_title,
        season=season,
        number=number,
        title=title,
        release_at=release_at,
        aliases=tuple(aliases),
        title_spoils=title_spoils is True,
    )


def _as_toml_date(text: str) -> str | None:
    """``text`` if it is a date or datetime TOML accepts unquoted, else None."""
    stripped = text.strip()
    if len(stripped) > 40 or "\n" in stripped:
        return None
    try:
        value = tomllib.loads(f"v = {stripped}")["v"]
    except tomllib.TOMLDecodeError:
        return None
    return stripped if isinstance(value, date) else None
