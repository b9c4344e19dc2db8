"""Review files: ``reviews/<slug>/sSSeEE.md``, TOML front matter, the spoiler-free review,
then an optional ``## Ending explained`` section holding the spoilers."""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from datetime import date, datetime

from bot.content.files.cross_file import review_episode_problem
from bot.content.files.fields import (
    must_be,
    text_field,
    toml_value,
    unknown_keys,
)
from bot.content.files.layout import (
    ContentFile,
    classify,
)
from bot.content.files.problems import ContentProblem, has_errors
from bot.content.files.toml_text import TomlLines, decode, load_toml
from bot.content.models import (
    Review,
)
from bot.spoilers.terms import check_spoiler_terms

VERDICT_MAX_CHARS = 256
# Content limits (the README lists them). A review's spoiler-free text is shown in one
# embed, whose description holds 4,096 characters; an ending is posted as messages of up to
# 2,000, so this one is at most about a dozen.
REVIEW_MAX_CHARS = 4000
ENDING_MAX_CHARS = 20_000

# The whole of one line (see _find_ending_heading).
_ENDING_HEADING = re.compile(r"[ \t]*##[ \t]+ending[ \t]+explained[ \t]*#*[ \t]*", re.IGNORECASE)
# Anything that looks like the ending heading but is not exactly it (wrong level, a colon,
# bold text...). Left alone, its spoilers would be served as the spoiler-free review.
_NEAR_ENDING_HEADING = re.compile(
    r"^[ \t]*(?:(?:#{1,6}|\*\*|__)[ \t]*ending[ \t]*explained\b.*"
    r"|ending[ \t]*explained[ \t:.*_]*)$",
    re.IGNORECASE,
)
_FRONT_MATTER_FENCE = "+++"


_REVIEW_KEYS = ("rating", "verdict", "author", "published", "spoiler_terms")


def parse_review_bytes(
    data: bytes, rel: str, episode_codes: Collection[str] | None
) -> tuple[Review | None, list[ContentProblem]]:
    """Parse a review of the show whose episodes have ``episode_codes``.

    With ``episode_codes=None`` (the show is unknown) only the file itself is checked.
    """
    found = classify(rel)
    if not isinstance(found, ContentFile) or found.kind != "review":
        message = (
            found.message
            if isinstance(found, ContentProblem)
            else "reviews belong in reviews/<show-slug>/sSSeEE.md"
        )
        return None, [ContentProblem(rel, None, message)]
    review, problems = _parse_review_text(data, rel, found)
    if episode_codes is not None:
        mismatch = review_episode_problem(found, episode_codes)
        if mismatch is not None:
            problems.append(mismatch)
    if has_errors(problems):
        return None, problems
    return review, problems


