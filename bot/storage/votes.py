"""Community votes: the queue, the running totals, their cache, and the consistency check.

Every vote, change and withdrawal updates ``vote_totals`` (per server and episode) and
``vote_totals_global`` (per episode: on PostgreSQL a row per episode and slot, summed on read)
in the same transaction as the ``votes`` row, so rankings read the totals and never scan the
votes.

Writes are group-committed. A transaction per vote spends most of its time on the round trips
(SQLite: a hop to the writer's thread; PostgreSQL: the network and a WAL flush per commit), so
concurrent requests are queued and one flusher task applies everything queued in a single
transaction through the backend (``VoteBackend.apply_votes``: one trip to SQLite's writer
thread, a fixed number of statements whatever the batch size). Each caller awaits its own future,
which resolves only after COMMIT, so a vote is committed before anyone is told about it.
Requests keep their arrival order inside a batch: 50 rapid changes by one member end on the
last one, and each reports the score it replaced.

Forgetting a member (``forget_voter``) joins the same queue: it is committed on its own, after
every vote queued before it and before any queued after it, and moves the totals, stored and
cached, by the same rule as a batch.

Small reads (one show's totals) go through ``Database.read``; a member's whole list and the
recount use ``Database.fetch_all``. This module is the same for every backend; the SQL of the
writes is the backend's (``bot/storage/sqlite/votes.py``, ``bot/storage/postgres/votes.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar, cast

from bot.content.models import show_slug_of
from bot.ranking import MAX_SCORE, MIN_SCORE, Tally
from bot.storage.backend import Database
from bot.storage.errors import WRITE_TIMEOUT_S, StorageBusy, StorageError, StorageOutcomeUnknown

if TYPE_CHECKING:
    from bot.storage.retention import GuildDeleted

log = logging.getLogger(__name__)

T = TypeVar("T")

# Enough to absorb any realistic burst in one transaction while keeping it short.
MAX_BATCH = 2000
# (scope, show) entries of TalliesCache: a hundred-episode show's entry is about 16 KB.
TALLIES_CACHE_SIZE = 1024
VoteKey = tuple[int, int, str]  # (guild_id, user_id, episode_key)
TotalsDeltas = dict[tuple[int, str], list[int]]  # (guild_id, episode_key) -> [count, total]


@dataclass(frozen=True, slots=True)
class VoteChange:
    """What a vote or withdrawal did: the score before and after (None = no vote)."""

    old_score: int | None
    new_score: int | None


@dataclass(frozen=True, slots=True)
class MemberVote:
    episode_key: str
    score: int
    voted_at: datetime


@dataclass(frozen=True, slots=True)
class TotalsDrift:
    """A stored total that disagrees with a recount of the votes."""

    guild_id: int | None  # None: the global totals
    episode_key: str
    stored: Tally
    recounted: Tally

    def describe(self) -> str:
        where = "global" if self.guild_id is None else f"guild {self.guild_id}"
        return (
            f"{where} {self.episode_key}: stored {self.stored.count} vote(s) summing "
            f"{self.stored.total}, recount {self.recounted.count} summing {self.recounted.total}"
        )


@dataclass(frozen=True, slots=True)
class ForgottenVotes:
    """What forgetting a member removed from the votes: how many, in which servers."""

    votes: int
    guild_ids: frozenset[int]


class VoteWrites(NamedTuple):
    """The rows a batch writes: upserts (guild_id, user_id, episode_key, show_slug, score,
    voted_at) and deletes (guild_id, user_id, episode_key)."""

    upserts: list[tuple[int, int, str, str, int, int]]
    deletes: list[VoteKey]


class VoteBackend(Protocol):
    """The votes' writes, in the backend's own fast path. Each runs as one transaction and
    returns its results with the net change of every total it moved."""

    async def apply_votes(
        self, wanted: Sequence[tuple[VoteKey, int | None, int]], wait_s: float
    ) -> tuple[list[VoteChange], TotalsDeltas]:
        """Apply the requests in arrival order (see ``plan_batch``) and move the totals."""

    async def forget_member(
        self, user_id: int, wait_s: float
    ) -> tuple[tuple[ForgottenVotes, int], TotalsDeltas]:
        """Delete the member's votes everywhere, moving the totals back, and their watch
        progress, in one transaction; returns what went and how many episodes were marked."""

    async def delete_departed_guild(
        self, guild_id: int, now_s: int, wait_s: float
    ) -> tuple[GuildDeleted | None, TotalsDeltas]:
        """If the server's deletion is (still) due at ``now_s``, delete its votes (moving the
        pooled totals), every row of it in ``GUILD_TABLES`` and its departure, in one
        transaction; checked inside it, so a re-invite that lands first wins."""

    def busy(self) -> StorageBusy: ...


@dataclass(slots=True)
class _Request:
    key: VoteKey
    score: int | None  # None = withdraw
    voted_at: int
    future: asyncio.Future[VoteChange]
    deadline: float  # loop time by which it is committed or refused as busy


# Work that runs as one transaction in the votes' queue: given the longest it may wait to
# start, returns its result and the totals' deltas it wrote (see VoteBackend).
ExclusiveWork = Callable[[float], Awaitable[tuple[Any, TotalsDeltas]]]


@dataclass(slots=True)
class _Exclusive:
    """A transaction of its own in the vote queue (forgetting a member, deleting a departed
    server's votes)."""

    work: ExclusiveWork
    future: asyncio.Future[Any]


_NO_VOTES = Tally()
# An episode's pooled totals are the sum of its rows (PostgreSQL keeps them in slots, one row
# each, migration 015; SQLite has one row), present while they count a vote.
_POOLED_SUMS = "SUM(vote_count), CAST(SUM(score_sum) AS BIGINT)"
_POOLED_GROUPS = "GROUP BY episode_key HAVING SUM(vote_count) <> 0 OR SUM(score_sum) <> 0"


def _check_key(episode_key: str) -> None:
    if "/" not in episode_key:
        raise ValueError(f"not an episode key: {episode_key!r}")


class TalliesCache:
    """One show's vote totals per scope (a server, or ``None`` for pooled), for the shows
    being ranked and voted on right now, kept exactly in step with the database.

    /vote and /rankings read a show's totals on every call: a hundred rows turned into
    objects, most of a command's own time. The most recently used ``capacity`` (scope, show)
    entries stay in memory. Every committed vote batch moves them by the same deltas it moved
    the stored totals by (the group committer is this process's only writer of votes), and an
    entry is filled from the database only when no batch is being written, so a committed
    batch can never be counted twice or missed. Other processes' batches (PostgreSQL) drop the
    entries of the shows they touched (``invalidate``), as they are heard of.
    """

    def __init__(self, capacity: int = TALLIES_CACHE_SIZE) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[int | None, str], dict[str, Tally]] = OrderedDict()
        self.writing = 0  # vote batches between their start and their deltas being applied
        self.generation = 0  # batches finished (committed or not), and invalidations
        # False while changes made by other processes may go unannounced (see Storage).
        self.trusted = True

    def get(self, guild_id: int | None, show_slug: str) -> dict[str, Tally] | None:
        if not self.trusted:
            return None
        entry = self._entries.get((guild_id, show_slug))
        if entry is None:
            return None
        self._entries.move_to_end((guild_id, show_slug))
        return dict(entry)  # a copy: the entry keeps moving with later votes

    def clear(self) -> None:
        """Forget every entry (they are filled again from the database)."""
        self._entries.clear()

    def invalidate(self, show_slugs: Iterable[str] | None) -> None:
        """Another process changed these shows' totals (None: any show's): drop their entries,
        and any fill that was reading while the change was committed."""
        self.generation += 1
        if show_slugs is None:
            self._entries.clear()
            return
        shows = set(show_slugs)
        for key in [key for key in self._entries if key[1] in shows]:
            del self._entries[key]

    def disable(self) -> None:
        """Forget every entry and keep none from now on."""
        self.capacity = 0
        self._entries.clear()

    def entries(self) -> dict[tuple[int | None, str], dict[str, Tally]]:
        """A copy of every entry by (scope, show), least recently used first; for checks."""
        return {key: dict(entry) for key, entry in self._entries.items()}

    def put(
        self, guild_id: int | None, show_slug: str, tallies: dict[str, Tally], generation: int
    ) -> None:
        """Keep ``tallies``, read from the database when ``generation`` was current, unless a
        batch was being written then or has finished since (the read may miss or include it)."""
        if self.writing or generation != self.generation or not self.trusted:
            return
        self._entries[(guild_id, show_slug)] = dict(tallies)
        self._entries.move_to_end((guild_id, show_slug))
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def apply(self, deltas: TotalsDeltas) -> None:
        for (guild_id, episode_key), (count, total) in deltas.items():
            show_slug = show_slug_of(episode_key)
            for scope in (guild_id, None):
                entry = self._entries.get((scope, show_slug))
                if entry is None:
                    continue
                before = entry.get(episode_key, _NO_VOTES)
                after = Tally(before.count + count, before.total + total)
                if after.count:
                    entry[episode_key] = after
                else:  # a total exists only while it counts a vote, as in the database
                    entry.pop(episode_key, None)


