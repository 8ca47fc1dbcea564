//! Reading the audit trail for information governance: filtered, scoped, paged event lists;
//! the lookups that asked about a child (subject access); and the facts anomaly rules need.

use std::collections::{HashMap, HashSet};

use sqlx::Row;
use sqlx::any::AnyRow;

use super::audit::pseudonyms_in;
use super::{Store, StoreResult, placeholders};
use crate::clock::Millis;
use crate::domain::identity::Pseudonym;

/// Filters for an event list. `scope_org` limits to events an organisation may see (its
/// own, and those that concerned it); `None` is the whole log (the operator's command line).
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub scope_org: Option<i64>,
    pub user_id: Option<i64>,
    pub actor_org_id: Option<i64>,
    pub kind: Option<String>,
    pub purpose: Option<String>,
    /// Inclusive lower and exclusive upper bound on the event's time.
    pub from: Option<Millis>,
    pub to: Option<Millis>,
    pub lookup_id: Option<String>,
    /// Only lookups by other organisations that matched this organisation's holdings.
    pub touching_holdings_of: Option<i64>,
    /// Only these events (subject access).
    pub seqs: Option<Vec<i64>>,
    /// The cursor: events strictly before this position.
    pub before_seq: Option<i64>,
    pub limit: i64,
}

/// One event with who did it, newest first in lists.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub seq: i64,
    pub at: Millis,
    pub kind: String,
    pub actor_user_id: Option<i64>,
    pub actor_org_id: Option<i64>,
    pub actor_name: Option<String>,
    pub actor_org_code: Option<String>,
    pub purpose: Option<String>,
    pub lookup_id: Option<String>,
    /// The canonical body (the Merkle leaf's bytes): no identifier, by construction.
    pub body: Vec<u8>,
    /// Free text kept beside the leaf (`None` if there was none or it was erased).
    pub free_text: Option<String>,
}

/// A record of ours that a lookup matched.
#[derive(Debug, Clone)]
pub struct OurRecord {
    pub match_id: String,
    pub local_ref: Option<String>,
    pub tier: String,
}

/// A lookup event as the anomaly rules need it, before its pseudonyms are attached.
#[derive(Debug, Clone)]
pub struct LookupEventFact {
    pub seq: i64,
    pub at: Millis,
    pub user_id: i64,
    pub org_id: Option<i64>,
    pub purpose: Option<String>,
    pub body: Vec<u8>,
    pub free_text: Option<String>,
    pub child_keys: Vec<Vec<u8>>,
}

enum Arg {
    Int(i64),
    Text(String),
}

fn event_from_row(r: &AnyRow) -> StoreResult<EventRow> {
    Ok(EventRow {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        kind: r.try_get("type")?,
        actor_user_id: r.try_get("actor_user_id")?,
        actor_org_id: r.try_get("actor_org_id")?,
        actor_name: r.try_get("actor_name")?,
        actor_org_code: r.try_get("actor_org_code")?,
        purpose: r.try_get("purpose")?,
        lookup_id: r.try_get("lookup_id")?,
        body: r.try_get("body")?,
        free_text: r.try_get("free_text")?,
    })
}

