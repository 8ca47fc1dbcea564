//! Holdings added and removed per organisation per day (the daily churn allowance), and who the
//! national operators are (their organisations' IG officers are told of flagged syncs).

use super::{Store, StoreResult};
use crate::domain::role::Role;

impl Store {
    /// Adds to an organisation's churn on `day` (days since the epoch, UTC).
    pub async fn add_churn(&self, org_id: i64, day: i64, added: i64, removed: i64) -> StoreResult<()> {
        if added == 0 && removed == 0 {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO holding_churn (org_id, day, added, removed) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org_id, day) DO UPDATE SET added = holding_churn.added + excluded.added, \
             removed = holding_churn.removed + excluded.removed",
        )
        .bind(org_id)
        .bind(day)
        .bind(added)
        .bind(removed)
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(())
    }

    /// Holdings the organisation added and removed on `day`.
    pub async fn churn_on(&self, org_id: i64, day: i64) -> StoreResult<(i64, i64)> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT added, removed FROM holding_churn WHERE org_id = $1 AND day = $2")
                .bind(org_id)
                .bind(day)
                .fetch_optional(self.reader())
                .await?;
        Ok(row.unwrap_or((0, 0)))
    }

    /// The organisation's holdings, from the kept count.
    pub async fn holdings_of_org(&self, org_id: i64) -> StoreResult<i64> {
        let n: Option<i64> = sqlx::query_scalar("SELECT holdings FROM holding_counts WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(self.reader())
            .await?;
        Ok(n.unwrap_or(0))
    }

    /// Organisations with a live operator: the national operator's.
    pub async fn operator_org_ids(&self) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT org_id FROM users WHERE role = $1 AND revoked_at IS NULL ORDER BY org_id",
        )
        .bind(Role::Operator.as_str())
        .fetch_all(self.reader())
        .await?)
    }
}
