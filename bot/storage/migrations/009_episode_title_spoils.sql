-- Episodes whose title is itself a spoiler: shown only once the episode's spoiler window ends.
-- Portable SQL only (BOOLEAN and FALSE are both SQLite's and PostgreSQL's).
ALTER TABLE episodes ADD COLUMN title_spoils BOOLEAN NOT NULL DEFAULT FALSE;
-- Show files loaded before this column existed are parsed again on the next sync, so a file
-- that already marks a title is loaded with its mark even though its bytes did not change.
UPDATE content_files SET sha256 = '' WHERE path LIKE 'shows/%';
