-- A request is written unpublished (audited = 0), its request_created event is appended to the
-- audit trail, and only then is it published (audited = 1, with its outbox message) in one
-- transaction: no reader, step, escalation or notice ever sees a request without its event.
-- An unpublished request is deleted if its event could not be written, and settled at start-up
-- (published if its event exists, deleted otherwise) if the node died in between.
ALTER TABLE requests ADD COLUMN audited BIGINT NOT NULL DEFAULT 1;
CREATE INDEX requests_unpublished ON requests (created_at) WHERE audited = 0;
