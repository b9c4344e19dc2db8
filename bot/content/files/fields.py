"""Checks of single values shared by the show, review and ranking parsers."""

from __future__ import annotations

import difflib
import json
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time

# How much of a wrong value a message quotes: enough to recognise it, never a whole file.
SHOWN_VALUE_CHARS = 60
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def text_field(value: object) -> str | None:
    """A non-empty single string value, stripped; None if it is anything else."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def toml_value(value: object) -> str:
    """``value`` written as TOML, the way the owner would type it, cut to a readable length.

    Messages quote values in the file's own language: ``true`` and ``"7"``, not Python's
    ``True`` and ``'7'``. (tomli-w writes whole documents, not one value in a sentence.)
    """
    text = _toml(value)
    if len(text) > SHOWN_VALUE_CHARS:
        return text[: SHOWN_VALUE_CHARS - 1] + "…"
    return text


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # Python's int and float forms (inf, nan, 1e+20) are TOML's too
    if isinstance(value, str):
        # A JSON string is a TOML basic string, but for DEL, which TOML also escapes.
        return json.dumps(value[: SHOWN_VALUE_CHARS * 2], ensure_ascii=False).replace(
            "\x7f", "\\u007f"
        )
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, list):
        items = []
        for item in value:
            items.append(_toml(item))
            if sum(map(len, items)) > SHOWN_VALUE_CHARS:
                break  # cut anyway by toml_value: no need to write the rest
        return "[" + ", ".join(items) + "]"
    if isinstance(value, dict):
        pairs = []
        for key, item in value.items():
            name = key if _BARE_KEY.fullmatch(key) else _toml(key)
            pairs.append(f"{name} = {_toml(item)}")
            if sum(map(len, pairs)) > SHOWN_VALUE_CHARS:
                break
        return "{ " + ", ".join(pairs) + " }" if pairs else "{}"
    return repr(value)  # tomllib yields nothing else


def must_be(key: str, requirement: str, value: object, example: str | None = None) -> str:
    """What is wrong with ``key``: missing, or the value it has (in TOML) and what it needs."""
    like = f", like {example}" if example else ""
    if value is None:
        return f"'{key}' is missing: it must be {requirement}{like}"
    return f"'{key}' must be {requirement}{like}, got {toml_value(value)}"


def unknown_keys(table: Mapping[str, object], known: Iterable[str]) -> list[str]:
    allowed = set(known)
    return [key for key in table if key not in allowed]


def timezone_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return must_be("timezone", "an IANA time zone name", name, 'timezone = "Europe/London"')
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        by_lower = {zone.lower(): zone for zone in zoneinfo.available_timezones()}
        close = difflib.get_close_matches(name.lower(), by_lower, n=1)
        suggestion = f" (did you mean {toml_value(by_lower[close[0]])}?)" if close else ""
        return (
            f"unknown timezone {toml_value(name)}{suggestion}: use an IANA name, like "
            'timezone = "Europe/London" or timezone = "America/New_York"'
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
