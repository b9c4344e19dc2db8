"""The release fan-out benchmark keeps working: its own code on a dozen servers, in the
default test run (``python -m tests.benchmarks.discussion`` itself runs on demand)."""

from tests.benchmarks.discussion import measure


async def test_the_fan_out_benchmark_runs_and_counts_what_it_sent(tmp_path):
    result = await measure(12, 50, tmp_path, rest_s=4.0)
    assert result["requests"] == 3 * 12  # post, thread, first message per server; no retries
    assert result["429s"] == 0
    assert result["review_samples_rest"] > 0
    assert result["review_samples_fanout"] > 0
