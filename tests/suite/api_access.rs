//! Authentication and authorisation through the public HTTP surface, on every engine.

use crate::common;

use child_locator::domain::role::Role;
use child_locator::http::access;
use common::web::{self, WebSession};
use common::{Engine, TestApp};
use reqwest::StatusCode;
use serde_json::json;

/// Replaces `{param}` segments with a plausible value so the route matches.
fn concrete(path: &str) -> String {
    path.split('/').map(|seg| if seg.starts_with('{') { "1" } else { seg }).collect::<Vec<_>>().join("/")
}

#[suite::test]
async fn every_served_route_needs_a_token_or_a_session() {
    let app = TestApp::start(Engine::Sqlite).await;
    let routes = child_locator::http::served_routes();
    assert!(routes.len() >= 10, "the spec lists the API: {routes:?}");
    let http = web::no_redirects();
    for (method, path) in routes {
        let url = app.url(&concrete(&path));
        let request = http.request(method.parse().unwrap(), &url).json(&json!({}));
        let response = request.send().await.unwrap();
        let status = response.status();
        if access::is_public(&path) {
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path} is public");
        } else if access::is_page(&path) {
            assert_eq!(status, StatusCode::SEE_OTHER, "{method} {path} answered without a session");
            assert_eq!(response.headers()["location"], "/sign-in", "{method} {path} sends you to sign in");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} answered without a token");
        }
    }
}

#[suite::test]
async fn the_access_table_covers_exactly_the_served_routes() {
    let served = child_locator::http::served_routes();
    for (method, path) in &served {
        if access::is_public(path) {
            continue;
        }
        assert!(access::roles_for(method, path).is_some(), "{method} {path} is served but not in the access table");
    }
    for rule in access::rules() {
        assert!(
            served.iter().any(|(m, p)| m == rule.method && p == rule.path),
            "{} {} is in the access table but not served",
            rule.method,
            rule.path
        );
    }
}

#[suite::test(each_engine)]
async fn each_role_is_refused_exactly_the_routes_the_table_denies_it(engine: Engine) {
    let app = TestApp::start(engine).await;
    let org = app.org("E06000001", "local-authority").await;
    for role in Role::ALL {
        let token = app.token(&org, role).await;
        let session = WebSession::sign_in(&app, &token).await;
        for rule in access::rules() {
            let path = concrete(rule.path);
            let status = if access::is_page(rule.path) {
                // Pages: the session cookie, and a form with the CSRF token on POST. Signing
                // out is tried on a session of its own, so the others stay signed in.
                let answer = if rule.path == "/sign-out" {
                    WebSession::sign_in(&app, &token).await.post(&path, &[]).await
                } else if rule.method == "POST" {
                    session.post(&path, &[]).await
                } else {
                    session.get(&path).await
                };
                if answer.status == StatusCode::SEE_OTHER && rule.path != "/sign-out" {
                    let to = answer.location.unwrap_or_default();
                    assert!(
                        !to.starts_with("/sign-in"),
                        "{engine:?}: {role} sent to sign in by {} {path}",
                        rule.method
                    );
                }
                // A page's own "not found" is a page; the router's, for a route it does not serve, is JSON.
                if answer.status == StatusCode::NOT_FOUND {
                    assert!(answer.body.starts_with("<!DOCTYPE html>"), "{} {path} is not served", rule.method);
                }
                answer.status
            } else {
                app.http
                    .request(rule.method.parse().unwrap(), app.url(&path))
                    .bearer_auth(&token)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            };

            if rule.roles.contains(&role) {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{engine:?}: {role} should reach {} {} but got {status}",
                    rule.method,
                    rule.path
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{engine:?}: {role} on {} {}", rule.method, rule.path);
            }
        }
    }
    assert!(app.audit_types().await.iter().any(|t| t == "access_denied"), "refusals are audited");
}

