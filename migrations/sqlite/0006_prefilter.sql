-- The lookup prefilter refreshes from holdings written since its last pass (other nodes' writes).
CREATE INDEX holdings_by_updated ON holdings (updated_at);
