//! Browser sessions: a keyed hash of the session id, the user, and when it expires. The
//! session's actor is resolved with the same rules as a bearer token (live user, active
//! organisation), so revoking a token also ends its sessions.

use sqlx::Row;

use super::users::actor_from_row;
use super::{Store, StoreResult};
use crate::clock::Millis;
use crate::domain::user::StoredSession;

impl Store {
    pub async fn create_session(
        &self,
        id_hash: &[u8],
        user_id: i64,
        now: Millis,
        expires_at: Millis,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, user_id, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $3, $4)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(())
    }

    /// The session and its actor, if the session exists and its user and organisation are live.
    /// Expiry is the caller's decision (it knows the idle limit).
    pub async fn session(&self, id_hash: &[u8]) -> StoreResult<Option<StoredSession>> {
        let row = sqlx::query(
            "SELECT s.created_at, s.last_seen_at, s.expires_at, u.id, u.name, u.role, u.reported_lost_at, \
             o.id AS org_id, o.code, o.name AS org_name, o.kind \
             FROM web_sessions s JOIN users u ON u.id = s.user_id JOIN organisations o ON o.id = u.org_id \
             WHERE s.id_hash = $1 AND u.revoked_at IS NULL AND o.active = 1",
        )
        .bind(id_hash)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(StoredSession {
            actor: actor_from_row(&row)?,
            created_at: row.try_get("created_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    pub async fn touch_session(&self, id_hash: &[u8], now: Millis) -> StoreResult<()> {
        sqlx::query("UPDATE web_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash)
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &[u8]) -> StoreResult<()> {
        sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }

    /// Removes sessions past their absolute expiry or idle for longer than `idle_ms`.
    pub async fn delete_expired_sessions(&self, now: Millis, idle_ms: Millis) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now)
            .bind(now - idle_ms)
            .execute(&mut *self.write_conn().await?)
            .await?
            .rows_affected())
    }
}
