-- The fingerprint of the key behind compact codes (CODE_KEY): recorded by the first shortener that starts with a
-- key. A shortener started with another key would map the counter's numbers to other codes, some of them codes
-- already given out, so it refuses to start; the fingerprint says which key, the key itself is never stored.
CREATE TABLE code_key (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    fingerprint text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
