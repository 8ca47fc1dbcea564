//! Test harness: the real app on port 0, on SQLite and on PostgreSQL (see `postgres_url`), each
//! test with a fresh database (a temp file, or its own schema).
#![allow(dead_code)]

pub mod cli;
pub mod fixtures;
pub mod oidc;
pub mod server;
pub mod web;

use std::sync::OnceLock;

use child_locator::clock::Clock;
use child_locator::config::Settings;
use child_locator::domain::organisation::{Organisation, OrganisationInput};
use child_locator::domain::role::Role;
use child_locator::http::AppState;
use child_locator::service::Service;
use child_locator::store::Store;
use reqwest::StatusCode;
use serde_json::Value;

pub const POSTGRES_ENV: &str = "LOCATOR_TEST_POSTGRES_URL";

/// 2026-11-24T09:00:00Z, a Tuesday morning: tests start in office hours.
pub const START_MS: i64 = 1_795_510_800_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the tests use, found once per run:
/// `LOCATOR_TEST_POSTGRES_URL` when set (`off` skips PostgreSQL, `throwaway` asks for the
/// throw-away cluster); else the machine's own server on
/// 127.0.0.1:5432 (database `test`) when it answers; else a throw-away cluster started from the
/// installed `initdb`/`pg_ctl` under the temp dir (kept for the next run). The error says why
/// none can be had; the harness then reports every PostgreSQL test as skipped with that reason.
fn postgres_server() -> &'static Result<String, String> {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    SERVER.get_or_init(|| {
        let found = match std::env::var(POSTGRES_ENV) {
            Ok(url) if url == "off" => Err(format!("turned off by {POSTGRES_ENV}=off")),
            Ok(url) if url == "throwaway" => throwaway_postgres(),
            Ok(url) if !url.is_empty() => Ok(url),
            _ => local_postgres().or_else(|_| throwaway_postgres()),
        };
        found.map_err(|why| format!("no PostgreSQL server: {why} (install PostgreSQL or set {POSTGRES_ENV})"))
    })
}

/// A precondition for `#[suite::test(requires = ...)]`: a PostgreSQL server can be had.
pub fn postgres_available() -> Result<(), String> {
    postgres_server().as_ref().map(drop).map_err(Clone::clone)
}

pub fn postgres_url() -> Option<String> {
    postgres_server().as_ref().ok().cloned()
}

/// True under CI, where a test that cannot run fails instead of being skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Notes a test that could not run, with the reason, in `target/test-skips.txt`, which the test
/// command's closing summary lists (the harness also reports the test as ignored).
pub fn skipped(test: &str, reason: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let _ = std::fs::create_dir_all(&dir);
    let line = format!("{}\t{test}\n", reason.replace(['\n', '\t'], " "));
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("test-skips.txt")) {
        let _ = std::io::Write::write_all(&mut file, line.as_bytes());
    }
}

fn answers(url: &str) -> bool {
    let url = url.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            use sqlx::Connection;
            let connect = sqlx::PgConnection::connect(&url);
            matches!(tokio::time::timeout(std::time::Duration::from_secs(3), connect).await, Ok(Ok(_)))
        })
    })
    .join()
    .unwrap_or(false)
}

fn local_postgres() -> Result<String, String> {
    let url = "postgres://postgres@127.0.0.1:5432/test";
    if answers(url) { Ok(url.to_string()) } else { Err("no server answers on 127.0.0.1:5432".into()) }
}

/// A cluster of the tests' own on port 55432, created and started once per machine. PostgreSQL
/// refuses to run as root, so as root it runs as the `postgres` user the package created.
fn throwaway_postgres() -> Result<String, String> {
    const PORT: u16 = 55432;
    let url = format!("postgres://postgres@127.0.0.1:{PORT}/postgres");
    if answers(&url) {
        return Ok(url);
    }
    let bin = postgres_bin_dir().ok_or("no initdb found (PostgreSQL is not installed)")?;
    let dir = std::env::temp_dir().join("child-locator-test-postgres");
    let as_root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let run = |program: &str, args: &[&str]| -> Result<(), String> {
        let program = bin.join(program);
        let mut command = if as_root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            std::process::Command::new(&program)
        };
        let output = command.args(args).output().map_err(|e| format!("{}: {e}", program.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("{} failed: {}", program.display(), String::from_utf8_lossy(&output.stderr).trim()))
        }
    };
    let data = dir.join("data");
    let data_arg = data.to_string_lossy().into_owned();
    if !data.join("PG_VERSION").exists() {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if as_root {
            let _ = std::process::Command::new("chown").args(["postgres:", &dir.to_string_lossy()]).status();
        }
        run("initdb", &["-D", &data_arg, "-U", "postgres", "--auth=trust", "-E", "UTF8"])?;
    }
    let options = format!("-p {PORT} -k {} -c listen_addresses=127.0.0.1", dir.display());
    let log = dir.join("server.log").to_string_lossy().into_owned();
    run("pg_ctl", &["-D", &data_arg, "-o", &options, "-l", &log, "-w", "start"])?;
    if answers(&url) { Ok(url) } else { Err(format!("the throw-away cluster in {} does not answer", dir.display())) }
}

fn postgres_bin_dir() -> Option<std::path::PathBuf> {
    let mut versions: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// A fresh, migrated database for one test, removed when dropped.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(engine: Engine) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        match engine {
            Engine::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("locator.db").display());
                TestDb { url, dir, pg: None }
            }
            Engine::Postgres => {
                let base = postgres_url().expect("a PostgreSQL server");
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                child_locator::store::postgres::create_schema(&base, &schema).await.expect("create schema");
                let url = child_locator::store::postgres::url_with_schema(&base, &schema);
                TestDb { url, dir, pg: Some((base, schema)) }
            }
        }
    }

    /// A database at `url` that the caller created and will remove.
    pub fn at(url: String) -> TestDb {
        TestDb { url, dir: tempfile::tempdir().expect("temp dir"), pg: None }
    }

    pub fn settings(&self) -> Settings {
        Settings::for_database(&self.url, self.dir.path())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.pg.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    let _ = child_locator::store::postgres::drop_schema(&base, &schema).await;
                });
            })
            .join();
        }
    }
}

