//! The duty desk's acts happen once and say which child (issue 23): every page form that acts
//! redirects after POST (a lookup's answer lives at its own address; a token is shown once), one
//! open request per organisation and record, irreversible acts ask first and say what happened,
//! the asker's own case reference, the requester's contact, the inbox by deadline, your own
//! organisation's card last, and each history step from → to. Both engines.

use crate::common;

use child_locator::domain::organisation::Organisation;
use child_locator::domain::role::Role;
use common::web::WebSession;
use common::{Engine, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Manchester holds Amelia; Leeds asks about her.
struct World {
    app: TestApp,
    leeds: Organisation,
    leeds_worker: String,
    leeds_admin: String,
    manchester_admin: String,
}

const AMELIA: &str =
    r#"{"nhs_number": "9074833780", "given_name": "Amelia", "family_name": "Hughes", "date_of_birth": "2014-05-09"}"#;

async fn world(engine: Engine) -> World {
    let app = TestApp::start(engine).await;
    let manchester = app.org("E08000003", "local-authority").await;
    let leeds = app.org("E08000035", "local-authority").await;
    let manchester_admin = app.token(&manchester, Role::OrgAdmin).await;
    let subject: Value = serde_json::from_str(AMELIA).unwrap();
    let body = json!({"category": "child-protection-plan", "status": "open", "subject": subject,
        "contact": {"team": "Children's Assessment Team", "phone": "0161 234 5678", "email": "cat@manchester.test.invalid"}});
    let (status, reply) = app.put(&manchester_admin, "/api/v1/holdings/MCR-1", &body).await;
    assert!(status.is_success(), "{reply}");
    World {
        leeds_worker: app.token(&leeds, Role::Practitioner).await,
        leeds_admin: app.token(&leeds, Role::OrgAdmin).await,
        leeds,
        manchester_admin,
        app,
    }
}

fn lookup_form(case_ref: &str) -> Vec<(&str, &str)> {
    vec![
        ("purpose", "s47-enquiry"),
        ("nhs_number", "907 483 3780"),
        ("dob_day", "9"),
        ("dob_month", "5"),
        ("dob_year", "2014"),
        ("case_ref", case_ref),
    ]
}

fn lookups_audited(events: &[Value]) -> usize {
    events.iter().filter(|e| e["type"] == "lookup").count()
}

/// The first match id on a lookup answer page.
fn match_id_on(page: &str) -> String {
    let at = page.find("match_id=").expect("a request link") + "match_id=".len();
    page[at..].split(['"', '&']).next().unwrap().to_string()
}

/// A lookup and a request through the API: (match id, request answer).
async fn api_request(app: &TestApp, token: &str, urgency: &str) -> (StatusCode, Value, String) {
    let subject: Value = serde_json::from_str(AMELIA).unwrap();
    let (_, answer) = app.post(token, "/api/v1/lookups", &json!({"subject": subject, "purpose": "s47-enquiry"})).await;
    let match_id = answer["matches"][0]["match_id"].as_str().expect("a match").to_string();
    let body =
        json!({"match_id": match_id, "legal_basis": "ca1989-s47", "reason": "Strategy meeting", "urgency": urgency});
    let (status, reply) = app.post(token, "/api/v1/requests", &body).await;
    (status, reply, match_id)
}

#[suite::test(each_engine)]
async fn a_lookup_answer_lives_at_its_own_address_and_a_reload_is_not_a_new_lookup(engine: Engine) {
    let w = world(engine).await;
    let worker = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    let posted = worker.post("/lookup", &lookup_form("")).await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{engine:?}: {}", posted.body);
    let at = posted.location.clone().expect("the answer's address");
    assert!(at.starts_with("/lookups/"), "{at}");
    let first = worker.get(&at).await;
    assert_eq!(first.status, StatusCode::OK, "{engine:?}: {}", first.body);
    assert!(first.body.contains("Known to 1 organisation") && first.body.contains("0161 234 5678"), "{}", first.body);
    assert!(!first.body.contains("9074833780") && !first.body.contains("907 483 3780"), "no identifier echoed");
    let reload = worker.get(&at).await;
    assert_eq!(reload.status, StatusCode::OK);
    assert_eq!(reload.body, first.body, "{engine:?}: a reload shows the same answer, same reference");
    let events = w.app.audit_bodies().await;
    assert_eq!(lookups_audited(&events), 1, "{engine:?}: one lookup, however often its answer is opened");
    let lookup_id = at.trim_start_matches("/lookups/");
    assert!(events.iter().any(|e| e["type"] == "lookup" && e.to_string().contains(lookup_id)), "its reference");

    // Nobody else opens it: another practitioner of the same organisation, another organisation.
    let colleague = WebSession::sign_in(
        &w.app,
        &w.app.token(&w.app.org("E08000036", "local-authority").await, Role::Practitioner).await,
    )
    .await;
    assert_eq!(colleague.get(&at).await.status, StatusCode::NOT_FOUND, "{engine:?}: another organisation");
    let same_org = WebSession::sign_in(&w.app, &w.app.token(&w.leeds, Role::Practitioner).await).await;
    assert_eq!(same_org.get(&at).await.status, StatusCode::NOT_FOUND, "{engine:?}: only its asker");

    // Back after signing out: no answer, and not after signing in again either.
    worker.post("/sign-out", &[]).await;
    assert_eq!(worker.get(&at).await.status, StatusCode::SEE_OTHER, "{engine:?}: signed out");
    let again = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    assert_eq!(again.get(&at).await.status, StatusCode::NOT_FOUND, "{engine:?}: forgotten at sign-out");
    assert_eq!(lookups_audited(&w.app.audit_bodies().await), 1, "{engine:?}");
    if engine == Engine::Sqlite {
        w.app.assert_db_files_free_of(&["9074833780", "Amelia", "Hughes"]);
    }
}

#[suite::test(each_engine)]
async fn an_issued_token_is_shown_once_after_the_redirect_and_never_stored_readable(engine: Engine) {
    let w = world(engine).await;
    let admin = WebSession::sign_in(&w.app, &w.leeds_admin).await;
    let posted = admin.post("/users", &[("name", "Temp Worker"), ("role", "practitioner")]).await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{engine:?}: {}", posted.body);
    assert!(!posted.body.contains("clk_"), "the token is not in the POST's answer");
    let at = posted.location.expect("to the users page");
    let shown = admin.get(&at).await;
    assert!(shown.body.contains("Token issued for Temp Worker"), "{}", shown.body);
    let token = shown.body.split("value=\"clk_").nth(1).expect("the token, once").split('"').next().unwrap();
    let token = format!("clk_{token}");
    let reload = admin.get(&at).await;
    assert!(!reload.body.contains(&token), "{engine:?}: a reload does not show it again");
    assert!(reload.body.contains("shown once"), "{}", reload.body);
    let (_, users) = w.app.get(&w.leeds_admin, "/api/v1/users").await;
    let temps = users["users"].as_array().unwrap().iter().filter(|u| u["name"] == "Temp Worker").count();
    assert_eq!(temps, 1, "{engine:?}: one token issued");
    // The token works, and was never written where the database could give it away.
    assert_eq!(w.app.get(&token, "/api/v1/me").await.0, StatusCode::OK);
    if engine == Engine::Sqlite {
        // While it waited for its page, only its encryption was in the database (a deleted
        // row's bytes linger in SQLite's pages and log, so a plain copy would show here).
        w.app.assert_db_files_free_of(&[&token]);
    }
}

#[suite::test(each_engine)]
async fn a_second_request_for_the_same_record_leads_to_the_open_one(engine: Engine) {
    let w = world(engine).await;
    let (status, first, _) = api_request(&w.app, &w.leeds_worker, "urgent").await;
    assert_eq!(status, StatusCode::CREATED, "{engine:?}: {first}");
    let open = first["request_id"].as_str().unwrap().to_string();
    // A new lookup mints a new match id for the same record: still one open request.
    let (status, second, _) = api_request(&w.app, &w.leeds_worker, "routine").await;
    assert_eq!(status, StatusCode::CONFLICT, "{engine:?}: {second}");
    assert_eq!(second["error"]["code"], "request_already_open", "{second}");
    assert_eq!(second["error"]["request_id"], open.as_str(), "{second}");

    // Through the pages: the second attempt leads to the open request.
    let worker = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    let answer = worker.post_and_follow("/lookup", &lookup_form("")).await;
    let match_id = match_id_on(&answer.body);
    let fields =
        [("match_id", match_id.as_str()), ("legal_basis", "ca1989-s47"), ("reason", "Again"), ("urgency", "urgent")];
    let made = worker.post("/requests", &fields).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{engine:?}: {}", made.body);
    assert_eq!(made.location.as_deref(), Some(format!("/requests/{open}?done=already").as_str()));
    let led = worker.get(made.location.as_deref().unwrap()).await;
    assert!(led.body.contains("already has an open request"), "{}", led.body);

    let (_, inbox) = w.app.get(&w.manchester_admin, "/api/v1/requests").await;
    assert_eq!(inbox["requests"].as_array().map(Vec::len), Some(1), "{engine:?}: one request in the inbox: {inbox}");

    // Once it is closed, the record can be requested again.
    let (status, _) = w.app.post(&w.leeds_worker, &format!("/api/v1/requests/{open}/withdraw"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, again, _) = api_request(&w.app, &w.leeds_worker, "routine").await;
    assert_eq!(status, StatusCode::CREATED, "{engine:?}: {again}");
}

#[suite::test(each_engine)]
async fn a_duplicate_request_for_a_shielded_record_still_names_no_holder(engine: Engine) {
    let w = world(engine).await;
    let subject: Value = serde_json::from_str(AMELIA).unwrap();
    let refuge = json!({"category": "looked-after", "status": "open", "shielded": true, "subject": subject});
    let (status, reply) = w.app.put(&w.manchester_admin, "/api/v1/holdings/MCR-1", &refuge).await;
    assert!(status.is_success(), "{reply}");
    let (status, first, _) = api_request(&w.app, &w.leeds_worker, "urgent").await;
    assert_eq!(status, StatusCode::CREATED, "{engine:?}: {first}");
    let (status, second, _) = api_request(&w.app, &w.leeds_worker, "urgent").await;
    assert_eq!(status, StatusCode::CONFLICT, "{engine:?}: {second}");
    assert_eq!(second["error"]["request_id"], first["request_id"]);
    let text = second.to_string();
    assert!(!text.contains("E08000003") && !text.contains("Manchester") && !text.contains("MCR-1"), "{text}");
}

#[suite::test(each_engine)]
async fn revoking_and_withdrawing_ask_first_then_say_what_happened(engine: Engine) {
    let w = world(engine).await;
    let admin = WebSession::sign_in(&w.app, &w.leeds_admin).await;
    admin.post("/users", &[("name", "Temp Worker"), ("role", "practitioner")]).await;
    let (_, users) = w.app.get(&w.leeds_admin, "/api/v1/users").await;
    let id = users["users"].as_array().unwrap().iter().find(|u| u["name"] == "Temp Worker").unwrap()["id"].clone();
    let list = admin.get("/users").await;
    assert!(list.body.contains(&format!("href=\"/users/{id}/revoke\"")), "Revoke leads to a question");
    assert!(!list.body.contains(&format!("action=\"/users/{id}/revoke\"")), "not a one-click form");
    let confirm = admin.get(&format!("/users/{id}/revoke")).await;
    assert_eq!(confirm.status, StatusCode::OK, "{engine:?}: {}", confirm.body);
    assert!(confirm.body.contains("Revoke the token of Temp Worker?") && confirm.body.contains("cannot be undone"));
    assert!(confirm.body.contains(&format!("action=\"/users/{id}/revoke\"")));
    let (_, users) = w.app.get(&w.leeds_admin, "/api/v1/users").await;
    let temp = users["users"].as_array().unwrap().iter().find(|u| u["id"] == id).unwrap().clone();
    assert!(temp["revoked_at"].is_null(), "{engine:?}: asking changed nothing");
    let done = admin.post_and_follow(&format!("/users/{id}/revoke"), &[]).await;
    assert!(done.body.contains("The token of Temp Worker was revoked"), "{}", done.body);

    let (status, request, _) = api_request(&w.app, &w.leeds_worker, "routine").await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    let rid = request["request_id"].as_str().unwrap();
    let worker = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    let page = worker.get(&format!("/requests/{rid}")).await;
    assert!(page.body.contains(&format!("href=\"/requests/{rid}/withdraw\"")), "{}", page.body);
    assert!(!page.body.contains(&format!("action=\"/requests/{rid}/withdraw\"")), "not a one-click form");
    let confirm = worker.get(&format!("/requests/{rid}/withdraw")).await;
    assert_eq!(confirm.status, StatusCode::OK, "{engine:?}: {}", confirm.body);
    assert!(confirm.body.contains("Withdraw this request?") && confirm.body.contains("cannot be reopened"));
    let (_, view) = w.app.get(&w.leeds_worker, &format!("/api/v1/requests/{rid}")).await;
    assert_eq!(view["state"], "requested", "{engine:?}: asking changed nothing");
    let withdrawn = worker.post(&format!("/requests/{rid}/withdraw"), &[("reason", "Found elsewhere")]).await;
    assert_eq!(withdrawn.status, StatusCode::SEE_OTHER);
    let after = worker.get(withdrawn.location.as_deref().unwrap()).await;
    assert!(after.body.contains("Request withdrawn"), "{}", after.body);
    let (_, view) = w.app.get(&w.leeds_worker, &format!("/api/v1/requests/{rid}")).await;
    assert_eq!(view["state"], "withdrawn", "{engine:?}");
    // Withdrawn: nothing left to confirm.
    assert_eq!(worker.get(&format!("/requests/{rid}/withdraw")).await.status, StatusCode::CONFLICT);
}

async fn upload(app: &TestApp, admin: &WebSession, csv: &str, replace: bool) -> (StatusCode, Option<String>, String) {
    let mut form = reqwest::multipart::Form::new().text("csrf", admin.csrf.clone()).text("dry_run", "false");
    if replace {
        form = form.text("replace", "yes");
    }
    let form = form.part(
        "caseload",
        reqwest::multipart::Part::text(csv.to_string()).file_name("caseload.csv").mime_str("text/csv").unwrap(),
    );
    let response =
        admin.http.post(app.url("/caseload")).header("cookie", &admin.cookie).multipart(form).send().await.unwrap();
    let status = response.status();
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
    (status, location, response.text().await.unwrap())
}

#[suite::test(each_engine)]
async fn a_caseload_is_replaced_only_when_confirmed_and_its_summary_follows_the_redirect(engine: Engine) {
    let w = world(engine).await;
    let admin = WebSession::sign_in(&w.app, &w.manchester_admin).await;
    let csv = "local_ref,category,status,nhs_number,upn,given_name,family_name,date_of_birth,postcode\n\
               MCR-2,child-in-need,open,9434765919,,Ruby,Fletcher,2016-04-12,\n";
    let (status, _, body) = upload(&w.app, &admin, csv, false).await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {body}");
    assert!(
        body.contains("File checked: nothing was changed") && body.contains("1 records would be removed"),
        "{body}"
    );
    let (status, _) = w.app.get(&w.manchester_admin, "/api/v1/holdings/MCR-1").await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: not confirmed, nothing removed");

    let (status, location, _) = upload(&w.app, &admin, csv, true).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{engine:?}");
    let at = location.expect("to the summary");
    let summary = admin.get(&at).await;
    assert!(summary.body.contains("Caseload updated"), "{}", summary.body);
    assert!(summary.body.contains("<dt>Removed</dt><dd>1</dd>"), "{}", summary.body);
    assert!(!admin.get(&at).await.body.contains("Caseload updated"), "{engine:?}: the summary is shown once");
    let (status, _) = w.app.get(&w.manchester_admin, "/api/v1/holdings/MCR-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{engine:?}: replaced");
}

#[suite::test(each_engine)]
async fn the_askers_case_reference_is_theirs_alone_and_the_holder_sees_its_own_record(engine: Engine) {
    let w = world(engine).await;
    let worker = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    for bad in ["Amelia Hughes", "907 483 3780", "CS<1>"] {
        let refused = worker.post("/lookup", &lookup_form(bad)).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{engine:?}: {bad}");
        assert!(refused.body.contains("href=\"#case_ref\""), "{}", refused.body);
    }
    assert_eq!(lookups_audited(&w.app.audit_bodies().await), 0, "{engine:?}: refused before looking up");

    let answer = worker.post_and_follow("/lookup", &lookup_form("CS-2024/117")).await;
    assert!(answer.body.contains("Your case reference: <strong>CS-2024/117</strong>"), "{}", answer.body);
    assert!(answer.body.contains("case_ref=CS-2024%2F117"), "the request link carries it: {}", answer.body);
    let match_id = match_id_on(&answer.body);
    let form = worker.get(&format!("/requests/new?match_id={match_id}&case_ref=CS-2024%2F117")).await;
    assert!(form.body.contains("value=\"CS-2024/117\""), "{}", form.body);
    let fields = [
        ("match_id", match_id.as_str()),
        ("case_ref", "CS-2024/117"),
        ("legal_basis", "ca1989-s47"),
        ("reason", "Strategy meeting"),
        ("urgency", "urgent"),
    ];
    let made = worker.post("/requests", &fields).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{engine:?}: {}", made.body);
    let at = made.location.unwrap();
    let id = at.trim_start_matches("/requests/").split('?').next().unwrap().to_string();
    let mine = worker.get(&at).await;
    assert!(mine.body.contains("CS-2024/117") && mine.body.contains("Request sent"), "{}", mine.body);
    assert!(worker.get("/requests").await.body.contains("CS-2024/117"), "in our requests");
    let (_, view) = w.app.get(&w.leeds_worker, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(view["case_ref"], "CS-2024/117", "{view}");

    let holder = WebSession::sign_in(&w.app, &w.manchester_admin).await;
    let theirs = holder.get(&format!("/requests/{id}")).await;
    assert!(!theirs.body.contains("CS-2024/117"), "{engine:?}: the holder never sees it");
    assert!(theirs.body.contains("MCR-1"), "the holder sees its own record: {}", theirs.body);
    assert!(!holder.get("/requests").await.body.contains("CS-2024/117"));
    let (_, view) = w.app.get(&w.manchester_admin, &format!("/api/v1/requests/{id}")).await;
    assert!(view.get("case_ref").is_none(), "{view}");

    // The API checks it the same way, naming the field.
    let subject: Value = serde_json::from_str(AMELIA).unwrap();
    let (_, answer) =
        w.app.post(&w.leeds_worker, "/api/v1/lookups", &json!({"subject": subject, "purpose": "s47-enquiry"})).await;
    let body = json!({"match_id": answer["matches"][0]["match_id"], "legal_basis": "ca1989-s47", "reason": "R",
        "urgency": "urgent", "case_ref": "9074833780"});
    let (status, refused) = w.app.post(&w.leeds_worker, "/api/v1/requests", &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["field"], "case_ref");
    assert!(!refused.to_string().contains("9074833780"), "not echoed");
}

#[suite::test(each_engine)]
async fn the_holder_sees_who_asked_and_how_to_reach_them(engine: Engine) {
    let w = world(engine).await;
    let (_, request, _) = api_request(&w.app, &w.leeds_worker, "urgent").await;
    let id = request["request_id"].as_str().unwrap();
    let holder = WebSession::sign_in(&w.app, &w.manchester_admin).await;
    let page = holder.get(&format!("/requests/{id}")).await;
    assert!(page.body.contains("01632 960999"), "{engine:?}: the requester's phone: {}", page.body);
    assert!(page.body.contains("mailto:duty@e08000035.test.invalid"), "and secure email");
}

#[suite::test(each_engine)]
async fn the_inbox_lists_open_requests_by_deadline_and_answered_ones_after(engine: Engine) {
    let w = world(engine).await;
    let bristol = w.app.org("E06000023", "local-authority").await;
    let bristol_worker = w.app.token(&bristol, Role::Practitioner).await;
    let york = w.app.org("E06000014", "local-authority").await;
    let york_worker = w.app.token(&york, Role::Practitioner).await;
    // Oldest first: a routine one that is then declined, an immediate one, then an urgent one.
    let (_, closed, _) = api_request(&w.app, &york_worker, "immediate").await;
    let closed = closed["request_id"].as_str().unwrap().to_string();
    let decline = json!({"reason": "Not ours to share"});
    let (status, _) = w.app.post(&w.manchester_admin, &format!("/api/v1/requests/{closed}/decline"), &decline).await;
    assert_eq!(status, StatusCode::OK);
    let (_, immediate, _) = api_request(&w.app, &w.leeds_worker, "immediate").await;
    let (_, urgent, _) = api_request(&w.app, &bristol_worker, "urgent").await;
    let holder = WebSession::sign_in(&w.app, &w.manchester_admin).await;
    let inbox = holder.get("/requests").await.body;
    let at = |id: &Value| inbox.find(&format!("/requests/{}", id.as_str().unwrap())).expect("listed");
    let closed_at = inbox.find(&format!("/requests/{closed}")).unwrap();
    assert!(at(&immediate["request_id"]) < at(&urgent["request_id"]), "{engine:?}: the 4-hour one first");
    assert!(at(&urgent["request_id"]) < closed_at, "{engine:?}: answered ones after the open ones");
    // Five hours on, the immediate one is overdue: still first, and marked.
    w.app.clock.advance_ms(5 * 3_600_000);
    let holder = WebSession::sign_in(&w.app, &w.manchester_admin).await; // the old session idled out
    let inbox = holder.get("/requests").await.body;
    let first = inbox.find("/requests/rq_").map(|i| &inbox[i..]).unwrap();
    assert!(first.starts_with(&format!("/requests/{}", immediate["request_id"].as_str().unwrap())), "{engine:?}");
    let row_end = first.find("</tr>").unwrap();
    assert!(first[..row_end].contains("Overdue"), "{engine:?}: {}", &first[..row_end]);
}

#[suite::test(each_engine)]
async fn your_own_organisations_card_comes_after_the_ones_to_call_and_is_marked(engine: Engine) {
    let w = world(engine).await;
    let subject: Value = serde_json::from_str(AMELIA).unwrap();
    let ours = json!({"category": "early-help", "status": "open", "subject": subject});
    let (status, reply) = w.app.put(&w.leeds_admin, "/api/v1/holdings/LDS-9", &ours).await;
    assert!(status.is_success(), "{reply}");
    let worker = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    let answer = worker.post_and_follow("/lookup", &lookup_form("")).await.body;
    let theirs = answer.find("id=\"org-E08000003\"").expect("Manchester's card");
    let own = answer.find("id=\"org-E08000035-own\"").expect("our own card");
    assert!(theirs < own, "{engine:?}: the organisation to call first: {answer}");
    assert!(answer[own..].contains("your organisation"), "marked");
}

#[suite::test(each_engine)]
async fn each_history_step_shows_where_it_came_from_and_went(engine: Engine) {
    let w = world(engine).await;
    let (_, request, _) = api_request(&w.app, &w.leeds_worker, "urgent").await;
    let id = request["request_id"].as_str().unwrap();
    let holder = WebSession::sign_in(&w.app, &w.manchester_admin).await;
    let ack = holder.post(&format!("/requests/{id}/acknowledge"), &[("note", "On it")]).await;
    assert_eq!(ack.status, StatusCode::SEE_OTHER);
    let page = holder.get(ack.location.as_deref().unwrap()).await.body;
    assert!(page.contains("Acknowledged. The requester has been told"), "{engine:?}: {page}");
    assert!(page.contains("Acknowledged: Requested → Acknowledged"), "{engine:?}: {page}");
    assert!(!page.contains("Acknowledged → Acknowledged"), "{page}");
    assert!(!page.contains("Requested: Requested"), "the first step says it once: {page}");
}

#[suite::test(each_engine)]
async fn two_racing_requests_for_one_record_cannot_both_be_made(engine: Engine) {
    let w = world(engine).await;
    let subject: Value = serde_json::from_str(AMELIA).unwrap();
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let lookup = json!({"subject": subject, "purpose": "s47-enquiry"});
        let (_, answer) = w.app.post(&w.leeds_worker, "/api/v1/lookups", &lookup).await;
        bodies.push(json!({"match_id": answer["matches"][0]["match_id"], "legal_basis": "ca1989-s47",
            "reason": "Strategy meeting", "urgency": "urgent"}));
    }
    assert_ne!(bodies[0]["match_id"], bodies[1]["match_id"], "two lookups, two match ids");
    let (a, b) = tokio::join!(
        w.app.post(&w.leeds_worker, "/api/v1/requests", &bodies[0]),
        w.app.post(&w.leeds_worker, "/api/v1/requests", &bodies[1]),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT], "{engine:?}: {} {}", a.1, b.1);
    let (_, inbox) = w.app.get(&w.manchester_admin, "/api/v1/requests").await;
    assert_eq!(inbox["requests"].as_array().map(Vec::len), Some(1), "{engine:?}: {inbox}");
}
