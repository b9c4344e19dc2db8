"""Start-up, the registered command tree, and restarts of the real ``python -m bot`` process.

The tree the bot registers is compared with an explicit table of the public interface, and the
table itself is checked against the README's command headings, signatures and tables, so the
README, the table and the bot cannot drift apart silently.

Tests run in file order on one database: first start, then restarts (unchanged, changed
content, ``python -m bot sync``, ``DEV_GUILD_ID``).
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from typing import Any

import pytest

from .embargo_checks import moderator
from .embargo_content import SHOW_SLUG, E2EContent, write_show
from .scenario import EMBARGO_ARGV, REPO_ROOT, BotProcess, Scenario, ScenarioError

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
GUILDS_INTENT = 1 << 0
MANAGE_GUILD = 1 << 5
GUILD, BOT_DM, PRIVATE_CHANNEL = 0, 1, 2
STRING, INTEGER, BOOLEAN, CHANNEL, ROLE = 3, 4, 5, 7, 8
MESSAGE_COMMAND = 3
MESSAGE_CONTENT_INTENT = 1 << 15
SUB_COMMAND = 1
EPISODE_HELP = "Title or code, e.g. “into infinity”, “s7e6” or “bm s07e06”"
DURATION_EXAMPLES = "e.g. `7d`, `36h`, `2w`, `1d12h`, `off` (no window) or `forever`"
# Every channel type discord.py offers for a channel option typed as any channel or thread.
ANY_CHANNEL_TYPES = [0, 2, 4, 5, 10, 11, 12, 13, 15, 16]
FINALE = "black-mirror/s07e06"
THROUGH_HELP = "Also every earlier episode of the show (specials only when you name one)"


def option(
    name: str,
    kind: int,
    description: str,
    *,
    required: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    return {"name": name, "type": kind, "description": description, "required": required, **extra}


def episode_option(description: str = EPISODE_HELP, *, required: bool = True) -> dict[str, Any]:
    return option(
        "episode", STRING, description, required=required, autocomplete=True, max_length=100
    )


def show_option(description: str, *, required: bool = True) -> dict[str, Any]:
    return option("show", STRING, description, required=required, autocomplete=True, max_length=100)


def sub(name: str, description: str, *options: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "type": SUB_COMMAND, "description": description, "options": list(options)}


def command(
    description: str,
    *options: dict[str, Any],
    contexts: list[int],
    permissions: str | None = None,
) -> dict[str, Any]:
    return {
        "description": description,
        "default_member_permissions": permissions,
        "contexts": contexts,
        "integration_types": [0],  # installed to servers only, never to users
        "options": list(options),
    }


EVERYWHERE = [GUILD, BOT_DM, PRIVATE_CHANNEL]
SERVERS = [GUILD]

# The public interface, as registered with Discord.
EXPECTED_TREE: dict[str, dict[str, Any]] = {
    "review": command(
        "An episode's spoiler-free review: verdict, rating, write-up.",
        episode_option(),
        contexts=EVERYWHERE,
    ),
    "ending": command(
        "The ending explained, hidden as this server's spoiler rules say.",
        episode_option(),
        contexts=EVERYWHERE,
    ),
    "spoilers": command(
        "This server's spoiler rules.",
        episode_option("Optional: when this episode's spoilers open here", required=False),
        contexts=EVERYWHERE,
    ),
    "help": command(
        "What Embargo does, the commands you can use here, the rules.", contexts=EVERYWHERE
    ),
    "about": command(
        "Embargo's version, what it stores and for how long, its source.", contexts=EVERYWHERE
    ),
    "upcoming": command(
        "The next releases, and when spoilers open.",
        show_option("Optional: only this show", required=False),
        contexts=EVERYWHERE,
    ),
    "vote": command(
        "Score an episode from 1 to 10. Voting again changes your score.",
        episode_option(),
        option("score", INTEGER, "1 (worst) to 10 (best)", min_value=1, max_value=10),
        contexts=SERVERS,
    ),
    "unvote": command("Withdraw your vote on an episode.", episode_option(), contexts=SERVERS),
    "myvotes": command(
        "Your own votes in this server.",
        show_option("Optional: only this show", required=False),
        contexts=SERVERS,
    ),
    "rankings": command(
        "A show's episodes ranked by this server's votes or a critic.",
        show_option("The show"),
        option(
            "season",
            INTEGER,
            "Optional: only this season",
            required=False,
            min_value=0,
            max_value=999,
        ),
        option(
            "source",
            STRING,
            "community (votes) or critic; by default community once there are enough votes",
            required=False,
            choices=["community", "critic"],
            max_length=9,
        ),
        option(
            "order",
            STRING,
            "best-first (default) or worst-first",
            required=False,
            choices=["best-first", "worst-first"],
            max_length=11,
        ),
        option(
            "scope",
            STRING,
            "server (default): this server's votes · global: every server's votes pooled",
            required=False,
            choices=["server", "global"],
            max_length=6,
        ),
        option("chart", BOOLEAN, "Also attach the ranking as a bar chart image", required=False),
        option(
            "spoiler-free",
            BOOLEAN,
            "Only the episodes you've marked watched (/watched)",
            required=False,
        ),
        contexts=EVERYWHERE,
    ),
    "watched": command(
        "Mark an episode watched: its ending unlocks for you.",
        episode_option(),
        option("through", BOOLEAN, THROUGH_HELP, required=False),
        contexts=EVERYWHERE,
    ),
    "unwatched": command(
        "Unmark an episode you marked watched.",
        episode_option(),
        option("through", BOOLEAN, THROUGH_HELP, required=False),
        contexts=EVERYWHERE,
    ),
    "progress": command(
        "How far you are in each show, privately.",
        show_option("Optional: only this show", required=False),
        contexts=EVERYWHERE,
    ),
    "forget-me": command(
        "Delete everything Embargo stores about you (asks first).", contexts=EVERYWHERE
    ),
    "embargo": command(
        "Moderators: how this server hides spoilers (Manage Server required).",
        sub(
            "window",
            "How long after release spoilers stay hidden.",
            option("duration", STRING, f"{DURATION_EXAMPLES}; at most 3650 days", max_length=40),
        ),
        sub(
            "show-window",
            "A different spoiler window for one show.",
            show_option("The show"),
            option(
                "duration",
                STRING,
                "e.g. `30d`, `2w`, `off`, `forever`, or `default` for the server's window",
                max_length=40,
            ),
        ),
        sub(
            "mode",
            "How spoilers are hidden while the window runs.",
            option(
                "mode",
                STRING,
                "tagged: behind spoiler tags · private: only the asker sees it · refuse: not shown",
                choices=["tagged", "private", "refuse"],
                max_length=7,
            ),
        ),
        sub(
            "channel",
            "Mark a channel where spoilers are always fine.",
            option("channel", CHANNEL, "The channel", channel_types=ANY_CHANNEL_TYPES),
            option(
                "policy",
                STRING,
                "spoilers-ok: endings in plain text · default: server rules",
                choices=["spoilers-ok", "default"],
                max_length=11,
            ),
        ),
        sub(
            "min-votes",
            "Votes an episode needs to rank on its own.",
            option(
                "count",
                INTEGER,
                "The m of the weighted score (1 to 1000)",
                min_value=1,
                max_value=1000,
            ),
        ),
        sub(
            "min-member-days",
            "How long someone must be a member before voting.",
            option(
                "days",
                INTEGER,
                "Days of membership required (0 to 3650)",
                min_value=0,
                max_value=3650,
            ),
        ),
        sub("settings", "Everything the moderators have set, in one view."),
        sub(
            "announce",
            "Where release posts and spoiler threads go.",
            option(
                "channel",
                CHANNEL,
                "A text, announcement or forum channel",
                channel_types=[0, 5, 15, 16],
            ),
            show_option(
                "Optional: only for this show (otherwise the server's default)", required=False
            ),
            option("ping", ROLE, "Optional: a role to mention in release posts", required=False),
        ),
        sub(
            "announce-off",
            "Stop release posts (one show, or all).",
            show_option("Optional: only this show (otherwise every show)", required=False),
        ),
        sub(
            "spoiler-helpers",
            "A role whose members may hide any message as a spoiler.",
            option("role", ROLE, "Members with this role may hide any message as a spoiler"),
        ),
        sub(
            "spoiler-helpers-off",
            "Only moderators and authors may hide messages as spoilers.",
        ),
        sub(
            "log",
            "Log every message hidden as a spoiler in a channel.",
            option(
                "channel",
                CHANNEL,
                "Where each hidden message is logged (a link, never the text)",
                channel_types=[0, 5],  # text and announcement channels
            ),
        ),
        sub("log-off", "Stop logging hidden messages."),
        sub(
            "guard",
            "Flag or hide members' messages naming an episode in its window.",
            option(
                "mode",
                STRING,
                "off · flag: a short reply, deleted after a minute · hide: reposted as a spoiler",
                choices=["off", "flag", "hide"],
                max_length=4,
            ),
        ),
        sub(
            "guard-ignore",
            "The guard leaves this channel alone.",
            option(
                "channel",
                CHANNEL,
                "The channel (or category) the guard leaves alone",
                channel_types=ANY_CHANNEL_TYPES,
            ),
        ),
        sub(
            "guard-watch",
            "The guard watches this channel again.",
            option(
                "channel",
                CHANNEL,
                "The channel (or category) the guard watches again",
                channel_types=ANY_CHANNEL_TYPES,
            ),
        ),
        # cogs/progress.py attaches these (extensions load by name after cogs/spoilers.py).
        sub(
            "watch-role",
            "Give a role to members who watched a show (or season).",
            show_option("The show"),
            option(
                "role", ROLE, "The role; Embargo's own role must be above it, with Manage Roles"
            ),
            option(
                "season",
                INTEGER,
                "Optional: only this season (0: the specials)",
                required=False,
                min_value=0,
                max_value=999,
            ),
        ),
        sub(
            "watch-role-off",
            "Stop giving a show's watch role.",
            show_option("The show"),
            option(
                "season",
                INTEGER,
                "Optional: the season whose role to remove",
                required=False,
                min_value=0,
                max_value=999,
            ),
        ),
        contexts=SERVERS,
        permissions=str(MANAGE_GUILD),
    ),
}


def normalise_option(raw: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "name": raw["name"],
        "type": raw["type"],
        "description": raw["description"],
    }
    if raw["type"] == SUB_COMMAND:
        result["options"] = [normalise_option(o) for o in raw.get("options") or []]
        return result
    result["required"] = raw.get("required", False)
    if raw.get("autocomplete"):
        result["autocomplete"] = True
    for key in ("min_value", "max_value", "min_length", "max_length"):
        if key in raw:
            result[key] = raw[key]
    if raw.get("channel_types"):
        result["channel_types"] = sorted(raw["channel_types"])
    if raw.get("choices"):
        assert all(c["name"] == c["value"] for c in raw["choices"]), raw["choices"]
        result["choices"] = [c["value"] for c in raw["choices"]]
    return result


def normalise(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": raw["description"],
        "default_member_permissions": raw.get("default_member_permissions"),
        "contexts": sorted(raw["contexts"]) if raw.get("contexts") is not None else None,
        "integration_types": raw.get("integration_types"),
        "options": [normalise_option(o) for o in raw.get("options") or []],
    }


def descriptions(tree: Any) -> list[str]:
    """Every description in a (normalised or raw) tree, depth first."""
    if isinstance(tree, dict):
        found = [tree["description"]] if isinstance(tree.get("description"), str) else []
        return found + [d for value in tree.values() for d in descriptions(value)]
    if isinstance(tree, list):
        return [d for item in tree for d in descriptions(item)]
    return []


# -- the README's command list -------------------------------------------------------------------


@dataclass(frozen=True)
class ReadmeCommand:
    name: str
    subcommand: str | None
    options: tuple[tuple[str, bool], ...]  # (name, required), in order


SIGNATURE = re.compile(r"`(/[a-z-]+(?: [a-z][a-z-]*(?!:))?(?: \[?[a-z-]+:\]?)*)`")


def readme_commands() -> dict[tuple[str, str | None], ReadmeCommand]:
    """Signatures from the README's command headings, bold signatures and table rows."""
    commands_section = README[README.index("## Commands") : README.index("## Content")]
    places = [
        *re.findall(r"^### (.+)$", commands_section, re.MULTILINE),
        *re.findall(r"^\*\*(`/.+?`)\*\*", commands_section, re.MULTILINE),
        *re.findall(r"^\| (`/.+?`) \|", commands_section, re.MULTILINE),
    ]
    found: dict[tuple[str, str | None], ReadmeCommand] = {}
    for place in places:
        match = SIGNATURE.match(place)
        if match is None:  # "### `/embargo …` (moderators)": the group, listed in its table
            continue
        name, *rest = match[1][1:].split()
        subcommand = rest.pop(0) if rest and not rest[0].endswith((":", ":]")) else None
        options = tuple((o.strip("[]:"), not o.startswith("[")) for o in rest)
        found[(name, subcommand)] = ReadmeCommand(name, subcommand, options)
    return found


