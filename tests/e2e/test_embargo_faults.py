"""Faults through the real ``python -m bot`` process: Discord answering 429 and 5xx, and
interaction payloads that do not fit the registered commands.

Each fault is aimed at one interaction (its id or token is in the rule's path), so nothing
else the bot sends is affected. discord.py sends interaction replies and followups through its
webhook adapter, which retries a 429 after ``retry_after`` and any 5xx after 1 s, then 3 s, ...;
Discord drops an interaction not answered within 3 s. Any other failure reaches Embargo's error
path, which must tell the user privately, log it, and keep serving.
"""

from __future__ import annotations

import copy
import re
import secrets
from typing import Any

import pytest

from tests.support.reading import read_all
from tests.support.standin.world import snowflake

from .embargo_checks import (
    assert_all_hidden,
    assert_safe_delivery,
    configure,
    shows_all_of,
)
from .embargo_content import E2EContent
from .scenario import InteractionHandle, Scenario

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

FINALE = "black-mirror/s07e06"
GENERIC_FAILURE = (
    "Something went wrong on Embargo's side. It has been logged for the maintainers; "
    "please try again in a moment."
)


@pytest.fixture
def scenario(embargo: Scenario) -> Scenario:
    embargo.checkpoint()
    return embargo


def callback_path(payload: dict[str, Any]) -> str:
    return rf"^/interactions/{payload['id']}/{re.escape(payload['token'])}/callback$"


def followup_path(payload: dict[str, Any]) -> str:
    return rf"^/webhooks/\d+/{re.escape(payload['token'])}$"


def attempts(scenario: Scenario, path: str) -> list[int]:
    return [r.status for r in scenario.standin.find_requests("POST", path)]


async def still_serving(scenario: Scenario) -> None:
    reply = await (await scenario.slash("review", episode=FINALE, as_user="bob")).reply()
    assert reply.embeds[0]["title"].endswith("USS Callister: Into Infinity")
    assert scenario.bot.running


