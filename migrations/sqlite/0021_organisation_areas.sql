-- Where an organisation works, for the "not known" answer's area summary: postcode areas ("SO")
-- or districts ("SO14"), space-separated; empty means everywhere (a national body, or one that
-- has not said). No child's data: these describe the organisation.
ALTER TABLE organisations ADD COLUMN areas TEXT NOT NULL DEFAULT '';
-- When the organisation last sent its whole caseload (a completed sync), in ms since the epoch.
ALTER TABLE organisations ADD COLUMN last_sync_at INTEGER;