def readme_choices() -> dict[str, list[str]]:
    """Choices the README lists: `/embargo` table rows and the /rankings option bullets."""
    choices: dict[str, list[str]] = {}
    for signature, values in re.findall(
        r"^\| `(/embargo [^`]+)` \| (`[^|]+`(?: \\\| `[^`]+`)+)", README, re.MULTILINE
    ):
        _, subcommand, *_, last_option = signature.split()
        # By subcommand too: two subcommands have an option called mode.
        choices[f"{subcommand} {last_option.strip(':')}"] = re.findall(r"`([^`]+)`", values)
    for name, text in re.findall(r"^- `(\w+)`: (.+)$", README, re.MULTILINE):
        choices[name] = re.findall(r"`([a-z-]+)`", text)
    return choices


def readme_dm_commands() -> set[str]:
    """Commands the README says work in DMs."""
    listed = re.search(r"^((?:`/[\w-]+`(?:,\s| and )?)+) also work in DMs", README, re.MULTILINE)
    assert listed, "the README no longer says which commands work in DMs"
    names = set(re.findall(r"`/([\w-]+)`", listed[1]))
    if re.search(r"`global` \(every server's votes pooled; the only\s+scope in DMs\)", README):
        names.add("rankings")
    return names


@pytest.fixture
def scenario(embargo: Scenario) -> Scenario:
    embargo.checkpoint()
    return embargo


