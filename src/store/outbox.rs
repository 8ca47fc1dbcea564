//! The outbox and webhook settings. Messages are written in the same transaction as the change
//! they announce; delivery passes claim due rows with a lease so several nodes never collide.

use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError, StoreResult};
use crate::clock::Millis;
use crate::domain::cursor::PageCursor;
use crate::domain::policy::match_notice;
use crate::domain::webhook::{OutboxRow, OutboxState};

/// An organisation's webhook as stored (the secret is derived from `secret_version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub org_id: i64,
    pub url: String,
    pub secret_version: i64,
    pub updated_at: Millis,
}

/// What a failed attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    At(Millis),
    Dead,
}

const COLUMNS: &str =
    "id, org_id, kind, payload, created_at, attempts, next_attempt_at, delivered_at, last_error, dead_at";

fn from_row(row: &AnyRow) -> StoreResult<OutboxRow> {
    let payload: String = row.try_get("payload")?;
    Ok(OutboxRow {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        kind: row.try_get("kind")?,
        payload: serde_json::from_str(&payload)
            .map_err(|_| StoreError::Inconsistent("outbox payload is not JSON".into()))?,
        created_at: row.try_get("created_at")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        delivered_at: row.try_get("delivered_at")?,
        last_error: row.try_get("last_error")?,
        dead_at: row.try_get("dead_at")?,
    })
}

/// Queues one message inside the caller's transaction: it exists if and only if the change does.
pub(crate) async fn enqueue(
    tx: &mut Transaction<'static, Any>,
    org_id: i64,
    kind: &str,
    payload: &Value,
    now: Millis,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO outbox (org_id, kind, payload, created_at, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, 0, $4)")
        .bind(org_id)
        .bind(kind)
        .bind(payload.to_string())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The directory entry of an organisation for a notification: who to call, never identifiers.
pub(crate) async fn org_contact(tx: &mut Transaction<'static, Any>, org_id: i64) -> StoreResult<Value> {
    let row =
        sqlx::query("SELECT code, name, duty_phone, out_of_hours_phone, secure_email FROM organisations WHERE id = $1")
            .bind(org_id)
            .fetch_one(&mut **tx)
            .await?;
    Ok(json!({
        "code": row.try_get::<String, _>("code")?,
        "name": row.try_get::<String, _>("name")?,
        "duty_phone": row.try_get::<String, _>("duty_phone")?,
        "out_of_hours_phone": row.try_get::<Option<String>, _>("out_of_hours_phone")?,
        "secure_email": row.try_get::<String, _>("secure_email")?,
    }))
}

/// A match's news for both organisations' outboxes.
pub struct MatchNotice<'a> {
    pub kind: &'a str,
    pub match_id: &'a str,
    pub orgs: (i64, i64),
    pub holdings: (i64, i64),
    pub basis: &'a str,
    pub tier: &'a str,
}

/// Directory entries read once per transaction: a sync batch that signals a thousand matches
/// with one organisation asks the directory once.
#[derive(Default)]
pub(crate) struct OrgContacts(std::collections::HashMap<i64, Value>);

impl OrgContacts {
    async fn get(&mut self, tx: &mut Transaction<'static, Any>, org_id: i64) -> StoreResult<Value> {
        if let Some(contact) = self.0.get(&org_id) {
            return Ok(contact.clone());
        }
        let contact = org_contact(tx, org_id).await?;
        self.0.insert(org_id, contact.clone());
        Ok(contact)
    }
}

/// `match.new` or `match.withdrawn` to both organisations, each told who the other is.
pub(crate) async fn enqueue_match_notices(
    tx: &mut Transaction<'static, Any>,
    contacts: &mut OrgContacts,
    notice: &MatchNotice<'_>,
    now: Millis,
) -> StoreResult<()> {
    let (org_a, org_b) = notice.orgs;
    let (a, b) = (contacts.get(tx, org_a).await?, contacts.get(tx, org_b).await?);
    let (shielded_a, shielded_b) =
        (holding_shielded(tx, notice.holdings.0).await?, holding_shielded(tx, notice.holdings.1).await?);
    for (to, other, other_shielded) in [(org_a, b, shielded_b), (org_b, a, shielded_a)] {
        let payload = match_notice(notice.match_id, notice.tier, notice.basis, other, other_shielded);
        enqueue(tx, to, notice.kind, &payload, now).await?;
    }
    Ok(())
}

async fn holding_shielded(tx: &mut Transaction<'static, Any>, holding_id: i64) -> StoreResult<bool> {
    let shielded: Option<i64> = sqlx::query_scalar("SELECT shielded FROM holdings WHERE id = $1")
        .bind(holding_id)
        .fetch_optional(&mut **tx)
        .await?;
    // A holding already gone cannot say: keep its organisation hidden rather than guess.
    Ok(shielded.is_none_or(|s| s != 0))
}

/// The rows of messages in `state`.
fn state_filter(state: OutboxState) -> &'static str {
    match state {
        OutboxState::Pending => "delivered_at IS NULL AND dead_at IS NULL",
        OutboxState::Delivered => "delivered_at IS NOT NULL",
        OutboxState::Dead => "dead_at IS NOT NULL",
    }
}

