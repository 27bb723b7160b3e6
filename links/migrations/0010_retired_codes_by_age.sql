-- snowlink: no-transaction
-- The cleanup frees codes purged more than --retired-code-grace-days ago, a batch at a time: this finds them
-- without reading every tombstone on every pass.
CREATE INDEX CONCURRENTLY IF NOT EXISTS retired_codes_retired_at_idx ON retired_codes (retired_at);
