-- Match signalling during a sync takes in what *other* organisations wrote in the last minute:
-- one index range per organisation, so a large sync never rescans its own fresh rows.
CREATE INDEX holdings_by_org_updated ON holdings (org_id, updated_at);
