-- Families: carers on holdings, shielded holdings, pre-birth holdings.

-- Which subject of a holding a pseudonym belongs to: 0 is the child, 1..4 the carers in order.
-- Carer keys live in their own key space (their material names the role), so the column only
-- says which carer agreed, for the evidence and the per-carer assessment.
ALTER TABLE pseudonyms ADD COLUMN subject INTEGER NOT NULL DEFAULT 0;

-- The fields each carer had, 16 bits per carer (carer 1 in the lowest bits): identifies no one.
ALTER TABLE holdings ADD COLUMN carer_fields INTEGER NOT NULL DEFAULT 0;
ALTER TABLE holdings ADD COLUMN carers INTEGER NOT NULL DEFAULT 0;
-- A shielded holding's organisation, contact, category and area are never shown to an asker.
ALTER TABLE holdings ADD COLUMN shielded INTEGER NOT NULL DEFAULT 0;

-- Fixed when the lookup or request is made, so hiding the holder survives the holding's removal.
ALTER TABLE lookup_matches ADD COLUMN shielded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE lookup_matches ADD COLUMN basis TEXT NOT NULL DEFAULT 'child';
ALTER TABLE requests ADD COLUMN holder_shielded INTEGER NOT NULL DEFAULT 0;
