-- How many holdings each organisation has, kept by the statements that add and delete them, so
-- a lookup's coverage ("how many organisations have registered records") never counts the
-- holdings table (a scan of a million rows every few seconds, and a core taken from lookups).
CREATE TABLE holding_counts (
    org_id              BIGINT  PRIMARY KEY REFERENCES organisations(id),
    holdings            BIGINT  NOT NULL
);
INSERT INTO holding_counts (org_id, holdings) SELECT org_id, COUNT(*) FROM holdings GROUP BY org_id;
