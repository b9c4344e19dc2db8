import pytest

from bot.config import PROJECT_DIR, ConfigError, load_settings
from bot.storage import StorageError
from bot.storage.sqlite.database import sqlite_path_from_url


def test_defaults_resolve_against_the_project_directory():
    settings = load_settings({})
    assert settings.database_url == "sqlite:///data/embargo.db"
    assert settings.content_dir == PROJECT_DIR / "data"
    assert settings.log_level == "INFO"
    assert settings.dev_guild_id is None
    assert settings.discord_token is None


def test_missing_token_says_what_to_put_in_env():
    with pytest.raises(ConfigError) as info:
        load_settings({}).require_token()
    assert "DISCORD_TOKEN" in str(info.value)
    assert ".env" in str(info.value)


def test_token_never_appears_in_repr():
    settings = load_settings({"DISCORD_TOKEN": "abc.def.SECRET"})
    assert settings.require_token() == "abc.def.SECRET"
    assert "SECRET" not in repr(settings)
    assert "SECRET" not in str(settings)


def test_a_database_password_never_appears_in_repr_or_errors(tmp_path):
    url = "postgresql://embargo:PASSWORD@db.example/embargo"
    settings = load_settings({"DATABASE_URL": url})
    assert settings.database_url == url
    assert "PASSWORD" not in repr(settings)
    with pytest.raises(StorageError) as refused:
        sqlite_path_from_url("mysql://embargo:PASSWORD@db.example/embargo", tmp_path)
    assert "PASSWORD" not in str(refused.value)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
        ({"DEV_GUILD_ID": "my server"}, "DEV_GUILD_ID"),
        ({"DISCORD_TOKEN": "two words"}, "spaces"),
    ],
)
def test_bad_values_are_explained(env, needle):
    with pytest.raises(ConfigError, match=needle):
        load_settings(env)


def test_values_are_read(tmp_path):
    settings = load_settings(
        {
            "CONTENT_DIR": str(tmp_path),
            "DEV_GUILD_ID": "123",
            "LOG_LEVEL": "debug",
            "DATABASE_URL": "sqlite:////tmp/x.db",
        }
    )
    assert settings.content_dir == tmp_path
    assert settings.dev_guild_id == 123
    assert settings.log_level == "DEBUG"
    assert settings.database_url == "sqlite:////tmp/x.db"


def test_no_shard_settings_leave_sharding_to_discord():
    settings = load_settings({"SHARD_COUNT": " ", "SHARD_IDS": ""})
    assert settings.shard_count is None
    assert settings.shard_ids is None


@pytest.mark.parametrize(
    ("count", "ids", "expected"),
    [
        ("4", "", None),
        ("4", "0-3", (0, 1, 2, 3)),
        ("6", "4,5", (4, 5)),
        ("4", "0-1,3", (0, 1, 3)),
        ("4", " 3 , 0-1 ", (0, 1, 3)),
        ("1", "0", (0,)),
        ("8", "7", (7,)),
    ],
)
def test_shard_ids_are_read_as_ids_and_ranges(count, ids, expected):
    settings = load_settings({"SHARD_COUNT": count, "SHARD_IDS": ids})
    assert settings.shard_count == int(count)
    assert settings.shard_ids == expected


@pytest.mark.parametrize(
    ("count", "ids", "needle"),
    [
        ("0", "", "SHARD_COUNT='0' must be a whole number from 1"),
        ("-2", "", "SHARD_COUNT='-2' must be a whole number"),
        ("two", "", "SHARD_COUNT='two'"),
        ("100001", "", "from 1 to 100000"),
        ("4.0", "", "SHARD_COUNT='4.0'"),
        ("", "0-1", "SHARD_IDS needs SHARD_COUNT"),
        ("4", "4", "shard 4 does not exist with SHARD_COUNT=4"),
        ("4", "2-9", "shard 9 does not exist"),
        ("4", "3-1", "the range 3-1 runs backwards"),
        ("4", "0-2,2", "names shard 2 more than once"),
        ("4", "0-1,1-3", "names shard 1 more than once"),
        ("4", "0,,1", "'' is not a shard id or range"),
        ("4", "0-1,", "'' is not a shard id or range"),
        ("4", "0..3", "'0..3' is not a shard id or range"),
        ("4", "-1", "'-1' is not a shard id or range"),
        ("4", "\uff11", "is not a shard id or range"),  # a full-width digit one
    ],
)
def test_bad_shard_settings_are_explained(count, ids, needle):
    with pytest.raises(ConfigError) as refused:
        load_settings({"SHARD_COUNT": count, "SHARD_IDS": ids})
    message = str(refused.value)
    assert needle in message
    assert "\n" not in message


def test_a_long_shard_list_is_refused_unread_and_never_echoed_whole():
    with pytest.raises(ConfigError, match="SHARD_IDS is 5999 characters long") as refused:
        load_settings({"SHARD_COUNT": "4", "SHARD_IDS": ",".join(["1"] * 3000)})
    assert len(str(refused.value)) < 200
    with pytest.raises(ConfigError, match="cut, 499 characters") as echoed:
        load_settings({"SHARD_COUNT": "4", "SHARD_IDS": "0," + "x" * 497})
    assert "x" * 41 not in str(echoed.value)


def test_a_bad_shard_setting_stops_the_start_with_one_line_and_exit_code_2(tmp_path):
    from tests.test_cli import run_cli

    result = run_cli(
        env={
            "DISCORD_TOKEN": "token",
            "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
            "SHARD_COUNT": "2",
            "SHARD_IDS": "0-2",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[0]]
    assert lines[0].startswith("embargo: SHARD_IDS='0-2': shard 2 does not exist")


def test_the_database_pool_size_is_read_and_bounded():
    assert load_settings({}).database_pool_size is None  # the backend's default
    assert load_settings({"DATABASE_POOL_SIZE": " 25 "}).database_pool_size == 25
    assert load_settings({"DATABASE_POOL_SIZE": "1"}).database_pool_size == 1
    for bad in ("0", "101", "-3", "ten", "2.5", "9" * 400):
        with pytest.raises(ConfigError, match=r"DATABASE_POOL_SIZE=.* from 1 to 100") as refused:
            load_settings({"DATABASE_POOL_SIZE": bad})
        assert len(str(refused.value)) < 200  # a long value is not echoed whole
