//! Record requests through the HTTP API on every engine: the state machine, deadlines and
//! escalation with the manual clock, who can see a request, and the audit of every step.

use crate::common;

use child_locator::audit::leaf::{Sealed, scope_value};
use child_locator::domain::role::Role;
use common::fixtures::{BRISTOL, LEEDS, MANCHESTER, amelia, lift, org_with, refuse, register};
use common::{Engine, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;

/// Manchester holds Amelia; Leeds asks; Bristol is a bystander. A token per role that matters.
struct World {
    app: TestApp,
    leeds_id: i64,
    mcr_id: i64,
    leeds_worker: String,
    leeds_colleague: String,
    leeds_ig: String,
    leeds_admin: String,
    mcr_worker: String,
    mcr_admin: String,
    mcr_ig: String,
    bristol_worker: String,
    bristol_ig: String,
    bristol_admin: String,
    /// Requests made through `request`: each after the first is for a child of its own (one open
    /// request per organisation and record).
    requests_made: std::sync::atomic::AtomicU32,
}

/// A valid NHS number for the `n`th extra child (Modulus 11, skipping impossible check digits).
fn extra_nhs_number(n: u32) -> String {
    (0..)
        .map(|k| format!("{:09}", 600_000_000 + 11 * (n + 1000 * k)))
        .find_map(|base| {
            let sum: u32 = base.bytes().enumerate().map(|(i, b)| u32::from(b - b'0') * (10 - i as u32)).sum();
            match 11 - sum % 11 {
                10 => None,
                11 => Some(format!("{base}0")),
                check => Some(format!("{base}{check}")),
            }
        })
        .unwrap()
}

async fn world(engine: Engine) -> World {
    world_with(TestApp::start(engine).await).await
}

async fn world_with(app: TestApp) -> World {
    use Role::{IgOfficer as Ig, OrgAdmin as Admin, Practitioner as Pr};
    let (mcr, [mcr_worker, mcr_admin, mcr_ig]) = org_with(&app, MANCHESTER, [Pr, Admin, Ig]).await;
    let (leeds, [leeds_worker, leeds_colleague, leeds_ig, leeds_admin]) =
        org_with(&app, LEEDS, [Pr, Pr, Ig, Admin]).await;
    let (_, [bristol_worker, bristol_ig, bristol_admin]) = org_with(&app, BRISTOL, [Pr, Ig, Admin]).await;
    register(&app, &mcr_admin, "MCR-1", "child-protection-plan", amelia()).await;
    World {
        leeds_id: leeds.id,
        mcr_id: mcr.id,
        leeds_worker,
        leeds_colleague,
        leeds_ig,
        leeds_admin,
        mcr_worker,
        mcr_admin,
        mcr_ig,
        bristol_worker,
        bristol_ig,
        bristol_admin,
        requests_made: Default::default(),
        app,
    }
}

impl World {
    /// A Leeds lookup that finds Manchester's record: a fresh `lm_` match id each time.
    async fn lookup_match(&self) -> String {
        let (status, answer) = self
            .app
            .post(&self.leeds_worker, "/api/v1/lookups", &json!({"subject": amelia(), "purpose": "s47-enquiry"}))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["matches"][0]["match_id"].as_str().expect("a match").to_string()
    }

    /// A new request from Leeds to Manchester; returns its id. The first is for Amelia's record,
    /// each later one for a further child of Manchester's (one open request per organisation
    /// and record).
    async fn request(&self, urgency: &str) -> String {
        let n = self.requests_made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let match_id = if n == 0 {
            self.lookup_match().await
        } else {
            let child = json!({"nhs_number": extra_nhs_number(n)});
            let holding = json!({"category": "child-in-need", "status": "open", "subject": child});
            let (put, answer) = self.app.put(&self.mcr_admin, &format!("/api/v1/holdings/MCR-X{n}"), &holding).await;
            assert!(put.is_success(), "{answer}");
            let (_, answer) = self
                .app
                .post(&self.leeds_worker, "/api/v1/lookups", &json!({"subject": child, "purpose": "s47-enquiry"}))
                .await;
            answer["matches"][0]["match_id"].as_str().unwrap_or_else(|| panic!("a match: {answer}")).to_string()
        };
        let body = json!({"match_id": match_id, "legal_basis": "ca1989-s47",
            "reason": "Strategy discussion: need chronology", "urgency": urgency});
        let (status, reply) = self.app.post(&self.leeds_worker, "/api/v1/requests", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
        assert_eq!(reply["state"], "requested");
        reply["request_id"].as_str().expect("request_id").to_string()
    }

    async fn step(&self, token: &str, id: &str, action: &str, body: Value) -> (StatusCode, Value) {
        self.app.post(token, &format!("/api/v1/requests/{id}/{action}"), &body).await
    }

    async fn state_of(&self, id: &str) -> String {
        let (status, view) = self.app.get(&self.leeds_worker, &format!("/api/v1/requests/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{view}");
        view["state"].as_str().unwrap_or_default().to_string()
    }
}

fn body_for(action: &str) -> Value {
    match action {
        "fulfil" => json!({"how": "secure-email", "reference": "EGRESS-4471"}),
        "decline" => json!({"reason": "We hold no record for this child after checking"}),
        _ => json!({}),
    }
}

#[suite::test(each_engine)]
async fn a_request_reaches_the_holders_inbox_with_its_deadline(engine: Engine) {
    let w = world(engine).await;
    let id = w.request("routine").await;
    assert!(id.starts_with("rq_"), "{id}");
    let (status, inbox) = w.app.get(&w.mcr_worker, "/api/v1/requests?role=holder").await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {inbox}");
    let listed = &inbox["requests"][0];
    assert_eq!(listed["request_id"], id.as_str());
    assert_eq!(listed["your_side"], "holder");
    assert_eq!(listed["requesting_organisation"]["code"], "E08000035");
    assert_eq!(listed["local_ref"], "MCR-1", "the holder sees which of its records");
    // Tuesday 24 November 09:00 + 10 working days.
    assert_eq!(listed["due_at"], "2026-12-08T09:00:00Z");
    assert_eq!(listed["overdue"], false);

    let (_, mine) = w.app.get(&w.leeds_worker, "/api/v1/requests?role=requester").await;
    assert_eq!(mine["requests"][0]["request_id"], id.as_str());
    assert_eq!(mine["requests"][0]["holding_organisation"]["code"], "E08000003");
    assert!(mine["requests"][0].get("local_ref").is_none(), "the requester never sees the holder's reference");
    let (_, theirs) = w.app.get(&w.mcr_worker, "/api/v1/requests?role=requester").await;
    assert_eq!(theirs["requests"].as_array().unwrap().len(), 0);
}

#[suite::test(each_engine)]
async fn every_allowed_path_through_the_state_machine_works_through_the_api(engine: Engine) {
    let w = world(engine).await;
    let holder = w.mcr_worker.clone();
    let requester = w.leeds_worker.clone();
    let paths: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("holder", "acknowledge")], "acknowledged"),
        (vec![("holder", "fulfil")], "fulfilled"),
        (vec![("holder", "decline")], "declined"),
        (vec![("requester", "withdraw")], "withdrawn"),
        (vec![("holder", "acknowledge"), ("holder", "fulfil")], "fulfilled"),
        (vec![("holder", "acknowledge"), ("holder", "decline")], "declined"),
        (vec![("holder", "acknowledge"), ("requester", "withdraw")], "withdrawn"),
    ];
    for (steps, end) in paths {
        let id = w.request("urgent").await;
        for (who, action) in &steps {
            let token = if *who == "holder" { &holder } else { &requester };
            let (status, view) = w.step(token, &id, action, body_for(action)).await;
            assert_eq!(status, StatusCode::OK, "{engine:?} {steps:?}: {view}");
        }
        assert_eq!(w.state_of(&id).await, end, "{engine:?} {steps:?}");
    }
}

