//! Users and their tokens. Only a keyed hash of a token is stored; revocation is a column
//! that every authentication reads, so it takes effect on the next request.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, StoreResult};
use crate::clock::Millis;
use crate::domain::organisation::OrgKind;
use crate::domain::role::Role;
use crate::domain::user::{Actor, User};

pub(crate) fn role_of(row: &AnyRow) -> StoreResult<Role> {
    let role: String = row.try_get("role")?;
    Role::parse(&role).ok_or_else(|| StoreError::Inconsistent("unknown role".into()))
}

/// The actor behind a token or session, from a row with the user's `id`, `name`, `role`,
/// `reported_lost_at` and the organisation's `org_id`, `code`, `org_name` and `kind`. A client's
/// access token adds its `client_id` (see `store::clients`).
pub(crate) fn actor_from_row(row: &AnyRow) -> StoreResult<Actor> {
    let kind: String = row.try_get("kind")?;
    Ok(Actor {
        user_id: row.try_get("id")?,
        user_name: row.try_get("name")?,
        role: role_of(row)?,
        org_id: row.try_get("org_id")?,
        org_code: row.try_get("code")?,
        org_name: row.try_get("org_name")?,
        org_kind: OrgKind::parse(&kind).ok_or_else(|| StoreError::Inconsistent("unknown organisation kind".into()))?,
        reported_lost_at: row.try_get("reported_lost_at")?,
        client_id: None,
    })
}

/// A long-lived token's user, and whether their organisation accepts such tokens on its API.
#[derive(Debug, Clone)]
pub struct TokenActor {
    pub actor: Actor,
    pub long_lived_tokens_allowed: bool,
}

fn user_from_row(row: &AnyRow) -> StoreResult<User> {
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: role_of(row)?,
        organisation: row.try_get("org_code")?,
        token_hint: row.try_get("token_hint")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

const USER_COLUMNS: &str = "u.id, u.name, u.role, o.code AS org_code, u.token_hint, u.created_at, u.revoked_at";

impl Store {
    pub async fn add_user(
        &self,
        org_id: i64,
        name: &str,
        role: Role,
        token_hash: &[u8],
        token_hint: &str,
        now: Millis,
    ) -> StoreResult<User> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (org_id, name, role, token_hash, token_hint, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(org_id)
        .bind(name)
        .bind(role.as_str())
        .bind(token_hash)
        .bind(token_hint)
        .bind(now)
        .fetch_one(&mut *self.write_conn().await?)
        .await?;
        self.user_in_org(org_id, id).await
    }

    /// Adds an org-admin only if the organisation has no live one (an operator's bootstrap), in
    /// one statement so two bootstraps cannot both see "none". `None` when it already has one.
    pub async fn add_first_org_admin(
        &self,
        org_id: i64,
        name: &str,
        token_hash: &[u8],
        token_hint: &str,
        now: Millis,
    ) -> StoreResult<Option<User>> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO users (org_id, name, role, token_hash, token_hint, created_at) \
             SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS \
             (SELECT 1 FROM users WHERE org_id = $1 AND role = $3 AND revoked_at IS NULL) RETURNING id",
        )
        .bind(org_id)
        .bind(name)
        .bind(Role::OrgAdmin.as_str())
        .bind(token_hash)
        .bind(token_hint)
        .bind(now)
        .fetch_optional(&mut *self.write_conn().await?)
        .await?;
        match id {
            Some(id) => Ok(Some(self.user_in_org(org_id, id).await?)),
            None => Ok(None),
        }
    }

    /// A user of the given organisation; another organisation's user is `NotFound`.
    pub async fn user_in_org(&self, org_id: i64, user_id: i64) -> StoreResult<User> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN organisations o ON o.id = u.org_id \
             WHERE u.id = $1 AND u.org_id = $2"
        ))
        .bind(user_id)
        .bind(org_id)
        .fetch_optional(self.reader())
        .await?
        .ok_or(StoreError::NotFound)?;
        user_from_row(&row)
    }

    pub async fn users_of_org(&self, org_id: i64) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN organisations o ON o.id = u.org_id \
             WHERE u.org_id = $1 ORDER BY u.id"
        ))
        .bind(org_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Revokes a user's token. Revoking twice is harmless; another organisation's user is `NotFound`.
    pub async fn revoke_user(&self, org_id: i64, user_id: i64, now: Millis) -> StoreResult<User> {
        let changed =
            sqlx::query("UPDATE users SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND org_id = $3")
                .bind(now)
                .bind(user_id)
                .bind(org_id)
                .execute(&mut *self.write_conn().await?)
                .await?
                .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        self.user_in_org(org_id, user_id).await
    }

    /// Marks a token as reported lost (it keeps working until revoked, but every use is flagged).
    pub async fn report_token_lost(&self, org_id: i64, user_id: i64, now: Millis) -> StoreResult<User> {
        let changed = sqlx::query(
            "UPDATE users SET reported_lost_at = COALESCE(reported_lost_at, $1) WHERE id = $2 AND org_id = $3",
        )
        .bind(now)
        .bind(user_id)
        .bind(org_id)
        .execute(&mut *self.write_conn().await?)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        self.user_in_org(org_id, user_id).await
    }

    /// Moves a token's stored hash to the current key (during a key rotation).
    pub async fn rehash_token(&self, old_hash: &[u8], new_hash: &[u8]) -> StoreResult<()> {
        sqlx::query("UPDATE users SET token_hash = $1 WHERE token_hash = $2")
            .bind(new_hash)
            .bind(old_hash)
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }

    /// The actor for a token hash, if the token is live and its organisation active, with
    /// whether that organisation accepts long-lived tokens on its API (read in the same query:
    /// every API request asks both).
    pub async fn actor_for_token(&self, token_hash: &[u8]) -> StoreResult<Option<TokenActor>> {
        let row = sqlx::query(
            "SELECT u.id, u.name, u.role, u.reported_lost_at, o.id AS org_id, o.code, o.name AS org_name, o.kind, \
             o.long_lived_tokens FROM users u JOIN organisations o ON o.id = u.org_id \
             WHERE u.token_hash = $1 AND u.revoked_at IS NULL AND o.active = 1",
        )
        .bind(token_hash)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref()
            .map(|row| {
                let allowed: i64 = row.try_get("long_lived_tokens")?;
                Ok(TokenActor { actor: actor_from_row(row)?, long_lived_tokens_allowed: allowed != 0 })
            })
            .transpose()
    }
}
