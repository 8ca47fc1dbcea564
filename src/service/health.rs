//! Whether this node can serve (readiness) and what its background work owes (metrics).

use super::{Service, ServiceResult};

impl Service {
    /// Why this node is not ready to serve, if it is not (see `/readyz`).
    pub async fn not_ready(&self) -> Option<&'static str> {
        if let Err(e) = self.store.ready().await {
            tracing::warn!(error = %e, "not ready");
            return Some("not ready: the database is unreachable or not migrated");
        }
        if !self.audit.is_writable() {
            return Some("not ready: the audit trail cannot be written");
        }
        if self.prefilter.is_warming() {
            return Some("not ready: loading the lookup prefilter");
        }
        None
    }

    /// Searches whose pseudonyms wait to be indexed for subject access (a metric).
    pub async fn searches_unindexed(&self) -> ServiceResult<i64> {
        Ok(self.store.pending_pseudonym_events().await?)
    }

    /// Marks the lookup prefilter as loading (readiness waits for it).
    pub fn mark_prefilter_warming(&self) {
        self.prefilter.mark_warming();
    }
}
