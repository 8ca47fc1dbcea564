//! Matches between holdings of different organisations: one row and one public match_id
//! seen by both sides; withdrawn (not deleted) when the evidence goes, so history stays.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use sqlx::{Any, Transaction};

use super::outbox::{self, MatchNotice, OrgContacts};
use super::{AnyQuery, Store, StoreResult, placeholders};
use crate::clock::Millis;
use crate::domain::matching::MatchDecision;

/// A live or withdrawn match, from one organisation's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchRow {
    pub match_id: String,
    pub own_holding: i64,
    pub own_local_ref: String,
    pub other_org: i64,
    /// The other side's holding is shielded (or gone): never name its organisation.
    pub other_shielded: bool,
    pub basis: String,
    pub tier: String,
    pub evidence: String,
    pub first_seen: Millis,
    pub withdrawn_at: Option<Millis>,
}

/// The outbox's notice of a decision's match, for both organisations.
fn notice<'a>(d: &'a MatchDecision, kind: &'a str, match_id: &'a str) -> MatchNotice<'a> {
    MatchNotice {
        kind,
        match_id,
        orgs: (d.org_a, d.org_b),
        holdings: (d.holding_a, d.holding_b),
        basis: d.basis,
        tier: d.tier,
    }
}

/// The outcome of recording a decision: new matches are signalled to both organisations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    New(String),
    Changed(String),
    Same,
}

fn match_from_row(row: &AnyRow) -> StoreResult<MatchRow> {
    Ok(MatchRow {
        match_id: row.try_get("match_id")?,
        own_holding: row.try_get("own_holding")?,
        own_local_ref: row.try_get("local_ref")?,
        other_org: row.try_get("other_org")?,
        other_shielded: row.try_get::<i64, _>("other_shielded")? != 0,
        basis: row.try_get("basis")?,
        tier: row.try_get("tier")?,
        evidence: row.try_get("evidence")?,
        first_seen: row.try_get("first_seen")?,
        withdrawn_at: row.try_get("withdrawn_at")?,
    })
}

