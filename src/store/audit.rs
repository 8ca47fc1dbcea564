//! Audit log persistence: appending batches under the head-row lock, and reading entries
//! back for verification, export and the IG officer's views.

use sqlx::Row;

use sqlx::{Any, Transaction};

use super::{Engine, Insert, Store, StoreError, StoreResult, insert_all, placeholders};
use crate::audit::merkle::{Hash, NodeId};
use crate::clock::Millis;
use crate::domain::identity::Pseudonym;

/// The stored head of the log.
#[derive(Debug, Clone)]
pub struct AuditHead {
    pub size: u64,
    pub frontier: Vec<u8>,
    pub checkpoint: Option<String>,
    /// How many leaves have their subtree nodes in `audit_nodes` (a prefix of the log).
    pub nodes_size: u64,
}

/// One event row as written.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub seq: u64,
    pub at: Millis,
    pub kind: &'static str,
    pub actor_user_id: Option<i64>,
    pub actor_org_id: Option<i64>,
    pub purpose: Option<String>,
    pub lookup_id: Option<String>,
    pub body: Vec<u8>,
    pub leaf_hash: Vec<u8>,
    pub scope: Vec<i64>,
    pub attachments: Vec<crate::audit::Attachment>,
    /// Stored in `audit_free_text` beside the leaf, which holds only its commitment.
    pub free_text: Option<String>,
}

/// What the audit writer decided for one batch, computed from the head it was given.
pub struct AuditBatch {
    pub rows: Vec<AuditRow>,
    pub head: AuditHead,
    /// A checkpoint to keep in the history table (the head always holds the latest).
    pub keep_checkpoint: Option<(u64, String)>,
    /// The subtree nodes this batch completed (empty while older nodes are still being built).
    pub nodes: Vec<(NodeId, Hash)>,
}

/// One entry read back for verification or export.
#[derive(Debug, Clone)]
pub struct StoredAuditEntry {
    pub seq: i64,
    pub body: Vec<u8>,
    pub leaf_hash: Vec<u8>,
}

fn u64_of(v: i64) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| StoreError::Inconsistent("negative audit size".into()))
}

fn i64_of(v: u64) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::Inconsistent("audit size out of range".into()))
}

impl Store {
    /// Appends a batch in one transaction. `build` sees the head as locked by this transaction,
    /// so concurrent writers (other tasks, other nodes on one PostgreSQL) extend one log.
    pub async fn append_audit<E>(
        &self,
        build: impl FnOnce(&AuditHead) -> Result<AuditBatch, E>,
    ) -> StoreResult<Result<u64, E>> {
        let mut tx = self.begin_audit_write().await?;
        // Reading the head row locks it, so no other writer can read the same size until we commit.
        let head = lock_head(&mut tx, self.engine()).await?;
        let batch = match build(&head) {
            Ok(batch) => batch,
            Err(e) => return Ok(Err(e)),
        };
        write_batch(&mut tx, self.engine(), &batch).await?;
        tx.commit().await?;
        Ok(Ok(batch.head.size))
    }

    pub async fn audit_head(&self) -> StoreResult<AuditHead> {
        let row = sqlx::query("SELECT size, frontier, checkpoint, nodes_size FROM audit_head WHERE id = 1")
            .fetch_one(self.reader())
            .await?;
        head_of(&row)
    }

