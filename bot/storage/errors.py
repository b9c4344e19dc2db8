"""Storage faults every backend raises, and the rate-limited log that reports them.

``str()`` of a StorageError is one line for the operator: what is wrong and what to do.
``member_message`` is what a member who asked for a write is told.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# A fault that repeats (a full disk under a stream of votes, the background checkpoint twice
# a second) is logged once per this many seconds, with a count of the ones left out.
FAULT_LOG_INTERVAL_S = 60.0
# The longest a write waits for its turn (behind our own writers, then for another process's
# lock), so that a command that writes can still answer within Discord's 3 s: past it, the
# write gives up with StorageBusy and nothing is saved.
WRITE_TIMEOUT_S = 2.0


class StorageError(Exception):
    """Storage can't do what was asked. ``str()`` is one line for the operator: what is wrong
    and what to do. ``member_message`` is what a member who asked for a write is told."""

    member_message = (
        "Embargo can't reach its database right now, so nothing was saved. The server's "
        "operators can see why in the log; please try again later."
    )


class StorageBusy(StorageError):
    """Another program held the write lock past WRITE_TIMEOUT_S; nothing was written."""

    member_message = "Embargo is busy: please try again in a moment. Nothing was saved."


class StorageFull(StorageError):
    """The disk (or the database's size limit) is full; the transaction was rolled back."""

    member_message = (
        "The server's disk is full, so nothing was saved. Please try again later: the "
        "server's operators can see this in the log."
    )


class StorageReadOnly(StorageError):
    """The database file, its folder or its disk can't be written."""

    member_message = (
        "Embargo's database is read-only right now, so nothing was saved. Please try again "
        "later: the server's operators can see this in the log."
    )


class StorageDamaged(StorageError):
    """The file is not an SQLite database, or its pages are damaged."""


class StorageOutcomeUnknown(StorageError):
    """The connection was lost while a transaction was committing: it may or may not have
    been saved. Caches that the commit would have moved can no longer be trusted."""

    member_message = (
        "Embargo lost its connection to the database while saving this, so it can't tell "
        "whether it was saved: please look before trying again."
    )


class FaultLog:
    """Logs storage faults for the operator, each kind at most once per ``interval`` seconds
    (the ones left out are counted in the next line), and once when a kind stops failing."""

    def __init__(
        self, interval: float = FAULT_LOG_INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}

    def failed(self, kind: str, message: str) -> None:
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._left_out[kind] = self._left_out.get(kind, 0) + 1
            return
        left_out = self._left_out.pop(kind, 0)
        more = f" ({left_out} more like this since the last report)" if left_out else ""
        log.warning("%s: %s%s", kind, message, more)
        self._last[kind] = now

    def recovered(self, kind: str) -> None:
        if self._last.pop(kind, None) is not None:
            self._left_out.pop(kind, None)
            log.warning("%s works again", kind)
