//! Record requests and their history. Every change is one transaction: the request row, a
//! history row, and the outbox message telling the other organisation.

use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

use super::outbox::{enqueue, org_contact};
use super::{Store, StoreError, StoreResult, older_than_cursor};
use crate::clock::{Millis, rfc3339};
use crate::domain::request::{Action, LegalBasis, NewRequest, RequestFilter, RequestState, Side, Step, Urgency};

/// Which organisation holds the record behind a match id, as seen by the organisation asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchTarget {
    pub holder_org_id: i64,
    pub holding_id: Option<i64>,
    /// The match's evidence has gone (holding-to-holding matches only).
    pub withdrawn: bool,
    /// The holder is never named to the requester.
    pub shielded: bool,
}

/// A request as stored, with the names both sides see.
#[derive(Debug, Clone)]
pub struct StoredRequest {
    pub request_id: String,
    pub match_id: String,
    pub requester_org_id: i64,
    pub requester_user_id: i64,
    pub requester_name: String,
    pub holder_org_id: i64,
    pub holding_id: Option<i64>,
    /// The holder's own reference for the record (shown to the holder only).
    pub local_ref: Option<String>,
    /// The record was shielded when requested: the requester never sees who holds it.
    pub holder_shielded: bool,
    pub legal_basis: LegalBasis,
    pub legal_basis_detail: Option<String>,
    pub reason: String,
    pub urgency: Urgency,
    pub state: RequestState,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub due_at: Millis,
    pub escalated_at: Option<Millis>,
    /// The requester's own case reference (shown to the requesting organisation only).
    pub case_ref: Option<String>,
}

impl StoredRequest {
    /// Which side an organisation is on; `None` for anyone else.
    pub fn side_of(&self, org_id: i64) -> Option<Side> {
        if org_id == self.requester_org_id {
            Some(Side::Requester)
        } else if org_id == self.holder_org_id {
            Some(Side::Holder)
        } else {
            None
        }
    }

    /// Open and past its deadline.
    pub fn is_overdue(&self, now: Millis) -> bool {
        !self.state.is_terminal() && now > self.due_at
    }
}

/// One step in a request's history (its columns, as `request_history` names them).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RequestEventRow {
    pub at: Millis,
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub actor_name: Option<String>,
    pub actor_org_code: Option<String>,
    /// Which organisation took the step (`None` for the system's escalation).
    pub actor_org_id: Option<i64>,
    pub how: Option<String>,
    pub reference: Option<String>,
    pub sent_at: Option<Millis>,
    pub note: Option<String>,
}

/// A step written but not yet published, with what its publication needs.
#[derive(Debug, Clone)]
pub struct StagedStep {
    pub id: i64,
    pub request_id: String,
    pub action: Action,
    pub from_state: RequestState,
    pub to_state: RequestState,
    pub at: Millis,
    pub actor_org_id: i64,
    pub actor_org_code: String,
    /// The other organisation, told of the step.
    pub notify_org_id: i64,
    pub holder_org_id: i64,
    pub holder_shielded: bool,
}

fn staged_from_row(row: &AnyRow) -> StoreResult<StagedStep> {
    let state = |column: &str| -> StoreResult<RequestState> {
        let text: String = row.try_get(column)?;
        RequestState::parse(&text).ok_or_else(|| StoreError::Inconsistent("unknown request state".into()))
    };
    let actor_org_id: i64 = row.try_get("actor_org_id")?;
    let requester_org_id: i64 = row.try_get("requester_org_id")?;
    let holder_org_id: i64 = row.try_get("holder_org_id")?;
    Ok(StagedStep {
        id: row.try_get("id")?,
        request_id: row.try_get("request_id")?,
        action: {
            let name: String = row.try_get("action")?;
            Action::ALL
                .into_iter()
                .find(|a| step_name(*a) == name)
                .ok_or_else(|| StoreError::Inconsistent("unknown staged request step".into()))?
        },
        from_state: state("from_state")?,
        to_state: state("to_state")?,
        at: row.try_get("at")?,
        actor_org_id,
        actor_org_code: row.try_get("actor_org_code")?,
        notify_org_id: if actor_org_id == holder_org_id { requester_org_id } else { holder_org_id },
        holder_org_id,
        holder_shielded: row.try_get::<i64, _>("holder_shielded")? != 0,
    })
}

