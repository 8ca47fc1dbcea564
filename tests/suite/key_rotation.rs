//! Rotating the index key without plaintext: lookups keep finding children registered under
//! the old key until their holders re-sync, tokens survive, and retirement waits for re-syncs.

use crate::common;
use crate::common::Engine;

use child_locator::domain::role::Role;
use child_locator::keys;
use common::TestApp;
use reqwest::StatusCode;
use serde_json::json;

fn rotate_on_disk(app: &TestApp) {
    let key_file = app.state.settings().key_file.clone();
    let old = keys::load(&key_file).unwrap();
    keys::write_new(&keys::previous_key_path(&key_file), &old.0).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    keys::generate(&key_file).unwrap();
}

#[suite::test(each_engine)]
async fn a_rotation_keeps_children_findable_until_re_sync_and_then_retires_cleanly(engine: Engine) {
    let app = TestApp::start(engine).await;
    let holder = app.org("E08000003", "local-authority").await;
    let asker = app.org("E08000035", "local-authority").await;
    let admin = app.token(&holder, Role::OrgAdmin).await;
    let worker = app.token(&asker, Role::Practitioner).await;
    let holding = json!({"category": "looked-after", "status": "open",
        "subject": {"nhs_number": "9074833780", "given_name": "Ava", "family_name": "Reid", "date_of_birth": "2013-03-03"}});
    app.put(&admin, "/api/v1/holdings/H-1", &holding).await;
    let old_key_id = app.get(&admin, "/api/v1/holdings/H-1").await.1["key_id"].as_str().unwrap().to_string();
    let lookup = json!({"subject": {"nhs_number": "9074833780"}, "purpose": "s47-enquiry"});

    rotate_on_disk(&app);
    let app = app.restart().await;
    let (status, answer) = app.post(&worker, "/api/v1/lookups", &lookup).await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: the token survives the rotation");
    assert_eq!(answer["matches"][0]["tier"], "confirmed", "found under the previous key: {answer}");
    let waiting = app.store().organisations_on_key(&old_key_id).await.unwrap();
    assert_eq!(waiting, vec![("E08000003".to_string(), 1)], "retirement must wait for this organisation");

    let (_, view) = app.put(&admin, "/api/v1/holdings/H-1", &holding).await;
    assert_eq!(view["change"], "updated", "a re-sync rewrites the holding under the new key");
    assert_ne!(view["key_id"].as_str().unwrap(), old_key_id);
    assert!(app.store().organisations_on_key(&old_key_id).await.unwrap().is_empty());

    std::fs::remove_file(keys::previous_key_path(&app.state.settings().key_file)).unwrap();
    let app = app.restart().await;
    let (status, answer) = app.post(&worker, "/api/v1/lookups", &lookup).await;
    assert_eq!(status, StatusCode::OK, "the token was re-hashed under the new key on first use");
    assert_eq!(answer["matches"][0]["tier"], "confirmed");
}
