//! The database failing under the service: a write refused part-way, the database locked or
//! unreachable, PostgreSQL connections killed mid-load. Clients get errors (503 where the
//! database is unavailable), never a wrong answer; nothing is half-written; and the service
//! recovers by itself once the database is back, without a restart.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use child_locator::audit::stored::verify_stored;
use child_locator::domain::role::Role;
use common::fixtures::{MANCHESTER, Named, lift, org_with, put_holding, refuse_inserts};
use common::{Engine, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

const NHS: &str = "9434765919";
/// The organisation that writes and asks in these tests.
const SOUTH: Named = Named { code: "E06000010", kind: "local-authority" };

fn child() -> Value {
    json!({"nhs_number": NHS, "given_name": "Amelia", "family_name": "Hughes", "date_of_birth": "2014-05-09"})
}

fn holding(subject: Value) -> Value {
    json!({"category": "child-in-need", "status": "open", "subject": subject})
}

fn lookup(subject: Value) -> Value {
    json!({"subject": subject, "purpose": "s47-enquiry"})
}

/// An organisation holding Amelia, and a practitioner elsewhere who asks about her.
struct World {
    app: TestApp,
    holder: String,
    writer: String,
    worker: String,
}

async fn world(app: TestApp) -> World {
    let (_, [holder]) = org_with(&app, MANCHESTER, [Role::OrgAdmin]).await;
    let (_, [writer, worker]) = org_with(&app, SOUTH, [Role::OrgAdmin, Role::Practitioner]).await;
    put_holding(&app, &holder, "N-1", &holding(child())).await;
    World { app, holder, writer, worker }
}

/// The one right answer to a lookup for Amelia: north holds her, confirmed by NHS number.
fn assert_right_answer(body: &Value) {
    let matches = body["matches"].as_array().unwrap_or_else(|| panic!("matches: {body}"));
    assert_eq!(matches.len(), 1, "{body}");
    assert_eq!(matches[0]["organisation"]["code"], MANCHESTER.code, "{body}");
}

async fn audit_intact(app: &TestApp) {
    let key = app.state.audit_signer().verifying_key();
    verify_stored(app.store(), Some(key)).await.expect("the audit log verifies");
}

#[suite::test(each_engine)]
async fn a_write_refused_part_way_leaves_nothing_behind_and_the_next_one_works(engine: Engine) {
    let w = world(TestApp::start(engine).await).await;
    refuse_inserts(w.app.store(), engine, "pseudonyms").await;
    let (status, body) = w.app.put(&w.writer, "/api/v1/holdings/S-1", &holding(child())).await;
    assert!(status.is_server_error(), "{engine:?}: {status} {body}");
    assert_eq!(body["error"]["code"].as_str().map(|c| c == "internal" || c == "unavailable"), Some(true));
    assert!(!body.to_string().contains(NHS) && !body.to_string().contains("Amelia"), "{body}");
    // The holding row went in before the pseudonyms were refused: it must have gone again.
    assert_eq!(w.app.get(&w.writer, "/api/v1/holdings/S-1").await.0, StatusCode::NOT_FOUND, "{engine:?}");
    assert!(w.app.get(&w.holder, "/api/v1/matches").await.1["matches"].as_array().unwrap().is_empty());

    lift(w.app.store(), engine, "pseudonyms").await;
    let (status, _) = w.app.put(&w.writer, "/api/v1/holdings/S-1", &holding(child())).await;
    assert_eq!(status, StatusCode::CREATED, "{engine:?}: recovered without a restart");
    assert_eq!(w.app.get(&w.holder, "/api/v1/matches").await.1["matches"].as_array().unwrap().len(), 1);
    audit_intact(&w.app).await;
}

#[suite::test(multi_thread)]
async fn sqlite_locked_by_another_process_refuses_writes_with_503_and_recovers() {
    let w = world(TestApp::start(Engine::Sqlite).await).await;
    // Another process (a stuck backup, a runaway script) holds the database's write lock.
    let other = lock_file(&w.app.db.dir.path().join("locator.db")).await;
    let (new_holding, question) = (holding(child()), lookup(child()));
    let (put, asked, read) = tokio::join!(
        w.app.put(&w.writer, "/api/v1/holdings/S-1", &new_holding),
        w.app.post(&w.worker, "/api/v1/lookups", &question),
        w.app.get(&w.holder, "/api/v1/holdings/N-1"),
    );
    assert_eq!(put.0, StatusCode::SERVICE_UNAVAILABLE, "{}", put.1);
    assert_eq!(put.1["error"]["code"], "unavailable");
    assert_eq!(asked.0, StatusCode::OK, "the audit trail is another file, so lookups go on: {}", asked.1);
    assert_right_answer(&asked.1);
    assert_eq!(read.0, StatusCode::OK, "reads go on");
    unlock(other).await;
    assert_eq!(w.app.get(&w.writer, "/api/v1/holdings/S-1").await.0, StatusCode::NOT_FOUND, "nothing half-written");

    // Now it holds the audit file's: no lookup is answered without its record.
    let other = lock_file(&w.app.db.dir.path().join("locator-audit.db")).await;
    let asked = w.app.post(&w.worker, "/api/v1/lookups", &lookup(child())).await;
    assert_eq!(asked.0, StatusCode::SERVICE_UNAVAILABLE, "no answer without its audit record: {}", asked.1);
    assert!(asked.1.get("matches").is_none());
    unlock(other).await;

    let (status, body) = w.app.post(&w.worker, "/api/v1/lookups", &lookup(child())).await;
    assert_eq!(status, StatusCode::OK, "recovered without a restart: {body}");
    assert_right_answer(&body);
    assert_eq!(w.app.put(&w.writer, "/api/v1/holdings/S-1", &holding(child())).await.0, StatusCode::CREATED);
    audit_intact(&w.app).await;
}

/// Takes an SQLite file's write lock from a connection of its own, as another process would.
async fn lock_file(path: &std::path::Path) -> sqlx::SqliteConnection {
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut other).await.unwrap();
    other
}

