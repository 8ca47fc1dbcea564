//! Persistence behind one interface. `Store` speaks SQL through sqlx's `Any` driver so the
//! queries are written once; `sqlite.rs` and `postgres.rs` hold what differs between engines.
//! The store never decides policy: it saves and loads what the domain decided.

pub mod audit;
pub mod audit_views;
pub mod churn;
pub mod clients;
pub mod holdings;
pub mod identity_providers;
pub mod key_changes;
pub mod matches;
pub mod organisations;
pub mod outbox;
pub mod page_state;
pub mod postgres;
pub mod requests;
pub mod sessions;
pub mod sqlite;
pub mod sync_leases;
pub mod users;

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyQueryResult};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Transaction};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
/// SQLite keeps the audit trail in a file of its own (see `sqlite::Files`).
static SQLITE_AUDIT_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite-audit");
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

/// SQLite (numeric codes, primary code in the low byte): busy, locked, an I/O error, the disk
/// full, a file that cannot be opened. PostgreSQL (five-character SQLSTATEs): connection and
/// shutdown classes (08xxx, 57Pxx), insufficient resources (53xxx, disk full among them), or a
/// database that is not accepting connections or has gone (55000, 3D000: what a new connection
/// meets while an operator has the database offline). Each clears without a change to the
/// request, so the client is told to retry (503), not that the service is broken (500).
fn is_transient(code: Option<&str>) -> bool {
    const SQLITE_BUSY: u32 = 5;
    const SQLITE_LOCKED: u32 = 6;
    const SQLITE_IOERR: u32 = 10;
    const SQLITE_FULL: u32 = 13;
    const SQLITE_CANTOPEN: u32 = 14;
    match code {
        Some(c) if c.len() < 5 && c.bytes().all(|b| b.is_ascii_digit()) => {
            let primary = c.parse::<u32>().map_or(0, |code| code & 0xff);
            matches!(primary, SQLITE_BUSY | SQLITE_LOCKED | SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN)
        }
        Some(c) => matches!(c, "55000" | "3D000") || c.starts_with("08") || c.starts_with("57P") || c.starts_with("53"),
        None => false,
    }
}

/// Whether a connection coming back to its pool may be handed out again. One left inside a
/// transaction is not: after a failed COMMIT (SQLite rolls a transaction back by itself when
/// the disk is full, so sqlx's rollback then fails too) the driver still counts it as open,
/// and every later `BEGIN` on it failed ("begin_with at non-zero transaction depth") long
/// after the disk had room again. Such a connection is closed, and the pool opens a new one.
pub(crate) async fn settled(conn: &mut sqlx::AnyConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if !conn.is_in_transaction() {
        return Ok(true); // the usual case: no round trip
    }
    // A dropped transaction queues its rollback; a ping runs it, then the depth is true.
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!("a database connection was left inside a transaction; closing it");
        return Ok(false);
    }
    Ok(true)
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The database, opened for this process. Cheap to clone.
///
/// SQLite allows one writer at a time per file, so writes go through a pool of one connection
/// and reads through several; the audit trail has a file and a writer of its own, which every
/// reader attaches (`sqlite::Files`). On PostgreSQL all three are the same pool.
#[derive(Clone, Debug)]
pub struct Store {
    engine: Engine,
    reader: AnyPool,
    writer: AnyPool,
    audit_writer: AnyPool,
    /// SQLite: the database file and the audit trail's file.
    files: Option<sqlite::Files>,
    /// Writes in this process waiting for the writer: a sync's long transaction hands over to them.
    waiting_writers: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// How long a statement runs before sqlx logs it, and at what level.
pub const SLOW_STATEMENT: Duration = Duration::from_secs(1);

/// A database URL's options, with sqlx's slow-statement log turned down to DEBUG: a sync's
/// batch insert is slow by design, and sqlx logs the whole statement (tens of thousands of
/// placeholders, a 110 KB line; no values) at WARN for every one. The service times and reports
/// its own slow work (lookups, syncs).
fn connect_options(url: &str) -> StoreResult<AnyConnectOptions> {
    use std::str::FromStr;

    use sqlx::ConnectOptions;
    Ok(AnyConnectOptions::from_str(url)?.log_slow_statements(log::LevelFilter::Debug, SLOW_STATEMENT))
}

impl Store {
    /// Opens the database; does not migrate (see `migrate`).
    pub async fn connect(url: &str) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let engine = Engine::of_url(url);
        let store = match engine {
            Engine::Sqlite => {
                let files = sqlite::Files::of_url(url)?;
                // The audit file first, so it is created (in WAL mode) before a reader attaches it.
                let audit_writer = sqlite::pool_options(1, sqlite::Pool::AuditWriter)
                    .connect_with(connect_options(&files.audit_url)?)
                    .await?;
                let writer =
                    sqlite::pool_options(1, sqlite::Pool::Writer).connect_with(connect_options(&files.url)?).await?;
                let reader = sqlite::pool_options(4, sqlite::Pool::Readers(files.audit.clone()))
                    .connect_with(connect_options(&files.url)?)
                    .await?;
                Store { engine, reader, writer, audit_writer, files: Some(files), waiting_writers: Default::default() }
            }
            Engine::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(5))
                    .after_release(|conn, _| Box::pin(settled(conn)))
                    .connect_with(connect_options(url)?)
                    .await?;
                Store {
                    engine,
                    reader: pool.clone(),
                    writer: pool.clone(),
                    audit_writer: pool,
                    files: None,
                    waiting_writers: Default::default(),
                }
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

