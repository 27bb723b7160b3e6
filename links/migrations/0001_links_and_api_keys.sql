-- API keys: only the SHA-256 of a key is stored; the key itself is shown once, when it is created.
CREATE TABLE api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL,
    key_hash    bytea       NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- Links: id is the Snowflake ID; code is base62(id) or a custom alias, one namespace decided by the unique
-- constraint. url_hash (SHA-256 of the normalised URL) serves "reuse" lookups without scanning long_url.
CREATE TABLE links (
    id               bigint      PRIMARY KEY,
    code             text        NOT NULL UNIQUE,
    long_url         text        NOT NULL,
    url_hash         bytea       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz,
    redirect_status  smallint    NOT NULL DEFAULT 302 CHECK (redirect_status IN (301, 302, 307, 308)),
    owner_id         bigint      REFERENCES api_keys (id),
    deleted_at       timestamptz,
    disabled_at      timestamptz
);

-- Expiry cleanup scans only links that can expire and are still live.
CREATE INDEX links_expires_at_idx ON links (expires_at)
    WHERE expires_at IS NOT NULL AND deleted_at IS NULL;
-- "My links", newest first (ids grow with time), and reuse by URL within one owner.
CREATE INDEX links_owner_id_idx ON links (owner_id, id DESC);
CREATE INDEX links_owner_url_hash_idx ON links (owner_id, url_hash) WHERE deleted_at IS NULL;

-- Hits per link and day, written in batches by the redirect so a popular link is not a hot row per request.
CREATE TABLE link_hits (
    link_id  bigint NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    day      date   NOT NULL,
    hits     bigint NOT NULL,
    PRIMARY KEY (link_id, day)
);