def registered(scenario: Scenario) -> dict[str, dict[str, Any]]:
    """The registered slash commands (the message command has its own test)."""
    return {c["name"]: c for c in scenario.standin.commands[None] if c.get("type", 1) == 1}


async def test_hide_as_spoiler_is_a_servers_only_message_command(scenario: Scenario) -> None:
    [menu] = [c for c in scenario.standin.commands[None] if c.get("type") == MESSAGE_COMMAND]
    assert menu["name"] == "Hide as spoiler"
    assert menu["contexts"] == SERVERS
    assert menu["dm_permission"] is False
    # Authors hide their own messages: not hidden from members by default permissions.
    assert menu.get("default_member_permissions") is None
    assert "**Apps → Hide as spoiler**" in README


def content_files(content: E2EContent) -> int:
    root = content.root
    return sum(
        len(list(root.glob(pattern)))
        for pattern in ("shows/*.toml", "reviews/*/*.md", "rankings/*.toml")
    )


# -- first start ---------------------------------------------------------------------------------


async def test_first_start_identifies_and_registers_globally(
    scenario: Scenario, content: E2EContent
) -> None:
    standin = scenario.standin
    app_id = standin.world.application.id
    assert [(r.method, r.path) for r in standin.requests[:3]] == [
        ("GET", "/users/@me"),
        ("GET", "/oauth2/applications/@me"),
        ("PUT", f"/applications/{app_id}/commands"),
    ]
    (session,) = standin.sessions
    assert session.identify is not None
    assert session.identify["token"] == standin.token
    # The README: only the non-privileged Guilds intent.
    assert session.identify["intents"] == GUILDS_INTENT
    assert [e.name for e in session.events[:2]] == ["READY", "GUILD_CREATE"]
    assert list(standin.commands) == [None]  # global: DEV_GUILD_ID is empty
    output = scenario.bot.output
    assert f"content: {content_files(content)} file(s) loaded, 0 unchanged" in output
    assert f"synced {len(EXPECTED_TREE) + 1} command(s) (global)" in output
    assert standin.token not in output  # never logged
    assert standin.unknown_routes == []
    assert standin.errors == []