    /// Applies this binary's migrations. On SQLite the audit file is migrated too, and a
    /// database from before the split has its audit trail moved into it (`sqlite::settle_audit_file`).
    pub async fn migrate(&self) -> StoreResult<()> {
        self.engine.migrator().run(&self.writer).await?;
        if let Some(files) = &self.files {
            SQLITE_AUDIT_MIGRATIONS.run(&self.audit_writer).await?;
            sqlite::settle_audit_file(&self.writer, &self.audit_writer, files).await?;
        }
        Ok(())
    }

    /// Refuses settings that could lose acknowledged writes (SQLite `synchronous` below FULL,
    /// PostgreSQL `fsync` or `synchronous_commit` off).
    pub async fn check_durability(&self) -> StoreResult<()> {
        match self.engine {
            Engine::Sqlite => {
                sqlite::check_durability(&self.writer).await?;
                sqlite::check_durability(&self.audit_writer).await
            }
            Engine::Postgres => postgres::check_durability(&self.writer).await,
        }
    }

    /// Readiness: the database answers and every migration this binary knows is applied.
    pub async fn ready(&self) -> StoreResult<()> {
        let mut missing = missing_migrations(&self.reader, "_sqlx_migrations", self.engine.migrator()).await?;
        if self.files.is_some() {
            missing += missing_migrations(&self.reader, "audit._sqlx_migrations", &SQLITE_AUDIT_MIGRATIONS).await?;
        }
        if missing > 0 {
            return Err(StoreError::Inconsistent(format!("{missing} migration(s) not applied")));
        }
        Ok(())
    }

    pub(crate) fn reader(&self) -> &AnyPool {
        &self.reader
    }

    /// The writer's connection for one statement outside a transaction. While it waits, a
    /// sync's open transaction knows to commit and hand over (`writers_waiting`).
    pub(crate) async fn write_conn(&self) -> StoreResult<sqlx::pool::PoolConnection<Any>> {
        let _waiting = WaitingWriter::enter(&self.waiting_writers);
        Ok(self.writer.acquire().await?)
    }

    /// A write transaction. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`),
    /// so a transaction that reads before it writes never fails to upgrade its lock.
    pub(crate) async fn begin_write(&self) -> StoreResult<Transaction<'static, Any>> {
        let _waiting = WaitingWriter::enter(&self.waiting_writers);
        self.begin_write_uncounted().await
    }

