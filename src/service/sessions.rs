//! Web sessions: the pages' signed-in users, stored as keyed hashes of their ids.

use super::{Service, ServiceResult};
use crate::domain::user::StoredSession;

/// A live session's last-seen time is written at most this often (a write per page is waste).
const TOUCH_EVERY_MS: i64 = 60_000;

impl Service {
    /// The stored session under `id_hash` if it is live; an expired one is deleted, a live one
    /// touched (at most once a minute).
    pub async fn live_session(&self, id_hash: &[u8]) -> ServiceResult<Option<StoredSession>> {
        let Some(stored) = self.store.session(id_hash).await? else { return Ok(None) };
        let now = self.clock.now_ms();
        let idle_ms = i64::try_from(self.settings.web.session_idle.as_millis()).unwrap_or(i64::MAX);
        if stored.expires_at <= now || stored.last_seen_at.saturating_add(idle_ms) <= now {
            self.store.delete_session(id_hash).await?;
            return Ok(None);
        }
        if now - stored.last_seen_at >= TOUCH_EVERY_MS {
            self.store.touch_session(id_hash, now).await?;
        }
        Ok(Some(stored))
    }

    /// Starts a session for `user_id` under `id_hash`, clearing expired ones first.
    pub async fn start_session(&self, id_hash: &[u8], user_id: i64) -> ServiceResult<()> {
        let now = self.clock.now_ms();
        let idle_ms = i64::try_from(self.settings.web.session_idle.as_millis()).unwrap_or(i64::MAX);
        let max_ms = i64::try_from(self.settings.web.session_max.as_millis()).unwrap_or(i64::MAX);
        self.store.delete_expired_sessions(now, idle_ms).await?;
        self.store.create_session(id_hash, user_id, now, now.saturating_add(max_ms)).await?;
        Ok(())
    }

    /// Ends the session under `id_hash`.
    pub async fn end_session(&self, id_hash: &[u8]) -> ServiceResult<()> {
        Ok(self.store.delete_session(id_hash).await?)
    }
}
