"""The offline interaction harness, exercised on a small throwaway bot defined here.

Each test drives discord.py's real tree, views and modals through ``tests.support.Harness`` and
asserts on the HTTP requests discord.py actually sent to the loopback stand-in.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.support import (
    DEFAULT_APP_ID,
    DEFAULT_GUILD_ID,
    EPISODE_TALK,
    GENERAL,
    MEMBER,
    MODERATOR,
    Harness,
    HarnessError,
    RoleSpec,
    UserSpec,
)

# The repository's own content, found from this file rather than the working directory.
CONTENT_DIR = Path(__file__).resolve().parent.parent / "data"
SHOWS = ["Severance", "Slow Horses", "Shogun", "The Bear", "Andor"]


class DemoTree(app_commands.CommandTree):
    """Answers failed checks the way a real bot should: a private, clean message."""

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.MissingPermissions):
            await interaction.response.send_message("You need Manage Server.", ephemeral=True)
            return
        await super().on_error(interaction, error)


class RevealView(discord.ui.View):
    """Persistent: registered once in setup_hook, answers clicks on any message carrying it."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Reveal", custom_id="demo:reveal")
    async def reveal(
        self, interaction: discord.Interaction, button: discord.ui.Button[Any]
    ) -> None:
        await interaction.response.send_message(
            f"Revealed for {interaction.user.name}", ephemeral=True
        )


class CounterView(discord.ui.View):
    """Not persistent: discord.py binds it to the one message it was sent with."""

    def __init__(self) -> None:
        super().__init__(timeout=60)
        self.count = 0

    @discord.ui.button(label="+1", custom_id="demo:count")
    async def bump(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        self.count += 1
        await interaction.response.edit_message(content=f"count {self.count}", view=self)


class ShowPicker(discord.ui.View):
    @discord.ui.select(
        custom_id="demo:pick",
        options=[discord.SelectOption(label=s, value=s) for s in SHOWS[:3]],
        max_values=2,
    )
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select[Any]) -> None:
        await interaction.response.send_message(
            f"Picked {', '.join(select.values)}", ephemeral=True
        )


