//! The `locator` command line, run as a newcomer or an operator would.

use crate::common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::cli::{add_org, locator, stdout};

#[suite::test]
fn a_flag_beats_the_environment_which_beats_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("locator.toml"), "bind = \"127.0.0.1:7000\"\nlog_format = \"json\"\n").unwrap();
    let out = locator(dir.path())
        .args(["--config", "locator.toml", "config"])
        .env("LOCATOR_BIND", "127.0.0.1:7001")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("bind = 127.0.0.1:7001  (flag/env)"), "{text}");
    assert!(text.contains("log_format = json  (file)"), "{text}");
    assert!(text.contains("database_url = sqlite://locator.db  (default)"), "{text}");

    let out = locator(dir.path())
        .args(["--config", "locator.toml", "--bind", "127.0.0.1:7002", "config"])
        .env("LOCATOR_BIND", "127.0.0.1:7001")
        .output()
        .unwrap();
    assert!(stdout(&out).contains("bind = 127.0.0.1:7002"));
}

#[suite::test]
fn invalid_configuration_fails_at_start_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = locator(dir.path()).arg("serve").env("LOCATOR_BIND", "not-an-address").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("LOCATOR_BIND"), "{err}");
}

#[suite::test]
fn org_add_then_user_add_prints_the_token_alone_on_the_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = locator(dir.path())
        .args(["org", "add", "--code", "E09000033", "--name", "Westminster", "--kind", "local-authority"])
        .args(["--duty-phone", "020 7641 4000", "--secure-email", "mash@westminster.gov.uk"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("created a new index secret"), "the first run says it made a key: {err}");
    let mode = std::fs::metadata(dir.path().join("locator.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let out = locator(dir.path())
        .args(["user", "add", "--org", "E09000033", "--name", "Pat Duty", "--role", "practitioner"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    let last = text.trim_end().lines().last().unwrap();
    assert!(last.starts_with("clk_") && last.len() == 47, "{last}");

    let out = locator(dir.path()).args(["user", "list", "--org", "E09000033"]).output().unwrap();
    assert!(stdout(&out).contains("Pat Duty\tpractitioner"));
    assert!(!stdout(&out).contains(last), "the token is shown once only");
}

#[suite::test]
fn org_add_names_the_bad_option() {
    let dir = tempfile::tempdir().unwrap();
    let out = locator(dir.path())
        .args(["org", "add", "--code", "X1", "--name", "X", "--kind", "council"])
        .args(["--duty-phone", "01632 960000", "--secure-email", "x@example.org"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kind"));
}

#[suite::test]
fn org_areas_sets_where_an_organisation_works_and_refuses_a_full_postcode() {
    let dir = tempfile::tempdir().unwrap();
    let out = locator(dir.path())
        .args(["org", "add", "--code", "E06000045", "--name", "Southampton", "--kind", "local-authority"])
        .args(["--duty-phone", "023 8083 3336", "--secure-email", "mash@southampton.gov.uk"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = locator(dir.path()).args(["org", "areas", "e06000045", "so14,", "SO15", "so"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out).trim(), "E06000045 covers SO SO14 SO15");
    // A full postcode is one household, not an area: refused, without echoing it.
    let out = locator(dir.path()).args(["org", "areas", "E06000045", "SO14 3AA"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--areas") && !err.contains("3AA"), "{err}");
    let out = locator(dir.path()).args(["org", "areas", "E06000045"]).output().unwrap();
    assert_eq!(stdout(&out).trim(), "E06000045 covers everywhere");
    let out = locator(dir.path()).args(["org", "areas", "NOPE", "SO14"]).output().unwrap();
    assert!(!out.status.success(), "an unknown organisation");
}

#[suite::test]
fn key_generate_creates_a_private_file_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let out = locator(dir.path()).args(["key", "generate"]).env("LOCATOR_KEY_FILE", "index.key").output().unwrap();
    assert!(out.status.success());
    let meta = std::fs::metadata(dir.path().join("index.key")).unwrap();
    assert_eq!(meta.len(), 32);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let again = locator(dir.path()).args(["key", "generate"]).env("LOCATOR_KEY_FILE", "index.key").output().unwrap();
    assert!(!again.status.success());
}

#[suite::test]
fn serve_answers_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = locator(dir.path())
        .arg("serve")
        .env("LOCATOR_BIND", "127.0.0.1:0")
        .env("LOCATOR_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("serve logs its address").unwrap();
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let health = std::process::Command::new("curl").args(["-sf", &format!("http://{addr}/healthz")]).output();
    if let Ok(out) = health {
        assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
    }
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "graceful shutdown exits 0");
    assert!(dir.path().join("locator.db").exists() && dir.path().join("locator.key").exists());
}

#[suite::test]
fn audit_verify_passes_on_an_intact_trail() {
    let dir = tempfile::tempdir().unwrap();
    add_org(dir.path(), "E1", "other");
    let out = locator(dir.path()).args(["audit", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("audit trail intact"), "{}", stdout(&out));
    assert!(stdout(&out).contains("signatures valid"));
}

#[suite::test]
fn import_prints_a_summary_and_fails_only_when_nothing_can_be_read() {
    let dir = tempfile::tempdir().unwrap();
    add_org(dir.path(), "E2", "local-authority");
    std::fs::write(
        dir.path().join("caseload.csv"),
        "local_ref,category,status,given_name,family_name,date_of_birth\nA1,early-help,open,Amy,Okafor,2015-06-01\nA2,early-help,open,,,\n",
    )
    .unwrap();
    let out = locator(dir.path()).args(["import", "--org", "E2", "--dry-run", "caseload.csv"]).output().unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).contains("1 added") && stdout(&out).contains("would be"), "{}", stdout(&out));
    let out = locator(dir.path()).args(["import", "--org", "E2", "caseload.csv"]).output().unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("2 rows read: 1 added") && text.contains("1 rejected") && text.contains("line 3"), "{text}");
    let out = locator(dir.path()).args(["import", "--org", "E2", "caseload.csv"]).output().unwrap();
    assert!(stdout(&out).contains("0 added, 0 updated, 1 unchanged"), "the same file again: {}", stdout(&out));

    std::fs::write(dir.path().join("junk.csv"), "Amy,Okafor\n").unwrap();
    let out = locator(dir.path()).args(["import", "--org", "E2", "junk.csv"]).output().unwrap();
    assert!(!out.status.success(), "nothing readable is a failure");
}

#[suite::test]
fn key_rotate_then_retire_refuses_until_holders_re_sync() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| locator(dir.path()).args(args).output().unwrap();
    add_org(dir.path(), "E3", "local-authority");
    std::fs::write(dir.path().join("c.csv"), "local_ref,category,status,nhs_number\nA1,early-help,open,9074833780\n")
        .unwrap();
    assert!(run(&["import", "--org", "E3", "c.csv"]).status.success());
    let out = run(&["key", "rotate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("locator.key.previous").exists());
    assert!(!run(&["key", "rotate"]).status.success(), "one rotation at a time");
    let out = run(&["key", "retire"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("E3: 1 holdings"));
    assert!(run(&["import", "--org", "E3", "c.csv"]).status.success());
    let out = run(&["key", "status"]);
    assert!(stdout(&out).contains("previous key"));
    let out = run(&["key", "retire"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.path().join("locator.key.previous").exists());
}

#[suite::test]
fn purge_reports_what_it_would_remove() {
    let dir = tempfile::tempdir().unwrap();
    let out = locator(dir.path()).args(["purge", "--dry-run"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("would purge 0 closed holdings (closed more than 730 days ago)"), "{}", stdout(&out));
}

#[suite::test]
fn serve_refuses_plain_http_on_a_public_address_unless_explicitly_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out = locator(dir.path()).arg("serve").env("LOCATOR_BIND", "0.0.0.0:0").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("LOCATOR_ALLOW_PUBLIC_HTTP=yes"), "{err}");
    assert!(!dir.path().join("locator.db").exists(), "refused before touching anything");

    // Allowed explicitly, it starts (and is killed once it has logged its address; graceful
    // shutdown has its own test).
    let mut child = locator(dir.path())
        .arg("serve")
        .env("LOCATOR_BIND", "0.0.0.0:0")
        .env("LOCATOR_ALLOW_PUBLIC_HTTP", "yes")
        .env("LOCATOR_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = lines.by_ref().map_while(Result::ok).any(|line| line.contains("addr="));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(listening, "serve started when explicitly allowed");
}

#[suite::test]
fn backup_writes_a_private_consistent_copy_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    add_org(dir.path(), "E1", "other");
    let out = locator(dir.path()).args(["backup", "copy.db"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("integrity ok"), "{}", stdout(&out));
    let mode = std::fs::metadata(dir.path().join("copy.db")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = locator(dir.path()).args(["backup", "copy.db"]).output().unwrap();
    assert!(!again.status.success(), "an existing file is never overwritten");

    // The copy is a working index: its audit trail verifies and records the backup itself.
    let out = locator(dir.path()).args(["--database-url", "sqlite://copy.db", "audit", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    let out = locator(dir.path())
        .args(["backup", "pg.dump"])
        .env("LOCATOR_DATABASE_URL", "postgres://x@127.0.0.1:1/x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
}

/// Runs `serve` with debug logging, sends valid and invalid canary identifiers through every
/// write and read path, and proves none of them reaches a log line or the metrics.
#[suite::test]
fn canary_identifiers_never_reach_logs_or_metrics() {
    let dir = tempfile::tempdir().unwrap();
    add_org(dir.path(), "E4", "local-authority");
    let admin = common::cli::run(dir.path(), &["user", "add", "--org", "E4", "--name", "Admin", "--role", "org-admin"]);
    let admin = stdout(&admin).trim_end().lines().last().unwrap().to_string();
    let worker =
        common::cli::run(dir.path(), &["user", "add", "--org", "E4", "--name", "Worker", "--role", "practitioner"]);
    let worker = stdout(&worker).trim_end().lines().last().unwrap().to_string();
    let mut child = locator(dir.path())
        .arg("serve")
        .env("LOCATOR_BIND", "127.0.0.1:0")
        .env("LOCATOR_LOG", "debug")
        .env("LOCATOR_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let addr = loop {
        let line = lines.next().expect("serve logs its address").unwrap();
        log.push_str(&line);
        if let Some(rest) = line.split("\"addr\":\"").nth(1) {
            break rest.split('"').next().unwrap().to_string();
        }
    };
    // Drain the log as it is written: a full pipe would block the server mid-request.
    let drained = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().concat());
    let curl = |method: &str, path: &str, token: &str, body: &str| {
        let out = Command::new("curl")
            .args([
                "-s",
                "-X",
                method,
                &format!("http://{addr}{path}"),
                "-H",
                &format!("Authorization: Bearer {token}"),
            ])
            .args(["-H", "Content-Type: application/json", "-d", body])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let canaries = [
        "Zephyrine",
        "Quillbottom",
        "9434765919",
        "2013-07-21",
        "SW1A 2AA",
        "Marigoldina",
        "Thistlewhite",
        "8762328603",
        "8762328604",
        "1994-02-11",
        "2026-12-19",
    ];
    let good = r#"{"category": "child-in-need", "status": "open", "subject": {"nhs_number": "9434765919", "given_name": "Zephyrine", "family_name": "Quillbottom", "date_of_birth": "2013-07-21", "postcode": "SW1A 2AA"}}"#;
    let bad = r#"{"category": "child-in-need", "status": "open", "subject": {"nhs_number": "9434765918", "given_name": "Zephyrine", "date_of_birth": "2013-07-21x", "postcode": "SW1A 2AA!"}}"#;
    curl("PUT", "/api/v1/holdings/C-1", &admin, good);
    curl("PUT", "/api/v1/holdings/C-2", &admin, bad);
    curl(
        "POST",
        "/api/v1/lookups",
        &worker,
        r#"{"subject": {"given_name": "Zephyrine", "family_name": "Quillbottom", "date_of_birth": "2013-07-21"}, "purpose": "s47-enquiry"}"#,
    );
    curl("POST", "/api/v1/lookups", &worker, r#"{"subject": {"nhs_number": 9434765919}, "purpose": "s47-enquiry"}"#);
    // Families: a carer (valid and invalid), a pre-birth record, a family lookup.
    let carer = r#"{"nhs_number": "8762328603", "given_name": "Marigoldina", "family_name": "Thistlewhite", "date_of_birth": "1994-02-11"}"#;
    let bad_carer = r#"{"nhs_number": "8762328604", "given_name": "Marigoldina", "date_of_birth": "1994-02-11x"}"#;
    let with_carer = curl(
        "PUT",
        "/api/v1/holdings/F-1",
        &admin,
        &good.replace(r#""status": "open","#, &format!(r#""status": "open", "carers": [{carer}],"#)),
    );
    curl(
        "PUT",
        "/api/v1/holdings/F-2",
        &admin,
        &good.replace(r#""status": "open","#, &format!(r#""status": "open", "carers": [{bad_carer}],"#)),
    );
    curl(
        "PUT",
        "/api/v1/holdings/F-3",
        &admin,
        &format!(
            r#"{{"category": "pre-birth", "status": "open", "subject": {{"expected_date": "2026-12-19"}}, "carers": [{carer}]}}"#
        ),
    );
    curl(
        "POST",
        "/api/v1/lookups",
        &worker,
        &format!(r#"{{"family": {{"children": [], "carers": [{carer}, {bad_carer}]}}, "purpose": "s47-enquiry"}}"#),
    );
    let family = curl(
        "POST",
        "/api/v1/lookups",
        &worker,
        &format!(r#"{{"family": {{"carers": [{carer}]}}, "purpose": "s47-enquiry"}}"#),
    );
    assert!(with_carer.contains(r#""carers":1"#), "{with_carer}");
    assert!(family.contains("family_matches"), "{family}");
    // The same identifiers through the web pages: signed in with a cookie, posted as forms.
    let jar = dir.path().join("cookies.txt");
    let page = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-c", jar.to_str().unwrap(), "-b", jar.to_str().unwrap()])
            .args(args)
            .output();
        String::from_utf8_lossy(&out.unwrap().stdout).into_owned()
    };
    let csrf = |html: &str| html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let sign_in = page(&[&format!("http://{addr}/sign-in")]);
    page(&["-d", &format!("csrf={}&token={worker}", csrf(&sign_in)), &format!("http://{addr}/sign-in")]);
    let form = page(&[&format!("http://{addr}/lookup")]);
    let token = csrf(&form);
    // `-L`: the lookup answers 303 to the answer's own address (POST -> redirect -> GET).
    let answered =
        |fields: &str| page(&["-L", "-d", &format!("csrf={token}&{fields}"), &format!("http://{addr}/lookup")]);
    let known = answered(
        "purpose=s47-enquiry&given_name=Zephyrine&family_name=Quillbottom&dob_day=21&dob_month=7&dob_year=2013&postcode=SW1A+2AA",
    );
    assert!(known.contains("Known to 1 organisation"), "the page lookup went through: {known}");
    let refused = answered("purpose=s47-enquiry&nhs_number=9434765918&dob_day=21&dob_year=2013");
    assert!(refused.contains("There is a problem"), "{refused}");
    let metrics = curl("GET", "/metrics", "", "");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
    log.push_str(&drained.join().unwrap());
    assert!(log.contains("request"), "debug logging was on: {log}");
    assert!(metrics.contains("locator_http_requests_total"));
    assert!(metrics.contains("\nlocator_audit_searches_unindexed "), "the indexing backlog is a gauge: {metrics}");
    for canary in canaries {
        assert!(!log.contains(canary), "{canary} reached the log");
        assert!(!metrics.contains(canary), "{canary} reached the metrics");
    }
}
