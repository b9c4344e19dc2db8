"""The numbered schema migrations, per SQL dialect.

``NNN_name.sql`` is run as it is by every backend; where the dialects differ, the number has
one file per dialect instead (``NNN_name.sqlite.sql`` and ``NNN_name.postgres.sql``).
"""

from __future__ import annotations

import re
from importlib import resources
from typing import NamedTuple

DIALECTS = ("sqlite", "postgres")
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+(?:\.(sqlite|postgres))?\.sql$")


class MigrationsBroken(Exception):
    """The shipped migrations are not numbered 001, 002, ... with one file per dialect."""


class Migration(NamedTuple):
    number: int
    name: str  # the file's name
    script: str


def migrations(dialect: str) -> list[Migration]:
    """Every migration for ``dialect``, in order."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    common: dict[int, Migration] = {}
    own: dict[int, Migration] = {}
    others: set[int] = set()
    for entry in resources.files(__name__).iterdir():
        match = _NAME.match(entry.name)
        if not match:
            continue
        number, file_dialect = int(match.group(1)), match.group(2)
        migration = Migration(number, entry.name, entry.read_text(encoding="utf-8"))
        if file_dialect is None:
            common[number] = migration
        elif file_dialect == dialect:
            own[number] = migration
        else:
            others.add(number)
    if common.keys() & (own.keys() | others):
        both = sorted(common.keys() & (own.keys() | others))
        raise MigrationsBroken(f"migrations {both} have a common file and a dialect's file")
    if own.keys() != others:
        uneven = sorted(own.keys() ^ others)
        raise MigrationsBroken(f"migrations {uneven} lack a file for one of the dialects")
    found = sorted({**common, **own}.values(), key=lambda migration: migration.number)
    numbers = [migration.number for migration in found]
    if numbers != list(range(1, len(found) + 1)):
        raise MigrationsBroken(f"migrations are not numbered 001, 002, ... without gaps: {numbers}")
    return found


def statements(script: str) -> list[str]:
    """Split a migration into statements (our migrations contain no ';' inside literals)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]