    /// A write transaction whose wait for the writer is not counted: for the sync's own
    /// transactions, which are the ones the others wait for.
    pub(crate) async fn begin_write_uncounted(&self) -> StoreResult<Transaction<'static, Any>> {
        Ok(match self.engine {
            Engine::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => self.writer.begin().await?,
        })
    }

    /// Whether another write in this process is waiting for the writer (on SQLite, for the
    /// database's one write lock).
    pub fn writers_waiting(&self) -> bool {
        self.waiting_writers.load(std::sync::atomic::Ordering::Relaxed) > 0
    }

    /// The audit trail's write transaction: on SQLite its own file's lock, which no sync holds.
    pub(crate) async fn begin_audit_write(&self) -> StoreResult<Transaction<'static, Any>> {
        Ok(match self.engine {
            Engine::Sqlite => self.audit_writer.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => self.audit_writer.begin().await?,
        })
    }

    /// Commits a write beside the audit trail, which it leaves as it was: how the audit writer,
    /// after an append failed, learns that the trail can be written again (a disk that has room
    /// again), so the node says it is ready again without waiting for a lookup to risk it. On
    /// SQLite it writes a megabyte (then deletes it): a small write fits in the space a failed
    /// commit left in the write-ahead log, and would say "ready" on a disk still full. On
    /// PostgreSQL the head row is rewritten as it is (the server's disk is the server's).
    pub async fn probe_audit_write(&self) -> StoreResult<()> {
        const PROBE_BYTES: i64 = 1024 * 1024;
        let mut tx = self.begin_audit_write().await?;
        match self.engine {
            Engine::Sqlite => {
                sqlx::query("INSERT OR REPLACE INTO audit_write_probe (id, filler) VALUES (1, zeroblob($1))")
                    .bind(PROBE_BYTES)
                    .execute(&mut *tx)
                    .await?;
            }
            Engine::Postgres => {
                sqlx::query("UPDATE audit_head SET size = size WHERE id = 1").execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        if self.engine == Engine::Sqlite {
            sqlx::query("DELETE FROM audit_write_probe").execute(&self.audit_writer).await?;
        }
        Ok(())
    }

    /// Runs raw SQL against the writer: for tests that inject faults (e.g. a failing trigger).
    pub async fn execute_raw(&self, sql: &str) -> StoreResult<AnyQueryResult> {
        Ok(sqlx::raw_sql(sql).execute(&self.writer).await?)
    }

    /// What SQLite plans for `sql` (its parameters unbound), a line a step: for tests that hold a
    /// statement repeated at scale to its index.
    pub async fn sqlite_query_plan(&self, sql: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::raw_sql(&format!("EXPLAIN QUERY PLAN {sql}")).fetch_all(&self.writer).await?;
        rows.iter().map(|row| Ok(sqlx::Row::try_get::<String, _>(row, "detail")?)).collect()
    }

    /// Runs raw SQL against the audit trail's writer (on SQLite, its own file): for tests that
    /// tamper with the trail or make its writes fail.
    pub async fn execute_raw_on_audit(&self, sql: &str) -> StoreResult<AnyQueryResult> {
        Ok(sqlx::raw_sql(sql).execute(&self.audit_writer).await?)
    }

    /// A consistent online copy of an SQLite database (see `sqlite::backup_into`).
    pub async fn sqlite_backup_into(&self, path: &std::path::Path) -> StoreResult<()> {
        match &self.files {
            Some(files) => sqlite::backup_into(&self.reader, files, path).await,
            None => Err(StoreError::Inconsistent("use pg_dump to back up PostgreSQL".into())),
        }
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
        self.audit_writer.close().await;
    }
}

/// Counts a write waiting for the writer from `enter` until dropped (acquired or failed).
struct WaitingWriter<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> WaitingWriter<'a> {
    fn enter(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        WaitingWriter(count)
    }
}

impl Drop for WaitingWriter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How many of `migrator`'s migrations the table of applied ones lacks.
async fn missing_migrations(pool: &AnyPool, table: &str, migrator: &Migrator) -> StoreResult<usize> {
    let applied: Vec<i64> = sqlx::query_scalar(&format!("SELECT version FROM {table} WHERE success = $1"))
        .bind(true)
        .fetch_all(pool)
        .await?;
    Ok(migrator.iter().filter(|m| !applied.contains(&m.version)).count())
}

/// Rows strictly after a page cursor in (time, id) descending order: the keyset condition every
/// newest-first list pages with, so rows sharing a millisecond are neither skipped nor repeated.
/// The leading `<=` gives the planner the time column's index range to scan.
pub(crate) fn older_than_cursor(at_column: &str, id_column: &str, at_param: usize, id_param: usize) -> String {
    format!("({at_column} <= ${at_param} AND ({at_column} < ${at_param} OR {id_column} < ${id_param}))")
}

