"""One leader for the work that must run once across every process on a database.

Content sync, command sync and the release posts must not run twice at once: two
processes would post a release twice or race each other's writes. Exactly one process leads
them, chosen by a lock the database holds for it (``bot/storage/backend.py: LeaderLock``):
on SQLite, where one process owns the file, the process leads from the start; on PostgreSQL,
the process holding a session advisory lock on a connection of its own leads.

Followers do not poll: each waits on the lock (a blocking wait on its own connection costs
nothing until the lock comes free) and leads as soon as it gets it. A leader whose lock
connection dies stops that work at once and waits for the lock again.

Work that only the leader does runs as a :class:`LeaderWork`: started in ``cog_load`` and
stopped in ``cog_unload`` as any background task, its loop runs only while this process
leads. Anything else can :meth:`Leadership.subscribe` to hear ``True`` on becoming leader and
``False`` on losing the lead. Free of Discord.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from bot.storage.backend import LeaderLock
from bot.storage.errors import StorageError

log = logging.getLogger(__name__)

# Waits before asking for the lock again after the database could not be reached.
RETRY_DELAYS_S = (0.1, 0.5, 1.0, 2.0, 5.0)

LeadershipListener = Callable[[bool], None]


class Leadership:
    """Whether this process leads the shared work (:attr:`leading`), and who to tell when
    that changes (see the module docstring)."""

    def __init__(
        self, lock: LeaderLock, *, retry_delays_s: Sequence[float] = RETRY_DELAYS_S
    ) -> None:
        self._lock = lock
        self._retry_delays_s = tuple(retry_delays_s)
        self.leading = False
        self._listeners: list[LeadershipListener] = []
        self._campaign: asyncio.Task[None] | None = None

    def subscribe(self, listener: LeadershipListener) -> None:
        """Call ``listener(True)`` each time this process becomes leader and
        ``listener(False)`` each time it stops leading (from now on: look at :attr:`leading`
        for the present)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: LeadershipListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    async def start(self) -> None:
        """Take the lead now if nobody holds it (so start-up knows at once whether this
        process syncs the content), then keep waiting for it in the background whenever
        this process does not lead. Raises StorageError if the database can't be asked."""
        if self._campaign is not None:
            return
        if await self._lock.acquire(wait=False):
            self._set(True)
        self._campaign = asyncio.create_task(self._campaign_loop(), name="embargo-leadership")

    async def stop(self) -> None:
        """Stop leading and stop waiting to (shutting down): the lock is released for the
        next process. Work subscribed should be stopped first."""
        if self._campaign is not None:
            self._campaign.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._campaign
            self._campaign = None
        await self._lock.release()
        if self.leading:
            self._set(False, reason="shutting down")

    async def _campaign_loop(self) -> None:
        failures = 0
        while True:
            if not self.leading:
                try:
                    await self._lock.acquire(wait=True)
                except Exception as error:
                    delay = self._retry_delays_s[min(failures, len(self._retry_delays_s) - 1)]
                    if not isinstance(error, StorageError):  # a bug: never stop trying
                        log.exception("waiting for the lead of the shared work failed")
                    elif failures == 0:
                        log.warning(
                            "cannot wait for the lead of the shared work (%s); trying again",
                            error,
                        )
                    failures += 1
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                self._set(True)
            try:
                await self._lock.lost()
            except Exception:  # a bug: let go of the lock rather than lead unwatched
                log.exception("watching the lock of the shared work failed")
                await self._lock.release()
            self._set(False, reason="its lock on the database was lost")

    def _set(self, leading: bool, *, reason: str = "") -> None:
        if leading == self.leading:
            return
        self.leading = leading
        if leading:
            log.info(
                "leading the shared work: content sync, command sync and release posts run "
                "in this process"
            )
        else:
            log.info("no longer leading the shared work (%s): this process stopped it", reason)
        for listener in list(self._listeners):
            listener(leading)


class LeaderWork:
    """A background loop that runs only while this process leads: started (afresh) on
    becoming leader, cancelled at once on losing the lead. ``start`` in ``cog_load``,
    ``stop`` in ``cog_unload``."""

    def __init__(
        self,
        leadership: Leadership,
        work: Callable[[], Coroutine[Any, Any, None]],
        *,
        name: str,
    ) -> None:
        self.leadership = leadership
        self.work = work
        self.name = name
        self._task: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self.leadership.subscribe(self._leadership_changed)
        self._leadership_changed(self.leadership.leading)

    async def stop(self) -> None:
        self.leadership.unsubscribe(self._leadership_changed)
        self._cancel()
        await asyncio.gather(*self._stopping, return_exceptions=True)

    def _leadership_changed(self, leading: bool) -> None:
        if not leading:
            self._cancel()
        elif not self.running:
            self._task = asyncio.create_task(self.work(), name=self.name)
            self._task.add_done_callback(self._finished)

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._stopping.add(self._task)
            self._task = None

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._stopping.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped", self.name, exc_info=task.exception())
