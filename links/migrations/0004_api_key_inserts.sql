-- Shortener instances also cache briefly that a key is unknown (so a burst of bad keys does not cost a query
-- each). A key created after some client tried it must then work at once: announce inserts as well, so every
-- instance drops its caches when a key is created (rare: an operator's command).
DROP TRIGGER api_keys_changed ON api_keys;

CREATE TRIGGER api_keys_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION announce_api_key_change();