impl Store {
    /// A page of events, newest first, matching every filter given.
    pub async fn audit_events_page(&self, q: &EventQuery) -> StoreResult<Vec<EventRow>> {
        if q.seqs.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let mut args: Vec<Arg> = Vec::new();
        let next = |arg: Arg, args: &mut Vec<Arg>| {
            args.push(arg);
            format!("${}", args.len())
        };
        let mut sql = String::from(
            "SELECT e.seq, e.at, e.type, e.actor_user_id, e.actor_org_id, u.name AS actor_name, \
             o.code AS actor_org_code, e.purpose, e.lookup_id, e.body, ft.text AS free_text FROM audit_events e",
        );
        if let Some(org) = q.scope_org {
            let p = next(Arg::Int(org), &mut args);
            sql.push_str(&format!(" JOIN audit_event_orgs s ON s.seq = e.seq AND s.org_id = {p}"));
        }
        sql.push_str(
            " LEFT JOIN users u ON u.id = e.actor_user_id LEFT JOIN organisations o ON o.id = e.actor_org_id \
             LEFT JOIN audit_free_text ft ON ft.seq = e.seq WHERE 1 = 1",
        );
        let cond = |column: &str, arg: Arg, args: &mut Vec<Arg>| {
            let p = next(arg, args);
            format!(" AND {column} {p}")
        };
        let mut conditions = String::new();
        if let Some(v) = q.user_id {
            conditions.push_str(&cond("e.actor_user_id =", Arg::Int(v), &mut args));
        }
        if let Some(v) = q.actor_org_id {
            conditions.push_str(&cond("e.actor_org_id =", Arg::Int(v), &mut args));
        }
        if let Some(v) = &q.kind {
            conditions.push_str(&cond("e.type =", Arg::Text(v.clone()), &mut args));
        }
        if let Some(v) = &q.purpose {
            conditions.push_str(&cond("e.purpose =", Arg::Text(v.clone()), &mut args));
        }
        if let Some(v) = q.from {
            conditions.push_str(&cond("e.at >=", Arg::Int(v), &mut args));
        }
        if let Some(v) = q.to {
            conditions.push_str(&cond("e.at <", Arg::Int(v), &mut args));
        }
        if let Some(v) = &q.lookup_id {
            conditions.push_str(&cond("e.lookup_id =", Arg::Text(v.clone()), &mut args));
        }
        if let Some(v) = q.before_seq {
            conditions.push_str(&cond("e.seq <", Arg::Int(v), &mut args));
        }
        if let Some(org) = q.touching_holdings_of {
            let p = next(Arg::Int(org), &mut args);
            conditions.push_str(&format!(
                " AND e.type = 'lookup' AND e.actor_org_id <> {p} AND EXISTS \
                 (SELECT 1 FROM lookup_matches lm WHERE lm.seq = e.seq AND lm.holder_org_id = {p})"
            ));
        }
        if let Some(seqs) = &q.seqs {
            let list = placeholders(args.len() + 1, seqs.len());
            args.extend(seqs.iter().map(|s| Arg::Int(*s)));
            conditions.push_str(&format!(" AND e.seq IN ({list})"));
        }
        sql.push_str(&conditions);
        let p = next(Arg::Int(q.limit), &mut args);
        sql.push_str(&format!(" ORDER BY e.seq DESC LIMIT {p}"));
        let mut query = sqlx::query(&sql);
        for arg in args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
            };
        }
        query.fetch_all(self.reader()).await?.iter().map(event_from_row).collect()
    }

    /// Which of our records each of these lookups matched.
    pub async fn our_records_for(&self, holder_org_id: i64, seqs: &[i64]) -> StoreResult<HashMap<i64, Vec<OurRecord>>> {
        let mut out: HashMap<i64, Vec<OurRecord>> = HashMap::new();
        for chunk in seqs.chunks(500) {
            let sql = format!(
                "SELECT lm.seq, lm.match_id, lm.tier, h.local_ref FROM lookup_matches lm \
                 LEFT JOIN holdings h ON h.id = lm.holding_id \
                 WHERE lm.holder_org_id = $1 AND lm.seq IN ({}) ORDER BY lm.match_id",
                placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(holder_org_id);
            for s in chunk {
                query = query.bind(*s);
            }
            for r in query.fetch_all(self.reader()).await? {
                out.entry(r.try_get("seq")?).or_default().push(OurRecord {
                    match_id: r.try_get("match_id")?,
                    local_ref: r.try_get("local_ref")?,
                    tier: r.try_get("tier")?,
                });
            }
        }
        Ok(out)
    }

    /// The unshielded organisations (id, code) each of these lookups reached, from its matches.
    pub async fn holders_reached(&self, seqs: &[i64]) -> StoreResult<HashMap<i64, Vec<(i64, String)>>> {
        let mut out: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
        for chunk in seqs.chunks(500) {
            let sql = format!(
                "SELECT DISTINCT lm.seq, o.id, o.code FROM lookup_matches lm JOIN organisations o ON o.id = lm.holder_org_id \
                 WHERE lm.shielded = 0 AND lm.seq IN ({}) ORDER BY o.code",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for s in chunk {
                query = query.bind(*s);
            }
            for r in query.fetch_all(self.reader()).await? {
                out.entry(r.try_get("seq")?).or_default().push((r.try_get("id")?, r.try_get("code")?));
            }
        }
        Ok(out)
    }

    /// Events (lookups and subject access requests) that asked any of these pseudonyms: those
    /// in the index, and those the audit writer has not yet moved there.
    pub async fn events_asking(&self, pseudonyms: &[Pseudonym]) -> StoreResult<Vec<i64>> {
        let asked: HashSet<&[u8]> = pseudonyms.iter().map(|p| p.as_bytes().as_slice()).collect();
        let mut seqs = Vec::new();
        for chunk in pseudonyms.chunks(400) {
            // One statement reads one snapshot, so a row the writer moves from the pending table
            // into the index meanwhile is seen on one side or the other, never neither.
            let sql = format!(
                "SELECT seq, pseudonym AS pseudonyms FROM lookup_pseudonyms WHERE pseudonym IN ({}) \
                 UNION ALL SELECT seq, pseudonyms FROM lookup_pseudonyms_pending",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for p in chunk {
                query = query.bind(p.as_bytes().as_slice());
            }
            for row in query.fetch_all(self.reader()).await? {
                let blob: Vec<u8> = row.try_get("pseudonyms")?;
                if pseudonyms_in(&blob)?.any(|p| asked.contains(p)) {
                    seqs.push(row.try_get("seq")?);
                }
            }
        }
        seqs.sort_unstable();
        seqs.dedup();
        Ok(seqs)
    }

    /// Lookups that matched any of these holdings.
    pub async fn lookups_matching_holdings(&self, holding_ids: &[i64]) -> StoreResult<Vec<i64>> {
        let mut seqs = Vec::new();
        for chunk in holding_ids.chunks(500) {
            let sql = format!(
                "SELECT DISTINCT seq FROM lookup_matches WHERE holding_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query_scalar::<_, i64>(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            seqs.extend(query.fetch_all(self.reader()).await?);
        }
        Ok(seqs)
    }

    /// Lookup events in `[from, to)` visible to an organisation: (seq, acting user).
    pub async fn scoped_lookups(&self, scope_org: i64, from: Millis, to: Millis) -> StoreResult<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT e.seq, e.actor_user_id FROM audit_events e \
             JOIN audit_event_orgs s ON s.seq = e.seq AND s.org_id = $1 \
             WHERE e.type = 'lookup' AND e.at >= $2 AND e.at < $3 AND e.actor_user_id IS NOT NULL",
        )
        .bind(scope_org)
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(|r| Ok((r.try_get("seq")?, r.try_get("actor_user_id")?))).collect()
    }

    /// Every lookup by these users in `[from, to)`, with the pseudonyms each asked: the whole
    /// history the anomaly rules judge a user's norm by (not only the part in one scope).
    pub async fn lookup_facts(&self, users: &[i64], from: Millis, to: Millis) -> StoreResult<Vec<LookupEventFact>> {
        let mut facts = Vec::new();
        for chunk in users.chunks(200) {
            let lookups_by = |first: usize| {
                format!(
                    "e.type = 'lookup' AND e.at >= ${first} AND e.at < ${} AND e.actor_user_id IN ({})",
                    first + 1,
                    placeholders(first + 2, chunk.len())
                )
            };
            let events_sql = format!(
                "SELECT e.seq, e.at, e.actor_user_id, e.actor_org_id, e.purpose, e.body, ft.text AS free_text \
                 FROM audit_events e LEFT JOIN audit_free_text ft ON ft.seq = e.seq WHERE {} ORDER BY e.seq",
                lookups_by(1)
            );
            // Indexed and pending pseudonyms in one statement (one snapshot; see `events_asking`).
            let keys_sql = format!(
                "SELECT lp.seq, lp.pseudonym AS pseudonyms FROM lookup_pseudonyms lp JOIN audit_events e ON e.seq = lp.seq \
                 WHERE {} UNION ALL SELECT q.seq, q.pseudonyms FROM lookup_pseudonyms_pending q \
                 JOIN audit_events e ON e.seq = q.seq WHERE {}",
                lookups_by(1),
                lookups_by(3 + chunk.len())
            );
            let mut events = sqlx::query(&events_sql).bind(from).bind(to);
            let mut keys = sqlx::query(&keys_sql).bind(from).bind(to);
            for u in chunk {
                events = events.bind(*u);
                keys = keys.bind(*u);
            }
            keys = keys.bind(from).bind(to);
            for u in chunk {
                keys = keys.bind(*u);
            }
            let mut by_seq: HashMap<i64, Vec<Vec<u8>>> = HashMap::new();
            for r in keys.fetch_all(self.reader()).await? {
                let blob: Vec<u8> = r.try_get("pseudonyms")?;
                by_seq.entry(r.try_get("seq")?).or_default().extend(pseudonyms_in(&blob)?.map(<[u8]>::to_vec));
            }
            for r in events.fetch_all(self.reader()).await? {
                let seq: i64 = r.try_get("seq")?;
                facts.push(LookupEventFact {
                    seq,
                    at: r.try_get("at")?,
                    user_id: r.try_get("actor_user_id")?,
                    org_id: r.try_get("actor_org_id")?,
                    purpose: r.try_get("purpose")?,
                    body: r.try_get("body")?,
                    free_text: r.try_get("free_text")?,
                    child_keys: by_seq.remove(&seq).unwrap_or_default(),
                });
            }
        }
        Ok(facts)
    }

    /// The kept checkpoint note at exactly this size, if one was kept.
    pub async fn audit_checkpoint_at(&self, size: i64) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT note FROM audit_checkpoints WHERE tree_size = $1")
            .bind(size)
            .fetch_optional(self.reader())
            .await?)
    }
}
