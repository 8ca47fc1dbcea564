//! What a start page shows as needing attention that no other use case answers on its own: when
//! the organisation last sent its caseload, and (for the operator) how the directory is doing.

use super::{Service, ServiceResult};
use crate::clock::Millis;
use crate::domain::user::Actor;

/// An organisation that has not sent its caseload for this long is "not sent lately".
pub const STALE_SYNC_MS: Millis = 7 * 24 * 60 * 60 * 1000;

/// The operator's view of the directory: who takes part, and who has gone quiet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectoryHealth {
    pub participating: usize,
    pub without_records: usize,
    /// Organisations whose last complete caseload is older than `STALE_SYNC_MS`, or that have
    /// never sent one.
    pub not_sent_lately: usize,
}

impl Service {
    /// When the actor's organisation last sent its whole caseload (a completed sync).
    pub async fn last_sync(&self, actor: &Actor) -> ServiceResult<Option<Millis>> {
        Ok(self.store.last_sync_of(actor.org_id).await?)
    }

    /// Counts over the active directory, for the operator's start page.
    pub async fn directory_health(&self) -> ServiceResult<DirectoryHealth> {
        let now = self.clock.now_ms();
        let all = self.store.participants().await?;
        Ok(DirectoryHealth {
            participating: all.len(),
            without_records: all.iter().filter(|p| p.holdings == 0).count(),
            not_sent_lately: all.iter().filter(|p| p.last_sync.is_none_or(|at| now - at > STALE_SYNC_MS)).count(),
        })
    }
}
