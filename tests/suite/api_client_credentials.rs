//! Systems authenticate with OAuth 2.0 client credentials and a signed JWT client assertion
//! (RFC 7523 `private_key_jwt`): an org-admin registers a public key, the system trades a
//! signed assertion at `POST /oauth/token` for a short-lived access token, which acts like a
//! user token of the client's role and organisation. Keys: tests/fixtures/client-keys (test only).

use crate::common;

use std::sync::{Arc, Mutex};

use child_locator::domain::role::Role;
use common::{Engine, TestApp};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/client-keys").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn public_jwk(name: &str) -> Value {
    serde_json::from_slice(&fixture(&format!("{name}.public.jwk.json"))).expect("a JWK")
}

fn rsa_key(name: &str) -> EncodingKey {
    EncodingKey::from_rsa_der(&fixture(&format!("{name}.der")))
}

fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_der(&fixture("ec-a.pkcs8.der"))
}

/// A client: its id and how it signs.
struct Client {
    id: String,
    alg: Algorithm,
    key: EncodingKey,
}

/// The claims a good assertion carries, `exp` seconds from the app's clock.
fn claims(app: &TestApp, client_id: &str, exp_in: i64, jti: &str) -> Value {
    let now = app.clock.now_ms() / 1000;
    json!({"iss": client_id, "sub": client_id, "aud": audience(app), "iat": now, "exp": now + exp_in, "jti": jti})
}

fn audience(app: &TestApp) -> String {
    app.state.settings().oauth.token_endpoint.clone()
}

fn sign(client: &Client, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(client.alg), claims, &client.key).expect("signed")
}

/// A fresh, good assertion for `client`.
fn assertion(app: &TestApp, client: &Client) -> String {
    sign(client, &claims(app, &client.id, 120, &uuid::Uuid::new_v4().to_string()))
}

async fn register(app: &TestApp, admin: &str, role: &str, jwk: Value, alg: Option<&str>) -> (StatusCode, Value) {
    let mut body = json!({"name": format!("Case system ({role})"), "role": role, "jwk": jwk});
    if let Some(alg) = alg {
        body["alg"] = json!(alg);
    }
    app.post(admin, "/api/v1/clients", &body).await
}

async fn rsa_client(app: &TestApp, admin: &str, role: &str) -> Client {
    let (status, body) = register(app, admin, role, public_jwk("rsa-a"), Some("RS256")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Client {
        id: body["client"]["client_id"].as_str().expect("client_id").to_string(),
        alg: Algorithm::RS256,
        key: rsa_key("rsa-a"),
    }
}

async fn token_request(app: &TestApp, form: &[(&str, &str)]) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let response = app
        .http
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("request");
    let headers = response.headers().clone();
    let (status, body) = common::split(response).await;
    (status, body, headers)
}

async fn exchange(app: &TestApp, assertion: &str) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    let (status, body, _) = token_request(app, &form).await;
    assert!(!body.to_string().contains(assertion), "the answer echoes the assertion: {body}");
    (status, body)
}

async fn access_token(app: &TestApp, client: &Client) -> String {
    let (status, body) = exchange(app, &assertion(app, client)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().expect("access_token").to_string()
}

fn assert_invalid_client(what: &str, engine: Engine, (status, body): (StatusCode, Value)) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{engine:?}: {what}: {body}");
    assert_eq!(body["error"], "invalid_client", "{engine:?}: {what}: {body}");
    assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{engine:?}: {what}: {body}");
}

const SUBJECT: &str = r#"{"nhs_number": "9434765919", "given_name": "Ruby", "date_of_birth": "2016-04-12"}"#;

fn lookup_body() -> Value {
    json!({"subject": serde_json::from_str::<Value>(SUBJECT).unwrap(), "purpose": "front-door-triage"})
}

