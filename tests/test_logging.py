"""Logging: the console plus an optional rotating LOG_FILE, no voice warnings, no token."""

import logging
import os
import re
import subprocess
import sys

import pytest

from bot import config
from bot.config import PROJECT_DIR, ConfigError, RedactingFormatter, configure_logging
from bot.config import load_settings as load

from .e2e.scenario import BOT_ENV_KEYS

TOKEN = "MTIzNDU2Nzg5.abcdef.SECRET-token-value"


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if isinstance(h.formatter, RedactingFormatter)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


def test_log_file_setting():
    assert load({}).log_file is None
    assert load({"LOG_FILE": "  "}).log_file is None
    assert load({"LOG_FILE": "logs/embargo.log"}).log_file == PROJECT_DIR / "logs/embargo.log"
    assert load({"LOG_FILE": "/var/log/embargo.log"}).log_file.as_posix() == (
        "/var/log/embargo.log"
    )


def test_every_env_example_setting_is_isolated_in_end_to_end_runs():
    example = (PROJECT_DIR / ".env.example").read_text(encoding="utf-8")
    keys = re.findall(r"^([A-Z_]+)=", example, re.MULTILINE)
    assert "LOG_FILE" in keys
    assert set(keys) == set(BOT_ENV_KEYS)


def test_the_log_goes_to_the_console_and_the_file(tmp_path, capsys):
    log_file = tmp_path / "logs" / "embargo.log"  # the folder is created
    configure_logging("INFO", log_file=log_file)
    logging.getLogger("bot.test").info("ready as Embargo")
    logging.getLogger("bot.test").debug("below the level")
    for handler in logging.getLogger().handlers:
        handler.flush()
    written = log_file.read_text(encoding="utf-8")
    assert re.search(r"INFO\s+bot\.test: ready as Embargo", written)
    assert "below the level" not in written
    assert "ready as Embargo" in capsys.readouterr().err


def test_configuring_again_replaces_the_handlers(tmp_path):
    configure_logging("INFO", log_file=tmp_path / "a.log")
    configure_logging("INFO", log_file=tmp_path / "b.log")
    ours = [h for h in logging.getLogger().handlers if isinstance(h.formatter, RedactingFormatter)]
    assert len(ours) == 2  # the console and b.log, not a.log as well
    logging.getLogger("bot.test").warning("once")
    assert (tmp_path / "a.log").read_text(encoding="utf-8") == ""
    assert (tmp_path / "b.log").read_text(encoding="utf-8").count("once") == 1


def test_the_file_rotates_and_keeps_a_bounded_number(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "LOG_FILE_MAX_BYTES", 2000)
    log_file = tmp_path / "embargo.log"
    configure_logging("INFO", log_file=log_file)
    log = logging.getLogger("bot.test")
    for number in range(400):
        log.info("line %04d %s", number, "x" * 40)
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["embargo.log", *[f"embargo.log.{n}" for n in range(1, 6)]]
    assert all(path.stat().st_size <= 2000 for path in tmp_path.iterdir())
    # The newest lines are in the live file, the oldest kept ones in .5.
    assert "line 0399" in log_file.read_text(encoding="utf-8")
    oldest = (tmp_path / "embargo.log.5").read_text(encoding="utf-8")
    assert "line 0000" not in oldest
    assert "line 03" in oldest or "line 02" in oldest


def test_an_unwritable_log_file_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="LOG_FILE"):
        configure_logging("INFO", log_file=blocker / "embargo.log")


def test_an_unwritable_log_file_stops_the_bot_with_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in BOT_ENV_KEYS}
    env.update(
        DISCORD_TOKEN=TOKEN,
        DATABASE_URL=f"sqlite:///{tmp_path}/x.db",
        LOG_FILE=str(blocker / "embargo.log"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("embargo: LOG_FILE=")
    assert not (tmp_path / "x.db").exists()  # nothing was started


def test_the_token_is_redacted_from_messages_and_tracebacks(tmp_path):
    log_file = tmp_path / "embargo.log"
    configure_logging("INFO", log_file=log_file, secrets=[TOKEN, ""])
    log = logging.getLogger("bot.test")
    log.info("connecting with %s", TOKEN)
    try:
        raise RuntimeError(f"bad header Authorization: Bot {TOKEN}")
    except RuntimeError:
        log.exception("request failed")
    written = log_file.read_text(encoding="utf-8")
    assert "SECRET" not in written
    assert written.count("[redacted]") == 2  # the message and the exception's text
    assert "Traceback" in written


def test_discord_voice_warnings_are_silenced_and_others_kept(tmp_path):
    log_file = tmp_path / "embargo.log"
    configure_logging("INFO", log_file=log_file)
    voice = logging.getLogger("discord.client")
    voice.warning("PyNaCl is not installed, voice will NOT be supported")
    voice.warning("davey is not installed, voice will NOT be supported")
    # One line per login attempt is bot.connect's, not discord.py's as well.
    voice.info("logging in using static token")
    voice.warning("something else")
    written = log_file.read_text(encoding="utf-8")
    assert "not installed" not in written
    assert "static token" not in written
    assert "something else" in written


PLAIN = "import logging; logging.basicConfig(); "
OURS = "from bot.config import configure_logging; configure_logging('INFO'); "
MAKE_CLIENT = "import discord; discord.Client(intents=discord.Intents.none())"


@pytest.mark.parametrize(("prefix", "warned"), [(PLAIN, True), (OURS, False)])
def test_a_real_discord_client_warns_about_voice_only_without_our_logging(prefix, warned):
    # Without PyNaCl and davey installed discord.py warns when a client is built; the first
    # case proves this environment still triggers the warnings the second one silences.
    result = subprocess.run(
        [sys.executable, "-c", prefix + MAKE_CLIENT],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=60,
        check=True,
    )
    assert ("PyNaCl is not installed" in result.stderr) is warned
    assert ("davey is not installed" in result.stderr) is warned