async def test_registered_tree_is_the_public_interface(scenario: Scenario) -> None:
    tree = {name: normalise(raw) for name, raw in registered(scenario).items()}
    assert set(tree) == set(EXPECTED_TREE)
    for name, expected in EXPECTED_TREE.items():
        assert tree[name] == expected, name
    assert all(0 < len(d) <= 100 for d in descriptions(tree))


async def test_the_expected_tree_is_the_readmes_command_list() -> None:
    documented = readme_commands()
    listed: dict[tuple[str, str | None], tuple[tuple[str, bool], ...]] = {}
    for name, spec in EXPECTED_TREE.items():
        subs = [o for o in spec["options"] if o["type"] == SUB_COMMAND]
        for subcommand in subs or [None]:
            options = subcommand["options"] if subcommand else spec["options"]
            key = (name, subcommand["name"] if subcommand else None)
            listed[key] = tuple((o["name"], o["required"]) for o in options)
    assert {k: v.options for k, v in documented.items()} == listed

    # "Every option that names an episode or a show autocompletes."
    for spec in EXPECTED_TREE.values():
        for opt in [*spec["options"], *[o for s in spec["options"] for o in s.get("options", [])]]:
            if opt["type"] != SUB_COMMAND:
                assert opt.get("autocomplete", False) == (opt["name"] in ("episode", "show"))

    choices = readme_choices()
    for spec in EXPECTED_TREE.values():
        for opt in spec["options"]:
            if "choices" in opt:
                assert choices[opt["name"]] == opt["choices"], opt["name"]
            for inner in opt.get("options", []):
                if "choices" in inner:
                    nested = f"{opt['name']} {inner['name']}"
                    assert choices[nested] == inner["choices"], nested

    dm = {name for name, spec in EXPECTED_TREE.items() if BOT_DM in spec["contexts"]}
    assert dm == readme_dm_commands()
    assert re.search(r"### `/embargo …` \(moderators\)\s+Needs \*\*Manage Server\*\*", README)
    managers = {n for n, s in EXPECTED_TREE.items() if s["default_member_permissions"]}
    assert managers == {"embargo"}
    assert "Members score episodes from 1 to 10" in README
    score = EXPECTED_TREE["vote"]["options"][1]
    assert (score["min_value"], score["max_value"]) == (1, 10)


