-- Takedown: an operator disables a link (`shortener links disable CODE --reason TEXT`); the reason says why, for
-- the next operator who looks (`links show`).
ALTER TABLE links ADD COLUMN disabled_reason text;

-- Invalidations still owed to Redis and the redirect replicas: written in the same transaction as the delete,
-- disable or enable that makes them necessary, removed once Redis has dropped the code and the invalidation is
-- published. A change whose Redis call fails (Redis down, a timeout) is therefore retried until it is delivered,
-- instead of leaving a stale cached redirect behind a 204. One row per code: a code changed twice while Redis is
-- down needs one invalidation, so the table holds at most one row per code. `version` tells a delivery apart
-- from a later change to the same code, whose row must stay until it too is delivered.
CREATE SEQUENCE cache_invalidations_version;

CREATE TABLE cache_invalidations (
    code       text        PRIMARY KEY,
    version    bigint      NOT NULL DEFAULT nextval('cache_invalidations_version'),
    queued_at  timestamptz NOT NULL DEFAULT now()
);
