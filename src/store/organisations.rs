//! The directory of participating organisations.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, StoreResult, flag};
use crate::clock::Millis;
use crate::domain::area::Participant;
use crate::domain::organisation::{NewOrganisation, OrgKind, Organisation, OrganisationChanges};

pub(super) const COLUMNS: &str = "id, code, name, kind, duty_phone, out_of_hours_phone, secure_email, active";

pub(super) fn from_row(row: &AnyRow) -> StoreResult<Organisation> {
    let kind: String = row.try_get("kind")?;
    Ok(Organisation {
        id: row.try_get("id")?,
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        kind: OrgKind::parse(&kind).ok_or_else(|| StoreError::Inconsistent("unknown organisation kind".into()))?,
        duty_phone: row.try_get("duty_phone")?,
        out_of_hours_phone: row.try_get("out_of_hours_phone")?,
        secure_email: row.try_get("secure_email")?,
        active: row.try_get::<i64, _>("active")? != 0,
    })
}

fn search_text(code: &str, name: &str) -> String {
    format!("{} {}", code.to_lowercase(), name.to_lowercase())
}

impl Store {
    pub async fn add_organisation(&self, org: &NewOrganisation, now: Millis) -> StoreResult<Organisation> {
        let row = sqlx::query(&format!(
            "INSERT INTO organisations (code, name, kind, duty_phone, out_of_hours_phone, secure_email, \
             active, search_text, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {COLUMNS}"
        ))
        .bind(org.code.as_str())
        .bind(&org.name)
        .bind(org.kind.as_str())
        .bind(&org.duty_phone)
        .bind(&org.out_of_hours_phone)
        .bind(&org.secure_email)
        .bind(flag(org.active))
        .bind(search_text(org.code.as_str(), &org.name))
        .bind(now)
        .fetch_one(&mut *self.write_conn().await?)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict("an organisation with this code already exists"),
            other => other,
        })?;
        from_row(&row)
    }

    pub async fn update_organisation(
        &self,
        code: &str,
        changes: &OrganisationChanges,
        now: Millis,
    ) -> StoreResult<Organisation> {
        let mut tx = self.begin_write().await?;
        let current = sqlx::query(&format!("SELECT {COLUMNS} FROM organisations WHERE code = $1"))
            .bind(code)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut org = from_row(&current)?;
        if let Some(name) = &changes.name {
            org.name = name.clone();
        }
        if let Some(kind) = changes.kind {
            org.kind = kind;
        }
        if let Some(phone) = &changes.duty_phone {
            org.duty_phone = phone.clone();
        }
        if let Some(phone) = &changes.out_of_hours_phone {
            org.out_of_hours_phone = phone.clone();
        }
        if let Some(email) = &changes.secure_email {
            org.secure_email = email.clone();
        }
        if let Some(active) = changes.active {
            org.active = active;
        }
        sqlx::query(
            "UPDATE organisations SET name = $1, kind = $2, duty_phone = $3, out_of_hours_phone = $4, \
             secure_email = $5, active = $6, search_text = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(&org.name)
        .bind(org.kind.as_str())
        .bind(&org.duty_phone)
        .bind(&org.out_of_hours_phone)
        .bind(&org.secure_email)
        .bind(flag(org.active))
        .bind(search_text(&org.code, &org.name))
        .bind(now)
        .bind(org.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(org)
    }

    pub async fn organisation_by_code(&self, code: &str) -> StoreResult<Organisation> {
        let code = code.trim().to_ascii_uppercase();
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM organisations WHERE code = $1"))
            .bind(code)
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound)?;
        from_row(&row)
    }

    pub async fn organisation_by_id(&self, id: i64) -> StoreResult<Organisation> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM organisations WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound)?;
        from_row(&row)
    }

    pub async fn organisations_by_id(&self, ids: &[i64]) -> StoreResult<Vec<Organisation>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {COLUMNS} FROM organisations WHERE id IN ({})", super::placeholders(1, ids.len()));
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        query.fetch_all(self.reader()).await?.iter().map(from_row).collect()
    }

    /// Sets the areas an organisation covers (`domain::area::parse_areas`; empty: everywhere).
    pub async fn set_organisation_areas(&self, code: &str, areas: &[String], now: Millis) -> StoreResult<()> {
        let done = sqlx::query("UPDATE organisations SET areas = $1, updated_at = $2 WHERE code = $3")
            .bind(areas.join(" "))
            .bind(now)
            .bind(code)
            .execute(&mut *self.write_conn().await?)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Records that an organisation has just sent its whole caseload.
    pub async fn mark_synced(&self, org_id: i64, now: Millis) -> StoreResult<()> {
        sqlx::query("UPDATE organisations SET last_sync_at = $1 WHERE id = $2")
            .bind(now)
            .bind(org_id)
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }

    /// When an organisation last sent its whole caseload.
    pub async fn last_sync_of(&self, org_id: i64) -> StoreResult<Option<Millis>> {
        Ok(sqlx::query_scalar("SELECT last_sync_at FROM organisations WHERE id = $1")
            .bind(org_id)
            .fetch_optional(self.reader())
            .await?
            .flatten())
    }

    /// Every active organisation's kind, areas, record count and last sync: what the area
    /// summary of a lookup answer counts.
    pub async fn participants(&self) -> StoreResult<Vec<Participant>> {
        let rows = sqlx::query(
            "SELECT o.kind, o.areas, o.last_sync_at, COALESCE(c.holdings, 0) AS holdings \
             FROM organisations o LEFT JOIN holding_counts c ON c.org_id = o.id WHERE o.active = 1",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                let areas: String = row.try_get("areas")?;
                Ok(Participant {
                    kind: OrgKind::parse(&kind)
                        .ok_or_else(|| StoreError::Inconsistent("unknown organisation kind".into()))?,
                    areas: areas.split_whitespace().map(str::to_owned).collect(),
                    holdings: row.try_get("holdings")?,
                    last_sync: row.try_get("last_sync_at")?,
                })
            })
            .collect()
    }

    pub async fn count_active_organisations(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM organisations WHERE active = 1").fetch_one(self.reader()).await?)
    }

    /// Directory search by name or code, case-insensitive: every word of the query must appear
    /// in the code or name, in any order ("riverside trust" finds "Riverside Community NHS
    /// Trust"). Inactive organisations are listed only when asked for (operators), so workers
    /// are not sent to a closed line.
    pub async fn search_organisations(
        &self,
        query: &str,
        include_inactive: bool,
        limit: i64,
    ) -> StoreResult<Vec<Organisation>> {
        let lowered = query.to_lowercase();
        // At most 8 words: a longer query is no more precise, only a longer statement.
        let words: Vec<&str> = lowered.split_whitespace().take(8).collect();
        let mut conditions: Vec<String> =
            (1..=words.len()).map(|i| format!("search_text LIKE ${i} ESCAPE '\\'")).collect();
        let active = words.len() + 1;
        conditions.push(format!("(active = 1 OR ${active} = 1)"));
        let sql = format!(
            "SELECT {COLUMNS} FROM organisations WHERE {} ORDER BY name, code LIMIT ${}",
            conditions.join(" AND "),
            active + 1
        );
        let mut q = sqlx::query(&sql);
        for word in &words {
            q = q.bind(format!("%{}%", escape_like(word)));
        }
        let rows = q.bind(flag(include_inactive)).bind(limit).fetch_all(self.reader()).await?;
        rows.iter().map(from_row).collect()
    }
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}
