-- A request is written unpublished (audited = 0), its request_created event is appended to the
-- audit trail, and only then is it published (audited = 1, with its outbox message) in one
-- transaction: no reader, step, escalation or notice ever sees a request without its event.
-- An unpublished request is deleted if its event could not be written, and settled at start-up
-- (published if its event exists, deleted otherwise) if the node died in between.
ALTER TABLE requests ADD COLUMN audited BIGINT NOT NULL DEFAULT 1;
CREATE INDEX requests_unpublished ON requests (created_at) WHERE audited = 0;

-- A step is staged the same way: its history row is written unpublished (one per request at a time,
-- which also keeps a second step out until it is settled), its request_state_changed event appended,
-- then in one transaction the request's state changes, the row is published and the other side told.
ALTER TABLE request_events ADD COLUMN audited BIGINT NOT NULL DEFAULT 1;
CREATE INDEX request_events_unpublished ON request_events (at) WHERE audited = 0;