async def test_servers_only_commands_say_so_in_both_fields(scenario: Scenario) -> None:
    # contexts for today's clients, the legacy dm_permission for older ones (fixed in a83bfe7).
    for name, raw in registered(scenario).items():
        assert raw["dm_permission"] is (BOT_DM in raw["contexts"]), name


async def test_no_description_is_cut_short(scenario: Scenario) -> None:
    # discord.py silently cuts a parameter description over 100 characters with "…" (it did
    # to two /embargo options until a83bfe7).
    cut = [d for d in descriptions(list(registered(scenario).values())) if d.endswith("…")]
    assert cut == []


# -- restarts ------------------------------------------------------------------------------------


async def test_restart_keeps_settings_and_votes_without_resync_or_reload(
    scenario: Scenario, content: E2EContent
) -> None:
    standin = scenario.standin
    await moderator(scenario, "window", duration="1000d")
    await moderator(scenario, "mode", mode="private")
    await moderator(scenario, "channel", channel="spoilers", policy="spoilers-ok")
    await moderator(scenario, "min-votes", count=3)
    await (await scenario.slash("vote", as_user="alice", episode=FINALE, score=9)).reply()
    await (await scenario.slash("vote", as_user="bob", episode=FINALE, score=7)).reply()
    settings_before = (
        await (await scenario.slash("embargo", "settings", as_user="mod")).reply()
    ).embeds
    review = await (await scenario.slash("review", episode=FINALE)).reply()
    puts = len(standin.find_requests("PUT", r"/commands$"))
    connection = standin.current_session.connection if standin.current_session else None

    assert await scenario.bot.stop() == 0  # SIGINT: a clean exit
    assert connection is not None
    assert connection.ws.close_code == 1000  # the gateway was closed properly
    await scenario.bot.start()

    run = scenario.bot.last_run_output
    assert len(standin.find_requests("PUT", r"/commands$")) == puts
    assert "commands unchanged since the last sync (global); not syncing" in run
    files = content_files(content)
    assert f"content: 0 file(s) loaded, {files} unchanged, 0 removed, no problems" in run
    settings_after = (
        await (await scenario.slash("embargo", "settings", as_user="mod")).reply()
    ).embeds
    assert settings_after == settings_before
    mine = await (await scenario.slash("myvotes", as_user="alice")).reply()
    assert "`S7E6` USS Callister: Into Infinity · **9**/10" in mine.embeds[0]["description"]
    ranked = await (
        await scenario.slash("rankings", show="black-mirror", season=7, source="community")
    ).reply()
    assert "2 votes from this server" in ranked.embeds[0]["description"]
    assert "m = 3" in ranked.embeds[0]["footer"]["text"]
    # The reveal button on a message from before the restart still answers, under the
    # settings that survived (private mode, 1000-day window: tagged and ephemeral).
    click = await scenario.click(review, f"embargo:ending:{FINALE}", as_user="bob")
    reply = await click.reply()
    assert reply.ephemeral
    assert "||" in reply.content
    in_ok_channel = await (
        await scenario.slash("ending", episode=FINALE, in_channel="spoilers")
    ).reply()
    assert "||" not in in_ok_channel.content
    scenario.assert_clean()


