-- Links people manage (issue 15): tags to find them, a password in front of the redirect, a visit limit.
-- tags: at most 10 of [a-z0-9-]{1,32}, sorted and unique (checked by the API, which is the only writer).
-- password_hash: an Argon2id PHC string; the password itself is never stored.
-- max_hits: the visit limit; exhausted_at is set by the redirect's hit flush once the flushed (human) hits reach
-- it, and makes the link answer 410 like a deleted one. A patch of max_hits sets or clears it again.
ALTER TABLE links
    ADD COLUMN tags          text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN password_hash text,
    ADD COLUMN max_hits      bigint      CHECK (max_hits > 0),
    ADD COLUMN exhausted_at  timestamptz;

-- Search over an owner's links: a case-insensitive substring of the code or the URL (`ILIKE '%q%'`) is served by
-- trigram indexes, so it stays an index scan at millions of links; tags by GIN on the array (`tags @> ARRAY[t]`).
-- pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it without superuser.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX links_code_trgm_idx ON links USING gin (code gin_trgm_ops);
CREATE INDEX links_long_url_trgm_idx ON links USING gin (long_url gin_trgm_ops);
CREATE INDEX links_tags_idx ON links USING gin (tags);
