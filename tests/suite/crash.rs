//! Crash consistency: the real `locator serve` is killed with SIGKILL at a random moment while
//! lookups and holding changes are in flight, then restarted on the same database. Whatever it
//! acknowledged must have survived: every answered lookup is in the audit trail, every
//! acknowledged holding change is there (or a later one that was in flight), the audit log
//! verifies, and the service answers again. On both engines.
//!
//! Rounds per engine: `LOCATOR_CRASH_ROUNDS` (3 by default, as in CI; the full run uses 20+).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use child_locator::store::Store;
use common::cli::stdout;
use common::server::Server;
use common::{Engine, TestDb};
use rand::Rng;
use serde_json::{Value, json};

const WRITERS: usize = 3;
const ASKERS: usize = 3;
const REFS_PER_WRITER: usize = 4;

fn rounds() -> usize {
    std::env::var("LOCATOR_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3)
}

/// The children the other organisation holds; lookups ask for them (hits) and for others (misses).
fn seeded_child(i: usize) -> Value {
    let given = ["Ada", "Bilal", "Chen", "Dara", "Efe"][i % 5];
    // Names take letters only: the number is spelled with a letter a digit.
    let suffix: String = i.to_string().bytes().map(|d| char::from(b'a' + (d - b'0'))).collect();
    json!({"given_name": given, "family_name": format!("Crashtest{suffix}"),
           "date_of_birth": format!("2015-0{}-1{}", 1 + i % 9, i % 10)})
}

fn holding(subject: Value, version: u64) -> Value {
    json!({"category": "child-in-need", "status": "open", "subject": subject,
           "contact": {"team": format!("v{version}"), "phone": "0113 496 0000"}})
}

/// What the clients were told, shared by the load tasks of every round.
#[derive(Default, Clone)]
struct Acknowledged {
    lookups: BTreeSet<String>,
    /// local_ref -> highest version answered 2xx.
    versions: BTreeMap<String, u64>,
    /// local_ref -> highest version sent (answered or not).
    attempted: BTreeMap<String, u64>,
}

struct Deployment {
    dir: tempfile::TempDir,
    db: TestDb,
    env: Vec<(String, String)>,
    writer: String,
    worker: String,
}

impl Deployment {
    async fn new(engine: Engine) -> Deployment {
        let db = TestDb::new(engine).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let env = vec![
            ("LOCATOR_DATABASE_URL".to_string(), db.url.clone()),
            ("LOCATOR_KEY_FILE".to_string(), dir.path().join("locator.key").display().to_string()),
            ("LOCATOR_AUDIT_KEY_FILE".to_string(), dir.path().join("audit.key").display().to_string()),
            ("LOCATOR_RATE_LIMITS".to_string(), "off".to_string()),
        ];
        let mut d = Deployment { dir, db, env, writer: String::new(), worker: String::new() };
        d.cli(&["key", "generate"]);
        d.org("CRASH-A");
        d.org("CRASH-B");
        d.writer = d.token("CRASH-A", "org-admin");
        d.worker = d.token("CRASH-A", "practitioner");
        let holder = d.token("CRASH-B", "org-admin");
        let server = d.start();
        let http = reqwest::Client::new();
        for i in 0..10 {
            let response = http
                .put(server.url(&format!("/api/v1/holdings/SEED-{i}")))
                .bearer_auth(&holder)
                .json(&holding(seeded_child(i), 0))
                .send()
                .await
                .expect("seed");
            let status = response.status();
            assert!(status.is_success(), "seed holding: {status} {}", response.text().await.unwrap_or_default());
        }
        server.stop();
        d
    }

    fn org(&self, code: &str) {
        let out = self.cli(&common::cli::org_add_args(code, "local-authority"));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = common::cli::locator(self.dir.path());
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.args(args).output().expect("locator runs")
    }

    fn token(&self, org: &str, role: &str) -> String {
        let out = self.cli(&["user", "add", "--org", org, "--name", &format!("{role} of {org}"), "--role", role]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        stdout(&out).trim_end().lines().last().expect("token line").to_string()
    }

    fn start(&self) -> Server {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::start(self.dir.path(), &env)
    }
}

/// Drives holding PUTs and lookups at `server` until `stop`; records what was acknowledged.
async fn drive(server_base: String, d: &Deployment, acked: Arc<Mutex<Acknowledged>>, stop: Arc<AtomicBool>) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (http, base, token, acked, stop) =
            (http.clone(), server_base.clone(), d.writer.clone(), acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut k = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let local_ref = format!("W{w}-{}", k % REFS_PER_WRITER);
                k += 1;
                // This task is the only writer of its refs, so versions per ref are sequential.
                let version = {
                    let mut a = acked.lock().unwrap();
                    let v = a.attempted.get(&local_ref).copied().unwrap_or(0) + 1;
                    a.attempted.insert(local_ref.clone(), v);
                    v
                };
                let subject = seeded_child(100 + w * REFS_PER_WRITER + k % REFS_PER_WRITER);
                let sent = http
                    .put(format!("{base}/api/v1/holdings/{local_ref}"))
                    .bearer_auth(&token)
                    .json(&holding(subject, version))
                    .send()
                    .await;
                let Ok(response) = sent else { continue };
                if response.status().is_success() && response.json::<Value>().await.is_ok() {
                    acked.lock().unwrap().versions.insert(local_ref, version);
                }
            }
        }));
    }
    for a in 0..ASKERS {
        let (http, base, token, acked, stop) =
            (http.clone(), server_base.clone(), d.worker.clone(), acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut k = 0usize;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                // Half ask for a seeded child (a hit), half for a child nobody holds.
                let subject =
                    if k.is_multiple_of(2) { seeded_child(k % 10) } else { seeded_child(1000 + a * 10_000 + k) };
                let sent = http
                    .post(format!("{base}/api/v1/lookups"))
                    .bearer_auth(&token)
                    .json(&json!({"subject": subject, "purpose": "front-door-triage"}))
                    .send()
                    .await;
                let Ok(response) = sent else { continue };
                if !response.status().is_success() {
                    continue;
                }
                if let Ok(body) = response.json::<Value>().await
                    && let Some(id) = body["lookup_id"].as_str()
                {
                    assert!(
                        !k.is_multiple_of(2) || !body["matches"].as_array().is_none_or(|m| m.is_empty()),
                        "a hit: {body}"
                    );
                    acked.lock().unwrap().lookups.insert(id.to_string());
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("load task");
    }
}

/// Every acknowledged write is there after the restart, the log verifies, the service answers.
async fn check(d: &Deployment, server: &Server, acked: &Acknowledged, round: usize) {
    let http = reqwest::Client::new();
    assert_eq!(server.wait_ready().await, 200, "round {round}: ready after restart");

    for (local_ref, version) in &acked.versions {
        let response = http
            .get(server.url(&format!("/api/v1/holdings/{local_ref}")))
            .bearer_auth(&d.writer)
            .send()
            .await
            .expect("get holding");
        assert_eq!(response.status(), 200, "round {round}: acknowledged holding {local_ref} is missing");
        let body: Value = response.json().await.expect("holding json");
        let stored: u64 = body["contact"]["team"].as_str().and_then(|t| t[1..].parse().ok()).expect("version");
        let sent = acked.attempted[local_ref];
        assert!(
            stored >= *version && stored <= sent,
            "round {round}: {local_ref} has v{stored}; v{version} was acknowledged, v{sent} the last sent"
        );
    }

    let store = Store::connect(&d.db.url).await.expect("store");
    let head = store.audit_head().await.expect("head");
    let entries = store.audit_entries(0, i64::try_from(head.size).expect("size") + 1).await.expect("entries");
    let audited: BTreeSet<String> = entries
        .iter()
        .filter_map(|e| serde_json::from_slice::<Value>(&e.body).ok())
        .filter_map(|b| b["lookup_id"].as_str().map(String::from))
        .collect();
    store.close().await;
    let missing: Vec<_> = acked.lookups.difference(&audited).collect();
    assert!(missing.is_empty(), "round {round}: answered lookups missing from the audit trail: {missing:?}");

    let verify = d.cli(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "round {round}: audit verify failed: {}{}",
        stdout(&verify),
        String::from_utf8_lossy(&verify.stderr)
    );

    let answer = http
        .post(server.url("/api/v1/lookups"))
        .bearer_auth(&d.worker)
        .json(&json!({"subject": seeded_child(3), "purpose": "front-door-triage"}))
        .send()
        .await
        .expect("lookup after restart");
    assert_eq!(answer.status(), 200, "round {round}: lookups answer after restart");
}

async fn kill_under_load_and_recover(engine: Engine) {
    let d = Deployment::new(engine).await;
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let mut server = d.start();
    for round in 1..=rounds() {
        let stop = Arc::new(AtomicBool::new(false));
        let load = drive(server.base.clone(), &d, acked.clone(), stop.clone());
        let kill_after = Duration::from_millis(rand::thread_rng().gen_range(100..1500));
        let killer = async {
            tokio::time::sleep(kill_after).await;
            server.kill();
            stop.store(true, Ordering::Relaxed);
        };
        tokio::join!(load, killer);
        server = d.start();
        let acked = acked.lock().unwrap().clone();
        let (lookups, writes) = (acked.lookups.len(), acked.versions.len());
        eprintln!(
            "{engine:?} round {round}: killed after {kill_after:?}; {lookups} lookups, {writes} refs acknowledged"
        );
        check(&d, &server, &acked, round).await;
    }
    let acked = acked.lock().unwrap();
    assert!(!acked.lookups.is_empty() && !acked.versions.is_empty(), "the load did something: {:?}", acked.lookups);
    assert!(server.stop().success(), "a clean stop after the last round");
}

#[suite::test(each_engine, multi_thread)]
async fn every_acknowledged_write_survives_sigkill(engine: Engine) {
    kill_under_load_and_recover(engine).await;
}

#[suite::test(requires = common::postgres_available)]
fn serve_refuses_postgres_that_acknowledges_commits_before_they_are_durable() {
    let url = common::postgres_url().expect("a PostgreSQL server");
    let dir = tempfile::tempdir().unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let unsafe_url = format!("{url}{separator}options=-c%20synchronous_commit%3Doff");
    let out = common::cli::locator(dir.path())
        .args(["serve", "--database-url", &unsafe_url, "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve must refuse synchronous_commit=off: {stderr}");
    assert!(stderr.contains("synchronous_commit"), "the refusal names the setting: {stderr}");
}

/// A caseload row for the sync crash test: distinct children with letter-only names.
fn sync_row(i: usize) -> String {
    let suffix: String = i.to_string().bytes().map(|d| char::from(b'a' + (d - b'0'))).collect();
    format!("S-{i},other,open,,,Amy,Synccrash{suffix},2016-02-{:02},", 1 + i % 28)
}

/// Sends the start of a caseload upload (chunked) and leaves it open: the sync runs, commits
/// what it has read, and waits for the rest.
fn start_upload(addr: &str, token: &str, rows: usize) -> std::net::TcpStream {
    use std::io::Write;
    let mut body =
        String::from("local_ref,category,status,nhs_number,upn,given_name,family_name,date_of_birth,postcode\n");
    for i in 0..rows {
        body.push_str(&sync_row(i));
        body.push('\n');
    }
    let mut socket = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        socket,
        "POST /api/v1/holdings/sync HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n",
        body.len()
    )
    .expect("send");
    socket.flush().expect("flush");
    socket
}

/// A sync killed mid-file (SIGKILL) leaves a trail that accounts for what it committed: its
/// `sync_started` before the first write, and after the restart a `sync_interrupted` with the
/// holdings its committed batches wrote. On both engines.
async fn a_killed_sync_is_accounted_for(engine: Engine) {
    let mut d = Deployment::new(engine).await;
    let config = d.dir.path().join("locator.toml");
    std::fs::write(&config, "sync_lease_secs = 2\n").expect("config");
    d.env.push(("LOCATOR_CONFIG".to_string(), config.display().to_string()));
    let seeded = 10;
    let server = d.start();
    // One batch (5,000 rows) and a little more: the batch is committed while the upload waits.
    let socket = start_upload(&server.addr, &d.writer, 5_200);
    let store = Store::connect(&d.db.url).await.expect("store");
    let mut holdings = 0;
    for _ in 0..600 {
        holdings = store.coverage().await.expect("coverage").0 - seeded;
        if holdings >= 5_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(holdings, 5_000, "{engine:?}: the first batch is committed while the upload waits");
    server.kill();
    drop(socket);

    let server = d.start();
    let mut interrupted = None;
    for _ in 0..300 {
        let head = store.audit_head().await.expect("head");
        let entries = store.audit_entries(0, i64::try_from(head.size).expect("size") + 1).await.expect("entries");
        let bodies: Vec<Value> = entries.iter().filter_map(|e| serde_json::from_slice(&e.body).ok()).collect();
        let started = bodies.iter().find(|b| b["type"] == "sync_started").cloned();
        if let Some(found) = bodies.iter().find(|b| b["type"] == "sync_interrupted") {
            interrupted = Some((started, found.clone()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (started, interrupted) = interrupted.expect("a sync_interrupted event after the restart");
    let started = started.expect("the sync's sync_started event");
    assert_eq!(interrupted["details"]["run_id"], started["details"]["run_id"], "{engine:?}");
    assert_eq!(interrupted["details"]["added"], holdings, "{engine:?}: every committed holding accounted for");
    assert_eq!(store.coverage().await.expect("coverage").0 - seeded, holdings, "{engine:?}: nothing was removed");
    store.close().await;
    let verify = d.cli(&["audit", "verify"]);
    assert!(verify.status.success(), "{engine:?}: {}{}", stdout(&verify), String::from_utf8_lossy(&verify.stderr));
    assert!(server.stop().success());
}

#[suite::test(each_engine, multi_thread)]
async fn a_sync_killed_mid_file_is_accounted_for(engine: Engine) {
    a_killed_sync_is_accounted_for(engine).await;
}

/// `locator import` while a sync of the same organisation runs in the server is refused with a
/// clear error and changes nothing.
#[suite::test(each_engine, multi_thread)]
async fn import_is_refused_while_a_sync_runs(engine: Engine) {
    let d = Deployment::new(engine).await;
    let server = d.start();
    let socket = start_upload(&server.addr, &d.writer, 10);
    let file = d.dir.path().join("caseload.csv");
    std::fs::write(
        &file,
        format!(
            "local_ref,category,status,given_name,family_name,date_of_birth\n{}\n",
            "X-1,other,open,Amy,Importer,2016-02-02"
        ),
    )
    .expect("file");
    // The upload has begun: the server's sync holds the organisation.
    let store = Store::connect(&d.db.url).await.expect("store");
    for _ in 0..100 {
        let head = store.audit_head().await.expect("head");
        let entries = store.audit_entries(0, i64::try_from(head.size).expect("size") + 1).await.expect("entries");
        if entries.iter().any(|e| String::from_utf8_lossy(&e.body).contains("\"sync_started\"")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = d.cli(&["import", "--org", "CRASH-A", file.to_str().expect("path")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{engine:?}: import beside a running sync must fail: {}", stdout(&out));
    assert!(stderr.contains("already running"), "{engine:?}: a clear message: {stderr}");
    drop(socket);
    store.close().await;
    assert!(server.stop().success());
}
