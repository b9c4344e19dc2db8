"""All SQL lives in this package, behind the one ``Storage`` class."""

from bot.storage.database import Database, StorageError, sqlite_path_from_url

__all__ = ["Database", "StorageError", "sqlite_path_from_url"]
