"""What a member reads in the messages Embargo sent: the checks both drivers' tests apply.

Spoiler text is judged with tests/markdown_oracle.py, read the way Discord's client reads it.
The checks take plain message fields (contents, flags...), so the in-process tests (payloads
recorded by the harness) and the end-to-end tests (messages the stand-in stored) share them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from tests import markdown_oracle

NO_MENTIONS: dict[str, list[str]] = {"parse": []}
EPHEMERAL = 1 << 6
SUPPRESS_EMBEDS = 1 << 2
HEADER_LINE = re.compile(r"^(## Ending explained: .*|-# .*)$", re.MULTILINE)
# Markup that may stay outside the tags: list markers, heading marks, whitespace.
MARKUP_ONLY = re.compile(r"[\s\-*\d.#>]*")


def ts(moment: int, style: str) -> str:
    """A Discord timestamp as Embargo writes it."""
    return f"<t:{moment}:{style}>"


def header(label: str, window_end: int | None) -> list[str]:
    """The first two lines of a tagged ending, as the README shows them."""
    bold = f"**{label}**"
    if window_end is None:
        note = "-# Spoilers for it stay hidden here for good. Click the black bars to reveal."
    else:
        note = (
            f"-# Spoilers stay hidden here until {ts(window_end, 'f')} ({ts(window_end, 'R')}). "
            "Click the black bars to reveal."
        )
    return [f"## Ending explained: {bold}", note]


def words(text: str) -> set[str]:
    """The distinctive words of ``text``: six letters or more."""
    return set(re.findall(r"[A-Za-z]{6,}", text))


def read_all(contents: Iterable[str]) -> tuple[str, str]:
    """(visible, hidden) text of messages as Discord's client shows them."""
    readings = [markdown_oracle.read(content) for content in contents]
    return "".join(r.visible for r in readings), "".join(r.hidden for r in readings)


def assert_safe_delivery(messages: Sequence[dict[str, Any]]) -> None:
    """Every message (``allowed_mentions``, ``flags``, ``embeds`` as sent): no pings at all;
    text-only messages without link previews (flag 4); a message carrying Embargo's own embed
    keeps it (no flag 4)."""
    assert messages
    for message in messages:
        assert message.get("allowed_mentions") == NO_MENTIONS, message
        suppressed = bool((message.get("flags") or 0) & SUPPRESS_EMBEDS)
        assert suppressed == (not message.get("embeds")), message


def assert_all_hidden(contents: Sequence[str], ending: str) -> None:
    """Apart from the header, nothing is visible outside spoiler tags but list and heading
    markers; every word of the ending is inside a tag; no reading of the tags is ambiguous."""
    hidden = ""
    for index, content in enumerate(contents):
        reading = markdown_oracle.read(content)
        assert not reading.hazards, (reading.hazards, content)
        visible = reading.visible
        if index == 0:
            assert HEADER_LINE.match(visible), visible
            visible = HEADER_LINE.sub("", visible)
        assert MARKUP_ONLY.fullmatch(visible), visible
        hidden += reading.hidden
    assert words(ending) <= words(hidden)


def assert_plain(contents: Sequence[str], ending: str) -> None:
    """The ending in plain sight: no spoiler tag, every word visible, no link that unfurls.

    Plain text is the author's Markdown as written, so a stray ``||`` in it stays literal text
    (the oracle calls it an unpaired tag); only a bare URL would be Embargo's fault."""
    assert contents
    for content in contents:
        reading = markdown_oracle.read(content)
        assert not [h for h in reading.hazards if "URL" in h], (reading.hazards, content)
        assert reading.hidden == "", content
    visible, _ = read_all(contents)
    assert words(ending) <= words(visible)


def assert_reveals_nothing(
    contents: Sequence[str], other_text: str, ending: str, *, shared: Collection[str] = ()
) -> None:
    """Not a single distinctive word of the ending, hidden or not, in the contents or
    ``other_text`` (embeds), but the ``shared`` words the ending has in common with what
    Embargo may show (the episode's title, its own sentences)."""
    visible, hidden = read_all(contents)
    leaked = words(ending) & words(visible + hidden + other_text) - set(shared)
    assert not leaked, leaked
