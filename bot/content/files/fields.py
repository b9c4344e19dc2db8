"""Checks of single values shared by the show, review and ranking parsers."""

from __future__ import annotations

import difflib
import zoneinfo
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def text_field(value: object) -> str | None:
    """A non-empty single string value, stripped; None if it is anything else."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def unknown_keys(table: Mapping[str, object], known: Iterable[str]) -> list[str]:
    allowed = set(known)
    return [key for key in table if key not in allowed]


def timezone_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return "'timezone' must be an IANA time zone name like 'Europe/London'"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        by_lower = {zone.lower(): zone for zone in zoneinfo.available_timezones()}
        close = difflib.get_close_matches(name.lower(), by_lower, n=1)
        suggestion = f" (did you mean {by_lower[close[0]]!r}?)" if close else ""
        return (
            f"unknown timezone {name!r}{suggestion}: use an IANA name like 'Europe/London' "
            "or 'America/New_York'"
        )
    return None


def release_instant(value: date | datetime, timezone: str) -> datetime:
    """The UTC instant of a ``released`` value.

    A date alone means midnight at the start of that day in the show's time zone, so the
    same date lands on a different UTC hour in summer and winter. Whole seconds only,
    because storage keeps Unix seconds and a reloaded episode must equal the parsed one.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a local datetime has no instant")
        instant = value
    else:
        instant = datetime.combine(value, time(0), tzinfo=zoneinfo.ZoneInfo(timezone))
    return instant.astimezone(UTC).replace(microsecond=0)
