-- Answers to create requests sent with an `Idempotency-Key`, so that a retry gets the first answer instead of a
-- second link. One row per (API key, idempotency key), written in the same transaction as the links it answers
-- for: either both are committed or neither. Rows older than 24 h are ignored and purged by the cleanup.
CREATE TABLE idempotency_keys (
    owner_id      bigint      NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    key           text        NOT NULL,
    -- SHA-256 of the route and the request body, to tell a retry from another request reusing the key.
    request_hash  bytea       NOT NULL,
    status        smallint    NOT NULL,
    location      text,
    body          bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, key)
);

-- The cleanup's purge of answers past 24 h.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
