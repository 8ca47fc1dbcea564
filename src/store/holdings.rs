//! Holdings and their pseudonyms; matches between holdings. No identifier is ever stored:
//! a holding row has a category, a status, a contact and a fields-present mask; the
//! pseudonyms table maps keyed hashes to holdings.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::key_changes::KeyChanges;
use super::{
    Engine, Insert, Store, StoreError, StoreResult, insert_repeated, older_than_cursor, padded_chunks, placeholders,
    value_rows,
};
use crate::clock::Millis;
use crate::domain::cursor::PageCursor;
use crate::domain::holding::{CarerFields, Category, Change, Contact, NewHolding, Status, StoredHolding};
use crate::domain::identity::{FieldsPresent, IndexKey, KEY_FAMILY};
use crate::domain::matching::HitRef;
use crate::domain::organisation::Organisation;
use crate::store::sync_leases::{Committed, LeaseRef, fence};

/// The sizes a candidate search is padded to (see `padded_chunks`).
const HIT_SIZES: [usize; 4] = [16, 64, 256, 512];

/// The candidate search for `size` pseudonyms; built once per engine and size.
///
/// SQLite gets anonymous `?` parameters: sqlx resolves each named `$N` parameter through
/// `sqlite3_bind_parameter_name`, a linear scan, which made 512-parameter binds quadratic.
fn find_hits_sql(engine: super::Engine, size: usize) -> &'static str {
    cached_sql(engine, size, false)
}

/// On SQLite, the candidate search followed by the holdings it hits with their organisations
/// (what an answer may show), as one two-statement query binding the pseudonyms twice: each
/// statement handed to SQLite's connection thread is a round trip between threads, which under
/// load cost more than the statement (docs/performance.md, "Fewer round trips a lookup").
fn hits_and_holdings_sql(size: usize) -> &'static str {
    cached_sql(super::Engine::Sqlite, size, true)
}

fn cached_sql(engine: super::Engine, size: usize, with_holdings: bool) -> &'static str {
    use std::sync::OnceLock;
    static SQL: OnceLock<Vec<(super::Engine, usize, bool, String)>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        let mut all = Vec::new();
        for engine in [super::Engine::Sqlite, super::Engine::Postgres] {
            for n in HIT_SIZES {
                let list = match engine {
                    super::Engine::Sqlite => vec!["?"; n].join(", "),
                    super::Engine::Postgres => placeholders(1, n),
                };
                let hits = format!(
                    "SELECT p.pseudonym, p.holding_id, p.kind, p.subject, h.org_id, h.fields_present, h.carer_fields, \
                     h.shielded FROM pseudonyms p JOIN holdings h ON h.id = p.holding_id WHERE p.pseudonym IN ({list})"
                );
                if engine == super::Engine::Sqlite {
                    let holdings = format!(
                        "{} WHERE h.id IN (SELECT holding_id FROM pseudonyms WHERE pseudonym IN ({list}))",
                        *MATCHED_HOLDING_SELECT
                    );
                    all.push((engine, n, true, format!("{hits};\n{holdings}")));
                }
                all.push((engine, n, false, hits));
            }
        }
        all
    });
    all.iter()
        .find(|(e, n, h, _)| *e == engine && *n == size && *h == with_holdings)
        .map(|(_, _, _, sql)| sql.as_str())
        .unwrap_or("SELECT NULL WHERE 1 = 0")
}

/// The columns of a matched holding and its organisation (see `MatchedHolding`), before the
/// `WHERE` that picks the holdings.
static MATCHED_HOLDING_SELECT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT h.id AS holding_id, h.local_ref, h.category, h.status, h.contact_team, h.contact_phone, \
         h.contact_email, h.shielded, o.* FROM holdings h JOIN (SELECT {} FROM organisations) o ON o.id = h.org_id",
        super::organisations::COLUMNS
    )
});

/// A sync's write transaction, open across batches until the sync commits it.
pub struct SyncTransaction {
    tx: Transaction<'static, Any>,
    /// Rows written in it so far.
    pub rows: usize,
    /// When its first row was written (the oldest `updated_at` it will commit).
    pub opened_at: Millis,
    /// What it adds to the run's counts (recorded by the fence as it commits).
    committed: Committed,
    /// What the holdings written so far change in the key index, written as it commits.
    keys: KeyChanges,
}

/// What writing one holding did: its change, its id, and the keys it carried before (sorted;
/// empty unless it was updated), so that what is new to it can be told from what it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub change: Change,
    pub id: i64,
    keys_before: Vec<IndexKey>,
}

impl Written {
    fn new(change: Change, id: i64) -> Written {
        Written { change, id, keys_before: Vec::new() }
    }

