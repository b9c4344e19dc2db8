"""Watch progress writes on PostgreSQL: each one statement that returns the rows it changed,
so what a member is told was marked is what this write marked, whatever runs beside it."""

from __future__ import annotations

from collections.abc import Sequence

from bot.progress import show_slug_of_key
from bot.storage.postgres.database import Database


class PostgresProgress:
    """``ProgressBackend`` on PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def mark(self, user_id: int, keys: Sequence[str], watched_at: int) -> frozenset[str]:
        async with self.db.transaction() as tx:
            await tx.announce([f"progress:{user_id}"])
            rows = await tx.conn.fetch(
                "INSERT INTO watched_episodes (user_id, show_slug, episode_key, watched_at) "
                "SELECT $1, show_slug, episode_key, $4 FROM unnest($2::text[], $3::text[]) "
                "AS w (show_slug, episode_key) "
                "ON CONFLICT (user_id, show_slug, episode_key) DO NOTHING RETURNING episode_key",
                user_id,
                [show_slug_of_key(key) for key in keys],
                list(keys),
                watched_at,
            )
        return frozenset(row[0] for row in rows)

    async def unmark(self, user_id: int, keys: Sequence[str]) -> frozenset[str]:
        async with self.db.transaction() as tx:
            await tx.announce([f"progress:{user_id}"])
            rows = await tx.conn.fetch(
                "DELETE FROM watched_episodes AS e USING unnest($2::text[], $3::text[]) "
                "AS w (show_slug, episode_key) WHERE e.user_id = $1 "
                "AND e.show_slug = w.show_slug AND e.episode_key = w.episode_key "
                "RETURNING e.episode_key",
                user_id,
                [show_slug_of_key(key) for key in keys],
                list(keys),
            )
        return frozenset(row[0] for row in rows)
