//! The practitioner's lookup, end to end, on every engine.

use crate::common;

use child_locator::domain::role::Role;
use common::fixtures::{AMELIA_NHS, LEEDS, MANCHESTER, YORK, amelia, org_with, put_holding};
use common::{Engine, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

const NHS: &str = AMELIA_NHS;

/// A holding with the assessment team's contact.
async fn register(app: &TestApp, token: &str, local_ref: &str, category: &str, subject: Value) {
    let body = json!({"category": category, "status": "open", "subject": subject,
        "contact": {"team": "Children's Assessment Team", "phone": "0161 234 5678"}});
    put_holding(app, token, local_ref, &body).await;
}

struct World {
    app: TestApp,
    holder_admin: String,
    worker: String,
}

impl World {
    /// The Leeds worker's lookup; the answer body.
    async fn ask(&self, subject: Value, purpose: &str) -> Value {
        self.app.post(&self.worker, "/api/v1/lookups", &json!({"subject": subject, "purpose": purpose})).await.1
    }
}

/// Manchester holds Amelia on a child protection plan; a Leeds social worker asks.
async fn world(engine: Engine) -> World {
    let app = TestApp::start(engine).await;
    let (_, [holder_admin]) = org_with(&app, MANCHESTER, [Role::OrgAdmin]).await;
    let (_, [worker]) = org_with(&app, LEEDS, [Role::Practitioner]).await;
    register(&app, &holder_admin, "MCR-1", "child-protection-plan", amelia()).await;
    World { app, holder_admin, worker }
}

#[suite::test(each_engine)]
async fn a_worker_learns_who_holds_the_child_and_who_to_call(engine: Engine) {
    let w = world(engine).await;
    let (status, answer) = w.app.post(&w.worker, "/api/v1/lookups",
        &json!({"subject": {"nhs_number": "907 483 3780", "date_of_birth": "2014-05-09"}, "purpose": "s47-enquiry"})).await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {answer}");
    assert_eq!(answer["known"], true);
    assert!(answer["lookup_id"].as_str().unwrap().starts_with("lk_"));
    let m = &answer["matches"][0];
    assert_eq!(m["organisation"]["code"], "E08000003");
    assert_eq!(m["tier"], "confirmed");
    assert_eq!(m["contact"]["phone"], "0161 234 5678");
    assert_eq!(m["category"], "child-protection-plan", "a council social worker sees the category");
    assert_eq!(m["basis"], "child");
    assert!(m["evidence"].as_str().unwrap().to_lowercase().contains("nhs number"), "{m}");
    assert!(m["match_id"].as_str().unwrap().starts_with("lm_"));
}

#[suite::test(each_engine)]
async fn names_and_date_of_birth_find_a_child_recorded_under_a_short_name(engine: Engine) {
    let w = world(engine).await;
    let answer = w
        .ask(
            json!({"given_name": "Millie", "family_name": "HUGHES", "date_of_birth": "2014-05-09"}),
            "front-door-triage",
        )
        .await;
    let tier = answer["matches"][0]["tier"].as_str().unwrap_or("none").to_string();
    assert!(tier == "probable" || tier == "possible", "{engine:?}: {answer}");
    let answer = w
        .ask(
            json!({"given_name": "Amelia", "family_name": "Hughes", "date_of_birth": "2014-05-09"}),
            "front-door-triage",
        )
        .await;
    assert_eq!(answer["matches"][0]["tier"], "probable", "{answer}");
}

#[suite::test(each_engine)]
async fn not_known_is_said_plainly_and_is_never_called_safe(engine: Engine) {
    let w = world(engine).await;
    let answer = w
        .ask(json!({"given_name": "Noah", "family_name": "Brennan", "date_of_birth": "2017-02-02"}), "s17-assessment")
        .await;
    assert_eq!(answer["known"], false, "{engine:?}");
    assert!(answer["matches"].as_array().unwrap().is_empty());
    assert!(answer["summary"].as_str().unwrap().contains("not a statement that the child is safe"));
    assert_eq!(answer["coverage"]["organisations_participating"], 2);
    assert_eq!(answer["coverage"]["organisations_with_holdings"], 1);
    assert!(answer["coverage"]["last_update"].is_string());
}

#[suite::test]
async fn a_school_sees_the_contact_but_not_the_category() {
    let w = world(Engine::Sqlite).await;
    let school = w.app.org("100001", "school").await;
    let teacher = w.app.token(&school, Role::Practitioner).await;
    let (_, answer) = w
        .app
        .post(
            &teacher,
            "/api/v1/lookups",
            &json!({"subject": {"nhs_number": NHS}, "purpose": "education-safeguarding"}),
        )
        .await;
    let m = &answer["matches"][0];
    assert_eq!(m["contact"]["phone"], "0161 234 5678");
    assert!(m.get("category").is_none() && m.get("status").is_none(), "{m}");
    assert!(!answer.to_string().contains("child-protection-plan"));
}

#[suite::test]
async fn several_records_at_one_organisation_come_back_grouped() {
    let w = world(Engine::Sqlite).await;
    register(&w.app, &w.holder_admin, "MCR-EH-9", "early-help", amelia()).await;
    let answer = w.ask(json!({"nhs_number": NHS}), "s47-enquiry").await;
    let matches = answer["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 1, "{answer}");
    assert_eq!(matches[0]["records"].as_array().unwrap().len(), 2);
}

/// The search reads each holding it hits, with its organisation, in the same step as the hits:
/// a child held by two organisations comes back under each with that one's own contact (the
/// team's phone, or else the organisation's duty line), and a twin the search also hits through
/// the shared family name and date is not named.
#[suite::test(each_engine)]
async fn a_child_held_twice_is_named_by_each_holder_with_its_own_contact(engine: Engine) {
    let w = world(engine).await;
    let (_, [york_admin]) = org_with(&w.app, YORK, [Role::OrgAdmin]).await;
    let no_contact = json!({"category": "early-help", "status": "open", "subject": amelia()});
    put_holding(&w.app, &york_admin, "YRK-1", &no_contact).await;
    let twin = json!({"given_name": "Oliver", "family_name": "Hughes", "date_of_birth": "2014-05-09"});
    register(&w.app, &w.holder_admin, "MCR-TWIN", "early-help", twin).await;

    let answer = w
        .ask(json!({"given_name": "Amelia", "family_name": "Hughes", "date_of_birth": "2014-05-09"}), "s47-enquiry")
        .await;
    let matches = answer["matches"].as_array().unwrap();
    let contact_of = |code: &str| {
        let group =
            matches.iter().find(|m| m["organisation"]["code"] == code).unwrap_or_else(|| panic!("{code}: {answer}"));
        assert_eq!(group["records"].as_array().map(Vec::len), Some(1), "{engine:?}: {answer}");
        group["records"][0]["contact"]["phone"].clone()
    };
    assert_eq!(contact_of(MANCHESTER.code), "0161 234 5678");
    assert_eq!(contact_of(YORK.code), "01632 960999");
    assert_eq!(matches.len(), 2, "the twin is not named: {answer}");
}

#[suite::test(each_engine)]
async fn the_holder_sees_who_asked_from_where_and_why(engine: Engine) {
    let w = world(engine).await;
    w.app.post(&w.worker, "/api/v1/lookups", &json!({"subject": {"nhs_number": NHS}, "purpose": "s47-enquiry"})).await;
    let (status, view) = w.app.get(&w.holder_admin, "/api/v1/lookups/received").await;
    assert_eq!(status, StatusCode::OK);
    let first = &view["lookups"][0];
    assert_eq!(first["asking_organisation"], "E08000035", "{engine:?}: {view}");
    assert_eq!(first["purpose"], "s47-enquiry");
    assert_eq!(first["local_ref"], "MCR-1");
    assert!(first["asked_by"].as_str().unwrap().contains("practitioner"));
    let (_, asker_view) = w.app.get(&w.worker, "/api/v1/lookups/received").await;
    assert!(asker_view["lookups"].as_array().unwrap().is_empty(), "the asker's organisation holds nothing");
}

#[suite::test]
async fn every_validation_error_names_its_field() {
    let w = world(Engine::Sqlite).await;
    let cases = [
        (json!({"subject": {"nhs_number": NHS}}), "purpose"),
        (json!({"subject": {"nhs_number": NHS}, "purpose": "curiosity"}), "purpose"),
        (json!({"subject": {"nhs_number": NHS}, "purpose": "other"}), "purpose_detail"),
        (json!({"subject": {"nhs_number": "9074833781"}, "purpose": "s47-enquiry"}), "subject.nhs_number"),
        (json!({"subject": {"given_name": "Amelia"}, "purpose": "s47-enquiry"}), "subject"),
        (json!({"purpose": "s47-enquiry"}), "subject"),
        (
            json!({"subject": {"given_name": "A", "family_name": "B", "date_of_birth": "2014-13-45"}, "purpose": "s47-enquiry"}),
            "subject.date_of_birth",
        ),
    ];
    for (body, field) in cases {
        let (status, error) = w.app.post(&w.worker, "/api/v1/lookups", &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {error}");
        let named: Vec<String> = std::iter::once(error["error"]["field"].as_str().unwrap_or("").to_string())
            .chain(
                error["errors"].as_array().into_iter().flatten().map(|e| e["field"].as_str().unwrap_or("").to_string()),
            )
            .collect();
        assert!(named.iter().any(|f| f == field), "{field} not named in {error}");
        assert!(!error.to_string().contains("9074833781") && !error.to_string().contains("Amelia"));
    }
    let long = "x".repeat(300);
    let (status, _) = w
        .app
        .post(
            &w.worker,
            "/api/v1/lookups",
            &json!({"subject": {"nhs_number": NHS}, "purpose": "other", "purpose_detail": long}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "free text is short, not case notes");
}

#[suite::test(each_engine)]
async fn lookup_fails_closed_when_audit_cannot_be_written(engine: Engine) {
    let w = world(engine).await;
    common::refuse_audit_writes(w.app.store(), engine).await;
    let (status, body) = w
        .app
        .post(&w.worker, "/api/v1/lookups", &json!({"subject": {"nhs_number": NHS}, "purpose": "s47-enquiry"}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{engine:?}");
    let text = body.to_string();
    assert!(!text.contains("E08000003") && !text.contains("0161") && body.get("matches").is_none(), "{text}");
    assert_eq!(body["error"]["code"], "unavailable");
}

#[suite::test]
async fn the_lookup_event_records_who_and_why_but_no_identifier() {
    let w = world(Engine::Sqlite).await;
    let answer = w
        .ask(
            json!({"nhs_number": NHS, "given_name": "Amelia", "family_name": "Hughes", "date_of_birth": "2014-05-09"}),
            "s47-enquiry",
        )
        .await;
    let events = w.app.audit_bodies().await;
    let lookup = events.iter().find(|e| e["type"] == "lookup").expect("lookup audited");
    assert_eq!(lookup["lookup_id"], answer["lookup_id"]);
    assert_eq!(lookup["purpose"], "s47-enquiry");
    assert_eq!(lookup["details"]["result_count"], 1);
    assert!(lookup["details"]["key_kinds_asked"].as_array().unwrap().iter().any(|k| k == "nhs-number"), "{lookup}");
    let all = serde_json::to_string(&events).unwrap().to_lowercase();
    for canary in [NHS, "amelia", "hughes", "2014-05-09"] {
        assert!(!all.contains(canary), "{canary} in the audit trail");
    }
}

#[suite::test]
async fn rate_limits_refuse_bursts_with_retry_after_and_are_audited() {
    let app = TestApp::start_with(Engine::Sqlite, |s| {
        s.limits.user_lookup_burst = 2;
        s.limits.user_lookups_per_minute = 2;
    })
    .await;
    let org = app.org("E1", "local-authority").await;
    let worker = app.token(&org, Role::Practitioner).await;
    let body = json!({"subject": {"nhs_number": NHS}, "purpose": "s47-enquiry"});
    for _ in 0..2 {
        assert_eq!(app.post(&worker, "/api/v1/lookups", &body).await.0, StatusCode::OK);
    }
    let response = app.http.post(app.url("/api/v1/lookups")).bearer_auth(&worker).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_some());
    let (_, error) = common::split(response).await;
    assert!(error["error"]["message"].as_str().unwrap().contains("wait"));
    assert!(app.audit_types().await.iter().any(|t| t == "rate_limited"));
}

#[suite::test(each_engine)]
async fn the_daily_quota_holds_and_says_when_it_resets(engine: Engine) {
    let app = TestApp::start_with(engine, |s| s.limits.user_daily_lookups = 3).await;
    let org = app.org("E1", "local-authority").await;
    let worker = app.token(&org, Role::Practitioner).await;
    let body = json!({"subject": {"nhs_number": NHS}, "purpose": "s47-enquiry"});
    for _ in 0..3 {
        assert_eq!(app.post(&worker, "/api/v1/lookups", &body).await.0, StatusCode::OK);
    }
    let (status, error) = app.post(&worker, "/api/v1/lookups", &body).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{engine:?}");
    assert!(error["error"]["message"].as_str().unwrap().contains("today's limit"));
    app.clock.advance_ms(86_400_000);
    assert_eq!(app.post(&worker, "/api/v1/lookups", &body).await.0, StatusCode::OK, "a new day, a new quota");
}

#[suite::test]
async fn with_rate_limits_off_nothing_is_refused() {
    let app = TestApp::start_with(Engine::Sqlite, |s| {
        s.limits.enabled = false;
        s.limits.user_lookup_burst = 1;
        s.limits.user_daily_lookups = 1;
    })
    .await;
    let org = app.org("E1", "local-authority").await;
    let worker = app.token(&org, Role::Practitioner).await;
    let body = json!({"subject": {"nhs_number": NHS}, "purpose": "s47-enquiry"});
    for _ in 0..5 {
        assert_eq!(app.post(&worker, "/api/v1/lookups", &body).await.0, StatusCode::OK);
    }
}

#[suite::test(each_engine)]
async fn the_prefilter_drops_typo_probes_that_exist_nowhere_but_keeps_real_typo_matches(engine: Engine) {
    let w = world(engine).await;
    w.app.state.rebuild_prefilter().await.unwrap();
    // Registered after the filter was built: added on write, so still found by a typo.
    let manchester = w.app.store().organisation_by_code("E08000003").await.unwrap();
    let admin = w.app.token(&manchester, Role::OrgAdmin).await;
    register(
        &w.app,
        &admin,
        "MCR-2",
        "early-help",
        json!({"given_name": "Tobias", "family_name": "Lindqvist", "date_of_birth": "2016-10-10"}),
    )
    .await;
    for (given, family, dob) in [("Amedia", "Hughes", "2014-05-09"), ("Tobian", "Lindqvist", "2016-10-10")] {
        let answer =
            w.ask(json!({"given_name": given, "family_name": family, "date_of_birth": dob}), "s17-assessment").await;
        assert_eq!(answer["known"], true, "{engine:?}: {given} {family}: {answer}");
    }
    let events = w.app.audit_bodies().await;
    let last = events.iter().rev().find(|e| e["type"] == "lookup").unwrap();
    let (asked, queried) =
        (last["details"]["keys_asked"].as_u64().unwrap(), last["details"]["keys_queried"].as_u64().unwrap());
    // Key family 2: a lookup asks a few dozen keys (not ~900), and the tolerance keys that exist
    // nowhere (most of each name's deletion neighbourhood) never reach the database.
    assert!(asked <= 100, "{asked} keys asked");
    assert!(queried * 2 < asked, "most tolerance probes were screened out: {queried} of {asked}");
}

/// A node loading its prefilter answers correctly but slowly, so it is not ready until the
/// load has been tried.
#[suite::test]
async fn a_serving_node_is_not_ready_until_its_prefilter_load_has_been_tried() {
    let w = world(Engine::Sqlite).await;
    let ready = async || w.app.http.get(w.app.url("/readyz")).send().await.unwrap().status();
    assert_eq!(ready().await, StatusCode::OK);
    w.app.state.mark_prefilter_warming();
    assert_eq!(ready().await, StatusCode::SERVICE_UNAVAILABLE);
    let service = w.app.state.clone();
    let upkeep = tokio::spawn(async move { service.maintain_prefilter(std::time::Duration::from_secs(3600)).await });
    let mut status = ready().await;
    for _ in 0..200 {
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        status = ready().await;
    }
    upkeep.abort();
    assert_eq!(status, StatusCode::OK, "ready once the filter is loaded");
    assert!(!w.app.state.prefilter_for_tests().needs_rebuild(), "and the filter is in place");
}

#[suite::test(each_engine)]
async fn lookups_received_in_one_millisecond_are_paged_without_a_gap_or_a_repeat(engine: Engine) {
    let app = TestApp::start_with(engine, |s| s.limits.enabled = false).await;
    let manchester = app.org("E08000003", "local-authority").await;
    let leeds = app.org("E08000035", "local-authority").await;
    let holder_admin = app.token(&manchester, Role::OrgAdmin).await;
    let worker = app.token(&leeds, Role::Practitioner).await;
    register(&app, &holder_admin, "MCR-1", "child-protection-plan", amelia()).await;
    // The manual clock stands still: all 300 share one millisecond.
    for _ in 0..300 {
        let body = json!({"subject": {"nhs_number": NHS}, "purpose": "s47-enquiry"});
        assert_eq!(app.post(&worker, "/api/v1/lookups", &body).await.0, StatusCode::OK);
    }
    let rows = app.every_page(&holder_admin, "/api/v1/lookups/received", "lookups", 7).await;
    let ids: std::collections::BTreeSet<&str> = rows.iter().map(|r| r["match_id"].as_str().unwrap()).collect();
    assert_eq!((rows.len(), ids.len()), (300, 300), "{engine:?}: every row once");

    // The old time bound still works (lookups strictly before it), and nonsense is named.
    let (status, page) = app.get(&holder_admin, "/api/v1/lookups/received?before=2026-11-25&limit=1000").await;
    assert_eq!((status, page["lookups"].as_array().unwrap().len()), (StatusCode::OK, 300));
    let (status, page) = app.get(&holder_admin, "/api/v1/lookups/received?before=2026-11-24T09:00:00Z").await;
    assert_eq!((status, page["lookups"].as_array().unwrap().len()), (StatusCode::OK, 0));
    let (status, error) = app.get(&holder_admin, "/api/v1/lookups/received?before=yesterday").await;
    assert_eq!((status, &error["error"]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("before")));
}
/// A family of `n` copies of one child, each at a different postcode district: the guessing
/// pattern a per-request count would let through.
fn family_of_copies(n: usize) -> Value {
    let children: Vec<Value> = (1..=n).map(|d| json!({"nhs_number": NHS, "postcode": format!("M{d} 1AA")})).collect();
    json!({"family": {"children": children, "carers": []}, "purpose": "s47-enquiry"})
}

#[suite::test(each_engine)]
async fn a_family_lookup_uses_the_daily_quota_once_per_subject_asked(engine: Engine) {
    let app = TestApp::start_with(engine, |s| {
        s.limits.user_daily_lookups = 10;
        s.limits.user_lookup_burst = 100;
        s.limits.user_lookups_per_minute = 100;
    })
    .await;
    let org = app.org("E1", "local-authority").await;
    let worker = app.token(&org, Role::Practitioner).await;
    let (status, answer) = app.post(&worker, "/api/v1/lookups", &family_of_copies(8)).await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {answer}");
    let (status, error) = app.post(&worker, "/api/v1/lookups", &family_of_copies(3)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{engine:?}: 8 + 3 > 10: {error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("today's limit"), "{error}");
    let single = json!({"subject": {"nhs_number": NHS}, "purpose": "s47-enquiry"});
    for _ in 0..2 {
        assert_eq!(app.post(&worker, "/api/v1/lookups", &single).await.0, StatusCode::OK, "{engine:?}");
    }
    assert_eq!(app.post(&worker, "/api/v1/lookups", &single).await.0, StatusCode::TOO_MANY_REQUESTS);
    let refused = app.audit_types().await.iter().filter(|t| *t == "rate_limited").count();
    assert_eq!(refused, 2, "{engine:?}: each refusal audited");
}

#[suite::test]
async fn a_family_lookup_uses_the_rate_limit_once_per_subject_asked() {
    let app = TestApp::start_with(Engine::Sqlite, |s| {
        s.limits.user_lookup_burst = 5;
        s.limits.user_lookups_per_minute = 5;
    })
    .await;
    let org = app.org("E1", "local-authority").await;
    let worker = app.token(&org, Role::Practitioner).await;
    assert_eq!(app.post(&worker, "/api/v1/lookups", &family_of_copies(4)).await.0, StatusCode::OK);
    let response =
        app.http.post(app.url("/api/v1/lookups")).bearer_auth(&worker).json(&family_of_copies(2)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "4 + 2 > a burst of 5");
    assert!(response.headers().get("retry-after").is_some());
    assert!(app.audit_types().await.iter().any(|t| t == "rate_limited"));
    let single = json!({"subject": {"nhs_number": NHS}, "purpose": "s47-enquiry"});
    assert_eq!(app.post(&worker, "/api/v1/lookups", &single).await.0, StatusCode::OK, "the fifth fits");
}