    /// The keys of `holding` (as written) that it did not carry before: none if unchanged. The
    /// prefilter takes in these alone, or a rewritten holding's kept keys would count twice
    /// there and look shared with another holding (`service::prefilter`).
    pub fn new_keys<'a>(&'a self, holding: &'a NewHolding) -> impl Iterator<Item = IndexKey> + 'a {
        let keys = if self.change == Change::Unchanged { &[][..] } else { &holding.keys[..] };
        keys.iter().map(|k| k.pseudonym.index_key()).filter(|key| self.keys_before.binary_search(key).is_err())
    }
}

/// A matched holding as a lookup answers it: what the asker may be told, and its holder.
#[derive(Debug, Clone)]
pub struct MatchedHolding {
    pub id: i64,
    pub local_ref: String,
    pub category: Category,
    pub status: Status,
    pub contact: Contact,
    pub shielded: bool,
    pub organisation: Organisation,
}

/// One pseudonym hit from a candidate search.
#[derive(Debug, Clone)]
pub struct Hit {
    pub key: IndexKey,
    pub holding_id: i64,
    /// 0: the holding's child; 1..: its carers in order.
    pub subject: u8,
    pub org_id: i64,
    pub kind: u8,
    pub fields_present: FieldsPresent,
    pub carer_fields: CarerFields,
    pub shielded: bool,
}

/// What a lookup's candidate search reads: the hits, and each holding hit as an answer may
/// show it.
#[derive(Debug, Default)]
pub struct HitsAndHoldings {
    pub hits: Vec<Hit>,
    /// Sorted by id, one each.
    pub holdings: Vec<MatchedHolding>,
}

fn hit_from_row(row: &AnyRow) -> StoreResult<Hit> {
    let kind: i64 = row.try_get("kind")?;
    let subject: i64 = row.try_get("subject")?;
    let bits: i64 = row.try_get("fields_present")?;
    Ok(Hit {
        key: IndexKey(row.try_get("pseudonym")?),
        holding_id: row.try_get("holding_id")?,
        subject: u8::try_from(subject).unwrap_or(0),
        org_id: row.try_get("org_id")?,
        kind: u8::try_from(kind).unwrap_or(0),
        fields_present: FieldsPresent::from_bits(u16::try_from(bits).unwrap_or(0)),
        carer_fields: CarerFields(row.try_get("carer_fields")?),
        shielded: row.try_get::<i64, _>("shielded")? != 0,
    })
}

fn matched_holding_from_row(row: &AnyRow) -> StoreResult<MatchedHolding> {
    let (category, status, contact) = category_status_contact(row)?;
    Ok(MatchedHolding {
        id: row.try_get("holding_id")?,
        local_ref: row.try_get("local_ref")?,
        category,
        status,
        contact,
        shielded: row.try_get::<i64, _>("shielded")? != 0,
        organisation: super::organisations::from_row(row)?,
    })
}

impl Hit {
    pub fn is_carer(&self) -> bool {
        self.subject != 0
    }

    /// As matching sees it, with the fields of the subject that carries the pseudonym.
    pub fn as_ref(&self) -> HitRef {
        let holder_fields = if self.is_carer() { self.carer_fields.carer(self.subject) } else { self.fields_present };
        HitRef {
            key: self.key,
            holding_id: self.holding_id,
            holder_subject: self.subject,
            org_id: self.org_id,
            holder_fields,
        }
    }
}

/// The existing holdings of one organisation, compactly, for a full-replace sync: a hash of
/// each local_ref to its id and fingerprint prefix (about 40 bytes a holding).
pub type SyncIndex = HashMap<u64, (i64, u64)>;

pub fn ref_hash(local_ref: &str) -> u64 {
    let digest = blake3::hash(local_ref.as_bytes());
    u64::from_le_bytes(digest.as_bytes()[..8].try_into().unwrap_or([0; 8]))
}

fn fingerprint_prefix(fp: &[u8]) -> u64 {
    u64::from_le_bytes(fp.get(..8).and_then(|s| s.try_into().ok()).unwrap_or([0; 8]))
}

/// What writing `holding` would do, given the entry its local_ref has in the index (id and
/// fingerprint prefix, see `SyncIndex`), if any.
pub fn change_of(holding: &NewHolding, existing: Option<(i64, u64)>) -> Change {
    match existing {
        Some((_, fp)) if fp == fingerprint_prefix(&holding.fingerprint) => Change::Unchanged,
        Some(_) => Change::Updated,
        None => Change::Added,
    }
}

/// The columns a holding shares with every view of it: category, status and contact.
fn category_status_contact(row: &AnyRow) -> StoreResult<(Category, Status, Contact)> {
    let category: String = row.try_get("category")?;
    let status: String = row.try_get("status")?;
    Ok((
        Category::parse(&category).ok_or_else(|| StoreError::Inconsistent("unknown category".into()))?,
        Status::parse(&status).ok_or_else(|| StoreError::Inconsistent("unknown status".into()))?,
        Contact {
            team: row.try_get("contact_team")?,
            phone: row.try_get("contact_phone")?,
            email: row.try_get("contact_email")?,
        },
    ))
}

