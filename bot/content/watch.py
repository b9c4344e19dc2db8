"""Reload content when its files change: a debounced watcher on the content directory.

``watchfiles`` (inotify on Linux, FSEvents on macOS, ReadDirectoryChangesW on Windows, from a
Rust core) rather than a polling loop of our own: it sleeps until the kernel reports a
change, and it groups the burst of events one save or one ``git pull`` makes into one. Set
``WATCHFILES_FORCE_POLLING=1`` where the kernel cannot report changes (some network and
container mounts). A content directory swapped by replacing a symlink to it is not seen:
run ``python -m bot reload`` after such a deploy.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import watchfiles

from bot.content.files import RANKINGS_DIR, REVIEWS_DIR, SHOWS_DIR

log = logging.getLogger(__name__)

# Wait for this long without a new change before reloading (ms), and at most DEBOUNCE_MS in
# all: an editor's save is a few events within milliseconds, a checkout many within a second.
QUIET_MS = 300
DEBOUNCE_MS = 2000


class ContentFilter(watchfiles.DefaultFilter):
    """Changes under shows/, reviews/ and rankings/ only.

    The database usually lives in the content directory too, and its every commit touches
    its files: without this, each vote would start a reload.
    """

    def __init__(self, content_dir: Path) -> None:
        super().__init__()
        base = os.path.join(os.path.abspath(content_dir), "")
        self._prefixes = tuple(f"{base}{sub}" for sub in (SHOWS_DIR, REVIEWS_DIR, RANKINGS_DIR))

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        inside = any(
            path == prefix or path.startswith(prefix + os.sep) for prefix in self._prefixes
        )
        return inside and super().__call__(change, path)


async def watch_content(
    content_dir: Path, reload: Callable[[], Awaitable[object]], stop: asyncio.Event
) -> None:
    """Call ``reload`` after each burst of changes to content files, until ``stop`` is set."""
    if not await asyncio.to_thread(content_dir.is_dir):
        # Checked here: with ignore_permission_denied, watchfiles waits on a missing path.
        _not_watching(content_dir, "not a directory")
        return
    try:
        async for changes in watchfiles.awatch(
            content_dir,
            watch_filter=ContentFilter(content_dir),
            debounce=DEBOUNCE_MS,
            step=QUIET_MS,
            stop_event=stop,
            # An unreadable folder is reported by the sync; the watcher carries on without it.
            ignore_permission_denied=True,
        ):
            log.debug("content watcher: %d change(s)", len(changes))
            await reload()
    except OSError as error:
        # Raised at start (no such directory, no inotify watches left): the bot serves on,
        # reloading only when told to.
        _not_watching(content_dir, str(error))


def _not_watching(content_dir: Path, reason: str) -> None:
    log.warning(
        "not watching %s for changes (%s): run `python -m bot reload` after editing",
        content_dir,
        reason,
    )
