"""The Discord stand-in, validated with a real discord.py bot process (tests/e2e/demo_bot).

One bot process serves the whole module (started once, restarted once by the restart test,
which therefore runs last).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import zlib

import aiohttp
import pytest

from tests.support.standin import DiscordStandIn

from .scenario import Scenario, ScenarioError, Upload

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

CALLBACK = r"^/interactions/\d+/[^/]+/callback$"


def _zstd_available() -> bool:
    # discord.py 2.7 switches to zstd-stream when zstandard (or 3.14's compression.zstd) imports.
    return sys.version_info >= (3, 14) or importlib.util.find_spec("zstandard") is not None


@pytest.fixture
def scenario(demo: Scenario) -> Scenario:
    demo.checkpoint()
    return demo


async def test_startup_logs_in_identifies_and_registers_commands(scenario: Scenario) -> None:
    standin = scenario.standin
    first = [(r.method, r.path) for r in standin.requests[:3]]
    app_id = standin.world.application.id
    assert first == [
        ("GET", "/users/@me"),
        ("GET", "/oauth2/applications/@me"),
        ("PUT", f"/applications/{app_id}/commands"),
    ]
    session = standin.sessions[0]
    assert session.identify is not None
    assert session.identify["token"] == standin.token
    # discord.Intents.default(): everything but the three privileged intents.
    assert session.identify["intents"] & (1 << 0)
    assert not session.identify["intents"] & ((1 << 1) | (1 << 8) | (1 << 15))
    assert [e.name for e in session.events[:2]] == ["READY", "GUILD_CREATE"]
    connection = standin.connections[0]
    assert connection.query["v"] == "10"
    assert connection.query["encoding"] == "json"
    expected = "zstd-stream" if _zstd_available() else "zlib-stream"
    assert connection.query["compress"] == expected
    # discord.py heartbeats as soon as it gets HELLO.
    assert connection.heartbeats >= 1
    # Without the members intent Discord's GUILD_CREATE lists only the bot's own member.
    guild_create = session.events[1].data
    assert [m["user"]["id"] for m in guild_create["members"]] == [str(standin.world.bot_user.id)]
    assert guild_create["member_count"] == len(standin.world.guild.members)
    registered = {c["name"] for c in standin.commands[None]}
    assert {"ping", "echo", "slow", "counter", "fruit", "info", "settings"} <= registered
    assert all(c["id"].isdigit() for c in standin.commands[None])


async def test_slash_command_round_trip(scenario: Scenario) -> None:
    handle = await scenario.slash("ping", as_user="alice")
    reply = await handle.reply()
    assert reply.content == "pong"
    assert not reply.ephemeral
    callback = await handle.callback()
    assert callback["type"] == 4
    request = scenario.standin.find_requests("POST", CALLBACK)[-1]
    # discord.py 2.5+ always asks for the interaction callback response object.
    assert request.query == {"with_response": "1"}
    assert handle.response_time is not None
    assert handle.response_time < 3
    assert scenario.channel_messages("general")[-1].id == reply.id

    in_dm = await scenario.slash("ping", as_user="bob", in_channel="dm")
    assert in_dm.record.payload["context"] == 1
    assert "member" not in in_dm.record.payload
    dm_reply = await in_dm.reply()
    assert dm_reply.content == "pong"
    assert dm_reply.channel_id == scenario.channel("dm", scenario.user("bob")).id
    scenario.assert_clean()


async def test_ephemeral_reply_and_allowed_mentions_are_captured(scenario: Scenario) -> None:
    bob = scenario.user("bob")
    handle = await scenario.slash("echo", as_user="alice", text=f"hi {bob.mention} @everyone")
    reply = await handle.reply()
    assert reply.content == f"hi {bob.mention} @everyone"
    assert reply.ephemeral
    assert reply.allowed_mentions == {"parse": []}
    assert reply.visible_to == scenario.user("alice").id
    assert reply.id not in [m.id for m in scenario.channel_messages("general")]
    scenario.assert_clean()


async def test_deferral_is_resolved_by_the_first_followup(scenario: Scenario) -> None:
    handle = await scenario.slash("slow", as_user="bob")
    callback = await handle.callback()
    assert callback == {"type": 5, "data": {"flags": 64}}
    reply = await handle.reply()
    assert reply.content == "done thinking"
    assert reply.ephemeral
    assert not reply.loading
    (second,) = await handle.followups(1)
    assert second.content == "and one more thing"
    assert not second.ephemeral
    scenario.assert_clean()


async def test_button_click_updates_the_message(scenario: Scenario) -> None:
    reply = await (await scenario.slash("counter")).reply()
    assert reply.button("+1")["custom_id"] == "demo:counter:inc"
    click = await scenario.click(reply, "demo:counter:inc", as_user="bob")
    assert (await click.callback())["type"] == 7
    updated = await click.reply()
    assert updated.id == reply.id
    assert updated.content == "Count: 1"
    again = await (await scenario.click(updated, "demo:counter:inc")).reply()
    assert again.content == "Count: 2"
    assert again.edits == 2
    with pytest.raises(ScenarioError, match="no component"):
        await scenario.click(reply, "demo:counter:dec")
    scenario.assert_clean()


async def test_select_menu_and_modal(scenario: Scenario) -> None:
    menu = await (await scenario.slash("flavour")).reply()
    picked = await scenario.click(menu, "demo:flavour", values=["mint"])
    assert (await picked.reply()).content == "You chose mint."
    with pytest.raises(ScenarioError, match="not among"):
        await scenario.click(menu, "demo:flavour", values=["chocolate"])

    opened = await scenario.slash("feedback", as_user="bob")
    modal = await opened.modal()
    assert modal["title"] == "Feedback"
    submitted = await scenario.submit_modal(opened, {"text": "nice bot"})
    reply = await submitted.reply()
    assert reply.content == "Thanks: nice bot"
    assert reply.visible_to == scenario.user("bob").id
    scenario.assert_clean()


async def test_attachment_upload_is_parsed_from_multipart(scenario: Scenario) -> None:
    handle = await scenario.slash("report", as_user="alice")
    reply = await handle.reply()
    assert reply.content == "Here is your report"
    assert reply.files == {"report.txt": b"report for alice\n"}
    request = scenario.standin.find_requests("POST", CALLBACK)[-1]
    assert [f.field for f in request.files] == ["files[0]"]
    assert request.json["data"]["attachments"] == [{"id": 0, "filename": "report.txt"}]
    scenario.assert_clean()


async def test_attachment_option_is_downloadable_by_the_bot(scenario: Scenario) -> None:
    handle = await scenario.slash("measure", file=Upload("notes.txt", b"0123456789abc"))
    assert (await handle.reply()).content == "notes.txt: 13 bytes"
    scenario.assert_clean()


async def test_autocomplete_channel_option_and_subcommand_group(scenario: Scenario) -> None:
    choices = await scenario.autocomplete("fruit", "name", "ap")
    assert [c["value"] for c in choices] == ["apple", "apricot"]
    assert [c["value"] for c in await scenario.autocomplete("fruit", "name", "zz")] == []

    spoilers = scenario.channel("spoilers")
    where = await (await scenario.slash("where", channel="spoilers")).reply()
    assert where.content == f"spoilers ({spoilers.id})"

    about = await (await scenario.slash("info", "about user", who="mod")).reply()
    assert about.content == "Mod has 2 roles"  # @everyone and Moderator
    with pytest.raises(ScenarioError, match="missing required option"):
        await scenario.slash("info", "about user")
    scenario.assert_clean()


async def test_hidden_command_and_the_server_side_check(scenario: Scenario) -> None:
    with pytest.raises(ScenarioError, match="hidden from alice"):
        await scenario.slash("settings", as_user="alice")
    allowed = await (await scenario.slash("settings", as_user="mod")).reply()
    assert allowed.content == "Settings: all default."
    # A server admin may re-enable the command for everyone: the bot's own check still holds.
    bypass = await (
        await scenario.slash("settings", as_user="alice", bypass_permissions=True)
    ).reply()
    assert bypass.content == "Managers only."
    with pytest.raises(ScenarioError, match="not offered in a DM"):
        await scenario.slash("settings", as_user="mod", in_channel="dm")
    scenario.assert_clean()


async def test_channel_messages_respect_channel_permissions(scenario: Scenario) -> None:
    posted = await scenario.slash("announce", channel="spoilers", text="hello <@&1>")
    assert (await posted.reply()).content == "Posted."
    notice = scenario.channel_messages("spoilers")[-1]
    assert notice.content == "hello <@&1>"
    assert notice.allowed_mentions == {"parse": []}

    refused = await scenario.slash(
        "announce", in_channel="general", channel="announcements", text="hi"
    )
    assert (await refused.reply()).content == "I can't post there."
    (forbidden,) = [r for r in scenario.standin.errors if r.path.endswith("/messages")]
    assert forbidden.status == 403
    assert forbidden.response == {"message": "Missing Permissions", "code": 50013}


async def test_rate_limited_callback_is_retried(scenario: Scenario) -> None:
    rule = scenario.standin.fail_next("POST", CALLBACK, status=429, retry_after=0.3)
    handle = await scenario.slash("ping")
    assert (await handle.reply()).content == "pong"
    assert len(rule.hits) == 1
    attempts = [
        r for r in scenario.standin.find_requests("POST", CALLBACK) if str(handle.id) in r.path
    ]
    assert [r.status for r in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 0.25  # discord.py waited out retry_after
    # The bot keeps serving afterwards.
    assert (await (await scenario.slash("ping")).reply()).content == "pong"
    scenario.assert_clean()


async def test_global_rate_limit_on_a_channel_message_is_retried(scenario: Scenario) -> None:
    rule = scenario.standin.fail_next(
        "POST", r"^/channels/\d+/messages$", status=429, retry_after=0.2, is_global=True
    )
    handle = await scenario.slash("announce", channel="spoilers", text="after the limit")
    assert (await handle.reply()).content == "Posted."
    assert len(rule.hits) == 1
    assert scenario.channel_messages("spoilers")[-1].content == "after the limit"
    scenario.assert_clean()


async def test_server_errors_are_retried(scenario: Scenario) -> None:
    # Both of discord.py's request paths retry a 5xx after a one second pause.
    on_callback = scenario.standin.fail_next("POST", CALLBACK, status=500)
    handle = await scenario.slash("ping")
    assert (await handle.reply()).content == "pong"
    assert len(on_callback.hits) == 1

    on_message = scenario.standin.fail_next(
        "POST", r"^/channels/\d+/messages$", status=502, body="<html>Bad Gateway</html>"
    )
    posted = await scenario.slash("announce", channel="spoilers", text="after a 502")
    assert (await posted.reply(within=5)).content == "Posted."
    assert len(on_message.hits) == 1
    scenario.assert_clean()


async def test_late_first_response_is_refused_like_discord(scenario: Scenario) -> None:
    scenario.standin.callback_deadline = 0.3
    try:
        handle = await scenario.slash("sleepy", seconds=0.6)
        await scenario.wait(lambda: handle.record.rejected, what="the late answer", within=5)
    finally:
        scenario.standin.callback_deadline = 3.0
    assert handle.record.callback is None
    assert handle.record.rejected[0].response == {"message": "Unknown interaction", "code": 10062}
    assert (await (await scenario.slash("ping")).reply()).content == "pong"


async def test_malformed_interactions_do_not_crash_the_bot(scenario: Scenario) -> None:
    good = await scenario.slash("fruit", name="apple")
    payload = good.record.payload
    assert (await good.reply()).content == "You picked apple"

    # A command the bot never registered (e.g. deleted while a client still shows it).
    unknown = json.loads(json.dumps(payload))
    unknown.update(id="1", token="unknown-command-token")
    unknown["data"].update(name="no-such-command", id="2")
    # Options that do not match the command's signature (a stale client cache).
    mismatched = json.loads(json.dumps(payload))
    mismatched.update(id="3", token="mismatched-options-token")
    mismatched["data"]["options"] = [{"name": "colour", "type": 3, "value": "red"}]
    # A click on a component no view listens for.
    orphan_click = json.loads(json.dumps(payload))
    orphan_click.update(id="4", token="orphan-click-token", type=3)
    orphan_click["data"] = {"custom_id": "nobody:listens", "component_type": 2}
    for bad in (unknown, mismatched, orphan_click):
        await scenario.send_raw_interaction(bad)

    after = await scenario.slash("ping")
    assert (await after.reply()).content == "pong"
    assert scenario.bot.running


async def test_gateway_resume_and_reidentify(scenario: Scenario) -> None:
    standin = scenario.standin
    session = standin.current_session
    assert session is not None
    await standin.drop_connection(4000)
    await scenario.wait(
        lambda: standin.current_session is session and session.events[-1].name == "RESUMED",
        what="the bot to RESUME",
    )
    assert session.connection is not None
    # discord.py heartbeats on HELLO, then resumes with its session and last sequence number.
    (resume,) = [f for f in session.connection.received if f["op"] == 6]
    assert resume["d"]["session_id"] == session.session_id
    assert resume["d"]["seq"] == session.events[-2].seq
    assert (await (await scenario.slash("ping")).reply()).content == "pong"

    await standin.request_reconnect()
    await scenario.wait(
        lambda: [e.name for e in session.events].count("RESUMED") == 2, what="a second RESUME"
    )

    sessions_before = len(standin.sessions)
    await standin.invalidate_session(resumable=False)
    await scenario.wait(
        lambda: (
            len(standin.sessions) > sessions_before
            and standin.current_session is not None
            and standin.current_session.events[-1].name == "GUILD_CREATE"
        ),
        what="a fresh IDENTIFY",
        within=10,
    )
    assert (await (await scenario.slash("ping")).reply()).content == "pong"
    scenario.assert_clean()


async def test_unknown_routes_answer_404_and_are_logged(
    scenario: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    standin: DiscordStandIn = scenario.standin
    headers = {"Authorization": f"Bot {standin.token}"}
    with caplog.at_level(logging.WARNING, logger="tests.support.standin.rest"):
        async with aiohttp.ClientSession(headers=headers) as client:
            async with client.get(f"{standin.api_base}/guilds/1/audit-logs") as response:
                assert response.status == 404
                assert response.headers["Content-Type"] == "application/json"
                assert await response.json() == {"message": "404: Not Found", "code": 0}
            async with client.delete(f"{standin.api_base}/users/@me") as response:
                assert response.status == 405
    assert [(r.method, r.path) for r in standin.unknown_routes[-2:]] == [
        ("GET", "/guilds/1/audit-logs"),
        ("DELETE", "/users/@me"),
    ]
    assert "no route for GET /guilds/1/audit-logs" in caplog.text


async def _identify_and_get_close_code(url: str, identify: dict) -> int:
    async with aiohttp.ClientSession() as client, client.ws_connect(url) as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["op"] == 10
        await ws.send_json({"op": 2, "d": identify})
        closing = await ws.receive(timeout=5)
        assert closing.type is aiohttp.WSMsgType.CLOSE
        return closing.data


async def test_gateway_protocol_details(scenario: Scenario) -> None:
    standin = scenario.standin
    # zlib-stream: binary frames of one deflate stream, each ending with Z_SYNC_FLUSH, which is
    # what discord.py's decompressor waits for.
    async with aiohttp.ClientSession() as client:
        url = f"{standin.gateway_url}?v=10&encoding=json&compress=zlib-stream"
        async with client.ws_connect(url) as ws:
            frame = await ws.receive_bytes(timeout=5)
            assert frame.endswith(b"\x00\x00\xff\xff")
            assert json.loads(zlib.decompressobj().decompress(frame))["op"] == 10
    plain = f"{standin.gateway_url}?v=10&encoding=json"
    wrong_token = {"token": "wrong", "intents": 0, "properties": {}}
    assert await _identify_and_get_close_code(plain, wrong_token) == 4004
    # MESSAGE_CONTENT is privileged and not enabled for the stand-in's application.
    privileged = {"token": standin.token, "intents": 1 << 15, "properties": {}}
    assert await _identify_and_get_close_code(plain, privileged) == 4014


async def test_restart_keeps_state_and_does_not_resync(scenario: Scenario) -> None:
    standin = scenario.standin
    counter = await (await scenario.slash("counter")).reply()
    assert (await (await scenario.slash("tally")).reply()).content == "tally 1"
    assert (await (await scenario.slash("tally")).reply()).content == "tally 2"
    puts_before = len(standin.find_requests("PUT", r"/commands$"))
    connection = standin.current_session.connection if standin.current_session else None

    assert await scenario.bot.stop() == 0
    assert connection is not None
    assert connection.ws.close_code == 1000  # discord.py closed the gateway cleanly on SIGINT

    await scenario.bot.start()
    assert (await (await scenario.slash("tally")).reply()).content == "tally 3"
    assert len(standin.find_requests("PUT", r"/commands$")) == puts_before
    assert "commands unchanged, not syncing" in scenario.bot.output
    # The persistent view registered at start-up answers clicks on a pre-restart message.
    clicked = await (await scenario.click(counter, "demo:counter:inc")).reply()
    assert clicked.content == "Count: 1"
    scenario.assert_clean()


async def test_emitted_message_events_reach_the_gateway_session_in_order(
    scenario: Scenario,
) -> None:
    # DiscordApi.emit: what the in-process harness feeds to the bot's parsers, the server sends
    # to its gateway session, in the order the changes happened.
    standin = scenario.standin
    session = standin.sessions[-1]
    before = len(session.events)
    channel = scenario.channel("general")
    user = scenario.user("alice")
    posted = standin.member_message(channel, user, "first")
    standin.edit_member_message(int(posted["id"]), "first, edited")
    second = standin.member_message(channel, user, "second")

    def delivered() -> list[tuple[str, str]]:
        events = session.events[before:]
        return [(e.name, e.data.get("content", "")) for e in events]

    expected = [
        ("MESSAGE_CREATE", "first"),
        ("MESSAGE_UPDATE", "first, edited"),
        ("MESSAGE_CREATE", "second"),
    ]
    await scenario.wait(lambda: delivered() == expected, what="the three message events")
    assert session.events[before].data["member"]["roles"] == []
    assert second["author"]["id"] == str(user.id)
