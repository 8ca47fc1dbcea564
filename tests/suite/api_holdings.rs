//! Holdings and match signalling through the HTTP API, on every engine.

use crate::common;
use crate::common::Engine;

use child_locator::domain::role::Role;
use common::TestApp;
use common::fixtures::{LEEDS, YORK, org_with, put_holding};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Canary identifiers: if any of these strings turns up in storage or logs, a test fails.
const CANARY_GIVEN: &str = "Zebedee";
const CANARY_FAMILY: &str = "Quillfeather";
const CANARY_NHS: &str = "3982597919";

fn canary_holding(category: &str) -> Value {
    json!({
        "category": category,
        "status": "open",
        "subject": {"nhs_number": "398 259 7919", "given_name": CANARY_GIVEN, "family_name": CANARY_FAMILY,
                    "date_of_birth": "2016-03-14", "postcode": "LS1 4AP"},
        "contact": {"team": "Assessment Team 2", "phone": "0113 222 4401"}
    })
}

#[suite::test(each_engine)]
async fn a_holding_is_stored_as_pseudonyms_and_a_repeat_changes_nothing(engine: Engine) {
    let app = TestApp::start(engine).await;
    let org = app.org("E08000035", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let (status, body) = app.put(&admin, "/api/v1/holdings/CASE-001", &canary_holding("child-in-need")).await;
    assert_eq!(status, StatusCode::CREATED, "{engine:?}: {body}");
    assert_eq!(body["change"], "added");
    assert!(body["pseudonym_count"].as_i64().unwrap() >= 3);
    let text = body.to_string();
    assert!(!text.contains(CANARY_GIVEN) && !text.contains(CANARY_NHS), "no identifier comes back");

    let (status, body) = app.put(&admin, "/api/v1/holdings/CASE-001", &canary_holding("child-in-need")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["change"], "unchanged");

    let mut closed = canary_holding("child-in-need");
    closed["status"] = json!("closed");
    let (_, body) = app.put(&admin, "/api/v1/holdings/CASE-001", &closed).await;
    assert_eq!(body["change"], "updated");
    assert!(body["closed_at"].is_string());
    let stored = app.store().count_pseudonyms().await.unwrap();
    assert_eq!(Some(stored), body["pseudonym_count"].as_i64(), "{engine:?}: re-keyed in place, no old key left");

    let (status, body) = app.get(&admin, "/api/v1/holdings/CASE-001").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "closed");
    assert_eq!(app.delete(&admin, "/api/v1/holdings/CASE-001").await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&admin, "/api/v1/holdings/CASE-001").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.store().count_pseudonyms().await.unwrap(), 0, "{engine:?}: its keys went with it");
}

#[suite::test(each_engine)]
async fn both_organisations_see_one_match_and_it_is_withdrawn_when_the_holding_goes(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (_, [leeds_admin]) = org_with(&app, LEEDS, [Role::OrgAdmin]).await;
    let (_, [york_admin]) = org_with(&app, YORK, [Role::OrgAdmin]).await;
    app.put(&leeds_admin, "/api/v1/holdings/L-77", &canary_holding("child-protection-plan")).await;
    // York recorded the child with a short form of the name and no NHS number, after a move.
    let york_record = json!({"category": "child-in-need", "status": "open",
        "subject": {"given_name": CANARY_GIVEN, "family_name": CANARY_FAMILY, "date_of_birth": "2016-03-14",
                    "postcode": "YO1 7HH"}});
    let (status, _) = app.put(&york_admin, "/api/v1/holdings/Y-12", &york_record).await;
    assert_eq!(status, StatusCode::CREATED);

    let (_, leeds_view) = app.get(&leeds_admin, "/api/v1/matches").await;
    let (_, york_view) = app.get(&york_admin, "/api/v1/matches").await;
    let leeds_matches = leeds_view["matches"].as_array().unwrap();
    let york_matches = york_view["matches"].as_array().unwrap();
    assert_eq!(leeds_matches.len(), 1, "{engine:?}: {leeds_view}");
    assert_eq!(york_matches.len(), 1);
    assert_eq!(leeds_matches[0]["match_id"], york_matches[0]["match_id"], "one match_id for both sides");
    assert_eq!(leeds_matches[0]["local_ref"], "L-77");
    assert_eq!(leeds_matches[0]["other_organisation"]["code"], "E06000014");
    assert_eq!(york_matches[0]["other_organisation"]["duty_phone"], "01632 960999");
    assert_eq!(leeds_matches[0]["basis"], "child");
    assert!(
        ["probable", "possible"].contains(&leeds_matches[0]["tier"].as_str().unwrap()),
        "no NHS number on one side"
    );

    app.delete(&york_admin, "/api/v1/holdings/Y-12").await;
    let (_, leeds_view) = app.get(&leeds_admin, "/api/v1/matches").await;
    assert!(leeds_view["matches"].as_array().unwrap().is_empty(), "withdrawn for the other side too");
    let types = app.audit_types().await;
    assert!(types.iter().any(|t| t == "match_made") && types.iter().any(|t| t == "match_withdrawn"));
}

