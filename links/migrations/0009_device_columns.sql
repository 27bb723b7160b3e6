-- Device classes as columns of link_hits (issue 12): a link visited in an interval was three row upserts (its
-- hits, its device, its referrer), the device row a third of the flush's database work. Bots stay out of `hits`.
-- Device rows already in link_hit_sources (kind 2) stay where they are and are still read, summed with these
-- columns, so nothing is moved and a redirect of the previous version writing kind-2 rows during a rolling
-- upgrade is still counted.
ALTER TABLE link_hits
    ADD COLUMN desktop bigint NOT NULL DEFAULT 0,
    ADD COLUMN mobile  bigint NOT NULL DEFAULT 0,
    ADD COLUMN tablet  bigint NOT NULL DEFAULT 0,
    ADD COLUMN bots    bigint NOT NULL DEFAULT 0;
