//! A sync's memory stays flat whatever the file's shape: a single line of 20 MB is refused as
//! it streams past, never held. The server runs in this test process, so its peak resident
//! memory (VmHWM) is this process's; it runs `isolated`, in a process of its own, so nothing else runs beside it.

use crate::common;
use crate::common::Engine;

use child_locator::domain::role::Role;
use common::TestApp;
use reqwest::StatusCode;

/// A kilobyte count from /proc/self/status (`VmRSS`, `VmHWM`).
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with(field)).expect("field");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number")
}

/// Peak memory growth (MB) while the server handles one sync of `body`.
async fn peak_growth_mb(app: &TestApp, admin: &str, content_type: &str, body: String) -> (u64, serde_json::Value) {
    // Start the peak afresh where the kernel allows it; else the body just built is the peak.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kb("VmHWM:");
    let (status, answer) = app.sync(admin, content_type, body, "").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    (status_kb("VmHWM:").saturating_sub(before) / 1024, answer)
}

#[suite::test(each_engine, multi_thread, isolated)]
async fn a_20_mb_line_is_rejected_without_the_server_holding_it(engine: Engine) {
    const LINE_BYTES: usize = 20 * 1024 * 1024;
    // Less than the line itself: a server that held the line once would pass this bound.
    const BOUND_MB: u64 = 16;
    let app = TestApp::start(engine).await;
    let org = app.org("E08000003", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;

    let header = "local_ref,category,status,nhs_number,upn,given_name,family_name,date_of_birth,postcode";
    let csv = format!("{header}\nR-1,other,open,,,{},Okafor,2015-06-01,\n", "A".repeat(LINE_BYTES));
    let (grown, answer) = peak_growth_mb(&app, &admin, "text/csv", csv).await;
    eprintln!("{engine:?}: a 20 MB CSV line: peak memory grew by {grown} MB");
    assert!(grown < BOUND_MB, "{engine:?}: a 20 MB CSV line grew peak memory by {grown} MB");
    assert_eq!(
        (answer["rejected"][0]["line"].as_u64(), answer["rejected"][0]["field"].as_str()),
        (Some(2), Some("line"))
    );

    let ndjson = format!(
        r#"{{"local_ref": "N-1", "category": "other", "subject": {{"given_name": "{}"}}}}"#,
        "A".repeat(LINE_BYTES)
    );
    let (grown, answer) = peak_growth_mb(&app, &admin, "application/x-ndjson", ndjson).await;
    eprintln!("{engine:?}: a 20 MB NDJSON line: peak memory grew by {grown} MB");
    assert!(grown < BOUND_MB, "{engine:?}: a 20 MB NDJSON line grew peak memory by {grown} MB");
    assert_eq!(
        (answer["rejected"][0]["line"].as_u64(), answer["rejected"][0]["field"].as_str()),
        (Some(1), Some("line"))
    );
}
