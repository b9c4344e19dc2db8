"""Reserving IDENTIFY instants per session-start bucket, for every process on the database
(the pacing itself: ``bot/shards.py``)."""

from __future__ import annotations

from bot.shards import IdentifySlot, next_identify_at
from bot.storage.backend import Database

# The database's clock, in seconds since the epoch: one clock for every process, whatever
# machine it runs on.
_NOW = {
    "sqlite": "SELECT (julianday('now') - 2440587.5) * 86400.0",
    "postgres": "SELECT extract(epoch FROM clock_timestamp())::float8",
}


class IdentifyStore:
    """Mixin for ``Storage``: expects ``self.db``."""

    db: Database

    async def reserve_identify(
        self, bucket: int, *, interval_s: float, horizon_s: float
    ) -> IdentifySlot:
        """Reserve the next instant ``bucket`` may identify at (see ``next_identify_at``),
        committed before this returns. Reservations of one bucket are made one at a time over
        every process: PostgreSQL takes an advisory lock on the bucket, SQLite has one writer."""
        async with self.db.transaction() as tx:
            await tx.serialize(f"identify:{bucket}")
            clock = await tx.fetch_one(_NOW[self.db.dialect])
            assert clock is not None  # a SELECT without FROM returns one row
            now = float(clock[0])
            row = await tx.fetch_one(
                "SELECT reserved_at FROM identify_slots WHERE bucket = ?", (bucket,)
            )
            at = next_identify_at(
                None if row is None else float(row[0]),
                now,
                interval_s=interval_s,
                horizon_s=horizon_s,
            )
            await tx.execute(
                "INSERT INTO identify_slots (bucket, reserved_at) VALUES (?, ?) "
                "ON CONFLICT (bucket) DO UPDATE SET reserved_at = excluded.reserved_at",
                (bucket, at),
            )
        return IdentifySlot(at=at, wait_s=at - now)
