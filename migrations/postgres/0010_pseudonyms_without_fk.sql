-- Pseudonyms lose their foreign key to holdings: its check (a trigger per row) cost a bulk sync
-- a holdings lookup per pseudonym inserted. Integrity is kept by the store: pseudonyms are only
-- ever written with the id their holding was just given, and deleted in the same transaction
-- as their holding.
ALTER TABLE pseudonyms DROP CONSTRAINT IF EXISTS pseudonyms_holding_id_fkey;
