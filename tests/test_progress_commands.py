"""/watched, /unwatched, /progress, /forget-me, watch roles, and endings that unlock per
person, through discord.py's real command tree against the project's Discord stand-in."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import discord
import pytest

from bot.client import EmbargoBot
from bot.config import PROJECT_DIR, Settings
from bot.progress_messages import FORGET_CANCELLED, FORGET_EXPIRED
from bot.storage import Storage
from tests.support import (
    GENERAL,
    MEMBER,
    MODERATOR,
    GuildSpec,
    Harness,
    Recorded,
    RoleSpec,
    UserSpec,
    reading,
)
from tests.support.reading import EPHEMERAL
from tests.support.specs import base_bot_permissions, ensure_member

README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
FINALE = "black-mirror/s07e06"
FINALE_LABEL = "Black Mirror S7E6 · USS Callister: Into Infinity"
FINALE_RELEASE = datetime(2025, 4, 10, 7, 0, tzinfo=UTC)
IN_THE_WINDOW = FINALE_RELEASE + timedelta(hours=2)  # every Black Mirror episode is out
FRIEND = UserSpec(id=1_300_000_000_000_000_404, name="friend")
WATCHERS = RoleSpec(id=1_300_000_000_000_000_310, name="Watched S7", position=2)
ABOVE_EMBARGO = RoleSpec(id=1_300_000_000_000_000_311, name="Staff", position=9)
BOT_MANAGED = RoleSpec(id=1_300_000_000_000_000_312, name="Some Bot", position=1, managed=True)
WHOLE_SHOW = RoleSpec(id=1_300_000_000_000_000_313, name="Watched it all", position=3)
MANAGE_ROLES = discord.Permissions(manage_roles=True)


def guild_spec(*, manage_roles: bool = True) -> GuildSpec:
    bot = base_bot_permissions()
    if manage_roles:
        bot |= MANAGE_ROLES
    return GuildSpec(
        roles=(*GuildSpec().roles, WATCHERS, ABOVE_EMBARGO, BOT_MANAGED, WHOLE_SHOW),
        members=(*GuildSpec().members, FRIEND),
        bot_permissions=bot,
        bot_role_position=5,
    )


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Embargo:
    h: Harness
    storage: Storage
    clock: Clock

    async def moderator(self, subcommand: str, **options: Any) -> Recorded:
        return await self.h.slash("embargo", subcommand=subcommand, as_user=MODERATOR, **options)

    async def watched(self, episode: str, user: UserSpec = MEMBER, **options: Any) -> Recorded:
        return await self.h.slash("watched", episode=episode, as_user=user, **options)

    async def unwatched(self, episode: str, user: UserSpec = MEMBER, **options: Any) -> Recorded:
        return await self.h.slash("unwatched", episode=episode, as_user=user, **options)

    def catalogue_keys(self, *, season: int | None = None) -> list[str]:
        show = self.h.bot.catalogue.shows_by_slug["black-mirror"]  # type: ignore[attr-defined]
        return [
            e.key
            for e in sorted(show.episodes, key=lambda e: (e.season, e.number))
            if (season is None and e.season > 0) or e.season == season
        ]


async def make(tmp_path, guild: GuildSpec) -> AsyncIterator[Embargo]:
    url = f"sqlite:///{tmp_path}/embargo.db"
    storage = await Storage.open(url, tmp_path)
    settings = Settings(
        discord_token=None,
        database_url=url,
        content_dir=PROJECT_DIR / "data",
        log_level="INFO",
        dev_guild_id=None,
    )
    clock = Clock(IN_THE_WINDOW)
    try:
        async with Harness(EmbargoBot(settings, storage, clock=clock), guild=guild) as h:
            yield Embargo(h, storage, clock)
    finally:
        await storage.close()


@pytest.fixture
async def embargo(tmp_path) -> AsyncIterator[Embargo]:
    async for made in make(tmp_path, guild_spec()):
        yield made


@pytest.fixture
async def no_manage_roles(tmp_path) -> AsyncIterator[Embargo]:
    async for made in make(tmp_path, guild_spec(manage_roles=False)):
        yield made


def ok(reply: Recorded) -> Recorded:
    assert not reply.errors, reply.describe()
    reading.assert_safe_delivery(reply.sent)
    return reply


async def finale_ending(storage: Storage) -> str:
    review = await storage.get_review(FINALE)
    assert review is not None
    assert review.ending
    return review.ending


def contents(reply: Recorded) -> list[str]:
    return [message.get("content") or "" for message in reply.sent]


# -- /watched and /unwatched -------------------------------------------------------------------


async def test_watched_is_saved_before_a_private_reply_saying_whats_next(embargo):
    reply = ok(await embargo.watched("black-mirror/s01e01"))
    assert reply.ephemeral
    assert reply.content.startswith(
        "Marked watched: **Black Mirror S1E1 · The National Anthem**. Saved.\n"
    )
    assert "Next to watch: **Black Mirror S1E2 · Fifteen Million Merits**." in reply.content
    assert await embargo.storage.watched_keys(MEMBER.id) == {"black-mirror/s01e01"}
    again = ok(await embargo.watched("black-mirror/s01e01"))
    assert again.content.startswith(
        "**Black Mirror S1E1 · The National Anthem** was already marked watched; nothing changed."
    )


async def test_through_marks_every_earlier_main_line_episode_and_no_special(embargo):
    reply = ok(await embargo.watched("black-mirror/s07e03", through=True))
    expected = embargo.catalogue_keys()[: embargo.catalogue_keys().index("black-mirror/s07e03") + 1]
    assert await embargo.storage.watched_keys(MEMBER.id) == set(expected)
    assert "black-mirror/s00e01" not in await embargo.storage.watched_keys(MEMBER.id)
    assert reply.content.startswith(
        f"Marked watched: {len(expected)} episodes, up to **Black Mirror S7E3 · Hotel Reverie**."
    )
    assert f"Black Mirror: S7E3 of S7E6, {len(expected)} of " in reply.content
    assert "Next to watch: **Black Mirror S7E4 · Plaything**." in reply.content
    section = README[README.index("### Watch progress") :]
    example = re.search(r"```\n(.*?)\n```", section, re.DOTALL)
    assert example, "the README's /watched example is gone"
    assert reply.content == example.group(1)


async def test_unwatched_and_unwatched_through(embargo):
    await embargo.watched("black-mirror/s07e06", through=True)
    one = ok(await embargo.unwatched("black-mirror/s07e06"))
    assert one.ephemeral
    assert one.content.startswith(f"No longer marked watched: **{FINALE_LABEL}**. Saved.\n")
    assert FINALE not in await embargo.storage.watched_keys(MEMBER.id)
    many = ok(await embargo.unwatched("black-mirror/s02e01", through=True))
    left = await embargo.storage.watched_keys(MEMBER.id)
    assert "black-mirror/s02e01" not in left
    assert "black-mirror/s01e03" not in left
    assert "black-mirror/s02e02" in left
    assert many.content.startswith("No longer marked watched: ")
    assert "Next to watch: **Black Mirror S1E1 · The National Anthem**." in many.content
    nothing = ok(await embargo.unwatched("black-mirror/s02e01"))
    assert "wasn't marked watched; nothing changed." in nothing.content


async def test_an_unreleased_episode_is_refused_with_its_release_time(embargo):
    embargo.clock.now = FINALE_RELEASE - timedelta(days=1)
    reply = ok(await embargo.watched(FINALE, through=True))
    assert reply.ephemeral
    release = int(FINALE_RELEASE.timestamp())
    assert reply.content == (
        f"**{FINALE_LABEL}** isn't out yet: it's released <t:{release}:f> (<t:{release}:R>). "
        "You can mark it watched then. Nothing was changed."
    )
    assert await embargo.storage.watched_keys(MEMBER.id) == frozenset()


async def test_progress_is_the_persons_and_works_in_dms(embargo):
    reply = ok(await embargo.h.slash("watched", episode="black-mirror/s01e02", in_dm=True))
    assert reply.ephemeral
    in_server = ok(await embargo.h.slash("progress"))
    assert in_server.ephemeral
    (embed,) = in_server.embeds
    (field,) = embed["fields"]
    assert field["name"] == "Black Mirror"
    # S1E1 was skipped: the member is nowhere yet, and S1E2 is marked out of order.
    assert "Next to watch: **Black Mirror S1E1 · The National Anthem**." in field["value"]
    assert "Marked out of order: S1E2" in field["value"]


async def test_progress_pages_show_how_far_along(embargo):
    await embargo.watched("black-mirror/s07e03", through=True)
    await embargo.watched("black-mirror/s07e05")
    await embargo.watched("black-mirror/s00e01")
    reply = ok(await embargo.h.slash("progress", show="black-mirror"))
    (embed,) = reply.embeds
    (field,) = embed["fields"]
    assert field["value"].startswith("**S7E5 of S7E6** · ")
    assert "Next to watch: **Black Mirror S7E4 · Plaything**." in field["value"]
    assert "Marked out of order: S7E5" in field["value"]
    assert "Specials: 1 of 1" in field["value"]
    stranger = ok(await embargo.h.slash("progress", as_user=FRIEND))
    assert stranger.content == "You haven't marked anything watched yet. Try `/watched`."


async def test_watched_autocomplete_offers_the_next_episode_first(embargo):
    await embargo.watched("black-mirror/s07e03", through=True)
    typed = await embargo.h.autocomplete("watched", "episode", "black mirror")
    assert typed[0]["value"] == "black-mirror/s07e04"
    empty = await embargo.h.autocomplete("watched", "episode", "")
    assert empty[0]["value"] == "black-mirror/s07e04"
    unmark = await embargo.h.autocomplete("unwatched", "episode", "black mirror")
    assert unmark[0]["value"] == "black-mirror/s01e01"  # watched ones first


# -- endings that unlock per person --------------------------------------------------------------


async def test_refuse_mode_gives_a_watcher_the_ending_privately_and_refuses_others(embargo):
    ending = await finale_ending(embargo.storage)
    await embargo.moderator("mode", mode="refuse")
    refused = ok(await embargo.h.slash("ending", episode=FINALE, as_user=FRIEND))
    assert refused.ephemeral
    assert refused.content.startswith("This server doesn't post spoilers for")

    await embargo.watched(FINALE)
    private = ok(await embargo.h.slash("ending", episode=FINALE))
    assert all(message.get("flags", 0) & EPHEMERAL for message in private.sent)
    first = contents(private)[0]
    assert first.startswith(f"## Ending explained: **{FINALE_LABEL}**\n")
    assert "-# Shown only to you because you've marked it watched." in first
    reading.assert_all_hidden(contents(private), ending)

    # The review's button follows the same rule, per clicker.
    review = await embargo.h.slash("review", episode=FINALE, as_user=FRIEND)
    clicked = ok(await embargo.h.click(f"embargo:ending:{FINALE}", message=review.message))
    assert clicked.ephemeral
    reading.assert_all_hidden(contents(clicked), ending)
    other = ok(
        await embargo.h.click(f"embargo:ending:{FINALE}", message=review.message, as_user=FRIEND)
    )
    assert other.content.startswith("This server doesn't post spoilers for")

    # Everyone in the channel sees the /review embed (spoiler-free) and nothing else.
    public = embargo.h.standin.channel_messages(GENERAL.id)
    assert [m.id for m in public] == [int(review.message["id"])]
    assert public[0].payload["content"] == ""
    assert ending not in str(public[0].payload)


async def test_in_tagged_mode_a_watchers_ending_stays_a_tagged_channel_post(embargo):
    ending = await finale_ending(embargo.storage)
    await embargo.watched(FINALE)
    reply = ok(await embargo.h.slash("ending", episode=FINALE))
    assert not reply.ephemeral
    assert "marked it watched" not in contents(reply)[0]
    reading.assert_all_hidden(contents(reply), ending)


# -- watch roles ---------------------------------------------------------------------------------


async def test_watch_role_is_granted_and_removed_with_progress(embargo):
    setting = ok(
        await embargo.moderator("watch-role", show="black-mirror", role=WATCHERS, season=7)
    )
    assert setting.content.startswith(
        f"Saved: members who have watched every released episode of Black Mirror season 7 get "
        f"<@&{WATCHERS.id}>."
    )
    guild = embargo.h.world.guild
    await embargo.watched("black-mirror/s07e05", through=True)
    assert embargo.h.standin.role_changes() == []  # S7E6 is still to watch
    done = ok(await embargo.watched(FINALE))
    assert done.content == f"You now have <@&{WATCHERS.id}>."
    assert done.sent[-1]["flags"] & EPHEMERAL
    assert embargo.h.standin.role_changes() == [("PUT", guild.id, MEMBER.id, WATCHERS.id)]
    assert WATCHERS.id in guild.member(MEMBER.id).roles
    (put,) = embargo.h.standin.find_requests("PUT", "/roles/")
    assert put.reason  # the audit log says why

    gone = ok(await embargo.unwatched("black-mirror/s07e02"))
    assert gone.content == f"You no longer have <@&{WATCHERS.id}>."
    assert embargo.h.standin.role_changes()[-1] == ("DELETE", guild.id, MEMBER.id, WATCHERS.id)
    assert WATCHERS.id not in guild.member(MEMBER.id).roles

    fields = await settings_fields(embargo)
    assert fields["Watch roles"] == f"<@&{WATCHERS.id}>: Black Mirror season 7"
    assert "Last watch-role problem" not in fields


async def test_a_change_made_in_a_dm_brings_the_servers_roles_in_line(embargo):
    await embargo.moderator("watch-role", show="black-mirror", role=WATCHERS, season=7)
    guild = embargo.h.world.guild
    done = ok(await embargo.h.slash("watched", episode=FINALE, through=True, in_dm=True))
    assert done.content == f"You now have <@&{WATCHERS.id}>."
    assert embargo.h.standin.role_changes() == [("PUT", guild.id, MEMBER.id, WATCHERS.id)]
    # Someone who isn't in that server: Discord says so, and no role is touched.
    stranger = UserSpec(id=1_300_000_000_000_000_499, name="stranger")
    ensure_member(embargo.h.world, stranger)
    guild.members[:] = [m for m in guild.members if m.user.id != stranger.id]
    alone = ok(
        await embargo.h.slash("watched", episode=FINALE, through=True, in_dm=True, as_user=stranger)
    )
    assert alone.content.startswith("Marked watched")
    (looked_up,) = embargo.h.standin.find_requests("GET", f"/members/{stranger.id}$")
    assert looked_up.status == 404
    assert len(embargo.h.standin.role_changes()) == 1


async def settings_fields(embargo: Embargo) -> dict[str, str]:
    reply = await embargo.moderator("settings")
    (embed,) = reply.embeds
    return {field["name"]: field["value"] for field in embed["fields"]}


async def test_watch_role_above_embargo_is_refused_saying_what_to_fix(embargo):
    reply = ok(await embargo.moderator("watch-role", show="black-mirror", role=ABOVE_EMBARGO))
    assert reply.ephemeral
    assert reply.content == (
        f"Embargo can't give <@&{ABOVE_EMBARGO.id}> yet: move Embargo's role above "
        f"<@&{ABOVE_EMBARGO.id}> (Server Settings → Roles: drag it higher), then run this "
        "again. Nothing was changed."
    )
    assert (await embargo.storage.watch_role_settings(embargo.h.guild.id)).roles == ()
    managed = ok(await embargo.moderator("watch-role", show="black-mirror", role=BOT_MANAGED))
    assert "managed by a bot or an integration" in managed.content
    everyone = RoleSpec(id=embargo.h.guild.id, name="@everyone", position=0)
    refused = ok(await embargo.moderator("watch-role", show="black-mirror", role=everyone))
    assert refused.content.startswith("@everyone can't be a watch role")
    season = ok(
        await embargo.moderator("watch-role", show="black-mirror", role=WATCHERS, season=42)
    )
    assert season.content.startswith("Black Mirror has no season 42.")
    assert (await embargo.storage.watch_role_settings(embargo.h.guild.id)).roles == ()


async def test_without_manage_roles_the_setting_names_the_permission(no_manage_roles):
    reply = ok(await no_manage_roles.moderator("watch-role", show="black-mirror", role=WATCHERS))
    assert reply.content == (
        f"Embargo can't give <@&{WATCHERS.id}> yet: give Embargo's role the **Manage Roles** "
        "permission, then run this again. Nothing was changed."
    )


async def test_a_role_discord_refuses_later_is_told_to_the_member_and_the_moderators(embargo):
    await embargo.moderator("watch-role", show="black-mirror", role=WATCHERS, season=7)
    # The role was moved above Embargo's since (Embargo has not heard yet): Discord refuses.
    embargo.h.world.guild.role(WATCHERS.id).position = 9
    await embargo.watched("black-mirror/s07e05", through=True)
    reply = ok(await embargo.watched(FINALE))
    assert reply.sent[0]["content"].startswith("Marked watched")  # the progress is saved
    assert reply.content.startswith(f"Embargo couldn't give you <@&{WATCHERS.id}>: ")
    assert "`/embargo settings`" in reply.content
    assert FINALE in await embargo.storage.watched_keys(MEMBER.id)
    refused = embargo.h.standin.find_requests("PUT", "/roles/")
    assert [r.status for r in refused] == [403]
    fields = await settings_fields(embargo)
    assert f"<@&{WATCHERS.id}>: Discord refused the change" in fields["Last watch-role problem"]
    # Once the role is below Embargo's again, marking it again tries once more.
    embargo.h.world.guild.role(WATCHERS.id).position = 2
    again = ok(await embargo.watched(FINALE))
    assert again.sent[0]["content"].startswith(f"**{FINALE_LABEL}** was already marked watched")
    assert again.content == f"You now have <@&{WATCHERS.id}>."


# -- /forget-me ----------------------------------------------------------------------------------


def button(reply: Recorded, label: str) -> dict:
    for row in reply.components:
        for component in row["components"]:
            if component.get("label") == label:
                return component
    raise AssertionError(f"no {label!r} button in {reply.components}")


async def test_forget_me_deletes_progress_and_votes_and_rankings_follow(embargo):
    await embargo.watched(FINALE, through=True)
    await embargo.h.slash("vote", episode=FINALE, score=10)
    await embargo.h.slash("vote", episode=FINALE, score=4, as_user=FRIEND)
    before = ok(await embargo.h.slash("rankings", show="black-mirror", source="community"))
    assert "2 votes from this server" in before.embeds[0]["description"]

    prompt = ok(await embargo.h.slash("forget-me"))
    assert prompt.ephemeral
    assert "can't be undone" in prompt.content
    assert await embargo.storage.watched_keys(MEMBER.id)  # nothing deleted before the click
    done = ok(
        await embargo.h.click(
            button(prompt, "Delete everything")["custom_id"], message=prompt.message
        )
    )
    assert done.callback_type == 7
    assert done.content.startswith(f"Deleted: {len(embargo.catalogue_keys())} episodes marked ")
    assert "and 1 vote in 1 server." in done.content
    assert done.components == []
    assert await embargo.storage.watched_keys(MEMBER.id) == frozenset()
    assert await embargo.storage.member_votes(embargo.h.guild.id, MEMBER.id, None) == []
    after = ok(await embargo.h.slash("rankings", show="black-mirror", source="community"))
    assert "1 vote from this server" in after.embeds[0]["description"]
    assert "avg 4.0" in after.embeds[0]["description"]


async def test_forget_me_cancel_and_expiry_delete_nothing(embargo, monkeypatch):
    await embargo.watched(FINALE)
    prompt = await embargo.h.slash("forget-me")
    cancelled = ok(
        await embargo.h.click(button(prompt, "Cancel")["custom_id"], message=prompt.message)
    )
    assert cancelled.content == FORGET_CANCELLED
    assert await embargo.storage.watched_keys(MEMBER.id) == {FINALE}

    monkeypatch.setattr(sys.modules["cogs.progress"], "FORGET_TIMEOUT", 0.1)
    late = await embargo.h.slash("forget-me")
    for _ in range(100):
        await asyncio.sleep(0.02)
        stored = embargo.h.standin.messages[int(late.message["id"])].payload
        if stored["content"] == FORGET_EXPIRED:
            break
    else:
        pytest.fail("the confirmation never expired")
    assert stored["components"] == []
    assert await embargo.storage.watched_keys(MEMBER.id) == {FINALE}


# -- /rankings spoiler-free ----------------------------------------------------------------------


async def test_spoiler_free_rankings_hide_the_episodes_you_havent_watched(embargo):
    for code in ("s07e01", "s07e02", "s07e04"):
        await embargo.watched(f"black-mirror/{code}")
    full = ok(await embargo.h.slash("rankings", show="black-mirror", season=7))
    mine = ok(
        await embargo.h.slash(
            "rankings", show="black-mirror", season=7, options={"spoiler-free": True}
        )
    )
    shown = re.findall(r"`(S\d+E\d+)`", mine.embeds[0]["description"])
    assert sorted(shown) == ["S7E1", "S7E2", "S7E4"]
    everything = re.findall(r"`(S\d+E\d+)`", full.embeds[0]["description"])
    assert [code for code in everything if code in shown] == shown  # the same order
    assert "-# 3 episodes you haven't watched are hidden." in mine.embeds[0]["description"]
    assert "hidden" not in full.embeds[0]["description"]

    nothing = ok(
        await embargo.h.slash(
            "rankings",
            show="black-mirror",
            season=7,
            as_user=FRIEND,
            options={"spoiler-free": True},
        )
    )
    assert nothing.ephemeral
    assert nothing.content == (
        "Nothing to show for **Black Mirror** season 7: 6 episodes you haven't watched are "
        "hidden. Mark episodes with `/watched`, or leave out `spoiler-free`."
    )


# -- the re-check when episodes come out, and /forget-me's roles ---------------------------------

BEFORE_SEASON_7 = FINALE_RELEASE - timedelta(days=1)


def last_released(embargo: Embargo) -> str:
    show = embargo.h.bot.catalogue.shows_by_slug["black-mirror"]  # type: ignore[attr-defined]
    out = [e for e in show.episodes if e.season > 0 and e.release_at <= embargo.clock.now]
    return max(out, key=lambda e: (e.season, e.number)).key


async def test_a_new_release_takes_the_role_back_from_members_no_longer_complete(embargo):
    embargo.clock.now = BEFORE_SEASON_7
    await embargo.moderator("watch-role", show="black-mirror", role=WHOLE_SHOW)
    granted = ok(await embargo.watched(last_released(embargo), through=True))
    assert granted.content == f"You now have <@&{WHOLE_SHOW.id}>."
    guild = embargo.h.world.guild
    assert await embargo.storage.role_holders(guild.id, WHOLE_SHOW.id) == [MEMBER.id]
    cog = embargo.h.bot.get_cog("Progress")

    # Nothing came out in between: nobody is touched.
    assert await cog.recheck_releases(BEFORE_SEASON_7 - timedelta(days=30), BEFORE_SEASON_7) == 0
    # Season 7 comes out: the member hasn't watched it, so the role goes.
    embargo.clock.now = IN_THE_WINDOW
    assert await cog.recheck_releases(BEFORE_SEASON_7, IN_THE_WINDOW) == 1
    assert embargo.h.standin.role_changes()[-1] == ("DELETE", guild.id, MEMBER.id, WHOLE_SHOW.id)
    assert WHOLE_SHOW.id not in guild.member(MEMBER.id).roles
    assert await embargo.storage.role_holders(guild.id, WHOLE_SHOW.id) == []
    # Checking the same span again changes nothing.
    assert await cog.recheck_releases(BEFORE_SEASON_7, IN_THE_WINDOW) == 0
    # Watching season 7 brings it back.
    back = ok(await embargo.watched(FINALE, through=True))
    assert back.content == f"You now have <@&{WHOLE_SHOW.id}>."


async def test_forget_me_takes_back_the_roles_embargo_gave(embargo):
    await embargo.moderator("watch-role", show="black-mirror", role=WATCHERS, season=7)
    await embargo.watched(FINALE, through=True)
    guild = embargo.h.world.guild
    assert WATCHERS.id in guild.member(MEMBER.id).roles
    prompt = await embargo.h.slash("forget-me")
    done = ok(
        await embargo.h.click(
            button(prompt, "Delete everything")["custom_id"], message=prompt.message
        )
    )
    assert done.content == f"You no longer have <@&{WATCHERS.id}>."
    assert embargo.h.standin.role_changes()[-1] == ("DELETE", guild.id, MEMBER.id, WATCHERS.id)
    assert await embargo.storage.roles_held_by(MEMBER.id) == []


async def test_each_process_rechecks_from_its_own_shards_last_instant(tmp_path):
    """Processes see only their shards' servers: a process that was down re-checks the
    releases since its own shards' last check, whatever the others checked meanwhile."""
    url = f"sqlite:///{tmp_path}/embargo.db"
    storage = await Storage.open(url, tmp_path)
    base = Settings(
        discord_token=None,
        database_url=url,
        content_dir=PROJECT_DIR / "data",
        log_level="INFO",
        dev_guild_id=None,
    )
    clock = Clock(IN_THE_WINDOW)
    long_ago = IN_THE_WINDOW - timedelta(days=40)
    checked = IN_THE_WINDOW - timedelta(days=1)

    async def through(shard_count: int | None, shard_ids: tuple[int, ...] | None) -> datetime:
        settings = replace(base, shard_count=shard_count, shard_ids=shard_ids)
        bot = EmbargoBot(settings, storage, clock=clock)
        async with Harness(bot):
            cog: Any = bot.get_cog("Progress")
            since = await cog.rechecked_through()
            if shard_ids == (0,):
                await cog.record_rechecked(checked)
            return since

    try:
        # Nothing ever checked: from now on.
        assert await through(2, (1,)) == IN_THE_WINDOW
        # What a version before shard ranges kept is where every shard starts.
        await storage.set_meta("watch_roles_rechecked_at", str(int(long_ago.timestamp())))
        assert await through(2, (0,)) == long_ago  # then records `checked` for shard 0
        assert await through(2, (0,)) == checked
        assert await through(2, (1,)) == long_ago  # shard 1's servers: not checked since
        assert await through(2, (0, 1)) == long_ago  # the earliest of its shards
        assert await through(None, None) == long_ago  # one shard of one: never checked
    finally:
        await storage.close()
