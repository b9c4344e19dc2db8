"""Embargo scaled out as the README's *Scale out* says, with the real ``python -m bot``.

The README's commands are run as written (its example database URL swapped for the test
server's): an SQLite database with votes in it is moved to PostgreSQL and checked, and the
example of two processes of two shards each starts and serves its four shards. Three processes
then serve the moved database by the README's rule (``SHARD_COUNT=3``, ``SHARD_IDS=0``/``1``/
``2``), started together, one Discord stand-in routing each server to its shard's process: one
of them leads, members vote in every process, and the pooled ranking, a moderator's setting,
release posts and the leader killed with ``kill -9`` in a storm of votes are checked against
what the members were told and what PostgreSQL stored.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shlex
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from bot.storage import Storage
from tests.content_factory import episode_table, show_toml, write
from tests.postgres_server import PostgresServer
from tests.support.standin import DiscordStandIn
from tests.support.standin.rest import StoredMessage
from tests.support.standin.world import Guild, World, default_world

from .cluster import Cluster, Node
from .embargo_content import E2EContent
from .scenario import REPO_ROOT, InteractionHandle, Scenario

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
SHOW = tomllib.loads((REPO_ROOT / "data/shows/black-mirror.toml").read_text(encoding="utf-8"))
# Every numbered episode of the shipped show is out (its specials are left out).
RELEASED = [
    f"black-mirror/s{e['season']:02d}e{e['number']:02d}" for e in SHOW["episodes"] if e["season"]
]
SEASON_7 = [key for key in RELEASED if key.startswith("black-mirror/s07")]
STORM_EPISODES = [key for key in RELEASED if not key.startswith("black-mirror/s07")][:10]
SHARD_COUNT = 3
STORM_VOTERS_PER_SERVER = 10  # x 10 episodes x 3 servers: 300 votes
SETTING_DEADLINE_S = 1.0
# Time for the leader to load a new show before it comes out.
RELEASE_AFTER = timedelta(seconds=4)
LEADING = "leading the shared work"
FILES_RELOADED = "content reload (files changed): 1 file(s) loaded"
# The README's example database, replaced by the test server's wherever the README names it.
README_DATABASE = re.compile(r"postgresql://\S+")

VoteKey = tuple[int, int, str]  # guild id, user id, episode key


# -- the README's commands ---------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One README command line: ``NAME=value ... python -m bot ...``."""

    env: dict[str, str]
    argv: list[str]


def scale_out_section() -> str:
    start = README.index("## Scale out")
    return README[start : README.index("\n## ", start + 1)]


def readme_commands(after: str) -> list[Command]:
    """The commands of the first ``sh`` block after ``after`` in *Scale out*, comments left out."""
    text = scale_out_section()
    block = re.search(r"```sh\n(.*?)```", text[text.index(after) :], re.DOTALL)
    assert block, f"no commands after {after!r} in the README's Scale out"
    commands = []
    for line in block[1].splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        words = shlex.split(line)
        env = {}
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        assert words[:3] == ["python", "-m", "bot"], line
        commands.append(Command(env, [sys.executable, *words[1:]]))
    return commands


