-- Pooled (global) vote totals in slots (PostgreSQL). Several processes write votes at once,
-- and every batch moves the pooled totals of the episodes it touched: with one row per
-- episode, each batch waited for the one before it to commit. Now a batch adds its deltas to
-- the rows of a slot no other transaction holds (bot/storage/postgres/votes.py), so writers
-- never wait for one another's row locks. An episode's pooled total is the sum of its rows
-- over every slot; one slot's row may count no vote, or fewer than none (a vote counted in one
-- slot and withdrawn through another). Rows are folded back into slot 0 as they are written.
ALTER TABLE vote_totals_global ADD COLUMN slot SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE vote_totals_global DROP CONSTRAINT vote_totals_global_pkey;
ALTER TABLE vote_totals_global ADD PRIMARY KEY (show_slug, episode_key, slot);