class _GroupCommitter:
    """Queues vote requests and applies them in batches, one transaction per batch."""

    def __init__(self, backend: VoteBackend, tallies: TalliesCache) -> None:
        self.backend = backend
        self.tallies = tallies
        # Votes and forgets in arrival order; a forget is committed on its own, after every
        # vote queued before it and before any queued after it.
        self.pending: list[_Request | _Exclusive] = []
        self.flusher: asyncio.Task[None] | None = None
        self.batches = 0  # transactions committed, for measurements

    async def submit(self, key: VoteKey, score: int | None, voted_at: int) -> VoteChange:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[VoteChange] = loop.create_future()
        self.pending.append(_Request(key, score, voted_at, future, loop.time() + WRITE_TIMEOUT_S))
        if self.flusher is None or self.flusher.done():
            # A task, not the caller's coroutine: a caller that gives up (cancelled) must not
            # abandon the other requests in its batch.
            self.flusher = asyncio.create_task(self._flush(), name="embargo-vote-flusher")
        return await future

    async def exclusive(self, work: Callable[[float], Awaitable[tuple[T, TotalsDeltas]]]) -> T:
        """Run ``work`` as a transaction of its own, after every vote queued before it and
        before any queued after it, moving the cached totals by the deltas it returns."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append(_Exclusive(work, future))
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush(), name="embargo-vote-flusher")
        result: T = await future  # what ``work`` returned, set by the flusher
        return result

    async def drain(self) -> None:
        """Wait until everything queued so far is committed (or failed)."""
        while self.flusher is not None and not self.flusher.done():
            await asyncio.shield(self.flusher)

    async def _flush(self) -> None:
        # Runs until the queue is empty; requests that arrive meanwhile join the next batch.
        loop = asyncio.get_running_loop()
        while self.pending:
            head = self.pending[0]
            if isinstance(head, _Exclusive):
                self.pending.pop(0)
                await self._exclusive(head)
                continue
            # A batch of votes stops where a forget waits.
            size = next(
                (
                    index
                    for index, request in enumerate(self.pending[:MAX_BATCH])
                    if isinstance(request, _Exclusive)
                ),
                MAX_BATCH,
            )
            batch = cast(list[_Request], self.pending[:size])
            self.pending = self.pending[size:]
            # Each vote waits WRITE_TIMEOUT_S at most in all, queue included, so that /vote
            # answers in time even while another program holds the database's lock.
            now = loop.time()
            for request in batch:
                if request.deadline <= now:
                    _fail(request, self.backend.busy())
            batch = [request for request in batch if request.deadline > now]
            if not batch:
                continue
            wait_s = min(request.deadline for request in batch) - now
            try:
                results = await self._apply(batch, wait_s)
            except StorageError as error:
                # Busy, full, read-only: the same for every vote in the batch, so retrying
                # them one by one would only make each wait again. Nothing was saved.
                for request in batch:
                    _fail(request, error)
                continue
            except Exception as error:
                if len(batch) == 1:
                    _fail(batch[0], error)
                    continue
                # One bad request must not sink the others: retry each on its own.
                log.warning("vote batch of %d failed (%s); retrying one by one", len(batch), error)
                for request in batch:
                    try:
                        (result,) = await self._apply([request])
                    except Exception as single_error:
                        _fail(request, single_error)
                    else:
                        _succeed(request, result)
                continue
            for request, result in zip(batch, results, strict=True):
                _succeed(request, result)

    async def _exclusive(self, exclusive: _Exclusive) -> None:
        try:
            result = await self._commit(exclusive.work)
        except Exception as error:
            _fail(exclusive, error)
        else:
            _succeed(exclusive, result)

    async def _apply(
        self, batch: Sequence[_Request], wait_s: float = WRITE_TIMEOUT_S
    ) -> list[VoteChange]:
        wanted = [(request.key, request.score, request.voted_at) for request in batch]
        return await self._commit(partial(self.backend.apply_votes, wanted), wait_s)

    async def _commit(
        self,
        work: Callable[[float], Awaitable[tuple[T, TotalsDeltas]]],
        wait_s: float = WRITE_TIMEOUT_S,
    ) -> T:
        """Run ``work(wait_s)``, one transaction, and move the cached totals by its deltas."""
        cache = self.tallies
        cache.writing += 1
        try:
            results, deltas = await work(wait_s)
        except StorageOutcomeUnknown:
            # The batch may have been committed: the cached totals can't say.
            cache.clear()
            raise
        except asyncio.CancelledError:
            # Only a shutdown cancels the flusher; the transaction may still commit (on
            # SQLite's writer thread, or in the server) without its deltas reaching the
            # cache, so stop trusting it.
            cache.disable()
            raise
        else:
            # Committed: the cached totals move by exactly what the stored ones moved by.
            cache.apply(deltas)
        finally:
            cache.writing -= 1
            cache.generation += 1
        self.batches += 1
        return results


def _succeed(request: _Request | _Exclusive, result: Any) -> None:
    if not request.future.done():  # the caller may have been cancelled; the vote still stands
        request.future.set_result(result)


def _fail(request: _Request | _Exclusive, error: Exception) -> None:
    if not request.future.done():
        request.future.set_exception(error)


def plan_batch(
    wanted: Sequence[tuple[VoteKey, int | None, int]], current: dict[VoteKey, int | None]
) -> tuple[list[VoteChange], VoteWrites, TotalsDeltas]:
    """Apply the votes in arrival order to ``current`` (each key's score before the batch):
    what each request replaced, the rows to write, and the net change of each total."""
    initial = dict(current)
    final = dict(current)
    voted_at: dict[VoteKey, int] = {}
    totals: TotalsDeltas = {}
    results = []
    for key, new, when in wanted:
        old = final[key]
        final[key] = new
        if new is not None:
            voted_at[key] = when
        guild_id, _, episode_key = key
        delta = totals.setdefault((guild_id, episode_key), [0, 0])
        delta[0] += (new is not None) - (old is not None)
        delta[1] += (new or 0) - (old or 0)
        results.append(VoteChange(old_score=old, new_score=new))
    # A key voted on in this batch gets its last score (and time); a key whose last request
    # was a withdrawal is deleted if it existed before the batch.
    upserts = [
        (*key, show_slug_of(key[2]), score, voted_at[key])
        for key, score in final.items()
        if score is not None
    ]
    deletes = [key for key, score in final.items() if score is None and initial[key] is not None]
    return results, VoteWrites(upserts, deletes), totals


def totals_rows(
    deltas: TotalsDeltas,
) -> tuple[list[tuple[int, str, str, int, int]], list[tuple[str, str, int, int]]]:
    """The changes of ``vote_totals`` (guild_id, episode_key, show_slug, count, total) and of
    ``vote_totals_global`` (episode_key, show_slug, count, total), in a fixed order (sorted
    keys: writers that lock rows in the same order never deadlock); zero changes left out."""
    per_guild = [
        (guild_id, episode_key, show_slug_of(episode_key), count, total)
        for (guild_id, episode_key), (count, total) in sorted(deltas.items())
        if count or total
    ]
    global_deltas: dict[str, list[int]] = {}
    for (_, episode_key), (count, total) in deltas.items():
        pooled = global_deltas.setdefault(episode_key, [0, 0])
        pooled[0] += count
        pooled[1] += total
    pooled_rows = [
        (episode_key, show_slug_of(episode_key), count, total)
        for episode_key, (count, total) in sorted(global_deltas.items())
        if count or total
    ]
    return per_guild, pooled_rows


class VoteStore:
    """Mixin for ``Storage``: expects ``self.db`` and ``self.vote_backend``."""

    db: Database
    vote_backend: VoteBackend

    def _vote_committer(self) -> _GroupCommitter:
        # Created on first use: Storage's constructor belongs to the composed class.
        committer: _GroupCommitter | None = getattr(self, "_votes_group_committer", None)
        if committer is None:
            committer = _GroupCommitter(self.vote_backend, self._vote_tallies_cache())
            self._votes_group_committer = committer
        return committer

    def _vote_tallies_cache(self) -> TalliesCache:
        cache: TalliesCache | None = getattr(self, "_tallies_cache", None)
        if cache is None:
            cache = TalliesCache()
            self._tallies_cache = cache
        return cache

    # ---- writes --------------------------------------------------------------------

    async def cast_vote(
        self, guild_id: int, user_id: int, episode_key: str, score: int, *, now: datetime
    ) -> VoteChange:
        """Record (or replace) a member's score; returns the score it replaced, if any.

        Returns only after the vote and both totals are committed.
        """
        if isinstance(score, bool) or not isinstance(score, int):
            raise TypeError(f"a score is an int, got {score!r}")
        if not MIN_SCORE <= score <= MAX_SCORE:
            raise ValueError(f"a score is {MIN_SCORE} to {MAX_SCORE}, got {score}")
        _check_key(episode_key)
        return await self._vote_committer().submit(
            (guild_id, user_id, episode_key), score, int(now.timestamp())
        )

    async def withdraw_vote(self, guild_id: int, user_id: int, episode_key: str) -> VoteChange:
        """Remove a member's vote; ``old_score`` is None when there was none."""
        _check_key(episode_key)
        return await self._vote_committer().submit((guild_id, user_id, episode_key), None, 0)

    async def forget_voter(self, user_id: int) -> tuple[ForgottenVotes, int]:
        """Delete the member's votes in every server and move the totals (stored and cached)
        back by them, and delete their watch progress, in one transaction; returns what was
        removed and how many episodes they had marked.

        Queued behind the votes already waiting, and ahead of any that come after, so a vote
        the member cast just before can't be written back after it.
        """
        return await self._vote_committer().exclusive(
            partial(self.vote_backend.forget_member, user_id)
        )

    async def votes_transaction(self, work: ExclusiveWork) -> Any:
        """Run ``work(wait_s)`` (one of the backend's transactions) in the votes' queue, after
        the votes queued before it and before those after, and move the cached totals by the
        deltas it returns with its result: for anything else that deletes votes."""
        return await self._vote_committer().exclusive(work)

    async def drain_votes(self) -> None:
        """Wait for every queued vote to be committed (call before closing storage)."""
        committer: _GroupCommitter | None = getattr(self, "_votes_group_committer", None)
        if committer is not None:
            await committer.drain()

    # ---- reads ---------------------------------------------------------------------

    async def member_votes(
        self, guild_id: int, user_id: int, show_slug: str | None = None
    ) -> list[MemberVote]:
        """A member's votes in one server, by episode key (show, then season and number)."""
        sql = "SELECT episode_key, score, voted_at FROM votes WHERE guild_id = ? AND user_id = ?"
        params: tuple[object, ...] = (guild_id, user_id)
        if show_slug is not None:
            sql += " AND show_slug = ?"
            params += (show_slug,)
        rows = await self.db.fetch_all(sql + " ORDER BY episode_key", params)
        return [
            MemberVote(
                episode_key=row[0],
                score=int(row[1]),
                voted_at=datetime.fromtimestamp(int(row[2]), tz=UTC),
            )
            for row in rows
        ]

    async def vote_tallies(self, show_slug: str, guild_id: int | None) -> dict[str, Tally]:
        """Each voted episode of a show: its totals in one server, or pooled (``None``), as
        committed (from ``TalliesCache`` when the show was read recently)."""
        cache = self._vote_tallies_cache()
        cached = cache.get(guild_id, show_slug)
        if cached is not None:
            return cached
        generation = cache.generation
        if guild_id is None:
            sql = (
                f"SELECT episode_key, {_POOLED_SUMS} FROM vote_totals_global "
                f"WHERE show_slug = ? {_POOLED_GROUPS}"
            )
            params: tuple[object, ...] = (show_slug,)
        else:
            sql = (
                "SELECT episode_key, vote_count, score_sum FROM vote_totals "
                "WHERE guild_id = ? AND show_slug = ?"
            )
            params = (guild_id, show_slug)
        rows = await self.db.read(sql, params)
        tallies = {row[0]: Tally(int(row[1]), int(row[2])) for row in rows}
        cache.put(guild_id, show_slug, tallies, generation)
        return tallies

    # ---- consistency ---------------------------------------------------------------

    async def check_vote_totals(self) -> list[TotalsDrift]:
        """Recount every vote and compare with the stored totals; [] means they agree.

        The one read that scans ``votes``: a maintenance check, never used by rankings.
        """
        db = self.db
        recount = {
            (int(row[0]), row[1]): Tally(int(row[2]), int(row[3]))
            for row in await db.fetch_all(
                "SELECT guild_id, episode_key, COUNT(*), SUM(score) FROM votes "
                "GROUP BY guild_id, episode_key"
            )
        }
        stored = {
            (int(row[0]), row[1]): Tally(int(row[2]), int(row[3]))
            for row in await db.fetch_all(
                "SELECT guild_id, episode_key, vote_count, score_sum FROM vote_totals"
            )
        }
        stored_global = {
            row[0]: Tally(int(row[1]), int(row[2]))
            for row in await db.fetch_all(
                f"SELECT episode_key, {_POOLED_SUMS} FROM vote_totals_global {_POOLED_GROUPS}"
            )
        }
        recount_global: dict[str, Tally] = {}
        for (_, episode_key), tally in recount.items():
            recount_global[episode_key] = recount_global.get(episode_key, Tally()) + tally

        drift = [
            TotalsDrift(guild_id, key, stored.get((guild_id, key), Tally()), tally)
            for (guild_id, key), tally in recount.items()
            if stored.get((guild_id, key)) != tally
        ]
        drift += [
            TotalsDrift(guild_id, key, tally, Tally())
            for (guild_id, key), tally in stored.items()
            if (guild_id, key) not in recount
        ]
        drift += [
            TotalsDrift(None, key, stored_global.get(key, Tally()), tally)
            for key, tally in recount_global.items()
            if stored_global.get(key) != tally
        ]
        drift += [
            TotalsDrift(None, key, tally, Tally())
            for key, tally in stored_global.items()
            if key not in recount_global
        ]
        drift.sort(key=lambda d: (d.guild_id is None, d.guild_id or 0, d.episode_key))
        return drift