/// The history row's name for a step.
fn step_name(action: Action) -> &'static str {
    match action {
        Action::Acknowledge => "acknowledged",
        Action::Fulfil => "fulfilled",
        Action::Decline => "declined",
        Action::Withdraw => "withdrawn",
    }
}

/// A request that the escalation pass has just marked, for its audit event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Escalated {
    pub request_id: String,
    pub requester_org_id: i64,
    pub holder_org_id: i64,
    pub urgency: String,
    pub due_at: Millis,
}

const SELECT: &str = "SELECT r.request_id, r.match_id, r.requester_org_id, r.requester_user_id, u.name AS requester_name, \
     r.holder_org_id, r.holding_id, h.local_ref, r.holder_shielded, r.legal_basis, r.legal_basis_detail, r.reason, r.urgency, r.state, \
     r.created_at, r.updated_at, r.due_at, r.escalated_at, r.case_ref \
     FROM requests r JOIN users u ON u.id = r.requester_user_id LEFT JOIN holdings h ON h.id = r.holding_id";

const ALREADY_OPEN: &str = "your organisation already has an open request for this record; see GET /api/v1/requests";

/// The requesting organisation's open request for this match or this holding, if any
/// (published or still being written).
async fn open_request(
    conn: &mut sqlx::AnyConnection,
    match_id: &str,
    holding_id: Option<i64>,
    requester_org_id: i64,
) -> StoreResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT request_id FROM requests WHERE requester_org_id = $1 AND state IN ($2, $3) \
         AND (match_id = $4 OR holding_id = $5) ORDER BY created_at LIMIT 1",
    )
    .bind(requester_org_id)
    .bind(RequestState::Requested.as_str())
    .bind(RequestState::Acknowledged.as_str())
    .bind(match_id)
    .bind(holding_id)
    .fetch_optional(conn)
    .await?)
}

fn from_row(row: &AnyRow) -> StoreResult<StoredRequest> {
    let bad = |what: &str| StoreError::Inconsistent(format!("unknown request {what}"));
    let basis: String = row.try_get("legal_basis")?;
    let urgency: String = row.try_get("urgency")?;
    let state: String = row.try_get("state")?;
    Ok(StoredRequest {
        request_id: row.try_get("request_id")?,
        match_id: row.try_get("match_id")?,
        requester_org_id: row.try_get("requester_org_id")?,
        requester_user_id: row.try_get("requester_user_id")?,
        requester_name: row.try_get("requester_name")?,
        holder_org_id: row.try_get("holder_org_id")?,
        holding_id: row.try_get("holding_id")?,
        local_ref: row.try_get("local_ref")?,
        holder_shielded: row.try_get::<i64, _>("holder_shielded")? != 0,
        legal_basis: LegalBasis::parse(&basis).ok_or_else(|| bad("legal basis"))?,
        legal_basis_detail: row.try_get("legal_basis_detail")?,
        reason: row.try_get("reason")?,
        urgency: Urgency::parse(&urgency).ok_or_else(|| bad("urgency"))?,
        state: RequestState::parse(&state).ok_or_else(|| bad("state"))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        due_at: row.try_get("due_at")?,
        escalated_at: row.try_get("escalated_at")?,
        case_ref: row.try_get("case_ref")?,
    })
}