/// A holding changed so that it no longer describes the child withdraws its own match, and only
/// that one: the other organisation's second record of the child stays matched.
#[suite::test(each_engine)]
async fn a_holding_changed_to_another_child_withdraws_its_match_and_keeps_the_others(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (_, [leeds_admin]) = org_with(&app, LEEDS, [Role::OrgAdmin]).await;
    let (_, [york_admin]) = org_with(&app, YORK, [Role::OrgAdmin]).await;
    app.put(&leeds_admin, "/api/v1/holdings/L-77", &canary_holding("child-protection-plan")).await;
    for local_ref in ["Y-12", "Y-13"] {
        let (status, _) =
            app.put(&york_admin, &format!("/api/v1/holdings/{local_ref}"), &canary_holding("child-in-need")).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let live = |view: Value| -> Vec<String> {
        let mut refs: Vec<String> =
            view["matches"].as_array().unwrap().iter().map(|m| m["local_ref"].as_str().unwrap().into()).collect();
        refs.sort();
        refs
    };
    assert_eq!(live(app.get(&york_admin, "/api/v1/matches").await.1), ["Y-12", "Y-13"], "{engine:?}");

    let another_child = json!({"category": "child-in-need", "status": "open",
        "subject": {"given_name": "Olwen", "family_name": "Brightwater", "date_of_birth": "2011-09-02"}});
    let (status, _) = app.put(&york_admin, "/api/v1/holdings/Y-12", &another_child).await;
    assert!(status.is_success(), "{engine:?}: {status}");
    assert_eq!(live(app.get(&york_admin, "/api/v1/matches").await.1), ["Y-13"], "{engine:?}");
    assert_eq!(live(app.get(&leeds_admin, "/api/v1/matches").await.1), ["L-77"], "{engine:?}");
    let withdrawn = app.audit_types().await.iter().filter(|t| *t == "match_withdrawn").count();
    assert_eq!(withdrawn, 1, "{engine:?}: only Y-12's match");

    // Still the same child after a change of status: the match is kept, not withdrawn and remade.
    let match_id = app.get(&york_admin, "/api/v1/matches").await.1["matches"][0]["match_id"].clone();
    let mut closed = canary_holding("child-in-need");
    closed["status"] = json!("closed");
    let (status, _) = app.put(&york_admin, "/api/v1/holdings/Y-13", &closed).await;
    assert!(status.is_success(), "{engine:?}: {status}");
    assert_eq!(app.get(&york_admin, "/api/v1/matches").await.1["matches"][0]["match_id"], match_id, "{engine:?}");
    let withdrawn = app.audit_types().await.iter().filter(|t| *t == "match_withdrawn").count();
    assert_eq!(withdrawn, 1, "{engine:?}: nothing more withdrawn");
}

#[suite::test]
async fn the_same_nhs_number_on_both_sides_is_confirmed() {
    let app = TestApp::start(common::Engine::Sqlite).await;
    let a = app.org("A1", "local-authority").await;
    let b = app.org("B1", "nhs-trust").await;
    let a_admin = app.token(&a, Role::OrgAdmin).await;
    let b_admin = app.token(&b, Role::OrgAdmin).await;
    app.put(&a_admin, "/api/v1/holdings/X", &canary_holding("looked-after")).await;
    app.put(&b_admin, "/api/v1/holdings/Y", &canary_holding("other")).await;
    let (_, view) = app.get(&a_admin, "/api/v1/matches").await;
    assert_eq!(view["matches"][0]["tier"], "confirmed", "{view}");
}

#[suite::test(each_engine)]
async fn another_organisations_holding_is_404(engine: Engine) {
    let app = TestApp::start(engine).await;
    let a = app.org("A1", "local-authority").await;
    let b = app.org("B1", "local-authority").await;
    let a_admin = app.token(&a, Role::OrgAdmin).await;
    let b_admin = app.token(&b, Role::OrgAdmin).await;
    app.put(&a_admin, "/api/v1/holdings/SECRET-1", &canary_holding("other")).await;
    assert_eq!(app.get(&b_admin, "/api/v1/holdings/SECRET-1").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&b_admin, "/api/v1/holdings/SECRET-1").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&a_admin, "/api/v1/holdings/SECRET-1").await.0, StatusCode::OK, "{engine:?}");
}

