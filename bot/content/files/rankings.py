"""Critic rankings: ``rankings/<slug>.toml``, one critic's order of a show's episodes."""

from __future__ import annotations

import re

from bot.content.files.fields import (
    must_be,
    text_field,
    toml_value,
)
from bot.content.files.layout import (
    SHOWS_DIR,
)
from bot.content.files.problems import ContentProblem, has_errors
from bot.content.files.toml_text import open_named_toml
from bot.content.models import (
    CriticRanking,
    RankingOrder,
    Show,
    episode_code,
)

# Rankings accept "s07e06", "S7E6", "s7e06"...; stored and compared in canonical form.
_LOOSE_CODE = re.compile(r"^\s*s(\d+)\s*e(\d+)\s*$", re.IGNORECASE)


def normalise_code(text: str) -> str | None:
    """``"S7E6"`` -> ``"s07e06"``; None if ``text`` is not an episode code."""
    match = _LOOSE_CODE.match(text)
    if match is None:
        return None
    return episode_code(int(match.group(1)), int(match.group(2)))


_RANKING_KEYS = ("author", "order", "episodes")
_ORDERS = " or ".join(f'"{o.value}"' for o in RankingOrder)


def parse_ranking_bytes(
    data: bytes, rel: str, show: Show | None
) -> tuple[CriticRanking | None, list[ContentProblem]]:
    """Parse a ranking; with ``show=None`` its codes are checked for form only."""
    opened = open_named_toml(data, rel, _RANKING_KEYS)
    if isinstance(opened, list):
        return None, opened
    slug, doc, lines, problems = opened

    def error(message: str, line: int | None) -> None:
        problems.append(ContentProblem(rel, line, message))

    author = text_field(doc.get("author"))
    if author is None:
        error("'author' must be the critic's name (a non-empty string)", lines.key_line("author"))
    order_raw = doc.get("order")
    order = next((known for known in RankingOrder if known.value == order_raw), None)
    if order is None:
        error(must_be("order", f"one of {_ORDERS}", order_raw), lines.key_line("order"))

    listed = doc.get("episodes")
    episodes_line = lines.key_line("episodes")
    codes: list[str] = []
    if not isinstance(listed, list) or not listed:
        error(
            '\'episodes\' must list episode codes, like episodes = ["s01e02", "s01e01"]',
            episodes_line,
        )
        listed = []
    known = {e.code for e in show.episodes} if show is not None else None
    # Lines are looked up only for problems: finding them costs a scan per item.
    first_seen: dict[str, tuple[str, int]] = {}  # code -> (literal, occurrence) first listed
    occurrences: dict[str, int] = {}
    for item in listed:
        raw = item if isinstance(item, str) else repr(item)
        nth = occurrences.get(raw, 0)
        occurrences[raw] = nth + 1
        code = normalise_code(item) if isinstance(item, str) else None
        if code is None:
            error(
                f'{toml_value(item)} is not an episode code like "s07e06"',
                lines.literal_line(episodes_line, raw, nth),
            )
            continue
        if code in first_seen:
            earlier = lines.literal_line(episodes_line, *first_seen[code])
            also = f" (first on line {earlier})" if earlier is not None else ""
            error(
                f"episode {code} is ranked twice{also}", lines.literal_line(episodes_line, raw, nth)
            )
            continue
        first_seen[code] = (raw, nth)
        if known is not None and code not in known:
            error(
                f"episode {code} is not in {SHOWS_DIR}/{slug}.toml",
                lines.literal_line(episodes_line, raw, nth),
            )
            continue
        codes.append(code)

    if show is not None:
        # Specials (season 0) are often left out of a ranking on purpose: no warning for them.
        missing = [e.code for e in show.episodes if e.season > 0 and e.code not in first_seen]
        if missing:
            shown = ", ".join(missing[:10]) + (
                f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            )
            problems.append(
                ContentProblem(
                    rel, episodes_line, f"{len(missing)} episode(s) not ranked: {shown}", "warning"
                )
            )

    if has_errors(problems) or author is None or order is None:
        return None, problems
    best_first = tuple(reversed(codes)) if order is RankingOrder.WORST_TO_BEST else tuple(codes)
    return CriticRanking(show_slug=slug, author=author, best_first=best_first), problems