fn holding_from_row(row: &AnyRow) -> StoreResult<StoredHolding> {
    let (category, status, contact) = category_status_contact(row)?;
    let bits: i64 = row.try_get("fields_present")?;
    Ok(StoredHolding {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        local_ref: row.try_get("local_ref")?,
        category,
        status,
        closed_at: row.try_get("closed_at")?,
        contact,
        fields_present: FieldsPresent::from_bits(u16::try_from(bits).unwrap_or(0)),
        carers: row.try_get("carers")?,
        shielded: row.try_get::<i64, _>("shielded")? != 0,
        pseudonym_count: row.try_get("pseudonym_count")?,
        key_id: row.try_get("key_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const HOLDING_COLUMNS: &str = "h.id, h.org_id, h.local_ref, h.category, h.status, h.closed_at, h.contact_team, \
     h.contact_phone, h.contact_email, h.fields_present, h.carers, h.shielded, h.key_id, h.created_at, h.updated_at, \
     length(h.key_list) / 16 AS pseudonym_count";

impl Store {
    /// Creates or replaces one holding in its own transaction.
    pub async fn put_holding(
        &self,
        org_id: i64,
        holding: &NewHolding,
        key_id: &str,
        now: Millis,
    ) -> StoreResult<Written> {
        let mut tx = self.begin_write().await?;
        let existing = sqlx::query("SELECT id, fingerprint FROM holdings WHERE org_id = $1 AND local_ref = $2")
            .bind(org_id)
            .bind(&holding.local_ref)
            .fetch_optional(&mut *tx)
            .await?;
        let existing = match existing {
            Some(row) => {
                Some((row.try_get::<i64, _>("id")?, fingerprint_prefix(&row.try_get::<Vec<u8>, _>("fingerprint")?)))
            }
            None => None,
        };
        let mut keys = KeyChanges::default();
        let written =
            write_holdings(&mut tx, self.engine(), org_id, &[(holding, existing)], key_id, now, &mut keys).await?;
        keys.write(&mut tx, self.engine()).await?;
        tx.commit().await?;
        written.into_iter().next().ok_or_else(|| StoreError::Inconsistent("nothing written".into()))
    }

    /// Writes a batch of a sync into `open`, beginning that transaction if this batch is the
    /// first to change anything; `index` is the organisation's existing holdings, and entries
    /// seen here are removed from it (what remains at the end is absent). The caller commits
    /// (`commit_sync`), so one transaction can carry many batches.
    pub async fn sync_batch(
        &self,
        open: &mut Option<SyncTransaction>,
        org_id: i64,
        batch: &[NewHolding],
        key_id: &str,
        now: Millis,
        index: &mut SyncIndex,
    ) -> StoreResult<Vec<Written>> {
        let items: Vec<_> = batch.iter().map(|h| (h, index.remove(&ref_hash(&h.local_ref)))).collect();
        let all_unchanged = items.iter().all(|(h, e)| change_of(h, *e) == Change::Unchanged);
        if all_unchanged {
            // A re-sync of an unchanged caseload takes no write lock at all.
            return Ok(items.iter().map(|(_, e)| Written::new(Change::Unchanged, e.map_or(0, |(id, _)| id))).collect());
        }
        let tx = match open {
            Some(tx) => tx,
            None => open.insert(SyncTransaction {
                tx: self.begin_write_uncounted().await?,
                rows: 0,
                opened_at: now,
                committed: Committed::default(),
                keys: KeyChanges::default(),
            }),
        };
        tx.rows += batch.len();
        let written = write_holdings(&mut tx.tx, self.engine(), org_id, &items, key_id, now, &mut tx.keys).await?;
        for w in &written {
            match w.change {
                Change::Added => tx.committed.added += 1,
                Change::Updated => tx.committed.updated += 1,
                Change::Unchanged => {}
            }
        }
        Ok(written)
    }

    /// Commits a sync's transaction behind the run's fence (`sync_leases::fence`), so the
    /// run's counts say what it committed, and a run that lost its lease commits nothing.
    pub async fn commit_sync(
        &self,
        mut open: SyncTransaction,
        lease: &LeaseRef,
        expires_at: Millis,
    ) -> StoreResult<()> {
        std::mem::take(&mut open.keys).write(&mut open.tx, self.engine()).await?;
        fence(&mut open.tx, lease, expires_at, open.committed).await?;
        open.tx.commit().await?;
        Ok(())
    }

    /// Refreshes the planner's statistics after a large change. PostgreSQL without statistics
    /// for freshly loaded tables plans the candidate search as sequential scans (80 ms instead of
    /// 2 ms at 100,000 holdings) until autovacuum gets round to it. SQLite's plans for these
    /// queries follow the indexes without statistics (and ANALYZE there reads whole tables).
    pub async fn analyze_holdings(&self) -> StoreResult<()> {
        if self.engine() == Engine::Postgres {
            let mut conn = self.write_conn().await?;
            for table in ["holdings", "pseudonyms"] {
                sqlx::query(&format!("ANALYZE {table}")).execute(&mut *conn).await?;
            }
        }
        Ok(())
    }

    /// The organisation's holdings as a compact sync index.
    pub async fn sync_index(&self, org_id: i64) -> StoreResult<SyncIndex> {
        let rows = sqlx::query("SELECT id, local_ref, fingerprint FROM holdings WHERE org_id = $1")
            .bind(org_id)
            .fetch_all(self.reader())
            .await?;
        let mut index = SyncIndex::with_capacity(rows.len());
        for row in rows {
            let local_ref: String = row.try_get("local_ref")?;
            let fp: Vec<u8> = row.try_get("fingerprint")?;
            index.insert(ref_hash(&local_ref), (row.try_get("id")?, fingerprint_prefix(&fp)));
        }
        Ok(index)
    }

    pub async fn holding(&self, org_id: i64, local_ref: &str) -> StoreResult<StoredHolding> {
        let row =
            sqlx::query(&format!("SELECT {HOLDING_COLUMNS} FROM holdings h WHERE h.org_id = $1 AND h.local_ref = $2"))
                .bind(org_id)
                .bind(local_ref)
                .fetch_optional(self.reader())
                .await?
                .ok_or(StoreError::NotFound)?;
        holding_from_row(&row)
    }

    /// Holdings with their organisations: only the columns an answer shows (no per-holding
    /// pseudonym count, which the admin views compute).
    async fn matched_holdings(&self, ids: &[i64]) -> StoreResult<Vec<MatchedHolding>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("{} WHERE h.id IN ({})", *MATCHED_HOLDING_SELECT, placeholders(1, ids.len()));
        let query = ids.iter().fold(sqlx::query(&sql), |q, id| q.bind(*id));
        query.fetch_all(self.reader()).await?.iter().map(matched_holding_from_row).collect()
    }

    /// Shields or unshields one of the organisation's holdings (not found for anyone else's).
    /// The fingerprint is left alone, so a later sync of an unchanged row keeps the flag.
    pub async fn set_shielded(&self, org_id: i64, local_ref: &str, shielded: bool, now: Millis) -> StoreResult<()> {
        let done =
            sqlx::query("UPDATE holdings SET shielded = $1, updated_at = $2 WHERE org_id = $3 AND local_ref = $4")
                .bind(i64::from(shielded))
                .bind(now)
                .bind(org_id)
                .bind(local_ref)
                .execute(&mut *self.write_conn().await?)
                .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Deletes holdings by id (own organisation only); returns how many went. A sync's removals
    /// go behind its fence (`sync_leases::fence`): counted in its run, or not made at all.
    pub async fn delete_holdings(
        &self,
        org_id: i64,
        ids: &[i64],
        sync: Option<(&LeaseRef, Millis)>,
    ) -> StoreResult<u64> {
        let mut deleted = 0;
        for chunk in ids.chunks(500) {
            let mut tx = self.begin_write().await?;
            let list = placeholders(2, chunk.len());
            let holdings_sql =
                format!("DELETE FROM holdings WHERE org_id = $1 AND id IN ({list}) RETURNING id, key_list");
            let del = chunk.iter().fold(sqlx::query(&holdings_sql).bind(org_id), |del, id| del.bind(*id));
            let deleted_rows = del.fetch_all(&mut *tx).await?;
            let mut keys = KeyChanges::default();
            for row in &deleted_rows {
                keys.remove(row.try_get("id")?, &row.try_get::<Vec<u8>, _>("key_list")?);
            }
            keys.write(&mut tx, self.engine()).await?;
            let gone = deleted_rows.len() as u64;
            count_holdings(&mut tx, org_id, -i64::try_from(gone).unwrap_or(i64::MAX)).await?;
            if let Some((lease, expires_at)) = sync {
                let removed = i64::try_from(gone).unwrap_or(i64::MAX);
                fence(&mut tx, lease, expires_at, Committed { removed, ..Committed::default() }).await?;
            }
            deleted += gone;
            tx.commit().await?;
        }
        Ok(deleted)
    }

    /// Every holding that carries any of these pseudonyms, with the kind each was stored under.
    ///
    /// Lookups ask about a thousand pseudonyms. They go in chunks of a few fixed sizes, the last
    /// padded by repeating a value, so each connection prepares each statement once and reuses it.
    pub async fn find_hits(&self, keys: &[IndexKey]) -> StoreResult<Vec<Hit>> {
        let mut hits = Vec::new();
        for (size, padded) in padded_chunks(keys, &HIT_SIZES) {
            let query = padded.fold(sqlx::query(find_hits_sql(self.engine(), size)), |q, key| q.bind(key.0));
            for row in query.fetch_all(self.reader()).await? {
                hits.push(hit_from_row(&row)?);
            }
        }
        Ok(hits)
    }

    /// A lookup's candidate search: `find_hits`, and every holding hit with what an answer may
    /// show of it (its organisation included), read together. On SQLite the two are one
    /// query; PostgreSQL, whose statements cost no thread hand-over, asks twice.
    pub async fn find_hits_and_holdings(&self, keys: &[IndexKey]) -> StoreResult<HitsAndHoldings> {
        let mut found = HitsAndHoldings::default();
        match self.engine() {
            Engine::Sqlite => {
                for (size, padded) in padded_chunks(keys, &HIT_SIZES) {
                    let padded: Vec<&IndexKey> = padded.collect();
                    let query = padded
                        .iter()
                        .chain(&padded)
                        .fold(sqlx::query(hits_and_holdings_sql(size)), |q, key| q.bind(key.0));
                    for row in query.fetch_all(self.reader()).await? {
                        // The second statement's rows are the holdings: only they have a local reference.
                        if row.try_column("local_ref").is_ok() {
                            found.holdings.push(matched_holding_from_row(&row)?);
                        } else {
                            found.hits.push(hit_from_row(&row)?);
                        }
                    }
                }
            }
            Engine::Postgres => {
                found.hits = self.find_hits(keys).await?;
                let mut ids: Vec<i64> = found.hits.iter().map(|h| h.holding_id).collect();
                ids.sort_unstable();
                ids.dedup();
                found.holdings = self.matched_holdings(&ids).await?;
            }
        }
        found.holdings.sort_unstable_by_key(|h| h.id);
        found.holdings.dedup_by_key(|h| h.id);
        Ok(found)
    }

    /// Closed holdings whose closure is older than `cutoff`: (holding id, organisation id).
    pub async fn closed_before(&self, cutoff: Millis) -> StoreResult<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT id, org_id FROM holdings WHERE status = 'closed' AND closed_at < $1 ORDER BY org_id, id",
        )
        .bind(cutoff)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("org_id")?))).collect()
    }

    /// Every stored key with how many holdings carry it, in pages (`after` is the last key of
    /// the previous page, `None` for the first), to build the lookup prefilter without holding
    /// the whole table in memory.
    pub async fn key_page(&self, after: Option<IndexKey>, limit: i64) -> StoreResult<Vec<(IndexKey, i64)>> {
        let from = match after {
            None => i64::MIN,
            Some(IndexKey(last)) => match last.checked_add(1) {
                Some(next) => next,
                None => return Ok(Vec::new()),
            },
        };
        let rows = sqlx::query(
            "SELECT pseudonym, COUNT(*) AS holders FROM pseudonyms WHERE pseudonym >= $1 \
             GROUP BY pseudonym ORDER BY pseudonym LIMIT $2",
        )
        .bind(from)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(|row| Ok((IndexKey(row.try_get("pseudonym")?), row.try_get("holders")?))).collect()
    }

    pub async fn count_pseudonyms(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM pseudonyms").fetch_one(self.reader()).await?)
    }

    /// The key lists of holdings written at or after `since` (by any node), one holding at a
    /// time: a reader takes them in without holding them all.
    pub fn key_lists_since(&self, since: Millis) -> impl futures::Stream<Item = StoreResult<Vec<u8>>> + '_ {
        use futures::TryStreamExt;
        sqlx::query_scalar("SELECT key_list FROM holdings WHERE updated_at >= $1")
            .bind(since)
            .fetch(self.reader())
            .map_err(StoreError::from)
    }

    /// The key lists of other organisations' holdings written at or after `since`, one holding
    /// at a time.
    pub fn key_lists_of_others_since(
        &self,
        org_id: i64,
        since: Millis,
    ) -> impl futures::Stream<Item = StoreResult<Vec<u8>>> + '_ {
        use futures::TryStreamExt;
        sqlx::query_scalar(
            // CROSS JOIN fixes SQLite's join order: organisations outside, so each one is a
            // range of holdings_by_org_updated rather than a scan of everyone's recent writes.
            "SELECT h.key_list FROM organisations o CROSS JOIN holdings h \
             WHERE h.org_id = o.id AND h.updated_at >= $1 AND o.id <> $2",
        )
        .bind(since)
        .bind(org_id)
        .fetch(self.reader())
        .map_err(StoreError::from)
    }

    /// Holdings per index key id, and per organisation for one key id (rotation progress).
    pub async fn holdings_by_key(&self) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT key_id, COUNT(*) AS n FROM holdings GROUP BY key_id ORDER BY key_id")
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(|r| Ok((r.try_get("key_id")?, r.try_get("n")?))).collect()
    }

    pub async fn organisations_on_key(&self, key_id: &str) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT o.code, COUNT(*) AS n FROM holdings h JOIN organisations o ON o.id = h.org_id \
             WHERE h.key_id = $1 GROUP BY o.code ORDER BY o.code",
        )
        .bind(key_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(|r| Ok((r.try_get("code")?, r.try_get("n")?))).collect()
    }

    /// Whether any holding still carries only key family 1's pseudonyms (written before
    /// migration 0025 and not re-keyed by a sync since). Reads the partial index of exactly those.
    pub async fn holdings_of_key_family_one(&self) -> StoreResult<bool> {
        // The literal matches the partial index's predicate, so both engines use it. Family 3
        // only adds keys a family-2 holding lacks until its next sync (nothing it had stops
        // meeting), so only family 1 needs the lookups' extra variants and this probe.
        const _: () = assert!(KEY_FAMILY == 3, "a new key family needs a migration and this query reviewed");
        let row =
            sqlx::query("SELECT id FROM holdings WHERE key_family < 2 LIMIT 1").fetch_optional(self.reader()).await?;
        Ok(row.is_some())
    }

    /// Holdings in all, organisations that have any, and the latest write to any holding: from
    /// the kept counts and one index seek per organisation, never a count of the holdings.
    pub async fn coverage(&self) -> StoreResult<(i64, i64, Option<Millis>)> {
        let row = sqlx::query(
            // A range on org_id and an order that only holdings_by_org_updated gives make
            // PostgreSQL seek that index. Given `org_id = ?` (and so only `updated_at` to order
            // by) it walked holdings_by_updated backwards past everyone else's rows: 0.4 s at 1 M.
            "SELECT CAST(COALESCE(SUM(c.holdings), 0) AS BIGINT) AS n, COUNT(*) AS orgs, \
             MAX((SELECT h.updated_at FROM holdings h WHERE h.org_id >= c.org_id AND h.org_id <= c.org_id \
                  ORDER BY h.org_id DESC, h.updated_at DESC LIMIT 1)) AS latest \
             FROM holding_counts c WHERE c.holdings > 0",
        )
        .fetch_one(self.reader())
        .await?;
        Ok((row.try_get("n")?, row.try_get("orgs")?, row.try_get("latest")?))
    }
}