class FeedbackModal(discord.ui.Modal, title="Feedback"):
    episode: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Episode", custom_id="episode")
    note: discord.ui.TextInput[Any] = discord.ui.TextInput(
        label="Note", custom_id="note", style=discord.TextStyle.paragraph, required=False
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(
            f"Thanks for {self.episode.value}: {self.note.value or '-'}", ephemeral=True
        )


class DemoCog(commands.Cog):
    settings = app_commands.Group(name="settings", description="Server settings")

    def __init__(self, bot: DemoBot) -> None:
        self.bot = bot

    @app_commands.command(description="Post a line into a channel")
    async def post(
        self,
        interaction: discord.Interaction,
        text: str,
        times: app_commands.Range[int, 1, 5],
        channel: discord.TextChannel,
    ) -> None:
        await channel.send(" ".join([text] * times))
        await interaction.response.send_message(f"Posted in {channel.mention}", ephemeral=True)

    @app_commands.command(description="Answer after thinking")
    async def slow(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send("Done thinking")

    @settings.command(name="delay", description="Set the spoiler delay")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_delay(self, interaction: discord.Interaction, hours: int) -> None:
        self.bot.delays[interaction.guild_id or 0] = hours
        await interaction.response.send_message(f"Delay set to {hours}h", ephemeral=True)

    @app_commands.command(description="Find a show")
    async def find(self, interaction: discord.Interaction, show: str) -> None:
        await interaction.response.send_message(f"Found {show}")

    @find.autocomplete("show")
    async def find_show(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        matches = [s for s in SHOWS if current.lower() in s.lower()]
        return [app_commands.Choice(name=s, value=s) for s in matches][:25]

    @app_commands.command(description="A counter button")
    async def counter(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("count 0", view=CounterView())

    @app_commands.command(description="Pick shows")
    async def pick(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Pick up to two", view=ShowPicker())

    @app_commands.command(description="Where was I used?")
    async def whereami(self, interaction: discord.Interaction) -> None:
        place = "a DM" if interaction.guild is None else interaction.guild.name
        await interaction.response.send_message(f"{interaction.user.name} in {place}")

    @app_commands.command(description="Guild only")
    @app_commands.guild_only()
    async def serveronly(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ok")

    @app_commands.command(description="Ping someone quietly")
    async def poke(self, interaction: discord.Interaction, who: discord.Member) -> None:
        await interaction.response.send_message(
            f"{who.mention} look! https://example.invalid/ep1",
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=[who]),
            suppress_embeds=True,
        )

    @app_commands.command(description="Attach a file")
    async def notes(self, interaction: discord.Interaction) -> None:
        file = discord.File(fp=io.BytesIO(b"S1E1: hidden"), filename="notes.txt")
        await interaction.response.send_message("Your notes", file=file, ephemeral=True)

    @app_commands.command(description="Open the feedback form")
    async def feedback(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(FeedbackModal())

    @app_commands.command(description="Say something verbatim")
    async def say(self, interaction: discord.Interaction, text: str) -> None:
        await interaction.response.send_message(text)

    @app_commands.command(description="Reply, edit the reply, read it back, DM a receipt")
    async def progress(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("working", ephemeral=True)
        await interaction.edit_original_response(content="done")
        original = await interaction.original_response()
        await interaction.user.send(f"finished: {original.content}")

    @app_commands.command(description="Reply, then take it back")
    async def oops(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("posted by mistake")
        await interaction.delete_original_response()

    @app_commands.command(description="Crash")
    async def boom(self, interaction: discord.Interaction) -> None:
        raise RuntimeError("kaboom")

    @app_commands.command(description="Look a ban up over REST")
    async def banned(self, interaction: discord.Interaction, who: discord.Member) -> None:
        assert interaction.guild is not None
        ban = await interaction.guild.fetch_ban(who)
        await interaction.response.send_message(f"{ban.user.name} is banned: {ban.reason}")

    @app_commands.command(description="Report permissions")
    async def perms(self, interaction: discord.Interaction) -> None:
        assert isinstance(interaction.user, discord.Member)
        await interaction.response.send_message(
            f"interaction={interaction.permissions.manage_guild} "
            f"roles={interaction.user.guild_permissions.manage_guild} "
            f"bot_embed={interaction.app_permissions.embed_links}"
        )


class DemoBot(commands.Bot):
    def __init__(self) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            tree_cls=DemoTree,
        )
        self.delays: dict[int, int] = {}
        self.setup_ran = False

    async def setup_hook(self) -> None:
        await self.add_cog(DemoCog(self))
        self.add_view(RevealView())
        await self.tree.sync()
        self.setup_ran = True


@pytest.fixture
async def harness():
    async with Harness(DemoBot()) as h:
        yield h


def _paths(h: Harness) -> list[str]:
    return [f"{r.method} {r.path}" for r in h.requests]


async def test_login_runs_setup_hook_syncs_and_caches_the_guild(harness: Harness) -> None:
    bot = harness.bot
    assert isinstance(bot, DemoBot)
    assert bot.setup_ran
    assert bot.application_id == DEFAULT_APP_ID
    assert _paths(harness)[:3] == [
        "GET /users/@me",
        "GET /oauth2/applications/@me",
        f"PUT /applications/{DEFAULT_APP_ID}/commands",
    ]
    synced = {c["name"] for c in harness.requests[2].json}
    assert {"post", "settings", "find", "counter"} <= synced
    guild = bot.get_guild(DEFAULT_GUILD_ID)
    assert guild is not None
    channel = guild.get_channel(GENERAL.id)
    assert channel is not None
    assert channel.name == "general"


async def test_typed_options_reach_the_command_and_its_rest_calls_are_recorded(
    harness: Harness,
) -> None:
    reply = await harness.slash("post", text="spoiler-free", times=2, channel=EPISODE_TALK)

    options = reply.payload["data"]["options"]
    assert [(o["name"], o["type"], o["value"]) for o in options] == [
        ("text", 3, "spoiler-free"),
        ("times", 4, 2),
        ("channel", 7, str(EPISODE_TALK.id)),
    ]
    assert str(EPISODE_TALK.id) in reply.payload["data"]["resolved"]["channels"]
    posted = [r for r in reply.requests if r.path == f"/channels/{EPISODE_TALK.id}/messages"]
    assert len(posted) == 1
    assert posted[0].json["content"] == "spoiler-free spoiler-free"
    assert reply.content == f"Posted in <#{EPISODE_TALK.id}>"
    assert reply.ephemeral
    assert reply.flags == 64


async def test_options_are_checked_as_discord_would_before_sending(harness: Harness) -> None:
    with pytest.raises(HarnessError, match="integer"):
        await harness.slash("post", text="x", times="2", channel=GENERAL)
    with pytest.raises(HarnessError, match=r"\[1, 5\]"):
        await harness.slash("post", text="x", times=9, channel=GENERAL)
    with pytest.raises(HarnessError, match="missing required option 'channel'"):
        await harness.slash("post", text="x", times=1)
    with pytest.raises(HarnessError, match="no slash command /nope"):
        await harness.slash("nope")


async def test_deferred_reply_then_followup_fills_the_thinking_message(harness: Harness) -> None:
    reply = await harness.slash("slow")

    assert reply.deferred
    assert reply.callback is not None
    assert reply.callback.json == {"type": 5, "data": {"flags": 64}}
    followup = reply.responses[1]
    assert followup.method == "POST"
    assert followup.path.startswith(f"/webhooks/{DEFAULT_APP_ID}/")
    assert reply.content == "Done thinking"
    assert reply.message is not None
    # The first followup after a thinking defer becomes that (ephemeral) message.
    assert int(reply.message["id"]) == reply.callback.message_id
    assert reply.message["content"] == "Done thinking"
    assert reply.ephemeral


async def test_permission_check_refuses_members_without_manage_server(harness: Harness) -> None:
    bot = harness.bot
    assert isinstance(bot, DemoBot)

    refused = await harness.slash("settings", subcommand="delay", as_user=MEMBER, hours=6)
    assert refused.content == "You need Manage Server."
    assert refused.ephemeral
    assert bot.delays == {}

    allowed = await harness.slash("settings", subcommand="delay", as_user=MODERATOR, hours=6)
    assert allowed.content == "Delay set to 6h"
    assert bot.delays == {DEFAULT_GUILD_ID: 6}
    sub = allowed.payload["data"]["options"][0]
    assert (sub["type"], sub["name"]) == (1, "delay")
    assert int(allowed.payload["member"]["permissions"]) & (1 << 5)


async def test_member_permissions_agree_between_payload_and_roles(harness: Harness) -> None:
    admin_role = RoleSpec(
        id=1_300_000_000_000_000_390,
        name="Admins",
        permissions=discord.Permissions(administrator=True),
    )
    admin = UserSpec(id=1_300_000_000_000_000_490, name="admin", roles=(admin_role,))

    assert (await harness.slash("perms", as_user=MEMBER)).content == (
        "interaction=False roles=False bot_embed=True"
    )
    assert (await harness.slash("perms", as_user=MODERATOR)).content == (
        "interaction=True roles=True bot_embed=True"
    )
    # A role invented by the test is announced to the bot before the interaction arrives.
    assert (await harness.slash("perms", as_user=admin)).content == (
        "interaction=True roles=True bot_embed=True"
    )


async def test_autocomplete_returns_the_choices_the_bot_sent(harness: Harness) -> None:
    choices = await harness.autocomplete("find", "show", "s")
    assert [c["value"] for c in choices] == ["Severance", "Slow Horses", "Shogun"]
    assert await harness.autocomplete("find", "show", "bear") == [
        {"name": "The Bear", "value": "The Bear"}
    ]
    with pytest.raises(HarnessError, match="no autocomplete"):
        await harness.autocomplete("post", "text", "x")


async def test_click_on_a_persistent_view_survives_without_the_original_message(
    harness: Harness,
) -> None:
    # As after a restart: the bot registered the view in setup_hook, the message is older.
    message = harness.bot_message(content="Spoiler inside", view=RevealView())

    revealed = await harness.click("demo:reveal", message=message, as_user=MODERATOR)

    assert revealed.payload["type"] == 3
    assert revealed.payload["data"] == {"custom_id": "demo:reveal", "component_type": 2}
    assert revealed.content == "Revealed for moderator"
    assert revealed.ephemeral
    disabled = [
        {"type": 2, "style": 1, "label": "Reveal", "custom_id": "demo:reveal", "disabled": True}
    ]
    greyed = harness.bot_message(components=[{"type": 1, "components": disabled}])
    with pytest.raises(HarnessError, match="disabled"):
        await harness.click("demo:reveal", message=greyed)


async def test_click_on_a_non_persistent_view_updates_its_own_message(harness: Harness) -> None:
    sent = await harness.slash("counter")
    assert sent.custom_ids == ["demo:count"]
    assert sent.message is not None

    first = await harness.click("demo:count", message=sent.message)
    second = await harness.click("demo:count", message=first.message or {})

    assert first.callback_type == 7
    assert first.content == "count 1"
    assert second.content == "count 2"
    assert second.message is not None
    assert second.message["id"] == sent.message["id"]
    # The same button on another message is not this view's: discord.py ignores the click.
    elsewhere = harness.bot_message(components=sent.components)
    ignored = await harness.click("demo:count", message=elsewhere)
    assert not ignored.acknowledged
    assert ignored.responses == []


async def test_select_sends_the_picked_values(harness: Harness) -> None:
    menu = await harness.slash("pick")
    assert menu.message is not None

    picked = await harness.select("demo:pick", ["Severance", "Shogun"], message=menu.message)

    assert picked.payload["data"]["values"] == ["Severance", "Shogun"]
    assert picked.content == "Picked Severance, Shogun"
    with pytest.raises(HarnessError, match="offers"):
        await harness.select("demo:pick", ["Andor"], message=menu.message)
    with pytest.raises(HarnessError, match=r"1\.\.2 values"):
        await harness.select("demo:pick", SHOWS[:3], message=menu.message)


async def test_dm_invocation_has_a_user_and_no_guild(harness: Harness) -> None:
    in_dm = await harness.slash("whereami", in_dm=True, as_user=MEMBER)
    in_guild = await harness.slash("whereami", as_user=MEMBER)

    assert in_dm.content == "member in a DM"
    assert "guild_id" not in in_dm.payload
    assert in_dm.payload["user"]["id"] == str(MEMBER.id)
    assert in_dm.payload["channel"]["type"] == 1
    assert in_guild.content == "member in Embargo Test Server"
    with pytest.raises(HarnessError, match="/serveronly is not offered in a DM"):
        await harness.slash("serveronly", in_dm=True)


async def test_allowed_mentions_and_flags_are_recorded_exactly_as_sent(harness: Harness) -> None:
    reply = await harness.slash("poke", who=MODERATOR)

    assert reply.payload["data"]["resolved"]["members"][str(MODERATOR.id)]["roles"] == [
        str(MODERATOR.roles[0].id)
    ]
    # discord.py sends user ids as integers and replied_user by default: recorded verbatim.
    assert reply.allowed_mentions == {"parse": [], "users": [MODERATOR.id], "replied_user": True}
    assert reply.flags == 4  # SUPPRESS_EMBEDS, and not ephemeral
    assert not reply.ephemeral
    assert reply.content is not None
    assert reply.content.startswith(f"<@{MODERATOR.id}> look!")


async def test_uploaded_files_are_recorded_from_the_multipart_body(harness: Harness) -> None:
    reply = await harness.slash("notes")

    assert [(f.field, f.filename, f.data) for f in reply.files] == [
        ("files[0]", "notes.txt", b"S1E1: hidden")
    ]
    assert reply.last["attachments"] == [{"id": 0, "filename": "notes.txt"}]
    assert reply.message is not None
    assert reply.message["attachments"][0]["size"] == len(b"S1E1: hidden")


async def test_modal_opens_and_its_submission_reaches_on_submit(harness: Harness) -> None:
    opened = await harness.slash("feedback")
    assert opened.callback_type == 9
    assert opened.modal["title"] == "Feedback"

    submitted = await harness.submit_modal(opened, {"episode": "S1E2", "note": "wow"})
    assert submitted.content == "Thanks for S1E2: wow"
    with pytest.raises(HarnessError, match="'episode' is required"):
        await harness.submit_modal(opened, {"note": "no episode"})


async def test_a_crashing_command_is_reported_not_silent(harness: Harness) -> None:
    crashed = await harness.slash("boom")

    assert not crashed.acknowledged
    assert crashed.raised(RuntimeError)
    with pytest.raises(HarnessError, match="kaboom"):
        _ = crashed.content


async def test_a_second_acknowledgement_is_refused_like_discord(harness: Harness) -> None:
    first = await harness.slash("whereami")
    replayed = await harness.dispatch(first.payload)

    assert replayed.callback is not None
    assert replayed.callback.status == 400
    assert replayed.callback.response["code"] == 40060
    assert replayed.raised(discord.HTTPException)


async def test_unknown_routes_fail_the_harness_unless_answered() -> None:
    with pytest.raises(HarnessError, match=r"GET /guilds/\d+/bans/\d+"):
        async with Harness(DemoBot()) as h:
            await h.slash("banned", who=MODERATOR)

    async with Harness(DemoBot()) as h:
        user = h.world.user_by_id(MODERATOR.id)
        assert user is not None
        ban = {"user": user.to_payload(), "reason": "spoiled the finale"}
        h.add_route("GET", "/guilds/{guild_id}/bans/{user_id}", lambda request, **ids: (200, ban))
        found = await h.slash("banned", who=MODERATOR)
    assert found.content == "moderator is banned: spoiled the finale"


async def test_smoke_the_real_bot_refuses_then_applies_a_moderator_setting(tmp_path: Path) -> None:
    # Imported here so the rest of this file does not depend on the bot being importable.
    from bot.client import EmbargoBot
    from bot.config import Settings
    from bot.spoilers.durations import parse_window
    from bot.storage import Storage

    storage = await Storage.open(f"sqlite:///{tmp_path}/embargo.db", tmp_path)
    settings = Settings(
        discord_token=None,
        database_url=f"sqlite:///{tmp_path}/embargo.db",
        content_dir=CONTENT_DIR,
        log_level="INFO",
        dev_guild_id=None,
    )
    try:
        async with Harness(EmbargoBot(settings, storage)) as h:
            refused = await h.slash("embargo", subcommand="window", as_user=MEMBER, duration="2d")
            applied = await h.slash(
                "embargo", subcommand="window", as_user=MODERATOR, duration="2d"
            )
        stored = await storage.get_guild_settings(DEFAULT_GUILD_ID)
    finally:
        await storage.close()

    assert refused.ephemeral
    assert "Manage Server" in (refused.content or "")
    assert refused.allowed_mentions == {"parse": []}
    assert applied.ephemeral
    assert not applied.errors
    assert stored.spoilers.window == parse_window("2d")


async def test_payloads_past_discord_limits_are_refused_like_discord(harness: Harness) -> None:
    too_long = await harness.slash("say", text="x" * 2001)
    assert too_long.callback is not None
    assert too_long.callback.status == 400
    assert too_long.callback.response["code"] == 50035
    assert "content" in too_long.callback.response["errors"]["data"]
    assert too_long.raised(discord.HTTPException)
    assert not too_long.acknowledged

    empty = await harness.slash("say", text="")
    assert empty.callback is not None
    assert empty.callback.response["code"] == 50006

    fits = await harness.slash("say", text="x" * 2000)
    assert fits.acknowledged
    assert fits.content == "x" * 2000


async def test_edits_reads_and_deletes_of_the_original_and_bot_rest_calls(harness: Harness) -> None:
    reply = await harness.slash("progress", as_user=MEMBER)

    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in reply.responses] == [
        ("POST", "callback"),
        ("PATCH", "@original"),
        ("GET", "@original"),
    ]
    assert reply.content == "done"  # the last payload sent is the edit
    assert reply.ephemeral  # an edit cannot make an ephemeral reply public
    rest = [r for r in reply.requests if r.interaction_id is None]
    assert [f"{r.method} {r.path.split('/')[1]}" for r in rest] == ["POST users", "POST channels"]
    assert rest[0].json == {"recipient_id": MEMBER.id}
    assert rest[1].json["content"] == "finished: done"

    oops = await harness.slash("oops")
    assert oops.responses[-1].method == "DELETE"
    assert oops.responses[-1].status == 204
    assert oops.message is None  # gone from the stand-in too
