-- Domains, rules and variants (issue 30).
--
-- A link on a registered domain other than the default one keeps `host/code` in `links.code`: a host has no `/`
-- and a code never does, so the existing unique constraint makes a code unique per domain, and every table,
-- cache key and invalidation message keyed by the code (retired codes, the Redis entry, `+CODE`) carries the
-- domain with no new column to backfill. Links already stored are on the default domain as they are: nothing
-- moves, so the migration needs no downtime.
--
-- `is_default` marks the host short URLs use when a create names no domain (the shortener's --public-base-url);
-- the shortener records it at start. Its row holds that domain's root, not-found and indexing settings.
CREATE TABLE domains (
    host            text        PRIMARY KEY CHECK (host ~ '^[][a-z0-9.:-]{1,253}$'),
    is_default      boolean     NOT NULL DEFAULT false,
    root_url        text,
    not_found_url   text,
    allow_indexing  boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX domains_one_default ON domains (is_default) WHERE is_default;

-- Rules and variants as the API shows them (`{"rules": [...], "variants": [...]}`), null for a plain link. A
-- nullable column with no default: adding it rewrites nothing.
ALTER TABLE links ADD COLUMN routing jsonb;

-- Hits per variant are a fourth kind of hit source (key: the variant's index). The old check is replaced by one
-- added NOT VALID: no scan of the table under its lock; every existing row already passes the new one.
ALTER TABLE link_hit_sources DROP CONSTRAINT IF EXISTS link_hit_sources_kind_check;
ALTER TABLE link_hit_sources
    ADD CONSTRAINT link_hit_sources_kind_check CHECK (kind IN (1, 2, 3, 4)) NOT VALID;
