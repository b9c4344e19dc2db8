"""Watch progress SQL: which episodes each member has marked watched.

Progress belongs to the person, not the server: rows are keyed by the member alone. A member's
marks are read whole (one index range) and cached per member; the entry is dropped after every
committed write, and a read that a write overtook is not cached, so a reply never shows a
stale mark. Writes run as one transaction through the backend (``ProgressBackend``) and
return what they actually changed, decided inside the transaction, so two concurrent commands
by one member each report their own change.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol

from bot.storage.backend import Database

# Members whose marks stay in memory: the ones using commands right now.
PROGRESS_CACHE_SIZE = 4096


def _check_keys(episode_keys: Iterable[str]) -> list[str]:
    keys = list(dict.fromkeys(episode_keys))
    for key in keys:
        if "/" not in key:
            raise ValueError(f"not an episode key: {key!r}")
    return keys


class ProgressBackend(Protocol):
    """Watch progress writes, each one transaction returning what it actually changed
    (decided inside the transaction)."""

    async def mark(self, user_id: int, keys: Sequence[str], watched_at: int) -> frozenset[str]:
        """Mark ``keys``; returns the ones that were not marked before."""

    async def unmark(self, user_id: int, keys: Sequence[str]) -> frozenset[str]:
        """Unmark ``keys``; returns the ones that were marked."""


class ProgressStore:
    """Mixin for ``Storage``: expects ``self.db`` and ``self.progress_backend``."""

    db: Database
    progress_backend: ProgressBackend
    _progress_cache: OrderedDict[int, frozenset[str]]
    _progress_writes: int  # committed progress writes so far
    _caching: bool  # whether caches may be used (see Storage.trust_caches)
    # Called with the member whose progress another process changed (their watch roles
    # in this process's servers follow it).
    progress_listeners: list[Callable[[int], None]]

    def _init_progress_cache(self) -> None:
        self._progress_cache = OrderedDict()
        self._progress_writes = 0
        self.progress_listeners = []

    def _progress_changed(self, user_id: int) -> None:
        """After a committed write: drop the member's cached marks."""
        self._progress_writes += 1
        self._progress_cache.pop(user_id, None)

    def _progress_heard(self, user_id: int) -> None:
        """Another process committed a change to the member's progress."""
        self._progress_changed(user_id)
        for listener in list(self.progress_listeners):
            listener(user_id)

    async def watched_keys(self, user_id: int) -> frozenset[str]:
        """Every episode key the member has marked watched, as committed."""
        cached = self._progress_cache.get(user_id) if self._caching else None
        if cached is not None:
            self._progress_cache.move_to_end(user_id)
            return cached
        writes = self._progress_writes
        rows = await self.db.read(
            "SELECT episode_key FROM watched_episodes WHERE user_id = ?", (user_id,)
        )
        keys = frozenset(row[0] for row in rows)
        # A write that committed while this read ran may have been missed: don't cache then.
        if writes == self._progress_writes and self._caching:
            self._progress_cache[user_id] = keys
            while len(self._progress_cache) > PROGRESS_CACHE_SIZE:
                self._progress_cache.popitem(last=False)
        return keys

    async def mark_watched(
        self, user_id: int, episode_keys: Iterable[str], *, now: datetime
    ) -> frozenset[str]:
        """Mark episodes watched; returns the ones that were not marked before. Committed
        before it returns."""
        keys = _check_keys(episode_keys)
        if not keys:
            return frozenset()
        try:
            return await self.progress_backend.mark(user_id, keys, int(now.timestamp()))
        finally:
            # Also after a failure: the outcome may be unknown, so the next read asks again.
            self._progress_changed(user_id)

    async def unmark_watched(self, user_id: int, episode_keys: Iterable[str]) -> frozenset[str]:
        """Unmark episodes; returns the ones that were marked. Committed before it returns."""
        keys = _check_keys(episode_keys)
        if not keys:
            return frozenset()
        try:
            return await self.progress_backend.unmark(user_id, keys)
        finally:
            self._progress_changed(user_id)