#[suite::test(each_engine)]
async fn a_revoked_token_stops_working_on_the_next_request(engine: Engine) {
    let app = TestApp::start(engine).await;
    let org = app.org("E06000002", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let (status, issued) =
        app.post(&admin, "/api/v1/users", &json!({"name": "Sam Worker", "role": "practitioner"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let worker = issued["token"].as_str().unwrap().to_string();
    assert_eq!(app.get(&worker, "/api/v1/me").await.0, StatusCode::OK);

    let id = issued["user"]["id"].as_i64().unwrap();
    let (status, _) = app.post(&admin, &format!("/api/v1/users/{id}/revoke"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.get(&worker, "/api/v1/me").await.0, StatusCode::UNAUTHORIZED, "{engine:?}");
    let types = app.audit_types().await;
    assert!(types.contains(&"token_issued".to_string()) && types.contains(&"token_revoked".to_string()));
}

#[suite::test(each_engine)]
async fn another_organisations_user_looks_like_it_does_not_exist(engine: Engine) {
    let app = TestApp::start(engine).await;
    let north = app.org("E06000003", "local-authority").await;
    let south = app.org("E06000004", "local-authority").await;
    let north_admin = app.token(&north, Role::OrgAdmin).await;
    let south_admin = app.token(&south, Role::OrgAdmin).await;
    let (_, issued) = app.post(&south_admin, "/api/v1/users", &json!({"name": "Ali", "role": "practitioner"})).await;
    let south_user = issued["user"]["id"].as_i64().unwrap();

    let (status, body) = app.post(&north_admin, &format!("/api/v1/users/{south_user}/revoke"), &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{engine:?}");
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = app.post(&north_admin, "/api/v1/users/999999/revoke", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a missing user answers the same");

    let (_, listed) = app.get(&north_admin, "/api/v1/users").await;
    assert!(listed["users"].as_array().unwrap().iter().all(|u| u["organisation"] == "E06000003"));
}

#[suite::test]
async fn an_org_admin_cannot_create_operators_or_users_elsewhere() {
    let app = TestApp::start(Engine::Sqlite).await;
    let north = app.org("E06000005", "local-authority").await;
    app.org("E06000006", "local-authority").await;
    let admin = app.token(&north, Role::OrgAdmin).await;
    let (status, _) = app.post(&admin, "/api/v1/users", &json!({"name": "X", "role": "operator"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .post(&admin, "/api/v1/users", &json!({"name": "X", "role": "practitioner", "organisation": "E06000006"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[suite::test]
async fn tokens_are_stored_only_as_keyed_hashes() {
    let app = TestApp::start(Engine::Sqlite).await;
    let org = app.org("E06000007", "local-authority").await;
    let token = app.token(&org, Role::Practitioner).await;
    app.store().execute_raw("PRAGMA wal_checkpoint(TRUNCATE)").await.unwrap();
    app.store().execute_raw_on_audit("PRAGMA wal_checkpoint(TRUNCATE)").await.unwrap();
    let secret_part = &token.as_bytes()[10..];
    for file in ["locator.db", "locator-audit.db"] {
        let db = std::fs::read(app.db.dir.path().join(file)).unwrap();
        assert!(!db.windows(secret_part.len()).any(|w| w == secret_part), "the token's secret part is not in {file}");
    }
}

#[suite::test]
async fn repeated_failed_sign_ins_from_one_address_are_slowed_down() {
    let app = TestApp::start_with(Engine::Sqlite, |s| s.limits.failed_auth_per_minute = 3).await;
    let bogus = format!("clk_{}", "A".repeat(43));
    let mut last = StatusCode::OK;
    let mut retry_after = None;
    for _ in 0..6 {
        let response = app.http.get(app.url("/api/v1/me")).bearer_auth(&bogus).send().await.unwrap();
        last = response.status();
        retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some(), "429 carries Retry-After");
    assert!(app.audit_types().await.iter().filter(|t| *t == "auth_failed").count() >= 3);
}

#[suite::test]
async fn errors_use_the_contract_shape_and_carry_a_request_id() {
    let app = TestApp::start(Engine::Sqlite).await;
    let response = app.http.get(app.url("/api/v1/me")).send().await.unwrap();
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let (status, body) = common::split(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert!(body["error"]["message"].as_str().unwrap().contains("Bearer"));
}

/// The own/other organisation dimension, generated from the access table: every route that
/// names an object (a holding, a user, a request) hides another organisation's object from
/// every role the table lets in: 404, as if it did not exist. A route with a new parameter
/// fails here until the test knows how to make its object.
#[suite::test(each_engine)]
async fn every_object_route_hides_other_organisations_objects_from_every_allowed_role(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (north, south, east) = (
        app.org("E08000003", "local-authority").await,
        app.org("E06000010", "local-authority").await,
        app.org("E06000011", "local-authority").await,
    );
    let child = json!({"nhs_number": "9434765919", "given_name": "Amelia", "family_name": "Hughes",
                       "date_of_birth": "2014-05-09"});
    // North holds the child; South asks and requests North's record; East is a stranger.
    let north_admin = app.token(&north, Role::OrgAdmin).await;
    let holding = json!({"category": "child-in-need", "status": "open", "subject": child});
    assert_eq!(app.put(&north_admin, "/api/v1/holdings/OWN-1", &holding).await.0, StatusCode::CREATED);
    let (_, issued) = app.post(&north_admin, "/api/v1/users", &json!({"name": "Sam", "role": "practitioner"})).await;
    let sam_id = issued["user"]["id"].as_i64().expect("user id");
    let user_id = sam_id.to_string();
    let south_worker = app.token(&south, Role::Practitioner).await;
    let (_, answer) =
        app.post(&south_worker, "/api/v1/lookups", &json!({"subject": child, "purpose": "s47-enquiry"})).await;
    let match_id = answer["matches"][0]["match_id"].as_str().expect("a match").to_string();
    let (status, reply) = app
        .post(
            &south_worker,
            "/api/v1/requests",
            &json!({"match_id": match_id, "legal_basis": "ca1989-s47", "reason": "section 47 enquiry",
                    "urgency": "urgent"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let request_id = reply["request_id"].as_str().expect("request id").to_string();
    let jwk: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/client-keys/ec-a.public.jwk.json")).unwrap();
    let (status, client) = app
        .post(&north_admin, "/api/v1/clients", &json!({"name": "Case system", "role": "practitioner", "jwk": jwk}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let client_id = client["client"]["client_id"].as_str().expect("client id").to_string();

    let mut checked = 0;
    // PUTs last: East's PUT makes East's own OWN-1, which must not touch North's.
    // The JSON API's routes (pages reach the same service calls and are walked in `ui_pages`).
    let mut rules: Vec<_> = access::RULES
        .iter()
        .filter(|r| r.path.starts_with("/api/") && r.path.contains('{') && !r.path.contains("{code}"))
        .collect();
    rules.sort_by_key(|r| r.method == "PUT");
    for rule in rules {
        let path = if rule.path.contains("{local_ref}") {
            rule.path.replace("{local_ref}", "OWN-1")
        } else if rule.path.starts_with("/api/v1/users/") {
            rule.path.replace("{id}", &user_id)
        } else if rule.path.starts_with("/api/v1/requests/") {
            rule.path.replace("{id}", &request_id)
        } else if rule.path.starts_with("/api/v1/clients/") {
            rule.path.replace("{client_id}", &client_id)
        } else {
            panic!("{} {} names an object this test cannot make yet", rule.method, rule.path);
        };
        for role in rule.roles {
            let stranger = app.token(&east, *role).await;
            let body = match (rule.method, rule.path.ends_with("/shielded")) {
                (_, true) => json!({"shielded": true}),
                ("PUT", false) => holding.clone(),
                _ => json!({}),
            };
            let response = app
                .http
                .request(rule.method.parse().unwrap(), app.url(&path))
                .bearer_auth(&stranger)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let ok = if rule.method == "PUT" {
                // A PUT creates East's own OWN-1: it must not touch North's.
                status.is_success()
            } else {
                status == StatusCode::NOT_FOUND
            };
            assert!(ok, "{engine:?}: East's {role} on {} {path} got {status}", rule.method);
            checked += 1;
        }
    }
    assert!(checked >= 8, "the table names objects: {checked} checks");
    // North's objects are untouched by all of that.
    let (status, mine) = app.get(&north_admin, "/api/v1/holdings/OWN-1").await;
    assert_eq!((status, mine["category"].as_str()), (StatusCode::OK, Some("child-in-need")), "{engine:?}");
    let (_, request) = app.get(&south_worker, &format!("/api/v1/requests/{request_id}")).await;
    assert_eq!(request["state"], "requested", "{engine:?}: {request}");
    let users = app.get(&north_admin, "/api/v1/users").await.1;
    let sam = users["users"].as_array().unwrap().iter().find(|u| u["id"].as_i64() == Some(sam_id)).cloned();
    assert!(sam.is_some_and(|u| u["revoked_at"].is_null()), "{engine:?}: North's user is not revoked: {users}");
}

/// Issue 20, item 6: an operator manages organisations and keys, not people. Over HTTP it may
/// only bootstrap an organisation that has no live org-admin, by issuing that first org-admin;
/// the act is its own audit event, which the organisation's IG officer sees.
#[suite::test(each_engine)]
async fn an_operator_may_only_bootstrap_the_first_org_admin_of_an_organisation_without_one(engine: Engine) {
    let app = TestApp::start(engine).await;
    let national = app.org("NATIONAL", "other").await;
    let council = app.org("E06000012", "local-authority").await;
    let operator = app.token(&national, Role::Operator).await;
    let council_ig = app.token(&council, Role::IgOfficer).await;

    for role in ["practitioner", "ig-officer", "operator"] {
        let body = json!({"name": "Mallory", "role": role, "organisation": "E06000012"});
        let (status, answer) = app.post(&operator, "/api/v1/users", &body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{engine:?}: an operator minted a {role}: {answer}");
    }
    let (status, answer) = app.post(&operator, "/api/v1/users", &json!({"name": "A", "role": "org-admin"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{engine:?}: {answer}");
    assert_eq!(answer["error"]["field"], "organisation");

    let first = json!({"name": "First Admin", "role": "org-admin", "organisation": "E06000012"});
    let (status, issued) = app.post(&operator, "/api/v1/users", &first).await;
    assert_eq!(status, StatusCode::CREATED, "{engine:?}: {issued}");
    assert_eq!(issued["user"]["organisation"], "E06000012");
    let (status, answer) = app.post(&operator, "/api/v1/users", &first).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{engine:?}: a second admin by an operator: {answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("org-admin"), "{answer}");

    // The organisation's IG officer sees the bootstrap, by its own event type.
    let (status, events) = app.get(&council_ig, "/api/v1/audit/events?type=admin_bootstrapped").await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {events}");
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{engine:?}: {events:?}");

    // Once its admin is revoked the organisation has none, and may be bootstrapped again.
    let admin = issued["token"].as_str().unwrap();
    let id = issued["user"]["id"].as_i64().unwrap();
    let (_, second) = app.post(admin, "/api/v1/users", &json!({"name": "Deputy", "role": "org-admin"})).await;
    assert_eq!(app.post(admin, &format!("/api/v1/users/{id}/revoke"), &json!({})).await.0, StatusCode::OK);
    assert_eq!(app.post(&operator, "/api/v1/users", &first).await.0, StatusCode::FORBIDDEN, "the deputy is live");
    let deputy = second["token"].as_str().unwrap();
    let deputy_id = second["user"]["id"].as_i64().unwrap();
    let _ = app.post(deputy, &format!("/api/v1/users/{deputy_id}/revoke"), &json!({})).await;
    assert_eq!(app.post(&operator, "/api/v1/users", &first).await.0, StatusCode::CREATED, "{engine:?}");
}

/// Sends `GET /api/v1/me` as if through a proxy that says the client is `client`.
async fn me_from(app: &TestApp, client: &str, token: &str) -> StatusCode {
    let request = app.http.get(app.url("/api/v1/me")).bearer_auth(token).header("x-forwarded-for", client);
    request.send().await.unwrap().status()
}

/// Issue 20, item 5: behind the reverse proxy every client shares the proxy's address. With the
/// proxy trusted, failed tokens count per client; and a bad token never blocks a valid one.
#[suite::test]
async fn behind_a_trusted_proxy_one_clients_bad_tokens_do_not_lock_out_another() {
    let app = TestApp::start_with(Engine::Sqlite, |s| {
        s.limits.failed_auth_per_minute = 3;
        s.trusted_proxies = child_locator::config::TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    let org = app.org("E06000013", "local-authority").await;
    let valid = app.token(&org, Role::Practitioner).await;
    let bogus = format!("clk_{}", "A".repeat(43));
    let mut last = StatusCode::OK;
    for _ in 0..25 {
        last = me_from(&app, "203.0.113.7", &bogus).await;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS, "the guessing client is slowed down");
    assert_eq!(me_from(&app, "198.51.100.9", &valid).await, StatusCode::OK, "another client's valid token");
    assert_eq!(me_from(&app, "198.51.100.9", &bogus).await, StatusCode::UNAUTHORIZED, "another client is not blocked");
    assert_eq!(me_from(&app, "203.0.113.7", &valid).await, StatusCode::OK, "a valid token is never blocked");
    let sources: Vec<String> = app
        .audit_bodies()
        .await
        .iter()
        .filter(|b| b["type"] == "auth_failed")
        .map(|b| b["details"]["source"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(sources.iter().any(|s| s == "203.0.113.7"), "{sources:?}");
}

/// Without a trusted proxy, `X-Forwarded-For` is the client's own word: ignored.
#[suite::test]
async fn without_a_trusted_proxy_a_forged_forwarded_for_is_ignored() {
    let app = TestApp::start_with(Engine::Sqlite, |s| s.limits.failed_auth_per_minute = 3).await;
    let bogus = format!("clk_{}", "A".repeat(43));
    for n in 0..6 {
        me_from(&app, &format!("203.0.113.{n}"), &bogus).await;
    }
    assert_eq!(me_from(&app, "198.51.100.9", &bogus).await, StatusCode::TOO_MANY_REQUESTS, "one address: the peer");
    let bodies = app.audit_bodies().await;
    let failed = bodies.iter().filter(|b| b["type"] == "auth_failed");
    assert!(failed.clone().count() >= 3);
    assert!(failed.into_iter().all(|b| b["details"]["source"] == "127.0.0.1"), "the forged address is not recorded");
}

/// Issue 20, item 7: a token hammering a route its role may not call is refused every time, but
/// the trail stores the first few refusals a minute and then one summary with the count.
#[suite::test(each_engine)]
async fn a_refused_caller_cannot_make_the_trail_store_an_event_per_refusal(engine: Engine) {
    let app = TestApp::start(engine).await;
    let org = app.org("E06000014", "local-authority").await;
    let worker = app.token(&org, Role::Practitioner).await;
    for _ in 0..100 {
        assert_eq!(app.get(&worker, "/api/v1/users").await.0, StatusCode::FORBIDDEN);
    }
    let denied = |bodies: &[serde_json::Value]| -> Vec<serde_json::Value> {
        bodies.iter().filter(|b| b["type"] == "access_denied").cloned().collect()
    };
    let recorded = denied(&app.audit_bodies().await);
    assert!(!recorded.is_empty() && recorded.len() <= 10, "{engine:?}: {} events for 100 refusals", recorded.len());

    app.clock.advance_ms(61_000);
    assert_eq!(app.get(&worker, "/api/v1/users").await.0, StatusCode::FORBIDDEN);
    let after = denied(&app.audit_bodies().await);
    let summary = after.iter().find(|b| b["details"]["summary"] == true).expect("a summary event");
    let counted = summary["details"]["unrecorded_refusals"].as_u64().unwrap();
    assert_eq!(counted + recorded.len() as u64, 100, "{engine:?}: every refusal is accounted for: {summary}");
    assert_eq!(after.len(), recorded.len() + 2, "the summary, then the new minute's refusal");

    // A caller who stops: the node's background pass writes the count once the minute is over.
    for _ in 0..30 {
        app.get(&worker, "/api/v1/users").await;
    }
    app.clock.advance_ms(61_000);
    assert_eq!(app.state.flush_refusal_summaries().await.unwrap(), 1, "{engine:?}");
    let last = denied(&app.audit_bodies().await);
    let summaries: Vec<_> = last.iter().filter(|b| b["details"]["summary"] == true).collect();
    assert_eq!(summaries.len(), 2, "{engine:?}");
    let recorded_now = last.iter().filter(|b| b["details"]["summary"] != true).count() as u64;
    let counted: u64 = summaries.iter().map(|b| b["details"]["unrecorded_refusals"].as_u64().unwrap()).sum();
    assert_eq!(recorded_now + counted, 131, "{engine:?}: every refusal is accounted for");
}

/// Issue 20, item 7: a method the route does not have is 405 with `Allow` and the JSON error
/// shape, for every caller; it is not a refusal and writes no `access_denied`.
#[suite::test]
async fn a_method_a_route_does_not_have_answers_405_and_is_not_audited() {
    let app = TestApp::start(Engine::Sqlite).await;
    let org = app.org("E06000015", "local-authority").await;
    let worker = app.token(&org, Role::Practitioner).await;
    for (method, path) in [("HEAD", "/api/v1/me"), ("OPTIONS", "/api/v1/me"), ("DELETE", "/api/v1/matches")] {
        let response =
            app.http.request(method.parse().unwrap(), app.url(path)).bearer_auth(&worker).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(response.headers()["allow"], "GET", "{method} {path}");
        let (_, body) = common::split(response).await;
        if method != "HEAD" {
            assert_eq!(body["error"]["code"], "method_not_allowed", "{method} {path}: {body}");
        }
    }
    let response = app.http.request("OPTIONS".parse().unwrap(), app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "without a token too");
    assert!(!app.audit_types().await.iter().any(|t| t == "access_denied"));
}