/// Adds `change` to the organisation's kept count of holdings, in the transaction that added or
/// deleted them.
async fn count_holdings(tx: &mut Transaction<'static, Any>, org_id: i64, change: i64) -> StoreResult<()> {
    if change != 0 {
        sqlx::query(
            "INSERT INTO holding_counts (org_id, holdings) VALUES ($1, $2) \
             ON CONFLICT (org_id) DO UPDATE SET holdings = holding_counts.holdings + excluded.holdings",
        )
        .bind(org_id)
        .bind(change)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Writes holdings in the caller's transaction, each against what the index already had for its
/// local_ref (id and fingerprint prefix): unchanged ones are left alone, changed ones updated in
/// place, new ones inserted. New holdings go in multi-row statements, so a sync batch costs a
/// handful of statements, not a few per holding. What they change in the key index is added to
/// `keys`, for the caller to write before it commits.
async fn write_holdings(
    tx: &mut Transaction<'static, Any>,
    engine: Engine,
    org_id: i64,
    items: &[(&NewHolding, Option<(i64, u64)>)],
    key_id: &str,
    now: Millis,
    keys: &mut KeyChanges,
) -> StoreResult<Vec<Written>> {
    let mut out = Vec::with_capacity(items.len());
    let mut fresh = Vec::new();
    let mut rewritten = Vec::new();
    for (i, (h, existing)) in items.iter().enumerate() {
        let id = existing.map_or(0, |(id, _)| id);
        let change = change_of(h, *existing);
        match change {
            Change::Unchanged => {}
            Change::Updated => rewritten.push(i),
            Change::Added => fresh.push(i),
        }
        out.push(Written::new(change, id));
    }
    // The old keys are found through the list the update replaces, so it is read first.
    let rewritten_ids: Vec<i64> = rewritten.iter().map(|&i| out[i].id).collect();
    let mut old_lists = key_lists_of(tx, engine, &rewritten_ids).await?;
    for i in rewritten {
        let (h, written) = (items[i].0, &mut out[i]);
        update_holding(tx, written.id, h, key_id, now).await?;
        let old_list = old_lists.remove(&written.id).unwrap_or_default();
        written.keys_before = IndexKey::all_in_key_list(&old_list).collect();
        written.keys_before.sort_unstable();
        keys.rekey(written.id, &written.keys_before, h);
    }
    let fresh_holdings: Vec<&NewHolding> = fresh.iter().map(|&i| items[i].0).collect();
    let ids = insert_holdings(tx, engine, org_id, &fresh_holdings, key_id, now).await?;
    for (i, id) in fresh.iter().zip(ids) {
        out[*i].id = id;
        keys.add(id, items[*i].0);
    }
    count_holdings(tx, org_id, i64::try_from(fresh.len()).unwrap_or(i64::MAX)).await?;
    Ok(out)
}

/// The key lists of holdings about to be keyed again, by id.
async fn key_lists_of(
    tx: &mut Transaction<'static, Any>,
    engine: Engine,
    holdings: &[i64],
) -> StoreResult<HashMap<i64, Vec<u8>>> {
    let mut lists = HashMap::with_capacity(holdings.len());
    for (size, padded) in padded_chunks(holdings, &HOLDING_READ_SIZES) {
        let sql = format!("SELECT id, key_list FROM holdings WHERE id IN {}", value_rows(engine, 1, 1, size));
        let query = padded.fold(sqlx::query(&sql), |query, id| query.bind(*id));
        for row in query.fetch_all(&mut **tx).await? {
            lists.insert(row.try_get("id")?, row.try_get("key_list")?);
        }
    }
    Ok(lists)
}

/// The sizes a read of holdings' key lists is padded to.
const HOLDING_READ_SIZES: [usize; 3] = [8, 64, 512];

/// A holding's pseudonyms end to end: what deleting or re-keying it later reads.
fn key_list(h: &NewHolding) -> Vec<u8> {
    h.keys.iter().flat_map(|k| *k.pseudonym.as_bytes()).collect()
}

/// Inserts new holdings; their ids, in the order given.
async fn insert_holdings(
    tx: &mut Transaction<'static, Any>,
    engine: Engine,
    org_id: i64,
    fresh: &[&NewHolding],
    key_id: &str,
    now: Millis,
) -> StoreResult<Vec<i64>> {
    let insert = Insert::new(
        "holdings (org_id, local_ref, category, status, closed_at, contact_team, contact_phone, contact_email, \
         fields_present, key_id, fingerprint, created_at, updated_at, carer_fields, carers, shielded, key_family, \
         key_list)",
        "RETURNING id, local_ref",
        18,
        fresh,
        move |query, h| {
            query
                .bind(org_id)
                .bind(h.local_ref.clone())
                .bind(h.category.as_str())
                .bind(h.status.as_str())
                .bind((h.status == Status::Closed).then_some(now))
                .bind(h.contact.team.clone())
                .bind(h.contact.phone.clone())
                .bind(h.contact.email.clone())
                .bind(i64::from(h.fields_present.bits()))
                .bind(key_id.to_owned())
                .bind(h.fingerprint.to_vec())
                .bind(now)
                .bind(now)
                .bind(h.carer_fields.0)
                .bind(i64::from(h.carers))
                .bind(i64::from(h.shielded.unwrap_or(false)))
                .bind(i64::from(KEY_FAMILY))
                .bind(key_list(h))
        },
    );
    // RETURNING order is not promised, so ids are matched back by local_ref.
    let position: HashMap<&str, usize> = fresh.iter().enumerate().map(|(i, h)| (h.local_ref.as_str(), i)).collect();
    let mut ids = vec![0; fresh.len()];
    for row in insert_repeated(tx, engine, &insert).await? {
        let local_ref: String = row.try_get("local_ref")?;
        let i = *position.get(local_ref.as_str()).ok_or_else(|| StoreError::Inconsistent("unexpected row".into()))?;
        ids[i] = row.try_get("id")?;
    }
    Ok(ids)
}

async fn update_holding(
    tx: &mut Transaction<'static, Any>,
    id: i64,
    h: &NewHolding,
    key_id: &str,
    now: Millis,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE holdings SET category = $1, status = $2, \
         closed_at = CASE WHEN $3 IS NULL THEN NULL ELSE COALESCE(closed_at, $3) END, \
         contact_team = $4, contact_phone = $5, contact_email = $6, fields_present = $7, key_id = $8, \
         fingerprint = $9, updated_at = $10, carer_fields = $11, carers = $12, shielded = COALESCE($13, shielded), \
         key_family = $14, key_list = $15 WHERE id = $16",
    )
    .bind(h.category.as_str())
    .bind(h.status.as_str())
    .bind((h.status == Status::Closed).then_some(now))
    .bind(&h.contact.team)
    .bind(&h.contact.phone)
    .bind(&h.contact.email)
    .bind(i64::from(h.fields_present.bits()))
    .bind(key_id)
    .bind(h.fingerprint.as_slice())
    .bind(now)
    .bind(h.carer_fields.0)
    .bind(i64::from(h.carers))
    .bind(h.shielded.map(i64::from))
    .bind(i64::from(KEY_FAMILY))
    .bind(key_list(h))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        // Deleted by hand while a sync ran: stop (and roll back) rather than write its
        // pseudonyms for a holding that is no longer there.
        return Err(StoreError::Conflict(
            "a record in the file was deleted while this sync ran; nothing was removed: send the file again",
        ));
    }
    Ok(())
}

