-- Shortener instances cache API key -> owner in memory. Any change to api_keys (a revoke, a deleted row) is
-- announced on the channel `snowlink_api_keys` when it commits, and every instance drops its cache at once, so a
-- revoked key stops working everywhere within moments, whatever tool made the change.
CREATE FUNCTION announce_api_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('snowlink_api_keys', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_keys_changed
    AFTER UPDATE OR DELETE OR TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION announce_api_key_change();
