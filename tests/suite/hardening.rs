//! Hostile and broken clients: a handler that panics, clients that send slowly or never finish,
//! bodies over the limit, malformed caseload files. Each is refused cleanly, leaks nothing, and
//! leaves the server answering everyone else.

use crate::common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use child_locator::clock::Clock;
use child_locator::domain::role::Role;
use child_locator::http::{AppState, router_with};
use child_locator::service::Service;
use common::server::Server;
use common::{Engine, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

const CANARY: &str = "Xanthippe Gollancz-Mbeki 9434765919";

/// A log sink the test can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[suite::test]
async fn a_handler_that_panics_gets_a_generic_500_the_panic_is_logged_and_its_message_is_not() {
    let log = Captured::default();
    let sink = log.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || sink.clone()).with_ansi(false).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    child_locator::telemetry::install_panic_hook();

    let db = TestDb::new(Engine::Sqlite).await;
    let (service, _task) = Service::open(db.settings(), Clock::manual(common::START_MS)).await.expect("service");
    // A route the API does not have, inside the same middleware as every real handler.
    async fn boom() -> &'static str {
        panic!("identifier in panic: {CANARY}")
    }
    let boom = Router::new().route("/boom", axum::routing::get(boom));
    let app = router_with(AppState::new(service), boom);

    let response = app.clone().oneshot(Request::get("/boom").body(Body::empty()).unwrap()).await.unwrap();
    let _ = std::panic::take_hook(); // back to the default hook for the other tests in this binary
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.headers().contains_key("x-request-id"), "the 500 carries a request id to quote");
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap();
    let body: Value = serde_json::from_slice(&body).expect("the contract's JSON error shape");
    assert_eq!(body["error"]["code"], "internal");
    assert!(!body.to_string().contains("Xanthippe") && !body.to_string().contains("9434765919"), "{body}");

    let log = log.text();
    assert!(log.contains("a request handler panicked"), "the panic is logged: {log}");
    assert!(log.contains("panic (message withheld"), "with its location: {log}");
    assert!(!log.contains("Xanthippe") && !log.contains("9434765919"), "but not its message: {log}");

    let after = app.oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(after.status(), StatusCode::OK, "the service goes on answering");
}

#[suite::test(each_engine)]
async fn a_body_over_the_limit_is_refused_with_413(engine: Engine) {
    let app = TestApp::start_with(engine, |s| {
        s.max_body_bytes = 4 * 1024;
        s.max_sync_bytes = 4 * 1024;
    })
    .await;
    let org = app.org("E1", "local-authority").await;
    let worker = app.token(&org, Role::Practitioner).await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let padding = "x".repeat(8 * 1024);
    let body = json!({"subject": {"given_name": "Amy"}, "purpose": "other", "purpose_detail": padding});
    let (status, error) = app.post(&worker, "/api/v1/lookups", &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{engine:?}: {error}");
    assert_eq!(error["error"]["code"], "too_large");

    let mut csv = String::from("local_ref,category,status,given_name,family_name,date_of_birth\n");
    for i in 0..200 {
        csv.push_str(&format!("R-{i},other,open,Amy,Okafor{i},2015-06-01\n"));
    }
    let response = app
        .http
        .post(app.url("/api/v1/holdings/sync"))
        .bearer_auth(&admin)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let (status, error) = common::split(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{engine:?}: an oversized caseload: {error}");
    assert_eq!(error["error"]["code"], "too_large");
}

#[suite::test]
async fn malformed_ndjson_and_csv_lines_are_rejected_by_line_and_the_rest_is_kept() {
    let app = TestApp::start(Engine::Sqlite).await;
    let org = app.org("E1", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let sync = |content_type: &'static str, body: Vec<u8>| {
        let request = app.http.post(app.url("/api/v1/holdings/sync")).bearer_auth(&admin);
        async move { common::split(request.header("content-type", content_type).body(body).send().await.unwrap()).await }
    };
    let good = r#"{"local_ref": "N-1", "category": "other", "status": "open", "subject": {"given_name": "Amy", "family_name": "Okafor", "date_of_birth": "2015-06-01"}}"#;
    let ndjson = format!("{good}\n{{\"local_ref\": \"N-2\", \"category\": \n[1, 2]\n\u{0}\u{1}garbage\n");
    let (status, summary) = sync("application/x-ndjson", ndjson.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["added"], 1);
    let lines: Vec<u64> = summary["rejected"].as_array().unwrap().iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [2, 3, 4], "{summary}");

    let mut csv =
        b"local_ref,category,status,given_name,family_name,date_of_birth\nC-1,other,open,Ben,Adeyemi,2014-01-02\n"
            .to_vec();
    csv.extend_from_slice(b"C-2,other,open,\xff\xfe\xfd,Adeyemi,2014-01-02\n");
    csv.extend_from_slice(b"C-3,other\n");
    let (status, summary) = sync("text/csv", csv).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["added"], 1, "{summary}");
    let lines: Vec<u64> = summary["rejected"].as_array().unwrap().iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert!(lines.contains(&3) && lines.contains(&4), "{summary}");

    let (status, error) = sync("text/csv", b"\xff\xfe\x00\x01binary\x00".to_vec()).await;
    assert!(status.is_client_error(), "a binary file is refused: {status} {error}");
    assert_eq!(app.get(&admin, "/api/v1/holdings/C-1").await.0, StatusCode::OK, "a refused file removes nothing");
}

