"""The hand-written parser for plain TOML that the content parser once used as a fast path.

Kept here only so ``content_pipeline`` can measure it against ``tomllib`` again. Content files
are nearly always written one statement per line, ``key = value`` with a bare key and a plain
value, plus ``[[table]]`` headers; ``plain_toml`` parses exactly that subset and returns None
for anything else (an escape in a string, a multi-line array, a dotted key, a duplicate
key...), where the caller runs tomllib.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone

# Control characters TOML allows in no string and no comment (a tab is allowed). Lines
# never hold a '\n': the text is split on it.
_CTRL = r"\x00-\x08\x0a-\x1f\x7f"
_BASIC = rf'"[^"\\{_CTRL}]*"'  # a basic string without escapes
_LITERAL = rf"'[^'{_CTRL}]*'"
_STRING_ITEM = re.compile(rf'"([^"\\{_CTRL}]*)"|\'([^\'{_CTRL}]*)\'')
_PLAIN_LINE = re.compile(
    r"[ \t]*(?:"
    r"\[\[[ \t]*(?P<table>[A-Za-z0-9_-]+)[ \t]*\]\]"
    r"|(?P<key>[A-Za-z0-9_-]+)[ \t]*=[ \t]*(?:"
    rf'"(?P<basic>[^"\\{_CTRL}]*)"'
    rf"|'(?P<literal>[^'{_CTRL}]*)'"
    # Decimal numbers only, short enough that int() never meets its digit limit.
    r"|(?P<int>[+-]?(?:0|[1-9][0-9]{0,17}))(?P<frac>\.[0-9]{1,17})?"
    r"|(?P<bool>true|false)"
    r"|(?P<date>(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2}))"
    r"(?:[Tt](?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):(?P<s>[0-9]{2})(?:\.(?P<us>[0-9]{1,6}))?"
    r"(?:(?P<zulu>[Zz])|(?P<sign>[+-])(?P<oh>[0-9]{2}):(?P<om>[0-9]{2}))?)?"
    rf"|(?P<array>\[)[ \t]*(?P<items>(?:{_BASIC}|{_LITERAL})"
    rf"(?:[ \t]*,[ \t]*(?:{_BASIC}|{_LITERAL}))*[ \t]*,?[ \t]*)?\]"
    r"))?"
    rf"[ \t]*(?:#[^{_CTRL}]*)?"
)


def _plain_value(match: re.Match[str]) -> object:
    """The value of a key line _PLAIN_LINE matched; raises ValueError if tomllib would
    refuse it (an impossible date, an offset out of range)."""
    if match["basic"] is not None:
        return match["basic"]
    if match["literal"] is not None:
        return match["literal"]
    if match["int"] is not None:
        if match["frac"] is not None:
            return float(match["int"] + match["frac"])
        return int(match["int"])
    if match["bool"] is not None:
        return match["bool"] == "true"
    if match["array"] is not None:
        items = match["items"] or ""
        return [basic or literal for basic, literal in _STRING_ITEM.findall(items)]
    year, month, day = int(match["y"]), int(match["mo"]), int(match["d"])
    if match["h"] is None:
        return date(year, month, day)
    offset: tzinfo | None = None
    if match["zulu"] is not None:
        offset = UTC
    elif match["sign"] is not None:
        offset = _utc_offset(match["sign"], match["oh"], match["om"])
    return datetime(
        year,
        month,
        day,
        int(match["h"]),
        int(match["mi"]),
        int(match["s"]),
        int(match["us"].ljust(6, "0")) if match["us"] else 0,
        tzinfo=offset,
    )


@functools.cache
def _utc_offset(sign: str, hours: str, minutes: str) -> tzinfo:
    """A fixed offset; cached, as a show file repeats the same one for every episode."""
    if int(hours) > 23 or int(minutes) > 59:  # tomllib's limits, tighter than timedelta's
        raise ValueError("offset out of range")
    factor = 1 if sign == "+" else -1
    return dt_timezone(timedelta(hours=factor * int(hours), minutes=factor * int(minutes)))


def plain_toml(text: str) -> dict[str, object] | None:
    """``tomllib.loads(text)`` for plain TOML (see above), or None to say "use tomllib"."""
    root: dict[str, object] = {}
    arrays: dict[str, list[dict[str, object]]] = {}  # the root keys [[table]] headers made
    table = root
    # tomllib reads "\r\n" as a newline; a lone "\r" fails _PLAIN_LINE (a control char).
    for line in text.replace("\r\n", "\n").split("\n"):
        match = _PLAIN_LINE.fullmatch(line)
        if match is None:
            return None
        name = match["table"]
        if name is not None:
            if name not in arrays:
                if name in root:
                    return None  # tomllib refuses to turn a value into an array of tables
                root[name] = arrays[name] = []
            table = {}
            arrays[name].append(table)
            continue
        key = match["key"]
        if key is None:
            continue  # a blank or comment line
        if key in table:
            return None  # a duplicate: tomllib reports it
        try:
            table[key] = _plain_value(match)
        except ValueError:
            return None
    return root
