"""The README's "Running it for real" backup and restore, followed line by line.

The commands run as written, with what this machine can't do swapped for its equivalent:
``/opt/embargo`` is a temporary folder, ``sudo -u embargo`` is dropped (we are that user), and
``systemctl stop/start embargo`` closes and reopens the storage a running bot would hold.
"""

import os
import re
import subprocess
import sys
from datetime import UTC, datetime

from bot.config import PROJECT_DIR
from bot.storage import Storage

README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
EPISODE = "black-mirror/s07e06"


def section() -> str:
    start = README.index("## Running it for real")
    return README[start : README.index("\n## ", start + 1)]


def block_after(marker: str) -> list[str]:
    text = section()
    block = re.search(r"```sh\n(.*?)```", text[text.index(marker) :], re.DOTALL)
    assert block, f"no commands after {marker!r}"
    return block[1].strip().splitlines()


def shell(line: str, root, env) -> None:
    line = line.replace("sudo -u embargo ", "").replace("/opt/embargo", str(root))
    line = line.replace(".venv/bin/python", sys.executable)
    assert "sudo" not in line, line
    result = subprocess.run(
        ["bash", "-c", line], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, f"{line}\n{result.stdout}{result.stderr}"


async def test_backup_then_restore_as_the_readme_says(tmp_path):
    root = tmp_path / "opt-embargo"
    (root / "data").mkdir(parents=True)
    database = root / "data" / "embargo.db"
    env = {k: v for k, v in os.environ.items() if k not in {"DISCORD_TOKEN", "LOG_FILE"}}
    env.update(DISCORD_TOKEN="", DATABASE_URL=f"sqlite:///{database}")

    # The bot is running and members have voted.
    bot = await Storage.open(env["DATABASE_URL"], root)
    await bot.cast_vote(1, 1, EPISODE, 9, now=NOW)
    await bot.cast_vote(1, 2, EPISODE, 7, now=NOW)

    backup_lines = block_after("**Backups**")
    assert any("python -m bot backup backups/" in line for line in backup_lines)
    for line in backup_lines:
        shell(line, root, env)
    (made,) = (root / "backups").iterdir()

    # Later, a vote that the backup doesn't hold, then a crash that leaves a -wal behind.
    await bot.cast_vote(1, 3, EPISODE, 1, now=NOW)
    await bot.close()
    (root / "data" / "embargo.db-wal").write_bytes(b"stale")

    restore_lines = block_after("**Restore**")
    assert restore_lines[0] == "sudo systemctl stop embargo"
    assert restore_lines[-1] == "sudo systemctl start embargo"
    example = re.search(r"backups/(embargo-\d{8}-\d{6}\.db)", "\n".join(restore_lines))
    assert example, "the restore example names no backup file"
    for line in restore_lines[1:-1]:
        shell(line.replace(example[1], made.name), root, env)

    assert not (root / "data" / "embargo.db-wal").exists()
    restarted = await Storage.open(env["DATABASE_URL"], root)
    try:
        scores = {
            user: [vote.score for vote in await restarted.member_votes(1, user)]
            for user in (1, 2, 3)
        }
        assert scores == {1: [9], 2: [7], 3: []}  # user 3 voted after the backup
        assert await restarted.check_vote_totals() == []
    finally:
        await restarted.close()


def test_the_upgrade_steps_back_up_first():
    lines = block_after("**Upgrades:**")
    assert "python -m bot backup" in lines[0]
    assert lines.index("sudo systemctl stop embargo") < lines.index("sudo systemctl start embargo")
    assert "migrations run at" in " ".join(section().split())
    assert "newer than the code" in section()
