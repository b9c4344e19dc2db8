"""The guard's benchmark keeps working: its own steps on a tiny workload, in the default run.

``python -m tests.benchmarks.guard`` runs on demand; this builds the same kind of world (shows,
servers with differing windows, chat messages with terms in and out of spoiler tags), checks
every answer against the naive matcher and times a few messages. It times nothing that matters.
"""

import dataclasses

from tests.benchmarks import guard
from tests.benchmarks.checks import Checks

SMOKE = dataclasses.replace(
    guard.QUICK,
    name="smoke",
    servers=40,
    shows=6,
    terms_per_episode=5,
    messages=3000,  # enough for a few dozen terms in plain sight and in tags
    naive_messages=3000,
    runs=1,
)


def test_the_guard_benchmark_runs_on_a_tiny_workload_and_checks_every_answer():
    world = guard.generate(SMOKE)
    plain = [message for message in world.messages if message.must_match]
    tagged = [m for m in world.messages if "||" in m.text and not m.must_match]
    assert plain
    assert tagged

    checks = Checks()
    figures = guard.measure(world, SMOKE, checks)

    assert checks.failures == []
    # Three answer checks per message (term found, nothing inactive, same as naive).
    assert checks.made == 3 * SMOKE.messages
    assert figures.hits >= len(plain)
    assert figures.active_sets > 1  # servers' differing windows make differing sets
    assert figures.messages_per_s > 0
    assert figures.naive_per_s > 0
    assert figures.p99_us >= figures.p50_us > 0
    assert "ahocorasick-rs (chosen)" in figures.engines_us
    assert "messages/s" in guard.table(figures, SMOKE)


def test_the_naive_baseline_really_checks_each_term_and_agrees_on_tags():
    naive = guard.NaiveMatcher({"a/s01e01": ["Nanette", "ship explodes"], "b/s01e01": ["Nanette"]})
    assert naive.match("so Nanette!") == {"a/s01e01", "b/s01e01"}
    assert naive.match("the SHIP explodes") == {"a/s01e01"}
    assert naive.match("||Nanette|| and the ship explodes") == {"a/s01e01"}
    assert naive.match("Nanettes") == frozenset()
