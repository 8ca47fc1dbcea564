//! The outbox and webhook delivery on every engine: signed deliveries to a local receiver,
//! retries with backoff on the manual clock, dead messages, and each organisation's own view.
// The test's webhook receiver is a plain axum app, not the API (clippy.toml).
#![allow(clippy::disallowed_types)]

use crate::common;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use child_locator::domain::role::Role;
use common::fixtures::{LEEDS, YORK, org_with, register};
use common::{Engine, TestApp};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    signature: String,
    timestamp: String,
    body: String,
}

/// A webhook receiver on 127.0.0.1:0 that records every POST and answers with `status`.
struct Receiver {
    base: String,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    async fn start() -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (g, s) = (got.clone(), status.clone());
        let app = axum::Router::new().route(
            "/{who}",
            axum::routing::post(
                move |axum::extract::Path(who): axum::extract::Path<String>, headers: HeaderMap, body: String| {
                    let (g, s) = (g.clone(), s.clone());
                    async move {
                        let header =
                            |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                        g.lock().unwrap().push(Received {
                            path: who,
                            signature: header("x-locator-signature"),
                            timestamp: header("x-locator-timestamp"),
                            body,
                        });
                        axum::http::StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap()
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { base, got, status }
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// What a receiver does: recompute the HMAC-SHA256 of the raw body with the secret it was shown.
fn signature_is_valid(secret: &str, r: &Received) -> bool {
    let Some(hex_sig) = r.signature.strip_prefix("sha256=") else { return false };
    let Ok(expected) = hex::decode(hex_sig) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(r.body.as_bytes());
    mac.verify_slice(&expected).is_ok()
}

fn child() -> Value {
    json!({"nhs_number": "9074833780", "given_name": "Zebedee", "family_name": "Quillfeather",
           "date_of_birth": "2014-05-09", "postcode": "LS1 4AP"})
}

struct World {
    app: TestApp,
    receiver: Receiver,
    leeds_admin: String,
    york_admin: String,
    leeds_secret: String,
    york_secret: String,
}

/// Leeds and York each set a webhook on the receiver; at most 3 attempts per message.
async fn world(engine: Engine) -> World {
    let app = TestApp::start_with(engine, |s| {
        s.outbox.allow_http = true;
        s.outbox.max_attempts = 3;
        // The receiver is on this machine: allowed by name, as an operator would allow one.
        s.outbox.allowed_hosts = vec!["127.0.0.1".into()];
    })
    .await;
    let receiver = Receiver::start().await;
    let (_, [leeds_admin]) = org_with(&app, LEEDS, [Role::OrgAdmin]).await;
    let (_, [york_admin]) = org_with(&app, YORK, [Role::OrgAdmin]).await;
    let mut secrets = Vec::new();
    for (token, path) in [(&leeds_admin, "leeds"), (&york_admin, "york")] {
        let (status, hook) =
            app.put(token, "/api/v1/webhook", &json!({"url": format!("{}/{path}", receiver.base)})).await;
        assert_eq!(status, StatusCode::OK, "{hook}");
        secrets.push(hook["secret"].as_str().unwrap().to_string());
    }
    let york_secret = secrets.pop().unwrap();
    let leeds_secret = secrets.pop().unwrap();
    World { app, receiver, leeds_admin, york_admin, leeds_secret, york_secret }
}

impl World {
    /// Both organisations register the same child: one new match, one message to each.
    async fn make_match(&self) {
        for (token, local_ref) in [(&self.leeds_admin, "L-1"), (&self.york_admin, "Y-1")] {
            register(&self.app, token, local_ref, "child-in-need", child()).await;
        }
    }

    async fn pass(&self) -> child_locator::service::outbox::Delivery {
        self.app.state.deliver_due(self.app.clock.now_ms()).await.expect("delivery pass")
    }

    async fn outbox(&self, token: &str, state: &str) -> Vec<Value> {
        let (status, body) = self.app.get(token, &format!("/api/v1/outbox?state={state}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["messages"].as_array().unwrap().clone()
    }
}

#[suite::test(each_engine)]
async fn a_new_match_is_delivered_to_both_webhooks_with_a_valid_signature(engine: Engine) {
    let w = world(engine).await;
    w.make_match().await;
    let done = w.pass().await;
    assert_eq!(done.delivered, 2, "{engine:?}: {done:?}");
    let got = w.receiver.received();
    assert_eq!(got.len(), 2);
    for r in &got {
        let (secret, other) =
            if r.path == "leeds" { (&w.leeds_secret, "E06000014") } else { (&w.york_secret, "E08000035") };
        assert!(signature_is_valid(secret, r), "{engine:?}: the signature verifies with the secret shown once");
        let wrong = if r.path == "leeds" { &w.york_secret } else { &w.leeds_secret };
        assert!(!signature_is_valid(wrong, r), "another organisation's secret does not verify it");
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["kind"], "match.new");
        assert_eq!(body["sent_at"].to_string(), r.timestamp, "the timestamp header is inside the signed body");
        assert_eq!(body["data"]["other_organisation"]["code"], other);
        assert_eq!(body["data"]["tier"], "confirmed");
        assert_eq!(body["data"]["basis"], "child");
        assert!(body["data"]["match_id"].as_str().unwrap().starts_with("m_"));
        for identifier in ["9074833780", "Zebedee", "Quillfeather", "2014-05-09", "LS1"] {
            assert!(!r.body.contains(identifier), "no identifier is ever sent");
        }
    }
    assert_eq!(w.outbox(&w.leeds_admin, "delivered").await.len(), 1);
    assert_eq!(w.outbox(&w.leeds_admin, "pending").await.len(), 0);
    assert_eq!(w.pass().await.delivered, 0, "a delivered message is not sent again");
}

#[suite::test(each_engine)]
async fn a_failed_delivery_is_retried_after_a_backoff_and_then_delivered(engine: Engine) {
    let w = world(engine).await;
    w.receiver.answer(500);
    w.make_match().await;
    let first = w.pass().await;
    assert_eq!((first.delivered, first.retrying), (0, 2), "{engine:?}");
    let pending = w.outbox(&w.leeds_admin, "pending").await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["attempts"], 1);
    assert_eq!(pending[0]["last_error"], "HTTP 500");
    // Not due again until the backoff has passed (30 s plus up to 20% jitter).
    assert_eq!(w.pass().await, Default::default());
    w.app.clock.advance_ms(20_000);
    assert_eq!(w.pass().await, Default::default(), "still backing off at 20 s");
    w.receiver.answer(204);
    w.app.clock.advance_ms(20_000);
    assert_eq!(w.pass().await.delivered, 2, "{engine:?}: due again after 40 s");
    let delivered = w.outbox(&w.leeds_admin, "delivered").await;
    assert_eq!(delivered[0]["attempts"], 2);
    assert_eq!(delivered[0]["last_error"], Value::Null);
    assert_eq!(w.receiver.received().len(), 4);
}

#[suite::test(each_engine)]
async fn a_message_is_dead_after_the_last_attempt_and_the_org_admin_sees_it(engine: Engine) {
    let w = world(engine).await;
    w.receiver.answer(503);
    w.make_match().await;
    let mut dead = 0;
    for _ in 0..3 {
        dead += w.pass().await.dead;
        w.app.clock.advance_ms(86_400_000);
    }
    assert_eq!(dead, 2, "{engine:?}: both messages die on the third attempt");
    assert_eq!(w.pass().await, Default::default(), "dead messages are not tried again");
    let listed = w.outbox(&w.leeds_admin, "dead").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["state"], "dead");
    assert_eq!(listed[0]["attempts"], 3);
    assert_eq!(listed[0]["last_error"], "HTTP 503");
    assert!(listed[0]["dead_at"].is_string());
    assert_eq!(w.outbox(&w.leeds_admin, "pending").await.len(), 0);
    assert_eq!(w.receiver.received().len(), 6);
}

#[suite::test]
async fn an_unreachable_receiver_counts_as_a_failed_attempt() {
    let w = world(Engine::Sqlite).await;
    // A port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/gone", closed.local_addr().unwrap());
    drop(closed);
    w.app.put(&w.leeds_admin, "/api/v1/webhook", &json!({"url": url})).await;
    w.make_match().await;
    w.pass().await;
    let pending = w.outbox(&w.leeds_admin, "pending").await;
    assert_eq!(pending[0]["last_error"], "could not connect");
}

#[suite::test(each_engine)]
async fn another_organisations_outbox_is_invisible(engine: Engine) {
    let w = world(engine).await;
    w.make_match().await;
    let bystander = w.app.org("E06000023", "local-authority").await;
    let bystander_admin = w.app.token(&bystander, Role::OrgAdmin).await;
    let (_, all) = w.app.get(&bystander_admin, "/api/v1/outbox").await;
    assert_eq!(all["messages"].as_array().unwrap().len(), 0, "{engine:?}");
    let (_, york) = w.app.get(&w.york_admin, "/api/v1/outbox").await;
    let york = york["messages"].as_array().unwrap();
    assert_eq!(york.len(), 1);
    assert_eq!(york[0]["payload"]["other_organisation"]["code"], "E08000035", "York's own message only");
    let (status, _) = w.app.get(&bystander_admin, "/api/v1/webhook").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no webhook of its own, and nobody else's");
}

#[suite::test(each_engine)]
async fn messages_wait_while_there_is_no_webhook_and_go_once_one_is_set(engine: Engine) {
    let w = world(engine).await;
    assert_eq!(w.app.delete(&w.leeds_admin, "/api/v1/webhook").await.0, StatusCode::NO_CONTENT);
    assert_eq!(w.app.delete(&w.leeds_admin, "/api/v1/webhook").await.0, StatusCode::NOT_FOUND);
    w.make_match().await;
    assert_eq!(w.pass().await.delivered, 1, "{engine:?}: only York has a webhook");
    assert_eq!(w.outbox(&w.leeds_admin, "pending").await[0]["attempts"], 0);
    let (_, hook) =
        w.app.put(&w.leeds_admin, "/api/v1/webhook", &json!({"url": format!("{}/leeds", w.receiver.base)})).await;
    assert_eq!(w.pass().await.delivered, 1);
    let leeds = w.receiver.received().into_iter().find(|r| r.path == "leeds").unwrap();
    assert!(signature_is_valid(hook["secret"].as_str().unwrap(), &leeds));
}

#[suite::test(each_engine)]
async fn setting_the_webhook_again_rotates_the_secret_and_it_is_shown_only_once(engine: Engine) {
    let w = world(engine).await;
    let (status, again) =
        w.app.put(&w.leeds_admin, "/api/v1/webhook", &json!({"url": format!("{}/leeds", w.receiver.base)})).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(again["secret"], w.leeds_secret.as_str(), "{engine:?}");
    assert_eq!(again["secret_version"], 2);
    let (status, shown) = w.app.get(&w.leeds_admin, "/api/v1/webhook").await;
    assert_eq!(status, StatusCode::OK);
    assert!(shown.get("secret").is_none(), "{shown}");
    // The old secret no longer verifies new deliveries.
    w.make_match().await;
    w.pass().await;
    let leeds = w.receiver.received().into_iter().find(|r| r.path == "leeds").unwrap();
    assert!(signature_is_valid(again["secret"].as_str().unwrap(), &leeds));
    assert!(!signature_is_valid(&w.leeds_secret, &leeds));
    assert_eq!(w.app.audit_types().await.iter().filter(|t| *t == "organisation_updated").count(), 3);
}

#[suite::test]
async fn webhook_urls_are_validated_and_plain_http_is_refused_by_default() {
    let app = TestApp::start(Engine::Sqlite).await;
    let org = app.org("E08000035", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    for (body, code) in [
        (json!({"url": "http://hooks.example.org/x"}), "invalid_url"),
        (json!({"url": "https://user:pw@hooks.example.org/"}), "invalid_url"),
        (json!({}), "required"),
    ] {
        let (status, reply) = app.put(&admin, "/api/v1/webhook", &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
        assert_eq!(reply["error"]["field"], "url");
        assert_eq!(reply["error"]["code"], code);
    }
    let (status, reply) =
        app.put(&admin, "/api/v1/webhook", &json!({"url": "https://hooks.example.org/locator"})).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert!(reply["secret"].as_str().unwrap().starts_with("whsec_"));
}

#[suite::test(each_engine)]
async fn a_withdrawn_match_is_announced_to_both_organisations(engine: Engine) {
    let w = world(engine).await;
    w.make_match().await;
    w.app.delete(&w.york_admin, "/api/v1/holdings/Y-1").await;
    assert_eq!(w.pass().await.delivered, 4, "{engine:?}");
    let kinds: Vec<String> = w
        .receiver
        .received()
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "match.withdrawn").count(), 2);
}

#[suite::test(each_engine)]
async fn concurrent_delivery_passes_send_each_message_once(engine: Engine) {
    let w = world(engine).await;
    for i in 0..6 {
        // Six separate children: twelve messages.
        for (token, local_ref) in [(&w.leeds_admin, format!("L-{i}")), (&w.york_admin, format!("Y-{i}"))] {
            let subject = json!({"nhs_number": nhs(i), "date_of_birth": "2015-01-01"});
            let body = json!({"category": "child-in-need", "status": "open", "subject": subject});
            let (status, reply) = w.app.put(token, &format!("/api/v1/holdings/{local_ref}"), &body).await;
            assert!(status.is_success(), "{reply}");
        }
    }
    let now = w.app.clock.now_ms();
    let (a, b, c) =
        tokio::join!(w.app.state.deliver_due(now), w.app.state.deliver_due(now), w.app.state.deliver_due(now));
    let total = a.unwrap().delivered + b.unwrap().delivered + c.unwrap().delivered;
    assert_eq!(total, 12, "{engine:?}");
    assert_eq!(w.receiver.received().len(), 12, "{engine:?}: no message was sent twice");
}

/// Valid NHS numbers (Modulus 11) for the i-th test child.
fn nhs(i: usize) -> String {
    ["9434765919", "9434765870", "9434765862", "4010232137", "9074833780", "3982597919"][i].to_string()
}

/// Issue 20, item 8: a webhook cannot be aimed at the node itself, its private network or the
/// cloud metadata address (server-side request forgery): 422 naming `url`.
#[suite::test]
async fn webhooks_to_loopback_private_or_link_local_addresses_are_refused() {
    let app = TestApp::start_with(Engine::Sqlite, |s| s.outbox.allow_http = true).await;
    let org = app.org("E08000035", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    for url in [
        "http://127.0.0.1:9000/hook",
        "https://[::1]/hook",
        "https://10.0.0.8/hook",
        "http://169.254.169.254/latest/meta-data/",
        "https://localhost/hook",
        "https://0x7f.0.0.1/hook",
    ] {
        let (status, reply) = app.put(&admin, "/api/v1/webhook", &json!({"url": url})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {reply}");
        assert_eq!(reply["error"]["field"], "url", "{url}");
        assert_eq!(reply["error"]["code"], "internal_address", "{url}");
    }
    assert_eq!(app.get(&admin, "/api/v1/webhook").await.0, StatusCode::NOT_FOUND, "nothing was set");
}

/// The operator can allow a named internal host (a receiver on the council's own network).
#[suite::test]
async fn an_internal_host_the_operator_allows_is_accepted() {
    let app = TestApp::start_with(Engine::Sqlite, |s| {
        s.outbox.allow_http = true;
        s.outbox.allowed_hosts = vec!["10.0.0.8".into(), "localhost".into()];
    })
    .await;
    let org = app.org("E08000035", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    for url in ["https://10.0.0.8/hook", "http://localhost:9000/hook"] {
        assert_eq!(app.put(&admin, "/api/v1/webhook", &json!({"url": url})).await.0, StatusCode::OK, "{url}");
    }
    let (status, _) = app.put(&admin, "/api/v1/webhook", &json!({"url": "https://10.0.0.9/hook"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "only the named host");
}

/// Delivery checks the address again, so a webhook stored before the rule (or a name that now
/// resolves inside) is never POSTed to an internal address.
#[suite::test(each_engine)]
async fn delivery_never_connects_to_an_internal_address_that_is_not_allowed(engine: Engine) {
    let w = world(engine).await;
    let leeds = w.app.store().organisation_by_code("E08000035").await.unwrap();
    let york = w.app.store().organisation_by_code("E06000014").await.unwrap();
    let port = w.receiver.base.rsplit(':').next().unwrap().to_string();
    // Set beneath the API, as an old row or a rebinding name would be.
    let now = w.app.clock.now_ms();
    w.app.store().set_webhook(leeds.id, &format!("http://localhost:{port}/leeds"), now).await.unwrap();
    w.app.store().set_webhook(york.id, &format!("http://[::ffff:127.0.0.1]:{port}/york"), now).await.unwrap();
    w.make_match().await;
    let done = w.pass().await;
    assert_eq!(done.delivered, 0, "{engine:?}: {done:?}");
    assert!(w.receiver.received().is_empty(), "{engine:?}: nothing reached the internal receiver");
    for token in [&w.leeds_admin, &w.york_admin] {
        let pending = w.outbox(token, "pending").await;
        let error = pending[0]["last_error"].as_str().unwrap_or_default().to_string();
        assert!(error.starts_with("refused"), "{engine:?}: {error}");
    }
}
