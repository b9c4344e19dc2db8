"""The catalogue the bot serves, and the one way to change it: the sync, then a swap.

Every command reads :attr:`LiveContent.catalogue` (shows and episodes, held in memory for
lookups) and reads reviews and rankings from storage. A reload runs the one content sync
(``bot.content.sync``), which writes each changed file's rows in short transactions and
leaves a file with errors serving its last good version, then builds a new catalogue from
storage and replaces the old one in a single assignment: a command sees the old catalogue or
the new one, never a mix. If anything fails on the way (storage, a vanished directory), the
old catalogue keeps serving.

Triggers (the file watcher, ``python -m bot reload``, start-up) all call
:meth:`LiveContent.reload`. Reloads never overlap, and a request made while one runs is
served by the next reload to start after it, so a burst of triggers costs two syncs at most.

Several processes on one database: only the leader (``bot/leader.py``) reads the files. The
others :meth:`~LiveContent.follow` what storage announces of its writes: each change it
commits is heard after the commit (``Storage.content_listeners``), and the catalogue is built
again from storage, not the files, and swapped in the same single assignment. Notices that
arrive while a rebuild runs are served by one more rebuild after it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from bot.content.files import SHOWS_DIR, count_summary
from bot.content.models import Show
from bot.content.sync import SyncReport, sync_content
from bot.lookup import Catalogue
from bot.storage.content import REVIEWS_CHANGED, ContentBackend

log = logging.getLogger(__name__)

# After a rebuild that failed (storage unreachable), try again this much later.
FOLLOW_RETRY_S = 5.0


class ServedContent(ContentBackend, Protocol):
    """A content store that can also list every show it serves."""

    async def load_shows(self) -> list[Show]: ...


class LiveContent:
    def __init__(self, storage: ServedContent, content_dir: Path) -> None:
        self.storage = storage
        self.content_dir = content_dir
        self.catalogue = Catalogue(())
        self._built = False  # whether catalogue came from storage yet
        self._lock = asyncio.Lock()
        self._requested = 0  # reload requests so far
        self._covered = 0  # requests made before the start of the last finished reload
        self._last: SyncReport | None = None
        # Called after each swap of the catalogue (the release calendar reschedules).
        self.swap_listeners: list[Callable[[], None]] = []
        # Called after each reload (the guard rebuilds its matchers from the new terms).
        self.reload_listeners: list[Callable[[], None]] = []
        # What another process changed and this one has not rebuilt yet (see follow).
        self._stale = asyncio.Event()
        self._catalogue_stale = False

    async def reload(self) -> SyncReport:
        """Sync the content directory into storage, then swap in the catalogue it serves.

        Raises what the sync or storage raise; the catalogue is then the one before.
        """
        self._requested += 1
        ticket = self._requested
        async with self._lock:
            if self._last is not None and self._covered >= ticket:
                return self._last  # a reload that started after this request has run
            started = self._requested
            report = await sync_content(self.storage, self.content_dir)
            if not self._built or _shows_changed(report):
                await self._swap()
            self._covered = started
            self._last = report
        for listener in self.reload_listeners:
            listener()
        return report

    async def _swap(self) -> None:
        """Build the catalogue from storage and serve it (the lock held)."""
        shows = await self.storage.load_shows()
        # Indexing every episode is CPU work: off the event loop.
        self.catalogue = await asyncio.to_thread(Catalogue, shows)
        self._built = True
        for listener in self.swap_listeners:
            listener()

    async def load(self) -> None:
        """Serve the catalogue storage holds, without reading the files (a process that
        does not lead, at start-up). Raises what storage raises."""
        async with self._lock:
            await self._swap()
        for listener in self.reload_listeners:
            listener()

    def changed_elsewhere(self, change: str | None) -> None:
        """Another process committed a content write (``change``, see
        ``bot/storage/content.py``; None: anything may have changed): :meth:`follow`
        rebuilds what depends on it."""
        if change != REVIEWS_CHANGED:
            self._catalogue_stale = True
        self._stale.set()

    async def follow(self) -> None:
        """Rebuild after each change another process made (see the module docstring); runs
        until cancelled. A failed rebuild (a storage fault) is logged and tried again."""
        while True:
            await self._stale.wait()
            self._stale.clear()
            catalogue, self._catalogue_stale = self._catalogue_stale, False
            try:
                async with self._lock:
                    if catalogue:
                        await self._swap()
            except asyncio.CancelledError:
                raise
            except Exception:
                self._catalogue_stale |= catalogue
                log.exception(
                    "could not load the content another process changed: still serving the "
                    "last catalogue loaded, trying again in %g s",
                    FOLLOW_RETRY_S,
                )
                await asyncio.sleep(FOLLOW_RETRY_S)
                self._stale.set()
                continue
            for listener in self.reload_listeners:
                listener()

    async def reload_and_log(self, reason: str) -> SyncReport | None:
        """:meth:`reload` for a running bot: problems and failures go to the log, never up."""
        try:
            report = await self.reload()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("content reload (%s) failed: still serving the last good content", reason)
            return None
        log_report(report, reason)
        return report


def _shows_changed(report: SyncReport) -> bool:
    """Whether a show file's rows changed: only those hold what the catalogue indexes."""
    prefix = f"{SHOWS_DIR}/"
    return any(rel.startswith(prefix) for rel in itertools.chain(report.loaded, report.removed))


def log_report(report: SyncReport, reason: str | None = None) -> None:
    """Each problem as a warning (``file:line: what``), then one summary line."""
    for problem in report.problems:
        log.warning("content: %s", problem)
    log.info(
        "%s: %d file(s) loaded, %d unchanged, %d removed, %s",
        "content" if reason is None else f"content reload ({reason})",
        len(report.loaded),
        len(report.unchanged),
        len(report.removed),
        count_summary(report.problems),
    )
