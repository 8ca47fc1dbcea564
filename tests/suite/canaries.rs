//! Canary identifiers sent through every way in (a holding PUT, CSV and NDJSON syncs, lookups
//! that hit, miss and fail validation, a record request) never appear in what the service
//! keeps or hands out: the database and its WAL, a PostgreSQL dump, the audit export, the IG
//! views and CSV, a backup. (Logs and metrics of a running server: tests/cli.rs.)

use crate::common;

use child_locator::domain::role::Role;
use common::{Engine, TestApp};
use reqwest::StatusCode;
use serde_json::json;

const GIVEN: &str = "Zephyrine";
const FAMILY: &str = "Quillbottom";
const NHS: &str = "9434765919";
const DOB: &str = "2013-07-21";
const POSTCODE: &str = "SW1A 2AA";
const UPN: &str = "B801200005001";

/// Every form a canary could take in stored text: as sent, upper-cased, spaced NHS number.
fn leaks(text: &str) -> Vec<&'static str> {
    let upper = text.to_uppercase();
    [GIVEN, FAMILY, NHS, "943 476 5919", DOB, "20130721", POSTCODE, "SW1A2AA", UPN]
        .into_iter()
        .filter(|c| upper.contains(&c.to_uppercase()))
        .collect()
}

async fn feed_canaries(app: &TestApp) -> String {
    let holder = app.org("E08000003", "local-authority").await;
    let asker = app.org("E06000010", "local-authority").await;
    let admin = app.token(&holder, Role::OrgAdmin).await;
    let worker = app.token(&asker, Role::Practitioner).await;
    let subject = json!({"nhs_number": NHS, "upn": UPN, "given_name": GIVEN, "family_name": FAMILY,
                         "date_of_birth": DOB, "postcode": POSTCODE});
    let (status, _) = app
        .put(
            &admin,
            "/api/v1/holdings/C-1",
            &json!({"category": "child-in-need", "status": "open", "subject": subject}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let bad = json!({"category": "child-in-need", "status": "open",
                     "subject": {"nhs_number": "9434765918", "given_name": GIVEN, "date_of_birth": format!("{DOB}x")}});
    assert_eq!(app.put(&admin, "/api/v1/holdings/C-2", &bad).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let csv = format!(
        "local_ref,category,status,nhs_number,upn,given_name,family_name,date_of_birth,postcode\n\
         C-1,child-in-need,open,{NHS},{UPN},{GIVEN},{FAMILY},{DOB},{POSTCODE}\n\
         C-3,other,open,9434765918,,{GIVEN},{FAMILY},{DOB}x,{POSTCODE}!\n"
    );
    let sync = |content_type: &'static str, body: String| {
        let request = app.http.post(app.url("/api/v1/holdings/sync")).bearer_auth(&admin);
        async move { request.header("content-type", content_type).body(body).send().await.unwrap() }
    };
    let summary = sync("text/csv", csv).await.text().await.unwrap();
    assert!(leaks(&summary).is_empty(), "a sync summary echoes {:?}: {summary}", leaks(&summary));
    let ndjson = format!(
        "{{\"local_ref\": \"C-1\", \"category\": \"child-in-need\", \"status\": \"open\", \"subject\": {subject}}}\n\
         {{\"local_ref\": \"C-4\", \"subject\": {{\"given_name\": \"{GIVEN}\", \"nhs_number\": \"{NHS}0\"}}}}\n"
    );
    let summary = sync("application/x-ndjson", ndjson).await.text().await.unwrap();
    assert!(leaks(&summary).is_empty(), "a sync summary echoes {:?}: {summary}", leaks(&summary));

    let (status, answer) =
        app.post(&worker, "/api/v1/lookups", &json!({"subject": subject, "purpose": "s47-enquiry"})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let miss = json!({"given_name": GIVEN, "family_name": "Nobody", "date_of_birth": DOB});
    app.post(&worker, "/api/v1/lookups", &json!({"subject": miss, "purpose": "s47-enquiry"})).await;
    let invalid = json!({"nhs_number": format!("{NHS}1"), "postcode": format!("{POSTCODE}!")});
    app.post(&worker, "/api/v1/lookups", &json!({"subject": invalid, "purpose": "s47-enquiry"})).await;
    let match_id = answer["matches"][0]["match_id"].as_str().expect("a match").to_string();
    let (status, reply) = app
        .post(
            &worker,
            "/api/v1/requests",
            &json!({"match_id": match_id, "legal_basis": "ca1989-s47", "reason": "strategy discussion today",
                    "urgency": "urgent"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");

    // What the IG views hand out.
    let ig = app.token(&holder, Role::IgOfficer).await;
    let mut handed_out = String::new();
    for path in ["/api/v1/audit/events", "/api/v1/audit/events.csv", "/api/v1/audit/anomalies", "/api/v1/matches"] {
        let response = app.http.get(app.url(path)).bearer_auth(&ig).send().await.unwrap();
        handed_out.push_str(&response.text().await.unwrap());
    }
    let access = app
        .http
        .post(app.url("/api/v1/audit/subject-access"))
        .bearer_auth(&ig)
        .json(&json!({"subject": subject}))
        .send()
        .await
        .unwrap();
    handed_out.push_str(&access.text().await.unwrap());
    handed_out
}

#[suite::test]
async fn canaries_reach_no_file_export_or_view_on_sqlite() {
    let app = TestApp::start(Engine::Sqlite).await;
    let handed_out = feed_canaries(&app).await;
    assert!(leaks(&handed_out).is_empty(), "IG views: {:?}", leaks(&handed_out));

    let dir = app.db.dir.path();
    let settings = ["--database-url", &app.db.url];
    let keys = [
        "--key-file",
        &dir.join("locator.key").display().to_string(),
        "--audit-key-file",
        &dir.join("locator-audit.key").display().to_string(),
    ]
    .map(String::from);
    let export = dir.join("audit-export.ndjson");
    let backup = dir.join("backup.db");
    for command in [vec!["audit", "export", export.to_str().unwrap()], vec!["backup", backup.to_str().unwrap()]] {
        let out = common::cli::locator(dir).args(&command).args(settings).args(&keys).output().unwrap();
        assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let events = common::cli::locator(dir).args(["audit", "events"]).args(settings).args(&keys).output().unwrap();
    assert!(events.status.success() && !events.stdout.is_empty());
    assert!(leaks(&String::from_utf8_lossy(&events.stdout)).is_empty(), "audit events CLI");

    // The WAL before a checkpoint, then the main file after one.
    let files = [
        "locator.db",
        "locator.db-wal",
        "locator-audit.db",
        "locator-audit.db-wal",
        "audit-export.ndjson",
        "backup.db",
    ];
    for file in files {
        let Ok(bytes) = std::fs::read(dir.join(file)) else { continue };
        assert!(
            leaks(&String::from_utf8_lossy(&bytes)).is_empty(),
            "{file}: {:?}",
            leaks(&String::from_utf8_lossy(&bytes))
        );
    }
    app.store().execute_raw("PRAGMA wal_checkpoint(TRUNCATE)").await.unwrap();
    app.store().execute_raw_on_audit("PRAGMA wal_checkpoint(TRUNCATE)").await.unwrap();
    for file in ["locator.db", "locator-audit.db"] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        assert!(leaks(&String::from_utf8_lossy(&bytes)).is_empty(), "{file} after a checkpoint");
    }
}

#[suite::test(requires = common::postgres_available)]
async fn canaries_reach_no_table_of_a_postgresql_dump() {
    let app = TestApp::start(Engine::Postgres).await;
    let handed_out = feed_canaries(&app).await;
    assert!(leaks(&handed_out).is_empty(), "IG views: {:?}", leaks(&handed_out));
    let schema = app.db.url.rsplit("search_path%3D").next().expect("schema in url").to_string();
    let base = common::postgres_url().expect("a PostgreSQL server");
    let dump = std::process::Command::new("pg_dump")
        .args(["--data-only", "--schema", &schema, "--dbname", &base])
        .output()
        .expect("pg_dump runs");
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(text.contains("COPY"), "the dump has the tables' data");
    assert!(leaks(&text).is_empty(), "{:?} in the PostgreSQL data", leaks(&text));
}

/// Captures every log line (all levels) written on this thread while it is set.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A sign-in through an identity provider (and a replay, and an expired one): no code, state,
/// ID token, access token or client secret reaches a log line, the audit trail or the database.
#[suite::test(each_engine, requires = common::oidc::provider_available)]
async fn no_provider_code_state_token_or_secret_reaches_a_log_line_or_the_database(engine: Engine) {
    use common::oidc::{Browser, IdP, client, clock_to_now, configure_org, query_param};
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = TestApp::start(engine).await;
    clock_to_now(&app);
    app.org("E06000001", "local-authority").await;
    let secret = "canary-idp-secret-5b7e0c";
    let idp = IdP::start(&[client("client-a", secret, &app)]);
    configure_org(&app, &idp, "E06000001", "client-a", secret).await;
    idp.account("lee", json!({"name": "Lee", "groups": ["sw"]})).await;
    idp.login_as("lee").await;
    let mut browser = Browser::default();
    let callback = browser.until_callback(&app, "E06000001").await;
    assert_eq!(browser.get(&callback).await.status, StatusCode::OK);
    assert_eq!(browser.get(&callback).await.status, StatusCode::FORBIDDEN, "a replay, refused and audited");
    idp.configure(json!({"idTokenTtl": 1})).await;
    let late = browser.until_callback(&app, "E06000001").await;
    app.clock.advance_ms(120_000);
    assert_eq!(browser.get(&late).await.status, StatusCode::FORBIDDEN, "expired, refused and audited");

    let session = browser.cookie(&app, "locator-session").expect("session");
    let mut canaries = vec![secret.to_string(), session];
    for url in [&callback, &late] {
        canaries.push(query_param(url, "code").unwrap());
        canaries.push(query_param(url, "state").unwrap());
    }
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
    assert!(logs.contains("identity provider"), "the capture sees the sign-in's log lines");
    for canary in &canaries {
        assert!(!logs.contains(canary.as_str()), "{engine:?}: a log line carries a code, state or secret");
    }
    // Any JWT (an ID token, an access token, a client assertion) starts `eyJ`.
    assert!(!logs.contains("eyJ"), "{engine:?}: a log line carries a token");
    let audit = serde_json::to_string(&app.audit_bodies().await).unwrap();
    for canary in &canaries {
        assert!(!audit.contains(canary.as_str()), "{engine:?}: the audit trail carries a secret");
    }
    assert!(!audit.contains("eyJ"));
    let refs: Vec<&str> = canaries.iter().map(String::as_str).collect();
    app.assert_db_files_free_of(&refs);
}