#[suite::test]
async fn invalid_identifiers_are_named_and_never_echoed() {
    let app = TestApp::start(common::Engine::Sqlite).await;
    let org = app.org("A1", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let body = json!({"category": "sometimes", "status": "open",
        "subject": {"nhs_number": "3982597918", "given_name": CANARY_GIVEN, "date_of_birth": "2099-01-01"}});
    let (status, error) = app.put(&admin, "/api/v1/holdings/Z-1", &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = error["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"category") && fields.contains(&"subject.nhs_number"), "{fields:?}");
    assert!(fields.contains(&"subject.date_of_birth"), "{fields:?}");
    let text = error.to_string();
    assert!(!text.contains("3982597918") && !text.contains(CANARY_GIVEN) && !text.contains("2099"), "{text}");

    let (status, error) = app.put(&admin, &format!("/api/v1/holdings/{CANARY_NHS}"), &canary_holding("other")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an NHS number is not a record reference");
    assert_eq!(error["error"]["field"], "local_ref");
}

#[suite::test]
async fn canary_identifiers_never_reach_the_database_files() {
    let app = TestApp::start(common::Engine::Sqlite).await;
    let org = app.org("A1", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    app.put(&admin, "/api/v1/holdings/C-1", &canary_holding("child-in-need")).await;
    let mut bad = canary_holding("child-in-need");
    bad["subject"]["date_of_birth"] = json!("not a date");
    app.put(&admin, "/api/v1/holdings/C-2", &bad).await;
    app.assert_db_files_free_of(&[CANARY_GIVEN, CANARY_FAMILY, CANARY_NHS, "2016-03-14", "LS1 4AP"]);
}

#[suite::test(each_engine)]
async fn closed_holdings_are_purged_after_retention_and_their_matches_withdrawn(engine: Engine) {
    let app = TestApp::start(engine).await;
    let a = app.org("A1", "local-authority").await;
    let b = app.org("B1", "local-authority").await;
    let a_admin = app.token(&a, Role::OrgAdmin).await;
    let b_admin = app.token(&b, Role::OrgAdmin).await;
    let mut closed = canary_holding("child-in-need");
    closed["status"] = json!("closed");
    app.put(&a_admin, "/api/v1/holdings/OLD-1", &closed).await;
    app.put(&a_admin, "/api/v1/holdings/OPEN-1", &canary_holding("early-help")).await;
    app.put(&b_admin, "/api/v1/holdings/B-1", &canary_holding("other")).await;
    assert_eq!(app.get(&b_admin, "/api/v1/matches").await.1["matches"].as_array().unwrap().len(), 2);

    app.clock.advance_ms(729 * 86_400_000);
    assert_eq!(app.state.purge(false).await.unwrap().holdings, 0, "{engine:?}: not yet");
    app.clock.advance_ms(2 * 86_400_000);
    let summary = app.state.purge(false).await.unwrap();
    assert_eq!((summary.holdings, summary.matches_withdrawn), (1, 1));
    assert_eq!(app.get(&a_admin, "/api/v1/holdings/OLD-1").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&a_admin, "/api/v1/holdings/OPEN-1").await.0, StatusCode::OK, "open holdings stay");
    assert_eq!(app.get(&b_admin, "/api/v1/matches").await.1["matches"].as_array().unwrap().len(), 1);
    assert!(app.audit_types().await.iter().any(|t| t == "purge"));
}

/// Every key the index holds now, each with how many holdings carry it.
async fn index_keys(app: &TestApp) -> Vec<(i64, i64)> {
    let page = app.store().key_page(None, 100_000).await.expect("the index's keys");
    page.into_iter().map(|(key, holders)| (key.0, holders)).collect()
}

/// A rewritten holding keeps the keys its old and new details share and trades the rest
/// (`store::key_changes`): what the index holds after each rewrite is exactly what writing the
/// new details afresh gives, for a changed contact, a new name, carers added, swapped and gone.
#[suite::test(each_engine)]
async fn a_rewritten_holding_leaves_the_index_as_writing_it_afresh_would(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (_, [admin]) = org_with(&app, LEEDS, [Role::OrgAdmin]).await;
    let mother = json!({"given_name": "Marigold", "family_name": "Thistle", "date_of_birth": "1990-01-02"});
    let father = json!({"given_name": "Bartholomew", "family_name": "Oakes", "date_of_birth": "1988-05-06"});
    let mut versions = vec![canary_holding("child-in-need")];
    let mut next = versions[0].clone();
    next["contact"]["phone"] = json!("0113 222 4499");
    versions.push(next.clone());
    next["subject"]["given_name"] = json!("Zebadiah");
    versions.push(next.clone());
    next["carers"] = json!([mother, father]);
    versions.push(next.clone());
    next["carers"] = json!([father, mother]);
    versions.push(next.clone());
    next["carers"] = json!([]);
    versions.push(next.clone());

    for (i, version) in versions.iter().enumerate() {
        put_holding(&app, &admin, "CASE-1", version).await;
        let rewritten = index_keys(&app).await;
        put_holding(&app, &admin, "CASE-FRESH", version).await;
        let both = index_keys(&app).await;
        assert_eq!(app.delete(&admin, "/api/v1/holdings/CASE-FRESH").await.0, StatusCode::NO_CONTENT);
        assert!(!rewritten.is_empty());
        assert!(rewritten.iter().all(|(_, holders)| *holders == 1), "{engine:?}, version {i}: one holding");
        let doubled: Vec<(i64, i64)> = rewritten.iter().map(|(key, _)| (*key, 2)).collect();
        assert_eq!(both, doubled, "{engine:?}, version {i}: the same keys as a fresh holding, no more, no fewer");
    }
    assert_eq!(app.delete(&admin, "/api/v1/holdings/CASE-1").await.0, StatusCode::NO_CONTENT);
    assert!(index_keys(&app).await.is_empty(), "{engine:?}: no key left behind");
}
