-- Where clicks come from (issue 15): per link and day, the redirects' counted visits by referrer domain, device
-- class and country, written by the same batched flush as link_hits. kind: 1 referrer domain ('direct' for no
-- Referer, 'other' for domains past the bound), 2 device ('desktop', 'mobile', 'tablet', 'bot'), 3 country (two
-- letters, or 'unknown'). Bots are counted only under kind 2 and never in link_hits.
-- Bounded per link and day: devices 4 keys, countries at most 677 (two letters or unknown), and referrers 100: a
-- flush adds a new domain only while the link has fewer than 50 that day, else counts it as 'other', and one
-- flush writes at most 50 domains per link and day.
CREATE TABLE link_hit_sources (
    link_id  bigint   NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    day      date     NOT NULL,
    kind     smallint NOT NULL CHECK (kind IN (1, 2, 3)),
    key      text     NOT NULL CHECK (length(key) <= 100),
    hits     bigint   NOT NULL,
    PRIMARY KEY (link_id, day, kind, key)
);

-- The flush checks visit limits only for links that have one and have not reached it: a tiny index.
CREATE INDEX links_limited_idx ON links (id) WHERE max_hits IS NOT NULL AND exhausted_at IS NULL;
