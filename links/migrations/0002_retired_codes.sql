-- Tombstones of purged links. The expiry cleanup deletes expired and deleted links but keeps their codes here, so
-- a short URL that once worked keeps answering 410 (not 404) and its code, an alias above all, is never handed
-- to someone else: a re-used alias would send old links, printed and shared, to a stranger's target.
CREATE TABLE retired_codes (
    code        text        PRIMARY KEY,
    retired_at  timestamptz NOT NULL DEFAULT now()
);

-- A retired code is taken, exactly like a live one: inserting it fails with unique_violation, which callers
-- already map to "code taken" (409 alias_taken, or a new ID for a generated code). AFTER, not BEFORE: an insert
-- racing the purge of the same code waits on the links unique index until the purge commits, and only then does
-- this check run (with a fresh snapshot, as READ COMMITTED gives each query in a volatile function), so it sees
-- the tombstone the purge wrote in the same transaction.
CREATE FUNCTION refuse_retired_code() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM retired_codes WHERE code = NEW.code) THEN
        RAISE EXCEPTION 'code % is retired', NEW.code
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'retired_codes_pkey';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER links_refuse_retired_code
    AFTER INSERT OR UPDATE OF code ON links
    FOR EACH ROW EXECUTE FUNCTION refuse_retired_code();

-- The purge finds deleted links through this (expired ones through links_expires_at_idx); both partial, so they
-- hold only what is waiting to be purged.
CREATE INDEX links_deleted_at_idx ON links (deleted_at) WHERE deleted_at IS NOT NULL;
