-- When each of Discord's session-start buckets (shard id % max_concurrency) may next log a
-- shard in, shared by every process on the database: the instant reserved last, in seconds
-- since the epoch on the database's clock (bot/shards.py).
CREATE TABLE identify_slots (
    bucket      INTEGER PRIMARY KEY,
    reserved_at DOUBLE PRECISION NOT NULL
);
