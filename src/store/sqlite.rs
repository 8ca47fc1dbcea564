//! SQLite, the embedded default: one file, WAL, and `synchronous=FULL`, so every committed
//! transaction is on disk before it is acknowledged. A power cut loses nothing acknowledged.

use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

use super::{StoreError, StoreResult};

/// Adds `mode=rwc` so a missing database file is created.
pub fn prepare_url(url: &str) -> String {
    if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

pub fn pool_options(max_connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // WAL lets readers run beside the writer; FULL syncs the WAL on every commit
                // (group commit in the audit writer keeps that cheap); the busy timeout makes a
                // second process (a CLI command beside `serve`) wait instead of failing. Every
                // write (each lookup's audit event) makes readers drop their page cache; pages are
                // not memory-mapped, since SQLite then also unmaps the whole mapping each time, and
                // the unmap and the page faults after it cost more than re-reading (lookups at 16
                // clients: 1,600/s mapped, 1,700/s not). The WAL is checkpointed every 400 MB
                // rather than 4 MB: a sync rewrites the same random B-tree pages batch after
                // batch, and each is then copied into the database once per checkpoint, not once
                // per batch (a million holdings: 126 s -> 87 s). A checkpoint that empties the WAL
                // truncates it back to 64 MB.
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
                     PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536; \
                     PRAGMA mmap_size = 0; PRAGMA wal_autocheckpoint = 100000; \
                     PRAGMA journal_size_limit = 67108864;",
                )
                .await?;
                Ok(())
            })
        })
}

pub async fn check_durability(pool: &AnyPool) -> StoreResult<()> {
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(pool).await?;
    // 0 = OFF, 1 = NORMAL (can lose the last commits on power loss in WAL mode), 2 = FULL, 3 = EXTRA.
    if synchronous < 2 {
        return Err(StoreError::UnsafeDurability(format!(
            "SQLite synchronous={synchronous} could lose acknowledged writes; FULL (2) is required"
        )));
    }
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(pool).await?;
    if !journal.eq_ignore_ascii_case("wal") {
        return Err(StoreError::UnsafeDurability(format!("SQLite journal_mode={journal}; WAL is required")));
    }
    Ok(())
}

/// Writes a transactionally consistent copy of the database to `path` (an empty or missing
/// file) while other connections keep reading and writing, then syncs it to disk.
pub async fn backup_into(pool: &AnyPool, path: &Path) -> StoreResult<()> {
    let target = path.to_str().ok_or_else(|| StoreError::Inconsistent("backup path is not UTF-8".into()))?;
    sqlx::query("VACUUM INTO $1").bind(target).execute(pool).await?;
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))?;
    Ok(())
}

/// What `check_copy` found in a backup file.
#[derive(Debug, Clone, Copy)]
pub struct CheckedCopy {
    pub bytes: u64,
    pub audit_entries: i64,
}

/// Opens a backup read-only and checks it: SQLite's integrity check and a readable audit trail.
pub async fn check_copy(path: &Path) -> StoreResult<CheckedCopy> {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=ro", path.display());
    let pool = AnyPoolOptions::new().max_connections(1).connect(&url).await?;
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&pool).await?;
    let audit_entries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events").fetch_one(&pool).await?;
    pool.close().await;
    if verdict != "ok" {
        return Err(StoreError::Inconsistent(format!("the backup fails SQLite's integrity check: {verdict}")));
    }
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(CheckedCopy { bytes, audit_entries })
}
