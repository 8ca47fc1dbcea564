//! Families, on every engine: carers on holdings, family lookups that find a sibling through a
//! shared carer, carer matches between holders, unborn children found through the mother, and
//! shielded records whose holder is never named to anyone who asks.

use crate::common;

use child_locator::domain::role::Role;
use common::fixtures::{LEEDS, MANCHESTER, org_with, put_holding};
use common::{Engine, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The mother: her identifiers are canaries, never to be found in the store or a log.
const MOTHER_NHS: &str = "9434765919";
const MOTHER_GIVEN: &str = "Marigoldina";
const MOTHER_FAMILY: &str = "Thistlewhite";
const MOTHER_DOB: &str = "1994-02-11";

fn mother() -> Value {
    json!({"nhs_number": MOTHER_NHS, "given_name": MOTHER_GIVEN, "family_name": MOTHER_FAMILY, "date_of_birth": MOTHER_DOB})
}

/// The mother as a worker in another area types her: no NHS number to hand.
fn mother_by_name() -> Value {
    json!({"given_name": MOTHER_GIVEN, "family_name": MOTHER_FAMILY, "date_of_birth": MOTHER_DOB})
}

fn older_sibling() -> Value {
    json!({"nhs_number": "8762328603", "given_name": "Tobias", "family_name": MOTHER_FAMILY, "date_of_birth": "2015-06-01"})
}

fn younger_sibling() -> Value {
    json!({"given_name": "Poppy", "family_name": MOTHER_FAMILY, "date_of_birth": "2021-09-17"})
}

struct World {
    app: TestApp,
    /// Manchester: holds the older sibling with the mother as carer.
    mcr_admin: String,
    mcr_ig: String,
    /// Leeds: the family has just arrived here.
    leeds_admin: String,
    leeds_worker: String,
    leeds_ig: String,
}

async fn world(engine: Engine) -> World {
    let app = TestApp::start(engine).await;
    let (_, [mcr_admin, mcr_ig]) = org_with(&app, MANCHESTER, [Role::OrgAdmin, Role::IgOfficer]).await;
    let (_, [leeds_admin, leeds_worker, leeds_ig]) =
        org_with(&app, LEEDS, [Role::OrgAdmin, Role::Practitioner, Role::IgOfficer]).await;
    World { app, mcr_admin, mcr_ig, leeds_admin, leeds_worker, leeds_ig }
}

impl World {
    async fn put(&self, token: &str, local_ref: &str, body: Value) -> Value {
        put_holding(&self.app, token, local_ref, &body).await
    }

    async fn ask_family(&self, children: Vec<Value>, carers: Vec<Value>) -> Value {
        let body = json!({"family": {"children": children, "carers": carers}, "purpose": "s17-assessment"});
        let (status, answer) = self.app.post(&self.leeds_worker, "/api/v1/lookups", &body).await;
        assert_eq!(status, StatusCode::OK, "{:?}: {answer}", self.app.engine);
        answer
    }

    async fn matches(&self, token: &str) -> Vec<Value> {
        let (status, body) = self.app.get(token, "/api/v1/matches").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["matches"].as_array().cloned().unwrap_or_default()
    }
}

fn holding(category: &str, subject: Value, carers: Value) -> Value {
    json!({"category": category, "status": "open", "subject": subject, "carers": carers,
           "contact": {"team": "Family Support North", "phone": "0161 555 0101"}})
}

#[suite::test(each_engine)]
async fn carers_are_kept_as_pseudonyms_and_counted_on_the_holding(engine: Engine) {
    let w = world(engine).await;
    let view = w.put(&w.mcr_admin, "MCR-1", holding("child-in-need", older_sibling(), json!([mother()]))).await;
    assert_eq!(view["carers"], 1);
    let alone = w.put(&w.mcr_admin, "MCR-2", holding("child-in-need", younger_sibling(), json!([]))).await;
    assert!(
        view["pseudonym_count"].as_i64() > alone["pseudonym_count"].as_i64(),
        "{engine:?}: the carer's keys are stored too: {view} vs {alone}"
    );
    let text = view.to_string();
    assert!(!text.contains(MOTHER_GIVEN) && !text.contains(MOTHER_NHS), "{text}");
}

#[suite::test(each_engine)]
async fn a_carer_with_a_bad_field_is_named_by_position_without_its_value(engine: Engine) {
    let w = world(engine).await;
    let mut bad = mother();
    bad["nhs_number"] = json!("9434765918");
    let body = holding("child-in-need", older_sibling(), json!([mother(), bad]));
    let (status, error) = w.app.put(&w.mcr_admin, "/api/v1/holdings/MCR-1", &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{engine:?}: {error}");
    assert_eq!(error["error"]["field"], "carers[1].nhs_number");
    assert!(!error.to_string().contains("9434765918"));
    let five = json!([mother(), mother(), mother(), mother(), mother()]);
    let (status, error) =
        w.app.put(&w.mcr_admin, "/api/v1/holdings/MCR-1", &holding("other", older_sibling(), five)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "carers");
}

#[suite::test(each_engine)]
async fn a_family_lookup_finds_a_sibling_known_elsewhere_through_the_shared_carer(engine: Engine) {
    let w = world(engine).await;
    w.put(&w.mcr_admin, "MCR-1", holding("child-protection-plan", older_sibling(), json!([mother()]))).await;

    // Leeds enters the child in front of them and the mother; the older sibling is not entered.
    let answer = w.ask_family(vec![younger_sibling()], vec![mother_by_name()]).await;
    assert_eq!(answer["known"], true, "{engine:?}: {answer}");
    assert_eq!(answer["children"][0]["known"], false, "the younger child herself is not known: {answer}");
    let family = answer["family_matches"].as_array().expect("family matches");
    assert_eq!(family.len(), 1, "{answer}");
    let m = &family[0];
    assert_eq!(m["basis"], "carer");
    assert_eq!(m["organisation"]["code"], "E08000003");
    assert_eq!(m["contact"]["phone"], "0161 555 0101");
    assert_eq!(m["carers"][0]["carer"], 0);
    assert!(m["tier"] == "probable" || m["tier"] == "confirmed", "{m}");
    assert!(m["evidence"].as_str().unwrap().starts_with("carer 1 as you entered them"), "{m}");
    assert!(m["match_id"].as_str().unwrap().starts_with("lm_"));
    assert!(answer["matches"].as_array().unwrap().iter().any(|x| x["match_id"] == m["match_id"]));

    // One audit event for the whole family, counting what was asked.
    let lookup = w.app.audit_bodies().await.into_iter().rev().find(|b| b["type"] == "lookup").unwrap();
    assert_eq!(lookup["details"]["subjects_asked"], 2, "{lookup}");
    assert_eq!(lookup["details"]["children_asked"], 1);
    assert_eq!(lookup["details"]["carers_asked"], 1);
}

#[suite::test(each_engine)]
async fn a_child_entered_in_a_family_is_matched_as_a_child_not_again_as_a_family_match(engine: Engine) {
    let w = world(engine).await;
    w.put(&w.mcr_admin, "MCR-1", holding("child-in-need", older_sibling(), json!([mother()]))).await;
    let answer = w.ask_family(vec![younger_sibling(), older_sibling()], vec![mother()]).await;
    assert_eq!(answer["children"][0]["known"], false, "{engine:?}: {answer}");
    assert_eq!(answer["children"][1]["known"], true);
    let found = &answer["children"][1]["matches"][0];
    assert_eq!((found["basis"].as_str(), found["child"].as_u64()), (Some("child"), Some(1)));
    assert_eq!(found["tier"], "confirmed");
    assert_eq!(answer["family_matches"], json!([]), "the same record is not repeated as a family match");
}

#[suite::test(each_engine)]
async fn a_family_lookup_is_checked_field_by_field(engine: Engine) {
    let w = world(engine).await;
    let ask = |body: Value| {
        let app = &w.app;
        let token = w.leeds_worker.clone();
        async move { app.post(&token, "/api/v1/lookups", &body).await }
    };
    let (status, e) =
        ask(json!({"subject": older_sibling(), "family": {"carers": [mother()]}, "purpose": "s47-enquiry"})).await;
    assert_eq!((status, e["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("family")), "{e}");
    let (status, e) = ask(json!({"family": {"children": [], "carers": []}, "purpose": "s47-enquiry"})).await;
    assert_eq!((status, e["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("family")), "{e}");
    let mut bad = younger_sibling();
    bad["date_of_birth"] = json!("17/09/2021");
    let (status, e) = ask(json!({"family": {"children": [older_sibling(), bad]}, "purpose": "s47-enquiry"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "family.children[1].date_of_birth", "{engine:?}: {e}");
    assert!(!e.to_string().contains("17/09/2021"));
    let (status, e) = ask(json!({"family": {"parents": [mother()]}, "purpose": "s47-enquiry"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["error"]["field"].as_str().unwrap().starts_with("family"), "{e}");
}

#[suite::test(each_engine)]
async fn holders_sharing_a_carer_both_see_a_carer_match_until_the_evidence_goes(engine: Engine) {
    let w = world(engine).await;
    w.put(&w.mcr_admin, "MCR-1", holding("child-in-need", older_sibling(), json!([mother()]))).await;
    w.put(&w.leeds_admin, "LDS-7", holding("early-help", younger_sibling(), json!([mother()]))).await;

    let (mcr, leeds) = (w.matches(&w.mcr_admin).await, w.matches(&w.leeds_admin).await);
    assert_eq!((mcr.len(), leeds.len()), (1, 1), "{engine:?}: {mcr:?} {leeds:?}");
    assert_eq!(mcr[0]["match_id"], leeds[0]["match_id"], "one match id for both sides");
    assert_eq!(mcr[0]["basis"], "carer");
    assert_eq!(mcr[0]["other_organisation"]["code"], "E08000035");
    assert_eq!(leeds[0]["other_organisation"]["code"], "E08000003");
    assert!(leeds[0]["evidence"].as_str().unwrap().starts_with("a carer on both records"), "{leeds:?}");

    // Leeds learns the carer was recorded in error and removes her: the match is withdrawn.
    w.put(&w.leeds_admin, "LDS-7", holding("early-help", younger_sibling(), json!([]))).await;
    assert!(w.matches(&w.mcr_admin).await.is_empty(), "{engine:?}");
    assert!(w.matches(&w.leeds_admin).await.is_empty());
    assert!(w.app.audit_types().await.iter().any(|t| t == "match_withdrawn"));
}

#[suite::test(each_engine)]
async fn a_child_match_between_two_holders_is_not_also_reported_as_a_carer_match(engine: Engine) {
    let w = world(engine).await;
    w.put(&w.mcr_admin, "MCR-1", holding("child-in-need", older_sibling(), json!([mother()]))).await;
    w.put(&w.leeds_admin, "LDS-1", holding("looked-after", older_sibling(), json!([mother()]))).await;
    let leeds = w.matches(&w.leeds_admin).await;
    assert_eq!(leeds.len(), 1, "{engine:?}: {leeds:?}");
    assert_eq!(leeds[0]["basis"], "child");
}

async fn sync(app: &TestApp, token: &str, content_type: &str, body: String) -> (StatusCode, Value) {
    app.sync(token, content_type, body, "").await
}

#[suite::test(each_engine)]
async fn csv_and_ndjson_syncs_carry_carers_and_the_shielded_flag(engine: Engine) {
    let w = world(engine).await;
    let csv = format!(
        "local_ref,category,status,given_name,family_name,date_of_birth,carer1_nhs_number,carer1_given_name,\
         carer1_family_name,carer1_date_of_birth,carer2_given_name,carer2_family_name,carer2_date_of_birth,shielded\n\
         C-1,child-in-need,open,Tobias,{MOTHER_FAMILY},2015-06-01,{MOTHER_NHS},{MOTHER_GIVEN},{MOTHER_FAMILY},\
         {MOTHER_DOB},Ade,Bello,1990-01-01,no\n\
         C-2,looked-after,open,Poppy,{MOTHER_FAMILY},2021-09-17,,,,,,,,yes\n\
         C-3,other,open,Ann,Lee,2020-01-01,,,,,,,,perhaps\n\
         C-4,other,open,Bo,Lee,2020-01-01,,Zed,,,,,,\n"
    );
    let (status, summary) = sync(&w.app, &w.mcr_admin, "text/csv", csv.clone()).await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {summary}");
    assert_eq!(summary["added"], 2, "{summary}");
    let rejected = summary["rejected"].as_array().unwrap();
    assert!(rejected.iter().any(|r| r["line"] == 4 && r["field"] == "shielded"), "{rejected:?}");
    assert!(rejected.iter().any(|r| r["line"] == 5 && r["field"].as_str().unwrap().starts_with("carers[0]")));
    let (_, c1) = w.app.get(&w.mcr_admin, "/api/v1/holdings/C-1").await;
    assert_eq!((c1["carers"].as_i64(), c1["shielded"].as_bool()), (Some(2), Some(false)), "{c1}");
    let (_, c2) = w.app.get(&w.mcr_admin, "/api/v1/holdings/C-2").await;
    assert_eq!((c2["carers"].as_i64(), c2["shielded"].as_bool()), (Some(0), Some(true)), "{c2}");
    let (_, again) = sync(&w.app, &w.mcr_admin, "text/csv", csv).await;
    assert_eq!((again["unchanged"].as_i64(), again["added"].as_i64()), (Some(2), Some(0)), "idempotent: {again}");

    let ndjson = [
        json!({"local_ref": "N-1", "category": "child-in-need", "status": "open", "subject": younger_sibling(),
               "carers": [mother()]}),
        json!({"local_ref": "N-2", "category": "pre-birth", "status": "open",
               "subject": {"expected_date": "2027-02-01"}, "carers": [mother()], "shielded": true}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let (status, summary) = sync(&w.app, &w.leeds_admin, "application/x-ndjson", ndjson).await;
    assert_eq!((status, summary["added"].as_i64()), (StatusCode::OK, Some(2)), "{engine:?}: {summary}");
    let (_, n2) = w.app.get(&w.leeds_admin, "/api/v1/holdings/N-2").await;
    assert_eq!((n2["category"].as_str(), n2["shielded"].as_bool()), (Some("pre-birth"), Some(true)), "{n2}");
    // Leeds's N-1 and Manchester's C-1 share the mother.
    assert!(w.matches(&w.leeds_admin).await.iter().any(|m| m["local_ref"] == "N-1" && m["basis"] == "carer"));
}

fn pre_birth(expected: &str) -> Value {
    json!({"category": "pre-birth", "status": "open", "subject": {"expected_date": expected}, "carers": [mother()]})
}

#[suite::test(each_engine)]
async fn an_unborn_child_is_found_through_the_mother_and_matched_by_the_newborn(engine: Engine) {
    let w = world(engine).await;
    // Due four days before "today" in the test clock (2026-11-24): the baby has been born.
    w.put(&w.mcr_admin, "PB-1", pre_birth("2026-11-20")).await;

    let answer = w.ask_family(vec![], vec![mother_by_name()]).await;
    let found = &answer["family_matches"][0];
    assert_eq!(found["organisation"]["code"], "E08000003", "{engine:?}: {answer}");
    assert_eq!(found["category"], "pre-birth");
    assert_eq!(found["basis"], "carer");

    // The newborn, born six days before the due date, entered with the mother.
    let newborn = json!({"given_name": "Baby", "family_name": MOTHER_FAMILY, "date_of_birth": "2026-11-14"});
    let answer = w.ask_family(vec![newborn.clone()], vec![mother_by_name()]).await;
    let child = &answer["children"][0];
    assert_eq!(child["known"], true, "{engine:?}: {answer}");
    let m = &child["matches"][0];
    assert_eq!((m["basis"].as_str(), m["category"].as_str()), (Some("child"), Some("pre-birth")), "{m}");
    assert!(["possible", "probable", "confirmed"].contains(&m["tier"].as_str().unwrap()));
    assert!(m["evidence"].as_str().unwrap().contains("expected date"), "{m}");

    // Born four months away from the due date, it is another pregnancy: no child match.
    let other = json!({"given_name": "Baby", "family_name": MOTHER_FAMILY, "date_of_birth": "2026-07-14"});
    let answer = w.ask_family(vec![other], vec![mother_by_name()]).await;
    assert_eq!(answer["children"][0]["known"], false, "{engine:?}: {answer}");

    // After the birth the holder updates the record to the child.
    let born = json!({"given_name": "Amara", "family_name": MOTHER_FAMILY, "date_of_birth": "2026-11-14"});
    w.put(&w.mcr_admin, "PB-1", holding("child-protection-plan", born.clone(), json!([mother()]))).await;
    let answer = w.ask_family(vec![born], vec![]).await;
    assert_eq!(answer["children"][0]["matches"][0]["tier"], "probable", "{engine:?}: {answer}");
}

#[suite::test(each_engine)]
async fn a_pre_birth_holding_needs_the_mother_and_only_an_expected_date(engine: Engine) {
    let w = world(engine).await;
    let put = |body: Value| {
        let app = &w.app;
        let token = w.mcr_admin.clone();
        async move { app.put(&token, "/api/v1/holdings/PB-9", &body).await }
    };
    let mut no_mother = pre_birth("2027-01-10");
    no_mother["carers"] = json!([]);
    let (status, e) = put(no_mother).await;
    assert_eq!((status, e["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("carers")), "{e}");
    let mut named = pre_birth("2027-01-10");
    named["subject"]["given_name"] = json!("Hope");
    let (status, e) = put(named).await;
    assert_eq!((status, e["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("subject")), "{e}");
    let (status, e) = put(pre_birth("2031-01-10")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{engine:?}: {e}");
    assert_eq!(e["error"]["field"], "subject.expected_date");
    assert!(!e.to_string().contains("2031"));
    let mut born = holding("child-in-need", older_sibling(), json!([]));
    born["subject"]["expected_date"] = json!("2027-01-10");
    let (status, e) = w.app.put(&w.mcr_admin, "/api/v1/holdings/X-1", &born).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "subject.expected_date", "{e}");
}

/// Every way Manchester could be named: its code, name, duty line, email and the holding's team line.
const MANCHESTER_NAMES: [&str; 5] = [
    "E08000003",
    "E08000003 Test Organisation",
    "duty@e08000003.test.invalid",
    "Family Support North",
    "0161 555 0101",
];

fn names_no_holder(text: &str) -> bool {
    MANCHESTER_NAMES.iter().all(|n| !text.contains(n))
}

#[suite::test(each_engine)]
async fn a_shielded_holder_is_never_named_to_the_asker_and_is_alerted_instead(engine: Engine) {
    let w = world(engine).await;
    let mut refuge = holding("looked-after", older_sibling(), json!([mother()]));
    refuge["shielded"] = json!(true);
    w.put(&w.mcr_admin, "SAFE-1", refuge).await;

    let (status, answer) = w
        .app
        .post(&w.leeds_worker, "/api/v1/lookups", &json!({"subject": older_sibling(), "purpose": "s47-enquiry"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["known"], true, "{engine:?}: {answer}");
    let m = &answer["matches"][0];
    assert_eq!(m["shielded"], true, "{m}");
    assert!(m.get("organisation").is_none() && m.get("contact").is_none() && m.get("category").is_none(), "{m}");
    assert!(m["notice"].as_str().unwrap().contains("alerted"));
    assert!(names_no_holder(&answer.to_string()), "{answer}");
    let match_id = m["match_id"].as_str().unwrap().to_string();

    // The holder hears at once: outbox (webhook), its view of lookups received, its IG's audit.
    let (_, outbox) = w.app.get(&w.mcr_admin, "/api/v1/outbox").await;
    let alert = outbox["messages"]
        .as_array()
        .and_then(|ms| ms.iter().find(|x| x["kind"] == "lookup.shielded"))
        .unwrap_or_else(|| panic!("{engine:?}: no alert in {outbox}"));
    assert_eq!(alert["payload"]["asking_organisation"]["code"], "E08000035");
    assert_eq!(alert["payload"]["local_ref"], "SAFE-1");
    assert_eq!(alert["payload"]["purpose"], "s47-enquiry");
    let (_, received) = w.app.get(&w.mcr_admin, "/api/v1/lookups/received").await;
    assert_eq!(received["lookups"][0]["shielded"], true, "{received}");
    let (_, events) = w.app.get(&w.mcr_ig, "/api/v1/audit/events?type=shielded_hit").await;
    assert_eq!(events["events"].as_array().map(Vec::len), Some(1), "{engine:?}: {events}");

    // A request still flows to the holder, and the asker's side still names no one.
    let (status, request) = w
        .app
        .post(
            &w.leeds_worker,
            "/api/v1/requests",
            &json!({"match_id": match_id, "legal_basis": "ca1989-s47",
            "reason": "Section 47 enquiry opened today", "urgency": "urgent"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{engine:?}: {request}");
    assert_eq!(request["shielded"], true);
    assert!(request.get("holding_organisation").is_none(), "{request}");
    let request_id = request["request_id"].as_str().unwrap();
    let (_, inbox) = w.app.get(&w.mcr_admin, "/api/v1/requests?role=holder").await;
    assert_eq!(inbox["requests"][0]["request_id"], request_id, "{inbox}");
    let (status, _) = w.app.post(&w.mcr_admin, &format!("/api/v1/requests/{request_id}/acknowledge"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);

    let (_, seen) = w.app.get(&w.leeds_worker, &format!("/api/v1/requests/{request_id}")).await;
    assert_eq!(seen["state"], "acknowledged");
    let (_, leeds_outbox) = w.app.get(&w.leeds_admin, "/api/v1/outbox").await;
    let (_, leeds_audit) = w.app.get(&w.leeds_ig, "/api/v1/audit/events").await;
    let csv = w.app.get_text(&w.leeds_ig, "/api/v1/audit/events.csv").await;
    let (_, access) =
        w.app.post(&w.leeds_ig, "/api/v1/audit/subject-access", &json!({"subject": older_sibling()})).await;
    let holders = access["holders"].as_array().unwrap_or_else(|| panic!("{access}"));
    assert!(holders.iter().any(|h| h["shielded"] == true), "{engine:?}: counted, not named: {access}");
    for (what, text) in [
        ("subject access", access.to_string()),
        ("request", seen.to_string()),
        ("outbox", leeds_outbox.to_string()),
        ("audit", leeds_audit.to_string()),
        ("export", csv),
    ] {
        assert!(names_no_holder(&text), "{engine:?}: the asker's {what} names the holder: {text}");
    }
}

#[suite::test(each_engine)]
async fn a_match_with_a_shielded_holding_hides_it_from_the_other_holder_only(engine: Engine) {
    let w = world(engine).await;
    let mut refuge = holding("looked-after", older_sibling(), json!([]));
    refuge["shielded"] = json!(true);
    w.put(&w.mcr_admin, "SAFE-1", refuge).await;
    w.put(&w.leeds_admin, "LDS-1", holding("child-in-need", older_sibling(), json!([]))).await;

    let leeds = w.matches(&w.leeds_admin).await;
    assert_eq!(leeds.len(), 1, "{engine:?}");
    assert_eq!(leeds[0]["shielded"], true);
    assert!(leeds[0].get("other_organisation").is_none(), "{leeds:?}");
    let mcr = w.matches(&w.mcr_admin).await;
    assert_eq!(mcr[0]["other_organisation"]["code"], "E08000035", "the shielded holder sees who else knows");
    let (_, leeds_outbox) = w.app.get(&w.leeds_admin, "/api/v1/outbox").await;
    assert!(leeds_outbox.to_string().contains("match.new") && names_no_holder(&leeds_outbox.to_string()));

    // A request through the holding match reaches the shielded holder without naming it.
    let match_id = leeds[0]["match_id"].as_str().unwrap();
    let body = json!({"match_id": match_id, "legal_basis": "ca2004-s11", "reason": "Both records open",
        "urgency": "routine"});
    let (status, request) = w.app.post(&w.leeds_worker, "/api/v1/requests", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    assert_eq!(request["shielded"], true, "{engine:?}: {request}");
    assert!(names_no_holder(&request.to_string()), "{request}");
}

#[suite::test]
async fn carer_identifiers_never_reach_the_database_files() {
    let w = world(Engine::Sqlite).await;
    w.put(&w.mcr_admin, "MCR-1", holding("child-in-need", older_sibling(), json!([mother()]))).await;
    w.put(&w.mcr_admin, "PB-1", pre_birth("2027-01-10")).await;
    w.ask_family(vec![younger_sibling()], vec![mother()]).await;
    w.app.assert_db_files_free_of(&[MOTHER_GIVEN, MOTHER_FAMILY, MOTHER_NHS, MOTHER_DOB, "2027-01-10"]);
}

#[suite::test(each_engine)]
async fn an_admin_shields_a_record_without_resending_its_identifiers(engine: Engine) {
    let w = world(engine).await;
    w.put(&w.mcr_admin, "MCR-1", holding("looked-after", older_sibling(), json!([]))).await;
    let lookup = json!({"subject": older_sibling(), "purpose": "s47-enquiry"});
    let ask = || w.app.post(&w.leeds_worker, "/api/v1/lookups", &lookup);

    let (status, view) = w.app.put(&w.mcr_admin, "/api/v1/holdings/MCR-1/shielded", &json!({"shielded": true})).await;
    assert_eq!((status, view["shielded"].as_bool()), (StatusCode::OK, Some(true)), "{engine:?}: {view}");
    let (_, answer) = ask().await;
    assert_eq!(answer["matches"][0]["shielded"], true, "{answer}");
    assert!(names_no_holder(&answer.to_string()));

    // A case system's sync that knows nothing of shielding never lifts a shield, even when the
    // row itself changed.
    let csv = format!(
        "local_ref,category,status,nhs_number,given_name,family_name,date_of_birth\n\
         MCR-1,looked-after,open,8762328603,Tobias,{MOTHER_FAMILY},2015-06-01\n"
    );
    let (_, summary) = sync(&w.app, &w.mcr_admin, "text/csv", csv).await;
    assert_eq!(summary["updated"], 1, "the contact went: {summary}");
    let (_, held) = w.app.get(&w.mcr_admin, "/api/v1/holdings/MCR-1").await;
    assert_eq!(held["shielded"], true, "{engine:?}: {held}");

    w.app.put(&w.mcr_admin, "/api/v1/holdings/MCR-1/shielded", &json!({"shielded": false})).await;
    let (_, answer) = ask().await;
    assert_eq!(answer["matches"][0]["organisation"]["code"], "E08000003", "{answer}");

    let (status, _) = w.app.put(&w.leeds_admin, "/api/v1/holdings/MCR-1/shielded", &json!({"shielded": true})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another organisation's record");
    let (status, e) = w.app.put(&w.mcr_admin, "/api/v1/holdings/MCR-1/shielded", &json!({"shielded": "yes"})).await;
    assert!(status.is_client_error() && e["error"]["field"] == "shielded", "{e}");
}

/// Every organisation id in a leaf body: scope members in clear (v1) and any `*org_id` field.
fn org_ids_named(body: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = body["scope"].as_array().into_iter().flatten().filter_map(Value::as_i64).collect();
    fn walk(v: &Value, ids: &mut Vec<i64>) {
        match v {
            Value::Object(fields) => {
                for (name, value) in fields {
                    if name.ends_with("org_id") || name.ends_with("organisation_id") {
                        ids.extend(value.as_i64());
                    }
                    walk(value, ids);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, ids)),
            _ => {}
        }
    }
    walk(body, &mut ids);
    ids
}

#[suite::test(each_engine)]
async fn the_askers_inclusion_proofs_never_name_the_shielded_holder_and_still_verify(engine: Engine) {
    use child_locator::audit::checkpoint::SignedCheckpoint;
    use child_locator::audit::leaf::{Sealed, commitment, scope_value};
    use child_locator::audit::merkle::{leaf_hash, verify_inclusion};
    let hash = |v: &Value| -> [u8; 32] { hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap() };
    let w = world(engine).await;
    let mut refuge = holding("looked-after", older_sibling(), json!([]));
    refuge["shielded"] = json!(true);
    w.put(&w.mcr_admin, "SAFE-1", refuge).await;
    w.put(&w.leeds_admin, "LDS-1", holding("child-in-need", older_sibling(), json!([]))).await; // match_made
    let ask = json!({"subject": older_sibling(), "purpose": "other", "purpose_detail": "asked by the refuge worker"});
    let (status, answer) = w.app.post(&w.leeds_worker, "/api/v1/lookups", &ask).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let shielded = answer["matches"].as_array().unwrap().iter().find(|m| m["shielded"] == true).unwrap();
    let body = json!({"match_id": shielded["match_id"], "legal_basis": "ca1989-s47",
        "reason": "Section 47 enquiry opened today", "urgency": "urgent"});
    let (status, request) = w.app.post(&w.leeds_worker, "/api/v1/requests", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    let mcr_id = w.app.store().organisation_by_code("E08000003").await.unwrap().id;
    let leeds_id = w.app.store().organisation_by_code("E08000035").await.unwrap().id;

    let (_, list) = w.app.get(&w.leeds_ig, "/api/v1/audit/events?limit=1000").await;
    let seen = list["events"].as_array().unwrap();
    let mut proved = Vec::new();
    for kind in ["lookup", "shielded_hit", "match_made", "request_created"] {
        let event = seen.iter().find(|e| e["type"] == kind).unwrap_or_else(|| panic!("{engine:?}: no {kind}"));
        let seq = event["id"].as_u64().unwrap();
        let (status, proof) = w.app.get(&w.leeds_ig, &format!("/api/v1/audit/proof/inclusion?seq={seq}")).await;
        assert_eq!(status, StatusCode::OK, "{proof}");
        let text = proof["body"].as_str().unwrap();
        let body: Value = serde_json::from_str(text).unwrap();
        assert!(names_no_holder(&proof.to_string()), "{engine:?}: the {kind} proof names the holder: {proof}");
        assert!(!org_ids_named(&body).contains(&mcr_id), "{engine:?}: the {kind} proof names the holder: {text}");
        assert!(!text.contains("refuge worker"), "{engine:?}: free text in the {kind} leaf: {text}");

        let leaf = leaf_hash(text.as_bytes());
        assert_eq!(leaf, hash(&proof["leaf_hash"]));
        let path: Vec<[u8; 32]> = proof["proof"].as_array().unwrap().iter().map(hash).collect();
        let head = SignedCheckpoint::from_note(proof["checkpoint"].as_str().unwrap()).unwrap();
        head.verify(&w.app.state.audit_signer().verifying_key()).expect("signed");
        let root = head.checkpoint().root_hash;
        verify_inclusion(&leaf, seq, proof["tree_size"].as_u64().unwrap(), &path, &root).expect("included");
        // Leeds can open its own membership of the scope, and only its own.
        let opening = &proof["scope_opening"];
        assert_eq!(opening["organisation_id"].as_i64(), Some(leeds_id), "{proof}");
        let salt = hash(&opening["salt"]);
        let mine = commitment(Sealed::Scope, seq, &salt, &scope_value(leeds_id));
        assert!(body["scope"].as_array().unwrap().iter().any(|c| c == mine.as_str()), "{engine:?}: {text}");
        let guess = commitment(Sealed::Scope, seq, &salt, &scope_value(mcr_id));
        assert!(body["scope"].as_array().unwrap().iter().all(|c| c != guess.as_str()), "{engine:?}: {text}");
        proved.push(kind);
    }
    assert_eq!(proved.len(), 4);
    let (_, outbox) = w.app.get(&w.mcr_admin, "/api/v1/outbox").await;
    assert!(!outbox.to_string().contains("refuge worker"), "{engine:?}: the asker's free text went to the holder");
}

/// A shielded refuge at Manchester and a Leeds practitioner's lookup that reaches it: the match id.
async fn shielded_refuge_reached_from_leeds(w: &World, subject: Value) -> String {
    let mut refuge = holding("looked-after", subject.clone(), json!([]));
    refuge["shielded"] = json!(true);
    w.put(&w.mcr_admin, "SAFE-1", refuge).await;
    let (status, answer) =
        w.app.post(&w.leeds_worker, "/api/v1/lookups", &json!({"subject": subject, "purpose": "s47-enquiry"})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["matches"][0]["match_id"].as_str().unwrap_or_else(|| panic!("no match: {answer}")).to_string()
}

#[suite::test(each_engine)]
async fn every_request_answer_to_the_requester_of_a_shielded_record_names_no_holder(engine: Engine) {
    let w = world(engine).await;
    let match_id = shielded_refuge_reached_from_leeds(&w, older_sibling()).await;
    let ask = json!({"match_id": match_id, "legal_basis": "ca1989-s47",
        "reason": "Section 47 enquiry opened today", "urgency": "urgent"});
    let mut answers: Vec<(String, Value)> = Vec::new();
    for ending in ["withdraw", "fulfil", "decline"] {
        let (status, created) = w.app.post(&w.leeds_worker, "/api/v1/requests", &ask).await;
        assert_eq!(status, StatusCode::CREATED, "{engine:?}: {created}");
        let id = created["request_id"].as_str().unwrap().to_string();
        answers.push(("create".into(), created));
        let step = |name: &str| format!("/api/v1/requests/{id}/{name}");
        let (status, _) = w.app.post(&w.mcr_admin, &step("acknowledge"), &json!({"note": "On it"})).await;
        assert_eq!(status, StatusCode::OK);
        let (status, refused) = w.app.post(&w.leeds_worker, &step("acknowledge"), &json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
        answers.push(("refused acknowledge".into(), refused));
        answers.push((
            "get after acknowledge".into(),
            w.app.get(&w.leeds_worker, &format!("/api/v1/requests/{id}")).await.1,
        ));
        let (status, answer) = match ending {
            "withdraw" => w.app.post(&w.leeds_worker, &step("withdraw"), &json!({"reason": "No longer needed"})).await,
            "fulfil" => {
                let body = json!({"how": "secure-email", "reference": "REF-1"});
                w.app.post(&w.mcr_admin, &step("fulfil"), &body).await
            }
            _ => w.app.post(&w.mcr_admin, &step("decline"), &json!({"reason": "Not ours to share"})).await,
        };
        assert_eq!(status, StatusCode::OK, "{engine:?}: {ending}: {answer}");
        if ending == "withdraw" {
            answers.push(("withdraw".into(), answer));
        }
        let (_, after) = w.app.get(&w.leeds_worker, &format!("/api/v1/requests/{id}")).await;
        assert!(after["history"].as_array().is_some_and(|h| h.len() >= 3), "{after}");
        answers.push((format!("get after {ending}"), after));
    }
    answers.push(("list".into(), w.app.get(&w.leeds_worker, "/api/v1/requests").await.1));
    answers.push(("outbox".into(), w.app.get(&w.leeds_admin, "/api/v1/outbox").await.1));
    answers.push(("list of mine".into(), w.app.get(&w.leeds_worker, "/api/v1/requests?role=requester").await.1));
    for (what, answer) in answers {
        let text = answer.to_string();
        assert!(names_no_holder(&text), "{engine:?}: the requester's {what} answer names the holder: {text}");
    }
}

/// The fixed wording a shielded match carries instead of which fields agree.
const SHIELDED_EVIDENCE: &str = "A shielded record matches; which details agree is not shown";

/// `lookup_id`, `match_id` and times blanked: what is left is what the asker learns.
fn without_ids(mut v: Value) -> Value {
    match &mut v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if ["lookup_id", "match_id", "last_update"].contains(&key.as_str()) {
                    *value = Value::Null;
                } else {
                    *value = without_ids(value.take());
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| *i = without_ids(i.take())),
        _ => {}
    }
    v
}

#[suite::test(each_engine)]
async fn a_shielded_match_says_the_same_whatever_postcode_is_guessed(engine: Engine) {
    let w = world(engine).await;
    let mut child = younger_sibling();
    child["postcode"] = json!("M14 5RB");
    let match_id = shielded_refuge_reached_from_leeds(&w, child.clone()).await;
    assert!(match_id.starts_with("lm_"));
    let ask = |postcode: &str| {
        let mut subject = child.clone();
        subject["postcode"] = json!(postcode);
        json!({"subject": subject, "purpose": "s47-enquiry"})
    };
    let (_, right) = w.app.post(&w.leeds_worker, "/api/v1/lookups", &ask("M14 5RB")).await;
    let (_, wrong) = w.app.post(&w.leeds_worker, "/api/v1/lookups", &ask("LS6 2AA")).await;
    assert_eq!(right["matches"][0]["shielded"], true, "{engine:?}: {right}");
    assert_eq!(right["matches"][0]["evidence"], SHIELDED_EVIDENCE, "{engine:?}: {right}");
    // The match says nothing of the postcode (the answer's advice `leave-postcode-out` is about
    // the fields typed, the same with or without any record).
    assert!(!right["matches"].to_string().contains("postcode"), "{engine:?}: {right}");
    assert_eq!(
        without_ids(right).to_string(),
        without_ids(wrong).to_string(),
        "{engine:?}: the answer must not depend on the guessed district"
    );

    // A family lookup says the same, child and carer alike.
    let (_, family) = w
        .app
        .post(
            &w.leeds_worker,
            "/api/v1/lookups",
            &json!({"family": {"children": [child.clone()], "carers": []}, "purpose": "s47-enquiry"}),
        )
        .await;
    assert_eq!(family["matches"][0]["evidence"], SHIELDED_EVIDENCE, "{engine:?}: {family}");

    // Holding to holding: Leeds registers the child and sees the fixed wording too.
    w.put(&w.leeds_admin, "LDS-1", holding("child-in-need", child.clone(), json!([]))).await;
    let leeds = w.matches(&w.leeds_admin).await;
    assert_eq!(leeds[0]["shielded"], true, "{engine:?}: {leeds:?}");
    assert_eq!(leeds[0]["evidence"], SHIELDED_EVIDENCE, "{engine:?}: {leeds:?}");
    let mcr = w.matches(&w.mcr_admin).await;
    // The shielded record's holder sees why, in words: the evidence the pair's one tier rests
    // on, which leaves the district out as the other side's does.
    let why = mcr[0]["evidence"].as_str().unwrap_or_default();
    assert!(why.contains("Names and date of birth agree"), "the holder sees why: {mcr:?}");
    assert!(!why.contains("postcode district"), "{engine:?}: the pair's tier ignores the district: {mcr:?}");
}

/// Holding to holding, as for lookups: a match with a shielded record must not tell the other
/// holder whether its district was guessed right. A child who agrees with the shielded record
/// only as far as sounding alike (Kathryn Smyth, Catherine Smith: possible with the district,
/// nothing without) must meet it the same whether the district agrees or not, whichever
/// registers first.
#[suite::test(each_engine)]
async fn a_match_with_a_shielded_holding_does_not_depend_on_the_district_either_way_round(engine: Engine) {
    let w = world(engine).await;
    let in_refuge = json!({"given_name": "Catherine", "family_name": "Smith",
                           "date_of_birth": "2021-09-17", "postcode": "M14 5RB"});
    let mut refuge = holding("looked-after", in_refuge, json!([]));
    refuge["shielded"] = json!(true);
    let leeds_child = |postcode: &str| {
        holding(
            "child-in-need",
            json!({"given_name": "Kathryn", "family_name": "Smyth", "date_of_birth": "2021-09-17",
                   "postcode": postcode}),
            json!([]),
        )
    };

    // The shielded record first, then Leeds registers a child in the right and a wrong district.
    w.put(&w.mcr_admin, "SAFE-1", refuge.clone()).await;
    w.put(&w.leeds_admin, "LDS-RIGHT", leeds_child("M14 5RB")).await;
    w.put(&w.leeds_admin, "LDS-WRONG", leeds_child("LS6 2AA")).await;
    let tiers = |matches: Vec<Value>| {
        let mut seen: Vec<String> = matches.iter().map(|m| format!("{} {}", m["local_ref"], m["tier"])).collect();
        seen.sort();
        seen
    };
    let leeds = tiers(w.matches(&w.leeds_admin).await);
    let right =
        leeds.iter().filter(|m| m.contains("LDS-RIGHT")).map(|m| m.replace("LDS-RIGHT", "")).collect::<Vec<_>>();
    let wrong =
        leeds.iter().filter(|m| m.contains("LDS-WRONG")).map(|m| m.replace("LDS-WRONG", "")).collect::<Vec<_>>();
    assert_eq!(right, wrong, "{engine:?}: the district guess shows in Leeds's matches: {leeds:?}");

    // The other way round: Leeds's record first, then the shielded one arrives.
    w.put(
        &w.mcr_admin,
        "SAFE-1",
        json!({"category": "looked-after", "status": "closed", "subject":
        {"given_name": "Someone", "family_name": "Else", "date_of_birth": "2019-01-01"}, "carers": [],
        "contact": {"team": "Family Support North", "phone": "0161 555 0101"}, "shielded": true}),
    )
    .await;
    w.put(&w.mcr_admin, "SAFE-2", refuge).await;
    let leeds = tiers(w.matches(&w.leeds_admin).await);
    let right =
        leeds.iter().filter(|m| m.contains("LDS-RIGHT")).map(|m| m.replace("LDS-RIGHT", "")).collect::<Vec<_>>();
    let wrong =
        leeds.iter().filter(|m| m.contains("LDS-WRONG")).map(|m| m.replace("LDS-WRONG", "")).collect::<Vec<_>>();
    assert_eq!(right, wrong, "{engine:?}: the district shows when the shielded record registers last: {leeds:?}");
}
