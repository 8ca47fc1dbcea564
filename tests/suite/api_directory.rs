//! The directory: searched by everyone signed in, managed by operators.

use crate::common;
use crate::common::Engine;

use child_locator::domain::role::Role;
use common::TestApp;
use reqwest::StatusCode;
use serde_json::json;

#[suite::test(each_engine)]
async fn a_worker_finds_another_councils_duty_line_by_part_of_its_name(engine: Engine) {
    let app = TestApp::start(engine).await;
    let home = app.org("E09000033", "local-authority").await;
    app.org("E08000025", "local-authority").await;
    let token = app.token(&home, Role::Practitioner).await;
    let (status, body) = app.get(&token, "/api/v1/organisations?q=e08000025").await;
    assert_eq!(status, StatusCode::OK, "{engine:?}");
    let found = body["organisations"].as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["code"], "E08000025");
    assert_eq!(found[0]["duty_phone"], "01632 960999");
    let (_, body) = app.get(&token, "/api/v1/organisations?q=TEST%20ORG").await;
    assert_eq!(body["organisations"].as_array().unwrap().len(), 2, "case-insensitive on the name");
    let (_, body) = app.get(&token, "/api/v1/organisations?q=%25").await;
    assert_eq!(body["organisations"].as_array().unwrap().len(), 0, "a % is text, not a wildcard");
}

#[suite::test(each_engine)]
async fn an_operator_adds_and_updates_an_organisation(engine: Engine) {
    let app = TestApp::start(engine).await;
    let national = app.org("NATIONAL", "other").await;
    let operator = app.token(&national, Role::Operator).await;
    let body = json!({"code": "rwe", "name": "Leicester NHS Trust", "kind": "nhs-trust",
        "duty_phone": "0116 258 5111", "secure_email": "safeguarding@uhl.nhs.net"});
    let (status, created) = app.post(&operator, "/api/v1/organisations", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{engine:?}: {created}");
    assert_eq!(created["code"], "RWE");
    let (status, _) = app.post(&operator, "/api/v1/organisations", &body).await;
    assert_eq!(status, StatusCode::CONFLICT, "a code is unique");

    let (status, updated) =
        app.patch(&operator, "/api/v1/organisations/rwe", &json!({"out_of_hours_phone": "0116 111 2222"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["out_of_hours_phone"], "0116 111 2222");
    assert_eq!(updated["name"], "Leicester NHS Trust");

    let (_, _) = app.patch(&operator, "/api/v1/organisations/RWE", &json!({"active": false})).await;
    let (_, listed) = app.get(&operator, "/api/v1/organisations?q=leicester").await;
    assert!(listed["organisations"].as_array().unwrap().is_empty(), "inactive entries are hidden by default");
    let types = app.audit_types().await;
    assert!(types.iter().any(|t| t == "organisation_added") && types.iter().any(|t| t == "organisation_updated"));
}

#[suite::test]
async fn invalid_organisations_are_refused_naming_every_field() {
    let app = TestApp::start(common::Engine::Sqlite).await;
    let national = app.org("NATIONAL", "other").await;
    let operator = app.token(&national, Role::Operator).await;
    let (status, body) = app
        .post(&operator, "/api/v1/organisations", &json!({"code": "no spaces!", "kind": "council", "duty_phone": "x"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "name");
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for f in ["code", "kind", "duty_phone", "secure_email"] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
    let (status, body) = app.post(&operator, "/api/v1/organisations", &json!({"colour": "red"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "unknown_field");
    assert_eq!(
        body["error"]["field"],
        "colour".to_string().replace("colour", "?"),
        "a bare unknown word is not echoed"
    );
}

#[suite::test]
async fn a_missing_organisation_is_404() {
    let app = TestApp::start(common::Engine::Sqlite).await;
    let org = app.org("E1", "other").await;
    let token = app.token(&org, Role::Practitioner).await;
    assert_eq!(app.get(&token, "/api/v1/organisations/NOPE").await.0, StatusCode::NOT_FOUND);
}
