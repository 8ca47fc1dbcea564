-- Holdings added and removed per organisation per UTC day (issue 20, item 4): registering
-- holdings must not be an unlimited oracle, so a day's churn past the organisation's allowance
-- stops further additions until midnight. Counts only: nothing about any child.
CREATE TABLE holding_churn (
    org_id              BIGINT NOT NULL REFERENCES organisations(id),
    day                 BIGINT NOT NULL,
    added               BIGINT NOT NULL,
    removed             BIGINT NOT NULL,
    PRIMARY KEY (org_id, day)
);
