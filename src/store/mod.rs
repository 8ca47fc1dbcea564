//! Persistence behind one interface. `Store` speaks SQL through sqlx's `Any` driver so the
//! queries are written once; `sqlite.rs` and `postgres.rs` hold what differs between engines.
//! The store never decides policy: it saves and loads what the domain decided.

pub mod audit;
pub mod audit_views;
pub mod holdings;
pub mod matches;
pub mod organisations;
pub mod outbox;
pub mod postgres;
pub mod requests;
pub mod sessions;
pub mod sqlite;
pub mod users;

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyQueryResult};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Transaction};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn of_url(url: &str) -> Engine {
        if url.starts_with("postgres") { Engine::Postgres } else { Engine::Sqlite }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

/// One error type for the store layer. Callers map it once (HTTP: `http::error`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist (or belongs to another organisation).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken, e.g. an organisation code already in use.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The database cannot be reached or is overloaded: the caller may retry later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database refuses settings that could lose acknowledged writes.
    #[error("unsafe durability setting: {0}")]
    UnsafeDurability(String),
    /// Stored data is not what this version can read (corruption, tampering or a bug).
    #[error("stored data is inconsistent: {0}")]
    Inconsistent(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => StoreError::Unavailable(e),
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict("already exists"),
            sqlx::Error::Database(db) if is_transient(db.code().as_deref()) => StoreError::Unavailable(e),
            _ => StoreError::Database(e),
        }
    }
}