    /// The stored hashes of these subtree nodes (one primary-key read each); a node not stored
    /// is simply absent from the answer.
    pub async fn audit_nodes(&self, ids: &[NodeId]) -> StoreResult<Vec<(NodeId, Vec<u8>)>> {
        let mut found = Vec::with_capacity(ids.len());
        // 100 nodes (200 parameters) a statement: a proof of a 2^64 log needs about 130.
        for chunk in ids.chunks(100) {
            let wanted = (0..chunk.len())
                .map(|i| format!("(level = ${} AND idx = ${})", 2 * i + 1, 2 * i + 2))
                .collect::<Vec<_>>()
                .join(" OR ");
            let sql = format!("SELECT level, idx, hash FROM audit_nodes WHERE {wanted}");
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(i64::from(id.level)).bind(i64_of(id.index)?);
            }
            for row in query.fetch_all(self.reader()).await? {
                let level = u8::try_from(row.try_get::<i64, _>("level")?)
                    .map_err(|_| StoreError::Inconsistent("audit node level out of range".into()))?;
                let index = u64_of(row.try_get("idx")?)?;
                found.push((NodeId { level, index }, row.try_get("hash")?));
            }
        }
        Ok(found)
    }

    /// Stores the subtree nodes of up to `page` leaves that have none yet (a trail from before
    /// the node table), in one transaction under the head's lock, and answers how many leaves
    /// are now covered and the log's size. `build` gets the first uncovered position, the stored
    /// roots of the covered prefix (as `covering(0, from)` lists them) and the next leaf hashes,
    /// and returns the nodes they complete. Resumable: each page commits on its own.
    pub async fn backfill_audit_nodes<E>(
        &self,
        page: u64,
        prefix_roots: impl FnOnce(u64) -> Vec<NodeId>,
        build: impl FnOnce(u64, Vec<Vec<u8>>, Vec<Vec<u8>>) -> Result<Vec<(NodeId, Hash)>, E>,
    ) -> StoreResult<Result<(u64, u64), E>> {
        let mut tx = self.begin_audit_write().await?;
        let head = lock_head(&mut tx, self.engine()).await?;
        if head.nodes_size >= head.size {
            return Ok(Ok((head.nodes_size, head.size)));
        }
        let from = head.nodes_size;
        let mut roots = Vec::new();
        for id in prefix_roots(from) {
            let hash: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT hash FROM audit_nodes WHERE level = $1 AND idx = $2")
                    .bind(i64::from(id.level))
                    .bind(i64_of(id.index)?)
                    .fetch_optional(&mut *tx)
                    .await?;
            roots.push(hash.ok_or_else(|| StoreError::Inconsistent("a stored audit node is missing".into()))?);
        }
        let until = head.size.min(from.saturating_add(page));
        let leaves: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT leaf_hash FROM audit_events WHERE seq >= $1 AND seq < $2 ORDER BY seq")
                .bind(i64_of(from)?)
                .bind(i64_of(until)?)
                .fetch_all(&mut *tx)
                .await?;
        if u64::try_from(leaves.len()).ok() != Some(until - from) {
            return Err(StoreError::Inconsistent("audit entries are missing below the head".into()));
        }
        let nodes = match build(from, roots, leaves) {
            Ok(nodes) => nodes,
            Err(e) => return Ok(Err(e)),
        };
        insert_all(&mut tx, self.engine(), &[insert_nodes(&nodes)]).await?;
        sqlx::query("UPDATE audit_head SET nodes_size = $1 WHERE id = 1")
            .bind(i64_of(until)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok((until, head.size)))
    }

    /// The latest signed checkpoint recorded in the main database (SQLite), if any.
    pub async fn audit_high_water(&self) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT note FROM main.audit_high_water WHERE id = 1")
            .fetch_optional(self.reader())
            .await?)
    }

    /// Records the checkpoint at `size` in the main database unless a larger one is recorded.
    pub async fn record_audit_high_water(&self, size: u64, note: &str) -> StoreResult<()> {
        let mut conn = self.write_conn().await?;
        sqlx::query(
            "INSERT INTO audit_high_water (id, tree_size, note) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET tree_size = excluded.tree_size, note = excluded.note \
             WHERE excluded.tree_size > audit_high_water.tree_size",
        )
        .bind(i64_of(size)?)
        .bind(note)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The kept checkpoint history (signed notes), oldest first.
    pub async fn audit_checkpoints(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT note FROM audit_checkpoints ORDER BY tree_size").fetch_all(self.reader()).await?)
    }

    /// The largest kept checkpoint's size and time, so a writer knows when to keep the next.
    pub async fn latest_kept_checkpoint(&self) -> StoreResult<Option<(u64, Millis)>> {
        let row = sqlx::query("SELECT tree_size, at FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1")
            .fetch_optional(self.reader())
            .await?;
        match row {
            Some(row) => Ok(Some((u64_of(row.try_get("tree_size")?)?, row.try_get("at")?))),
            None => Ok(None),
        }
    }

    /// A page of entries in log order from `from_seq`, for streaming verification and export.
    pub async fn audit_entries(&self, from_seq: i64, limit: i64) -> StoreResult<Vec<StoredAuditEntry>> {
        let rows = sqlx::query("SELECT seq, body, leaf_hash FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT $2")
            .bind(from_seq)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredAuditEntry {
                    seq: r.try_get("seq")?,
                    body: r.try_get("body")?,
                    leaf_hash: r.try_get("leaf_hash")?,
                })
            })
            .collect()
    }

    /// Leaf hashes of the first `size` entries, for inclusion and consistency proofs.
    pub async fn audit_leaf_hashes(&self, size: u64) -> StoreResult<Vec<Vec<u8>>> {
        Ok(sqlx::query_scalar("SELECT leaf_hash FROM audit_events WHERE seq < $1 ORDER BY seq")
            .bind(i64_of(size)?)
            .fetch_all(self.reader())
            .await?)
    }

    /// Event bodies by sequence number (for the IG views, which parse the canonical JSON).
    pub async fn audit_bodies(&self, seqs: &[i64]) -> StoreResult<Vec<(i64, Vec<u8>)>> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT seq, body FROM audit_events WHERE seq IN ({}) ORDER BY seq DESC",
            placeholders(1, seqs.len())
        );
        let mut query = sqlx::query(&sql);
        for s in seqs {
            query = query.bind(*s);
        }
        let rows = query.fetch_all(self.reader()).await?;
        rows.iter().map(|r| Ok((r.try_get("seq")?, r.try_get("body")?))).collect()
    }
}

