"""How long a server's data outlives Embargo's removal from it, and what is due for deletion.

When Embargo is removed from a server, the server's settings and votes are kept for
``RETENTION`` so that inviting it back restores everything; after that they are deleted. Pure:
datetimes in, decisions out; storage records the departures and a cog acts on the decisions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

RETENTION_DAYS = 30
RETENTION = timedelta(days=RETENTION_DAYS)


@dataclass(frozen=True, slots=True)
class Departure:
    """A server Embargo was removed from, and when its data goes."""

    guild_id: int
    left_at: datetime
    delete_at: datetime


def departure(guild_id: int, left_at: datetime) -> Departure:
    return Departure(guild_id=guild_id, left_at=left_at, delete_at=left_at + RETENTION)


def due_for_deletion(departures: Iterable[Departure], now: datetime) -> list[int]:
    """The servers whose data is due for deletion at ``now``, the longest overdue first."""
    due = sorted((d for d in departures if d.delete_at <= now), key=lambda d: d.delete_at)
    return [d.guild_id for d in due]


def next_deletion(departures: Iterable[Departure], now: datetime) -> datetime | None:
    """When the next deletion not yet due at ``now`` falls due; None when there is none."""
    return min((d.delete_at for d in departures if d.delete_at > now), default=None)