/// A `locator serve` with a short request budget, and a practitioner token for it.
fn short_budget_server() -> (tempfile::TempDir, Server, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("locator.toml"), "request_timeout_secs = 2\n").unwrap();
    common::cli::add_org(dir.path(), "E1", "local-authority");
    let out =
        common::cli::run(dir.path(), &["user", "add", "--org", "E1", "--name", "Worker", "--role", "practitioner"]);
    let token = common::cli::stdout(&out).trim_end().lines().last().unwrap().to_string();
    let config = dir.path().join("locator.toml").display().to_string();
    let server = Server::start(dir.path(), &[("LOCATOR_CONFIG", &config)]);
    (dir, server, token)
}

/// Sends `head` and then one byte of `dribble` every 200 ms until the server answers or
/// closes the connection, or the dribble runs out. Returns what the server sent, or None if it
/// never gave up on us.
async fn dribble(addr: &str, head: &[u8], dribble: &[u8]) -> Option<String> {
    let (mut reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
    writer.write_all(head).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    for byte in dribble {
        tokio::select! {
            read = reader.read(&mut buf) => {
                match read {
                    Ok(0) | Err(_) => return Some(String::from_utf8_lossy(&answer).into_owned()),
                    Ok(n) => {
                        answer.extend_from_slice(&buf[..n]);
                        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                            return Some(String::from_utf8_lossy(&answer).into_owned());
                        }
                    }
                }
            }
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if writer.write_all(&[*byte]).await.is_err() {
                    return Some(String::from_utf8_lossy(&answer).into_owned());
                }
            }
        }
    }
    None
}

