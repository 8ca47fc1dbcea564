//! OAuth clients (systems), their short-lived access tokens, the assertion ids they have used,
//! and each organisation's switch for long-lived API tokens. Only public keys and keyed hashes
//! are stored; revocation is a column every authentication reads.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::users::{actor_from_row, role_of};
use super::{Store, StoreError, StoreResult, flag};
use crate::clock::Millis;
use crate::domain::client::{ApiClient, ClientCredentials};
use crate::domain::role::Role;
use crate::domain::user::Actor;

/// A new client as the service decided it.
pub struct NewClient<'a> {
    pub client_id: &'a str,
    pub org_id: i64,
    pub name: &'a str,
    pub role: Role,
    pub alg: &'a str,
    pub public_jwk: &'a str,
    pub thumbprint: &'a str,
    /// The users row's token hash: random, never anyone's token, so the row cannot sign in.
    pub unusable_token_hash: &'a [u8],
}

const COLUMNS: &str = "c.client_id, c.name, c.role, o.code AS org_code, c.alg, c.key_thumbprint, c.user_id, \
                       c.created_at, c.revoked_at";

fn client_from_row(row: &AnyRow) -> StoreResult<ApiClient> {
    Ok(ApiClient {
        client_id: row.try_get("client_id")?,
        name: row.try_get("name")?,
        role: role_of(row)?,
        organisation: row.try_get("org_code")?,
        alg: row.try_get("alg")?,
        key_thumbprint: row.try_get("key_thumbprint")?,
        user_id: row.try_get("user_id")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// A client's actor: its user's, naming the client.
fn client_actor_from_row(row: &AnyRow) -> StoreResult<Actor> {
    Ok(Actor { client_id: Some(row.try_get("client_id")?), ..actor_from_row(row)? })
}

impl Store {
    /// Adds a client and the users row it acts through, in one transaction.
    pub async fn add_client(&self, c: &NewClient<'_>, now: Millis) -> StoreResult<ApiClient> {
        let mut tx = self.begin_write().await?;
        let user_id: i64 = sqlx::query_scalar(
            "INSERT INTO users (org_id, name, role, token_hash, token_hint, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(c.org_id)
        .bind(c.name)
        .bind(c.role.as_str())
        .bind(c.unusable_token_hash)
        .bind("api client")
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO api_clients (client_id, org_id, user_id, name, role, alg, public_jwk, key_thumbprint, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(c.client_id)
        .bind(c.org_id)
        .bind(user_id)
        .bind(c.name)
        .bind(c.role.as_str())
        .bind(c.alg)
        .bind(c.public_jwk)
        .bind(c.thumbprint)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.client_in_org(c.org_id, c.client_id).await
    }

    /// A client of the given organisation; another organisation's is `NotFound`.
    pub async fn client_in_org(&self, org_id: i64, client_id: &str) -> StoreResult<ApiClient> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_clients c JOIN organisations o ON o.id = c.org_id \
             WHERE c.client_id = $1 AND c.org_id = $2"
        ))
        .bind(client_id)
        .bind(org_id)
        .fetch_optional(self.reader())
        .await?
        .ok_or(StoreError::NotFound)?;
        client_from_row(&row)
    }

    pub async fn clients_of_org(&self, org_id: i64) -> StoreResult<Vec<ApiClient>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_clients c JOIN organisations o ON o.id = c.org_id \
             WHERE c.org_id = $1 ORDER BY c.id"
        ))
        .bind(org_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(client_from_row).collect()
    }

    /// A live client's key, for checking its assertion: `None` when unknown, revoked, or its
    /// organisation or users row is no longer live.
    pub async fn client_credentials(&self, client_id: &str) -> StoreResult<Option<ClientCredentials>> {
        let row = sqlx::query(
            "SELECT c.id, c.client_id, c.alg, c.public_jwk FROM api_clients c \
             JOIN users u ON u.id = c.user_id JOIN organisations o ON o.id = c.org_id \
             WHERE c.client_id = $1 AND c.revoked_at IS NULL AND u.revoked_at IS NULL AND o.active = 1",
        )
        .bind(client_id)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ClientCredentials {
            row: row.try_get("id")?,
            client_id: row.try_get("client_id")?,
            alg: row.try_get("alg")?,
            public_jwk: row.try_get("public_jwk")?,
        }))
    }

    /// Revokes a client, the users row it acts through, and its access tokens. Revoking twice
    /// is harmless; another organisation's client is `NotFound`.
    pub async fn revoke_client(&self, org_id: i64, client_id: &str, now: Millis) -> StoreResult<ApiClient> {
        let mut tx = self.begin_write().await?;
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT id, user_id FROM api_clients WHERE client_id = $1 AND org_id = $2")
                .bind(client_id)
                .bind(org_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((row, user_id)) = row else { return Err(StoreError::NotFound) };
        sqlx::query("UPDATE api_clients SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
            .bind(now)
            .bind(row)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE users SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM client_access_tokens WHERE client_row = $1").bind(row).execute(&mut *tx).await?;
        tx.commit().await?;
        self.client_in_org(org_id, client_id).await
    }

    /// Records an assertion's id until it expires; `false` when it was already recorded (a
    /// replay). Ids past their expiry are pruned first, on every node's behalf.
    pub async fn remember_assertion(
        &self,
        client_row: i64,
        jti_hash: &[u8],
        expires_at: Millis,
        now: Millis,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM client_assertion_jtis WHERE expires_at < $1").bind(now).execute(&mut *tx).await?;
        let added = sqlx::query(
            "INSERT INTO client_assertion_jtis (client_row, jti_hash, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(client_row)
        .bind(jti_hash)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(added == 1)
    }

    /// Stores an issued access token's hash; expired ones are pruned on the way.
    pub async fn add_access_token(
        &self,
        client_row: i64,
        token_hash: &[u8],
        now: Millis,
        expires_at: Millis,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM client_access_tokens WHERE expires_at < $1").bind(now).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO client_access_tokens (token_hash, client_row, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(client_row)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The actor for an access token's hash, if it has not expired, its client is live and its
    /// organisation active.
    pub async fn actor_for_access_token(&self, token_hash: &[u8], now: Millis) -> StoreResult<Option<Actor>> {
        let row = sqlx::query(
            "SELECT u.id, u.name, c.role, u.reported_lost_at, c.client_id, o.id AS org_id, o.code, \
             o.name AS org_name, o.kind \
             FROM client_access_tokens t JOIN api_clients c ON c.id = t.client_row \
             JOIN users u ON u.id = c.user_id JOIN organisations o ON o.id = c.org_id \
             WHERE t.token_hash = $1 AND t.expires_at > $2 AND c.revoked_at IS NULL AND u.revoked_at IS NULL \
             AND o.active = 1",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(client_actor_from_row).transpose()
    }

    /// The actor behind a client's access tokens (for auditing its own token request).
    pub async fn client_actor(&self, client_row: i64) -> StoreResult<Actor> {
        let row = sqlx::query(
            "SELECT u.id, u.name, c.role, u.reported_lost_at, c.client_id, o.id AS org_id, o.code, \
             o.name AS org_name, o.kind \
             FROM api_clients c JOIN users u ON u.id = c.user_id JOIN organisations o ON o.id = c.org_id \
             WHERE c.id = $1",
        )
        .bind(client_row)
        .fetch_optional(self.reader())
        .await?
        .ok_or(StoreError::NotFound)?;
        client_actor_from_row(&row)
    }

    /// Whether the organisation's long-lived API tokens are accepted.
    pub async fn long_lived_tokens_allowed(&self, org_id: i64) -> StoreResult<bool> {
        let allowed: Option<i64> = sqlx::query_scalar("SELECT long_lived_tokens FROM organisations WHERE id = $1")
            .bind(org_id)
            .fetch_optional(self.reader())
            .await?;
        Ok(allowed.ok_or(StoreError::NotFound)? != 0)
    }

    pub async fn set_long_lived_tokens(&self, org_id: i64, allowed: bool) -> StoreResult<()> {
        let changed = sqlx::query("UPDATE organisations SET long_lived_tokens = $1 WHERE id = $2")
            .bind(flag(allowed))
            .bind(org_id)
            .execute(&mut *self.write_conn().await?)
            .await?
            .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
