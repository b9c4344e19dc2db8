-- Content sync: the stat a file had when its bytes were last matched to its sha256, so that a
-- re-sync reads and hashes only files whose size or mtime moved (rules in bot/content/sync.py).
-- Portable SQL only. NULL in rows recorded before this migration: those files are hashed once
-- more on the next sync, which then records their stat.
ALTER TABLE content_files ADD COLUMN size BIGINT;
ALTER TABLE content_files ADD COLUMN mtime_ns BIGINT;
-- time.time_ns() at the start of the sync that recorded size and mtime_ns: a file modified
-- less than a timestamp tick before it is not trusted on its stat (the "racy" case).
ALTER TABLE content_files ADD COLUMN stat_checked_ns BIGINT;