/// Busy/locked (SQLite), or connection and shutdown classes (PostgreSQL 08xxx, 57Pxx, 53xxx),
/// or a database that is not accepting connections or has gone (55000, 3D000: what a new
/// connection meets while an operator has the database offline).
fn is_transient(code: Option<&str>) -> bool {
    match code {
        Some(c) => {
            matches!(c, "5" | "6" | "261" | "517" | "10" | "55000" | "3D000")
                || c.starts_with("08")
                || c.starts_with("57P")
                || c.starts_with("53")
        }
        None => false,
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The database, opened for this process. Cheap to clone.
///
/// SQLite allows one writer at a time, so writes go through a pool of one connection and
/// reads through several; on PostgreSQL both are the same pool.
#[derive(Clone, Debug)]
pub struct Store {
    engine: Engine,
    reader: AnyPool,
    writer: AnyPool,
}

impl Store {
    /// Opens the database; does not migrate (see `migrate`).
    pub async fn connect(url: &str) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let engine = Engine::of_url(url);
        let store = match engine {
            Engine::Sqlite => {
                let url = sqlite::prepare_url(url);
                let writer = sqlite::pool_options(1).connect(&url).await?;
                let reader = sqlite::pool_options(4).connect(&url).await?;
                Store { engine, reader, writer }
            }
            Engine::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(url)
                    .await?;
                Store { engine, reader: pool.clone(), writer: pool }
            }
        };
        store.check_durability().await?;
        Ok(store)
    }

    /// Opens and migrates: what `serve` and every command that writes does first.
    pub async fn open(url: &str) -> StoreResult<Store> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        self.engine.migrator().run(&self.writer).await?;
        Ok(())
    }

    /// Refuses settings that could lose acknowledged writes (SQLite `synchronous` below FULL,
    /// PostgreSQL `fsync` or `synchronous_commit` off).
    pub async fn check_durability(&self) -> StoreResult<()> {
        match self.engine {
            Engine::Sqlite => sqlite::check_durability(&self.writer).await,
            Engine::Postgres => postgres::check_durability(&self.writer).await,
        }
    }

    /// Readiness: the database answers and every migration this binary knows is applied.
    pub async fn ready(&self) -> StoreResult<()> {
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = $1")
            .bind(true)
            .fetch_all(&self.reader)
            .await?;
        let missing = self.engine.migrator().iter().filter(|m| !applied.contains(&m.version)).count();
        if missing > 0 {
            return Err(StoreError::Inconsistent(format!("{missing} migration(s) not applied")));
        }
        Ok(())
    }

    pub(crate) fn reader(&self) -> &AnyPool {
        &self.reader
    }

    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// A write transaction. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`),
    /// so a transaction that reads before it writes never fails to upgrade its lock.
    pub(crate) async fn begin_write(&self) -> StoreResult<Transaction<'static, Any>> {
        Ok(match self.engine {
            Engine::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => self.writer.begin().await?,
        })
    }

    /// Runs raw SQL against the writer: for tests that inject faults (e.g. a failing trigger).
    pub async fn execute_raw(&self, sql: &str) -> StoreResult<AnyQueryResult> {
        Ok(sqlx::raw_sql(sql).execute(&self.writer).await?)
    }

    /// A consistent online copy of an SQLite database (see `sqlite::backup_into`).
    pub async fn sqlite_backup_into(&self, path: &std::path::Path) -> StoreResult<()> {
        match self.engine {
            Engine::Sqlite => sqlite::backup_into(&self.reader, path).await,
            Engine::Postgres => Err(StoreError::Inconsistent("use pg_dump to back up PostgreSQL".into())),
        }
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// `$1, $2, …` from `start` for `count` values, for `IN (…)` lists built at run time.
pub(crate) fn placeholders(start: usize, count: usize) -> String {
    (start..start + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// `rows` parenthesised groups of `cols` parameters for a multi-row statement: numbered from
/// `start` on PostgreSQL, anonymous on SQLite (sqlx resolves a named SQLite parameter with a
/// linear scan, which makes a statement with thousands of them quadratic to bind).
pub(crate) fn value_rows(engine: Engine, start: usize, rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(rows * cols * 6);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..cols {
            if col > 0 {
                sql.push_str(", ");
            }
            match engine {
                Engine::Sqlite => sql.push('?'),
                Engine::Postgres => sql.push_str(&format!("${}", start + row * cols + col)),
            }
        }
        sql.push(')');
    }
    sql
}

/// Splits `len` rows into statement sizes from a fixed set: full chunks of `max_rows` (a power
/// of two), then the rest in powers of two. Each connection caches its prepared statements, so a
/// few sizes get reused; a new size per batch would prepare (and cache) a large new statement each time.
pub(crate) fn statement_sizes(len: usize, max_rows: usize) -> impl Iterator<Item = usize> {
    let max_rows = if max_rows.is_power_of_two() { max_rows } else { max_rows.next_power_of_two() / 2 };
    let full = len / max_rows;
    let rest = len % max_rows;
    std::iter::repeat_n(max_rows, full)
        .chain((0..usize::BITS).rev().map(|bit| 1usize << bit).filter(move |size| rest & size != 0))
}

/// A query under construction, as an `Insert` hands it to a row's binder.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

type BindRow<'a> = Box<dyn for<'q> Fn(AnyQuery<'q>, usize) -> AnyQuery<'q> + Send + Sync + 'a>;

/// Rows for one table, to be written by `insert_all` with others.
pub(crate) struct Insert<'a> {
    /// `table (column, …)`.
    into: &'static str,
    /// What follows the values, e.g. `ON CONFLICT DO NOTHING`.
    suffix: &'static str,
    cols: usize,
    rows: usize,
    bind_row: BindRow<'a>,
}

impl<'a> Insert<'a> {
    /// `bind` adds one row's values in column order.
    pub(crate) fn new<T: Sync>(
        into: &'static str,
        suffix: &'static str,
        cols: usize,
        rows: &'a [T],
        bind: impl for<'q> Fn(AnyQuery<'q>, &T) -> AnyQuery<'q> + Send + Sync + 'a,
    ) -> Self {
        Insert { into, suffix, cols, rows: rows.len(), bind_row: Box::new(move |query, i| bind(query, &rows[i])) }
    }

    fn sql(&self, engine: Engine, rows: usize) -> String {
        format!("INSERT INTO {} VALUES {} {}", self.into, value_rows(engine, 1, rows, self.cols), self.suffix)
    }
}

/// Writes several tables' rows with multi-row statements in as few round trips as the engine
/// allows: on SQLite one query of several statements (its parameters are anonymous and bind in
/// order across them), on PostgreSQL one statement per table. Each round trip to an SQLite
/// connection's worker thread is a pair of thread wake-ups, which under load cost more than
/// the statements themselves.
pub(crate) async fn insert_all(
    conn: &mut sqlx::AnyConnection,
    engine: Engine,
    inserts: &[Insert<'_>],
) -> StoreResult<()> {
    let statements: Vec<_> = inserts
        .iter()
        .flat_map(|insert| {
            let per_statement = MAX_PARAMS / insert.cols;
            (0..insert.rows)
                .step_by(per_statement)
                .map(move |start| (insert, start..insert.rows.min(start + per_statement)))
        })
        .collect();
    match engine {
        Engine::Sqlite if !statements.is_empty() => {
            let sql: Vec<String> = statements.iter().map(|(insert, rows)| insert.sql(engine, rows.len())).collect();
            let sql = sql.join(";\n");
            // Batch shapes rarely repeat: preparing this one is cheaper than caching them all.
            let query = statements.iter().fold(sqlx::query(&sql).persistent(false), bind_statement);
            query.execute(&mut *conn).await?;
        }
        Engine::Sqlite => {}
        Engine::Postgres => {
            for statement in &statements {
                let sql = statement.0.sql(engine, statement.1.len());
                bind_statement(sqlx::query(&sql), statement).execute(&mut *conn).await?;
            }
        }
    }
    Ok(())
}

fn bind_statement<'q>(query: AnyQuery<'q>, (insert, rows): &(&Insert, std::ops::Range<usize>)) -> AnyQuery<'q> {
    rows.clone().fold(query, &insert.bind_row)
}

/// Most parameters one statement binds: under SQLite's limit (32,766) and PostgreSQL's (65,535).
pub(crate) const MAX_PARAMS: usize = 30_000;

/// A boolean stored as an integer, the one boolean type both engines read the same way.
pub(crate) fn flag(value: bool) -> i64 {
    i64::from(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_split_into_full_chunks_then_powers_of_two() {
        let sizes: Vec<usize> = statement_sizes(5000, 1875).collect();
        assert_eq!(sizes, vec![1024, 1024, 1024, 1024, 512, 256, 128, 8]);
        assert_eq!(sizes.iter().sum::<usize>(), 5000);
        assert_eq!(statement_sizes(0, 64).count(), 0);
        assert_eq!(statement_sizes(3, 64).collect::<Vec<_>>(), vec![2, 1]);
    }

    #[test]
    fn value_rows_are_numbered_on_postgres_and_anonymous_on_sqlite() {
        assert_eq!(value_rows(Engine::Postgres, 3, 2, 2), "($3, $4), ($5, $6)");
        assert_eq!(value_rows(Engine::Sqlite, 3, 2, 2), "(?, ?), (?, ?)");
    }
}