/// The app, served over real HTTP on 127.0.0.1:0.
pub struct TestApp {
    pub engine: Engine,
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub clock: Clock,
    pub db: TestDb,
}

impl TestApp {
    pub async fn start(engine: Engine) -> TestApp {
        Self::start_with(engine, |_| {}).await
    }

    pub async fn start_with(engine: Engine, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let db = TestDb::new(engine).await;
        Self::start_on(engine, db, adjust).await
    }

    /// Stops serving and starts again on the same database and key files (a node restart).
    pub async fn restart(self) -> TestApp {
        let engine = self.engine;
        let TestApp { db, state, .. } = self;
        drop(state);
        Self::start_on(engine, db, |_| {}).await
    }

    pub async fn start_on(engine: Engine, db: TestDb, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = db.settings();
        adjust(&mut settings);
        let clock = Clock::manual(START_MS);
        let (service, _task) = Service::open(settings, clock.clone()).await.expect("service opens");
        let state = AppState::new(service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = child_locator::http::router(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await;
        });
        TestApp { engine, base, http: reqwest::Client::new(), state, clock, db }
    }

    pub fn store(&self) -> &Store {
        self.state.store_for_tests()
    }

    /// Adds an organisation straight through the store (set-up, not the behaviour under test).
    pub async fn org(&self, code: &str, kind: &str) -> Organisation {
        let input = OrganisationInput {
            code: Some(code.into()),
            name: Some(format!("{code} Test Organisation")),
            kind: Some(kind.into()),
            duty_phone: Some("01632 960999".into()),
            out_of_hours_phone: None,
            secure_email: Some(format!("duty@{}.test.invalid", code.to_lowercase())),
            active: None,
        };
        self.store()
            .add_organisation(&input.into_new().expect("valid org"), self.clock.now_ms())
            .await
            .expect("org added")
    }

    /// Issues a token for a new user of `org` with `role`.
    pub async fn token(&self, org: &Organisation, role: Role) -> String {
        let name = format!("{} {}", role.as_str(), org.code);
        let (_, token) = self.state.issue_user(None, org.id, &name, role).await.expect("token");
        token
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(self.url(path)).bearer_auth(token).send().await.expect("request");
        split(response).await
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self.http.post(self.url(path)).bearer_auth(token).json(body).send().await.expect("request");
        split(response).await
    }

    pub async fn put(&self, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self.http.put(self.url(path)).bearer_auth(token).json(body).send().await.expect("request");
        split(response).await
    }

    pub async fn patch(&self, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self.http.patch(self.url(path)).bearer_auth(token).json(body).send().await.expect("request");
        split(response).await
    }

    pub async fn delete(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let response = self.http.delete(self.url(path)).bearer_auth(token).send().await.expect("request");
        split(response).await
    }

    /// A body that is not JSON (CSV exports), as text.
    pub async fn get_text(&self, token: &str, path: &str) -> String {
        let response = self.http.get(self.url(path)).bearer_auth(token).send().await.expect("request");
        response.text().await.expect("body")
    }

    /// Every row of a newest-first list at `path` (its rows under `rows`), `limit` a page,
    /// following `next_cursor` back as `before` until the last page.
    pub async fn every_page(&self, token: &str, path: &str, rows: &str, limit: usize) -> Vec<Value> {
        let mut all = Vec::new();
        let mut before = String::new();
        loop {
            let (status, page) = self.get(token, &format!("{path}?limit={limit}{before}")).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let got = page[rows].as_array().expect("a list of rows");
            assert!(got.len() <= limit, "a page holds at most its limit");
            all.extend(got.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(cursor) => before = format!("&before={cursor}"),
                None => return all,
            }
            assert!(all.len() < 10_000, "the cursor does not advance");
        }
    }

    /// Posts a whole caseload to `/api/v1/holdings/sync{query}`.
    pub async fn sync(&self, token: &str, content_type: &str, body: String, query: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(&format!("/api/v1/holdings/sync{query}")))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        split(response).await
    }

    /// Fails if any canary (compared case-insensitively) is in the SQLite database or its WAL.
    pub fn assert_db_files_free_of(&self, canaries: &[&str]) {
        for file in ["locator.db", "locator.db-wal"] {
            let Ok(bytes) = std::fs::read(self.db.dir.path().join(file)) else { continue };
            let text = String::from_utf8_lossy(&bytes).to_uppercase();
            for canary in canaries {
                assert!(!text.contains(&canary.to_uppercase()), "{canary} found in {file}");
            }
        }
    }

    /// Every audit event body, oldest first.
    pub async fn audit_bodies(&self) -> Vec<Value> {
        let entries = self.store().audit_entries(0, 1_000_000).await.expect("audit entries");
        entries.iter().map(|e| serde_json::from_slice(&e.body).expect("event json")).collect()
    }

    pub async fn audit_types(&self) -> Vec<String> {
        self.audit_bodies().await.iter().map(|b| b["type"].as_str().unwrap_or_default().to_string()).collect()
    }
}

/// Makes every audit append fail from now on, as a full disk or a broken database would.
pub async fn refuse_audit_writes(store: &Store, engine: Engine) {
    fixtures::refuse_inserts(store, engine, "audit_events").await;
}

pub async fn split(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, value)
}