def fresh_ids(payload: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``payload`` as a new interaction (its own id and token)."""
    copied = copy.deepcopy(payload)
    copied.update(id=str(snowflake()), token="aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48))
    return copied


# -- rate limits and server errors ---------------------------------------------------------------


async def test_a_rate_limited_reply_is_retried(scenario: Scenario) -> None:
    payload = scenario.build_slash("review", episode=FINALE)
    rule = scenario.standin.fail_next("POST", callback_path(payload), status=429, retry_after=0.3)
    handle = await scenario.send_raw_interaction(payload)
    (review,) = await handle.messages()
    assert review.embeds[0]["title"].endswith("USS Callister: Into Infinity")
    assert len(rule.hits) == 1
    tries = scenario.standin.find_requests("POST", callback_path(payload))
    assert [r.status for r in tries] == [429, 200]
    assert tries[1].at - tries[0].at >= 0.25  # it waited out retry_after
    assert "is rate limited. Retrying in 0.30 seconds." in scenario.bot.output
    await still_serving(scenario)
    scenario.assert_clean()


@pytest.mark.parametrize("status", [500, 503])
async def test_a_server_error_on_a_reply_is_retried(scenario: Scenario, status: int) -> None:
    payload = scenario.build_slash("review", episode=FINALE)
    scenario.standin.fail_next("POST", callback_path(payload), status=status)
    handle = await scenario.send_raw_interaction(payload)
    (review,) = await handle.messages(within=5)
    assert review.embeds
    assert attempts(scenario, callback_path(payload)) == [status, 200]
    assert handle.response_time is not None
    assert handle.response_time < 3  # still inside Discord's deadline
    await still_serving(scenario)
    scenario.assert_clean()


async def test_faults_on_followups_are_retried_and_every_part_arrives_in_order(
    scenario: Scenario, content: E2EContent
) -> None:
    recent = content.recent
    await configure(scenario, window="7d", mode="tagged")
    payload = scenario.build_slash("ending", episode=recent.key)
    path = followup_path(payload)
    # The 5xx first: discord.py's pause after one grows with the attempt number.
    failed = scenario.standin.fail_next("POST", path, status=502, body="<html>Bad Gateway</html>")
    limited = scenario.standin.fail_next("POST", path, status=429, retry_after=0.2)
    handle = await scenario.send_raw_interaction(payload)
    messages = await handle.messages(until=shows_all_of(recent.ending), within=8)
    assert (len(limited.hits), len(failed.hits)) == (1, 1)
    assert attempts(scenario, path)[:3] == [502, 429, 200]
    assert len(messages) >= 3
    assert_safe_delivery(messages)
    assert_all_hidden(messages, recent.ending)
    _, hidden = read_all(m.content for m in messages)
    loops = [int(n) for n in re.findall(r"Loop (\d+):", hidden)]
    assert loops == list(range(1, 15))  # nothing lost, duplicated or reordered
    scenario.assert_clean()


async def test_a_refused_reply_is_reported_privately(scenario: Scenario) -> None:
    payload = scenario.build_slash("review", episode=FINALE)
    body = {"message": "Invalid Form Body", "code": 50035, "errors": {}}
    scenario.standin.fail_next("POST", callback_path(payload), status=400, body=body)
    handle = await scenario.send_raw_interaction(payload)
    (reply,) = await handle.messages()
    assert attempts(scenario, callback_path(payload)) == [400, 200]  # not retried: reported
    assert reply.ephemeral
    assert reply.content == GENERIC_FAILURE
    assert_safe_delivery([reply])
    assert "ERROR    bot.errors: unhandled error in review" in scenario.bot.output
    await still_serving(scenario)
    scenario.assert_clean()


async def test_a_reply_that_misses_the_deadline_is_logged_and_the_bot_keeps_serving(
    scenario: Scenario,
) -> None:
    payload = scenario.build_slash("review", episode=FINALE)
    scenario.standin.fail_next("POST", callback_path(payload), status=503, count=2)
    handle = await scenario.send_raw_interaction(payload)
    await scenario.wait(
        lambda: (
            f"could not deliver an error message for interaction {payload['id']}"
            in scenario.bot.output
        ),
        what="the bot to log the undeliverable error",
        within=10,
    )
    # Retried after 1 s, then after 3 s more: too late, Discord forgot the interaction; the
    # error message can't get through either.
    assert attempts(scenario, callback_path(payload)) == [503, 503, 404, 404]
    assert handle.record.callback is None
    await still_serving(scenario)


# -- malformed interactions ------------------------------------------------------------------


async def test_payloads_that_do_not_fit_the_commands_are_answered_or_ignored(
    scenario: Scenario,
) -> None:
    good = scenario.build_slash("review", episode=FINALE)
    review = await (await scenario.send_raw_interaction(fresh_ids(good))).reply()

    # Discord adds fields and types over time: unknown ones must be ignored.
    extra = fresh_ids(good)
    extra["brand_new_field"] = {"nested": [1, 2]}
    extra["data"]["brand_new_option_field"] = True
    unknown_type = fresh_ids(good)
    unknown_type["type"] = 99
    # A client with a stale command cache: a deleted command, a removed or renamed option,
    # a value of another type.
    deleted = fresh_ids(good)
    deleted["data"].update(name="recommend", id=str(snowflake()))
    missing = fresh_ids(good)
    del missing["data"]["options"]
    renamed = fresh_ids(good)
    renamed["data"]["options"] = [{"name": "title", "type": 3, "value": "s7e6"}]
    wrong_type = fresh_ids(good)
    wrong_type["data"]["options"][0].update(type=4, value=76)
    # A click on a button that is not (any more) on the message.
    orphan_click = fresh_ids(good)
    orphan_click.update(type=3, message=review.payload)
    orphan_click["data"] = {"custom_id": "embargo:unknown:button", "component_type": 2}

    answered: dict[str, InteractionHandle] = {}
    for name, payload in {
        "extra": extra,
        "unknown type": unknown_type,
        "deleted": deleted,
        "missing": missing,
        "renamed": renamed,
        "wrong type": wrong_type,
        "orphan click": orphan_click,
    }.items():
        answered[name] = await scenario.send_raw_interaction(payload)
    await still_serving(scenario)

    # New fields change nothing: a normal answer.
    assert (await answered["extra"].reply()).embeds
    # What Embargo can't make sense of gets the private generic answer, never silence.
    # A stale command cache gets a hint to reload Discord, never silence.
    for name in ("deleted", "missing", "renamed", "wrong type"):
        (reply,) = await answered[name].messages()
        assert reply.ephemeral, name
        assert "Reload Discord" in reply.content, name
        assert_safe_delivery([reply])
    # Nothing to answer for an unknown interaction type or a button nobody listens for.
    for name in ("unknown type", "orphan click"):
        assert answered[name].record.callback is None, name
    assert scenario.bot.running
    assert scenario.standin.internal_errors == []
