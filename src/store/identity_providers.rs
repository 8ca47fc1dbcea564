//! Organisations' OpenID Connect providers, sign-ins in flight (single use), and the people who
//! signed in through a provider (users known by issuer and subject).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, StoreResult, flag};
use crate::clock::Millis;
use crate::domain::identity_provider::RoleMapping;
use crate::domain::role::Role;

/// A provider as stored: secrets only sealed or as references.
#[derive(Debug, Clone)]
pub struct StoredProvider {
    pub org_id: i64,
    pub org_code: String,
    pub org_name: String,
    pub label: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret_sealed: Option<Vec<u8>>,
    pub client_secret_ref: Option<String>,
    pub private_key_ref: Option<String>,
    pub allowed_tenant: Option<String>,
    pub allowed_domain: Option<String>,
    pub scopes: String,
    pub role_claim: String,
    pub roles: RoleMapping,
    pub session_max_minutes: Option<i64>,
    pub updated_at: Millis,
}

/// A sign-in in flight, taken (and so deleted) by its callback.
pub struct PendingSignIn {
    pub org_id: i64,
    pub sealed: Vec<u8>,
    pub redirect_uri: String,
    pub expires_at: Millis,
}

/// A person known by issuer and subject.
#[derive(Debug, Clone)]
pub struct ProviderUser {
    pub user_id: i64,
    pub org_id: i64,
    pub role: Role,
    pub name: String,
    pub revoked: bool,
    /// Disabled because the provider stopped giving a role (a later role enables them again).
    pub disabled_by_provider: bool,
}

const COLUMNS: &str = "p.org_id, o.code AS org_code, o.name AS org_name, p.label, p.issuer, p.client_id, \
     p.client_secret_sealed, p.client_secret_ref, p.private_key_ref, p.allowed_tenant, p.allowed_domain, p.scopes, \
     p.role_claim, p.practitioner_values, p.ig_officer_values, p.org_admin_values, p.session_max_minutes, p.updated_at";

fn list(row: &AnyRow, column: &str) -> StoreResult<Vec<String>> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|_| StoreError::Inconsistent("a role mapping is not a JSON list".into()))
}

