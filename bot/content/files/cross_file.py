"""The rules between files, written once: the sync applies them, and ``check`` is its dry run.

A review must be for an episode its show file lists; the files of a show whose show file is
missing or broken are reported once per show, not once per file.
"""

from __future__ import annotations

from collections.abc import Collection

from bot.content.files.layout import (
    RANKINGS_DIR,
    REVIEWS_DIR,
    SHOWS_DIR,
    ContentFile,
    FileKind,
)
from bot.content.files.problems import ContentProblem


def review_episode_problem(
    file: ContentFile, episode_codes: Collection[str]
) -> ContentProblem | None:
    """The cross-file check: a review must be for an episode its show file lists."""
    if file.code in episode_codes:
        return None
    return ContentProblem(
        file.rel,
        None,
        f"episode {file.code} is not in {SHOWS_DIR}/{file.slug}.toml: add it there, or "
        "fix this file's name",
    )


def unknown_show_problem(
    slug: str, kind: FileKind, count: int, show_file_exists: bool
) -> ContentProblem:
    """One problem for files of a show that has no loadable show file.

    Reported once per show rather than once per review, so a misnamed review folder of
    hundreds of files gives one readable line.
    """
    show_rel = f"{SHOWS_DIR}/{slug}.toml"
    if kind == "ranking":
        path, what = f"{RANKINGS_DIR}/{slug}.toml", "this ranking was not loaded"
    else:
        noun = "review" if count == 1 else "reviews"
        path, what = f"{REVIEWS_DIR}/{slug}", f"{count} {noun} not loaded"
    if show_file_exists:
        reason = f"{show_rel} did not load (see its errors)"
    else:
        reason = f"there is no show file {show_rel}"
    return ContentProblem(path, None, f"{what}: {reason}")
