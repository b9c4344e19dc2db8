"""Discord timestamp tags made readable in a terminal: ``<t:…>`` becomes a UTC date.

Discord shows ``<t:1748505600:f>`` in each reader's own time zone and ``<t:…:R>`` as "in 3
days"; a terminal shows the raw tag. The command line's previews print the messages the bot
would post, so they turn each tag into ``2025-05-29 08:00 UTC (in 3 days)``, relative to the
moment previewed. The messages themselves keep their tags.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

# A tag, and the relative tag of the same instant that messages put after it in brackets.
# No nested repetition and bounded digits: one pass over the text, whatever it holds.
_TAG = re.compile(r"<t:(-?\d{1,13})(?::([tTdDfFR]))?>(?: \(<t:(-?\d{1,13}):R>\))?")

_MINUTE = 60
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
# Where one unit gives way to the next, as Discord's client words relative times.
_STEPS = (
    (45 * _MINUTE, _MINUTE, "minute"),
    (22 * _HOUR, _HOUR, "hour"),
    (26 * _DAY, _DAY, "day"),
    (320 * _DAY, 30.44 * _DAY, "month"),
)
_YEAR = 365.25 * _DAY


def readable_times(text: str, now: datetime) -> str:
    """``text`` with every Discord timestamp tag written out in UTC, relative to ``now``."""
    return _TAG.sub(lambda match: _replace(match, now), text)


def _replace(match: re.Match[str], now: datetime) -> str:
    first, style, relative_of = match.group(1), match.group(2) or "f", match.group(3)
    moment = _instant(first)
    if moment is None:
        return match.group(0)  # beyond the calendar: left as Discord would get it
    if relative_of is None:
        return _one(moment, style, now)
    if relative_of == first and style != "R":
        return f"{utc_text(moment)} ({relative_text(moment, now)})"
    second = _instant(relative_of)
    shown = f"<t:{relative_of}:R>" if second is None else _one(second, "R", now)
    return f"{_one(moment, style, now)} ({shown})"


def _one(moment: datetime, style: str, now: datetime) -> str:
    if style == "R":
        return f"{relative_text(moment, now)} ({utc_text(moment)})"
    return f"{utc_text(moment)} ({relative_text(moment, now)})"


def _instant(seconds: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(seconds), UTC)
    except (OverflowError, OSError, ValueError):
        return None


def utc_text(moment: datetime) -> str:
    """``2025-05-29 08:00 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def relative_text(moment: datetime, now: datetime) -> str:
    """``in 3 days`` or ``2 months ago``, rounded as Discord's client rounds them."""
    seconds = (moment - now).total_seconds()
    distance = abs(seconds)
    if distance < 45:
        amount = "a few seconds"
    else:
        unit_seconds, unit = next(
            ((size, name) for limit, size, name in _STEPS if distance < limit), (_YEAR, "year")
        )
        count = max(1, round(distance / unit_seconds))
        amount = f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"