def run(command: Command, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``command`` from the project directory with ``env`` as the operator's environment
    (their ``.env``) and the README's own variables on top."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("EMBARGO_", "PYTEST_"))}
    full_env.update(DISCORD_TOKEN="", LOG_FILE="", LOG_LEVEL="WARNING")
    full_env.update(env)
    full_env.update(command.env)
    return subprocess.run(
        command.argv,
        capture_output=True,
        text=True,
        env=full_env,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )


def on(database_url: str, command: Command) -> Command:
    """``command`` with the README's example database replaced by ``database_url``."""
    return Command(
        {k: README_DATABASE.sub(database_url, v) for k, v in command.env.items()},
        [README_DATABASE.sub(database_url, word) for word in command.argv],
    )


def readme_processes(database_url: str) -> list[Command]:
    """The README's several-processes example, on ``database_url``."""
    return [on(database_url, c) for c in readme_commands("**Several processes.**")]


def shard_ids(text: str) -> list[int]:
    """``0-1`` -> [0, 1]; ``4,5`` -> [4, 5]."""
    ids: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        ids += range(int(first), int(last or first) + 1)
    return ids


def processes_like_the_readme(database_url: str, layout: Sequence[str]) -> list[Command]:
    """The README's process command with ``SHARD_IDS`` from ``layout`` (one process each) and
    ``SHARD_COUNT`` the number of shards they name: the README's rule for any layout."""
    template = readme_processes(database_url)[0]
    count = sum(len(shard_ids(ids)) for ids in layout)
    return [
        Command({**template.env, "SHARD_COUNT": str(count), "SHARD_IDS": ids}, template.argv)
        for ids in layout
    ]


# -- the servers and the votes -------------------------------------------------------------


@dataclass
class Servers:
    """One server per shard: ``guilds[k]`` is on shard ``k``. Each has the default server's
    members (``mod`` moderates every one of them)."""

    world: World
    guilds: list[Guild]

    def voters(self, shard: int, prefix: str, count: int) -> list[str]:
        names = [f"{prefix}{shard}-{i}" for i in range(count)]
        for name in names:
            if name not in self.world.users:
                self.world.add_user(name, guild=self.guilds[shard])
        return names


@pytest.fixture(scope="module")
def servers() -> Servers:
    world = default_world()
    guilds = [
        world.add_guild(f"Shard {shard} Server", shard=(shard, SHARD_COUNT))
        for shard in range(SHARD_COUNT)
    ]
    return Servers(world, guilds)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def standin(servers: Servers) -> AsyncIterator[DiscordStandIn]:
    # A session-start bucket per shard (Discord gives big bots 16 or more): the processes log
    # in together instead of 5 s apart.
    async with DiscordStandIn(servers.world, max_concurrency=SHARD_COUNT) as server:
        yield server


@pytest.fixture(scope="module")
def ledger() -> dict[VoteKey, int]:
    """Every vote a member was told is saved: (server, member, episode) -> score."""
    return {}


@pytest.fixture(scope="module")
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@dataclass(frozen=True)
class Migration:
    copied: subprocess.CompletedProcess[str]
    checked: subprocess.CompletedProcess[str]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def migration(
    servers: Servers,
    ledger: dict[VoteKey, int],
    postgres_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Migration:
    """A one-process Embargo's SQLite database, with votes in every server, moved to
    PostgreSQL with the README's commands."""
    folder = tmp_path_factory.mktemp("sqlite")
    sqlite_url = f"sqlite:///{folder / 'embargo.db'}"
    storage = await Storage.open(sqlite_url, folder)
    try:
        for shard, guild in enumerate(servers.guilds):
            for user_id in (1000 + shard, 2000 + shard):
                for n, key in enumerate(SEASON_7):
                    score = 3 + (user_id + n) % 8
                    await storage.cast_vote(guild.id, user_id, key, score, now=datetime.now(UTC))
                    ledger[(guild.id, user_id, key)] = score
    finally:
        await storage.close()
    copy, check = readme_commands("Moving an SQLite database to PostgreSQL")
    assert copy.argv[3:4] == ["migrate-to"], copy
    assert check.argv[3:] == ["check", "--votes"], check
    copied = await asyncio.to_thread(run, on(postgres_database, copy), {"DATABASE_URL": sqlite_url})
    checked = await asyncio.to_thread(run, on(postgres_database, check), {})
    return Migration(copied, checked)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(
    standin: DiscordStandIn,
    content: E2EContent,
    migration: Migration,
    postgres_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Cluster]:
    if migration.copied.returncode != 0:
        pytest.fail(f"the README's migrate-to failed:\n{migration.copied.stderr}")
    processes = processes_like_the_readme(
        postgres_database, [str(shard) for shard in range(SHARD_COUNT)]
    )
    running = Cluster(
        standin,
        workdir=tmp_path_factory.mktemp("cluster"),
        content_dir=content.root,
        envs=[process.env for process in processes],
        argv=processes[0].argv,
    )
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


async def stored_votes(database_url: str) -> dict[VoteKey, int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT guild_id, user_id, episode_key, score FROM votes")
    finally:
        await conn.close()
    return {(r["guild_id"], r["user_id"], r["episode_key"]): r["score"] for r in rows}


def saved(handle: InteractionHandle) -> bool:
    """The member was told their vote is stored."""
    record = handle.record
    if not record.original_ready or record.original_id is None:
        return False
    content = handle.scenario.message(record.original_id).content
    return content.startswith(("Saved:", "Your vote for"))


async def vote(
    scenario: Scenario,
    ledger: dict[VoteKey, int],
    guild: Guild,
    user: str,
    key: str,
    score: int,
) -> None:
    handle = await scenario.slash(
        "vote", as_user=user, in_channel=guild.channel("general"), episode=key, score=score
    )
    reply = await handle.reply()
    assert reply.ephemeral
    assert reply.content.startswith("Saved:"), reply.content
    ledger[(guild.id, scenario.user(user).id, key)] = score


async def global_ranking(scenario: Scenario, guild: Guild, user: str) -> str:
    handle = await scenario.slash(
        "rankings",
        as_user=user,
        in_channel=guild.channel("general"),
        show="black-mirror",
        season=7,
        scope="global",
    )
    return (await handle.reply()).text()


def leader(cluster: Cluster) -> Node:
    """The process that leads the shared work."""
    (leading,) = [node for node in cluster.nodes if LEADING in node.bot.last_run_output]
    return leading


# -- the tests, in file order --------------------------------------------------------------------


async def test_the_readme_moves_an_sqlite_database_to_postgresql(
    migration: Migration, ledger: dict[VoteKey, int], postgres_database: str
) -> None:
    assert migration.copied.returncode == 0, migration.copied.stderr
    assert migration.copied.stdout.startswith("ok: copied"), migration.copied.stdout
    assert f"{len(ledger)} of them votes" in migration.copied.stdout
    assert migration.checked.returncode == 0, migration.checked.stderr
    assert migration.checked.stdout.startswith("ok:"), migration.checked.stdout
    assert await stored_votes(postgres_database) == ledger


async def test_the_readme_example_runs_four_shards_in_two_processes(
    standin: DiscordStandIn,
    content: E2EContent,
    postgres_server: PostgresServer,
    tmp_path: Path,
) -> None:
    database_url = postgres_server.create_database()
    processes = readme_processes(database_url)
    assert len(processes) == 2
    assert {p.env["DATABASE_URL"] for p in processes} == {database_url}
    assert {p.env["SHARD_COUNT"] for p in processes} == {"4"}
    layout = [shard_ids(p.env["SHARD_IDS"]) for p in processes]
    assert sorted(i for ids in layout for i in ids) == [0, 1, 2, 3]
    assert processes[0].argv == processes[1].argv
    assert processes_like_the_readme(database_url, ["0-1", "2-3"]) == processes

    example = Cluster(
        standin,
        workdir=tmp_path,
        content_dir=content.root,
        envs=[p.env for p in processes],
        argv=processes[0].argv,
    )
    standin.max_concurrency = 4  # a bucket per shard: no 5 s turns between their logins
    try:
        await example.start()
        sessions = standin.sessions_by_shard
        assert sorted(sessions) == [0, 1, 2, 3]
        for node, ids in zip(example.nodes, layout, strict=True):
            assert node.shard_ids == tuple(ids)
            for shard in ids:
                identify = sessions[shard].identify
                assert identify is not None
                assert identify["shard"] == [shard, 4]
        assert sum(LEADING in node.bot.output for node in example.nodes) == 1
        assert example.command_syncs() == 1
    finally:
        await example.stop()
        standin.max_concurrency = SHARD_COUNT
        postgres_server.drop_database(database_url)


async def test_each_process_serves_its_own_shard_and_one_leads(
    cluster: Cluster, servers: Servers
) -> None:
    standin = cluster.standin
    for shard, node in enumerate(cluster.nodes):
        assert node.shard_ids == (shard,)
        session = standin.sessions_by_shard[shard]
        assert session.identify is not None
        assert session.identify["shard"] == [shard, SHARD_COUNT]
        created = [int(e.data["id"]) for e in session.events if e.name == "GUILD_CREATE"]
        assert servers.guilds[shard].id in created
        assert all(standin.shard_of_guild(guild_id) == shard for guild_id in created)
    # Started together, yet the content was loaded and the commands registered once: by the
    # one process that leads.
    leading = leader(cluster)
    assert "file(s) loaded" in leading.bot.output
    for node in cluster.nodes:
        if node is not leading:
            assert "file(s) loaded" not in node.bot.output, node.name
    assert cluster.command_syncs() == 1


async def test_global_rankings_agree_in_every_process_after_votes_in_each(
    cluster: Cluster, servers: Servers, ledger: dict[VoteKey, int]
) -> None:
    # Every process reads the pooled totals (and caches them) before the votes.
    migrated = [
        await global_ranking(cluster.scenario(guild), guild, "mod") for guild in servers.guilds
    ]
    assert all(f"{len(ledger)} votes across all servers" in text for text in migrated), migrated

    for shard, guild in enumerate(servers.guilds):
        scenario = cluster.scenario(guild)
        for n, user in enumerate(servers.voters(shard, "fan", 2)):
            for m, key in enumerate(SEASON_7):
                await vote(scenario, ledger, guild, user, key, 1 + (shard + n + m) % 10)

    rankings = [
        await global_ranking(cluster.scenario(guild), guild, "mod") for guild in servers.guilds
    ]
    assert rankings[0] == rankings[1] == rankings[2], "\n---\n".join(rankings)
    assert f"{len(ledger)} votes across all servers" in rankings[0], rankings[0]
    for key in SEASON_7:
        scores = [score for (_, _, k), score in ledger.items() if k == key]
        row = re.search(rf"`S7E{int(key[-2:])}` .* · (\d+) votes · avg (\d+\.\d)", rankings[0])
        assert row, (key, rankings[0])
        assert int(row[1]) == len(scores)
        assert abs(float(row[2]) - sum(scores) / len(scores)) <= 0.05 + 1e-9  # one decimal


async def settings_value(cluster: Cluster, node: Node, guild: Guild, name: str) -> str:
    scenario = cluster.scenario(guild)
    payload = scenario.build_slash(
        "embargo", "settings", as_user="mod", in_channel=guild.channel("general")
    )
    (embed,) = (await (await cluster.send_to(node, scenario, payload)).reply()).embeds
    return next(f["value"] for f in embed["fields"] if f["name"] == name)


async def test_a_setting_changed_through_one_process_is_in_force_in_the_others_within_a_second(
    cluster: Cluster, servers: Servers
) -> None:
    """Discord sends a server's interactions to its shard's process only; to read what every
    process holds for the server, the test sends ``/embargo settings`` to each of them."""
    guild = servers.guilds[0]
    serving = cluster.node_of(guild)
    others = [node for node in cluster.nodes if node is not serving]
    # Every process has read (and cached) the server's settings before the change.
    for node in cluster.nodes:
        assert await settings_value(cluster, node, guild, "Minimum votes (m)") == "5"

    changed = await cluster.scenario(guild).slash(
        "embargo", "min-votes", as_user="mod", in_channel=guild.channel("general"), count=2
    )
    assert (await changed.reply()).content == "Minimum votes: **5** → **2**. Saved."
    told_at = time.monotonic()
    delays = []
    for node in others:
        while await settings_value(cluster, node, guild, "Minimum votes (m)") != "2":
            assert time.monotonic() - told_at < SETTING_DEADLINE_S, node.name
        delays.append(time.monotonic() - told_at)
    print(f"setting in force in the other processes {max(delays) * 1000:.0f} ms after the reply")


def release_posts(standin: DiscordStandIn, guild: Guild) -> list[StoredMessage]:
    return [
        m for m in standin.channel_messages(guild.channel("general").id) if m.interaction_id is None
    ]


async def test_release_posts_turned_on_through_one_process_are_posted_by_the_leader(
    cluster: Cluster, servers: Servers, content: E2EContent
) -> None:
    """Release posts are the leader's work, for every server: a moderator of a server another
    process serves turns them on a second before an episode comes out, and the leader posts
    it there when it does."""
    standin = cluster.standin
    leading = leader(cluster)
    guild = next(g for g in servers.guilds if cluster.node_of(g) is not leading)
    scenario = cluster.scenario(guild)
    reloads = leading.bot.output.count(FILES_RELOADED)
    release = datetime.now(UTC).replace(microsecond=0) + RELEASE_AFTER
    episodes = [episode_table(1, 1, "Opening Night", released=release)]
    write(content.root, "shows/release-day.toml", show_toml(title="Release Day", episodes=episodes))
    await scenario.wait(
        lambda: leading.bot.output.count(FILES_RELOADED) > reloads,
        what="the leader to load the new show",
        within=RELEASE_AFTER.total_seconds(),
    )
    await asyncio.sleep((release - datetime.now(UTC)).total_seconds() - SETTING_DEADLINE_S)
    handle = await scenario.slash(
        "embargo", "announce", as_user="mod", in_channel=guild.channel("general"), channel="general"
    )
    reply = await handle.reply()
    assert reply.content.startswith("Release posts:"), reply.content
    told = datetime.now(UTC)
    assert told < release, "the change came after the release: the test proves nothing"
    await scenario.wait(
        lambda: release_posts(standin, guild),
        what="the release post",
        within=(release - datetime.now(UTC)).total_seconds() + SETTING_DEADLINE_S,
    )
    (post,) = release_posts(standin, guild)
    assert "Release Day S1E1" in post.payload["content"]


@dataclass
class StormVote:
    shard: int
    user: str
    key: VoteKey
    score: int
    handle: InteractionHandle


def server_log(postgres_server: PostgresServer) -> str:
    return (postgres_server.folder / "server.log").read_text(errors="replace")


async def test_kill_9_in_a_storm_of_votes_loses_no_vote_a_member_was_told_is_saved(
    cluster: Cluster,
    servers: Servers,
    ledger: dict[VoteKey, int],
    postgres_server: PostgresServer,
    postgres_database: str,
) -> None:
    standin = cluster.standin
    log_before = len(server_log(postgres_server))
    # The leader: its shard's members lose their process and every process its shared work.
    victim = leader(cluster)
    (victim_shard,) = victim.shard_ids
    scenarios = [cluster.scenario(guild) for guild in servers.guilds]
    rng = random.Random(14)
    planned = []
    for shard, guild in enumerate(servers.guilds):
        for user in servers.voters(shard, "storm", STORM_VOTERS_PER_SERVER):
            for key in STORM_EPISODES:
                score = rng.randint(1, 10)
                payload = scenarios[shard].build_slash(
                    "vote",
                    as_user=user,
                    in_channel=guild.channel("general"),
                    episode=key,
                    score=score,
                )
                key_of = (guild.id, servers.world.user(user).id, key)
                planned.append((shard, user, key_of, score, payload))
    rng.shuffle(planned)  # every shard's votes arrive interleaved
    storm: list[StormVote] = []

    def victim_saved() -> int:
        return sum(saved(v.handle) for v in storm if v.shard == victim_shard)

    async def send_storm() -> None:
        for n, (shard, user, key, score, payload) in enumerate(planned):
            handle = await cluster.send(scenarios[shard], payload)
            storm.append(StormVote(shard, user, key, score, handle))
            if n % 10 == 9:
                await asyncio.sleep(0.02)  # a storm, not one burst: the kill lands inside it

    async def kill_victim_midway() -> float:
        victim_votes = sum(1 for shard, *_ in planned if shard == victim_shard)
        await standin.wait_for(
            lambda: victim_saved() >= victim_votes // 3,
            within=20,
            what="a third of the victim's votes saved",
        )
        await cluster.kill(victim)
        return time.monotonic()

    started = time.monotonic()
    _, killed_at = await asyncio.gather(send_storm(), kill_victim_midway())
    sent_after_kill = sum(1 for v in storm if v.handle.record.dispatched_at > killed_at)
    survivors = [v for v in storm if v.shard != victim_shard]
    await standin.wait_for(
        lambda: all(saved(v.handle) or v.handle.record.rejected for v in survivors),
        within=20,
        what="an answer to every vote sent to the processes still running",
    )
    storm_s = time.monotonic() - started
    unsaved = [v for v in survivors if not saved(v.handle)]
    assert not unsaved, [v.handle.record.rejected for v in unsaved[:3]]

    await standin.wait_for(
        lambda: any(
            LEADING in node.bot.last_run_output for node in cluster.nodes if node is not victim
        ),
        within=10,
        what="another process to take the lead",
    )
    takeover_s = time.monotonic() - killed_at
    await cluster.start_node(victim)
    restart_s = time.monotonic() - killed_at
    assert LEADING not in victim.bot.last_run_output  # it follows the new leader
    stored = await stored_votes(postgres_database)
    told = [v for v in storm if saved(v.handle)]
    untold = [v for v in storm if not saved(v.handle)]
    assert [v.key for v in told if stored.get(v.key) != v.score] == []
    # A vote nobody answered is stored as cast or not at all.
    assert [v.key for v in untold if stored.get(v.key, v.score) != v.score] == []
    stored_untold = sum(1 for v in untold if v.key in stored)
    print(
        f"storm of {len(storm)} votes: {len(told)} saved "
        f"({victim_saved()} by the killed process before it died), {len(untold)} unanswered "
        f"({stored_untold} of them stored anyway, {sent_after_kill} sent after the kill); "
        f"{storm_s:.2f} s until the others had answered everything, "
        f"another process led {takeover_s:.2f} s and the killed one was back "
        f"{restart_s:.2f} s after the kill"
    )
    assert victim_saved() > 0
    assert untold, "the kill came after the storm: nothing was in flight"

    # Members who got no answer vote again, through the restarted process.
    for v in untold:
        again = await scenarios[v.shard].slash(
            "vote",
            as_user=v.user,
            in_channel=servers.guilds[v.shard].channel("general"),
            episode=v.key[2],
            score=v.score,
        )
        reply = await again.reply()
        assert saved(again), reply.content
    ledger.update({v.key: v.score for v in storm})
    assert await stored_votes(postgres_database) == ledger

    (check,) = [
        c for c in readme_commands("Moving an SQLite database to PostgreSQL") if "check" in c.argv
    ]
    checked = await asyncio.to_thread(run, on(postgres_database, check), {})
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("ok:"), checked.stdout

    assert cluster.command_syncs() == 1  # the new leader found the commands unchanged
    assert "deadlock" not in cluster.output.lower()
    assert "deadlock detected" not in server_log(postgres_server)[log_before:]
