//! SQLite, the embedded default: two files, WAL, and `synchronous=FULL`, so every committed
//! transaction is on disk before it is acknowledged. A power cut loses nothing acknowledged.
//!
//! The audit trail lives in a file of its own beside the database (`locator.db` and
//! `locator-audit.db`): every lookup appends to the trail, and any write to a file makes every
//! reader of that file drop its page cache, so in one file each lookup emptied the caches the
//! next lookups search; in its own file the trail also has its own write lock, which a sync's
//! long transactions on the holdings never hold. Readers attach the audit file as `audit`, so
//! queries that join the trail to the holdings read both. The main file records the identity of
//! its trail, and a missing or swapped audit file is refused at start-up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection, Executor, Row};

use super::{StoreError, StoreResult};

/// The database file and the audit trail's file, as URLs for sqlx and as paths.
#[derive(Debug, Clone)]
pub struct Files {
    pub url: String,
    pub audit_url: String,
    pub main: PathBuf,
    pub audit: PathBuf,
}

impl Files {
    /// `sqlite://DIR/locator.db?…` gives `DIR/locator-audit.db` for the trail (the suffix goes
    /// before the extension, or at the end of a name without one). A missing file is created.
    pub fn of_url(url: &str) -> StoreResult<Files> {
        let url = prepare_url(url);
        let (scheme, rest) = match url.split_once("//") {
            Some(("sqlite:", rest)) => ("sqlite://", rest),
            _ => ("sqlite:", url.strip_prefix("sqlite:").unwrap_or(&url)),
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() || path.contains(":memory:") {
            return Err(StoreError::Inconsistent(
                "the SQLite database must be a file (an in-memory one is not kept)".into(),
            ));
        }
        let name_starts = path.rfind('/').map_or(0, |slash| slash + 1);
        let audit_path = match path[name_starts..].rfind('.') {
            Some(dot) if dot > 0 => format!("{}-audit{}", &path[..name_starts + dot], &path[name_starts + dot..]),
            _ => format!("{path}-audit"),
        };
        let audit_url = format!("{scheme}{audit_path}?{query}");
        Ok(Files { main: file_of(&url)?, audit: file_of(&audit_url)?, audit_url, url })
    }
}

/// The file an SQLite URL names, decoded as sqlx decodes it.
fn file_of(url: &str) -> StoreResult<PathBuf> {
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).map_err(StoreError::Database)?;
    Ok(options.get_filename().to_path_buf())
}

fn path_text(path: &Path) -> StoreResult<&str> {
    path.to_str().ok_or_else(|| StoreError::Inconsistent("the SQLite file's path is not UTF-8".into()))
}

/// Adds `mode=rwc` so a missing database file is created.
fn prepare_url(url: &str) -> String {
    if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// What a pool's connections are for.
pub enum Pool {
    /// The main file's one writer.
    Writer,
    /// The audit file's one writer.
    AuditWriter,
    /// Readers of the main file, with the audit file (this path) attached as `audit`.
    Readers(PathBuf),
}

/// How long a write waits for the main file's one writer before it fails.
pub const WRITER_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);

