//! What the pages keep between a POST and the GET it redirects to: a lookup's answer (the
//! redacted asking-side view, bound to one user's session) and a one-time message (a token
//! just issued, encrypted under a key the database never holds). Both expire.

use sqlx::Row;

use super::{Store, StoreResult};
use crate::clock::Millis;
use crate::domain::lookup::KeptAnswer;

/// Who a kept answer belongs to: the user, their organisation, and their session's binding.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub user_id: i64,
    pub org_id: i64,
    pub bound: &'a [u8],
}

impl Store {
    /// Keeps a lookup's answer until `expires_at`, clearing expired ones first.
    pub async fn keep_lookup_answer(
        &self,
        lookup_id: &str,
        owner: Owner<'_>,
        kept: &KeptAnswer,
        now: Millis,
        expires_at: Millis,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM web_lookup_answers WHERE expires_at <= $1").bind(now).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO web_lookup_answers (lookup_id, user_id, org_id, bound, case_ref, answer, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(lookup_id)
        .bind(owner.user_id)
        .bind(owner.org_id)
        .bind(owner.bound)
        .bind(&kept.case_ref)
        .bind(&kept.answer)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The kept answer, only for its owner and only until it expires.
    pub async fn kept_lookup_answer(
        &self,
        lookup_id: &str,
        owner: Owner<'_>,
        now: Millis,
    ) -> StoreResult<Option<KeptAnswer>> {
        let row = sqlx::query(
            "SELECT answer, case_ref FROM web_lookup_answers \
             WHERE lookup_id = $1 AND user_id = $2 AND org_id = $3 AND bound = $4 AND expires_at > $5",
        )
        .bind(lookup_id)
        .bind(owner.user_id)
        .bind(owner.org_id)
        .bind(owner.bound)
        .bind(now)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| Ok(KeptAnswer { answer: r.try_get("answer")?, case_ref: r.try_get("case_ref")? })).transpose()
    }

    /// Forgets a user's kept answers (at sign-out).
    pub async fn forget_lookup_answers(&self, user_id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM web_lookup_answers WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }

    /// Sets the session's one-time message (replacing any unread one).
    pub async fn put_flash(
        &self,
        bound: &[u8],
        nonce: &[u8],
        payload: &[u8],
        now: Millis,
        expires_at: Millis,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM web_flash WHERE bound = $1 OR expires_at <= $2")
            .bind(bound)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO web_flash (bound, nonce, payload, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(bound)
            .bind(nonce)
            .bind(payload)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes the session's one-time message: deleted in the same statement that reads it, so
    /// two reads never both get it. Returns (nonce, payload).
    pub async fn take_flash(&self, bound: &[u8], now: Millis) -> StoreResult<Option<(Vec<u8>, Vec<u8>)>> {
        let row = sqlx::query("DELETE FROM web_flash WHERE bound = $1 RETURNING nonce, payload, expires_at")
            .bind(bound)
            .fetch_optional(&mut *self.write_conn().await?)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: Millis = row.try_get("expires_at")?;
        if expires_at <= now {
            return Ok(None);
        }
        Ok(Some((row.try_get("nonce")?, row.try_get("payload")?)))
    }
}