async fn unlock(mut other: sqlx::SqliteConnection) {
    sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
}

/// Runs `sql` on the test server's maintenance connection.
async fn admin_sql(sql: &str) {
    let base = common::postgres_url().expect("a PostgreSQL server");
    let mut conn = sqlx::PgConnection::connect(&base).await.expect("admin connection");
    sqlx::raw_sql(sql).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.ok();
}

#[suite::test(multi_thread, requires = common::postgres_available)]
async fn postgres_connections_killed_mid_load_give_errors_never_wrong_answers() {
    let mut db = TestDb::new(Engine::Postgres).await;
    let tag = format!("fault_{}", uuid::Uuid::new_v4().simple());
    db.url = format!("{}&application_name={tag}", db.url);
    let w = Arc::new(world(TestApp::start_on(Engine::Postgres, db, |s| s.limits.enabled = false).await).await);
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (w, stop, answered, refused) = (w.clone(), stop.clone(), answered.clone(), refused.clone());
        clients.push(tokio::spawn(async move {
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                let (status, body) = if c % 2 == 0 {
                    w.app.post(&w.worker, "/api/v1/lookups", &lookup(child())).await
                } else {
                    let suffix: String = format!("{c}{k}").bytes().map(|d| char::from(b'a' + (d - b'0'))).collect();
                    let subject = json!({"given_name": "Ben", "family_name": format!("Loadtest{suffix}"),
                                         "date_of_birth": "2015-02-03"});
                    w.app.put(&w.writer, &format!("/api/v1/holdings/L-{c}-{k}"), &holding(subject)).await
                };
                if status.is_success() {
                    if c % 2 == 0 {
                        assert_right_answer(&body);
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                } else {
                    // 503 in practice; any 5xx is honest (an error, never a wrong answer or a 4xx).
                    assert!(status.is_server_error(), "an error, not a refusal of the client: {status} {body}");
                    assert!(body["error"]["code"].is_string(), "{body}");
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        admin_sql(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{tag}'"))
            .await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client");
    }
    eprintln!(
        "{} answered, {} refused while connections were being killed",
        answered.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    );
    let (status, body) = w.app.post(&w.worker, "/api/v1/lookups", &lookup(child())).await;
    assert_eq!(status, StatusCode::OK, "recovered without a restart: {body}");
    assert_right_answer(&body);
    audit_intact(&w.app).await;
}

#[suite::test(multi_thread, requires = common::postgres_available)]
async fn postgres_unreachable_is_503_and_the_service_recovers_when_it_returns() {
    // A database of its own, so refusing connections to it touches nothing else on the server.
    let base = common::postgres_url().expect("a PostgreSQL server");
    let name = format!("fault_{}", uuid::Uuid::new_v4().simple());
    admin_sql(&format!("CREATE DATABASE {name}")).await;
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("{base} names no database"),
    };
    let w = world(TestApp::start_on(Engine::Postgres, TestDb::at(url), |_| {}).await).await;

    admin_sql(&format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;
    let (new_holding, question) = (holding(child()), lookup(child()));
    let (put, asked, ready) = tokio::join!(
        w.app.put(&w.writer, "/api/v1/holdings/S-1", &new_holding),
        w.app.post(&w.worker, "/api/v1/lookups", &question),
        w.app.http.get(w.app.url("/readyz")).send(),
    );
    admin_sql(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
    assert_eq!(put.0, StatusCode::SERVICE_UNAVAILABLE, "{}", put.1);
    assert_eq!(asked.0, StatusCode::SERVICE_UNAVAILABLE, "{}", asked.1);
    assert!(asked.1.get("matches").is_none());
    assert_eq!(ready.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE, "not ready while the database is away");

    assert_eq!(w.app.get(&w.writer, "/api/v1/holdings/S-1").await.0, StatusCode::NOT_FOUND, "nothing half-written");
    let (status, body) = w.app.post(&w.worker, "/api/v1/lookups", &lookup(child())).await;
    assert_eq!(status, StatusCode::OK, "recovered without a restart: {body}");
    assert_right_answer(&body);
    audit_intact(&w.app).await;
    w.app.store().close().await;
    drop(w);
    admin_sql(&format!("DROP DATABASE {name} WITH (FORCE)")).await;
}

/// A filesystem of its own for the database, small enough to fill: a tmpfs the test mounts
/// (and unmounts when dropped). `None`, with a visible SKIPPED notice, where mounting is not
/// allowed (not root, or a container without the right to mount).
/// The full-disk test needs a tmpfs of its own (root, as in CI).
fn tmpfs_mountable() -> Result<(), String> {
    SmallDisk::mount().map(drop)
}

struct SmallDisk {
    mount_point: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> Result<SmallDisk, String> {
        let mount_point = tempfile::tempdir().expect("a mount point");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m,mode=0700", "locator-test-disk"])
            .arg(mount_point.path())
            .output();
        let reason = match mounted {
            Ok(out) if out.status.success() => return Ok(SmallDisk { mount_point }),
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr);
                format!("cannot mount a tmpfs: {}", why.lines().next().unwrap_or("mount failed").trim())
            }
            Err(e) => format!("cannot run mount: {e}"),
        };
        Err(format!("{reason} (it needs root, as in CI)"))
    }

    fn path(&self) -> &std::path::Path {
        self.mount_point.path()
    }

    fn ballast(&self) -> std::path::PathBuf {
        self.path().join("ballast")
    }

    /// Writes a file until the disk is full.
    fn fill(&self) {
        use std::io::Write;
        let mut ballast = std::fs::File::create(self.ballast()).expect("ballast file");
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if let Err(e) = ballast.write_all(&chunk) {
                assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "the disk fills: {e}");
                return;
            }
        }
    }

    fn free(&self) {
        std::fs::remove_file(self.ballast()).expect("ballast removed");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: the test's pools may still hold the files open for a moment.
        let _ = std::process::Command::new("umount").arg("-l").arg(self.mount_point.path()).status();
    }
}

async fn readiness(app: &TestApp) -> StatusCode {
    app.http.get(app.url("/readyz")).send().await.expect("readyz answers").status()
}

/// Polls `/readyz` until it answers `want`, for up to 15 s; returns the last status seen.
async fn readiness_becomes(app: &TestApp, want: StatusCode) -> StatusCode {
    let mut status = readiness(app).await;
    for _ in 0..150 {
        if status == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = readiness(app).await;
    }
    status
}

#[suite::test(multi_thread, requires = tmpfs_mountable)]
async fn a_full_disk_fails_closed_and_not_ready_and_everything_recovers_when_space_returns() {
    let disk = SmallDisk::mount().expect("a small disk");
    let db = TestDb::at(format!("sqlite://{}", disk.path().join("locator.db").display()));
    let w = world(TestApp::start_on(Engine::Sqlite, db, |s| s.limits.enabled = false).await).await;
    assert_eq!(readiness_becomes(&w.app, StatusCode::OK).await, StatusCode::OK, "ready before the fault");

    disk.fill();
    // A commit may still fit in space the trail's files already have; soon one does not.
    let mut refused = None;
    for _ in 0..100 {
        let (status, body) = w.app.post(&w.worker, "/api/v1/lookups", &lookup(child())).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            refused = Some(body);
            break;
        }
        assert_eq!(status, StatusCode::OK, "an answer or a refusal, nothing else: {body}");
        assert_right_answer(&body);
    }
    let refused = refused.expect("with the disk full, a lookup is refused");
    assert_eq!(refused["error"]["code"], "unavailable", "{refused}");
    assert!(refused.get("matches").is_none(), "no answer without its audit record: {refused}");
    let (status, body) = w.app.put(&w.writer, "/api/v1/holdings/S-1", &holding(child())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "a full disk is worth a retry, not a 500: {body}");
    assert_eq!(body["error"]["code"], "unavailable");
    assert_eq!(readiness(&w.app).await, StatusCode::SERVICE_UNAVAILABLE, "not ready while the trail cannot be written");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(readiness(&w.app).await, StatusCode::SERVICE_UNAVAILABLE, "still not ready: the disk is still full");

    disk.free();
    assert_eq!(
        readiness_becomes(&w.app, StatusCode::OK).await,
        StatusCode::OK,
        "ready again by itself, with no lookup to risk it"
    );
    let (status, body) = w.app.post(&w.worker, "/api/v1/lookups", &lookup(child())).await;
    assert_eq!(status, StatusCode::OK, "lookups are answered again without a restart: {body}");
    assert_right_answer(&body);
    let (status, body) = w.app.put(&w.writer, "/api/v1/holdings/S-1", &holding(child())).await;
    assert_eq!(status, StatusCode::CREATED, "writes work again without a restart: {body}");
    assert!(!w.app.get(&w.holder, "/api/v1/matches").await.1["matches"].as_array().unwrap().is_empty());
    audit_intact(&w.app).await;
    w.app.store().close().await;
}
