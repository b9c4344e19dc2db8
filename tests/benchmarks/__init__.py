"""Speed and memory of Embargo at community scale: ``python -m tests.benchmarks [--quick]``.

Not part of the default test run (``pyproject.toml`` excludes this directory from pytest's
collection). One run builds a deterministic synthetic workload (a catalogue of content files,
guild settings, votes), measures content sync, per-command handler time through discord.py's
own app-command dispatch, vote ingestion and peak memory, checks that every measured answer
was correct, and prints a table (``--json FILE`` also writes the figures).

Modules: ``workload`` (scales and generators), ``content`` (sync timings), ``commands``
(handler latency through the test harness), ``ingest`` (concurrent votes and recount),
``memory`` (a child process measuring peak RSS), ``report`` (targets, table, JSON).

``guard`` runs on its own (``python -m tests.benchmarks.guard [--quick]``): the spoiler guard's
term matcher at 2,000 servers, against the naive each-term-in-turn matcher in the same run.
"""