impl Store {
    /// Queues alerts to holders (one message each), all in one transaction.
    pub async fn enqueue_alerts(&self, alerts: &[(i64, &str, Value)], now: Millis) -> StoreResult<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for (org_id, kind, payload) in alerts {
            enqueue(&mut tx, *org_id, kind, payload, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets (or replaces) the webhook URL; every call moves to a new secret version.
    pub async fn set_webhook(&self, org_id: i64, url: &str, now: Millis) -> StoreResult<Webhook> {
        let row = sqlx::query(
            "INSERT INTO webhooks (org_id, url, secret_version, created_at, updated_at) VALUES ($1, $2, 1, $3, $3) \
             ON CONFLICT (org_id) DO UPDATE SET url = excluded.url, secret_version = webhooks.secret_version + 1, \
             updated_at = excluded.updated_at \
             RETURNING org_id, url, secret_version, updated_at",
        )
        .bind(org_id)
        .bind(url)
        .bind(now)
        .fetch_one(&mut *self.write_conn().await?)
        .await?;
        webhook_from_row(&row)
    }

    /// Removes the webhook; returns whether there was one. Pending messages wait for a new one.
    pub async fn clear_webhook(&self, org_id: i64, now: Millis) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE webhooks SET url = NULL, updated_at = $1 WHERE org_id = $2 AND url IS NOT NULL")
            .bind(now)
            .bind(org_id)
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn webhook(&self, org_id: i64) -> StoreResult<Option<Webhook>> {
        let row = sqlx::query(
            "SELECT org_id, url, secret_version, updated_at FROM webhooks WHERE org_id = $1 AND url IS NOT NULL",
        )
        .bind(org_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(webhook_from_row).transpose()
    }

    /// Claims up to `limit` due messages of organisations that have a webhook, for `lease` ms.
    /// The claim condition is repeated in the outer WHERE: on PostgreSQL a row another node
    /// claimed meanwhile is re-checked after its lock is released and skipped; SQLite has one
    /// writer, so the statement is atomic there anyway.
    pub async fn claim_due(&self, claim: &str, now: Millis, lease: Millis, limit: i64) -> StoreResult<Vec<OutboxRow>> {
        let sql = format!(
            "UPDATE outbox SET claimed_by = $1, claimed_until = $2 \
             WHERE id IN (SELECT o.id FROM outbox o \
                          WHERE o.delivered_at IS NULL AND o.dead_at IS NULL AND o.next_attempt_at <= $3 \
                            AND (o.claimed_until IS NULL OR o.claimed_until <= $3) \
                            AND o.org_id IN (SELECT w.org_id FROM webhooks w WHERE w.url IS NOT NULL) \
                          ORDER BY o.next_attempt_at, o.id LIMIT $4) \
               AND delivered_at IS NULL AND dead_at IS NULL \
               AND (claimed_until IS NULL OR claimed_until <= $3) \
             RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(claim)
            .bind(now + lease)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *self.write_conn().await?)
            .await?;
        let mut claimed = rows.iter().map(from_row).collect::<StoreResult<Vec<_>>>()?;
        claimed.sort_by_key(|r| r.id);
        Ok(claimed)
    }

    /// Settles a claimed message as delivered (only if this pass still holds the claim).
    pub async fn mark_delivered(&self, id: i64, claim: &str, now: Millis) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET delivered_at = $1, attempts = attempts + 1, last_error = NULL, claimed_by = NULL, \
             claimed_until = NULL WHERE id = $2 AND claimed_by = $3",
        )
        .bind(now)
        .bind(id)
        .bind(claim)
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Settles a claimed message as failed: retried at a later time, or dead.
    pub async fn mark_failed(&self, id: i64, claim: &str, now: Millis, error: &str, retry: Retry) -> StoreResult<bool> {
        let (next, dead) = match retry {
            Retry::At(at) => (at, None),
            Retry::Dead => (now, Some(now)),
        };
        let done = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, dead_at = $3, \
             claimed_by = NULL, claimed_until = NULL WHERE id = $4 AND claimed_by = $5",
        )
        .bind(error)
        .bind(next)
        .bind(dead)
        .bind(id)
        .bind(claim)
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// An organisation's messages, newest first, optionally in one state.
    pub async fn outbox_of_org(
        &self,
        org_id: i64,
        state: Option<OutboxState>,
        after: Option<&PageCursor>,
        limit: i64,
    ) -> StoreResult<Vec<OutboxRow>> {
        let filter = state.map(|s| format!(" AND {}", state_filter(s))).unwrap_or_default();
        // Messages are numbered, so the number alone orders them (and `outbox_by_org` serves it).
        let page = if after.is_some() { " AND id < $3" } else { "" };
        let sql = format!("SELECT {COLUMNS} FROM outbox WHERE org_id = $1{filter}{page} ORDER BY id DESC LIMIT $2");
        let mut query = sqlx::query(&sql).bind(org_id).bind(limit);
        if let Some(cursor) = after {
            query = query.bind(cursor.numeric_id().ok_or(StoreError::NotFound)?);
        }
        let rows = query.fetch_all(self.reader()).await?;
        rows.iter().map(from_row).collect()
    }
}

fn webhook_from_row(row: &AnyRow) -> StoreResult<Webhook> {
    Ok(Webhook {
        org_id: row.try_get("org_id")?,
        url: row.try_get::<Option<String>, _>("url")?.unwrap_or_default(),
        secret_version: row.try_get("secret_version")?,
        updated_at: row.try_get("updated_at")?,
    })
}
