"""Watch-role settings SQL: each server's roles for members who have watched a show or a
season, and the last time granting or removing one failed there (for /embargo settings).

Read on every change of a member's progress in the server, so they are cached per server with
the settings' rule: the entry is dropped after every committed write, and a read that a write
overtook is not cached.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.progress import RoleSyncFailure, RoleSyncProblem, WatchRole
from bot.storage.backend import Database, Transaction

# Stored for a role that covers a whole show (season 0 is the specials).
WHOLE_SHOW = -1
# Discord allows 250 roles a server; /embargo settings lists every watch role.
MAX_WATCH_ROLES = 50


class WatchRoleInUseError(Exception):
    """The role already marks another show or season in the server; nothing was changed."""

    def __init__(self, existing: WatchRole) -> None:
        super().__init__(f"role {existing.role_id} already marks {existing.show_slug}")
        self.existing = existing


class TooManyWatchRolesError(Exception):
    """The server already has ``MAX_WATCH_ROLES``; nothing was changed."""


@dataclass(frozen=True, slots=True)
class WatchRoleSettings:
    roles: tuple[WatchRole, ...]  # by show, then season (the whole show first)
    last_failure: RoleSyncFailure | None


def _season_column(season: int | None) -> int:
    if season is not None and season < 0:
        raise ValueError(f"no season {season}")
    return WHOLE_SHOW if season is None else season


def _role(row: Sequence[Any]) -> WatchRole:
    guild_id, show_slug, season, role_id = row
    return WatchRole(
        guild_id=int(guild_id),
        show_slug=str(show_slug),
        season=None if season == WHOLE_SHOW else int(season),
        role_id=int(role_id),
    )


_ROLE_COLUMNS = "guild_id, show_slug, season, role_id"


class WatchRoleStore:
    """Mixin for ``Storage``: expects ``self.db``."""

    db: Database
    _watch_role_cache: dict[int, WatchRoleSettings]
    _watch_role_writes: int
    _caching: bool  # whether caches may be used (see Storage.trust_caches)

    def _init_watch_role_cache(self) -> None:
        self._watch_role_cache = {}
        self._watch_role_writes = 0

    def _watch_roles_changed(self, guild_id: int) -> None:
        self._watch_role_writes += 1
        self._watch_role_cache.pop(guild_id, None)

    async def watch_role_settings(self, guild_id: int) -> WatchRoleSettings:
        """The server's watch roles and last role failure, as committed."""
        cached = self._watch_role_cache.get(guild_id) if self._caching else None
        if cached is not None:
            return cached
        writes = self._watch_role_writes
        role_rows, failure_rows = await self.db.read_together(
            [
                (
                    f"SELECT {_ROLE_COLUMNS} FROM watch_roles WHERE guild_id = ? "
                    "ORDER BY show_slug, season",
                    (guild_id,),
                ),
                (
                    "SELECT role_id, problem, failed_at FROM watch_role_failures "
                    "WHERE guild_id = ?",
                    (guild_id,),
                ),
            ]
        )
        failure = None
        if failure_rows:
            role_id, problem, failed_at = failure_rows[0]
            failure = RoleSyncFailure(
                role_id=int(role_id),
                problem=RoleSyncProblem(problem),
                failed_at=datetime.fromtimestamp(int(failed_at), tz=UTC),
            )
        settings = WatchRoleSettings(tuple(_role(row) for row in role_rows), failure)
        if writes == self._watch_role_writes and self._caching:
            self._watch_role_cache[guild_id] = settings
        return settings

    async def watch_roles_for_show(self, show_slug: str) -> list[WatchRole]:
        """Every server's watch roles for a show, by server."""
        return await self.watch_roles_for_shows([show_slug])

    async def watch_roles_for_shows(self, show_slugs: Collection[str]) -> list[WatchRole]:
        """Every server's watch roles for these shows (after a member's progress in them
        changed), by server."""
        slugs = sorted(set(show_slugs))
        if not slugs:
            return []
        marks = ", ".join("?" * len(slugs))
        rows = await self.db.read(
            f"SELECT {_ROLE_COLUMNS} FROM watch_roles WHERE show_slug IN ({marks}) "
            "ORDER BY guild_id, show_slug, season",
            slugs,
        )
        return [_role(row) for row in rows]

    async def set_watch_role(
        self, guild_id: int, show_slug: str, season: int | None, role_id: int
    ) -> WatchRole | None:
        """Make ``role_id`` the server's role for the show (or season); returns the binding it
        replaced. Clears the server's last role failure: the moderators have just acted on the
        set-up. Raises ``WatchRoleInUseError`` or ``TooManyWatchRolesError``, changing nothing."""
        season_value = _season_column(season)
        try:
            async with self.db.transaction() as conn:
                # Each write reads what it replaces (and the server's count of roles).
                await conn.serialize(f"watch_roles:{guild_id}")
                await conn.announce([f"watch_roles:{guild_id}"])
                old = await _one_role(
                    conn,
                    "guild_id = ? AND show_slug = ? AND season = ?",
                    (guild_id, show_slug, season_value),
                )
                holder = await _one_role(conn, "guild_id = ? AND role_id = ?", (guild_id, role_id))
                if holder is not None and holder != old:
                    raise WatchRoleInUseError(holder)
                if old is None:
                    count_row = await conn.fetch_one(
                        "SELECT COUNT(*) FROM watch_roles WHERE guild_id = ?", (guild_id,)
                    )
                    if count_row is not None and count_row[0] >= MAX_WATCH_ROLES:
                        raise TooManyWatchRolesError
                await conn.execute(
                    "INSERT INTO watch_roles (guild_id, show_slug, season, role_id) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (guild_id, show_slug, season) "
                    "DO UPDATE SET role_id = excluded.role_id",
                    (guild_id, show_slug, season_value, role_id),
                )
                await conn.execute(
                    "DELETE FROM watch_role_failures WHERE guild_id = ?", (guild_id,)
                )
        finally:
            self._watch_roles_changed(guild_id)
        return old

    async def remove_watch_role(
        self, guild_id: int, show_slug: str, season: int | None
    ) -> WatchRole | None:
        """Stop giving the show's (or season's) role; returns the binding removed, if any.
        Clears the server's last role failure, like ``set_watch_role``."""
        season_value = _season_column(season)
        try:
            async with self.db.transaction() as conn:
                # Each write reads what it replaces (and the server's count of roles).
                await conn.serialize(f"watch_roles:{guild_id}")
                await conn.announce([f"watch_roles:{guild_id}"])
                old = await _one_role(
                    conn,
                    "guild_id = ? AND show_slug = ? AND season = ?",
                    (guild_id, show_slug, season_value),
                )
                if old is not None:
                    await conn.execute(
                        "DELETE FROM watch_roles "
                        "WHERE guild_id = ? AND show_slug = ? AND season = ?",
                        (guild_id, show_slug, season_value),
                    )
                    await conn.execute(
                        "DELETE FROM watch_role_failures WHERE guild_id = ?", (guild_id,)
                    )
        finally:
            self._watch_roles_changed(guild_id)
        return old

    async def record_role_sync_failure(
        self, guild_id: int, role_id: int, problem: RoleSyncProblem, *, now: datetime
    ) -> None:
        """Remember the server's latest watch-role failure (replacing the one before)."""
        try:
            async with self.db.transaction() as conn:
                await conn.announce([f"watch_roles:{guild_id}"])
                await conn.execute(
                    "INSERT INTO watch_role_failures (guild_id, role_id, problem, failed_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (guild_id) DO UPDATE SET "
                    "role_id = excluded.role_id, problem = excluded.problem, "
                    "failed_at = excluded.failed_at",
                    (guild_id, role_id, problem.value, int(now.timestamp())),
                )
        finally:
            self._watch_roles_changed(guild_id)

    # ---- who holds a watch role (given by Embargo) ---------------------------------------

    async def record_role_holder(
        self, guild_id: int, role_id: int, user_id: int, *, holds: bool
    ) -> None:
        """After Discord accepted a grant (``holds``) or a removal of a watch role."""
        async with self.db.transaction() as conn:
            if holds:
                await conn.execute(
                    "INSERT INTO watch_role_holders (guild_id, role_id, user_id) "
                    "VALUES (?, ?, ?) ON CONFLICT (guild_id, role_id, user_id) DO NOTHING",
                    (guild_id, role_id, user_id),
                )
            else:
                await conn.execute(
                    "DELETE FROM watch_role_holders "
                    "WHERE guild_id = ? AND role_id = ? AND user_id = ?",
                    (guild_id, role_id, user_id),
                )

    async def role_holders(self, guild_id: int, role_id: int) -> list[int]:
        """The members Embargo gave the role to (and hasn't taken it back from)."""
        rows = await self.db.read(
            "SELECT user_id FROM watch_role_holders WHERE guild_id = ? AND role_id = ? "
            "ORDER BY user_id",
            (guild_id, role_id),
        )
        return [int(row[0]) for row in rows]

    async def forget_role_holds(self, user_id: int, guild_ids: Collection[int]) -> None:
        """Forget which watch roles the member was given in these servers: after /forget-me,
        once the process serving each server has taken the roles back (or tried to)."""
        if not guild_ids:
            return
        async with self.db.transaction() as conn:
            await conn.executemany(
                "DELETE FROM watch_role_holders WHERE user_id = ? AND guild_id = ?",
                [(user_id, guild_id) for guild_id in sorted(set(guild_ids))],
            )

    async def holders_without_progress(self) -> list[int]:
        """The members Embargo still records as holding a watch role although they have
        nothing marked watched: forgotten (/forget-me) while the process serving one of
        their servers was not running, or whose last removal failed."""
        rows = await self.db.read(
            "SELECT DISTINCT h.user_id FROM watch_role_holders AS h WHERE NOT EXISTS "
            "(SELECT 1 FROM watched_episodes AS w WHERE w.user_id = h.user_id) ORDER BY h.user_id"
        )
        return [int(row[0]) for row in rows]

    async def roles_held_by(self, user_id: int) -> list[tuple[int, int]]:
        """(server, role) for every watch role Embargo gave the member."""
        rows = await self.db.read(
            "SELECT guild_id, role_id FROM watch_role_holders WHERE user_id = ? "
            "ORDER BY guild_id, role_id",
            (user_id,),
        )
        return [(int(row[0]), int(row[1])) for row in rows]


async def _one_role(conn: Transaction, where: str, params: tuple[object, ...]) -> WatchRole | None:
    # where is one of the fixed conditions above, never member input.
    row = await conn.fetch_one(f"SELECT {_ROLE_COLUMNS} FROM watch_roles WHERE {where}", params)
    return None if row is None else _role(row)
