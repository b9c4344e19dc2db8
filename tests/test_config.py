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
