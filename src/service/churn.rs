//! Registering holdings must not be an unlimited oracle (issue 20, item 4): each organisation's
//! holdings added and removed per day are counted, and past its allowance (relative to its size)
//! no more are added until midnight. Syncs that look like guessing, or that take the day past
//! the allowance, are flagged: an audit event that the organisation's IG officer and the
//! national operator's IG officer see.

use serde_json::{Value, json};

use super::limits::Refusal;
use super::{Service, ServiceError, ServiceResult};
use crate::audit::{EventType, NewEvent};
use crate::domain::user::Actor;

const DAY_MS: i64 = 86_400_000;

impl Service {
    /// Records a `sync_flagged` event concerning the organisation and the national operator's.
    pub(crate) async fn flag_sync(
        &self,
        org_id: i64,
        actor: Option<&Actor>,
        reason: &str,
        mut details: Value,
    ) -> ServiceResult<()> {
        details["reason"] = json!(reason);
        let operators = self.store.operator_org_ids().await?;
        let mut event =
            NewEvent::new(EventType::SyncFlagged).concerning([org_id]).concerning(operators).details(details);
        if let Some(actor) = actor {
            event = event.by(actor);
        }
        self.audit.record(event).await?;
        tracing::warn!(org_id, reason, "a change of caseload was flagged for review");
        Ok(())
    }

    /// Holdings an organisation of this size may add and remove in a day.
    fn churn_allowance(&self, holdings: i64) -> i64 {
        let limits = &self.settings.limits;
        i64::from(limits.holdings_churn_floor)
            .max(holdings.saturating_mul(i64::from(limits.holdings_churn_percent)) / 100)
    }

    fn churn_day(&self) -> (i64, u64) {
        let now = self.clock.now_ms();
        let to_midnight = u64::try_from((DAY_MS - now.rem_euclid(DAY_MS)) / 1000).unwrap_or(1).max(1);
        (now.div_euclid(DAY_MS), to_midnight)
    }

    /// Before holdings are added: refused (429 until midnight, audited) once today's churn has
    /// reached the allowance. The machine owner's import (no actor) is not limited.
    pub(crate) async fn check_churn(&self, org_id: i64, actor: Option<&Actor>) -> ServiceResult<()> {
        let Some(actor) = actor.filter(|_| self.settings.limits.enabled) else { return Ok(()) };
        let (day, to_midnight) = self.churn_day();
        let (added, removed) = self.store.churn_on(org_id, day).await?;
        let allowance = self.churn_allowance(self.store.holdings_of_org(org_id).await?);
        if added + removed < allowance {
            return Ok(());
        }
        let refusal = Refusal {
            limit: "holdings_churn",
            retry_after_secs: to_midnight,
            message: format!(
                "your organisation has added and removed {} holdings today, past its daily allowance of \
                 {allowance}; adding more resumes at midnight (UTC). For a real change of caseload, ask the national operator",
                added + removed
            ),
        };
        let event = NewEvent::new(EventType::RateLimited).by(actor).details(json!({
            "limit": refusal.limit, "retry_after_secs": to_midnight, "added_today": added, "removed_today": removed,
            "allowance": allowance,
        }));
        self.record_refusal(actor, event).await?;
        Err(ServiceError::RateLimited(refusal))
    }

    /// Counts holdings added and removed. A first load (an organisation that had no holdings)
    /// counts its removals only. The change that takes the day past the allowance is flagged.
    pub(crate) async fn count_churn(
        &self,
        org_id: i64,
        actor: Option<&Actor>,
        added: u64,
        removed: u64,
        first_load: bool,
    ) -> ServiceResult<()> {
        let added = if first_load { 0 } else { i64::try_from(added).unwrap_or(i64::MAX) };
        let removed = i64::try_from(removed).unwrap_or(i64::MAX);
        if added == 0 && removed == 0 {
            return Ok(());
        }
        let (day, _) = self.churn_day();
        self.store.add_churn(org_id, day, added, removed).await?;
        let (added_today, removed_today) = self.store.churn_on(org_id, day).await?;
        let allowance = self.churn_allowance(self.store.holdings_of_org(org_id).await?);
        let today = added_today + removed_today;
        if self.settings.limits.enabled && today >= allowance && today - added - removed < allowance {
            let details = json!({"added_today": added_today, "removed_today": removed_today, "allowance": allowance});
            self.flag_sync(org_id, actor, "daily_churn", details).await?;
        }
        Ok(())
    }
}