/// Reads the head row and locks it, so no other writer can read the same size until this
/// transaction ends: FOR UPDATE on PostgreSQL (a row lock, no new row version to vacuum away);
/// on SQLite an update that changes nothing takes the file's write lock if it is not held.
async fn lock_head(tx: &mut Transaction<'static, Any>, engine: Engine) -> StoreResult<AuditHead> {
    let sql = match engine {
        Engine::Postgres => "SELECT size, frontier, checkpoint, nodes_size FROM audit_head WHERE id = 1 FOR UPDATE",
        Engine::Sqlite => {
            "UPDATE audit_head SET size = size WHERE id = 1 RETURNING size, frontier, checkpoint, nodes_size"
        }
    };
    head_of(&sqlx::query(sql).fetch_one(&mut **tx).await?)
}

fn head_of(row: &sqlx::any::AnyRow) -> StoreResult<AuditHead> {
    Ok(AuditHead {
        size: u64_of(row.try_get("size")?)?,
        frontier: row.try_get("frontier")?,
        checkpoint: row.try_get("checkpoint")?,
        nodes_size: u64_of(row.try_get("nodes_size")?)?,
    })
}

/// The insert of subtree nodes; a node already stored is left as it is (a retried page).
fn insert_nodes(nodes: &[(NodeId, Hash)]) -> Insert<'_> {
    Insert::new(
        "audit_nodes (level, idx, hash)",
        "ON CONFLICT (level, idx) DO NOTHING",
        3,
        nodes,
        |query, (id, hash)| {
            query.bind(i64::from(id.level)).bind(i64::try_from(id.index).unwrap_or(i64::MAX)).bind(hash.to_vec())
        },
    )
}

/// A lookup's match as `lookup_matches` keeps it: the event's seq and row, then the match id,
/// holding, holder, tier, basis and whether it is shielded.
type LookupMatchRow<'a> = (i64, &'a AuditRow, &'a str, i64, i64, &'static str, &'static str, bool);