async def test_changed_content_is_reloaded_and_a_broken_file_keeps_the_last_good(
    scenario: Scenario, content: E2EContent
) -> None:
    root = content.root
    upcoming_review = await (await scenario.slash("review", episode=content.upcoming.key)).reply()
    # Edited while the bot is stopped (a running bot reloads by itself: test_embargo_reload).
    await scenario.bot.stop()
    # One review edited, one broken (a rating out of range), one episode and its review gone.
    changed = root / "reviews" / SHOW_SLUG / "s01e01.md"
    changed.write_text(
        changed.read_text(encoding="utf-8").replace(
            'verdict = "A patient opener."', 'verdict = "Better on a second watch."'
        ),
        encoding="utf-8",
    )
    broken = root / "reviews" / SHOW_SLUG / "s01e02.md"
    broken.write_text(
        broken.read_text(encoding="utf-8").replace("rating = 3.5", "rating = 11"),
        encoding="utf-8",
    )
    write_show(root, [content.old, content.recent])
    (root / "reviews" / SHOW_SLUG / "s01e03.md").unlink()
    puts = len(scenario.standin.find_requests("PUT", r"/commands$"))
    await scenario.bot.start()

    run = scenario.bot.last_run_output
    files = content_files(content)  # now one fewer
    assert f"content: 2 file(s) loaded, {files - 3} unchanged, 1 removed, 1 error" in run
    problem = re.search(r"WARNING\s+bot\.content\.reload: content: (.*s01e02\.md:\d+: .+)", run)
    assert problem, run
    assert "rating" in problem[1]
    assert len(scenario.standin.find_requests("PUT", r"/commands$")) == puts
    fresh = await (await scenario.slash("review", episode=content.old.key)).reply()
    fields = {f["name"]: f["value"] for f in fresh.embeds[0]["fields"]}
    assert fields["Verdict"] == "Better on a second watch."
    kept = await (await scenario.slash("review", episode=content.recent.key)).reply()
    assert {f["name"]: f["value"] for f in kept.embeds[0]["fields"]}["Rating"] == "★★★½☆ 3.5/5"
    # The button on a review posted before the episode was removed still answers.
    click = await scenario.click(upcoming_review, f"embargo:ending:{content.upcoming.key}")
    (gone,) = await click.messages()
    assert gone.ephemeral
    assert gone.content == "That episode is no longer in the catalogue."
    (unknown,) = await (await scenario.slash("review", episode=content.upcoming.key)).messages()
    assert unknown.content.startswith("I couldn't find an episode matching")
    scenario.assert_clean()