/// `$1, $2, …` from `start` for `count` values, for `IN (…)` lists built at run time.
pub(crate) fn placeholders(start: usize, count: usize) -> String {
    (start..start + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// `items` in chunks of at most the largest of `sizes` (ascending), each padded by repeating its
/// last item up to the smallest size that holds it, so a statement over them is prepared once a
/// size, whatever the count. Only for statements a repeated item does not change (`IN` lists).
pub(crate) fn padded_chunks<'a, T>(
    items: &'a [T],
    sizes: &'static [usize],
) -> impl Iterator<Item = (usize, impl Iterator<Item = &'a T>)> + 'a {
    let largest = sizes.last().copied().unwrap_or(1);
    items.chunks(largest).map(move |chunk| {
        let size = sizes.iter().copied().find(|s| *s >= chunk.len()).unwrap_or(largest);
        (size, (0..size).map(move |i| &chunk[i.min(chunk.len() - 1)]))
    })
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

/// Rows for one table: the one way the store writes many rows. `insert_all` writes several
/// tables' rows in as few round trips as it can (a group commit's small, varied batches);
/// `insert_repeated` writes one table's large batches in statements of a few fixed sizes,
/// prepared once per connection (a sync's thousands of holdings and keys).
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

    /// The statement for `rows` rows, its parameters numbered from `start` (PostgreSQL).
    fn sql(&self, engine: Engine, start: usize, rows: usize) -> String {
        format!("INSERT INTO {} VALUES {} {}", self.into, value_rows(engine, start, rows, self.cols), self.suffix)
    }
}

/// Writes several tables' rows with multi-row statements in as few round trips as the engine
/// allows: on SQLite one query of several statements (its parameters are anonymous and bind in
/// order across them), on PostgreSQL one statement whose inserts are data-modifying `WITH`
/// clauses, split only where its parameters would pass the protocol's limit. Each round trip
/// (to an SQLite connection's worker thread, or over PostgreSQL's socket) costs more under load
/// than the statements themselves.
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
            let sql: Vec<String> = statements.iter().map(|(insert, rows)| insert.sql(engine, 1, rows.len())).collect();
            let sql = sql.join(";\n");
            // Batch shapes rarely repeat: preparing this one is cheaper than caching them all.
            let query = statements.iter().fold(sqlx::query(&sql).persistent(false), bind_statement);
            query.execute(&mut *conn).await?;
        }
        Engine::Sqlite => {}
        Engine::Postgres => {
            for group in postgres_groups(&statements) {
                let sql = with_clauses(group);
                group.iter().fold(sqlx::query(&sql), bind_statement).execute(&mut *conn).await?;
            }
        }
    }
    Ok(())
}

/// Writes one table's rows in statements of the sizes `statement_sizes` picks, each kept
/// prepared by the connection: a sync repeats the same few shapes thousands of times, where
/// preparing a new shape per batch would cost more than the statement. Returns what the
/// statements' `RETURNING` suffix gives back, in no promised order (nothing without one).
pub(crate) async fn insert_repeated(
    conn: &mut sqlx::AnyConnection,
    engine: Engine,
    insert: &Insert<'_>,
) -> StoreResult<Vec<sqlx::any::AnyRow>> {
    let mut returned = Vec::new();
    let mut start = 0;
    for size in statement_sizes(insert.rows, MAX_PARAMS / insert.cols) {
        let sql = insert.sql(engine, 1, size);
        let query = bind_statement(sqlx::query(&sql), &(insert, start..start + size));
        returned.extend(query.fetch_all(&mut *conn).await?);
        start += size;
    }
    Ok(returned)
}

type Statement<'s, 'a> = (&'s Insert<'a>, std::ops::Range<usize>);

/// Consecutive statements whose parameters fit together in one PostgreSQL statement.
fn postgres_groups<'v, 's, 'a>(statements: &'v [Statement<'s, 'a>]) -> Vec<&'v [Statement<'s, 'a>]> {
    let mut groups = Vec::new();
    let (mut start, mut params) = (0, 0);
    for (i, (insert, rows)) in statements.iter().enumerate() {
        let needed = insert.cols * rows.len();
        if i > start && params + needed > POSTGRES_MAX_PARAMS {
            groups.push(&statements[start..i]);
            (start, params) = (i, 0);
        }
        params += needed;
    }
    if start < statements.len() {
        groups.push(&statements[start..]);
    }
    groups
}

/// `WITH w0 AS (INSERT …), w1 AS (INSERT …) INSERT …`: every clause runs, each numbering its
/// parameters after the previous one's.
fn with_clauses(group: &[Statement<'_, '_>]) -> String {
    let mut next = 1;
    let mut inserts: Vec<String> = group
        .iter()
        .map(|(insert, rows)| {
            let sql = insert.sql(Engine::Postgres, next, rows.len());
            next += insert.cols * rows.len();
            sql
        })
        .collect();
    let last = inserts.pop().unwrap_or_default();
    if inserts.is_empty() {
        return last;
    }
    let clauses: Vec<String> = inserts.iter().enumerate().map(|(i, sql)| format!("w{i} AS ({sql})")).collect();
    format!("WITH {} {last}", clauses.join(", "))
}

fn bind_statement<'q>(query: AnyQuery<'q>, (insert, rows): &Statement) -> AnyQuery<'q> {
    rows.clone().fold(query, &insert.bind_row)
}