fn provider_from_row(row: &AnyRow) -> StoreResult<StoredProvider> {
    Ok(StoredProvider {
        org_id: row.try_get("org_id")?,
        org_code: row.try_get("org_code")?,
        org_name: row.try_get("org_name")?,
        label: row.try_get("label")?,
        issuer: row.try_get("issuer")?,
        client_id: row.try_get("client_id")?,
        client_secret_sealed: row.try_get("client_secret_sealed")?,
        client_secret_ref: row.try_get("client_secret_ref")?,
        private_key_ref: row.try_get("private_key_ref")?,
        allowed_tenant: row.try_get("allowed_tenant")?,
        allowed_domain: row.try_get("allowed_domain")?,
        scopes: row.try_get("scopes")?,
        role_claim: row.try_get("role_claim")?,
        roles: RoleMapping {
            practitioner: list(row, "practitioner_values")?,
            ig_officer: list(row, "ig_officer_values")?,
            org_admin: list(row, "org_admin_values")?,
        },
        session_max_minutes: row.try_get("session_max_minutes")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Sets (replaces) an organisation's provider. Another organisation's (issuer, client_id)
    /// is a conflict.
    pub async fn put_provider(&self, p: &StoredProvider, now: Millis) -> StoreResult<()> {
        let json = |l: &[String]| serde_json::to_string(l).unwrap_or_else(|_| "[]".into());
        let mut tx = self.begin_write().await?;
        let created: Option<i64> = sqlx::query_scalar("SELECT created_at FROM identity_providers WHERE org_id = $1")
            .bind(p.org_id)
            .fetch_optional(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM identity_providers WHERE org_id = $1").bind(p.org_id).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO identity_providers (org_id, label, issuer, client_id, client_secret_sealed, client_secret_ref, \
             private_key_ref, allowed_tenant, allowed_domain, scopes, role_claim, practitioner_values, ig_officer_values, \
             org_admin_values, session_max_minutes, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(p.org_id)
        .bind(&p.label)
        .bind(&p.issuer)
        .bind(&p.client_id)
        .bind(p.client_secret_sealed.as_deref())
        .bind(p.client_secret_ref.as_deref())
        .bind(p.private_key_ref.as_deref())
        .bind(p.allowed_tenant.as_deref())
        .bind(p.allowed_domain.as_deref())
        .bind(&p.scopes)
        .bind(&p.role_claim)
        .bind(json(&p.roles.practitioner))
        .bind(json(&p.roles.ig_officer))
        .bind(json(&p.roles.org_admin))
        .bind(p.session_max_minutes)
        .bind(created.unwrap_or(now))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The provider of an active organisation.
    pub async fn provider_of(&self, org_id: i64) -> StoreResult<Option<StoredProvider>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM identity_providers p JOIN organisations o ON o.id = p.org_id \
             WHERE p.org_id = $1 AND o.active = 1"
        ))
        .bind(org_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(provider_from_row).transpose()
    }

    /// Every active organisation with a provider, by name (the sign-in page's choice).
    pub async fn providers(&self) -> StoreResult<Vec<StoredProvider>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM identity_providers p JOIN organisations o ON o.id = p.org_id \
             WHERE o.active = 1 ORDER BY o.name, o.code"
        ))
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(provider_from_row).collect()
    }

    /// Removes an organisation's provider; its people can no longer sign in through it.
    pub async fn delete_provider(&self, org_id: i64) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM identity_providers WHERE org_id = $1")
            .bind(org_id)
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a sign-in in flight (and clears expired ones).
    pub async fn add_sign_in(
        &self,
        state_hash: &[u8],
        org_id: i64,
        sealed: &[u8],
        redirect_uri: &str,
        now: Millis,
        expires_at: Millis,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM oidc_sign_ins WHERE expires_at <= $1").bind(now).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO oidc_sign_ins (state_hash, org_id, sealed, redirect_uri, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(state_hash)
        .bind(org_id)
        .bind(sealed)
        .bind(redirect_uri)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes a sign-in in flight: it is deleted as it is read, so a second callback with the same
    /// `state` finds nothing (on every node sharing the database).
    pub async fn take_sign_in(&self, state_hash: &[u8]) -> StoreResult<Option<PendingSignIn>> {
        let row = sqlx::query(
            "DELETE FROM oidc_sign_ins WHERE state_hash = $1 RETURNING org_id, sealed, redirect_uri, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(&mut *self.write_conn().await?)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(PendingSignIn {
            org_id: row.try_get("org_id")?,
            sealed: row.try_get("sealed")?,
            redirect_uri: row.try_get("redirect_uri")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    /// The user known by this issuer and subject, in whatever organisation.
    pub async fn provider_user(&self, issuer: &str, subject: &str) -> StoreResult<Option<ProviderUser>> {
        let row = sqlx::query(
            "SELECT id, org_id, role, name, revoked_at, oidc_disabled FROM users \
             WHERE oidc_issuer = $1 AND oidc_subject = $2",
        )
        .bind(issuer)
        .bind(subject)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let role: String = row.try_get("role")?;
        let revoked_at: Option<i64> = row.try_get("revoked_at")?;
        let disabled: i64 = row.try_get("oidc_disabled")?;
        Ok(Some(ProviderUser {
            user_id: row.try_get("id")?,
            org_id: row.try_get("org_id")?,
            role: Role::parse(&role).ok_or_else(|| StoreError::Inconsistent("unknown role".into()))?,
            name: row.try_get("name")?,
            revoked: revoked_at.is_some(),
            disabled_by_provider: disabled != 0,
        }))
    }

    /// A person's first sign-in: their users row, with a random token hash nobody holds.
    #[allow(clippy::too_many_arguments)]
    pub async fn add_provider_user(
        &self,
        org_id: i64,
        name: &str,
        role: Role,
        issuer: &str,
        subject: &str,
        unusable_token_hash: &[u8],
        now: Millis,
    ) -> StoreResult<i64> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (org_id, name, role, token_hash, token_hint, created_at, oidc_issuer, oidc_subject) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(org_id)
        .bind(name)
        .bind(role.as_str())
        .bind(unusable_token_hash)
        .bind("signs in with identity provider")
        .bind(now)
        .bind(issuer)
        .bind(subject)
        .fetch_one(&mut *self.write_conn().await?)
        .await?;
        Ok(id)
    }

    /// Brings a provider user's role and name up to date, and enables them if the provider had
    /// disabled them.
    pub async fn refresh_provider_user(&self, user_id: i64, role: Role, name: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE users SET role = $1, name = $2, revoked_at = CASE WHEN oidc_disabled = 1 THEN NULL ELSE revoked_at END, \
             oidc_disabled = 0 WHERE id = $3",
        )
        .bind(role.as_str())
        .bind(name)
        .bind(user_id)
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(())
    }

    /// Disables a provider user whose role claim went, and ends their sessions at once.
    pub async fn disable_provider_user(&self, user_id: i64, now: Millis) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET revoked_at = $1, oidc_disabled = $2 WHERE id = $3 AND revoked_at IS NULL")
            .bind(now)
            .bind(flag(true))
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM web_sessions WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A session begun through a provider, ending at `expires_at`.
    pub async fn create_provider_session(
        &self,
        id_hash: &[u8],
        user_id: i64,
        now: Millis,
        expires_at: Millis,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, user_id, created_at, last_seen_at, expires_at, via_provider) \
             VALUES ($1, $2, $3, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .bind(flag(true))
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(())
    }

    /// The organisation whose provider began this session, if one did.
    pub async fn session_provider_org(&self, id_hash: &[u8]) -> StoreResult<Option<i64>> {
        let org: Option<i64> = sqlx::query_scalar(
            "SELECT u.org_id FROM web_sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = $1 AND s.via_provider = 1",
        )
        .bind(id_hash)
        .fetch_optional(self.reader())
        .await?;
        Ok(org)
    }
}