impl Store {
    /// Resolves a match id for an organisation that wants the record behind it. A lookup match
    /// (`lm_…`) belongs to the asking organisation only; a holding match (`m_…`) to both sides,
    /// and the record requested is the other side's. Anything else is not found.
    pub async fn match_target(&self, match_id: &str, org_id: i64) -> StoreResult<MatchTarget> {
        if match_id.starts_with("lm_") {
            let row = sqlx::query(
                "SELECT holder_org_id, holding_id, shielded FROM lookup_matches WHERE match_id = $1 AND asker_org_id = $2",
            )
            .bind(match_id)
            .bind(org_id)
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound)?;
            return Ok(MatchTarget {
                holder_org_id: row.try_get("holder_org_id")?,
                holding_id: Some(row.try_get("holding_id")?),
                withdrawn: false,
                shielded: row.try_get::<i64, _>("shielded")? != 0,
            });
        }
        if match_id.starts_with("m_") {
            let row = sqlx::query(
                "SELECT m.org_a, m.org_b, m.holding_a, m.holding_b, m.withdrawn_at, \
                        COALESCE(ha.shielded, 1) AS shielded_a, COALESCE(hb.shielded, 1) AS shielded_b \
                 FROM matches m LEFT JOIN holdings ha ON ha.id = m.holding_a LEFT JOIN holdings hb ON hb.id = m.holding_b \
                 WHERE m.match_id = $1 AND (m.org_a = $2 OR m.org_b = $2)",
            )
            .bind(match_id)
            .bind(org_id)
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound)?;
            let org_a: i64 = row.try_get("org_a")?;
            let (holder, holding, shielded): (i64, i64, i64) = if org_a == org_id {
                (row.try_get("org_b")?, row.try_get("holding_b")?, row.try_get("shielded_b")?)
            } else {
                (org_a, row.try_get("holding_a")?, row.try_get("shielded_a")?)
            };
            let withdrawn: Option<i64> = row.try_get("withdrawn_at")?;
            return Ok(MatchTarget {
                holder_org_id: holder,
                holding_id: Some(holding),
                withdrawn: withdrawn.is_some(),
                shielded: shielded != 0,
            });
        }
        Err(StoreError::NotFound)
    }

    /// Stores a new request with its first history row and tells the holder. Refuses a second
    /// open request from the same organisation through the same match.
    pub async fn create_request(
        &self,
        request: &NewRequest,
        target: &MatchTarget,
        (requester_org_id, requester_user_id): (i64, i64),
        due_at: Millis,
        now: Millis,
    ) -> StoreResult<StoredRequest> {
        let mut tx = self.begin_write().await?;
        if open_request(&mut tx, &request.match_id, target.holding_id, requester_org_id).await?.is_some() {
            return Err(StoreError::Conflict(ALREADY_OPEN));
        }
        let request_id = format!("rq_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(
            "INSERT INTO requests (request_id, match_id, requester_org_id, requester_user_id, holder_org_id, holding_id, \
             legal_basis, legal_basis_detail, reason, urgency, state, created_at, updated_at, due_at, holder_shielded, \
             audited, holding_key, case_ref) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, 0, $6, $15)",
        )
        .bind(&request_id)
        .bind(&request.match_id)
        .bind(requester_org_id)
        .bind(requester_user_id)
        .bind(target.holder_org_id)
        .bind(target.holding_id)
        .bind(request.legal_basis.as_str())
        .bind(&request.legal_basis_detail)
        .bind(&request.reason)
        .bind(request.urgency.as_str())
        .bind(RequestState::Requested.as_str())
        .bind(now)
        .bind(due_at)
        .bind(i64::from(target.shielded))
        .bind(&request.case_ref)
        .execute(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            // Two nodes raced past the check above: the partial unique indexes decide.
            StoreError::Conflict(_) => StoreError::Conflict(ALREADY_OPEN),
            other => other,
        })?;
        insert_event(
            &mut tx,
            &request_id,
            now,
            "created",
            None,
            RequestState::Requested,
            Some((requester_user_id, requester_org_id)),
            &Step::default(),
        )
        .await?;
        tx.commit().await?;
        let row = sqlx::query(&format!("{SELECT} WHERE r.request_id = $1"))
            .bind(&request_id)
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound)?;
        from_row(&row)
    }

    /// The requesting organisation's open request for the record behind a match, if any.
    pub async fn open_request_for(
        &self,
        match_id: &str,
        target: &MatchTarget,
        requester_org_id: i64,
    ) -> StoreResult<Option<String>> {
        let mut conn = self.reader().acquire().await?;
        open_request(&mut conn, match_id, target.holding_id, requester_org_id).await
    }

    /// Publishes a request whose `request_created` event is durable: from now on both
    /// organisations see it, and the holder is told (`request.created`), in one transaction.
    /// False if there was nothing to publish (already published, or deleted).
    pub async fn publish_request(&self, request_id: &str, now: Millis) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE requests SET audited = 1 WHERE request_id = $1 AND audited = 0 \
             RETURNING match_id, requester_org_id, holder_org_id, urgency, legal_basis, due_at",
        )
        .bind(request_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let holder_org_id: i64 = row.try_get("holder_org_id")?;
        let payload = json!({
            "request_id": request_id,
            "match_id": row.try_get::<String, _>("match_id")?,
            "urgency": row.try_get::<String, _>("urgency")?,
            "legal_basis": row.try_get::<String, _>("legal_basis")?,
            "due_at": rfc3339(row.try_get("due_at")?),
            "requesting_organisation": org_contact(&mut tx, row.try_get("requester_org_id")?).await?,
        });
        enqueue(&mut tx, holder_org_id, "request.created", &payload, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes a request that was never published (its event could not be written).
    pub async fn discard_unpublished_request(&self, request_id: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let gone = sqlx::query("DELETE FROM requests WHERE request_id = $1 AND audited = 0")
            .bind(request_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone > 0 {
            sqlx::query("DELETE FROM request_events WHERE request_id = $1").bind(request_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Requests written but not published, with when: what start-up settles.
    pub async fn unpublished_requests(&self) -> StoreResult<Vec<(String, Millis)>> {
        let rows = sqlx::query("SELECT request_id, created_at FROM requests WHERE audited = 0 ORDER BY created_at")
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(|r| Ok((r.try_get("request_id")?, r.try_get("created_at")?))).collect()
    }

    /// Which of these requests have a `request_created` event in the audit trail (read from
    /// the signed bodies), looking at events from `since` on.
    pub async fn requests_with_created_event(
        &self,
        request_ids: &[String],
        since: Millis,
    ) -> StoreResult<std::collections::HashSet<String>> {
        let request_id = match self.engine() {
            super::Engine::Sqlite => "json_extract(CAST(body AS TEXT), '$.details.request_id')",
            super::Engine::Postgres => "convert_from(body, 'UTF8')::jsonb #>> '{details,request_id}'",
        };
        let mut found = std::collections::HashSet::new();
        for chunk in request_ids.chunks(500) {
            let sql = format!(
                "SELECT {request_id} FROM audit_events WHERE type = $1 AND at >= $2 AND {request_id} IN ({})",
                super::placeholders(3, chunk.len())
            );
            let mut query = sqlx::query_scalar::<_, String>(&sql).bind("request_created").bind(since);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            found.extend(query.fetch_all(self.reader()).await?);
        }
        Ok(found)
    }

    /// A request as either of its two organisations sees it; not found for anyone else, nor
    /// before it is published.
    pub async fn request_for_org(&self, request_id: &str, org_id: i64) -> StoreResult<StoredRequest> {
        let row = sqlx::query(&format!(
            "{SELECT} WHERE r.request_id = $1 AND (r.requester_org_id = $2 OR r.holder_org_id = $2) AND r.audited = 1"
        ))
        .bind(request_id)
        .bind(org_id)
        .fetch_optional(self.reader())
        .await?
        .ok_or(StoreError::NotFound)?;
        from_row(&row)
    }

    /// The request's history, oldest first.
    pub async fn request_history(&self, request_id: &str) -> StoreResult<Vec<RequestEventRow>> {
        Ok(sqlx::query_as(
            "SELECT e.at, e.action, e.from_state, e.to_state, u.name AS actor_name, o.code AS actor_org_code, e.actor_org_id, \
                    e.how, e.reference, e.sent_at, e.note \
             FROM request_events e LEFT JOIN users u ON u.id = e.actor_user_id \
             LEFT JOIN organisations o ON o.id = e.actor_org_id \
             WHERE e.request_id = $1 AND e.audited = 1 ORDER BY e.id",
        )
        .bind(request_id)
        .fetch_all(self.reader())
        .await?)
    }

    /// Stages a step: checks nobody changed the request meanwhile (else a conflict) and that no
    /// other step is being recorded (else a conflict), and writes its history row unpublished.
    /// Nothing is visible until `publish_request_step`. Returns the staged row's id.
    pub async fn stage_request_step(
        &self,
        request: &StoredRequest,
        action: Action,
        to: RequestState,
        (actor_user_id, actor_org_id): (i64, i64),
        step: &Step,
        now: Millis,
    ) -> StoreResult<i64> {
        let mut tx = self.begin_write().await?;
        // Locks the request's row (on PostgreSQL) so two steps cannot both pass the check below.
        let current = sqlx::query(
            "UPDATE requests SET updated_at = updated_at WHERE request_id = $1 AND state = $2 AND audited = 1",
        )
        .bind(&request.request_id)
        .bind(request.state.as_str())
        .execute(&mut *tx)
        .await?;
        if current.rows_affected() == 0 {
            return Err(StoreError::Conflict("the request changed meanwhile; reload it and try again"));
        }
        let staged: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM request_events WHERE request_id = $1 AND audited = 0")
                .bind(&request.request_id)
                .fetch_one(&mut *tx)
                .await?;
        if staged > 0 {
            return Err(StoreError::Conflict(
                "another step on this request is being recorded; reload it and try again",
            ));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO request_events (request_id, at, action, from_state, to_state, actor_user_id, actor_org_id, how, \
             reference, sent_at, note, audited) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0) RETURNING id",
        )
        .bind(&request.request_id)
        .bind(now)
        .bind(step_name(action))
        .bind(request.state.as_str())
        .bind(to.as_str())
        .bind(actor_user_id)
        .bind(actor_org_id)
        .bind(step.how.map(|h| h.as_str()))
        .bind(&step.reference)
        .bind(step.sent_at)
        .bind(&step.note)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Publishes a staged step whose `request_state_changed` event is durable, in one
    /// transaction: the request's state changes, the history row is published and the other
    /// organisation is told (`notice`, as the service's redaction built it). `None` if there
    /// was nothing to publish.
    pub async fn publish_request_step(
        &self,
        staged: &StagedStep,
        notice: &serde_json::Value,
    ) -> StoreResult<Option<StoredRequest>> {
        let mut tx = self.begin_write().await?;
        let published = sqlx::query("UPDATE request_events SET audited = 1 WHERE id = $1 AND audited = 0")
            .bind(staged.id)
            .execute(&mut *tx)
            .await?;
        if published.rows_affected() == 0 {
            return Ok(None);
        }
        let moved = sqlx::query("UPDATE requests SET state = $1, updated_at = $2 WHERE request_id = $3 AND state = $4")
            .bind(staged.to_state.as_str())
            .bind(staged.at)
            .bind(&staged.request_id)
            .bind(staged.from_state.as_str())
            .execute(&mut *tx)
            .await?;
        if moved.rows_affected() == 0 {
            return Err(StoreError::Inconsistent("a staged request step no longer follows the request's state".into()));
        }
        enqueue(&mut tx, staged.notify_org_id, "request.state_changed", notice, staged.at).await?;
        tx.commit().await?;
        Ok(Some(self.request_for_org(&staged.request_id, staged.actor_org_id).await?))
    }

    /// Deletes a staged step that was never published (its event could not be written).
    pub async fn discard_request_step(&self, id: i64) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM request_events WHERE id = $1 AND audited = 0").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Steps staged but not published, oldest first: what start-up settles.
    pub async fn staged_request_steps(&self) -> StoreResult<Vec<StagedStep>> {
        let rows = sqlx::query(
            "SELECT e.id, e.request_id, e.action, e.from_state, e.to_state, e.at, e.actor_org_id, o.code AS actor_org_code, \
                    r.requester_org_id, r.holder_org_id, r.holder_shielded \
             FROM request_events e JOIN requests r ON r.request_id = e.request_id \
             JOIN organisations o ON o.id = e.actor_org_id WHERE e.audited = 0 ORDER BY e.at",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(staged_from_row).collect()
    }

    /// The staged step just written (by `stage_request_step`).
    pub async fn staged_request_step(&self, id: i64) -> StoreResult<StagedStep> {
        self.staged_request_steps().await?.into_iter().find(|s| s.id == id).ok_or(StoreError::NotFound)
    }

    /// Which (request id, action) pairs have a `request_state_changed` event in the audit trail
    /// (read from the signed bodies), looking at events from `since` on.
    pub async fn request_steps_with_event(
        &self,
        request_ids: &[String],
        since: Millis,
    ) -> StoreResult<std::collections::HashSet<(String, String)>> {
        let (request_id, action) = match self.engine() {
            super::Engine::Sqlite => (
                "json_extract(CAST(body AS TEXT), '$.details.request_id')",
                "json_extract(CAST(body AS TEXT), '$.details.action')",
            ),
            super::Engine::Postgres => (
                "convert_from(body, 'UTF8')::jsonb #>> '{details,request_id}'",
                "convert_from(body, 'UTF8')::jsonb #>> '{details,action}'",
            ),
        };
        let mut found = std::collections::HashSet::new();
        for chunk in request_ids.chunks(500) {
            let sql = format!(
                "SELECT {request_id} AS request_id, {action} AS action FROM audit_events \
                 WHERE type = $1 AND at >= $2 AND {request_id} IN ({})",
                super::placeholders(3, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind("request_state_changed").bind(since);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(self.reader()).await? {
                found.insert((row.try_get("request_id")?, row.try_get("action")?));
            }
        }
        Ok(found)
    }

    /// An organisation's requests (as requester, holder or both), newest first.
    pub async fn list_requests(
        &self,
        org_id: i64,
        filter: &RequestFilter,
        now: Millis,
    ) -> StoreResult<Vec<StoredRequest>> {
        let side = match filter.side {
            Some(Side::Requester) => "r.requester_org_id = $1",
            Some(Side::Holder) => "r.holder_org_id = $1",
            None => "(r.requester_org_id = $1 OR r.holder_org_id = $1)",
        };
        // Parameters after $1 (the organisation), in order.
        enum Bind {
            Text(&'static str),
            Owned(String),
            Int(i64),
        }
        let mut sql = format!("{SELECT} WHERE {side} AND r.audited = 1");
        let mut binds: Vec<Bind> = Vec::new();
        if let Some(state) = filter.state {
            binds.push(Bind::Text(state.as_str()));
            sql.push_str(&format!(" AND r.state = ${}", binds.len() + 1));
        }
        if let Some(overdue) = filter.overdue {
            binds.push(Bind::Int(now));
            let open = format!("r.state IN ('requested', 'acknowledged') AND r.due_at < ${}", binds.len() + 1);
            sql.push_str(&if overdue { format!(" AND {open}") } else { format!(" AND NOT ({open})") });
        }
        if let Some(cursor) = &filter.after {
            binds.push(Bind::Int(cursor.at));
            binds.push(Bind::Owned(cursor.id.clone()));
            let (at_param, id_param) = (binds.len(), binds.len() + 1);
            sql.push_str(&format!(" AND {}", older_than_cursor("r.created_at", "r.request_id", at_param, id_param)));
        }
        binds.push(Bind::Int(filter.limit));
        // Time, then the request's unique id: the order a page cursor names a row in.
        sql.push_str(&format!(" ORDER BY r.created_at DESC, r.request_id DESC LIMIT ${}", binds.len() + 1));
        let mut query = sqlx::query(&sql).bind(org_id);
        for b in binds {
            query = match b {
                Bind::Text(s) => query.bind(s),
                Bind::Owned(s) => query.bind(s),
                Bind::Int(i) => query.bind(i),
            };
        }
        query.fetch_all(self.reader()).await?.iter().map(from_row).collect()
    }

    /// Marks open requests past their deadline as escalated, once each, and tells each holder
    /// (`request.overdue`, with the holder's duty email to route it). Safe on several nodes:
    /// the UPDATE only takes rows not yet escalated.
    pub async fn escalate_overdue(&self, now: Millis, limit: i64) -> StoreResult<Vec<Escalated>> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "UPDATE requests SET escalated_at = $1 \
             WHERE id IN (SELECT id FROM requests WHERE escalated_at IS NULL AND state IN ($2, $3) AND due_at < $1 \
                          AND audited = 1 ORDER BY due_at LIMIT $4) \
               AND escalated_at IS NULL \
             RETURNING request_id, match_id, requester_org_id, holder_org_id, urgency, state, due_at",
        )
        .bind(now)
        .bind(RequestState::Requested.as_str())
        .bind(RequestState::Acknowledged.as_str())
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut escalated = Vec::with_capacity(rows.len());
        for row in rows {
            let e = Escalated::from_row(&row)?;
            let state: String = row.try_get("state")?;
            let state =
                RequestState::parse(&state).ok_or_else(|| StoreError::Inconsistent("unknown request state".into()))?;
            insert_event(&mut tx, &e.request_id, now, "escalated", Some(state), state, None, &Step::default()).await?;
            let holder = org_contact(&mut tx, e.holder_org_id).await?;
            let payload = json!({
                "request_id": e.request_id,
                "match_id": row.try_get::<String, _>("match_id")?,
                "urgency": e.urgency,
                "state": state.as_str(),
                "due_at": rfc3339(e.due_at),
                "requesting_organisation": org_contact(&mut tx, e.requester_org_id).await?,
                "duty_email": holder["secure_email"],
            });
            enqueue(&mut tx, e.holder_org_id, "request.overdue", &payload, now).await?;
            escalated.push(e);
        }
        tx.commit().await?;
        Ok(escalated)
    }
}

#[allow(clippy::too_many_arguments)]
async fn insert_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    request_id: &str,
    at: Millis,
    action: &str,
    from: Option<RequestState>,
    to: RequestState,
    actor: Option<(i64, i64)>,
    step: &Step,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO request_events (request_id, at, action, from_state, to_state, actor_user_id, actor_org_id, how, \
         reference, sent_at, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(request_id)
    .bind(at)
    .bind(action)
    .bind(from.map(RequestState::as_str))
    .bind(to.as_str())
    .bind(actor.map(|a| a.0))
    .bind(actor.map(|a| a.1))
    .bind(step.how.map(|h| h.as_str()))
    .bind(&step.reference)
    .bind(step.sent_at)
    .bind(&step.note)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Which of these lookup events (by audit seq) had a record requested through one of the
    /// match ids they handed out: "repeated lookups with no request following" needs it.
    pub async fn lookups_followed_by_request(&self, seqs: &[i64]) -> StoreResult<std::collections::HashSet<i64>> {
        let mut followed = std::collections::HashSet::new();
        for chunk in seqs.chunks(500) {
            let sql = format!(
                "SELECT DISTINCT lm.seq FROM lookup_matches lm JOIN requests r ON r.match_id = lm.match_id \
                 WHERE r.audited = 1 AND lm.seq IN ({})",
                super::placeholders(1, chunk.len())
            );
            let mut query = sqlx::query_scalar::<_, i64>(&sql);
            for s in chunk {
                query = query.bind(*s);
            }
            followed.extend(query.fetch_all(self.reader()).await?);
        }
        Ok(followed)
    }
}
