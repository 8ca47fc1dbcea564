//! Test harness: the real app on port 0, on SQLite and (when `LOCATOR_TEST_POSTGRES_URL` is
//! set) on PostgreSQL, each test with a fresh database (a temp file, or its own schema).
#![allow(dead_code)]

pub mod cli;
pub mod server;
pub mod web;

use std::sync::Once;

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

/// The engines to run on. Without a PostgreSQL URL the skip is said out loud, once.
pub fn engines() -> Vec<Engine> {
    static WARN: Once = Once::new();
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => vec![Engine::Sqlite, Engine::Postgres],
        _ => {
            WARN.call_once(|| {
                skipped(
                    "PostgreSQL half of the tests",
                    &format!("set {POSTGRES_ENV}=postgres://... to run it (CI does)"),
                );
            });
            vec![Engine::Sqlite]
        }
    }
}

/// Announces that a test (or part of one) could not run, where it shows: straight to the
/// process's stderr, past the test harness's capture (which hides a passing test's
/// `eprintln!`), as one line starting `SKIPPED:` that .ci/run's summary counts. A skipped test
/// still reports `ok`, so this line is what keeps the skip from passing silently.
pub fn skipped(what: &str, reason: &str) {
    use std::io::Write;
    let reason = reason.replace('\n', " "); // one line each, for the summary to count
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {what}: {reason}");
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
                let base = std::env::var(POSTGRES_ENV).expect("postgres url");
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
        &self.state.store
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
        let (_, token) =
            child_locator::http::users::issue_user(&self.state, None, org.id, &name, role).await.expect("token");
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
    let fault = match engine {
        Engine::Sqlite => {
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk full'); END;"
        }
        Engine::Postgres => {
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse();"
        }
    };
    store.execute_raw_on_audit(fault).await.expect("fault injected");
}

pub async fn split(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, value)
}
