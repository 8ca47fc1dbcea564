//! What a write transaction changes in the key index (`pseudonyms`): the keys it drops (a
//! rewritten or removed holding's old ones) and the keys it adds, held until it commits and then
//! written in key order, the drops first.
//!
//! Pseudonyms are uniformly random, so keys written in the order their holdings came touch a
//! different B-tree page each. Sorted, consecutive writes land on the same page, and a
//! transaction's keys (a sync's hundred thousand holdings, two million keys) touch each page of
//! the index once per commit. Drops were once a statement per holding, each on random pages: a
//! re-key of a million holdings took 19 minutes (docs/performance.md, "Key family 3").

use sqlx::{Any, Transaction};

use super::{Engine, Insert, MAX_PARAMS, StoreResult, insert_repeated, statement_sizes, value_rows};
use crate::domain::holding::{HoldingKey, NewHolding};
use crate::domain::identity::IndexKey;

/// A holding's key waiting to be written.
#[derive(Debug, Clone, Copy)]
struct PendingKey {
    key: IndexKey,
    holding_id: i64,
    kind: u8,
    subject: u8,
}

/// The keys a transaction drops and adds, written as it commits (`KeyChanges::write`).
#[derive(Debug, Default)]
pub(crate) struct KeyChanges {
    dropped: Vec<(IndexKey, i64)>,
    added: Vec<PendingKey>,
}

impl KeyChanges {
    /// A holding written for the first time: all its keys.
    pub(crate) fn add(&mut self, holding_id: i64, holding: &NewHolding) {
        self.added.extend(holding.keys.iter().map(|k| pending(holding_id, k)));
    }

    /// A holding rewritten: the keys it carried before (`keys_before`, sorted, read from its old
    /// key list) that it no longer carries go, and the new ones come; see `rekey` for the keys
    /// that stay.
    pub(crate) fn rekey(&mut self, holding_id: i64, keys_before: &[IndexKey], holding: &NewHolding) {
        let (dropped, added) = rekey(keys_before, &holding.keys);
        self.dropped.extend(dropped.into_iter().map(|key| (key, holding_id)));
        self.added.extend(added.into_iter().map(|k| pending(holding_id, k)));
    }

    /// A holding removed: every key of its list.
    pub(crate) fn remove(&mut self, holding_id: i64, old_list: &[u8]) {
        self.dropped.extend(IndexKey::all_in_key_list(old_list).map(|key| (key, holding_id)));
    }

    /// Drops, then adds, each set in key order, in multi-row statements of a few fixed sizes.
    pub(crate) async fn write(self, tx: &mut Transaction<'static, Any>, engine: Engine) -> StoreResult<()> {
        let KeyChanges { mut dropped, mut added } = self;
        dropped.sort_unstable();
        dropped.dedup();
        let mut start = 0;
        for size in statement_sizes(dropped.len(), MAX_PARAMS / 2) {
            let sql = drop_keys_sql(engine, size);
            let rows = &dropped[start..start + size];
            let query = rows.iter().fold(sqlx::query(&sql), |query, (key, id)| query.bind(key.0).bind(*id));
            query.execute(&mut **tx).await?;
            start += size;
        }
        added.sort_unstable_by_key(|key| key.key);
        let insert = Insert::new("pseudonyms (pseudonym, holding_id, kind, subject)", "", 4, &added, |query, key| {
            query.bind(key.key.0).bind(key.holding_id).bind(i64::from(key.kind)).bind(i64::from(key.subject))
        });
        insert_repeated(tx, engine, &insert).await?;
        Ok(())
    }
}

fn pending(holding_id: i64, key: &HoldingKey) -> PendingKey {
    PendingKey { key: key.pseudonym.index_key(), holding_id, kind: key.kind.id(), subject: key.subject }
}

/// Deletes `rows` (key, holding) pairs, read from a `VALUES` list in a subquery: each pair is one
/// search of the primary key (held by `store::dropping_keys_searches_the_primary_key_for_each_pair`).
/// SQLite 3.40 planned `(a, b) IN (VALUES …)` written directly as a scan of the whole table; the
/// bundled 3.46 plans both forms alike, and the subquery's form is the one that never scans.
pub fn drop_keys_sql(engine: Engine, rows: usize) -> String {
    format!(
        "DELETE FROM pseudonyms WHERE (pseudonym, holding_id) IN (SELECT * FROM (VALUES {}) AS dropped)",
        value_rows(engine, 1, rows, 2)
    )
}

