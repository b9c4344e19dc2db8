"""The leader lock on PostgreSQL: a session advisory lock held on a connection of its own.

The process whose lock connection holds ``LEADER_LOCK`` leads (``bot/leader.py``). The
others wait in ``pg_advisory_lock`` on a connection of their own: the server hands the lock
to one of them the moment the leader's session ends, for whatever reason (a clean shutdown,
``kill -9``, ``pg_terminate_backend``, a server restart). Nothing polls the lock.

The leader hears its session end through the connection closing. A connection that silently
stopped carrying anything (a network partition) closes nowhere, so the leader sends a tiny
query every ``HEARTBEAT_S`` and gives up the lead when one is not answered within
``HEARTBEAT_TIMEOUT_S``; the server, told by ``KEEPALIVE`` to probe the client's socket,
ends that session (and frees the lock) only later than that, so two processes never lead at
once. (The keepalive settings apply to TCP connections; a Unix socket can't go silent.)

``ask_leader`` is the other side of ``python -m bot reload``: it finds the leader's session
and sends it a request on the channel every process listens to.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from bot.storage.postgres.database import CHANNEL, DATABASE_ERRORS, postgres_fault, redacted

# An arbitrary constant naming the leader's lock among advisory locks (see MIGRATION_LOCK).
LEADER_LOCK = 0x456D_6261_7267_6F02
HEARTBEAT_S = 5.0
HEARTBEAT_TIMEOUT_S = 5.0
# The server ends a silent session after about idle + interval x count seconds: well after a
# leader cut off from it stopped leading (HEARTBEAT_S + HEARTBEAT_TIMEOUT_S at most).
KEEPALIVE = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}
APPLICATION_NAME = "embargo-leader"
# The server process of the session holding the lock on this database: a bigint advisory key
# shows in pg_locks as its high and low halves (locks of every database show there).
LEADER_SESSION = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
    "AND classid = $1::bigint::oid AND objid = $2::bigint::oid "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
LEADER_SESSION_ARGS = (LEADER_LOCK >> 32, LEADER_LOCK & 0xFFFF_FFFF)


class AdvisoryLeaderLock:
    """``bot/storage/backend.py: LeaderLock`` on PostgreSQL (see the module docstring)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = redacted(url)
        self._held: asyncpg.Connection | None = None
        self._ended = asyncio.Event()

    async def acquire(self, *, wait: bool) -> bool:
        if self._held is not None:
            return True
        try:
            conn = await asyncpg.connect(
                self.url,
                server_settings={
                    "application_name": APPLICATION_NAME,
                    # The wait for the lock may last as long as the leader lives.
                    "lock_timeout": "0",
                    "statement_timeout": "0",
                    **KEEPALIVE,
                },
            )
        except DATABASE_ERRORS as error:
            raise self._fault(error) from error
        try:
            if wait:
                await conn.execute("SELECT pg_advisory_lock($1)", LEADER_LOCK)
                taken = True
            else:
                taken = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK))
        except BaseException as error:
            # Cancelled while waiting (shutting down): a server process waiting for a lock
            # does not read its socket, so dropping the connection would leave it waiting,
            # to take the lock one day for nobody. Closing first cancels the wait.
            await self._close(conn)
            if isinstance(error, DATABASE_ERRORS):
                raise self._fault(error) from error
            raise
        if not taken:
            await self._close(conn)
            return False
        self._ended.clear()
        conn.add_termination_listener(lambda _conn: self._ended.set())
        self._held = conn
        return True

    async def lost(self) -> None:
        conn = self._held
        if conn is None:
            return
        try:
            while not self._ended.is_set() and await self._answers(conn):
                pass
        finally:
            self._held = None
            conn.terminate()

    async def _answers(self, conn: asyncpg.Connection) -> bool:
        """Whether the connection still answers, after waiting a heartbeat for it to end."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(HEARTBEAT_S):
                await self._ended.wait()
                return False
        try:
            async with asyncio.timeout(HEARTBEAT_TIMEOUT_S):
                await conn.execute("SELECT 1")
        except (TimeoutError, *DATABASE_ERRORS):
            return False
        return True

    async def release(self) -> None:
        if self._held is not None:
            conn, self._held = self._held, None
            await self._close(conn)

    @staticmethod
    async def _close(conn: asyncpg.Connection) -> None:
        """Close cleanly (the server frees the lock at once), or drop the connection."""
        try:
            await conn.close(timeout=5)
        except (TimeoutError, *DATABASE_ERRORS):
            conn.terminate()

    def _fault(self, error: BaseException) -> BaseException:
        return postgres_fault(error, self.where) or error


async def ask_leader(url: str, change: str) -> str | None:
    """Send ``change`` (a request, such as ``content:reload``) to the leading process on the
    database at ``url``; returns where the leader connects from, or None when no Embargo
    process runs on it. Raises StorageError if the database can't be reached."""
    where = redacted(url)
    try:
        conn = await asyncpg.connect(url, server_settings={"application_name": "embargo"})
    except DATABASE_ERRORS as error:
        raise postgres_fault(error, where) or error from error
    try:
        leader = await conn.fetchrow(
            "SELECT a.client_addr::text AS addr, a.client_hostname AS host "
            f"FROM ({LEADER_SESSION}) l JOIN pg_stat_activity a ON a.pid = l.pid",
            *LEADER_SESSION_ARGS,
        )
        if leader is None:
            return None
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"reload {change}")
    except DATABASE_ERRORS as error:
        raise postgres_fault(error, where) or error from error
    finally:
        with contextlib.suppress(*DATABASE_ERRORS):
            await conn.close(timeout=5)
    return leader["host"] or leader["addr"] or "this machine (a Unix socket)"
