"""Checks shared by the Embargo end-to-end modules: delivery rules, spoiler reading, settings.

The reading rules are tests/support/reading.py's, the ones the in-process tests apply; these
take the stand-in's stored messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tests.support import reading
from tests.support.reading import read_all, words

from .scenario import Scenario, SentMessage


def assert_safe_delivery(messages: Sequence[SentMessage]) -> None:
    reading.assert_safe_delivery(
        [{**m.payload, "allowed_mentions": m.allowed_mentions} for m in messages]
    )


def shows_all_of(text: str) -> Callable[[list[SentMessage]], bool]:
    """For :meth:`InteractionHandle.messages`: every word of ``text`` has arrived."""
    wanted = words(text)

    def arrived(messages: list[SentMessage]) -> bool:
        visible, hidden = read_all(m.content for m in messages)
        return wanted <= words(visible + hidden)

    return arrived


def assert_all_hidden(messages: Sequence[SentMessage], ending: str) -> None:
    reading.assert_all_hidden([m.content for m in messages], ending)


def assert_plain(messages: Sequence[SentMessage], ending: str) -> None:
    reading.assert_plain([m.content for m in messages], ending)


def assert_reveals_nothing(messages: Sequence[SentMessage], ending: str) -> None:
    contents = [m.content for m in messages]
    reading.assert_reveals_nothing(contents, "".join(m.text() for m in messages), ending)


async def moderator(scenario: Scenario, subcommand: str, **options: Any) -> SentMessage:
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