def _parse_review_text(
    data: bytes, rel: str, file: ContentFile
) -> tuple[Review | None, list[ContentProblem]]:
    text, problems = decode(data, rel)
    if text is None:
        return None, problems
    lines = text.splitlines()
    if not lines or lines[0].strip() != _FRONT_MATTER_FENCE:
        return None, [
            ContentProblem(rel, 1, "a review starts with TOML front matter between two '+++' lines")
        ]
    closing = next(
        (i for i in range(1, len(lines)) if lines[i].strip() == _FRONT_MATTER_FENCE), None
    )
    if closing is None:
        return None, [
            ContentProblem(rel, 1, "the front matter opened here is never closed by a '+++' line")
        ]
    front_text = "\n".join(lines[1:closing])
    front, toml_problems = load_toml(front_text, rel, first_line=2)
    if front is None:
        return None, toml_problems
    where = TomlLines(front_text, first_line=2)

    def error(message: str, key: str) -> None:
        problems.append(ContentProblem(rel, where.key_line(key) or 1, message))

    rating = front.get("rating")
    rating_ok = (
        isinstance(rating, int | float)
        and not isinstance(rating, bool)
        and math.isfinite(rating)
        and 0 <= rating <= 5
        and float(rating * 2).is_integer()
    )
    if not rating_ok:
        error(
            must_be("rating", "between 0 and 5 in half steps", rating, "rating = 4.5"),
            "rating",
        )

    verdict = front.get("verdict")
    if not isinstance(verdict, str) or not verdict.strip():
        error("'verdict' must be a one-line summary (a non-empty string)", "verdict")
    elif "\n" in verdict or "\r" in verdict:
        error("'verdict' must be one line: remove the line break", "verdict")
    elif len(verdict.strip()) > VERDICT_MAX_CHARS:
        error(
            f"'verdict' is {len(verdict.strip())} characters long: keep it to {VERDICT_MAX_CHARS}",
            "verdict",
        )

    author = text_field(front.get("author"))
    if author is None:
        error("'author' must be the reviewer's name (a non-empty string)", "author")

    published = front.get("published")
    if not isinstance(published, date) or isinstance(published, datetime):
        error(must_be("published", "a date", published, "published = 2025-04-12"), "published")

    terms = check_spoiler_terms(front.get("spoiler_terms"))
    for problem in terms.problems:
        error(problem, "spoiler_terms")

    for key in unknown_keys(front, _REVIEW_KEYS):
        problems.append(
            ContentProblem(rel, where.key_line(key), f"unknown key {key!r} (ignored)", "warning")
        )

    body_start = closing + 1  # index into lines of the first body line
    body_text = "\n".join(lines[body_start:])
    heading = _find_ending_heading(body_text)
    body = body_text[: heading[0]] if heading else body_text
    ending = body_text[heading[1] :].strip() if heading else None
    body_line = body_start + 1  # file line number of the body's first line
    heading_line = body_line + body.count("\n") if heading else None

    # A near-miss heading in the spoiler-free part would serve spoilers unhidden.
    for offset, body_line_text in enumerate(body.splitlines() if _may_hold_near(body) else ()):
        if _NEAR_ENDING_HEADING.match(body_line_text):
            problems.append(
                ContentProblem(
                    rel,
                    body_line + offset,
                    f"{toml_value(body_line_text.strip())} looks like the spoiler heading but "
                    "is not '## Ending explained' (exactly two #): as written, the text under it "
                    "would be shown as spoiler-free",
                )
            )
    if len(body.strip()) > REVIEW_MAX_CHARS:
        problems.append(
            ContentProblem(
                rel,
                body_line,
                f"the review is {len(body.strip()):,} characters long: keep the spoiler-free "
                f"text to {REVIEW_MAX_CHARS:,} (it is shown in one embed)",
            )
        )
    if ending is not None and len(ending) > ENDING_MAX_CHARS:
        problems.append(
            ContentProblem(
                rel,
                heading_line,
                f"the ending explained is {len(ending):,} characters long: keep it to "
                f"{ENDING_MAX_CHARS:,} (about ten Discord messages)",
            )
        )
    if not body.strip():
        problems.append(
            ContentProblem(
                rel,
                heading_line or body_line,
                "the review has no spoiler-free text: write the review before '## Ending "
                "explained'",
            )
        )
    if heading is not None and not ending:
        problems.append(
            ContentProblem(
                rel,
                heading_line,
                "'## Ending explained' has no text under it: write the ending or remove the "
                "heading",
            )
        )

    if (
        has_errors(problems)
        or not rating_ok
        or not isinstance(rating, int | float)
        or not isinstance(verdict, str)
        or author is None
        or not isinstance(published, date)
    ):
        return None, problems
    return (
        Review(
            episode_key=file.episode_key,
            rating=float(rating),
            verdict=verdict.strip(),
            author=author,
            published=published,
            body=body.strip(),
            ending=ending,
            spoiler_terms=terms.terms,
        ),
        problems,
    )


def _find_ending_heading(text: str) -> tuple[int, int] | None:
    """Start and end of the first line of ``text`` that is the ending heading, if any.

    Only lines holding "##" can be it, and ``str.find`` skips to them far faster than a
    multi-line regex search tries every position of a review.
    """
    found = text.find("##")
    while found != -1:
        start = text.rfind("\n", 0, found) + 1
        end = text.find("\n", found)
        if end == -1:
            end = len(text)
        if _ENDING_HEADING.fullmatch(text, start, end):
            return start, end
        found = text.find("##", end)
    return None


def _may_hold_near(text: str) -> bool:
    """False when no line of ``text`` can match _NEAR_ENDING_HEADING, checked cheaply.

    Every match holds "explained" in some case. For ASCII text, that means the lowercased
    text holds "explained"; beyond ASCII the regex's case folding has more equivalents
    (a dotless i), so such text is always checked line by line.
    """
    return not text.isascii() or "explained" in text.lower()
