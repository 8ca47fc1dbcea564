//! Retention: closed holdings are purged a configurable time after closure (default two
//! years: long enough to catch a family that moves soon after a case closes, short enough
//! that the index does not become a register of everyone ever known). Audited per organisation.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Service, ServiceResult};
use crate::audit::{EventType, NewEvent};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PurgeSummary {
    pub holdings: u64,
    pub organisations: u64,
    pub matches_withdrawn: u64,
    /// Free texts beside the audit trail erased (past `free_text_retention_days`).
    pub free_texts_erased: u64,
}

impl Service {
    /// Purges closed holdings past retention (or counts them with `dry_run`).
    pub async fn purge(&self, dry_run: bool) -> ServiceResult<PurgeSummary> {
        let retention_ms = i64::from(self.settings.closed_retention_days) * 86_400_000;
        let cutoff = self.clock.now_ms() - retention_ms;
        let mut by_org: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for (id, org) in self.store.closed_before(cutoff).await? {
            by_org.entry(org).or_default().push(id);
        }
        let mut summary = PurgeSummary { organisations: by_org.len() as u64, ..PurgeSummary::default() };
        for (org, ids) in &by_org {
            summary.holdings += ids.len() as u64;
            if dry_run {
                continue;
            }
            let (_, signalled) = self.remove_holdings(*org, ids, None).await?;
            summary.matches_withdrawn += signalled.withdrawn;
            let event = NewEvent::new(EventType::Purge).concerning([*org]).details(json!({
                "holdings": ids.len(),
                "retention_days": self.settings.closed_retention_days,
                "matches_withdrawn": signalled.withdrawn,
            }));
            self.audit.record(event).await?;
        }
        if !dry_run {
            summary.free_texts_erased = self.erase_old_free_text().await?;
        }
        Ok(summary)
    }
}

impl Service {
    /// Erases free text kept beside audit events older than its retention. The leaves keep
    /// their commitments, so the trail still verifies; the erasure is itself an event.
    async fn erase_old_free_text(&self) -> ServiceResult<u64> {
        let now = self.clock.now_ms();
        let days = self.settings.free_text_retention_days;
        let erased = self.store.erase_free_text_before(now - i64::from(days) * 86_400_000, now).await?;
        if erased > 0 {
            let event =
                NewEvent::new(EventType::Purge).details(json!({"free_texts_erased": erased, "retention_days": days}));
            self.audit.record(event).await?;
        }
        Ok(erased)
    }
}
