"""/review, /ending and the reveal button through the real ``python -m bot`` process.

One bot serves the module, on a copy of data/ plus the Clockwork Test show (tests/e2e/
embargo_content.py), whose episodes are released relative to now: the bot runs on the real
clock. Each test first puts the server's spoiler settings in the state it needs, through the
real /embargo commands. What stays here needs the real process or its content: a long ending
delivered as a reply and ordered followups, threads the bot never cached, a show added to the
content directory. The rules themselves (every mode, window and channel policy, /spoilers,
errors) are command behaviour, tested in-process in tests/test_commands_core.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.reading import header, ts

from .embargo_checks import (
    assert_all_hidden,
    assert_plain,
    assert_reveals_nothing,
    assert_safe_delivery,
    configure,
    shows_all_of,
)
from .embargo_content import SHOW_TITLE, E2EContent
from .scenario import Scenario, ScenarioError

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

WEEK = timedelta(days=7)


@pytest.fixture
def scenario(embargo: Scenario) -> Scenario:
    embargo.checkpoint()
    return embargo


# -- autocomplete and free text ----------------------------------------------------------------


async def test_autocomplete_offers_every_episode_of_a_show_added_to_the_content(
    scenario: Scenario, content: E2EContent
) -> None:
    # Labels, the 25-choice cap and every episode command: tests/test_commands_core.py.
    clockwork = await scenario.autocomplete("ending", "episode", "clockwork", in_channel="dm")
    assert {(c["name"], c["value"]) for c in clockwork} == {
        (e.label, e.key) for e in content.episodes
    }
    scenario.assert_clean()


# -- /review -------------------------------------------------------------------------------------


async def test_review_carries_no_ending_text(scenario: Scenario, content: E2EContent) -> None:
    for episode in content.episodes:
        handle = await scenario.slash("review", episode=episode.key)
        (review,) = await handle.messages()
        (embed,) = review.embeds
        assert embed["title"] == f"{SHOW_TITLE} · S1E{episode.number} · {episode.title}"
        assert embed["description"] == episode.body
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        assert fields["Rating"] == "★★★½☆ 3.5/5"
        assert ts(episode.release_ts, "D") in fields["Released"]
        assert_reveals_nothing([review], episode.ending)
    scenario.assert_clean()


# -- /ending: the README's policy table ----------------------------------------------------------


async def test_inside_the_window_tagged_is_public_and_fully_hidden(
    scenario: Scenario, content: E2EContent
) -> None:
    recent = content.recent
    await configure(scenario, window="7d", mode="tagged")
    handle = await scenario.slash("ending", episode=recent.key, as_user="bob")
    messages = await handle.messages(until=shows_all_of(recent.ending))
    # The long ending needs several messages: the reply, then followups, in order.
    assert len(messages) >= 3
    assert all(len(m.content) <= 2000 for m in messages)
    assert [m.flags for m in messages] == [4] * len(messages)  # public, no link previews
    in_channel = [m.id for m in scenario.channel_messages("general")]
    assert [m.id for m in messages] == in_channel[-len(messages) :]
    assert_safe_delivery(messages)
    assert messages[0].content.splitlines()[:2] == header(
        recent.label, recent.release_ts + int(WEEK.total_seconds())
    )
    assert_all_hidden(messages, recent.ending)
    scenario.assert_clean()


async def test_inside_the_window_private_only_the_asker_sees_it(
    scenario: Scenario, content: E2EContent
) -> None:
    recent = content.recent
    await configure(scenario, window="7d", mode="private")
    before = len(scenario.channel_messages("general"))
    handle = await scenario.slash("ending", episode=recent.key, as_user="bob")
    messages = await handle.messages(until=shows_all_of(recent.ending))
    assert len(messages) >= 3
    assert all(m.ephemeral and m.visible_to == scenario.user("bob").id for m in messages)
    assert len(scenario.channel_messages("general")) == before
    assert_safe_delivery(messages)
    assert_all_hidden(messages, recent.ending)
    scenario.assert_clean()


async def test_spoilers_ok_channel_and_its_threads_are_plain(
    scenario: Scenario, content: E2EContent
) -> None:
    recent = content.recent
    thread_in_ok = scenario.world.add_thread("escapement talk", parent="spoilers")
    thread_elsewhere = scenario.world.add_thread("general chat", parent="general")
    await configure(scenario, window="7d", mode="private", spoilers_ok=["spoilers"])
    for where in ("spoilers", thread_in_ok):
        handle = await scenario.slash("ending", episode=recent.key, in_channel=where)
        messages = await handle.messages(until=shows_all_of(recent.ending))
        assert not any(m.ephemeral for m in messages), where
        assert {m.channel_id for m in messages} == {scenario.channel(where).id}
        assert_safe_delivery(messages)
        assert_plain(messages, recent.ending)
    for where in ("general", thread_elsewhere):
        handle = await scenario.slash("ending", episode=recent.key, in_channel=where)
        messages = await handle.messages(until=shows_all_of(recent.ending))
        assert all(m.ephemeral for m in messages), where
        assert_all_hidden(messages, recent.ending)
    await configure(scenario, not_spoilers_ok=["spoilers"])
    again = await (
        await scenario.slash("ending", episode=recent.key, in_channel="spoilers")
    ).messages(until=shows_all_of(recent.ending))
    assert all(m.ephemeral for m in again)
    assert_all_hidden(again, recent.ending)
    scenario.assert_clean()


# -- the reveal button ---------------------------------------------------------------------------


async def test_reveal_button_of_an_unreleased_episode_reveals_nothing(
    scenario: Scenario, content: E2EContent
) -> None:
    upcoming = content.upcoming
    await configure(scenario, window="off", mode="tagged")
    review = await (await scenario.slash("review", episode=upcoming.key)).reply()
    click = await scenario.click(review, f"embargo:ending:{upcoming.key}", as_user="bob")
    (reply,) = await click.messages()
    assert reply.ephemeral
    assert "isn't out yet" in reply.content
    assert_reveals_nothing([reply], upcoming.ending)
    scenario.assert_clean()


# -- /spoilers -----------------------------------------------------------------------------------


async def test_settings_group_is_not_offered_in_dms(scenario: Scenario) -> None:
    with pytest.raises(ScenarioError, match="not offered in a DM"):
        await scenario.slash("embargo", "settings", as_user="mod", in_channel="dm")
