-- The IG officer's views of the audit trail: indexes for the filters (time, type, acting
-- organisation) and for finding the pseudonyms a lookup asked by the lookup's position.

CREATE INDEX audit_events_by_at ON audit_events (at);
CREATE INDEX audit_events_by_type ON audit_events (type, at);
CREATE INDEX audit_events_by_actor_org ON audit_events (actor_org_id, at);
CREATE INDEX lookup_pseudonyms_by_seq ON lookup_pseudonyms (seq);
CREATE INDEX lookup_matches_by_seq ON lookup_matches (seq);