#[suite::test(multi_thread)]
async fn a_client_that_sends_its_headers_slowly_is_cut_off_and_others_are_still_served() {
    let (_dir, server, _token) = short_budget_server();
    // Endless header lines, one byte at a time: without a header deadline this never ends.
    let endless: Vec<u8> = b"X-Slow: a\r\n".iter().copied().cycle().take(150).collect();
    let mut slow = Vec::new();
    for _ in 0..20 {
        let addr = server.addr.clone();
        let endless = endless.clone();
        slow.push(tokio::spawn(async move { dribble(&addr, b"GET /healthz HTTP/1.1\r\nHost: a\r\n", &endless).await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "others are served while 20 slow clients hang on");
    for task in slow {
        let answer = task.await.unwrap();
        let answer = answer.expect("the server closed the slow connection before the 30 s dribble ran out");
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[suite::test(multi_thread)]
async fn a_client_that_never_finishes_its_body_gets_408() {
    let (_dir, server, token) = short_budget_server();
    let head = format!(
        "POST /api/v1/lookups HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"subject\": "
    );
    let answer = dribble(&server.addr, head.as_bytes(), &[b' '; 150]).await;
    let answer = answer.expect("the server gave up on the body before the 30 s dribble ran out");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("content-type: application/json"), "the contract's error shape: {answer}");
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

/// A caseload sync streams a large file and is bounded by its size limit, not by the request
/// budget: a body still arriving after the budget (2 s here) is read to the end and synced.
#[suite::test(multi_thread)]
async fn a_caseload_sync_still_arriving_after_the_request_budget_is_completed() {
    let (dir, server, _token) = short_budget_server();
    let out = common::cli::run(dir.path(), &["user", "add", "--org", "E1", "--name", "Admin", "--role", "org-admin"]);
    let admin = common::cli::stdout(&out).trim_end().lines().last().unwrap().to_string();
    let body =
        "local_ref,category,status,given_name,family_name,date_of_birth\nC-1,other,open,Ben,Adeyemi,2014-01-02\n";
    let (first, rest) = body.split_at(body.len() - 20);
    let head = format!(
        "POST /api/v1/holdings/sync HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: text/csv\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first}",
        body.len()
    );
    let mut stream = TcpStream::connect(&server.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The last 20 bytes one every 200 ms: the body ends about 4 s in, twice the budget.
    for byte in rest.bytes() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stream.write_all(&[byte]).await.unwrap();
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the server answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"added\":1"), "{answer}");
}

/// A `locator serve` with these `[connections]` settings.
fn server_with_connections(connections: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("locator.toml"), format!("request_timeout_secs = 30\n[connections]\n{connections}"))
        .unwrap();
    let config = dir.path().join("locator.toml").display().to_string();
    let server = Server::start(dir.path(), &[("LOCATOR_CONFIG", &config)]);
    (dir, server)
}

/// Reads until the server closes the connection (or resets it); panics if it has not within
/// `patience`, far longer than the timeouts under test. Returns what was read.
async fn read_until_closed(stream: &mut TcpStream, patience: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(patience, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept the connection open: {}", String::from_utf8_lossy(&seen));
    seen
}

#[suite::test(multi_thread)]
async fn an_idle_keep_alive_connection_is_closed_by_the_server() {
    let (_dir, server) = server_with_connections("idle_timeout_secs = 1\n");
    let mut stream = TcpStream::connect(&server.addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    // The answer, then nothing: the client keeps the connection open and sends no more.
    let seen = read_until_closed(&mut stream, Duration::from_secs(20)).await;
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&seen));
}

#[suite::test(multi_thread)]
async fn a_bare_http2_preface_or_a_silent_socket_is_closed_by_the_server() {
    let (_dir, server) = server_with_connections("idle_timeout_secs = 1\n");
    let mut preface = TcpStream::connect(&server.addr).await.unwrap();
    preface.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    let mut silent = TcpStream::connect(&server.addr).await.unwrap();
    read_until_closed(&mut preface, Duration::from_secs(20)).await;
    read_until_closed(&mut silent, Duration::from_secs(20)).await;
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[suite::test(multi_thread)]
async fn shutdown_drains_even_with_a_bare_http2_preface_open() {
    let (_dir, server) = server_with_connections("idle_timeout_secs = 1\n");
    let mut preface = TcpStream::connect(&server.addr).await.unwrap();
    preface.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // An HTTP/2 handshake that never completes must not hold the drain open.
    let stopped = tokio::time::timeout(Duration::from_secs(20), tokio::task::spawn_blocking(move || server.stop()))
        .await
        .expect("serve exits while the preface connection is still open")
        .unwrap();
    assert!(stopped.success(), "{stopped}");
    drop(preface);
}

/// A connection to `addr` from the loopback address `from` (Linux routes all of 127/8 locally).
async fn connect_from(from: [u8; 4], addr: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
    socket.connect(addr.parse().unwrap()).await.unwrap()
}

async fn health_over(stream: &mut TcpStream) -> String {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await.unwrap();
    String::from_utf8_lossy(&read_until_closed(stream, Duration::from_secs(20)).await).into_owned()
}

#[suite::test(multi_thread)]
async fn a_client_over_its_connection_cap_is_refused_at_once_and_another_client_is_served() {
    const CAP: usize = 4;
    let (_dir, server) = server_with_connections(&format!("idle_timeout_secs = 60\nmax_per_client = {CAP}\n"));
    let mut held = Vec::new();
    for _ in 0..CAP {
        let mut stream = connect_from([127, 0, 0, 1], &server.addr).await;
        // A request each, so every connection is surely admitted before the next one comes.
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    let mut extra = connect_from([127, 0, 0, 1], &server.addr).await;
    let refused = String::from_utf8_lossy(&read_until_closed(&mut extra, Duration::from_secs(20)).await).into_owned();
    assert!(refused.starts_with("HTTP/1.1 503"), "refused, with a reason: {refused}");
    assert!(refused.contains("too_many_connections"), "{refused}");

    let mut other = connect_from([127, 0, 0, 2], &server.addr).await;
    let answer = health_over(&mut other).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "another client is still served: {answer}");

    drop(held.pop());
    let mut served = None;
    for _ in 0..50 {
        let answer = health_over(&mut connect_from([127, 0, 0, 1], &server.addr).await).await;
        if answer.starts_with("HTTP/1.1 200") {
            served = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served.is_some(), "a closed connection gives its place back");
}

#[suite::test]
async fn a_bad_query_or_path_parameter_gets_the_json_error_naming_it_and_not_its_value() {
    let app = TestApp::start(Engine::Sqlite).await;
    let org = app.org("E1", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let ig = app.token(&org, Role::IgOfficer).await;
    let too_big = "99999999999999999999";
    let cases = [
        (&admin, format!("/api/v1/lookups/received?limit={too_big}"), "limit"),
        (&admin, "/api/v1/requests?limit=many".to_string(), "limit"),
        (&admin, "/api/v1/organisations?include_inactive=perhaps".to_string(), "include_inactive"),
        (&ig, format!("/api/v1/audit/proof/inclusion?seq={too_big}"), "seq"),
        (&ig, "/api/v1/audit/proof/inclusion?tree_size=-1".to_string(), "tree_size"),
    ];
    for (token, path, field) in cases {
        let (status, body) = app.get(token, &path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["field"], field, "{path}: the contract's JSON error naming the parameter: {body}");
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
        assert!(!body.to_string().contains(too_big) && !body.to_string().contains("perhaps"), "{path}: {body}");
    }
    for path in [format!("/api/v1/users/{too_big}/revoke"), "/api/v1/users/Amelia/revoke".to_string()] {
        let (status, body) = app.post(&admin, &path, &json!({})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["field"], "id", "{path}: {body}");
        assert!(!body.to_string().contains(too_big) && !body.to_string().contains("Amelia"), "{path}: {body}");
    }
}

#[suite::test]
async fn a_bad_header_or_body_gets_the_json_error_shape_too() {
    let app = TestApp::start(Engine::Sqlite).await;
    let org = app.org("E1", "local-authority").await;
    let worker = app.token(&org, Role::Practitioner).await;
    let url = app.url("/api/v1/lookups");
    let cases = [
        ("content-type", app.http.post(&url).bearer_auth(&worker).header("content-type", "text/plain").body("{}")),
        (
            "broken json",
            app.http.post(&url).bearer_auth(&worker).header("content-type", "application/json").body("{\"purpose\": "),
        ),
        ("basic auth", app.http.post(&url).header("authorization", "Basic Zm9vOmJhcg==").json(&json!({}))),
        ("unknown token", app.http.post(&url).bearer_auth("clk_not-a-token").json(&json!({}))),
    ];
    for (case, request) in cases {
        let response = request.send().await.unwrap();
        let status = response.status();
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
        let (_, body) = common::split(response).await;
        assert!(status.is_client_error(), "{case}: {status} {body}");
        assert_eq!(content_type.as_deref(), Some("application/json"), "{case}: {body}");
        assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string(), "{case}: {body}");
    }
}