/// The lookups' matches, and each lookup's asked pseudonyms end to end, in the batch's events.
fn lookup_attachments<'a>(rows: &[(i64, &'a AuditRow)]) -> (Vec<LookupMatchRow<'a>>, Vec<(i64, Vec<u8>)>) {
    use crate::audit::Attachment;
    let (mut matches, mut pseudonyms) = (Vec::new(), Vec::new());
    for &(seq, row) in rows {
        let mut asked = Vec::new();
        for attachment in &row.attachments {
            match attachment {
                Attachment::LookupMatch { match_id, holding_id, holder_org_id, tier, basis, shielded } => {
                    matches.push((seq, row, match_id.as_str(), *holding_id, *holder_org_id, *tier, *basis, *shielded))
                }
                Attachment::LookupPseudonym(p) => asked.extend_from_slice(p.as_bytes()),
            }
        }
        if !asked.is_empty() {
            pseudonyms.push((seq, asked));
        }
    }
    (matches, pseudonyms)
}

fn insert_lookup_matches<'a>(matches: &'a [LookupMatchRow<'a>]) -> Insert<'a> {
    Insert::new(
        "lookup_matches (match_id, lookup_id, seq, asker_user_id, asker_org_id, holding_id, holder_org_id, tier, \
         purpose, at, basis, shielded)",
        "",
        12,
        matches,
        |query, (seq, r, match_id, holding_id, holder_org_id, tier, basis, shielded)| {
            query
                .bind(match_id.to_string())
                .bind(r.lookup_id.clone().unwrap_or_default())
                .bind(*seq)
                .bind(r.actor_user_id.unwrap_or_default())
                .bind(r.actor_org_id.unwrap_or_default())
                .bind(*holding_id)
                .bind(*holder_org_id)
                .bind(*tier)
                .bind(r.purpose.clone().unwrap_or_default())
                .bind(r.at)
                .bind(*basis)
                .bind(i64::from(*shielded))
        },
    )
}

/// A batch's events, their attachments, their organisation scopes, the new head and any
/// checkpoint kept, written together (see `insert_all`): a group commit costs the same four
/// round trips (begin, head, this, commit) however many lookups it carries.
async fn write_batch(tx: &mut Transaction<'static, Any>, engine: Engine, batch: &AuditBatch) -> StoreResult<()> {
    let seqs = batch.rows.iter().map(|r| i64_of(r.seq)).collect::<StoreResult<Vec<i64>>>()?;
    let rows: Vec<(i64, &AuditRow)> = seqs.into_iter().zip(&batch.rows).collect();
    let (matches, pseudonyms) = lookup_attachments(&rows);
    let head =
        [(i64_of(batch.head.size)?, &batch.head.frontier, &batch.head.checkpoint, i64_of(batch.head.nodes_size)?)];
    let at = batch.rows.first().map(|r| r.at).unwrap_or_default();
    let kept = match &batch.keep_checkpoint {
        Some((size, note)) => vec![(i64_of(*size)?, note, at)],
        None => vec![],
    };
    let free_texts: Vec<(i64, &str)> =
        rows.iter().filter_map(|(seq, r)| r.free_text.as_deref().map(|t| (*seq, t))).collect();
    let scopes: Vec<(i64, i64)> =
        rows.iter().flat_map(|(seq, r)| r.scope.iter().map(move |org| (*org, *seq))).collect();
    let inserts = [
        Insert::new(
            "audit_events (seq, at, type, actor_user_id, actor_org_id, purpose, lookup_id, body, leaf_hash)",
            "",
            9,
            &rows,
            |query, (seq, r)| {
                query
                    .bind(*seq)
                    .bind(r.at)
                    .bind(r.kind)
                    .bind(r.actor_user_id)
                    .bind(r.actor_org_id)
                    .bind(r.purpose.clone())
                    .bind(r.lookup_id.clone())
                    .bind(r.body.clone())
                    .bind(r.leaf_hash.clone())
            },
        ),
        insert_lookup_matches(&matches),
        // One row an event, at the end of its B-tree; the writer indexes them by pseudonym later.
        Insert::new("lookup_pseudonyms_pending (seq, pseudonyms)", "", 2, &pseudonyms, |query, (seq, asked)| {
            query.bind(*seq).bind(asked.clone())
        }),
        Insert::new("audit_free_text (seq, text)", "", 2, &free_texts, |query, (seq, text)| {
            query.bind(*seq).bind(text.to_string())
        }),
        Insert::new("audit_event_orgs (org_id, seq)", "", 2, &scopes, |query, (org, seq)| query.bind(*org).bind(*seq)),
        // The head row exists (the batch began by locking it): this upsert is an update.
        Insert::new(
            "audit_head (id, size, frontier, checkpoint, nodes_size)",
            "ON CONFLICT (id) DO UPDATE SET size = excluded.size, frontier = excluded.frontier, \
             checkpoint = excluded.checkpoint, nodes_size = excluded.nodes_size",
            5,
            &head,
            |query, (size, frontier, checkpoint, nodes_size)| {
                query
                    .bind(1i64)
                    .bind(*size)
                    .bind(frontier.to_vec())
                    .bind(checkpoint.as_ref().map(|c| c.to_string()))
                    .bind(*nodes_size)
            },
        ),
        insert_nodes(&batch.nodes),
        Insert::new(
            "audit_checkpoints (tree_size, note, at)",
            "ON CONFLICT (tree_size) DO NOTHING",
            3,
            &kept,
            |query, (size, note, at)| query.bind(*size).bind(note.to_string()).bind(*at),
        ),
    ];
    insert_all(tx, engine, &inserts).await
}

/// The pseudonyms in a row of `lookup_pseudonyms_pending` (or one of `lookup_pseudonyms`, which
/// holds one): 16 bytes each, end to end.
pub(crate) fn pseudonyms_in(blob: &[u8]) -> StoreResult<impl Iterator<Item = &[u8]>> {
    if !blob.len().is_multiple_of(Pseudonym::LEN) {
        return Err(StoreError::Inconsistent("a stored list of pseudonyms is not whole pseudonyms".into()));
    }
    Ok(blob.chunks_exact(Pseudonym::LEN))
}

impl Store {
    /// Moves the pending pseudonyms of up to `events` events, oldest first, into the index that
    /// subject access searches, in one transaction of the trail's writer, and says how many
    /// events it moved. Nodes sharing one PostgreSQL move different rows at once (`SKIP LOCKED`).
    pub async fn index_pending_pseudonyms(&self, events: usize) -> StoreResult<usize> {
        let mut tx = self.begin_audit_write().await?;
        let take = match self.engine() {
            Engine::Postgres => {
                "DELETE FROM lookup_pseudonyms_pending WHERE seq IN (SELECT seq FROM lookup_pseudonyms_pending \
                 ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING seq, pseudonyms"
            }
            Engine::Sqlite => {
                "DELETE FROM lookup_pseudonyms_pending WHERE seq IN (SELECT seq FROM lookup_pseudonyms_pending \
                 ORDER BY seq LIMIT $1) RETURNING seq, pseudonyms"
            }
        };
        let limit = i64::try_from(events).unwrap_or(i64::MAX);
        let moved = sqlx::query(take).bind(limit).fetch_all(&mut *tx).await?;
        if moved.is_empty() {
            return Ok(0);
        }
        let mut rows: Vec<(&[u8], i64)> = Vec::with_capacity(moved.len() * 10);
        let blobs = moved
            .iter()
            .map(|r| Ok((r.try_get::<i64, _>("seq")?, r.try_get::<Vec<u8>, _>("pseudonyms")?)))
            .collect::<StoreResult<Vec<_>>>()?;
        for (seq, blob) in &blobs {
            rows.extend(pseudonyms_in(blob)?.map(|p| (p, *seq)));
        }
        // In key order, so consecutive rows of the batch land on the same index pages.
        rows.sort_unstable();
        rows.dedup();
        let insert = Insert::new(
            "lookup_pseudonyms (pseudonym, seq)",
            "ON CONFLICT DO NOTHING",
            2,
            &rows,
            |query, (pseudonym, seq)| query.bind(pseudonym.to_vec()).bind(*seq),
        );
        insert_all(&mut tx, self.engine(), &[insert]).await?;
        tx.commit().await?;
        Ok(moved.len())
    }

    /// How many events' pseudonyms wait to be indexed (the writer's backlog).
    pub async fn pending_pseudonym_events(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM lookup_pseudonyms_pending").fetch_one(self.reader()).await?)
    }

    /// How many events of a type a user caused since `since` (daily quotas, volume norms).
    /// How many subjects (children and carers) a user's lookups since `since` asked about, read
    /// from the signed event bodies (a lookup from before the count was recorded counts one).
    pub async fn count_subjects_looked_up(&self, user_id: i64, since: Millis) -> StoreResult<i64> {
        let subjects = match self.engine() {
            Engine::Sqlite => "json_extract(CAST(body AS TEXT), '$.details.subjects_asked')",
            Engine::Postgres => "(convert_from(body, 'UTF8')::jsonb #>> '{details,subjects_asked}')::bigint",
        };
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(COALESCE({subjects}, 1)), 0) AS BIGINT) FROM audit_events \
             WHERE actor_user_id = $1 AND type = $2 AND at >= $3"
        );
        Ok(sqlx::query_scalar(&sql)
            .bind(user_id)
            .bind(crate::audit::EventType::Lookup.as_str())
            .bind(since)
            .fetch_one(self.reader())
            .await?)
    }
}

