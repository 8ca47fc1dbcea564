//! Re-keying an index to a new key family (#21) without holders doing anything by hand: holdings
//! written under key family 1 are still found while any remain, and the next sync re-keys them;
//! holdings of key family 2 keep meeting everything they met and gain family 3's keys the same way.

use crate::common;
use crate::common::Engine;

use child_locator::domain::role::Role;
use common::TestApp;
use common::fixtures::as_key_family;
use reqwest::StatusCode;
use serde_json::json;

const CASELOAD: &str = "local_ref,category,status,given_name,family_name,date_of_birth\n\
                        R-1,looked-after,open,Ruby,Fletcher,2014-05-09\n";

/// An index holding Ruby Fletcher for one organisation, synced by the current release, and a
/// practitioner of another organisation to look her up.
struct Synced {
    app: TestApp,
    admin: String,
    worker: String,
    /// The holding's key count under the current key family.
    current_keys: i64,
}

async fn one_holding_synced(engine: Engine) -> Synced {
    let app = TestApp::start(engine).await;
    let holder = app.org("E08000003", "local-authority").await;
    let asker = app.org("E08000035", "local-authority").await;
    let admin = app.token(&holder, Role::OrgAdmin).await;
    let worker = app.token(&asker, Role::Practitioner).await;
    let (status, s) = app.sync(&admin, "text/csv", CASELOAD.to_string(), "").await;
    assert_eq!((status, s["added"].as_u64()), (StatusCode::OK, Some(1)), "{engine:?}: {s}");
    let current_keys = app.get(&admin, "/api/v1/holdings/R-1").await.1["pseudonym_count"].as_i64().unwrap();
    Synced { app, admin, worker, current_keys }
}

#[suite::test(each_engine)]
async fn an_index_of_key_family_one_is_still_found_and_is_re_keyed_by_the_next_sync(engine: Engine) {
    let Synced { app, admin, worker, current_keys } = one_holding_synced(engine).await;

    // The same index as an older release wrote it: no deletion or partial-date keys.
    as_key_family(app.store(), engine, 1).await;
    let app = app.restart().await;
    assert!(app.state.keyring_for_tests().family_one_holdings(), "the service sees holdings to re-key");
    let family_one_keys = app.get(&admin, "/api/v1/holdings/R-1").await.1["pseudonym_count"].as_i64().unwrap();
    assert!(family_one_keys < current_keys, "{family_one_keys} of {current_keys}");

    // A typo in the given name is found through family 1's one-edit variants meanwhile.
    let typo = json!({"subject": {"given_name": "Rbuy", "family_name": "Fletcher", "date_of_birth": "2014-05-09"},
        "purpose": "s47-enquiry"});
    let (status, answer) = app.post(&worker, "/api/v1/lookups", &typo).await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {answer}");
    assert_eq!(answer["matches"][0]["tier"], "probable", "found before re-keying: {answer}");

    // The holder's next regular sync of the same, unchanged file re-keys the holding.
    let (status, s) = app.sync(&admin, "text/csv", CASELOAD.to_string(), "").await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {s}");
    assert_eq!(s["updated"], 1, "an unchanged record of an older key family is rewritten: {s}");
    let rekeyed = app.get(&admin, "/api/v1/holdings/R-1").await.1["pseudonym_count"].as_i64().unwrap();
    assert_eq!(rekeyed, current_keys, "the holding carries the current family's keys again");
    let stored = app.store().count_pseudonyms().await.unwrap();
    assert_eq!(stored, current_keys, "{engine:?}: family 1's keys were deleted, found through the holding's list");
    assert!(!app.state.keyring_for_tests().family_one_holdings(), "no holding is left to re-key");

    // Now found through the stored deletion keys, and the sync after that changes nothing.
    let (_, answer) = app.post(&worker, "/api/v1/lookups", &typo).await;
    assert_eq!(answer["matches"][0]["tier"], "probable", "found after re-keying: {answer}");
    let (_, s) = app.sync(&admin, "text/csv", CASELOAD.to_string(), "").await;
    assert_eq!(s["unchanged"], 1, "{s}");
}

#[suite::test(each_engine)]
async fn an_index_of_key_family_two_meets_a_typo_in_each_name_once_the_next_sync_re_keys_it(engine: Engine) {
    let Synced { app, admin, worker, current_keys } = one_holding_synced(engine).await;

    // The same index as the release before key family 3 wrote it.
    as_key_family(app.store(), engine, 2).await;
    let app = app.restart().await;
    assert!(!app.state.keyring_for_tests().family_one_holdings(), "family 2 needs no family-1 variants");
    let lookup = |given: &str, family: &str| {
        json!({"subject": {"given_name": given, "family_name": family, "date_of_birth": "2014-05-09"},
            "purpose": "s47-enquiry"})
    };
    // What family 2 met it still meets; a typo in each name it never met.
    let (status, answer) = app.post(&worker, "/api/v1/lookups", &lookup("Rbuy", "Fletcher")).await;
    assert_eq!((status, &answer["matches"][0]["tier"]), (StatusCode::OK, &json!("probable")), "{engine:?}: {answer}");
    let each = lookup("Rbuy", "Fletcjer");
    let (_, answer) = app.post(&worker, "/api/v1/lookups", &each).await;
    assert_eq!(answer["matches"].as_array().map(Vec::len), Some(0), "not before re-keying: {answer}");

    // The holder's next regular sync of the same file re-keys the holding to family 3.
    let (status, s) = app.sync(&admin, "text/csv", CASELOAD.to_string(), "").await;
    assert_eq!((status, &s["updated"]), (StatusCode::OK, &json!(1)), "{engine:?}: {s}");
    let rekeyed = app.get(&admin, "/api/v1/holdings/R-1").await.1["pseudonym_count"].as_i64().unwrap();
    assert_eq!(rekeyed, current_keys, "the holding carries the current family's keys again");
    assert_eq!(app.store().count_pseudonyms().await.unwrap(), current_keys, "{engine:?}: no key left behind");
    let (_, answer) = app.post(&worker, "/api/v1/lookups", &each).await;
    assert_eq!(answer["matches"][0]["tier"], "possible", "a typo in each name, after re-keying: {answer}");
}