#[suite::test(each_engine)]
async fn a_good_assertion_gets_a_token_whose_lookup_is_audited_with_the_client_as_actor(engine: Engine) {
    let app = TestApp::start(engine).await;
    let org = app.org("E06000010", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let client = rsa_client(&app, &admin, "practitioner").await;

    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", &assertion(&app, &client)),
        ("client_id", &client.id),
    ];
    let (status, body, headers) = token_request(&app, &form).await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600, "ten minutes by default");
    assert_eq!(headers["cache-control"], "no-store");
    let token = body["access_token"].as_str().expect("access_token");

    let (status, me) = app.get(token, "/api/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {me}");
    let (status, answer) = app.post(token, "/api/v1/lookups", &lookup_body()).await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {answer}");
    let lookup_id = answer["lookup_id"].as_str().expect("lookup_id");

    let bodies = app.audit_bodies().await;
    let lookup = bodies.iter().find(|b| b["lookup_id"] == lookup_id).expect("the lookup is audited");
    assert_eq!(lookup["actor"]["client_id"], client.id.as_str(), "{engine:?}: {lookup}");
    assert_eq!(lookup["actor"]["role"], "practitioner");
    let types: Vec<&str> = bodies.iter().filter_map(|b| b["type"].as_str()).collect();
    assert!(types.contains(&"client_registered") && types.contains(&"client_token_issued"), "{types:?}");

    // The IG view names the client too.
    let ig = app.token(&org, Role::IgOfficer).await;
    let (status, events) = app.get(&ig, "/api/v1/audit/events?type=lookup").await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let event = events["events"].as_array().unwrap().iter().find(|e| e["lookup_id"] == lookup_id).cloned();
    assert_eq!(event.expect("the IG officer sees the lookup")["actor"]["client_id"], client.id.as_str());
}

#[suite::test(each_engine)]
async fn ec_and_pss_keys_work_and_the_client_list_shows_no_key_material(engine: Engine) {
    let app = TestApp::start(engine).await;
    let org = app.org("E06000010", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let (status, body) = register(&app, &admin, "org-admin", public_jwk("ec-a"), None).await;
    assert_eq!(status, StatusCode::CREATED, "{engine:?}: {body}");
    assert_eq!(body["client"]["alg"], "ES256");
    assert_eq!(body["token_endpoint"], audience(&app).as_str());
    let ec = Client { id: body["client"]["client_id"].as_str().unwrap().into(), alg: Algorithm::ES256, key: ec_key() };
    let token = access_token(&app, &ec).await;
    assert_eq!(app.get(&token, "/api/v1/clients").await.0, StatusCode::OK, "an org-admin client lists clients");

    let mut jwk = public_jwk("rsa-b");
    jwk["alg"] = json!("PS256");
    let (status, body) = register(&app, &admin, "ig-officer", jwk, None).await;
    assert_eq!(status, StatusCode::CREATED, "{engine:?}: {body}");
    let ps = Client {
        id: body["client"]["client_id"].as_str().unwrap().into(),
        alg: Algorithm::PS256,
        key: rsa_key("rsa-b"),
    };
    let token = access_token(&app, &ps).await;
    assert_eq!(app.get(&token, "/api/v1/audit/events").await.0, StatusCode::OK);

    let (status, list) = app.get(&admin, "/api/v1/clients").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["clients"].as_array().unwrap().len(), 2);
    let n = public_jwk("rsa-b")["n"].as_str().unwrap().to_string();
    assert!(!list.to_string().contains(&n[..40]), "the list carries thumbprints, not keys");
}

