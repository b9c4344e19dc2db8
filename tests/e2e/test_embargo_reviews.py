"""/review, /ending, the reveal button and /spoilers through the real ``python -m bot`` process.

One bot serves the module, on a copy of data/ plus the Clockwork Test show (tests/e2e/
embargo_content.py), whose episodes are released relative to now: the bot runs on the real
clock. Each test first puts the server's spoiler settings in the state it needs, through the
real /embargo commands.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from .embargo_checks import (
    assert_all_hidden,
    assert_plain,
    assert_reveals_nothing,
    assert_safe_delivery,
    configure,
    moderator,
    shows_all_of,
    ts,
)
from .embargo_content import SHOW_TITLE, E2EContent
from .scenario import REPO_ROOT, Scenario, ScenarioError

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

FINALE = "black-mirror/s07e06"
FINALE_LABEL = "Black Mirror S7E6 · USS Callister: Into Infinity"
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
WEEK = timedelta(days=7)


@pytest.fixture
def scenario(embargo: Scenario) -> Scenario:
    embargo.checkpoint()
    return embargo


def readme_section(heading: str) -> str:
    start = README.index(heading)
    end = README.find("\n### ", start + len(heading))
    return README[start : end if end != -1 else None]


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


# -- autocomplete and free text ----------------------------------------------------------------


async def test_episode_options_autocomplete_with_labelled_keys(
    scenario: Scenario, content: E2EContent
) -> None:
    for command in ("review", "ending", "spoilers"):
        choices = await scenario.autocomplete(command, "episode", "into infinity")
        assert choices[0] == {"name": FINALE_LABEL, "value": FINALE}, command
    everything = await scenario.autocomplete("review", "episode", "")
    assert len(everything) == 25  # Discord's maximum, and there are more episodes than that
    assert all(0 < len(c["name"]) <= 100 for c in everything)
    assert len({c["value"] for c in everything}) == 25
    clockwork = await scenario.autocomplete("ending", "episode", "clockwork", in_channel="dm")
    assert {(c["name"], c["value"]) for c in clockwork} == {
        (e.label, e.key) for e in content.episodes
    }
    scenario.assert_clean()


def readme_free_text_examples() -> list[str]:
    sentence = re.search(r"also accepts free text: (.*?)\. An unknown", README, re.DOTALL)
    assert sentence, "the README no longer lists free-text examples"
    return re.findall(r"`([^`]+)`", sentence[1])


async def test_free_text_forms_from_the_readme_find_the_episode(scenario: Scenario) -> None:
    examples = readme_free_text_examples()
    assert len(examples) >= 5
    for text in examples:
        review = await (await scenario.slash("review", episode=text)).reply()
        assert review.embeds, (text, review.content)
        assert review.embeds[0]["title"].endswith("USS Callister: Into Infinity"), text
    scenario.assert_clean()


async def test_unknown_episode_is_a_private_error_with_close_matches(scenario: Scenario) -> None:
    for command in ("review", "ending", "spoilers"):
        handle = await scenario.slash(command, episode="into infinty and beyond")
        (reply,) = await handle.messages()
        assert reply.flags == 64 | 4  # ephemeral, no link previews
        assert_safe_delivery([reply])
        assert reply.content.startswith(
            "I couldn't find an episode matching “into infinty and beyond”. Did you mean:"
        )
        suggestions = re.findall(r"^- (.+)$", reply.content, re.MULTILINE)
        assert 1 <= len(suggestions) <= 5
        assert "Black Mirror S7E6 · USS Callister: Into Infinity" in suggestions
    scenario.assert_clean()


# -- /review -------------------------------------------------------------------------------------


def readme_review_example() -> dict[str, str]:
    block = re.search(r"```\n(.*?)```", readme_section("### `/review episode:`"), re.DOTALL)
    assert block, "the README's /review example is gone"
    lines = block[1].splitlines()
    rating = re.search(r"Rating\s+(\S+ \S+)", block[1])
    verdict = re.search(r"Verdict\s+(.+)", block[1])
    footer = re.search(r"(Review by .+?)\s{2,}\[(.+)\]", block[1])
    assert rating, "no Rating line"
    assert verdict, "no Verdict line"
    assert footer, "no 'Review by ... [button]' line"
    return {
        "title": lines[0],
        "rating": rating[1],
        "verdict": verdict[1].strip(),
        "footer": footer[1],
        "button": footer[2],
    }


async def test_review_embed_and_button_match_the_readme(scenario: Scenario) -> None:
    expected = readme_review_example()
    handle = await scenario.slash("review", episode=FINALE)
    (review,) = await handle.messages()
    assert review.flags == 0  # public, and its own embed shown
    assert review.id in [m.id for m in scenario.channel_messages("general")]
    assert_safe_delivery([review])
    (embed,) = review.embeds
    assert embed["title"] == expected["title"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert list(fields) == ["Rating", "Released", "Verdict"]
    assert fields["Rating"] == expected["rating"]
    # The README abridges the verdict: same opening, same star of the episode.
    readme_verdict = expected["verdict"].rstrip(".").split()
    assert fields["Verdict"].startswith(" ".join(readme_verdict[:3]))
    assert " ".join(readme_verdict[-2:]) in fields["Verdict"]
    released = 1744268400  # 2025-04-10T07:00:00Z, from data/shows/black-mirror.toml
    assert fields["Released"] == f"{ts(released, 'D')} ({ts(released, 'R')})"
    assert embed["footer"]["text"] == expected["footer"]
    assert len(embed["description"]) > 200
    (button,) = [c for c in review.all_components() if c["type"] == 2]
    emoji, label = expected["button"].split(" ", 1)
    assert (button["label"], button["emoji"]["name"]) == (label, emoji)
    assert button["custom_id"] == f"embargo:ending:{FINALE}"
    scenario.assert_clean()


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


async def test_episode_without_review_says_so_privately(scenario: Scenario) -> None:
    handle = await scenario.slash("review", episode="the national anthem")
    (reply,) = await handle.messages()
    assert reply.ephemeral
    assert reply.visible_to == scenario.user("alice").id
    assert_safe_delivery([reply])
    assert reply.content.startswith(
        "There's no review of **Black Mirror S1E1 · The National Anthem** yet."
    )
    assert reply.components == []
    scenario.assert_clean()


# -- /ending: the README's policy table ----------------------------------------------------------


async def test_unreleased_reveals_nothing_whatever_the_settings(
    scenario: Scenario, content: E2EContent
) -> None:
    upcoming = content.upcoming
    await configure(scenario, window="off", mode="tagged", spoilers_ok=["spoilers"])
    for where in ("general", "spoilers", "dm"):
        handle = await scenario.slash("ending", episode=upcoming.key, in_channel=where)
        (reply,) = await handle.messages()
        assert reply.ephemeral
        assert_safe_delivery([reply])
        assert reply.content == (
            f"**{upcoming.label}** isn't out yet: it's released {ts(upcoming.release_ts, 'f')} "
            f"({ts(upcoming.release_ts, 'R')}). The ending explained unlocks then."
        )
        assert_reveals_nothing([reply], upcoming.ending)
    await configure(scenario, not_spoilers_ok=["spoilers"])
    scenario.assert_clean()


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


async def test_inside_the_window_refuse_says_when_it_ends(
    scenario: Scenario, content: E2EContent
) -> None:
    recent = content.recent
    await configure(scenario, window="2w", mode="refuse")
    handle = await scenario.slash("ending", episode=recent.label)
    (reply,) = await handle.messages()
    assert reply.ephemeral
    assert_safe_delivery([reply])
    end = recent.release_ts + 14 * 86400
    assert reply.content == (
        f"This server doesn't post spoilers for **{recent.label}** yet. Spoilers stay hidden "
        f"here until {ts(end, 'f')} ({ts(end, 'R')}). Ask again then, or in a spoilers-ok channel."
    )
    assert_reveals_nothing([reply], recent.ending)
    scenario.assert_clean()


async def test_after_the_window_the_ending_is_plain(
    scenario: Scenario, content: E2EContent
) -> None:
    await configure(scenario, window="7d", mode="refuse")  # refuse only applies inside it
    old = content.old
    handle = await scenario.slash("ending", episode=old.key)
    messages = await handle.messages(until=shows_all_of(old.ending))
    assert not any(m.ephemeral for m in messages)
    assert_safe_delivery(messages)
    assert messages[0].content.splitlines()[0] == f"## Ending explained: **{old.label}**"
    assert_plain(messages, old.ending)
    scenario.assert_clean()


async def test_window_off_is_plain_and_forever_hides_for_good(
    scenario: Scenario, content: E2EContent
) -> None:
    await configure(scenario, window="off", mode="tagged")
    handle = await scenario.slash("ending", episode=content.recent.key)
    plain = await handle.messages(until=shows_all_of(content.recent.ending))
    assert_safe_delivery(plain)
    assert_plain(plain, content.recent.ending)

    await configure(scenario, window="forever", mode="tagged")
    old = content.old
    tagged = await (await scenario.slash("ending", episode=old.key)).messages(
        until=shows_all_of(old.ending)
    )
    assert tagged[0].content.splitlines()[:2] == header(old.label, None)
    assert_all_hidden(tagged, old.ending)
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


async def test_per_show_window_overrides_the_server(
    scenario: Scenario, content: E2EContent
) -> None:
    await configure(scenario, window="7d", mode="tagged")
    changed = await moderator(scenario, "show-window", show=SHOW_TITLE, duration="off")
    assert changed.content == (
        f"Spoiler window for {SHOW_TITLE}: **server default** → **off**. Saved."
    )
    recent = content.recent
    plain = await (await scenario.slash("ending", episode=recent.key)).messages(
        until=shows_all_of(recent.ending)
    )
    assert_plain(plain, recent.ending)
    # Another show keeps the server's window: Black Mirror's finale is long out of it.
    await moderator(scenario, "show-window", show="black-mirror", duration="forever")
    finale = await (await scenario.slash("ending", episode=FINALE)).messages()
    assert finale[0].content.splitlines()[:2] == header(FINALE_LABEL, None)
    restored = await moderator(scenario, "show-window", show="clockwork", duration="default")
    assert "**off** → **server default**" in restored.content
    await moderator(scenario, "show-window", show="black-mirror", duration="default")
    tagged = await (await scenario.slash("ending", episode=recent.key)).messages(
        until=shows_all_of(recent.ending)
    )
    assert_all_hidden(tagged, recent.ending)
    scenario.assert_clean()


async def test_dms_use_the_default_seven_day_window(
    scenario: Scenario, content: E2EContent
) -> None:
    await configure(scenario, window="off", mode="refuse")  # server settings; DMs ignore them
    recent, old = content.recent, content.old
    tagged = await (
        await scenario.slash("ending", episode=recent.key, as_user="bob", in_channel="dm")
    ).messages(until=shows_all_of(recent.ending))
    dm = scenario.channel("dm", scenario.user("bob"))
    assert {m.channel_id for m in tagged} == {dm.id}
    assert tagged[0].content.splitlines()[:2] == header(
        recent.label, recent.release_ts + int(WEEK.total_seconds())
    )
    assert_all_hidden(tagged, recent.ending)
    plain = await (
        await scenario.slash("ending", episode=old.key, as_user="bob", in_channel="dm")
    ).messages(until=shows_all_of(old.ending))
    assert_plain(plain, old.ending)
    scenario.assert_clean()


# -- the reveal button ---------------------------------------------------------------------------


async def test_reveal_button_answers_the_clicker_privately_under_the_rules(
    scenario: Scenario, content: E2EContent
) -> None:
    recent = content.recent
    await configure(scenario, window="7d", mode="tagged")
    review = await (await scenario.slash("review", episode=recent.key)).reply()
    custom_id = f"embargo:ending:{recent.key}"
    assert review.custom_ids() == [custom_id]

    click = await scenario.click(review, custom_id, as_user="bob")
    messages = await click.messages(until=shows_all_of(recent.ending))
    assert len(messages) >= 3
    assert all(m.ephemeral and m.visible_to == scenario.user("bob").id for m in messages)
    assert (await click.callback())["type"] == 4  # a new private message, not an edit
    assert scenario.message(review.id).edits == 0
    assert_safe_delivery(messages)
    assert_all_hidden(messages, recent.ending)

    # The same rules as /ending: refused while the window runs, plain once it is over.
    await configure(scenario, window="7d", mode="refuse")
    (refusal,) = await (await scenario.click(review, custom_id, as_user="newbie")).messages()
    assert refusal.ephemeral
    assert refusal.content.startswith("This server doesn't post spoilers for")
    assert_reveals_nothing([refusal], recent.ending)
    await configure(scenario, window="off", mode="refuse")
    plain = await (await scenario.click(review, custom_id, as_user="alice")).messages(
        until=shows_all_of(recent.ending)
    )
    assert all(m.ephemeral for m in plain)
    assert_plain(plain, recent.ending)
    scenario.assert_clean()


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


async def test_spoilers_shows_the_rules_and_when_an_episode_opens(
    scenario: Scenario, content: E2EContent
) -> None:
    await configure(scenario, window="1000d", mode="private", spoilers_ok=["spoilers"])
    await moderator(scenario, "show-window", show=SHOW_TITLE, duration="36h")
    handle = await scenario.slash("spoilers", episode=content.recent.key, as_user="bob")
    (reply,) = await handle.messages()
    assert reply.ephemeral
    assert_safe_delivery([reply])
    (embed,) = reply.embeds
    assert embed["title"] == "Spoiler rules"
    opens = content.recent.release_ts + 36 * 3600
    assert embed["description"] == (
        f"**{content.recent.label}**: spoilers stay hidden here until {ts(opens, 'f')} "
        f"({ts(opens, 'R')}).\n\nHow Embargo hides endings in this server."
    )
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields == {
        "Spoiler window": "**1000 days** after release",
        "Mode": "**private**",
        "Per-show windows": f"{SHOW_TITLE}: 1 day 12 hours",
        "Spoilers-ok channels": scenario.channel("spoilers").mention,
    }
    there = await (
        await scenario.slash("spoilers", episode=content.recent.key, in_channel="spoilers")
    ).reply()
    assert (
        "spoilers are open here (this channel is marked spoilers-ok)"
        in there.embeds[0]["description"]
    )
    await moderator(scenario, "show-window", show=SHOW_TITLE, duration="default")
    await configure(scenario, not_spoilers_ok=["spoilers"])
    scenario.assert_clean()


async def test_spoilers_in_a_dm_shows_the_defaults(scenario: Scenario) -> None:
    await configure(scenario, window="off", mode="refuse")
    (reply,) = await (await scenario.slash("spoilers", in_channel="dm")).messages()
    (embed,) = reply.embeds
    assert embed["description"] == (
        "How Embargo hides endings in direct messages (the default rules)."
    )
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Spoiler window"] == "**1 week** after release"
    assert fields["Mode"] == "**tagged**"
    scenario.assert_clean()


async def test_settings_group_is_not_offered_in_dms(scenario: Scenario) -> None:
    with pytest.raises(ScenarioError, match="not offered in a DM"):
        await scenario.slash("embargo", "settings", as_user="mod", in_channel="dm")