#[suite::test(each_engine)]
async fn every_refused_step_is_refused_with_the_right_status(engine: Engine) {
    let w = world(engine).await;
    // The wrong side: 403 with the rule, whatever the state.
    let id = w.request("urgent").await;
    for action in ["acknowledge", "fulfil", "decline"] {
        let (status, body) = w.step(&w.leeds_worker, &id, action, body_for(action)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{engine:?}: requester may not {action}");
        assert!(body["error"]["message"].as_str().unwrap().contains("holding"), "{body}");
    }
    let (status, _) = w.step(&w.mcr_worker, &id, "withdraw", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the holder may not withdraw");
    // An org-admin of the holder may answer; an IG officer may only read (access table).
    let (status, _) = w.step(&w.mcr_ig, &id, "acknowledge", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w.step(&w.mcr_admin, &id, "acknowledge", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    // Acknowledging twice: 409.
    let (status, body) = w.step(&w.mcr_worker, &id, "acknowledge", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Every terminal state refuses every step (409), and the state does not move.
    for (token, action, end) in [
        (&w.mcr_worker, "fulfil", "fulfilled"),
        (&w.mcr_worker, "decline", "declined"),
        (&w.leeds_worker, "withdraw", "withdrawn"),
    ] {
        let id = w.request("routine").await;
        assert_eq!(w.step(token, &id, action, body_for(action)).await.0, StatusCode::OK);
        for (who, next) in [
            (&w.mcr_worker, "acknowledge"),
            (&w.mcr_worker, "fulfil"),
            (&w.mcr_worker, "decline"),
            (&w.leeds_worker, "withdraw"),
        ] {
            let (status, body) = w.step(who, &id, next, body_for(next)).await;
            assert_eq!(status, StatusCode::CONFLICT, "{engine:?}: {next} after {end}: {body}");
            assert!(body["error"]["message"].as_str().unwrap().contains(end), "{body}");
        }
        assert_eq!(w.state_of(&id).await, end);
    }
}

#[suite::test(each_engine)]
async fn both_sides_see_the_full_history_including_the_decline_reason(engine: Engine) {
    let w = world(engine).await;
    let id = w.request("urgent").await;
    w.app.clock.advance_ms(HOUR);
    w.step(&w.mcr_worker, &id, "acknowledge", json!({"note": "Looking now"})).await;
    w.app.clock.advance_ms(HOUR);
    let (status, _) =
        w.step(&w.mcr_admin, &id, "decline", json!({"reason": "Record transferred to Salford in 2023"})).await;
    assert_eq!(status, StatusCode::OK);
    for token in [&w.leeds_worker, &w.mcr_worker, &w.leeds_ig, &w.mcr_ig] {
        let (status, view) = w.app.get(token, &format!("/api/v1/requests/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{engine:?}");
        let history = view["history"].as_array().unwrap();
        let actions: Vec<&str> = history.iter().map(|h| h["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["created", "acknowledged", "declined"]);
        assert_eq!(history[2]["note"], "Record transferred to Salford in 2023");
        assert_eq!(history[2]["by_organisation"], "E08000003");
        assert_eq!(history[1]["at"], "2026-11-24T10:00:00Z");
        assert_eq!(view["state"], "declined");
    }
}

#[suite::test(each_engine)]
async fn fulfilment_records_how_and_when(engine: Engine) {
    let w = world(engine).await;
    let id = w.request("immediate").await;
    let body = json!({"how": "secure-transfer", "reference": "TX-2231", "sent_at": "2026-11-24T08:30:00Z",
        "note": "Chronology and plan sent"});
    let (status, view) = w.step(&w.mcr_worker, &id, "fulfil", body).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let last = view["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["how"], "secure-transfer");
    assert_eq!(last["reference"], "TX-2231");
    assert_eq!(last["sent_at"], "2026-11-24T08:30:00Z");
    let (status, body) = w.step(&w.mcr_worker, &w.request("immediate").await, "fulfil", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "how");
}

#[suite::test(each_engine)]
async fn only_the_two_organisations_can_see_a_request_and_anyone_else_gets_404(engine: Engine) {
    let w = world(engine).await;
    let id = w.request("urgent").await;
    let path = format!("/api/v1/requests/{id}");
    for token in
        [&w.leeds_worker, &w.leeds_colleague, &w.leeds_ig, &w.leeds_admin, &w.mcr_worker, &w.mcr_ig, &w.mcr_admin]
    {
        assert_eq!(w.app.get(token, &path).await.0, StatusCode::OK, "{engine:?}");
    }
    for token in [&w.bristol_worker, &w.bristol_ig, &w.bristol_admin] {
        let (status, body) = w.app.get(token, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{engine:?}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
        let (_, list) = w.app.get(token, "/api/v1/requests").await;
        assert_eq!(list["requests"].as_array().unwrap().len(), 0, "the bystander's lists are empty");
    }
    for action in ["acknowledge", "fulfil", "decline", "withdraw"] {
        let (status, _) = w.step(&w.bristol_worker, &id, action, body_for(action)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{engine:?}: bystander {action}");
    }
    for action in ["acknowledge", "fulfil", "decline"] {
        assert_eq!(w.step(&w.bristol_admin, &id, action, body_for(action)).await.0, StatusCode::NOT_FOUND);
    }
    // A missing request answers the same as someone else's.
    let (status, _) = w.app.get(&w.bristol_worker, "/api/v1/requests/rq_00000000000000000000000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(w.state_of(&id).await, "requested", "nothing the bystander did changed it");
    // The holder's and the requester's IG officers both see it in their lists.
    for token in [&w.leeds_ig, &w.mcr_ig] {
        let (_, list) = w.app.get(token, "/api/v1/requests").await;
        assert_eq!(list["requests"][0]["request_id"], id.as_str());
    }
}

#[suite::test(each_engine)]
async fn a_match_id_that_is_not_yours_or_not_real_is_not_found(engine: Engine) {
    let w = world(engine).await;
    let leeds_match = w.lookup_match().await;
    for (token, match_id) in [
        (&w.bristol_worker, leeds_match.as_str()),
        (&w.mcr_worker, leeds_match.as_str()),
        (&w.leeds_worker, "lm_00000000000000000000000000000000"),
        (&w.leeds_worker, "m_00000000000000000000000000000000"),
        (&w.leeds_worker, "lk_00000000000000000000000000000000"),
    ] {
        let body =
            json!({"match_id": match_id, "legal_basis": "consent", "reason": "Family support", "urgency": "routine"});
        let (status, reply) = w.app.post(token, "/api/v1/requests", &body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{engine:?} {match_id}: {reply}");
    }
}

#[suite::test(each_engine)]
async fn either_side_of_a_holding_match_may_request_the_others_record(engine: Engine) {
    let w = world(engine).await;
    let york_record = json!({"category": "child-in-need", "status": "open", "subject": amelia()});
    let (status, _) = w.app.put(&w.leeds_admin, "/api/v1/holdings/LDS-9", &york_record).await;
    assert!(status.is_success());
    let (_, matches) = w.app.get(&w.leeds_worker, "/api/v1/matches").await;
    let match_id = matches["matches"][0]["match_id"].as_str().unwrap().to_string();
    assert!(match_id.starts_with("m_"), "{matches}");

    for (asker, holder_code, local_ref) in
        [(&w.leeds_worker, "E08000003", "MCR-1"), (&w.mcr_worker, "E08000035", "LDS-9")]
    {
        let body = json!({"match_id": match_id, "legal_basis": "ca2004-s11", "reason": "Joint assessment", "urgency": "urgent"});
        let (status, reply) = w.app.post(asker, "/api/v1/requests", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{engine:?}: {reply}");
        assert_eq!(reply["holding_organisation"]["code"], holder_code);
        assert_eq!(reply["due_at"], "2026-11-25T09:00:00Z");
        let id = reply["request_id"].as_str().unwrap();
        let holder = if holder_code == "E08000003" { &w.mcr_worker } else { &w.leeds_worker };
        let (_, seen) = w.app.get(holder, &format!("/api/v1/requests/{id}")).await;
        assert_eq!(seen["local_ref"], local_ref);
    }
    // A second open request through the same match by the same organisation: 409.
    let body = json!({"match_id": match_id, "legal_basis": "consent", "reason": "Again", "urgency": "routine"});
    assert_eq!(w.app.post(&w.leeds_worker, "/api/v1/requests", &body).await.0, StatusCode::CONFLICT);
    // Bystanders cannot use the match.
    assert_eq!(w.app.post(&w.bristol_worker, "/api/v1/requests", &body).await.0, StatusCode::NOT_FOUND);
    // Once the evidence goes, the match cannot carry a new request.
    w.app.delete(&w.leeds_admin, "/api/v1/holdings/LDS-9").await;
    let (_, list) = w.app.get(&w.leeds_worker, "/api/v1/requests?role=requester").await;
    let mine = list["requests"][0]["request_id"].as_str().unwrap().to_string();
    w.step(&w.leeds_worker, &mine, "withdraw", json!({})).await;
    let (status, reply) = w.app.post(&w.leeds_worker, "/api/v1/requests", &body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("withdrawn"));
}

#[suite::test]
async fn a_record_held_by_your_own_organisation_cannot_be_requested() {
    let w = world(Engine::Sqlite).await;
    let body = json!({"category": "early-help", "status": "open", "subject": amelia()});
    w.app.put(&w.leeds_admin, "/api/v1/holdings/LDS-1", &body).await;
    let (_, answer) =
        w.app.post(&w.leeds_worker, "/api/v1/lookups", &json!({"subject": amelia(), "purpose": "s47-enquiry"})).await;
    let own = answer["matches"].as_array().unwrap().iter().find(|m| m["own_organisation"] == true).unwrap();
    let body = json!({"match_id": own["match_id"], "legal_basis": "ca1989-s47", "reason": "x", "urgency": "urgent"});
    let (status, reply) = w.app.post(&w.leeds_worker, "/api/v1/requests", &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply["error"]["field"], "match_id");
    assert_eq!(reply["error"]["code"], "own_record");
}

#[suite::test(each_engine)]
async fn deadlines_follow_the_urgency_and_the_configured_hours(engine: Engine) {
    let app = TestApp::start_with(engine, |s| s.deadlines.immediate_hours = 2).await;
    let w = world_with(app).await;
    for (urgency, due) in
        [("immediate", "2026-11-24T11:00:00Z"), ("urgent", "2026-11-25T09:00:00Z"), ("routine", "2026-12-08T09:00:00Z")]
    {
        let id = w.request(urgency).await;
        let (_, view) = w.app.get(&w.mcr_worker, &format!("/api/v1/requests/{id}")).await;
        assert_eq!(view["due_at"], due, "{engine:?} {urgency}");
        assert_eq!(view["urgency"], urgency);
    }
}

#[suite::test(each_engine)]
async fn an_overdue_request_is_flagged_in_both_views_and_escalated_once(engine: Engine) {
    let w = world(engine).await;
    let overdue = w.request("immediate").await; // due 13:00
    let answered = w.request("immediate").await;
    w.step(&w.mcr_worker, &answered, "fulfil", body_for("fulfil")).await;
    let later = w.request("urgent").await;

    w.app.clock.advance_ms(3 * HOUR + 59 * 60_000); // 12:59: not yet
    assert_eq!(w.app.state.escalate_overdue(w.app.clock.now_ms()).await.unwrap(), 0, "{engine:?}");
    let (_, view) = w.app.get(&w.mcr_worker, &format!("/api/v1/requests/{overdue}")).await;
    assert_eq!(view["overdue"], false);

    w.app.clock.advance_ms(2 * 60_000); // 13:01
    assert_eq!(w.app.state.escalate_overdue(w.app.clock.now_ms()).await.unwrap(), 1, "{engine:?}");
    assert_eq!(w.app.state.escalate_overdue(w.app.clock.now_ms()).await.unwrap(), 0, "escalated once only");
    for token in [&w.mcr_worker, &w.leeds_worker] {
        let (_, view) = w.app.get(token, &format!("/api/v1/requests/{overdue}")).await;
        assert_eq!(view["overdue"], true, "flagged in both views");
        assert_eq!(view["escalated_at"], "2026-11-24T13:01:00Z");
        assert_eq!(view["history"].as_array().unwrap().last().unwrap()["action"], "escalated");
        let (_, list) = w.app.get(token, "/api/v1/requests?overdue=true").await;
        let ids: Vec<&str> =
            list["requests"].as_array().unwrap().iter().map(|r| r["request_id"].as_str().unwrap()).collect();
        assert_eq!(ids, [overdue.as_str()], "{engine:?}");
    }
    let (_, not_overdue) = w.app.get(&w.mcr_worker, "/api/v1/requests?overdue=false").await;
    let ids: Vec<&str> =
        not_overdue["requests"].as_array().unwrap().iter().map(|r| r["request_id"].as_str().unwrap()).collect();
    assert!(ids.contains(&answered.as_str()) && ids.contains(&later.as_str()) && !ids.contains(&overdue.as_str()));

    // The holder is told, through its outbox, with its duty email to route it.
    let (_, outbox) = w.app.get(&w.mcr_admin, "/api/v1/outbox").await;
    let notice = outbox["messages"].as_array().unwrap().iter().find(|m| m["kind"] == "request.overdue").unwrap();
    assert_eq!(notice["payload"]["request_id"], overdue.as_str());
    assert_eq!(notice["payload"]["duty_email"], "duty@e08000003.test.invalid");
    let escalations = w.app.audit_bodies().await.into_iter().filter(|b| b["type"] == "request_escalated").count();
    assert_eq!(escalations, 1);

    // Answering an escalated request still works, and it is no longer overdue.
    let (status, view) = w.step(&w.mcr_worker, &overdue, "fulfil", body_for("fulfil")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["overdue"], false);
}

#[suite::test(each_engine)]
async fn every_step_is_audited_for_both_organisations_without_the_free_text(engine: Engine) {
    let w = world(engine).await;
    let id = w.request("urgent").await;
    w.step(&w.mcr_worker, &id, "acknowledge", json!({})).await;
    w.step(&w.mcr_worker, &id, "decline", json!({"reason": "Confidential reason text"})).await;
    let events: Vec<Value> =
        w.app.audit_bodies().await.into_iter().filter(|b| b["details"]["request_id"] == id.as_str()).collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["request_created", "request_state_changed", "request_state_changed"], "{engine:?}");
    assert_eq!(events[1]["details"]["to"], "acknowledged");
    assert_eq!(events[2]["details"]["from"], "acknowledged");
    assert_eq!(events[2]["details"]["to"], "declined");
    let key = w.app.state.leaf_key_for_tests();
    for e in &events {
        // The scope is sealed (leaf v2): each organisation's commitment is in it.
        let seq = e["seq"].as_u64().unwrap();
        let scope: Vec<&str> = e["scope"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let member = |org: i64| scope.contains(&key.commit(Sealed::Scope, seq, &scope_value(org)).as_str());
        assert!(member(w.leeds_id) && member(w.mcr_id), "{e}");
        let text = e.to_string();
        assert!(!text.contains("Strategy discussion") && !text.contains("Confidential"), "{text}");
    }
    assert_eq!(events[0]["actor"]["org_code"], "E08000035");
    assert_eq!(events[2]["actor"]["org_code"], "E08000003");
}

#[suite::test(each_engine)]
async fn state_changes_notify_the_other_organisation(engine: Engine) {
    let w = world(engine).await;
    let id = w.request("urgent").await;
    w.step(&w.mcr_worker, &id, "acknowledge", json!({})).await;
    w.step(&w.leeds_worker, &id, "withdraw", json!({"reason": "Child located"})).await;
    let (_, leeds) = w.app.get(&w.leeds_admin, "/api/v1/outbox").await;
    let (_, mcr) = w.app.get(&w.mcr_admin, "/api/v1/outbox").await;
    let kinds = |v: &Value| -> Vec<(String, String)> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["payload"]["request_id"] == id.as_str())
            .map(|m| {
                (m["kind"].as_str().unwrap().to_string(), m["payload"]["state"].as_str().unwrap_or("").to_string())
            })
            .collect()
    };
    assert_eq!(kinds(&leeds), [("request.state_changed".to_string(), "acknowledged".to_string())], "{engine:?}");
    let mut mcr_kinds = kinds(&mcr);
    mcr_kinds.sort();
    assert_eq!(
        mcr_kinds,
        [
            ("request.created".to_string(), String::new()),
            ("request.state_changed".to_string(), "withdrawn".to_string())
        ]
    );
    assert!(!mcr.to_string().contains("Strategy discussion"), "notifications carry ids, not free text");
}

#[suite::test(each_engine)]
async fn validation_errors_name_every_field(engine: Engine) {
    let w = world(engine).await;
    let (status, body) = w.app.post(&w.leeds_worker, "/api/v1/requests", &json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{engine:?}");
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["match_id", "legal_basis", "reason", "urgency"]);

    let match_id = w.lookup_match().await;
    let cases = [
        (json!({"legal_basis": "other"}), "legal_basis_detail", "required"),
        (json!({"legal_basis": "because"}), "legal_basis", "invalid_legal_basis"),
        (json!({"urgency": "asap"}), "urgency", "invalid_urgency"),
        (json!({"reason": "x".repeat(501)}), "reason", "invalid_text"),
    ];
    for (change, field, code) in cases {
        let mut body =
            json!({"match_id": match_id, "legal_basis": "consent", "reason": "Family support", "urgency": "routine"});
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, reply) = w.app.post(&w.leeds_worker, "/api/v1/requests", &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {reply}");
        assert_eq!(reply["error"]["field"], field);
        assert_eq!(reply["error"]["code"], code);
        assert!(!reply.to_string().contains("xxxxxxxxxx"), "the value is not echoed");
    }
    let (status, reply) = w.app.post(&w.leeds_worker, "/api/v1/requests", &json!({"match_id": 5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reply["error"]["field"], "match_id");
    let (status, reply) = w.app.get(&w.leeds_worker, "/api/v1/requests?role=boss&state=lost").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = reply["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["role", "state"]);
    let id = w.request("routine").await;
    let (status, reply) = w.step(&w.mcr_worker, &id, "decline", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply["error"]["field"], "reason");
    let (status, reply) = w.step(&w.mcr_worker, &id, "acknowledge", json!({"how": "post"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply["error"]["field"], "how");
}

#[suite::test]
async fn a_step_without_a_body_is_accepted_where_every_field_is_optional() {
    let w = world(Engine::Sqlite).await;
    let id = w.request("urgent").await;
    let response = w
        .app
        .http
        .post(w.app.url(&format!("/api/v1/requests/{id}/acknowledge")))
        .bearer_auth(&w.mcr_worker)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(w.state_of(&id).await, "acknowledged");
}

#[suite::test(each_engine)]
async fn requests_and_notifications_in_one_millisecond_are_paged_without_a_gap_or_a_repeat(engine: Engine) {
    let w = world_with(TestApp::start_with(engine, |s| s.limits.enabled = false).await).await;
    // The manual clock stands still: every request and message shares one millisecond.
    let mut made = std::collections::BTreeSet::new();
    for _ in 0..23 {
        made.insert(w.request("routine").await);
    }
    for token in [&w.leeds_worker, &w.mcr_worker] {
        let rows = w.app.every_page(token, "/api/v1/requests", "requests", 4).await;
        let ids: std::collections::BTreeSet<String> =
            rows.iter().map(|r| r["request_id"].as_str().unwrap().to_string()).collect();
        assert_eq!((rows.len(), &ids), (23, &made), "{engine:?}: every request once");
    }
    let (_, all) = w.app.get(&w.mcr_admin, "/api/v1/outbox?limit=1000").await;
    let all = all["messages"].as_array().unwrap().len();
    assert!(all >= 23, "a message a request at least");
    let rows = w.app.every_page(&w.mcr_admin, "/api/v1/outbox", "messages", 4).await;
    let ids: std::collections::BTreeSet<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!((rows.len(), ids.len()), (all, all), "{engine:?}: every message once");

    let (status, error) = w.app.get(&w.mcr_admin, "/api/v1/outbox?before=2026-11-25").await;
    assert_eq!((status, &error["error"]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("before")));
}

/// Lifts `common::refuse_audit_writes`: the trail can be written again.
async fn allow_audit_writes(app: &TestApp) {
    lift(app.store(), app.engine, "audit_events").await;
}

#[suite::test(each_engine)]
async fn a_request_is_not_made_when_its_audit_event_cannot_be_written(engine: Engine) {
    let w = world(engine).await;
    let match_id = w.lookup_match().await;
    common::refuse_audit_writes(w.app.store(), engine).await;
    let body = json!({"match_id": match_id, "legal_basis": "ca1989-s47",
        "reason": "Strategy discussion: need chronology", "urgency": "urgent"});
    let (status, reply) = w.app.post(&w.leeds_worker, "/api/v1/requests", &body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{engine:?}: {reply}");
    assert!(reply.get("request_id").is_none(), "{reply}");
    allow_audit_writes(&w.app).await;

    for token in [&w.leeds_worker, &w.mcr_worker] {
        let (_, list) = w.app.get(token, "/api/v1/requests").await;
        assert_eq!(
            list["requests"].as_array().map(Vec::len),
            Some(0),
            "{engine:?}: a request without its event: {list}"
        );
    }
    let (_, outbox) = w.app.get(&w.mcr_admin, "/api/v1/outbox").await;
    assert!(!outbox.to_string().contains("request.created"), "{engine:?}: the holder was told of it: {outbox}");
    let (status, reply) = w.app.post(&w.leeds_worker, "/api/v1/requests", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{engine:?}: no half-made request blocks the next: {reply}");
    assert!(w.app.audit_types().await.iter().any(|t| t == "request_created"));
}

#[suite::test(each_engine)]
async fn a_request_whose_event_is_written_but_not_published_is_published_at_start_up(engine: Engine) {
    let w = world(engine).await;
    let match_id = w.lookup_match().await;
    // The event commits, then the node dies before the request is made visible: simulated by
    // a main-database fault on that last write, and a restart.
    refuse(w.app.store(), engine, "UPDATE OF audited", "requests").await;
    let body = json!({"match_id": match_id, "legal_basis": "ca1989-s47",
        "reason": "Strategy discussion: need chronology", "urgency": "urgent"});
    let (status, _) = w.app.post(&w.leeds_worker, "/api/v1/requests", &body).await;
    assert!(status.is_server_error(), "{engine:?}: {status}");
    lift(w.app.store(), engine, "requests").await;
    let (_, before) = w.app.get(&w.leeds_worker, "/api/v1/requests").await;
    assert_eq!(before["requests"].as_array().map(Vec::len), Some(0), "{engine:?}: not yet published: {before}");

    let app = w.app.restart().await;
    let (_, after) = app.get(&w.leeds_worker, "/api/v1/requests").await;
    assert_eq!(after["requests"].as_array().map(Vec::len), Some(1), "{engine:?}: its event exists: {after}");
    let created = app.audit_types().await.iter().filter(|t| *t == "request_created").count();
    assert_eq!(created, 1, "{engine:?}: one event, one request");
}

#[suite::test(each_engine)]
async fn a_step_is_not_taken_when_its_audit_event_cannot_be_written(engine: Engine) {
    let w = world(engine).await;
    let id = w.request("urgent").await;
    common::refuse_audit_writes(w.app.store(), engine).await;
    let (status, reply) = w.step(&w.mcr_worker, &id, "acknowledge", json!({"note": "On it"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{engine:?}: {reply}");
    allow_audit_writes(&w.app).await;

    let (_, view) = w.app.get(&w.leeds_worker, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(view["state"], "requested", "{engine:?}: a step without its event: {view}");
    assert_eq!(view["history"].as_array().map(Vec::len), Some(1), "{engine:?}: {view}");
    let (_, outbox) = w.app.get(&w.leeds_admin, "/api/v1/outbox").await;
    assert!(!outbox.to_string().contains("request.state_changed"), "{engine:?}: told of it: {outbox}");
    let (status, reply) = w.step(&w.mcr_worker, &id, "acknowledge", json!({"note": "On it"})).await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: nothing half-done blocks the step: {reply}");
    let changed = w.app.audit_types().await.iter().filter(|t| *t == "request_state_changed").count();
    assert_eq!(changed, 1, "{engine:?}");
}

#[suite::test(each_engine)]
async fn a_step_whose_event_is_written_but_not_published_is_published_at_start_up(engine: Engine) {
    let w = world(engine).await;
    let id = w.request("urgent").await;
    refuse(w.app.store(), engine, "UPDATE OF audited", "request_events").await;
    let (status, _) = w.step(&w.mcr_worker, &id, "acknowledge", json!({})).await;
    assert!(status.is_server_error(), "{engine:?}: {status}");
    lift(w.app.store(), engine, "request_events").await;
    assert_eq!(w.state_of(&id).await, "requested", "{engine:?}: not yet published");
    let (status, _) = w.step(&w.mcr_worker, &id, "decline", body_for("decline")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{engine:?}: one step at a time while one is being recorded");

    let app = w.app.restart().await;
    let (_, view) = app.get(&w.leeds_worker, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(view["state"], "acknowledged", "{engine:?}: its event exists: {view}");
    assert_eq!(view["history"].as_array().map(Vec::len), Some(2), "{engine:?}: {view}");
    let changed = app.audit_types().await.iter().filter(|t| *t == "request_state_changed").count();
    assert_eq!(changed, 1, "{engine:?}: one event, one step");
    let (_, outbox) = app.get(&w.leeds_admin, "/api/v1/outbox").await;
    assert!(outbox.to_string().contains("request.state_changed"), "{engine:?}: the requester is told: {outbox}");
}