#[suite::test(each_engine)]
async fn an_expired_or_too_long_assertion_is_refused(engine: Engine) {
    let app = TestApp::start(engine).await;
    let org = app.org("E06000010", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let client = rsa_client(&app, &admin, "practitioner").await;
    let expired = sign(&client, &claims(&app, &client.id, -120, "j-expired"));
    assert_invalid_client("expired", engine, exchange(&app, &expired).await);
    let too_long = sign(&client, &claims(&app, &client.id, 3600, "j-long"));
    assert_invalid_client("exp an hour ahead", engine, exchange(&app, &too_long).await);
    let mut no_exp = claims(&app, &client.id, 60, "j-no-exp");
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_invalid_client("no exp", engine, exchange(&app, &sign(&client, &no_exp)).await);
    let mut no_jti = claims(&app, &client.id, 60, "x");
    no_jti.as_object_mut().unwrap().remove("jti");
    assert_invalid_client("no jti", engine, exchange(&app, &sign(&client, &no_jti)).await);

    // A good assertion goes stale as the service's clock moves past its exp and the skew.
    let good = assertion(&app, &client);
    app.clock.advance_ms(10 * 60 * 1000);
    assert_invalid_client("stale", engine, exchange(&app, &good).await);
}

#[suite::test(each_engine)]
async fn an_assertion_for_another_audience_is_refused(engine: Engine) {
    let app = TestApp::start(engine).await;
    let org = app.org("E06000010", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let client = rsa_client(&app, &admin, "practitioner").await;
    let mut other = claims(&app, &client.id, 60, "j-aud");
    other["aud"] = json!("https://another-service.example/oauth2/token");
    assert_invalid_client("other audience", engine, exchange(&app, &sign(&client, &other)).await);
    let mut issuer = claims(&app, &client.id, 60, "j-sub");
    issuer["sub"] = json!("someone-else");
    assert_invalid_client("sub is not the client", engine, exchange(&app, &sign(&client, &issuer)).await);
}

#[suite::test(each_engine)]
async fn a_wrong_key_or_a_tampered_signature_is_refused(engine: Engine) {
    let app = TestApp::start(engine).await;
    let org = app.org("E06000010", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let client = rsa_client(&app, &admin, "practitioner").await;
    let impostor = Client { id: client.id.clone(), alg: Algorithm::RS256, key: rsa_key("rsa-b") };
    assert_invalid_client("wrong key", engine, exchange(&app, &assertion(&app, &impostor)).await);
    let ps = Client { id: client.id.clone(), alg: Algorithm::PS256, key: rsa_key("rsa-a") };
    assert_invalid_client("another algorithm than registered", engine, exchange(&app, &assertion(&app, &ps)).await);

    let good = assertion(&app, &client);
    let parts: Vec<&str> = good.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&b64().decode(parts[1]).unwrap()).unwrap();
    payload["exp"] = json!(payload["exp"].as_i64().unwrap() + 60);
    let tampered = format!("{}.{}.{}", parts[0], b64().encode(payload.to_string()), parts[2]);
    assert_invalid_client("tampered payload", engine, exchange(&app, &tampered).await);
    let mut signature = parts[2].to_string();
    let flipped = if signature.ends_with('A') { 'B' } else { 'A' };
    signature.pop();
    signature.push(flipped);
    let bad_signature = format!("{}.{}.{signature}", parts[0], parts[1]);
    assert_invalid_client("flipped signature", engine, exchange(&app, &bad_signature).await);
    assert_invalid_client("not a JWT", engine, exchange(&app, "not-a-jwt").await);
    // The good one still works: none of the above used it up.
    assert_eq!(exchange(&app, &good).await.0, StatusCode::OK);
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

use base64::Engine as _;

#[suite::test(each_engine)]
async fn alg_none_hmac_symmetric_and_private_keys_are_refused(engine: Engine) {
    let app = TestApp::start(engine).await;
    let org = app.org("E06000010", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let client = rsa_client(&app, &admin, "practitioner").await;

    let body = claims(&app, &client.id, 60, "j-none");
    let none = format!("{}.{}.", b64().encode(r#"{"alg":"none","typ":"JWT"}"#), b64().encode(body.to_string()));
    assert_invalid_client("alg none", engine, exchange(&app, &none).await);
    let hmac = Client { id: client.id.clone(), alg: Algorithm::HS256, key: EncodingKey::from_secret(b"guessable") };
    assert_invalid_client("HS256", engine, exchange(&app, &assertion(&app, &hmac)).await);
    // HS256 keyed with the registered public key's bytes (the classic confusion) is refused too.
    let public = public_jwk("rsa-a").to_string();
    let confused =
        Client { id: client.id.clone(), alg: Algorithm::HS256, key: EncodingKey::from_secret(public.as_bytes()) };
    assert_invalid_client("HS256 with the public key", engine, exchange(&app, &assertion(&app, &confused)).await);

    let secret_part = "c2VjcmV0LXByaXZhdGUtZXhwb25lbnQtbm90LXRvLWJlLWtlcHQ";
    let mut private = public_jwk("rsa-a");
    private["d"] = json!(secret_part);
    let (status, body) = register(&app, &admin, "practitioner", private, Some("RS256")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{engine:?}: {body}");
    assert_eq!(body["error"]["code"], "private_key");
    assert!(!body.to_string().contains(secret_part));
    app.assert_db_files_free_of(&[secret_part]);
    let (status, body) = register(&app, &admin, "practitioner", json!({"kty": "oct", "k": secret_part}), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = register(&app, &admin, "practitioner", public_jwk("rsa-a"), Some("HS256")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_alg")));
    let (status, body) = register(&app, &admin, "practitioner", public_jwk("rsa-a"), Some("none")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_alg")));
    let (status, body) = register(&app, &admin, "operator", public_jwk("rsa-a"), Some("RS256")).await;
    assert_eq!((status, body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("role")));
}

#[suite::test(each_engine)]
async fn a_replayed_assertion_is_refused_also_after_a_restart(engine: Engine) {
    let app = TestApp::start(engine).await;
    let org = app.org("E06000010", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let client = rsa_client(&app, &admin, "practitioner").await;
    let once = assertion(&app, &client);
    assert_eq!(exchange(&app, &once).await.0, StatusCode::OK);
    assert_invalid_client("replay", engine, exchange(&app, &once).await);

    let app = app.restart().await;
    assert_invalid_client("replay after a restart", engine, exchange(&app, &once).await);
    assert_eq!(exchange(&app, &assertion(&app, &client)).await.0, StatusCode::OK, "a new jti works");
}

#[suite::test(each_engine)]
async fn a_client_of_one_organisation_cannot_act_for_another(engine: Engine) {
    let app = TestApp::start(engine).await;
    let north = app.org("E06000010", "local-authority").await;
    let south = app.org("E08000003", "local-authority").await;
    let north_admin = app.token(&north, Role::OrgAdmin).await;
    let south_admin = app.token(&south, Role::OrgAdmin).await;
    let holding = json!({"category": "child-in-need", "status": "open",
                         "subject": serde_json::from_str::<Value>(SUBJECT).unwrap()});
    assert_eq!(app.put(&south_admin, "/api/v1/holdings/S-1", &holding).await.0, StatusCode::CREATED);
    let north_client = rsa_client(&app, &north_admin, "org-admin").await;
    let (status, body) = register(&app, &south_admin, "org-admin", public_jwk("ec-a"), None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let south_client_id = body["client"]["client_id"].as_str().unwrap().to_string();

    let token = access_token(&app, &north_client).await;
    let (_, me) = app.get(&token, "/api/v1/me").await;
    assert!(me.to_string().contains("E06000010"), "{me}");
    assert_eq!(app.get(&token, "/api/v1/holdings/S-1").await.0, StatusCode::NOT_FOUND, "{engine:?}");
    assert_eq!(app.delete(&token, &format!("/api/v1/clients/{south_client_id}")).await.0, StatusCode::NOT_FOUND);
    let (status, _) =
        app.put(&token, "/api/v1/organisations/E08000003/token-policy", &json!({"long_lived_tokens": false})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.delete(&north_admin, &format!("/api/v1/clients/{south_client_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an org-admin cannot revoke another organisation's client");

    // The north client's key cannot speak for the south client.
    let posing = Client { id: south_client_id.clone(), alg: Algorithm::RS256, key: rsa_key("rsa-a") };
    assert_invalid_client(
        "posing as another organisation's client",
        engine,
        exchange(&app, &assertion(&app, &posing)).await,
    );
    // A client cannot mint more clients.
    let (status, _) = register(&app, &token, "practitioner", public_jwk("rsa-b"), Some("RS256")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[suite::test(each_engine)]
async fn a_revoked_clients_tokens_stop_working_and_tokens_expire(engine: Engine) {
    let app = TestApp::start(engine).await;
    let org = app.org("E06000010", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let client = rsa_client(&app, &admin, "practitioner").await;

    let token = access_token(&app, &client).await;
    app.clock.advance_ms(9 * 60 * 1000);
    assert_eq!(app.get(&token, "/api/v1/me").await.0, StatusCode::OK, "{engine:?}: nine minutes in");
    app.clock.advance_ms(2 * 60 * 1000);
    assert_eq!(app.get(&token, "/api/v1/me").await.0, StatusCode::UNAUTHORIZED, "{engine:?}: expired");

    let token = access_token(&app, &client).await;
    let pending = assertion(&app, &client);
    assert_eq!(app.get(&token, "/api/v1/me").await.0, StatusCode::OK);
    let (status, revoked) = app.delete(&admin, &format!("/api/v1/clients/{}", client.id)).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    assert_eq!(app.get(&token, "/api/v1/me").await.0, StatusCode::UNAUTHORIZED, "{engine:?}: revoked");
    assert_invalid_client("revoked client", engine, exchange(&app, &pending).await);
    assert!(app.audit_types().await.iter().any(|t| t == "client_revoked"));
}

#[suite::test(each_engine)]
async fn an_organisation_can_turn_its_long_lived_tokens_off(engine: Engine) {
    let app = TestApp::start(engine).await;
    let org = app.org("E06000010", "local-authority").await;
    let other = app.org("E08000003", "local-authority").await;
    let national = app.org("X26", "other").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let worker = app.token(&org, Role::Practitioner).await;
    let elsewhere = app.token(&other, Role::Practitioner).await;
    let operator = app.token(&national, Role::Operator).await;
    let client = rsa_client(&app, &admin, "org-admin").await;
    let path = "/api/v1/organisations/E06000010/token-policy";

    let (status, policy) = app.get(&admin, path).await;
    assert_eq!((status, policy["long_lived_tokens"].as_bool()), (StatusCode::OK, Some(true)));
    let (status, policy) = app.put(&admin, path, &json!({"long_lived_tokens": false})).await;
    assert_eq!((status, policy["long_lived_tokens"].as_bool()), (StatusCode::OK, Some(false)), "{policy}");

    let (status, body) = app.get(&worker, "/api/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{engine:?}: {body}");
    assert_eq!(body["error"]["code"], "long_lived_tokens_disabled", "a clear 401: {body}");
    assert_eq!(app.get(&admin, "/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get(&elsewhere, "/api/v1/me").await.0, StatusCode::OK, "other organisations are unaffected");
    let token = access_token(&app, &client).await;
    assert_eq!(app.get(&token, "/api/v1/me").await.0, StatusCode::OK, "client credentials keep working");
    // Web sign-in (the pages' door) still accepts the organisation's tokens.
    let ip = "127.0.0.1".parse().unwrap();
    assert!(app.state.authenticate(ip, Some(&worker), "/sign-in").await.is_ok());

    let (status, _) = app.put(&operator, path, &json!({"long_lived_tokens": true})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.get(&worker, "/api/v1/me").await.0, StatusCode::OK, "{engine:?}: on again");
    let types = app.audit_types().await;
    assert_eq!(types.iter().filter(|t| *t == "token_policy_changed").count(), 2);
}

#[suite::test(each_engine)]
async fn bad_token_requests_get_oauth_errors_never_a_500_and_failures_are_rate_limited(engine: Engine) {
    let app = TestApp::start_with(engine, |s| s.limits.failed_auth_per_minute = 3).await;
    let org = app.org("E06000010", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let client = rsa_client(&app, &admin, "practitioner").await;
    let good = assertion(&app, &client);

    let (status, body, _) = token_request(&app, &[("client_assertion", &good)]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")), "{body}");
    let (status, body, _) = token_request(&app, &[("grant_type", "password")]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unsupported_grant_type")));
    let twice = [("grant_type", "client_credentials"), ("grant_type", "client_credentials")];
    let (status, body, _) = token_request(&app, &twice).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
    let response = app.http.post(app.url("/oauth/token")).json(&json!({"grant_type": "client_credentials"}));
    let (status, body) = common::split(response.send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));

    // Failed assertions count against the address like failed tokens: then 429.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(exchange(&app, "garbage.garbage.garbage").await.0);
    }
    assert!(statuses.iter().all(|s| *s != StatusCode::INTERNAL_SERVER_ERROR), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "{engine:?}: {statuses:?}");
}

/// Captures every log line (all levels) the service writes on this thread while it is set.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[suite::test(each_engine)]
async fn no_assertion_jti_or_access_token_reaches_a_log_line_or_the_database(engine: Engine) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = TestApp::start(engine).await;
    let org = app.org("E06000010", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let client = rsa_client(&app, &admin, "practitioner").await;
    let jti = format!("canary-jti-{}", uuid::Uuid::new_v4().simple());
    let good = sign(&client, &claims(&app, &client.id, 120, &jti));
    let (status, body) = exchange(&app, &good).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.post(&token, "/api/v1/lookups", &lookup_body()).await.0, StatusCode::OK);
    exchange(&app, &good).await; // a replay, refused and audited
    let expired = sign(&client, &claims(&app, &client.id, -300, &jti));
    exchange(&app, &expired).await;

    let signature = good.rsplit('.').next().unwrap().to_string();
    let canaries = [good.as_str(), jti.as_str(), token.as_str(), signature.as_str()];
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
    assert!(logs.contains("request"), "the capture sees the service's log lines");
    for canary in canaries {
        assert!(!logs.contains(canary), "{engine:?}: a log line carries a secret");
    }
    let audit = serde_json::to_string(&app.audit_bodies().await).unwrap();
    for canary in canaries {
        assert!(!audit.contains(canary), "{engine:?}: the audit trail carries a secret");
    }
    app.assert_db_files_free_of(&canaries);
}