/// Connections with the settings below.
pub fn pool_options(max_connections: u32, pool: Pool) -> AnyPoolOptions {
    // A sync holds the main file's one writer for up to 10 s a transaction by design (service::
    // sync), so waiting seconds for it is normal there: sqlx's "slow acquire" warning is kept
    // for the audit writer and the readers, where it means something is wrong.
    let slow_acquire = if matches!(pool, Pool::Writer) { log::LevelFilter::Debug } else { log::LevelFilter::Warn };
    // And so a wait for it may last a sync transaction's commit (its keys inserted at the end:
    // 7-12 s at a million holdings), not only the 10 s others get: a write that gave up after 10 s
    // failed the fourth of four 250,000-holding imports (docs/performance.md).
    let acquire_timeout = if matches!(pool, Pool::Writer) { WRITER_ACQUIRE_TIMEOUT } else { Duration::from_secs(10) };
    // WAL checkpoints: every 400 MB for the main file (a sync rewrites the same pages batch after
    // batch), SQLite's 4 MB for the audit file (every lookup waits for its commit, and a large
    // checkpoint inside that commit stalls them). The measurements: docs/performance.md,
    // "Why the SQLite settings are what they are".
    let (checkpoint_pages, attach_audit) = match pool {
        Pool::Writer => (100_000, None),
        Pool::AuditWriter => (1_000, None),
        Pool::Readers(audit) => (100_000, Some(audit)),
    };
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_slow_level(slow_acquire)
        .min_connections(1)
        .acquire_timeout(acquire_timeout)
        // A connection to a local file cannot go stale, and the test is a round trip to the
        // connection's thread on every query (sqlx also pings once more on every release):
        // without it a lookup makes 15-17 thread switches instead of 23.
        .test_before_acquire(false)
        .after_release(|conn, _| Box::pin(super::settled(conn)))
        .after_connect(move |conn, _meta| {
            let attach_audit = attach_audit.clone();
            Box::pin(async move {
                // WAL lets readers run beside the writer; FULL syncs the WAL on every commit
                // (group commit in the audit writer keeps that cheap); the busy timeout makes a
                // second process (a CLI command beside `serve`) wait instead of failing. Pages are
                // read, not memory-mapped (every write drops the readers' cache, and SQLite then
                // unmaps the whole mapping). A checkpoint that empties the WAL truncates it back
                // to 64 MB. Why, with figures: docs/performance.md.
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
                     PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536; \
                     PRAGMA mmap_size = 0; PRAGMA journal_size_limit = 67108864;",
                )
                .await?;
                sqlx::query(&format!("PRAGMA wal_autocheckpoint = {checkpoint_pages}")).execute(&mut *conn).await?;
                if let Some(audit) = &attach_audit {
                    let path =
                        audit.to_str().ok_or_else(|| sqlx::Error::Configuration("audit path is not UTF-8".into()))?;
                    sqlx::query("ATTACH DATABASE $1 AS audit").bind(path).execute(&mut *conn).await?;
                }
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

/// The audit trail's tables with their columns, in the order the copies below write them.
const AUDIT_TABLES: [(&str, &str); 6] = [
    ("audit_events", "seq, at, type, actor_user_id, actor_org_id, purpose, lookup_id, body, leaf_hash"),
    ("audit_event_orgs", "org_id, seq"),
    ("audit_head", "id, size, frontier, checkpoint"),
    ("audit_checkpoints", "tree_size, note, at"),
    (
        "lookup_matches",
        "match_id, lookup_id, seq, asker_user_id, asker_org_id, holding_id, holder_org_id, tier, purpose, at, \
         shielded, basis",
    ),
    ("lookup_pseudonyms", "pseudonym, seq"),
];

/// Trail tables a main file from before them lacks (`audit_free_text` came with leaf format
/// v2): moved, copied and dropped like the others when present.
const LATER_AUDIT_TABLES: [(&str, &str); 1] = [("audit_free_text", "seq, text, erased_at")];

/// Whether `schema` (an attached database, or `main`) holds `table`.
async fn has_table(conn: &mut sqlx::AnyConnection, schema: &str, table: &str) -> StoreResult<bool> {
    let sql = format!("SELECT COUNT(*) FROM {schema}.sqlite_master WHERE type = 'table' AND name = $1");
    Ok(sqlx::query_scalar::<_, i64>(&sql).bind(table).fetch_one(conn).await? > 0)
}

/// Copies one trail table's rows from the attached schema `from` into `main`, column by column
/// (a table from before the split has its later columns in another order).
fn copy_rows(table: &str, columns: &str, from: &str) -> String {
    format!("INSERT INTO main.{table} ({columns}) SELECT {columns} FROM {from}.{table}")
}

/// Makes sure the audit file is this database's trail, first moving the trail out of a
/// database from before the split. The move survives a crash at any point: the copy into the
/// audit file is one transaction, then the old tables are dropped (and the trail's identity
/// recorded) in one transaction of the main file; a start after a crash between the two finds
/// the same trail on both sides and only drops. Anything else is refused, never merged: the
/// trail is tamper-evident only as one unbroken log.
pub(super) async fn settle_audit_file(main: &AnyPool, audit: &AnyPool, files: &Files) -> StoreResult<()> {
    let identity: String =
        sqlx::query_scalar("SELECT identity FROM audit_identity WHERE id = 1").fetch_one(audit).await?;
    let old_layout: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_events'")
            .fetch_one(main)
            .await?;
    if old_layout > 0 {
        copy_trail_from_main(audit, files).await?;
        let mut tx = main.begin_with("BEGIN IMMEDIATE").await?;
        for (table, _) in AUDIT_TABLES {
            sqlx::query(&format!("DROP TABLE {table}")).execute(&mut *tx).await?;
        }
        for (table, _) in LATER_AUDIT_TABLES {
            sqlx::query(&format!("DROP TABLE IF EXISTS {table}")).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO audit_link (id, identity) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET identity = excluded.identity",
        )
        .bind(&identity)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(audit_file = %files.audit.display(), "moved the audit trail into its own file");
    }
    let link: Option<String> =
        sqlx::query_scalar("SELECT identity FROM audit_link WHERE id = 1").fetch_optional(main).await?;
    if link.as_deref() != Some(identity.as_str()) {
        return Err(StoreError::Inconsistent(format!(
            "{} is not the audit trail of {} (it is missing, new or from another database); restore \
             both files from one backup (docs/operator-guide.md, Backups)",
            files.audit.display(),
            files.main.display()
        )));
    }
    Ok(())
}

/// Copies the trail's tables from the main file (attached as `old`) into an audit file that is
/// still empty, or finds them copied already.
async fn copy_trail_from_main(audit: &AnyPool, files: &Files) -> StoreResult<()> {
    let mut conn = audit.acquire().await?;
    sqlx::query("ATTACH DATABASE $1 AS old").bind(path_text(&files.main)?).execute(&mut *conn).await?;
    let copied = async {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let (here, there) = (TrailShape::of(&mut tx, "main").await?, TrailShape::of(&mut tx, "old").await?);
        if here.is_empty() {
            sqlx::query("DELETE FROM main.audit_head").execute(&mut *tx).await?;
            for (table, columns) in AUDIT_TABLES {
                sqlx::query(&copy_rows(table, columns, "old")).execute(&mut *tx).await?;
            }
            for (table, columns) in LATER_AUDIT_TABLES {
                if has_table(&mut tx, "old", table).await? {
                    sqlx::query(&copy_rows(table, columns, "old")).execute(&mut *tx).await?;
                }
            }
        } else if here != there {
            return Err(StoreError::Inconsistent(format!(
                "{} holds an audit trail of {} entries and {} another of {}; after restoring a backup, \
                 remove the old audit file (and its -wal and -shm files) so the backup's trail moves into a new one",
                files.main.display(),
                there.head.0,
                files.audit.display(),
                here.head.0
            )));
        }
        tx.commit().await?;
        Ok(())
    }
    .await;
    let detached = sqlx::query("DETACH DATABASE old").execute(&mut *conn).await;
    copied?;
    detached?;
    Ok(())
}

/// Enough of a trail to tell an empty one, and one copy from another: each table's row count
/// and the head (its size, Merkle frontier and signed checkpoint).
#[derive(Debug, PartialEq)]
struct TrailShape {
    rows: Vec<i64>,
    head: (i64, Vec<u8>, Option<String>),
}

impl TrailShape {
    async fn of(conn: &mut sqlx::AnyConnection, schema: &str) -> StoreResult<TrailShape> {
        let mut rows = Vec::new();
        for (table, _) in AUDIT_TABLES {
            let count = format!("SELECT COUNT(*) FROM {schema}.{table}");
            rows.push(sqlx::query_scalar(&count).fetch_one(&mut *conn).await?);
        }
        let head = sqlx::query(&format!("SELECT size, frontier, checkpoint FROM {schema}.audit_head WHERE id = 1"))
            .fetch_one(&mut *conn)
            .await?;
        Ok(TrailShape { rows, head: (head.try_get(0)?, head.try_get(1)?, head.try_get(2)?) })
    }

    /// Only the head row, at size zero: what a new audit file holds.
    fn is_empty(&self) -> bool {
        self.head.0 == 0
            && self.rows.iter().zip(AUDIT_TABLES).all(|(n, (table, _))| *n == i64::from(table == "audit_head"))
    }
}

/// Writes a transactionally consistent copy of the database and its audit trail to `path` (an
/// empty or missing file) while other connections keep reading and writing, then syncs it to
/// disk. The copy is one file in the layout from before the split, so a restore is one file
/// too (the start after it moves the trail out again). The main file is copied first: whatever
/// it refers to in the trail (the match ids of record requests) is in the trail's later copy.
pub async fn backup_into(reader: &AnyPool, files: &Files, path: &Path) -> StoreResult<()> {
    let target = path_text(path)?;
    sqlx::query("VACUUM main INTO $1").bind(target).execute(reader).await?;
    let mut copy = sqlx::AnyConnection::connect(&format!("sqlite://{target}?mode=rw")).await?;
    sqlx::query("ATTACH DATABASE $1 AS live").bind(path_text(&files.audit)?).execute(&mut copy).await?;
    let copied = async {
        // Deferred: the copy reads one snapshot of the trail without taking its write lock.
        let mut tx = copy.begin().await?;
        let schema: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT type, tbl_name, sql FROM live.sqlite_master WHERE sql IS NOT NULL ORDER BY type = 'index'",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (kind, table, sql) in &schema {
            let Some((_, columns)) = AUDIT_TABLES.iter().chain(&LATER_AUDIT_TABLES).find(|(t, _)| t == table) else {
                continue;
            };
            sqlx::query(sql).execute(&mut *tx).await?;
            if kind == "table" {
                sqlx::query(&copy_rows(table, columns, "live")).execute(&mut *tx).await?;
            }
        }
        // The layout from before the split has no pending pseudonyms: the copy indexes them.
        sqlx::query(
            "WITH RECURSIVE split (seq, rest) AS (SELECT seq, pseudonyms FROM live.lookup_pseudonyms_pending \
             UNION ALL SELECT seq, substr(rest, 17) FROM split WHERE length(rest) > 16) \
             INSERT OR IGNORE INTO main.lookup_pseudonyms (pseudonym, seq) SELECT substr(rest, 1, 16), seq FROM split",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, StoreError>(())
    }
    .await;
    let detached = sqlx::query("DETACH DATABASE live").execute(&mut copy).await;
    copy.close().await?;
    copied?;
    detached?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_file_sits_beside_the_database_with_its_name_marked() {
        let files = Files::of_url("sqlite:///var/lib/locator.d/locator.db").unwrap();
        assert_eq!(files.audit, Path::new("/var/lib/locator.d/locator-audit.db"));
        assert_eq!(files.audit_url, "sqlite:///var/lib/locator.d/locator-audit.db?mode=rwc");
        assert_eq!(files.main, Path::new("/var/lib/locator.d/locator.db"));

        let files = Files::of_url("sqlite:data.d/index?mode=rw").unwrap();
        assert_eq!(
            (files.audit_url.as_str(), files.audit.as_path()),
            ("sqlite:data.d/index-audit?mode=rw", Path::new("data.d/index-audit"))
        );
        assert_eq!(Files::of_url("sqlite://.hidden").unwrap().audit, Path::new(".hidden-audit"));
        assert!(Files::of_url("sqlite::memory:").is_err());
    }
}
