//! The IG officer's views of the audit trail, end to end, on every engine: scoping, filters,
//! pages, CSV, subject access, anomaly flags, and proofs against the signed checkpoint.

use crate::common;

use child_locator::audit::checkpoint::{SignedCheckpoint, parse_public_key};
use child_locator::audit::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use child_locator::audit::rollback::{HighWater, check_extends};
use child_locator::audit::stored::verify_stored;
use child_locator::audit::stored::verify_stored_sealed;
use child_locator::audit::witness::{WitnessTarget, push};
use child_locator::clock::Clock;
use child_locator::domain::role::Role;
use child_locator::service::Service;
use child_locator::store::audit::AuditHead;
use common::fixtures::{AMELIA_NHS, LEEDS, MANCHESTER, YORK, amelia, org_with, register};
use common::{Engine, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

const NHS: &str = AMELIA_NHS;

/// Manchester holds Amelia; Leeds asks about her; York asks about a child nobody holds.
struct World {
    app: TestApp,
    mcr_admin: String,
    mcr_ig: String,
    leeds_worker: String,
    leeds_ig: String,
    york_worker: String,
    york_ig: String,
}

async fn world(engine: Engine) -> World {
    let app = TestApp::start_with(engine, |s| s.limits.enabled = false).await;
    let (_, [mcr_admin, mcr_ig]) = org_with(&app, MANCHESTER, [Role::OrgAdmin, Role::IgOfficer]).await;
    let (_, [leeds_worker, leeds_ig]) = org_with(&app, LEEDS, [Role::Practitioner, Role::IgOfficer]).await;
    let (_, [york_worker, york_ig]) = org_with(&app, YORK, [Role::Practitioner, Role::IgOfficer]).await;
    register(&app, &mcr_admin, "MCR-1", "child-protection-plan", amelia()).await;
    World { app, mcr_admin, mcr_ig, leeds_worker, leeds_ig, york_worker, york_ig }
}

async fn lookup(app: &TestApp, token: &str, subject: Value, purpose: &str) -> String {
    let mut body = json!({"subject": subject, "purpose": purpose});
    if purpose == "other" {
        body["purpose_detail"] = json!("checking for a colleague");
    }
    let (status, answer) = app.post(token, "/api/v1/lookups", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["lookup_id"].as_str().unwrap().to_string()
}

fn noah() -> Value {
    json!({"given_name": "Noah", "family_name": "Brennan", "date_of_birth": "2017-02-02"})
}

async fn events(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let (status, list) = app.get(token, &format!("/api/v1/audit/events{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {list}");
    list["events"].as_array().unwrap().clone()
}

async fn me(app: &TestApp, token: &str) -> i64 {
    app.get(token, "/api/v1/me").await.1["user_id"].as_i64().unwrap()
}

#[suite::test(each_engine)]
async fn an_ig_officer_sees_their_own_events_and_lookups_that_touched_their_holdings_but_no_others(engine: Engine) {
    let w = world(engine).await;
    let leeds_lookup = lookup(&w.app, &w.leeds_worker, json!({"nhs_number": NHS}), "s47-enquiry").await;
    let york_lookup = lookup(&w.app, &w.york_worker, noah(), "s17-assessment").await;

    let seen = events(&w.app, &w.mcr_ig, "").await;
    let theirs = seen.iter().find(|e| e["lookup_id"] == leeds_lookup.as_str()).expect("the lookup that touched us");
    assert_eq!(theirs["type"], "lookup");
    assert_eq!(theirs["actor"]["organisation"], "E08000035");
    assert_eq!(theirs["purpose"], "s47-enquiry");
    assert_eq!(theirs["organisations_touched"], json!(["E08000003"]));
    assert_eq!(theirs["our_records"][0]["local_ref"], "MCR-1", "{theirs}");
    assert!(seen.iter().any(|e| e["type"] == "holding_put"), "our own actions");
    assert!(
        seen.iter().all(|e| e["lookup_id"] != york_lookup.as_str() && e["actor"]["organisation"] != "E06000014"),
        "{engine:?}: York's events are invisible to Manchester"
    );
    assert!(seen.iter().all(|e| !(e["type"] == "token_issued" && e["details"]["role"] == "practitioner")));

    let york_sees = events(&w.app, &w.york_ig, "").await;
    assert!(york_sees.iter().any(|e| e["lookup_id"] == york_lookup.as_str()));
    assert!(york_sees.iter().all(|e| e["lookup_id"] != leeds_lookup.as_str()), "{engine:?}");
    let leeds_sees = events(&w.app, &w.leeds_ig, "?type=lookup").await;
    assert_eq!(leeds_sees.len(), 1);
    assert_eq!(leeds_sees[0]["lookup_id"], leeds_lookup.as_str());
    assert!(leeds_sees[0].get("our_records").is_none(), "Leeds holds nothing");
}

#[suite::test(each_engine)]
async fn every_filter_narrows_the_list(engine: Engine) {
    let w = world(engine).await;
    let first = lookup(&w.app, &w.leeds_worker, json!({"nhs_number": NHS}), "s47-enquiry").await;
    w.app.clock.advance_ms(2 * 86_400_000);
    let second = lookup(&w.app, &w.leeds_worker, amelia(), "front-door-triage").await;
    let manchester = w.app.store().organisation_by_code("E08000003").await.unwrap();
    let mcr_worker = w.app.token(&manchester, Role::Practitioner).await;
    let own = lookup(&w.app, &mcr_worker, json!({"nhs_number": NHS}), "s17-assessment").await;
    let worker_id = me(&w.app, &w.leeds_worker).await;
    let ids = |list: Vec<Value>| -> Vec<String> {
        list.iter().filter_map(|e| e["lookup_id"].as_str().map(str::to_string)).collect()
    };
    let ig = &w.mcr_ig;
    assert_eq!(ids(events(&w.app, ig, &format!("?user={worker_id}")).await), vec![second.clone(), first.clone()]);
    assert_eq!(ids(events(&w.app, ig, "?organisation=E08000035").await), vec![second.clone(), first.clone()]);
    assert_eq!(ids(events(&w.app, ig, "?purpose=front-door-triage").await), vec![second.clone()]);
    assert_eq!(ids(events(&w.app, ig, &format!("?lookup_id={first}")).await), vec![first.clone()]);
    assert_eq!(ids(events(&w.app, ig, "?to=2026-11-24").await), vec![first.clone()], "a bare date includes the day");
    assert_eq!(ids(events(&w.app, ig, "?from=2026-11-26T00:00:00Z").await), vec![own.clone(), second.clone()]);
    assert_eq!(
        ids(events(&w.app, ig, "?touching_our_holdings=true").await),
        vec![second.clone(), first.clone()],
        "{engine:?}: who looked up children we hold (not our own lookups)"
    );
    let types: Vec<Value> = events(&w.app, ig, "?type=holding_put").await;
    assert!(!types.is_empty() && types.iter().all(|e| e["type"] == "holding_put"));

    for bad in ["?type=peek", "?from=yesterday", "?user=abc", "?purpose=curiosity"] {
        let (status, error) = w.app.get(ig, &format!("/api/v1/audit/events{bad}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {error}");
        assert!(!error.to_string().contains("yesterday") && !error.to_string().contains("curiosity"));
    }
}

#[suite::test(each_engine)]
async fn pages_follow_the_cursor_without_gaps_or_repeats(engine: Engine) {
    let w = world(engine).await;
    for _ in 0..7 {
        lookup(&w.app, &w.leeds_worker, noah(), "s17-assessment").await;
    }
    let all: Vec<i64> = events(&w.app, &w.leeds_ig, "").await.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(all.len() > 7 && all.windows(2).all(|p| p[0] > p[1]), "newest first: {all:?}");
    let mut paged = Vec::new();
    let mut query = "?limit=3".to_string();
    loop {
        let (_, page) = w.app.get(&w.leeds_ig, &format!("/api/v1/audit/events{query}")).await;
        let ids: Vec<i64> = page["events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect();
        assert!(ids.len() <= 3);
        paged.extend(ids);
        match page["next_cursor"].as_i64() {
            Some(cursor) => query = format!("?limit=3&before={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, all, "{engine:?}");
}

#[suite::test(each_engine)]
async fn csv_export_has_a_row_per_event_and_is_itself_audited(engine: Engine) {
    let w = world(engine).await;
    let id = lookup(&w.app, &w.leeds_worker, json!({"nhs_number": NHS}), "s47-enquiry").await;
    let response =
        w.app.http.get(w.app.url("/api/v1/audit/events.csv?type=lookup")).bearer_auth(&w.mcr_ig).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "id");
    assert!(headers.iter().any(|h| h == "lookup_id") && headers.iter().any(|h| h == "our_records"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{text}");
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[0][col("lookup_id")], id.as_str());
    assert_eq!(&rows[0][col("organisation")], "E08000035");
    assert_eq!(&rows[0][col("purpose")], "s47-enquiry");
    assert!(rows[0][col("our_records")].contains("MCR-1"));
    assert!(!text.contains(NHS));
    let exports = events(&w.app, &w.mcr_ig, "?type=audit_exported").await;
    assert_eq!(exports.len(), 1, "{engine:?}: the export is on the record");
    assert_eq!(exports[0]["details"]["events"], 1);
}

#[suite::test(each_engine)]
async fn subject_access_finds_every_search_for_the_child_and_every_holder_and_leaks_nothing(engine: Engine) {
    let w = world(engine).await;
    let leeds = app_lookup(&w, &w.leeds_worker, json!({"nhs_number": NHS}), "s47-enquiry").await;
    // Asked by name and date of birth only: found through the record it matched.
    let by_name = app_lookup(
        &w,
        &w.leeds_worker,
        json!({"given_name": "Amelia", "family_name": "Hughes", "date_of_birth": "2014-05-09"}),
        "front-door-triage",
    )
    .await;
    let unrelated = app_lookup(&w, &w.leeds_worker, noah(), "s17-assessment").await;
    let york = app_lookup(&w, &w.york_worker, json!({"nhs_number": NHS}), "s17-assessment").await;

    let (status, answer) = w
        .app
        .post(&w.mcr_ig, "/api/v1/audit/subject-access", &json!({"subject": {"nhs_number": "907 483 3780"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let found: Vec<&str> =
        answer["searches"].as_array().unwrap().iter().filter_map(|e| e["lookup_id"].as_str()).collect();
    assert!(found.contains(&leeds.as_str()) && found.contains(&by_name.as_str()), "{engine:?}: {answer}");
    assert!(found.contains(&york.as_str()), "York's lookup matched our record, so it is in our scope");
    assert!(!found.contains(&unrelated.as_str()), "another child");
    assert_eq!(answer["holders"][0]["organisation"], "E08000003");
    assert_eq!(answer["holders"][0]["tier"], "confirmed");
    assert_eq!(answer["holders"][0]["own_organisation"], true);

    // The request is on the record, without the identifiers, and a later request finds it.
    let text = answer.to_string();
    assert!(!text.contains(NHS) && !text.contains("907 483"), "{text}");
    let bodies = serde_json::to_string(&w.app.audit_bodies().await).unwrap();
    assert!(!bodies.contains(NHS) && !bodies.contains("Amelia"));
    let request = answer["request_event_id"].as_i64().unwrap();
    let mine = events(&w.app, &w.mcr_ig, "?type=subject_access").await;
    assert_eq!(mine[0]["id"].as_i64(), Some(request));
    let (_, again) = w.app.post(&w.mcr_ig, "/api/v1/audit/subject-access", &json!({"subject": amelia()})).await;
    assert!(again["searches"].as_array().unwrap().iter().any(|e| e["id"].as_i64() == Some(request)), "{again}");

    // Leeds holds nothing: its officer sees only Leeds' own searches, and Manchester as holder.
    let (_, leeds_view) =
        w.app.post(&w.leeds_ig, "/api/v1/audit/subject-access", &json!({"subject": {"nhs_number": NHS}})).await;
    let leeds_found: Vec<&str> =
        leeds_view["searches"].as_array().unwrap().iter().filter_map(|e| e["lookup_id"].as_str()).collect();
    assert!(!leeds_found.contains(&york.as_str()), "{engine:?}: York's lookup is not Leeds' business");
    assert_eq!(leeds_view["holders"][0]["own_organisation"], false);

    let (status, error) =
        w.app.post(&w.mcr_ig, "/api/v1/audit/subject-access", &json!({"subject": {"nhs_number": "9074833781"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!error.to_string().contains("9074833781"));
}

async fn app_lookup(w: &World, token: &str, subject: Value, purpose: &str) -> String {
    lookup(&w.app, token, subject, purpose).await
}

#[suite::test(each_engine)]
async fn anomalies_are_listed_with_their_reasons(engine: Engine) {
    let w = world(engine).await;
    lookup(&w.app, &w.leeds_worker, noah(), "s17-assessment").await; // 09:00 Tuesday: ordinary
    w.app.clock.advance_ms(13 * 3_600_000); // 22:00
    let late = lookup(&w.app, &w.leeds_worker, noah(), "other").await;
    w.app.clock.advance_ms(11 * 3_600_000); // 09:00 Wednesday
    let leeds = w.app.store().organisation_by_code("E08000035").await.unwrap();
    let leeds_admin = w.app.token(&leeds, Role::OrgAdmin).await;
    let worker_id = me(&w.app, &w.leeds_worker).await;
    let (status, _) = w.app.post(&leeds_admin, &format!("/api/v1/users/{worker_id}/report-lost"), &json!({})).await;
    assert!(status.is_success());
    let after_loss = lookup(&w.app, &w.leeds_worker, noah(), "s17-assessment").await;

    let (status, list) = w.app.get(&w.leeds_ig, "/api/v1/audit/anomalies").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let flags: Vec<(String, String)> = list["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["lookup_id"].as_str().unwrap().to_string(), a["rule"].as_str().unwrap().to_string()))
        .collect();
    assert!(flags.contains(&(late.clone(), "out-of-hours".into())), "{engine:?}: {list}");
    assert!(flags.contains(&(late.clone(), "other-purpose".into())));
    assert!(
        flags.contains(&(after_loss.clone(), "after-token-reported-lost".into())),
        "{list} {:?}",
        w.app.audit_bodies().await.last()
    );
    assert!(!flags.contains(&(after_loss, "repeated-lookups-of-one-child".into())), "only the third of Noah");
    assert_eq!(flags.len(), 3, "{list}");
    let other = list["anomalies"].as_array().unwrap().iter().find(|a| a["rule"] == "other-purpose").unwrap();
    assert!(other["reason"].as_str().unwrap().contains("checking for a colleague"));
    assert_eq!(other["user_id"].as_i64(), Some(worker_id));

    let (_, mcr) = w.app.get(&w.mcr_ig, "/api/v1/audit/anomalies").await;
    assert!(mcr["anomalies"].as_array().unwrap().is_empty(), "{engine:?}: Leeds' lookups of Noah are not ours");
    let fourth = lookup(&w.app, &w.leeds_worker, noah(), "s17-assessment").await;
    let (_, list) = w.app.get(&w.leeds_ig, "/api/v1/audit/anomalies").await;
    assert!(
        list["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["lookup_id"] == fourth.as_str() && a["rule"] == "repeated-lookups-of-one-child"),
        "{list}"
    );
}

fn hash(text: &Value) -> [u8; 32] {
    hex::decode(text.as_str().unwrap()).unwrap().try_into().unwrap()
}

#[suite::test(each_engine)]
async fn an_event_is_proved_to_be_in_the_signed_log(engine: Engine) {
    let w = world(engine).await;
    let id = lookup(&w.app, &w.leeds_worker, json!({"nhs_number": NHS}), "s47-enquiry").await;
    let event = events(&w.app, &w.mcr_ig, &format!("?lookup_id={id}")).await.remove(0);
    let seq = event["id"].as_i64().unwrap();

    let (status, cp) = w.app.get(&w.mcr_ig, "/api/v1/audit/checkpoint").await;
    assert_eq!(status, StatusCode::OK);
    let key = parse_public_key(cp["public_key_pem"].as_str().unwrap()).unwrap();
    let signed = SignedCheckpoint::from_note(cp["note"].as_str().unwrap()).unwrap();
    signed.verify(&key).expect("the head is signed by the log key");

    let (status, proof) = w.app.get(&w.mcr_ig, &format!("/api/v1/audit/proof/inclusion?seq={seq}")).await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    let leaf = leaf_hash(proof["body"].as_str().unwrap().as_bytes());
    assert_eq!(leaf, hash(&proof["leaf_hash"]), "the body is the leaf");
    let path: Vec<[u8; 32]> = proof["proof"].as_array().unwrap().iter().map(hash).collect();
    let size = proof["tree_size"].as_u64().unwrap();
    let at_head = SignedCheckpoint::from_note(proof["checkpoint"].as_str().unwrap()).unwrap();
    assert_eq!(at_head.checkpoint().tree_size, size);
    verify_inclusion(&leaf, seq as u64, size, &path, &at_head.checkpoint().root_hash).expect("included");

    // The log only grew since: consistency from the earlier checkpoint to the new head.
    lookup(&w.app, &w.york_worker, noah(), "s17-assessment").await;
    let (_, c) = w.app.get(&w.mcr_ig, &format!("/api/v1/audit/proof/consistency?from={size}")).await;
    let new = SignedCheckpoint::from_note(c["checkpoint"].as_str().unwrap()).unwrap();
    assert!(new.checkpoint().tree_size > size);
    let path: Vec<[u8; 32]> = c["proof"].as_array().unwrap().iter().map(hash).collect();
    verify_consistency(
        size,
        new.checkpoint().tree_size,
        &at_head.checkpoint().root_hash,
        &new.checkpoint().root_hash,
        &path,
    )
    .expect("consistent");

    // York's lookup is not Manchester's to prove.
    let york_seq = events(&w.app, &w.york_ig, "?type=lookup").await[0]["id"].as_i64().unwrap();
    let (status, _) = w.app.get(&w.mcr_ig, &format!("/api/v1/audit/proof/inclusion?seq={york_seq}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{engine:?}");
}

/// Overwrites every stored leaf hash but `keep`'s with zeros: a proof built from the leaves
/// would then not verify; one built from the stored subtree nodes still does.
async fn zero_every_leaf_hash_but(app: &TestApp, engine: Engine, keep: i64) {
    let zeros = match engine {
        Engine::Sqlite => "zeroblob(32)",
        Engine::Postgres => "decode(repeat('00', 32), 'hex')",
    };
    let sql = format!("UPDATE audit_events SET leaf_hash = {zeros} WHERE seq <> {keep}");
    app.store().execute_raw_on_audit(&sql).await.expect("leaf hashes overwritten");
}

/// The inclusion proof of `seq` and the consistency proof from `from` to the head, both checked
/// against the checkpoint the log key signed.
async fn assert_proofs_verify(w: &World, seq: i64, from: u64) {
    let (_, cp) = w.app.get(&w.mcr_ig, "/api/v1/audit/checkpoint").await;
    let key = parse_public_key(cp["public_key_pem"].as_str().unwrap()).unwrap();
    let (status, proof) = w.app.get(&w.mcr_ig, &format!("/api/v1/audit/proof/inclusion?seq={seq}")).await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    let head = SignedCheckpoint::from_note(proof["checkpoint"].as_str().unwrap()).unwrap();
    head.verify(&key).expect("signed by the log key");
    let leaf = leaf_hash(proof["body"].as_str().unwrap().as_bytes());
    let path: Vec<[u8; 32]> = proof["proof"].as_array().unwrap().iter().map(hash).collect();
    let size = head.checkpoint().tree_size;
    verify_inclusion(&leaf, seq as u64, size, &path, &head.checkpoint().root_hash).expect("included");

    let (status, c) = w.app.get(&w.mcr_ig, &format!("/api/v1/audit/proof/consistency?from={from}&to={size}")).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    let path: Vec<[u8; 32]> = c["proof"].as_array().unwrap().iter().map(hash).collect();
    let old = w.app.store().audit_checkpoint_at(from as i64).await.unwrap().expect("a kept checkpoint at from");
    let old = SignedCheckpoint::from_note(&old).unwrap();
    verify_consistency(from, size, &old.checkpoint().root_hash, &head.checkpoint().root_hash, &path)
        .expect("consistent");
}

#[suite::test(each_engine)]
async fn proofs_are_built_from_stored_subtree_nodes_not_from_every_leaf(engine: Engine) {
    let w = world(engine).await;
    for _ in 0..20 {
        lookup(&w.app, &w.york_worker, noah(), "s17-assessment").await;
    }
    let id = lookup(&w.app, &w.leeds_worker, json!({"nhs_number": NHS}), "s47-enquiry").await;
    let seq = events(&w.app, &w.mcr_ig, &format!("?lookup_id={id}")).await[0]["id"].as_i64().unwrap();
    for _ in 0..20 {
        lookup(&w.app, &w.york_worker, noah(), "s17-assessment").await;
    }
    // The first batch's checkpoint is always kept: the consistency proof starts there.
    let first_kept = SignedCheckpoint::from_note(&w.app.store().audit_checkpoints().await.unwrap()[0]).unwrap();
    zero_every_leaf_hash_but(&w.app, engine, seq).await;
    assert_proofs_verify(&w, seq, first_kept.checkpoint().tree_size).await;
}

#[suite::test(each_engine)]
async fn the_nodes_of_a_trail_from_before_them_are_built_and_then_serve_proofs(engine: Engine) {
    let w = world(engine).await;
    let id = lookup(&w.app, &w.leeds_worker, json!({"nhs_number": NHS}), "s47-enquiry").await;
    let seq = events(&w.app, &w.mcr_ig, &format!("?lookup_id={id}")).await[0]["id"].as_i64().unwrap();
    // As a trail written before the node table: no nodes; the writer then stores none either.
    w.app.store().execute_raw_on_audit("DELETE FROM audit_nodes; UPDATE audit_head SET nodes_size = 0").await.unwrap();
    for _ in 0..30 {
        lookup(&w.app, &w.york_worker, noah(), "s17-assessment").await;
    }
    assert_eq!(w.app.store().audit_head().await.unwrap().nodes_size, 0, "nodes only extend a covered prefix");
    // Meanwhile proofs still verify, from every leaf.
    let first_kept = SignedCheckpoint::from_note(&w.app.store().audit_checkpoints().await.unwrap()[0]).unwrap();
    assert_proofs_verify(&w, seq, first_kept.checkpoint().tree_size).await;

    let built = child_locator::audit::nodes::backfill(w.app.store()).await.expect("nodes built");
    let head = w.app.store().audit_head().await.unwrap();
    assert!(built > 30 && head.nodes_size == head.size, "{built} of {}", head.size);
    lookup(&w.app, &w.york_worker, noah(), "s17-assessment").await;
    let head = w.app.store().audit_head().await.unwrap();
    assert_eq!(head.nodes_size, head.size, "the writer keeps them in step again");
    zero_every_leaf_hash_but(&w.app, engine, seq).await;
    assert_proofs_verify(&w, seq, first_kept.checkpoint().tree_size).await;
}

#[suite::test]
async fn only_ig_officers_see_the_audit_views() {
    let w = world(Engine::Sqlite).await;
    for token in [&w.leeds_worker, &w.mcr_admin] {
        assert_eq!(w.app.get(token, "/api/v1/audit/events").await.0, StatusCode::FORBIDDEN);
        assert_eq!(w.app.get(token, "/api/v1/audit/anomalies").await.0, StatusCode::FORBIDDEN);
        let (status, _) = w.app.post(token, "/api/v1/audit/subject-access", &json!({"subject": amelia()})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}

#[suite::test]
async fn a_webhook_witness_receives_the_signed_head() {
    use child_locator::audit::witness::{Pushed, WitnessTarget, push};
    let w = world(Engine::Sqlite).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, String)>(1);
    let hook = axum::Router::new().route(
        "/checkpoints",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let size = headers["x-audit-tree-size"].to_str().unwrap_or("").to_string();
                let _ = tx.send((size, body)).await;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/checkpoints", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });

    let key = w.app.state.audit_signer().verifying_key();
    let pushed = push(w.app.store(), &WitnessTarget::parse(&url).unwrap(), &key).await.unwrap();
    let (size, note) = rx.recv().await.unwrap();
    let signed = SignedCheckpoint::from_note(&note).unwrap();
    signed.verify(&key).unwrap();
    assert_eq!(pushed, Pushed::Appended(signed.checkpoint().tree_size));
    assert_eq!(size, signed.checkpoint().tree_size.to_string());
}

#[suite::test]
async fn a_repeated_lookup_that_led_to_a_record_request_is_not_flagged() {
    let w = world(Engine::Sqlite).await;
    for _ in 0..3 {
        lookup(&w.app, &w.leeds_worker, amelia(), "s17-assessment").await;
    }
    let body = json!({"subject": amelia(), "purpose": "s17-assessment"});
    let (_, fourth) = w.app.post(&w.leeds_worker, "/api/v1/lookups", &body).await;
    let match_id = fourth["matches"][0]["match_id"].as_str().expect("Amelia is held in Manchester").to_string();
    let request = json!({"match_id": match_id, "legal_basis": "ca1989-s17", "reason": "assessment after a move", "urgency": "routine"});
    let (status, reply) = w.app.post(&w.leeds_worker, "/api/v1/requests", &request).await;
    assert!(status.is_success(), "{reply}");
    let (_, fifth) = w.app.post(&w.leeds_worker, "/api/v1/lookups", &body).await;

    let (_, list) = w.app.get(&w.leeds_ig, "/api/v1/audit/anomalies").await;
    let repeated: Vec<&str> = list["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "repeated-lookups-of-one-child")
        .map(|a| a["lookup_id"].as_str().unwrap())
        .collect();
    assert!(!repeated.contains(&fourth["lookup_id"].as_str().unwrap()), "a request followed the fourth: {list}");
    assert!(repeated.contains(&fifth["lookup_id"].as_str().unwrap()), "the fifth had none: {list}");
}

/// Waits until this node has recorded the signed head it last wrote (the recorder runs beside
/// the writer), and answers its size.
async fn recorded_head(app: &TestApp) -> u64 {
    let high_water = HighWater::for_node(app.store(), &app.db.settings().audit_key_file);
    for _ in 0..100 {
        let size = app.store().audit_head().await.unwrap().size;
        let seen = high_water.load().await.unwrap().map(|c| c.checkpoint().tree_size);
        if seen == Some(size) {
            return size;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the latest checkpoint was never recorded");
}

/// Puts the trail back as it was at `head`, as restoring an older copy of it would: the later
/// entries gone, the older head (size, frontier and its signed checkpoint) back.
async fn roll_back_to(app: &TestApp, head: &AuditHead) {
    let frontier = hex::encode(&head.frontier);
    let bytes = match app.engine {
        Engine::Sqlite => format!("X'{frontier}'"),
        Engine::Postgres => format!("decode('{frontier}', 'hex')"),
    };
    let note = head.checkpoint.as_deref().unwrap().replace('\'', "''");
    let sql = format!(
        "DELETE FROM audit_events WHERE seq >= {size}; DELETE FROM audit_checkpoints WHERE tree_size > {size}; \
         DELETE FROM audit_event_orgs WHERE seq >= {size}; DELETE FROM lookup_matches WHERE seq >= {size}; \
         DELETE FROM lookup_pseudonyms WHERE seq >= {size}; DELETE FROM lookup_pseudonyms_pending WHERE seq >= {size}; \
         DELETE FROM audit_free_text WHERE seq >= {size}; \
         DELETE FROM audit_nodes; UPDATE audit_head SET size = {size}, frontier = {bytes}, checkpoint = '{note}', \
         nodes_size = 0",
        size = head.size
    );
    app.store().execute_raw_on_audit(&sql).await.expect("rolled back");
}

#[suite::test(each_engine)]
async fn a_trail_older_than_the_last_checkpoint_this_node_saw_is_refused_at_start_and_by_verify(engine: Engine) {
    let app = TestApp::start(engine).await;
    let york = app.org("E06000014", "local-authority").await;
    let worker = app.token(&york, Role::Practitioner).await;
    lookup(&app, &worker, noah(), "s17-assessment").await;
    recorded_head(&app).await;
    let older = app.store().audit_head().await.unwrap();
    lookup(&app, &worker, noah(), "s17-assessment").await;
    lookup(&app, &worker, amelia(), "s47-enquiry").await;
    let seen = recorded_head(&app).await;
    assert!(seen > older.size);

    roll_back_to(&app, &older).await;
    // The restored trail is whole in itself: only the recorded checkpoint betrays it.
    verify_stored(app.store(), None).await.expect("an older trail is intact on its own");
    let high_water = HighWater::for_node(app.store(), &app.db.settings().audit_key_file);
    let recorded = high_water.load().await.unwrap().expect("a checkpoint is recorded");
    let refused = check_extends(app.store(), &recorded).await.expect_err("verify names the rollback");
    assert!(refused.to_string().contains("ROLLBACK"), "{refused}");
    let started = Service::open(app.db.settings(), Clock::manual(common::START_MS)).await;
    let refused = format!("{:#}", started.err().expect("start is refused"));
    assert!(refused.contains("ROLLBACK") && refused.contains(&format!("size {seen}")), "{engine:?}: {refused}");
}

/// `audit verify` with the service's keys, as the operator runs it on the node.
async fn verify_all(app: &TestApp) -> Result<(), String> {
    let key = app.state.audit_signer().verifying_key();
    let leaf_key = app.state.leaf_key_for_tests();
    verify_stored_sealed(app.store(), Some(key), Some(&leaf_key), &[]).await.map(|_| ()).map_err(|e| e.to_string())
}

/// `locator audit verify` run as a separate process on the same database and key files.
fn cli_verify(app: &TestApp) -> (bool, String) {
    let dir = app.db.dir.path();
    let out = common::cli::locator(dir)
        .env("LOCATOR_DATABASE_URL", &app.db.url)
        .env("LOCATOR_KEY_FILE", dir.join("locator.key"))
        .env("LOCATOR_AUDIT_KEY_FILE", dir.join("locator-audit.key"))
        .args(["audit", "verify"])
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", common::cli::stdout(&out), String::from_utf8_lossy(&out.stderr)))
}

/// Every edit that changed what an IG view shows while the leaves stayed intact: a column of the
/// event, its scope rows, the matches a lookup handed out, its free text.
const EDITS: [(&str, &str); 9] = [
    ("type", "UPDATE audit_events SET type = 'holding_put' WHERE seq = {seq}"),
    ("actor_user_id", "UPDATE audit_events SET actor_user_id = actor_user_id + 1 WHERE seq = {seq}"),
    ("purpose", "UPDATE audit_events SET purpose = 'court-order' WHERE seq = {seq}"),
    ("at", "UPDATE audit_events SET at = at - 86400000 WHERE seq = {seq}"),
    ("lookup_id", "UPDATE audit_events SET lookup_id = 'lk_0' WHERE seq = {seq}"),
    ("audit_event_orgs deleted", "DELETE FROM audit_event_orgs WHERE seq = {seq} AND org_id = {holder}"),
    ("audit_event_orgs moved", "UPDATE audit_event_orgs SET org_id = {other} WHERE seq = {seq} AND org_id = {holder}"),
    ("lookup_matches deleted", "DELETE FROM lookup_matches WHERE seq = {seq}"),
    ("free text changed", "UPDATE audit_free_text SET text = 'routine check' WHERE seq = {seq}"),
];

#[suite::test(each_engine)]
async fn verify_names_the_event_behind_any_edit_of_what_the_ig_views_read(engine: Engine) {
    for (what, edit) in EDITS {
        let w = world(engine).await;
        let id = lookup(&w.app, &w.leeds_worker, json!({"nhs_number": NHS}), "other").await;
        let seq = events(&w.app, &w.leeds_ig, &format!("?lookup_id={id}")).await[0]["id"].as_i64().unwrap();
        verify_all(&w.app).await.unwrap_or_else(|e| panic!("{engine:?}: an untouched trail verifies: {e}"));
        let (ok, said) = cli_verify(&w.app);
        assert!(ok && said.contains("audit trail intact"), "{engine:?}: {said}");

        let holder = w.app.store().organisation_by_code("E08000003").await.unwrap().id;
        let other = w.app.store().organisation_by_code("E06000014").await.unwrap().id;
        let sql = edit
            .replace("{seq}", &seq.to_string())
            .replace("{holder}", &holder.to_string())
            .replace("{other}", &other.to_string());
        let changed = w.app.store().execute_raw_on_audit(&sql).await.unwrap();
        assert_eq!(changed.rows_affected(), 1, "{engine:?} {what}: the edit took");

        let err = verify_all(&w.app).await.expect_err(what);
        assert!(err.starts_with(&format!("entry {seq}:")), "{engine:?} {what}: {err}");
        let (ok, said) = cli_verify(&w.app);
        assert!(!ok && said.contains(&format!("audit trail BROKEN: entry {seq}:")), "{engine:?} {what}: {said}");
    }
}

#[suite::test(each_engine)]
async fn free_text_stays_out_of_the_leaf_is_shown_to_the_asker_only_and_is_erased_by_purge(engine: Engine) {
    let w = world(engine).await;
    let id = lookup(&w.app, &w.leeds_worker, json!({"nhs_number": NHS}), "other").await;
    let bodies = w.app.audit_bodies().await;
    assert!(bodies.iter().all(|b| !b.to_string().contains("colleague")), "{engine:?}: not in any leaf: {bodies:?}");

    let asker = events(&w.app, &w.leeds_ig, &format!("?lookup_id={id}")).await.remove(0);
    assert_eq!(asker["details"]["purpose_detail"], "checking for a colleague", "{asker}");
    let holder = events(&w.app, &w.mcr_ig, &format!("?lookup_id={id}")).await.remove(0);
    assert!(holder["details"].get("purpose_detail").is_none(), "{engine:?}: {holder}");
    let seq = holder["id"].as_i64().unwrap();
    let (_, proof) = w.app.get(&w.mcr_ig, &format!("/api/v1/audit/proof/inclusion?seq={seq}")).await;
    let csv = w.app.get_text(&w.mcr_ig, "/api/v1/audit/events.csv").await;
    let (_, anomalies) = w.app.get(&w.mcr_ig, "/api/v1/audit/anomalies").await;
    let (_, outbox) = w.app.get(&w.mcr_admin, "/api/v1/outbox").await;
    for (view, text) in [
        ("proof", proof.to_string()),
        ("csv", csv),
        ("anomalies", anomalies.to_string()),
        ("outbox", outbox.to_string()),
    ] {
        assert!(!text.contains("colleague"), "{engine:?}: the holder's {view} shows the asker's text: {text}");
    }

    w.app.clock.advance_ms(400 * 86_400_000);
    let summary = w.app.state.purge(false).await.unwrap();
    assert_eq!(summary.free_texts_erased, 1, "{engine:?}");
    let asker = events(&w.app, &w.leeds_ig, &format!("?lookup_id={id}")).await.remove(0);
    assert!(asker["details"].get("purpose_detail").is_none(), "{engine:?}: erased: {asker}");
    verify_all(&w.app).await.unwrap_or_else(|e| panic!("{engine:?}: the trail verifies after erasure: {e}"));
}

#[suite::test(each_engine)]
async fn a_trail_older_than_its_file_witness_holds_is_refused_at_start(engine: Engine) {
    let app = TestApp::start(engine).await;
    let york = app.org("E06000014", "local-authority").await;
    let worker = app.token(&york, Role::Practitioner).await;
    lookup(&app, &worker, noah(), "s17-assessment").await;
    let older = app.store().audit_head().await.unwrap();
    lookup(&app, &worker, noah(), "s17-assessment").await;
    let witness = WitnessTarget::File(app.db.dir.path().join("witness.log"));
    push(app.store(), &witness, &app.state.audit_signer().verifying_key()).await.expect("witnessed");
    recorded_head(&app).await;

    roll_back_to(&app, &older).await;
    // The node's own record went with the rollback (the main file or the state file too):
    // only the witness still knows.
    match engine {
        Engine::Sqlite => drop(app.store().execute_raw("DELETE FROM audit_high_water").await.unwrap()),
        Engine::Postgres => {
            let key = app.db.settings().audit_key_file;
            std::fs::remove_file(key.with_file_name("locator-audit.key.checkpoint")).unwrap();
        }
    }
    let mut settings = app.db.settings();
    settings.audit_witness = Some(witness);
    let started = Service::open(settings, Clock::manual(common::START_MS)).await;
    let refused = format!("{:#}", started.err().expect("start is refused"));
    assert!(refused.contains("ROLLBACK") && refused.contains("the audit witness"), "{engine:?}: {refused}");
}

#[suite::test(each_engine)]
async fn a_holder_reached_by_a_lookup_learns_of_no_other_holder_from_its_view_or_proof(engine: Engine) {
    let w = world(engine).await;
    let york = w.app.store().organisation_by_code("E06000014").await.unwrap();
    let york_admin = w.app.token(&york, Role::OrgAdmin).await;
    let body = json!({"category": "child-in-need", "status": "open", "subject": amelia()});
    let (status, reply) = w.app.put(&york_admin, "/api/v1/holdings/YRK-1", &body).await;
    assert!(status.is_success(), "{reply}");
    let id = lookup(&w.app, &w.leeds_worker, json!({"nhs_number": NHS}), "s47-enquiry").await;

    let asker = events(&w.app, &w.leeds_ig, &format!("?lookup_id={id}")).await.remove(0);
    assert_eq!(asker["organisations_touched"], json!(["E06000014", "E08000003"]), "{engine:?}: {asker}");
    let seen = events(&w.app, &w.york_ig, &format!("?lookup_id={id}")).await.remove(0);
    assert_eq!(seen["organisations_touched"], json!(["E06000014"]), "{engine:?}: {seen}");
    let seq = seen["id"].as_i64().unwrap();
    let (_, proof) = w.app.get(&w.york_ig, &format!("/api/v1/audit/proof/inclusion?seq={seq}")).await;
    let csv = w.app.get_text(&w.york_ig, "/api/v1/audit/events.csv").await;
    for (what, text) in [("view", seen.to_string()), ("proof", proof.to_string()), ("csv", csv)] {
        assert!(!text.contains("E08000003"), "{engine:?}: York's {what} names Manchester: {text}");
    }
}