impl Store {
    /// Records match decisions in one transaction (one durable commit for a whole sync batch),
    /// reviving a withdrawn match with the same pair.
    pub async fn record_matches(&self, decisions: &[MatchDecision], now: Millis) -> StoreResult<Vec<Recorded>> {
        let mut tx = self.begin_write().await?;
        let mut contacts = OrgContacts::default();
        let mut out = Vec::with_capacity(decisions.len());
        for d in decisions {
            out.push(record_one(&mut tx, &mut contacts, d, now).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Withdraws the live matches of rewritten holdings that their new details no longer make:
    /// `kept` lists each holding with the (partner, basis) pairs it keeps, and a match between two
    /// of them goes if either side no longer keeps it. One read for up to 400 holdings and one
    /// transaction for all that go: a sync that rewrites a million holdings (a re-key) asked a
    /// million times, one holding at a time. Returns the withdrawn (match_id, org_a, org_b).
    pub async fn withdraw_unkept_matches(
        &self,
        kept: &[(i64, Vec<(i64, &str)>)],
        now: Millis,
    ) -> StoreResult<Vec<(String, i64, i64)>> {
        let mut unkept = Vec::new();
        for chunk in kept.chunks(400) {
            let sql = format!(
                "SELECT match_id, org_a, org_b, holding_a, holding_b, basis, tier FROM matches \
                 WHERE (holding_a IN ({}) OR holding_b IN ({})) AND withdrawn_at IS NULL",
                placeholders(1, chunk.len()),
                placeholders(1 + chunk.len(), chunk.len())
            );
            let ids = chunk.iter().chain(chunk).map(|(id, _)| *id);
            let rows = ids.fold(sqlx::query(&sql), |q, id| q.bind(id)).fetch_all(self.reader()).await?;
            let keeps: HashMap<i64, &[(i64, &str)]> = chunk.iter().map(|(id, keep)| (*id, &keep[..])).collect();
            for row in rows {
                let live = LiveMatch::of(&row)?;
                let (a, b) = live.holdings;
                let unkept_by = |holding: i64, partner: i64| {
                    keeps
                        .get(&holding)
                        .is_some_and(|keep| !keep.iter().any(|(p, basis)| *p == partner && *basis == live.basis))
                };
                if unkept_by(a, b) || unkept_by(b, a) {
                    unkept.push(live.match_id);
                }
            }
        }
        unkept.sort_unstable();
        unkept.dedup();
        if unkept.is_empty() {
            return Ok(Vec::new());
        }
        // The withdrawals and their notices commit together.
        let mut tx = self.begin_write().await?;
        let mut withdrawn = Vec::with_capacity(unkept.len());
        for ids in unkept.chunks(500) {
            let sql = format!("{WITHDRAW} AND match_id IN ({}) {WITHDRAWN}", placeholders(2, ids.len()));
            let query = ids.iter().fold(sqlx::query(&sql).bind(now), |q, id| q.bind(id.as_str()));
            withdrawn.extend(withdraw_returning(&mut tx, query, now).await?);
        }
        tx.commit().await?;
        Ok(withdrawn)
    }

    /// Withdraws every live match of holdings that are being removed, with both sides' notices,
    /// one transaction for each 400 holdings (not one a match: a sync that removes thousands of
    /// holdings would commit thousands of times); returns the withdrawn (match_id, org_a, org_b).
    pub async fn withdraw_all_matches(&self, holdings: &[i64], now: Millis) -> StoreResult<Vec<(String, i64, i64)>> {
        let mut withdrawn = Vec::new();
        for chunk in holdings.chunks(400) {
            let sql = format!(
                "{WITHDRAW} AND (holding_a IN ({}) OR holding_b IN ({})) {WITHDRAWN}",
                placeholders(2, chunk.len()),
                placeholders(2 + chunk.len(), chunk.len())
            );
            let mut tx = self.begin_write().await?;
            let query = chunk.iter().chain(chunk).fold(sqlx::query(&sql).bind(now), |q, id| q.bind(*id));
            withdrawn.extend(withdraw_returning(&mut tx, query, now).await?);
            tx.commit().await?;
        }
        Ok(withdrawn)
    }

    /// An organisation's live matches (or all, with withdrawn ones), newest first.
    pub async fn matches_of_org(&self, org_id: i64, include_withdrawn: bool) -> StoreResult<Vec<MatchRow>> {
        let filter = if include_withdrawn { "" } else { " AND m.withdrawn_at IS NULL" };
        let sql = format!(
            "SELECT m.match_id, h.id AS own_holding, h.local_ref, m.org_b AS other_org, \
                    COALESCE(oh.shielded, 1) AS other_shielded, m.basis, m.tier, m.evidence, m.first_seen, m.withdrawn_at \
             FROM matches m JOIN holdings h ON h.id = m.holding_a LEFT JOIN holdings oh ON oh.id = m.holding_b \
             WHERE m.org_a = $1{filter} \
             UNION ALL \
             SELECT m.match_id, h.id AS own_holding, h.local_ref, m.org_a AS other_org, \
                    COALESCE(oh.shielded, 1) AS other_shielded, m.basis, m.tier, m.evidence, m.first_seen, m.withdrawn_at \
             FROM matches m JOIN holdings h ON h.id = m.holding_b LEFT JOIN holdings oh ON oh.id = m.holding_a \
             WHERE m.org_b = $1{filter} \
             ORDER BY first_seen DESC"
        );
        let rows = sqlx::query(&sql).bind(org_id).fetch_all(self.reader()).await?;
        rows.iter().map(match_from_row).collect()
    }
}

async fn record_one(
    tx: &mut Transaction<'static, Any>,
    contacts: &mut OrgContacts,
    d: &MatchDecision,
    now: Millis,
) -> StoreResult<Recorded> {
    let existing = sqlx::query(
        "SELECT match_id, tier, evidence, withdrawn_at FROM matches WHERE holding_a = $1 AND holding_b = $2 AND basis = $3",
    )
    .bind(d.holding_a)
    .bind(d.holding_b)
    .bind(d.basis)
    .fetch_optional(&mut **tx)
    .await?;
    let recorded = match existing {
        None => {
            let match_id = format!("m_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(
                "INSERT INTO matches (match_id, holding_a, holding_b, org_a, org_b, basis, tier, evidence, first_seen, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
            )
            .bind(&match_id)
            .bind(d.holding_a)
            .bind(d.holding_b)
            .bind(d.org_a)
            .bind(d.org_b)
            .bind(d.basis)
            .bind(d.tier)
            .bind(&d.evidence)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            outbox::enqueue_match_notices(tx, contacts, &notice(d, "match.new", &match_id), now).await?;
            Recorded::New(match_id)
        }
        Some(row) => {
            let match_id: String = row.try_get("match_id")?;
            let tier: String = row.try_get("tier")?;
            let evidence: String = row.try_get("evidence")?;
            let withdrawn: Option<i64> = row.try_get("withdrawn_at")?;
            if tier == d.tier && evidence == d.evidence && withdrawn.is_none() {
                Recorded::Same
            } else {
                sqlx::query(
                    "UPDATE matches SET tier = $1, evidence = $2, withdrawn_at = NULL, updated_at = $3 WHERE match_id = $4",
                )
                .bind(d.tier)
                .bind(&d.evidence)
                .bind(now)
                .bind(&match_id)
                .execute(&mut **tx)
                .await?;
                if withdrawn.is_some() {
                    outbox::enqueue_match_notices(tx, contacts, &notice(d, "match.new", &match_id), now).await?;
                    Recorded::New(match_id)
                } else {
                    Recorded::Changed(match_id)
                }
            }
        }
    };
    Ok(recorded)
}

/// Withdraws live matches; `$1` is the time, and the caller adds which (`AND …`) and `WITHDRAWN`.
const WITHDRAW: &str = "UPDATE matches SET withdrawn_at = $1, updated_at = $1 WHERE withdrawn_at IS NULL";
/// What a withdrawal hands back, for the notices and the audit.
const WITHDRAWN: &str = "RETURNING match_id, org_a, org_b, holding_a, holding_b, basis, tier";

/// Runs a `WITHDRAW … WITHDRAWN` statement in the caller's transaction and queues both sides'
/// notices of each match it withdrew; returns them as (match_id, org_a, org_b).
async fn withdraw_returning(
    tx: &mut Transaction<'static, Any>,
    query: AnyQuery<'_>,
    now: Millis,
) -> StoreResult<Vec<(String, i64, i64)>> {
    let mut contacts = OrgContacts::default();
    let mut withdrawn = Vec::new();
    for row in query.fetch_all(&mut **tx).await? {
        let live = LiveMatch::of(&row)?;
        let notice = MatchNotice {
            kind: "match.withdrawn",
            match_id: &live.match_id,
            orgs: live.orgs,
            holdings: live.holdings,
            basis: &live.basis,
            tier: &live.tier,
        };
        outbox::enqueue_match_notices(tx, &mut contacts, &notice, now).await?;
        withdrawn.push((live.match_id, live.orgs.0, live.orgs.1));
    }
    Ok(withdrawn)
}

/// A live match as read for withdrawal.
struct LiveMatch {
    match_id: String,
    orgs: (i64, i64),
    holdings: (i64, i64),
    basis: String,
    tier: String,
}

impl LiveMatch {
    fn of(row: &AnyRow) -> StoreResult<LiveMatch> {
        Ok(LiveMatch {
            match_id: row.try_get("match_id")?,
            orgs: (row.try_get("org_a")?, row.try_get("org_b")?),
            holdings: (row.try_get("holding_a")?, row.try_get("holding_b")?),
            basis: row.try_get("basis")?,
            tier: row.try_get("tier")?,
        })
    }
}
