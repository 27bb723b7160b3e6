-- Webhooks (issue 31): where an owner's events are POSTed, signed with the webhook's secret.
--
-- A new table, so its index is built in this transaction: it is empty, nothing waits on it. The foreign key
-- takes a brief lock on api_keys (a small table), under the runner's lock timeout and retries.
--
-- `events` holds the names of the API (`click`, `link.created`, …): text, not a bit mask, so a row reads as the
-- API shows it and a release that adds an event needs no migration. `secret` is the signing key itself, not a
-- hash: every delivery needs it. `failing_since` is when deliveries started failing (null while they succeed);
-- after 24 h of failures `paused_at` is set and deliveries stop.
CREATE TABLE webhooks (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id       bigint      NOT NULL REFERENCES api_keys (id),
    url            text        NOT NULL,
    events         text[]      NOT NULL,
    secret         text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    failing_since  timestamptz,
    paused_at      timestamptz
);
CREATE INDEX webhooks_owner_id_idx ON webhooks (owner_id);
