"""Spoiler-window durations as moderators type them: ``7d``, ``36h``, ``2w``, ``1d12h``, ``off``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

MAX_WINDOW = timedelta(days=3650)
MAX_WINDOW_SECONDS = int(MAX_WINDOW.total_seconds())
DEFAULT_WINDOW = timedelta(days=7)
EXAMPLES = "`7d`, `36h`, `2w`, `1d12h`, `off` (no window) or `forever`"

_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60}
_UNIT_ALIASES = {
    "w": "w", "wk": "w", "wks": "w", "week": "w", "weeks": "w",
    "d": "d", "day": "d", "days": "d",
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
}  # fmt: skip
# Possessive quantifiers: a part is matched at one position and never given back, so parsing
# is linear in the text (a greedy ``\d+`` retried along a long run of digits is quadratic).
_PART = re.compile(r"\s*+(\d++)\s*+([a-z]++)")
# No duration anyone types is longer; the rest of the text is never looked at.
MAX_DURATION_TEXT = 64
# More digits than any amount that fits in ten years (int() also refuses > 4,300 digits).
_MAX_DIGITS = 9
_OFF = {"off", "none", "0", "no", "disable", "disabled"}
_FOREVER = {"forever", "always", "never-ends", "infinite", "permanent"}


class DurationError(ValueError):
    """The text is not a duration; the message is friendly and shows examples."""


@dataclass(frozen=True, slots=True)
class SpoilerWindow:
    """How long after release spoilers stay hidden. ``length`` None means forever."""

    length: timedelta | None

    @property
    def is_forever(self) -> bool:
        return self.length is None

    @property
    def is_off(self) -> bool:
        return self.length is not None and self.length <= timedelta(0)

    @property
    def seconds(self) -> int | None:
        return None if self.length is None else int(self.length.total_seconds())

    @classmethod
    def from_seconds(cls, seconds: int | None) -> SpoilerWindow:
        return cls(None if seconds is None else timedelta(seconds=seconds))

    def describe(self) -> str:
        if self.length is None:
            return "forever"
        if self.is_off:
            return "off"
        return format_timedelta(self.length)


DEFAULT_SPOILER_WINDOW = SpoilerWindow(DEFAULT_WINDOW)


def parse_window(text: str) -> SpoilerWindow:
    """Parse a moderator's duration; raise DurationError with examples on anything else.

    Error messages never repeat the text: the moderator sees it in the command they sent, and
    an echo of member text would need bounding and escaping.
    """
    cleaned = text.strip().lower()
    if not cleaned:
        raise DurationError(f"Give a duration such as {EXAMPLES}.")
    if len(cleaned) > MAX_DURATION_TEXT:
        raise DurationError(f"That is too long to be a duration. Try {EXAMPLES}.")
    if cleaned in _OFF:
        return SpoilerWindow(timedelta(0))
    if cleaned in _FOREVER:
        return SpoilerWindow(None)

    compact = cleaned.replace(",", " ").replace(" and ", " ").rstrip()
    position = 0
    total = 0
    seen_units: set[str] = set()
    while position < len(compact):
        match = _PART.match(compact, position)
        unit = _UNIT_ALIASES.get(match.group(2)) if match else None
        if match is None or unit is None or unit in seen_units:
            raise DurationError(f"That is not a duration. Try {EXAMPLES}.")
        seen_units.add(unit)
        digits = match.group(1).lstrip("0") or "0"
        if len(digits) > _MAX_DIGITS:
            total = MAX_WINDOW_SECONDS + 1
        else:
            total += int(digits) * _UNIT_SECONDS[unit]
        position = match.end()

    if total > MAX_WINDOW_SECONDS:
        raise DurationError(
            "That is longer than the maximum of 3650 days (10 years). "
            "Use `forever` to keep spoilers hidden indefinitely."
        )
    return SpoilerWindow(timedelta(seconds=total))


def format_timedelta(length: timedelta) -> str:
    """``timedelta(days=1, hours=12)`` -> ``1 day 12 hours``; weeks only when exact."""
    seconds = int(length.total_seconds())
    parts = []
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount} {name}{'' if amount == 1 else 's'}")
    days = int(length.total_seconds()) // 86400
    if len(parts) == 1 and parts[0].endswith(("day", "days")) and days % 7 == 0:
        weeks = days // 7
        return f"{weeks} week{'' if weeks == 1 else 's'}"
    return " ".join(parts) or "0 minutes"
