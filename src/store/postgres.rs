//! PostgreSQL, the production engine: several stateless index nodes share one database.
//! Refuses servers configured to acknowledge commits that are not yet durable.

use sqlx::AnyPool;

use super::{StoreError, StoreResult};

pub async fn check_durability(pool: &AnyPool) -> StoreResult<()> {
    for (setting, unsafe_value) in [("fsync", "off"), ("synchronous_commit", "off")] {
        let value: String = sqlx::query_scalar(&format!("SHOW {setting}")).fetch_one(pool).await?;
        if value.eq_ignore_ascii_case(unsafe_value) {
            return Err(StoreError::UnsafeDurability(format!(
                "PostgreSQL {setting}={value} could lose acknowledged writes"
            )));
        }
    }
    Ok(())
}

/// A URL whose connections use their own schema: how the test suite gives every test a fresh
/// database on one server without the cost of CREATE DATABASE.
pub fn url_with_schema(base_url: &str, schema: &str) -> String {
    let separator = if base_url.contains('?') { '&' } else { '?' };
    format!("{base_url}{separator}options=-c%20search_path%3D{schema}")
}

/// Creates a schema for one test run (see `url_with_schema`).
pub async fn create_schema(base_url: &str, schema: &str) -> StoreResult<()> {
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(base_url).await?;
    sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).execute(&pool).await?;
    pool.close().await;
    Ok(())
}

/// Removes a test run's schema. A connection of that run may still hold locks in it, idle inside
/// a transaction that will never finish (its runtime is the one now dropping the test), so
/// waiting would hang: after a short lock timeout, the backends holding locks on the schema's
/// tables are ended, and the drop is tried again.
pub async fn drop_schema(base_url: &str, schema: &str) -> StoreResult<()> {
    let pool = AnyPool::connect(base_url).await?;
    let drop = format!("SET lock_timeout = '2s'; DROP SCHEMA IF EXISTS {schema} CASCADE");
    if sqlx::raw_sql(&drop).execute(&pool).await.is_err() {
        let end_holders = format!(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
             JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = '{schema}' AND l.pid <> pg_backend_pid()"
        );
        sqlx::raw_sql(&end_holders).execute(&pool).await?;
        sqlx::raw_sql(&drop).execute(&pool).await?;
    }
    pool.close().await;
    Ok(())
}
