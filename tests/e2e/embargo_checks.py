"""Checks shared by the Embargo end-to-end modules: delivery rules, spoiler reading, settings.

Spoiler text is judged with tests/markdown_oracle.py, read the way Discord's client reads it,
exactly like the in-process tests (tests/test_commands_core.py) judge the same renderings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from tests import markdown_oracle

from .scenario import Scenario, SentMessage

NO_MENTIONS = {"parse": []}
HEADER_LINE = re.compile(r"^(## Ending explained: .*|-# .*)$", re.MULTILINE)
# Markup that may stay outside the tags: list markers, heading marks, whitespace.
MARKUP_ONLY = re.compile(r"[\s\-*\d.#>]*")


def ts(moment: int, style: str) -> str:
    """A Discord timestamp as Embargo writes it."""
    return f"<t:{moment}:{style}>"


def words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z]{6,}", text))


def assert_safe_delivery(messages: Sequence[SentMessage]) -> None:
    """Every message: no pings at all; text-only messages without link previews (flag 4);
    a message carrying Embargo's own embed keeps it (no flag 4)."""
    assert messages
    for message in messages:
        assert message.allowed_mentions == NO_MENTIONS, message.payload
        assert message.suppress_embeds == (not message.embeds), message.payload


def read_all(messages: Sequence[SentMessage]) -> tuple[str, str]:
    """(visible, hidden) text of ``messages`` as Discord's client shows them."""
    readings = [markdown_oracle.read(m.content) for m in messages]
    return "".join(r.visible for r in readings), "".join(r.hidden for r in readings)


def shows_all_of(text: str) -> Callable[[list[SentMessage]], bool]:
    """For :meth:`InteractionHandle.messages`: every word of ``text`` has arrived."""
    wanted = words(text)

    def arrived(messages: list[SentMessage]) -> bool:
        visible, hidden = read_all(messages)
        return wanted <= words(visible + hidden)

    return arrived


def assert_all_hidden(messages: Sequence[SentMessage], ending: str) -> None:
    """Apart from the header, nothing is visible outside spoiler tags but list and heading
    markers; every word of the ending is inside a tag; no reading of the tags is ambiguous."""
    hidden = ""
    for index, message in enumerate(messages):
        reading = markdown_oracle.read(message.content)
        assert not reading.hazards, (reading.hazards, message.content)
        visible = reading.visible
        if index == 0:
            assert HEADER_LINE.match(visible), visible
            visible = HEADER_LINE.sub("", visible)
        assert MARKUP_ONLY.fullmatch(visible), visible
        hidden += reading.hidden
    assert words(ending) <= words(hidden)


def assert_plain(messages: Sequence[SentMessage], ending: str) -> None:
    """The ending in plain sight: no spoiler tag, every word visible, no link that unfurls.

    Plain text is the author's Markdown as written, so a stray ``||`` in it stays literal text
    (the oracle calls it an unpaired tag); only a bare URL would be Embargo's fault."""
    for message in messages:
        reading = markdown_oracle.read(message.content)
        assert not [h for h in reading.hazards if "URL" in h], (reading.hazards, message.content)
        assert reading.hidden == "", message.content
    visible, _ = read_all(messages)
    assert words(ending) <= words(visible)


def assert_reveals_nothing(messages: Sequence[SentMessage], ending: str) -> None:
    """Not a single distinctive word of the ending, hidden or not."""
    visible, hidden = read_all(messages)
    leaked = words(ending) & words(visible + hidden + "".join(m.text() for m in messages))
    assert not leaked, leaked


async def moderator(scenario: Scenario, subcommand: str, **options: object) -> SentMessage:
    """``mod`` runs ``/embargo subcommand``; the change is confirmed privately."""
    reply = await (await scenario.slash("embargo", subcommand, as_user="mod", **options)).reply()
    assert reply.ephemeral, reply.content
    assert reply.content.endswith(("Saved.", "nothing changed.")), reply.content
    return reply


async def configure(
    scenario: Scenario,
    *,
    window: str | None = None,
    mode: str | None = None,
    spoilers_ok: Sequence[str] = (),
    not_spoilers_ok: Sequence[str] = (),
) -> None:
    """Put the server's spoiler settings in a known state through the real commands; what is
    not given stays as it is."""
    if window is not None:
        await moderator(scenario, "window", duration=window)
    if mode is not None:
        await moderator(scenario, "mode", mode=mode)
    for channel in spoilers_ok:
        await moderator(scenario, "channel", channel=channel, policy="spoilers-ok")
    for channel in not_spoilers_ok:
        await moderator(scenario, "channel", channel=channel, policy="default")