/// A rewritten holding's keys to drop and to add, given the keys it carried before (`old`,
/// sorted). A child's key on both lists stays as it is: a child's pseudonym is derived under the child's own subkey for its
/// kind, so the same pseudonym is the same kind of key of the same subject (0). A carer's key is
/// rewritten even when on both lists, as the carer's number (`subject`) may have moved.
fn rekey<'k>(old: &[IndexKey], new: &'k [HoldingKey]) -> (Vec<IndexKey>, Vec<&'k HoldingKey>) {
    let stays = |k: &HoldingKey| k.subject == 0 && old.binary_search(&k.pseudonym.index_key()).is_ok();
    let (kept, added): (Vec<&HoldingKey>, Vec<&HoldingKey>) = new.iter().partition(|k| stays(k));
    let mut kept: Vec<IndexKey> = kept.into_iter().map(|k| k.pseudonym.index_key()).collect();
    kept.sort_unstable();
    let dropped = old.iter().copied().filter(|key| kept.binary_search(key).is_err()).collect();
    (dropped, added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::{KeyKind, Pseudonym};

    fn key(byte: u8, subject: u8) -> HoldingKey {
        HoldingKey { subject, kind: KeyKind::ALL[0], pseudonym: Pseudonym::from_bytes([byte; 16]) }
    }

    /// What a holding carried, as `rekey` is given it: its index keys, sorted.
    fn list(keys: &[HoldingKey]) -> Vec<IndexKey> {
        index_keys(keys.iter().map(|k| k.pseudonym.index_key()).collect())
    }

    fn index_keys(mut keys: Vec<IndexKey>) -> Vec<IndexKey> {
        keys.sort_unstable();
        keys
    }

    #[test]
    fn a_rewrite_drops_the_keys_it_lost_adds_the_ones_it_gained_and_leaves_a_childs_kept_key_alone() {
        let (kept, lost, gained) = (key(1, 0), key(2, 0), key(3, 0));
        let new = [kept, gained];
        let (dropped, added) = rekey(&list(&[kept, lost]), &new);
        assert_eq!(dropped, vec![lost.pseudonym.index_key()]);
        assert_eq!(added.iter().map(|k| k.pseudonym).collect::<Vec<_>>(), vec![gained.pseudonym]);
    }

    #[test]
    fn a_carers_key_on_both_lists_is_rewritten_as_its_carer_number_may_have_moved() {
        let (first_carer, second_carer) = (key(4, 1), key(5, 2));
        // The two carers swapped places: the same pseudonyms, each under the other number.
        let swapped = [HoldingKey { subject: 2, ..first_carer }, HoldingKey { subject: 1, ..second_carer }];
        let (dropped, added) = rekey(&list(&[first_carer, second_carer]), &swapped);
        let both = index_keys(vec![first_carer.pseudonym.index_key(), second_carer.pseudonym.index_key()]);
        assert_eq!(index_keys(dropped), both);
        assert_eq!(
            added.iter().map(|k| (k.pseudonym, k.subject)).collect::<Vec<_>>(),
            [(first_carer.pseudonym, 2), (second_carer.pseudonym, 1)]
        );
    }

    #[test]
    fn an_unchanged_list_rewrites_only_its_carers_keys() {
        let keys = [key(6, 0), key(7, 0), key(8, 1)];
        let (dropped, added) = rekey(&list(&keys), &keys);
        assert_eq!(dropped, vec![keys[2].pseudonym.index_key()]);
        assert_eq!(added.len(), 1);
    }

    #[test]
    fn a_drop_binds_two_parameters_a_pair_and_reads_its_pairs_through_a_subquery() {
        assert_eq!(drop_keys_sql(Engine::Postgres, 2).matches('$').count(), 4);
        assert!(drop_keys_sql(Engine::Sqlite, 2).contains("IN (SELECT * FROM (VALUES (?, ?), (?, ?)) AS dropped)"));
    }
}
