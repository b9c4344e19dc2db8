"""Smoke test of the real Embargo bot (``python -m bot``) against the Discord stand-in.

Structure only (registration, answers, visibility, persistence across a restart); the wording of
Embargo's messages belongs to the feature tests. The restart test runs last.
"""

from __future__ import annotations

import pytest

from .scenario import Scenario, ScenarioError

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MANAGE_GUILD = 1 << 5
ENDING_BUTTON = "embargo:ending:black-mirror/s07e06"


@pytest.fixture
def scenario(embargo: Scenario) -> Scenario:
    embargo.checkpoint()
    return embargo


async def test_starts_and_registers_its_commands(scenario: Scenario) -> None:
    commands = {c["name"]: c for c in scenario.standin.commands[None]}
    assert {"review", "ending", "spoilers", "embargo", "vote", "rankings"} <= set(commands)
    assert commands["embargo"]["default_member_permissions"] == str(MANAGE_GUILD)
    assert scenario.standin.unknown_routes == []
    assert scenario.standin.errors == []


async def test_review_then_private_ending_on_click(scenario: Scenario) -> None:
    choices = await scenario.autocomplete("review", "episode", "into infinity")
    assert choices[0]["value"] == "black-mirror/s07e06"
    review = await (await scenario.slash("review", episode="black-mirror/s07e06")).reply()
    assert not review.ephemeral
    assert review.embeds
    assert ENDING_BUTTON in review.custom_ids()

    click = await scenario.click(review, ENDING_BUTTON, as_user="bob")
    ending = await click.reply()
    assert ending.ephemeral
    assert ending.visible_to == scenario.user("bob").id
    assert ending.id != review.id
    scenario.assert_clean()


async def test_settings_are_for_managers_only(scenario: Scenario) -> None:
    with pytest.raises(ScenarioError, match="hidden from alice"):
        await scenario.slash("embargo", "settings", as_user="alice")
    settings = await (await scenario.slash("embargo", "settings", as_user="mod")).reply()
    assert settings.ephemeral
    assert settings.embeds
    scenario.assert_clean()


async def test_restart_reuses_commands_and_old_buttons_still_work(scenario: Scenario) -> None:
    standin = scenario.standin
    review = await (await scenario.slash("review", episode="black-mirror/s07e06")).reply()
    puts = len(standin.find_requests("PUT", r"/commands$"))

    assert await scenario.bot.stop() == 0
    await scenario.bot.start()

    assert len(standin.find_requests("PUT", r"/commands$")) == puts
    ending = await (await scenario.click(review, ENDING_BUTTON, as_user="alice")).reply()
    assert ending.visible_to == scenario.user("alice").id
    scenario.assert_clean()