/// A lookup by another organisation that reached one of ours: the holder's view.
#[derive(Debug, Clone)]
pub struct ReceivedLookup {
    pub at: Millis,
    pub lookup_id: String,
    pub match_id: String,
    pub asker_name: String,
    pub asker_org_code: String,
    pub asker_org_name: String,
    pub purpose: String,
    pub local_ref: Option<String>,
    pub tier: String,
    pub basis: String,
    /// The record was shielded: the asker was not told who holds it, and waits for your call.
    pub shielded: bool,
}

impl Store {
    /// Lookups that matched this organisation's holdings, newest first (time, then match id):
    /// those before `before` (a time) and after `after` (the previous page's last row).
    pub async fn lookups_received(
        &self,
        holder_org_id: i64,
        before: Millis,
        after: Option<&PageCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ReceivedLookup>> {
        let page = match after {
            Some(_) => format!(" AND {}", older_than_cursor("lm.at", "lm.match_id", 4, 5)),
            None => String::new(),
        };
        let sql = format!(
            "SELECT lm.at, lm.lookup_id, lm.match_id, u.name AS asker_name, o.code, o.name AS org_name, lm.purpose, \
                    h.local_ref, lm.tier, lm.basis, lm.shielded \
             FROM lookup_matches lm \
             JOIN users u ON u.id = lm.asker_user_id \
             JOIN organisations o ON o.id = lm.asker_org_id \
             LEFT JOIN holdings h ON h.id = lm.holding_id \
             WHERE lm.holder_org_id = $1 AND lm.at < $2{page} ORDER BY lm.at DESC, lm.match_id DESC LIMIT $3"
        );
        let mut query = sqlx::query(&sql).bind(holder_org_id).bind(before).bind(limit);
        if let Some(cursor) = after {
            query = query.bind(cursor.at).bind(cursor.id.clone());
        }
        let rows = query.fetch_all(self.reader()).await?;
        rows.iter()
            .map(|r| {
                Ok(ReceivedLookup {
                    at: r.try_get("at")?,
                    lookup_id: r.try_get("lookup_id")?,
                    match_id: r.try_get("match_id")?,
                    asker_name: r.try_get("asker_name")?,
                    asker_org_code: r.try_get("code")?,
                    asker_org_name: r.try_get("org_name")?,
                    purpose: r.try_get("purpose")?,
                    local_ref: r.try_get("local_ref")?,
                    tier: r.try_get("tier")?,
                    basis: r.try_get("basis")?,
                    shielded: r.try_get::<i64, _>("shielded")? != 0,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::holding::HoldingInput;
    use crate::domain::identity::{IndexSecret, Pseudonymiser};
    use crate::domain::keyring::Keyring;

    fn holding(given_name: &str) -> NewHolding {
        let input: HoldingInput = serde_json::from_value(serde_json::json!({
            "category": "child-in-need", "status": "open",
            "subject": {"given_name": given_name, "family_name": "Thistlewood", "date_of_birth": "2015-01-02"}
        }))
        .expect("a holding");
        let keyring = Keyring::new(Pseudonymiser::new(&IndexSecret::from_bytes([1; 32])), None);
        let today = time::Date::from_calendar_date(2026, time::Month::December, 7).expect("a date");
        input.into_holding("CASE-1", &keyring, today).expect("valid")
    }

    fn index_keys(holding: &NewHolding) -> Vec<IndexKey> {
        let mut keys: Vec<IndexKey> = holding.keys.iter().map(|k| k.pseudonym.index_key()).collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn a_written_holding_is_new_to_the_keys_it_did_not_carry_before() {
        let (before, after) = (holding("Ruby"), holding("Rosalind"));
        let mut added: Vec<IndexKey> = Written::new(Change::Added, 1).new_keys(&after).collect();
        added.sort_unstable();
        assert_eq!(added, index_keys(&after), "a new holding: every key");

        let updated = Written { keys_before: index_keys(&before), ..Written::new(Change::Updated, 1) };
        let new: Vec<IndexKey> = updated.new_keys(&after).collect();
        assert!(!new.is_empty(), "the new given name's keys");
        assert!(new.len() < after.keys.len(), "the family name's and date's keys were there before");
        assert!(new.iter().all(|key| index_keys(&before).binary_search(key).is_err()));

        assert_eq!(Written::new(Change::Unchanged, 1).new_keys(&after).count(), 0, "unchanged: none");
    }
}