async def test_sigterm_closes_the_gateway_and_exits_cleanly(scenario: Scenario) -> None:
    # What systemd and container runtimes send by default.
    standin = scenario.standin
    connection = standin.current_session.connection if standin.current_session else None
    assert await scenario.bot.stop(signum=signal.SIGTERM) == 0
    assert connection is not None
    assert connection.ws.close_code == 1000
    assert "SIGTERM received: closing the connection to Discord" in scenario.bot.tail()
    await scenario.bot.start()


async def test_sync_command_registers_even_when_unchanged(
    scenario: Scenario, content: E2EContent
) -> None:
    standin = scenario.standin
    await scenario.bot.stop()
    sync = BotProcess(
        standin,
        argv=(*EMBARGO_ARGV, "sync"),
        workdir=scenario.bot.workdir,
        content_dir=content.root,
    )
    puts = standin.find_requests("PUT", r"/commands$")
    # It logs in, registers the commands and exits; it never opens the gateway.
    sessions = len(standin.sessions)
    assert await sync.run_to_exit() == 0
    after = standin.find_requests("PUT", r"/commands$")
    assert len(after) == len(puts) + 1
    assert after[-1].json == puts[0].json  # the same tree, registered again on request
    assert f"synced {len(EXPECTED_TREE) + 1} command(s) (global)" in sync.last_run_output
    assert len(standin.sessions) == sessions


async def test_dev_guild_id_registers_in_that_server(
    scenario: Scenario, content: E2EContent
) -> None:
    standin = scenario.standin
    guild = standin.world.guild
    dev = BotProcess(
        standin,
        workdir=scenario.bot.workdir,
        content_dir=content.root,
        env={"DEV_GUILD_ID": str(guild.id)},
    )
    await dev.start()
    try:
        app_id = standin.world.application.id
        (put,) = standin.find_requests("PUT", rf"^/applications/{app_id}/guilds/{guild.id}/")
        assert {c["name"] for c in put.json} == {*EXPECTED_TREE, "Hide as spoiler"}
        assert (
            f"synced {len(EXPECTED_TREE) + 1} command(s) (guild:{guild.id})" in dev.last_run_output
        )
        served = Scenario(standin, dev)
        handle = await served.slash("review", episode=FINALE)
        assert handle.record.payload["data"]["guild_id"] == str(guild.id)
        assert (await handle.reply()).embeds
        with pytest.raises(ScenarioError, match="not offered in a DM"):
            await served.slash("embargo", "settings", as_user="mod", in_channel="dm")
        served.assert_clean()
    finally:
        assert await dev.stop() == 0


async def test_a_refused_message_content_intent_is_one_log_line_and_no_guard(
    scenario: Scenario, content: E2EContent
) -> None:
    # The application has no privileged intents granted: Discord closes the gateway with 4014.
    standin = scenario.standin
    assert not standin.world.application.privileged_intents & MESSAGE_CONTENT_INTENT
    sessions = len(standin.sessions)
    guarded = BotProcess(
        standin,
        workdir=scenario.bot.workdir,
        content_dir=content.root,
        env={"MESSAGE_GUARD": "on"},
    )
    await guarded.start(require_commands=False)
    try:
        output = guarded.output
        assert output.count("Discord refused the Message Content intent") == 1, output
        assert "Carrying on without the spoiler guard" in output
        assert "Traceback" not in output
        # Asked for once (refused), then connected without it.
        asked = [
            s.identify["intents"] & MESSAGE_CONTENT_INTENT
            for s in standin.sessions[sessions:]
            if s.identify is not None
        ]
        assert asked[-1] == 0
        served = Scenario(standin, guarded)
        handle = await served.slash("embargo", "guard", as_user="mod", options={"mode": "flag"})
        assert "MESSAGE_GUARD=on" in (await handle.reply()).content
    finally:
        assert await guarded.stop() == 0