/// An event's columns as stored beside its body, for `audit verify` to compare with the leaf.
#[derive(Debug, Clone)]
pub struct EventColumns {
    pub seq: i64,
    pub at: Millis,
    pub kind: String,
    pub actor_user_id: Option<i64>,
    pub actor_org_id: Option<i64>,
    pub purpose: Option<String>,
    pub lookup_id: Option<String>,
    pub body: Vec<u8>,
}

/// A `lookup_matches` row as stored.
#[derive(Debug, Clone)]
pub struct StoredMatchRow {
    pub seq: i64,
    pub match_id: String,
    pub lookup_id: String,
    pub asker_user_id: i64,
    pub asker_org_id: i64,
    pub holding_id: i64,
    pub holder_org_id: i64,
    pub tier: String,
    pub purpose: String,
    pub at: Millis,
    pub basis: String,
    pub shielded: bool,
}

/// Everything stored beside the leaves of `[from, to)` that a view reads.
#[derive(Debug, Clone, Default)]
pub struct DerivedPage {
    pub events: Vec<EventColumns>,
    /// (seq, org_id) from `audit_event_orgs`.
    pub orgs: Vec<(i64, i64)>,
    pub matches: Vec<StoredMatchRow>,
    /// (seq, pseudonyms end to end), indexed and pending rows alike.
    pub asked: Vec<(i64, Vec<u8>)>,
    /// (seq, text, erased_at) from `audit_free_text`.
    pub free_text: Vec<(i64, Option<String>, Option<Millis>)>,
}