/// Most parameters one statement binds: under SQLite's limit (32,766) and PostgreSQL's (65,535).
pub(crate) const MAX_PARAMS: usize = 30_000;
/// PostgreSQL's wire protocol counts a statement's parameters in 16 bits.
const POSTGRES_MAX_PARAMS: usize = 65_535;

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
    fn postgres_writes_several_tables_in_one_statement_until_the_parameter_limit() {
        let (pairs, wide) = (vec![(); 3], vec![(); 20_000]);
        fn bind<'q>(query: AnyQuery<'q>, _: &()) -> AnyQuery<'q> {
            query
        }
        let a = Insert::new("a (x, y)", "", 2, &pairs, bind);
        let b = Insert::new("b (x, y, z)", "ON CONFLICT DO NOTHING", 3, &pairs, bind);
        let statements = [(&a, 0..3), (&b, 1..3)];
        let groups = postgres_groups(&statements);
        assert_eq!(groups.len(), 1);
        assert_eq!(
            with_clauses(groups[0]),
            "WITH w0 AS (INSERT INTO a (x, y) VALUES ($1, $2), ($3, $4), ($5, $6) ) \
             INSERT INTO b (x, y, z) VALUES ($7, $8, $9), ($10, $11, $12) ON CONFLICT DO NOTHING"
        );
        assert_eq!(with_clauses(&statements[..1]), "INSERT INTO a (x, y) VALUES ($1, $2), ($3, $4), ($5, $6) ");

        let c = Insert::new("c (x)", "", 1, &wide, bind);
        let statements = [(&c, 0..20_000), (&c, 0..20_000), (&c, 0..20_000), (&c, 0..20_000), (&a, 0..3)];
        let sizes: Vec<usize> = postgres_groups(&statements).iter().map(|g| g.len()).collect();
        assert_eq!(sizes, vec![3, 2], "60,000 parameters fit in one statement, 80,000 do not");
    }

    #[tokio::test]
    async fn a_write_waiting_behind_a_long_transaction_is_seen_by_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        let long = store.begin_write_uncounted().await.unwrap();
        assert!(!store.writers_waiting(), "the long transaction itself is not counted");
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { store.begin_write().await.map(drop) }
        });
        let mut turns = 0;
        while !store.writers_waiting() {
            turns += 1;
            assert!(turns < 100_000, "the waiting write was never seen");
            tokio::task::yield_now().await;
        }
        long.commit().await.unwrap();
        waiting.await.unwrap().expect("it gets the writer once the transaction ends");
        assert!(!store.writers_waiting());
    }

    #[test]
    fn a_full_disk_or_a_busy_database_is_worth_a_retry_and_a_broken_rule_is_not() {
        // SQLite: full, I/O error (and its extended codes, e.g. IOERR_WRITE), busy snapshot, locked.
        for code in ["13", "10", "778", "517", "6", "14"] {
            assert!(is_transient(Some(code)), "SQLite {code}");
        }
        // SQLite: a constraint (UNIQUE 2067), a generic error; PostgreSQL: a unique violation.
        for code in ["2067", "1", "23505", "42P01"] {
            assert!(!is_transient(Some(code)), "{code}");
        }
        // PostgreSQL: disk full, too many connections, admin shutdown, connection failure.
        for code in ["53100", "53300", "57P01", "08006"] {
            assert!(is_transient(Some(code)), "PostgreSQL {code}");
        }
    }

    #[test]
    fn padded_chunks_fill_the_smallest_size_that_holds_them_with_their_last_item() {
        let items: Vec<u32> = (1..=10).collect();
        let chunks: Vec<(usize, Vec<u32>)> =
            padded_chunks(&items, &[2, 4]).map(|(size, c)| (size, c.copied().collect())).collect();
        assert_eq!(chunks, vec![(4, vec![1, 2, 3, 4]), (4, vec![5, 6, 7, 8]), (2, vec![9, 10])]);
        let few: Vec<(usize, Vec<u32>)> =
            padded_chunks(&items[..3], &[2, 8]).map(|(size, c)| (size, c.copied().collect())).collect();
        assert_eq!(few, vec![(8, vec![1, 2, 3, 3, 3, 3, 3, 3])]);
        assert_eq!(padded_chunks(&items[..0], &[2, 8]).count(), 0);
    }

    #[test]
    fn value_rows_are_numbered_on_postgres_and_anonymous_on_sqlite() {
        assert_eq!(value_rows(Engine::Postgres, 3, 2, 2), "($3, $4), ($5, $6)");
        assert_eq!(value_rows(Engine::Sqlite, 3, 2, 2), "(?, ?), (?, ?)");
    }
}
