"""Episode discussion SQL: announce settings, the ledger of posts, and the threads opened.

The ledger makes the scheduler's posts at-most-once across restarts: one row per server,
episode and kind (``discussion_posts``), written as soon as a try's outcome is known. Every
write commits before its method returns. Small reads (one server's settings, one thread, a few
servers' rows of an episode) go through ``Database.read``; reads that may cover every server go
through the writer's thread, off the event loop.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.calendar import (
    MAX_ATTEMPTS,
    AnnounceSettings,
    AnnounceTarget,
    LedgerEntry,
    PostKey,
    PostKind,
    PostState,
)
from bot.storage.backend import Database, Row, Statement, Transaction

# Discord's error texts are short, but a ledger row should never hold an unbounded string.
MAX_ERROR_LENGTH = 300
# Up to this many servers per episode are looked up by key; beyond, one range read is cheaper.
_GUILDS_PER_LOOKUP = 50
_CHECKED_THROUGH = "discussion.checked_through"

_RECORD_POSTED = (
    "INSERT INTO discussion_posts (episode_key, guild_id, kind, state, channel_id, "
    "message_id, attempts, due_at, created_at, updated_at) "
    "VALUES (?, ?, ?, 'posted', ?, ?, 1, ?, ?, ?) "
    "ON CONFLICT (episode_key, guild_id, kind) DO UPDATE SET state = 'posted', "
    "channel_id = excluded.channel_id, message_id = excluded.message_id, "
    "attempts = discussion_posts.attempts + 1, last_error = NULL, "
    "updated_at = excluded.updated_at "
    "WHERE discussion_posts.state <> 'posted'"
)
_RECORD_THREAD = (
    "UPDATE discussion_posts SET thread_id = ?, last_error = NULL, updated_at = ? "
    "WHERE episode_key = ? AND guild_id = ? AND kind = ?"
)
_REMEMBER_THREAD = (
    "INSERT INTO discussion_threads (thread_id, guild_id, episode_key, parent_id, created_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (thread_id) DO NOTHING"
)

_FORGET_STARTED = (
    "DELETE FROM forum_posts_started WHERE episode_key = ? AND guild_id = ? AND kind = ?"
)

_POST_COLUMNS = (
    "episode_key, guild_id, kind, state, attempts, updated_at, channel_id, message_id, "
    "thread_id, last_error"
)


@dataclass(frozen=True, slots=True)
class DiscussionThread:
    thread_id: int
    guild_id: int
    episode_key: str
    parent_id: int


class DiscussionStore:
    """Mixin for ``Storage``: expects ``self.db``."""

    db: Database

    # -- announce settings ---------------------------------------------------------------------

    async def get_announce(self, guild_id: int) -> AnnounceSettings:
        default_rows, show_rows = await self.db.read_together(
            [
                (
                    "SELECT guild_id, channel_id, ping_role_id, set_at "
                    "FROM announce_channels WHERE guild_id = ?",
                    (guild_id,),
                ),
                (
                    "SELECT guild_id, show_slug, channel_id, ping_role_id, set_at "
                    "FROM announce_shows WHERE guild_id = ?",
                    (guild_id,),
                ),
            ]
        )
        return _announce(default_rows, show_rows).get(guild_id, AnnounceSettings())

    async def all_announce(self) -> dict[int, AnnounceSettings]:
        """Every server that set anything (the scheduler's view); others announce nothing."""
        db = self.db
        default_rows = await db.fetch_all(
            "SELECT guild_id, channel_id, ping_role_id, set_at FROM announce_channels"
        )
        show_rows = await db.fetch_all(
            "SELECT guild_id, show_slug, channel_id, ping_role_id, set_at FROM announce_shows"
        )
        return _announce(default_rows, show_rows)

    async def set_announce(
        self,
        guild_id: int,
        channel_id: int,
        ping_role_id: int | None,
        *,
        show_slug: str | None = None,
        now: datetime | None = None,
    ) -> AnnounceSettings:
        """Send release posts (for one show, or by default) to ``channel_id``; returns the
        settings as they were. Moving to another channel (or turning a show back on) restarts
        the clock: only episodes released from now on get release posts there. Changing only
        the ping role keeps it."""
        old = await self.get_announce(guild_id)
        at = _to_unix(now or datetime.now(UTC))

        async def write(conn: Transaction) -> None:
            # The leader's release calendar, in whichever process, reschedules the server.
            await conn.announce([f"settings:{guild_id}"])
            if show_slug is None:
                await conn.execute(
                    "INSERT INTO announce_channels (guild_id, channel_id, ping_role_id, set_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (guild_id) DO UPDATE SET "
                    "set_at = CASE WHEN announce_channels.channel_id = excluded.channel_id "
                    "THEN announce_channels.set_at ELSE excluded.set_at END, "
                    "channel_id = excluded.channel_id, ping_role_id = excluded.ping_role_id",
                    (guild_id, channel_id, ping_role_id, at),
                )
            else:
                await conn.execute(
                    "INSERT INTO announce_shows "
                    "(guild_id, show_slug, channel_id, ping_role_id, set_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id, show_slug) DO UPDATE SET "
                    "set_at = CASE WHEN announce_shows.channel_id = excluded.channel_id "
                    "THEN announce_shows.set_at ELSE excluded.set_at END, "
                    "channel_id = excluded.channel_id, ping_role_id = excluded.ping_role_id",
                    (guild_id, show_slug, channel_id, ping_role_id, at),
                )

        await self.db.transact(write)
        return old

    async def announce_off(
        self, guild_id: int, *, show_slug: str | None = None, now: datetime | None = None
    ) -> AnnounceSettings:
        """Stop release posts for one show, or (without a show) everywhere in the server, per-
        show channels included; returns the settings as they were. Threads already opened and
        the ledger are kept."""
        old = await self.get_announce(guild_id)
        at = _to_unix(now or datetime.now(UTC))

        async def write(conn: Transaction) -> None:
            # The leader's release calendar, in whichever process, reschedules the server.
            await conn.announce([f"settings:{guild_id}"])
            if show_slug is None:
                await conn.execute("DELETE FROM announce_channels WHERE guild_id = ?", (guild_id,))
                await conn.execute("DELETE FROM announce_shows WHERE guild_id = ?", (guild_id,))
            else:
                await conn.execute(
                    "INSERT INTO announce_shows "
                    "(guild_id, show_slug, channel_id, ping_role_id, set_at) "
                    "VALUES (?, ?, NULL, NULL, ?) ON CONFLICT (guild_id, show_slug) DO UPDATE SET "
                    "channel_id = NULL, ping_role_id = NULL, set_at = excluded.set_at",
                    (guild_id, show_slug, at),
                )

        await self.db.transact(write)
        return old

    # -- the ledger ----------------------------------------------------------------------------

    async def ledger_entries(self, keys: Iterable[PostKey]) -> dict[PostKey, LedgerEntry]:
        """The ledger rows of these posts (posts never tried are absent)."""
        wanted: dict[str, set[int]] = defaultdict(set)
        asked = set(keys)
        for key in asked:
            wanted[key.episode_key].add(key.guild_id)
        found: dict[PostKey, LedgerEntry] = {}
        for episode_key, guild_ids in wanted.items():
            rows: Iterable[sqlite3.Row]
            if len(guild_ids) <= _GUILDS_PER_LOOKUP:
                marks = ", ".join("?" * len(guild_ids))
                rows = await self.db.read(
                    f"SELECT {_POST_COLUMNS} FROM discussion_posts "
                    f"WHERE episode_key = ? AND guild_id IN ({marks})",
                    (episode_key, *guild_ids),
                )
            else:
                # Every server's rows of an episode: too many to read on the event loop.
                rows = await self.db.fetch_all(
                    f"SELECT {_POST_COLUMNS} FROM discussion_posts WHERE episode_key = ?",
                    (episode_key,),
                )
            for row in rows:
                key, entry = _ledger_row(row)
                if key in asked:
                    found[key] = entry
        return found

    async def retryable_posts(self) -> dict[PostKey, LedgerEntry]:
        """Failed posts with tries left, wherever they are."""
        rows = await self.db.read(
            f"SELECT {_POST_COLUMNS} FROM discussion_posts WHERE state = 'failed' AND attempts < ?",
            (MAX_ATTEMPTS,),
        )
        return dict(_ledger_row(row) for row in rows)

    async def last_post(self, guild_id: int) -> tuple[PostKey, LedgerEntry] | None:
        """The server's most recently tried or recorded post, for ``/embargo settings``."""
        rows = await self.db.read(
            f"SELECT {_POST_COLUMNS} FROM discussion_posts WHERE guild_id = ? "
            "ORDER BY updated_at DESC LIMIT 1",
            (guild_id,),
        )
        return _ledger_row(rows[0]) if rows else None

    async def record_posted(
        self,
        key: PostKey,
        *,
        due_at: datetime,
        channel_id: int,
        message_id: int,
        thread_id: int | None = None,
        now: datetime | None = None,
    ) -> None:
        """The post was sent (a forum post: with its thread, in the same transaction). A post
        already recorded as sent keeps its first message. One trip to the database: the
        fan-out makes thousands of these while commands are being answered."""
        at = _to_unix(now or datetime.now(UTC))
        row = (*_key_params(key), channel_id, message_id, _to_unix(due_at), at, at)
        statements: list[Statement] = [
            (_RECORD_POSTED, [row]),
            (_FORGET_STARTED, [_key_params(key)]),
        ]
        if thread_id is not None:
            statements += _thread_statements(key, thread_id, channel_id, at)
        await self.db.run_statements(statements)

    async def forum_post_started(self, key: PostKey) -> bool:
        """Whether an earlier try may have made this forum post (see
        :meth:`record_forum_post_started`)."""
        rows = await self.db.read(
            "SELECT 1 FROM forum_posts_started WHERE episode_key = ? AND guild_id = ? AND kind = ?",
            _key_params(key),
        )
        return bool(rows)

    async def record_forum_post_started(
        self, key: PostKey, *, channel_id: int, now: datetime | None = None
    ) -> None:
        """About to make this forum post: committed first, so that if the bot stops before
        :meth:`record_posted`, the next try looks for the post instead of making a second."""
        at = _to_unix(now or datetime.now(UTC))
        await self.db.run_statements(
            [
                (
                    "INSERT INTO forum_posts_started "
                    "(episode_key, guild_id, kind, channel_id, started_at) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (episode_key, guild_id, kind) DO UPDATE SET "
                    "channel_id = excluded.channel_id, started_at = excluded.started_at",
                    [(*_key_params(key), channel_id, at)],
                )
            ]
        )

    async def record_failed(
        self,
        key: PostKey,
        *,
        due_at: datetime,
        channel_id: int | None,
        error: str,
        final: bool = False,
        now: datetime | None = None,
    ) -> LedgerEntry:
        """A try failed; returns the entry (its attempts say whether another try will come).
        A ``final`` failure can never succeed (the channel or server is gone): it uses up
        every try at once. A post already recorded as sent stays sent."""
        at = _to_unix(now or datetime.now(UTC))

        async def write(conn: Transaction) -> Row | None:
            await conn.execute(
                "INSERT INTO discussion_posts (episode_key, guild_id, kind, state, channel_id, "
                "attempts, last_error, due_at, created_at, updated_at) "
                "VALUES (?, ?, ?, 'failed', ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (episode_key, guild_id, kind) DO UPDATE SET state = 'failed', "
                "channel_id = excluded.channel_id, attempts = CASE "
                "WHEN excluded.attempts > discussion_posts.attempts + 1 THEN excluded.attempts "
                "ELSE discussion_posts.attempts + 1 END, "
                "last_error = excluded.last_error, updated_at = excluded.updated_at "
                "WHERE discussion_posts.state = 'failed'",
                (
                    *_key_params(key),
                    channel_id,
                    MAX_ATTEMPTS if final else 1,
                    _bounded(error),
                    _to_unix(due_at),
                    at,
                    at,
                ),
            )
            return await conn.fetch_one(
                f"SELECT {_POST_COLUMNS} FROM discussion_posts "
                "WHERE episode_key = ? AND guild_id = ? AND kind = ?",
                (key.episode_key, key.guild_id, key.kind.value),
            )

        row = await self.db.transact(write)
        assert row is not None, "the row written just above, in the same transaction"
        return _ledger_row(row)[1]

    async def give_up_posts(self, guild_id: int, *, error: str, now: datetime | None = None) -> int:
        """Stop retrying the server's failed posts (Embargo left it), saying why; returns how
        many were waiting for another try."""
        at = _to_unix(now or datetime.now(UTC))
        async with self.db.transaction() as conn:
            rows = await conn.fetch_all(
                "SELECT 1 FROM discussion_posts "
                "WHERE guild_id = ? AND state = 'failed' AND attempts < ?",
                (guild_id, MAX_ATTEMPTS),
            )
            await conn.execute(
                "UPDATE discussion_posts SET attempts = ?, last_error = ?, updated_at = ? "
                "WHERE guild_id = ? AND state = 'failed' AND attempts < ?",
                (MAX_ATTEMPTS, _bounded(error), at, guild_id, MAX_ATTEMPTS),
            )
        return len(rows)

    async def record_skipped(
        self, posts: Iterable[tuple[PostKey, datetime]], *, now: datetime | None = None
    ) -> None:
        """Posts that fell due too long ago while the bot was down: never to be made. Posts
        already in the ledger keep their row."""
        at = _to_unix(now or datetime.now(UTC))
        rows = [(*_key_params(key), _to_unix(due_at), at, at) for key, due_at in posts]
        if not rows:
            return

        async def write(conn: Transaction) -> None:
            await conn.executemany(
                "INSERT INTO discussion_posts (episode_key, guild_id, kind, state, attempts, "
                "due_at, created_at, updated_at) VALUES (?, ?, ?, 'skipped', 0, ?, ?, ?) "
                "ON CONFLICT (episode_key, guild_id, kind) DO NOTHING",
                rows,
            )

        await self.db.transact(write)

    async def record_thread(
        self, key: PostKey, *, thread_id: int, parent_id: int, now: datetime | None = None
    ) -> None:
        """The release post's discussion thread is open: remember it on the post and as a
        thread where spoilers are welcome."""
        at = _to_unix(now or datetime.now(UTC))
        await self.db.run_statements(_thread_statements(key, thread_id, parent_id, at))

    async def record_thread_failed(
        self, key: PostKey, *, error: str, now: datetime | None = None
    ) -> None:
        """The release post went out but its thread could not be opened (say why)."""
        at = _to_unix(now or datetime.now(UTC))

        async def write(conn: Transaction) -> None:
            await conn.execute(
                "UPDATE discussion_posts SET last_error = ?, updated_at = ? "
                "WHERE episode_key = ? AND guild_id = ? AND kind = ?",
                (_bounded(error), at, key.episode_key, key.guild_id, key.kind.value),
            )

        await self.db.transact(write)

    async def releases_without_thread(self) -> list[tuple[PostKey, int, int]]:
        """Release posts sent whose thread was neither opened nor given up on (the bot stopped
        in between), as (key, channel id, message id). Read once at start-up, off the loop."""
        rows = await self.db.fetch_all(
            "SELECT episode_key, guild_id, channel_id, message_id FROM discussion_posts "
            "WHERE kind = 'release' AND state = 'posted' AND thread_id IS NULL "
            "AND last_error IS NULL AND message_id IS NOT NULL",
            tuples=True,
        )
        return [
            (
                PostKey(int(guild_id), episode_key, PostKind.RELEASE),
                int(channel_id),
                int(message_id),
            )
            for episode_key, guild_id, channel_id, message_id in rows
        ]

    async def ledger_horizons(self) -> dict[int, datetime]:
        """Per server, the release instant before which its ledger was pruned."""
        rows = await self.db.fetch_all(
            "SELECT guild_id, released_before FROM discussion_pruned", tuples=True
        )
        return {int(guild_id): _from_unix(before) for guild_id, before in rows}

    async def prune_ledger(self, horizons: Mapping[int, datetime]) -> None:
        """Forget the posts of episodes released before each server's horizon, and remember
        the horizon (only ever moved forward), so they are never posted again. A post is due
        at or after its episode's release, so a row due before the horizon is such a post."""
        if not horizons:
            return
        rows = [(guild_id, _to_unix(before)) for guild_id, before in horizons.items()]
        await self.db.run_statements(
            [
                ("DELETE FROM discussion_posts WHERE guild_id = ? AND due_at < ?", rows),
                ("DELETE FROM forum_posts_started WHERE guild_id = ? AND started_at < ?", rows),
                (
                    "INSERT INTO discussion_pruned (guild_id, released_before) VALUES (?, ?) "
                    "ON CONFLICT (guild_id) DO UPDATE SET released_before = CASE "
                    "WHEN excluded.released_before > discussion_pruned.released_before "
                    "THEN excluded.released_before ELSE discussion_pruned.released_before END",
                    rows,
                ),
            ]
        )

    # -- threads -------------------------------------------------------------------------------

    async def discussion_thread(self, thread_id: int) -> DiscussionThread | None:
        rows = await self.db.read(
            "SELECT thread_id, guild_id, episode_key, parent_id FROM discussion_threads "
            "WHERE thread_id = ?",
            (thread_id,),
        )
        if not rows:
            return None
        row = rows[0]
        return DiscussionThread(
            int(row["thread_id"]), int(row["guild_id"]), row["episode_key"], int(row["parent_id"])
        )

    async def is_discussion_thread(self, channel_id: int) -> bool:
        """Whether this channel is a thread Embargo opened for an episode's discussion."""
        return await self.discussion_thread(channel_id) is not None

    # -- the scheduler's watermark -------------------------------------------------------------

    async def calendar_checked_through(self) -> datetime | None:
        """The instant through which the scheduler settled every post (None before its first
        run)."""
        rows = await self.db.read(
            "SELECT meta_value FROM bot_meta WHERE meta_key = ?", (_CHECKED_THROUGH,)
        )
        return _from_unix(int(rows[0][0])) if rows else None

    async def set_calendar_checked_through(self, at: datetime) -> None:
        async def write(conn: Transaction) -> None:
            await conn.execute(
                "INSERT INTO bot_meta (meta_key, meta_value) VALUES (?, ?) "
                "ON CONFLICT (meta_key) DO UPDATE SET meta_value = excluded.meta_value",
                (_CHECKED_THROUGH, str(_to_unix(at))),
            )

        await self.db.transact(write)


def _announce(
    default_rows: Iterable[Sequence[Any]], show_rows: Iterable[Sequence[Any]]
) -> dict[int, AnnounceSettings]:
    defaults: dict[int, AnnounceTarget] = {}
    for row in default_rows:
        guild_id, channel_id, ping_role_id, set_at = row
        defaults[int(guild_id)] = AnnounceTarget(int(channel_id), ping_role_id, _from_unix(set_at))
    shows: dict[int, dict[str, AnnounceTarget | None]] = defaultdict(dict)
    for row in show_rows:
        guild_id, show_slug, channel_id, ping_role_id, set_at = row
        shows[int(guild_id)][show_slug] = (
            None
            if channel_id is None
            else AnnounceTarget(int(channel_id), ping_role_id, _from_unix(set_at))
        )
    return {
        guild_id: AnnounceSettings(defaults.get(guild_id), shows.get(guild_id, {}))
        for guild_id in defaults.keys() | shows.keys()
    }


def _ledger_row(row: Sequence[Any]) -> tuple[PostKey, LedgerEntry]:
    (
        episode_key,
        guild_id,
        kind,
        state,
        attempts,
        updated_at,
        channel_id,
        message_id,
        thread_id,
        last_error,
    ) = row
    key = PostKey(int(guild_id), episode_key, PostKind(kind))
    entry = LedgerEntry(
        state=PostState(state),
        attempts=int(attempts),
        updated_at=_from_unix(updated_at),
        channel_id=channel_id,
        message_id=message_id,
        thread_id=thread_id,
        last_error=last_error,
    )
    return key, entry


def _thread_statements(key: PostKey, thread_id: int, parent_id: int, at: int) -> list[Statement]:
    return [
        (_RECORD_THREAD, [(thread_id, at, *_key_params(key))]),
        (_REMEMBER_THREAD, [(thread_id, key.guild_id, key.episode_key, parent_id, at)]),
    ]


def _key_params(key: PostKey) -> tuple[str, int, str]:
    return key.episode_key, key.guild_id, key.kind.value


def _bounded(error: str) -> str:
    error = " ".join(error.split())
    return error if len(error) <= MAX_ERROR_LENGTH else error[: MAX_ERROR_LENGTH - 1] + "…"


def _to_unix(instant: datetime) -> int:
    if instant.tzinfo is None:
        raise ValueError("times given to storage must be timezone-aware")
    return int(instant.timestamp())


def _from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)
