//! Record requests: create one from a match, take a step (acknowledge, fulfil, decline,
//! withdraw), read one with its history, and escalate overdue ones. Every step is audited.

use serde_json::json;

use super::redaction::{self, RequestView, RequestViews};
use super::{Service, ServiceError, ServiceResult};
use crate::audit::{EventType, NewEvent};
use crate::clock::{Millis, rfc3339};
use crate::domain::FieldError;
use crate::domain::request::RequestFilter;
use crate::domain::request::{Action, RequestInput, Side, StepInput, transition};
use crate::domain::user::Actor;
use crate::store::StoreError;

/// Requests escalated per round of the escalation pass.
const ESCALATE_BATCH: i64 = 200;

/// How long an unpublished request may be another node's creation still in flight.
const UNPUBLISHED_GRACE_MS: Millis = 10 * 60 * 1000;

impl Service {
    /// A practitioner asks for the record behind a match; answered with the request as the
    /// requester may see it (`redaction`).
    pub async fn create_request(&self, actor: &Actor, input: RequestInput) -> ServiceResult<RequestView> {
        let request = input.into_new()?;
        let target = self.store.match_target(&request.match_id, actor.org_id).await?;
        if target.holder_org_id == actor.org_id {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "match_id",
                "own_record",
                "this record is held by your own organisation: ask your own team",
            )]));
        }
        if target.withdrawn {
            return Err(ServiceError::Conflict(
                "this match has been withdrawn (its evidence has gone), so the record cannot be requested through it"
                    .into(),
            ));
        }
        // One open request per requesting organisation and record, whichever match it came
        // through: a second attempt is led to the open one (the store's unique index decides
        // a race). It names only the organisation's own request, never a shielded holder.
        if let Some(open) = self.store.open_request_for(&request.match_id, &target, actor.org_id).await? {
            return Err(ServiceError::AlreadyRequested(open));
        }
        let now = self.clock.now_ms();
        let due_at = self.settings.deadlines.due_at(request.urgency, now);
        let stored =
            match self.store.create_request(&request, &target, (actor.org_id, actor.user_id), due_at, now).await {
                Ok(stored) => stored,
                Err(StoreError::Conflict(message)) => {
                    return Err(match self.store.open_request_for(&request.match_id, &target, actor.org_id).await? {
                        Some(open) => ServiceError::AlreadyRequested(open),
                        None => ServiceError::Conflict(message.into()),
                    });
                }
                Err(e) => return Err(e.into()),
            };
        let event = NewEvent::new(EventType::RequestCreated)
            .by(actor)
            .concerning([stored.requester_org_id, stored.holder_org_id])
            .details(json!({
                "request_id": stored.request_id,
                "match_id": stored.match_id,
                "legal_basis": stored.legal_basis.as_str(),
                "urgency": stored.urgency.as_str(),
                "due_at": rfc3339(stored.due_at),
                // Free text is not copied into the permanent log; its size is enough to review.
                "reason_chars": stored.reason.chars().count(),
            }));
        // The request and its event stand or fall together: the request is written unpublished,
        // published only once its event is durable, and taken back if the event fails.
        if let Err(e) = self.audit.record(event).await {
            if let Err(left) = self.store.discard_unpublished_request(&stored.request_id).await {
                tracing::warn!(error = %left, "an unpublished request was not taken back; start-up settles it");
            }
            return Err(e.into());
        }
        self.store.publish_request(&stored.request_id, self.clock.now_ms()).await?;
        RequestViews::new(self, actor).with_history(stored).await
    }

    /// Settles requests (and steps) left unpublished by a node that stopped between writing one
    /// and publishing it: published if its event is in the trail; deleted if not and older than
    /// `UNPUBLISHED_GRACE_MS` (younger ones may be another node's, in flight).
    /// Returns (published, deleted).
    pub async fn settle_unpublished_requests(&self) -> ServiceResult<(usize, usize)> {
        let pending = self.store.unpublished_requests().await?;
        let now = self.clock.now_ms();
        let (mut published, mut deleted) = (0, 0);
        let oldest = pending.iter().map(|(_, at)| *at).min().unwrap_or(now);
        let ids: Vec<String> = pending.iter().map(|(id, _)| id.clone()).collect();
        let audited = if ids.is_empty() {
            Default::default()
        } else {
            self.store.requests_with_created_event(&ids, oldest - UNPUBLISHED_GRACE_MS).await?
        };
        for (id, created_at) in pending {
            if audited.contains(&id) {
                published += usize::from(self.store.publish_request(&id, now).await?);
            } else if now - created_at > UNPUBLISHED_GRACE_MS {
                self.store.discard_unpublished_request(&id).await?;
                deleted += 1;
            }
        }
        let (steps_published, steps_deleted) = self.settle_staged_request_steps(now).await?;
        let (published, deleted) = (published + steps_published, deleted + steps_deleted);
        if published + deleted > 0 {
            tracing::warn!(published, deleted, "settled requests and steps left unpublished by a stopped node");
        }
        Ok((published, deleted))
    }

    /// As `settle_unpublished_requests`, for staged steps: published if their
    /// `request_state_changed` event is in the trail, deleted if not and past the grace period.
    async fn settle_staged_request_steps(&self, now: Millis) -> ServiceResult<(usize, usize)> {
        let staged = self.store.staged_request_steps().await?;
        let Some(oldest) = staged.iter().map(|s| s.at).min() else { return Ok((0, 0)) };
        let ids: Vec<String> = staged.iter().map(|s| s.request_id.clone()).collect();
        let audited = self.store.request_steps_with_event(&ids, oldest - UNPUBLISHED_GRACE_MS).await?;
        let (mut published, mut deleted) = (0, 0);
        for step in staged {
            if audited.contains(&(step.request_id.clone(), step.action.as_str().to_string())) {
                let notice = redaction::step_notice(&step);
                published += usize::from(self.store.publish_request_step(&step, &notice).await?.is_some());
            } else if now - step.at > UNPUBLISHED_GRACE_MS {
                self.store.discard_request_step(step.id).await?;
                deleted += 1;
            }
        }
        Ok((published, deleted))
    }

    /// One request with its history, for either of its organisations (404 for anyone else).
    pub async fn request_view(&self, actor: &Actor, request_id: &str) -> ServiceResult<RequestView> {
        let request = self.store.request_for_org(request_id, actor.org_id).await?;
        RequestViews::new(self, actor).with_history(request).await
    }

    /// The actor's organisation's requests (inbox and its own), without their histories.
    pub async fn list_requests(&self, actor: &Actor, filter: &RequestFilter) -> ServiceResult<Vec<RequestView>> {
        let rows = self.store.list_requests(actor.org_id, filter, self.clock.now_ms()).await?;
        let mut views = RequestViews::new(self, actor);
        let mut list = Vec::with_capacity(rows.len());
        for row in rows {
            list.push(views.summary(row).await?);
        }
        Ok(list)
    }

    /// Takes a step on a request: visible (else 404), the right side (else 403), allowed from
    /// the current state (else 409), with a valid body (else 422); then stored and audited.
    pub async fn request_step(
        &self,
        actor: &Actor,
        request_id: &str,
        action: Action,
        input: StepInput,
    ) -> ServiceResult<RequestView> {
        let request = self.store.request_for_org(request_id, actor.org_id).await?;
        let side = request.side_of(actor.org_id).ok_or(StoreError::NotFound)?;
        let to = transition(request.state, action, side).map_err(|refusal| match refusal {
            crate::domain::request::Refusal::WrongSide { .. } => ServiceError::Refused(refusal.message(action)),
            crate::domain::request::Refusal::FromState(_) => ServiceError::Conflict(refusal.message(action)),
        })?;
        let now = self.clock.now_ms();
        let step = input.into_step(action, now)?;
        // As for a new request: staged (invisible, and holding off any other step), audited,
        // then published with its notice; taken back if the event fails.
        let by = (actor.user_id, actor.org_id);
        let staged = self.store.stage_request_step(&request, action, to, by, &step, now).await?;
        // A shielded holder's own steps stay out of the requester's audit view (they name it).
        let concerning = if request.holder_shielded && side == Side::Holder {
            vec![request.holder_org_id]
        } else {
            vec![request.requester_org_id, request.holder_org_id]
        };
        let event = NewEvent::new(EventType::RequestStateChanged).by(actor).concerning(concerning).details(json!({
            "request_id": request.request_id,
            "action": action.as_str(),
            "from": request.state.as_str(),
            "to": to.as_str(),
            "how": step.how.map(|h| h.as_str()),
            "overdue": request.is_overdue(now),
        }));
        if let Err(e) = self.audit.record(event).await {
            if let Err(left) = self.store.discard_request_step(staged).await {
                tracing::warn!(error = %left, "an unpublished request step was not taken back; start-up settles it");
            }
            return Err(e.into());
        }
        let published = match self.store.staged_request_step(staged).await {
            Ok(staged) => self.store.publish_request_step(&staged, &redaction::step_notice(&staged)).await?,
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let updated = match published {
            Some(updated) => updated,
            // Another node's settling pass published it first.
            None => self.store.request_for_org(request_id, actor.org_id).await?,
        };
        RequestViews::new(self, actor).with_history(updated).await
    }

    /// Marks every open request past its deadline as escalated (once), queues `request.overdue`
    /// to each holder and audits each. The background task calls this; tests call it with a
    /// manual clock. Returns how many were escalated.
    pub async fn escalate_overdue(&self, now: Millis) -> ServiceResult<usize> {
        let mut total = 0;
        loop {
            let escalated = self.store.escalate_overdue(now, ESCALATE_BATCH).await?;
            for e in &escalated {
                let event = NewEvent::new(EventType::RequestEscalated)
                    .concerning([e.requester_org_id, e.holder_org_id])
                    .details(json!({
                        "request_id": e.request_id,
                        "urgency": e.urgency,
                        "due_at": rfc3339(e.due_at),
                    }));
                self.audit.record(event).await?;
            }
            total += escalated.len();
            if (escalated.len() as i64) < ESCALATE_BATCH {
                return Ok(total);
            }
        }
    }
}