impl Store {
    /// The rows beside the leaves `[from, to)`, each table read by its index on `seq`.
    pub async fn audit_derived_page(&self, from: i64, to: i64) -> StoreResult<DerivedPage> {
        let range = |sql: &'static str| sqlx::query::<Any>(sql).bind(from).bind(to);
        let events = range(
            "SELECT seq, at, type, actor_user_id, actor_org_id, purpose, lookup_id, body FROM audit_events \
             WHERE seq >= $1 AND seq < $2 ORDER BY seq",
        )
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|r| {
            Ok(EventColumns {
                seq: r.try_get("seq")?,
                at: r.try_get("at")?,
                kind: r.try_get("type")?,
                actor_user_id: r.try_get("actor_user_id")?,
                actor_org_id: r.try_get("actor_org_id")?,
                purpose: r.try_get("purpose")?,
                lookup_id: r.try_get("lookup_id")?,
                body: r.try_get("body")?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        let orgs = range("SELECT seq, org_id FROM audit_event_orgs WHERE seq >= $1 AND seq < $2")
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|r| Ok((r.try_get("seq")?, r.try_get("org_id")?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let matches = range(
            "SELECT seq, match_id, lookup_id, asker_user_id, asker_org_id, holding_id, holder_org_id, tier, purpose, \
             at, basis, shielded FROM lookup_matches WHERE seq >= $1 AND seq < $2",
        )
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|r| {
            Ok(StoredMatchRow {
                seq: r.try_get("seq")?,
                match_id: r.try_get("match_id")?,
                lookup_id: r.try_get("lookup_id")?,
                asker_user_id: r.try_get("asker_user_id")?,
                asker_org_id: r.try_get("asker_org_id")?,
                holding_id: r.try_get("holding_id")?,
                holder_org_id: r.try_get("holder_org_id")?,
                tier: r.try_get("tier")?,
                purpose: r.try_get("purpose")?,
                at: r.try_get("at")?,
                basis: r.try_get("basis")?,
                shielded: r.try_get::<i64, _>("shielded")? != 0,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        // One statement, one snapshot: a row the writer moves meanwhile is seen once.
        let with_pending = self.trail_has("lookup_pseudonyms_pending").await;
        let indexed = "SELECT seq, pseudonym AS pseudonyms FROM lookup_pseudonyms WHERE seq >= $1 AND seq < $2";
        let both = format!(
            "{indexed} UNION ALL SELECT seq, pseudonyms FROM lookup_pseudonyms_pending WHERE seq >= $3 AND seq < $4"
        );
        let mut asked = sqlx::query::<Any>(if with_pending { &both } else { indexed }).bind(from).bind(to);
        if with_pending {
            asked = asked.bind(from).bind(to);
        }
        let asked = asked
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|r| Ok((r.try_get("seq")?, r.try_get("pseudonyms")?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let free_text = if self.trail_has("audit_free_text").await {
            range("SELECT seq, text, erased_at FROM audit_free_text WHERE seq >= $1 AND seq < $2")
                .fetch_all(self.reader())
                .await?
                .iter()
                .map(|r| Ok((r.try_get("seq")?, r.try_get("text")?, r.try_get("erased_at")?)))
                .collect::<StoreResult<Vec<_>>>()?
        } else {
            Vec::new()
        };
        Ok(DerivedPage { events, orgs, matches, asked, free_text })
    }

    /// Rows beside the log that name a position the log does not have (`size` onwards, or
    /// negative): written around the writer, and read by views that do not join the log.
    pub async fn audit_rows_outside(&self, size: u64) -> StoreResult<Vec<(&'static str, i64)>> {
        let size = i64_of(size)?;
        let mut found = Vec::new();
        for table in
            ["audit_event_orgs", "lookup_matches", "lookup_pseudonyms", "lookup_pseudonyms_pending", "audit_free_text"]
        {
            if !self.trail_has(table).await {
                continue;
            }
            let sql = format!("SELECT MIN(seq) FROM {table} WHERE seq >= $1 OR seq < 0");
            let first: Option<i64> = sqlx::query_scalar(&sql).bind(size).fetch_one(self.reader()).await?;
            if let Some(seq) = first {
                found.push((table, seq));
            }
        }
        Ok(found)
    }

    /// Whether a table of the trail is there to read: a backup copy (one file, in the layout
    /// from before the split) has no pending pseudonyms, and a copy from before leaf v2 no free text.
    async fn trail_has(&self, table: &str) -> bool {
        sqlx::query(&format!("SELECT 1 FROM {table} LIMIT 0")).execute(self.reader()).await.is_ok()
    }

    /// Erases the free text of events before `before` (retention): the text goes, the leaf's
    /// commitment stays, and the row records when it was erased. Returns how many were erased.
    pub async fn erase_free_text_before(&self, before: Millis, now: Millis) -> StoreResult<u64> {
        let mut tx = self.begin_audit_write().await?;
        let erased = sqlx::query(
            "UPDATE audit_free_text SET text = NULL, erased_at = $1 WHERE text IS NOT NULL \
             AND seq IN (SELECT seq FROM audit_events WHERE at < $2)",
        )
        .bind(now)
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(erased)
    }
}
