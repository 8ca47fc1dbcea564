//! What the duty desk's pages say beyond the acts (issue 23, items 8, 18, 17 and the subject
//! access answer): how to widen a lookup that could have missed a near match, and who takes part
//! in the child's area (both decided from what was typed and the directory, never from what was
//! found, so a shielded record changes neither); a subject access answer at its own address; and
//! start pages that say what needs attention. Both engines.

use crate::common;

use child_locator::domain::area::parse_areas;
use child_locator::domain::role::Role;
use common::web::WebSession;
use common::{Engine, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The lookup form for names, a date of birth and optionally a postcode (no NHS number).
fn by_name<'a>(given: &'a str, family: &'a str, postcode: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("purpose", "s47-enquiry"),
        ("given_name", given),
        ("family_name", family),
        ("dob_day", "12"),
        ("dob_month", "4"),
        ("dob_year", "2016"),
        ("postcode", postcode),
    ]
}

/// Looks up through the pages and returns the answer page (following the redirect once).
async fn answer_page(web: &WebSession, form: &[(&str, &str)]) -> String {
    let posted = web.post("/lookup", form).await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
    let page = web.get(&posted.location.expect("the answer's address")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.body
}

/// The part of an answer page after the matches: the area summary and the advice to widen,
/// up to the lookup reference (which differs from lookup to lookup).
fn after_matches(page: &str) -> &str {
    let from = page.find("id=\"area\"").expect("the area summary");
    let to = page.find("Lookup reference").expect("the lookup reference");
    &page[from..to]
}

async fn holding(app: &TestApp, token: &str, local_ref: &str, subject: Value, shielded: bool) {
    let body = json!({"category": "child-protection-plan", "status": "open", "subject": subject, "shielded": shielded});
    let (status, reply) = app.put(token, &format!("/api/v1/holdings/{local_ref}"), &body).await;
    assert!(status.is_success(), "{reply}");
}

#[suite::test(each_engine)]
async fn a_misspelt_name_under_another_surname_is_told_how_to_widen_the_lookup(engine: Engine) {
    let app = TestApp::start(engine).await;
    let council = app.org("E06000045", "local-authority").await;
    let trust = app.org("RHM", "nhs-trust").await;
    let refuge = app.org("E06000046", "local-authority").await;
    let asker = app.org("E08000035", "local-authority").await;
    let ruby = |family: &str| json!({"given_name": "Ruby", "family_name": family, "date_of_birth": "2016-04-12"});
    holding(&app, &app.token(&council, Role::OrgAdmin).await, "SB-1001", ruby("Demo-Fletcher"), false).await;
    holding(&app, &app.token(&trust, Role::OrgAdmin).await, "RNT-77", ruby("Fletcher"), false).await;
    // A parent's surname the other records never mention.
    holding(&app, &app.token(&refuge, Role::OrgAdmin).await, "R-9", ruby("Okafor"), false).await;
    let web = WebSession::sign_in(&app, &app.token(&asker, Role::Practitioner).await).await;

    // One typo and one barrel of the surname: the trust, and (key family 3) the council's
    // double-barrelled record as possible; the record under the parent's surname is the near miss.
    let page = answer_page(&web, &by_name("Rbuy", "Fletcher", "")).await;
    assert!(page.contains("Known to 2 organisations"), "{engine:?}: {page}");
    assert!(page.contains("E06000045") && page.contains("Possible"), "{engine:?}: {page}");
    assert!(!page.contains("E06000046"), "{engine:?}: the record under another surname is the near miss");
    assert!(page.contains("Could a record have been missed?"), "{engine:?}: {page}");
    assert!(page.contains("another surname (a double-barrelled one, a former name"), "{page}");
    assert!(page.contains("Add the NHS number or UPN"), "{page}");
    assert!(!page.contains("Rbuy") && !page.contains("Fletcher"), "{engine:?}: no name echoed");

    // Following the advice (the other surname) finds it.
    let widened = answer_page(&web, &by_name("Rbuy", "Okafor", "")).await;
    assert!(widened.contains("E06000046"), "{engine:?}: {widened}");
    // A double-barrelled surname typed is told to try each part on its own.
    let both_parts = answer_page(&web, &by_name("Rbuy", "Demo-Fletcher", "")).await;
    assert!(both_parts.contains("E06000045"), "{engine:?}: {both_parts}");
    assert!(both_parts.contains("each part of the double-barrelled surname on its own"), "{both_parts}");

    // The API says the same in codes.
    let token = app.token(&asker, Role::Practitioner).await;
    let subject =
        json!({"given_name": "Rbuy", "family_name": "Fletcher", "date_of_birth": "2016-04-12", "postcode": "SO14"});
    let (_, answer) = app.post(&token, "/api/v1/lookups", &json!({"subject": subject, "purpose": "s47-enquiry"})).await;
    assert_eq!(answer["widen"], json!(["add-nhs-number-or-upn", "try-other-surnames", "leave-postcode-out"]));

    // With an NHS number alone, the advice is to add what a record without one is found by.
    let by_number = answer_page(&web, &[("purpose", "s47-enquiry"), ("nhs_number", "943 476 5919")]).await;
    assert!(by_number.contains("Add the first name, last name and date of birth"), "{by_number}");
    assert!(!by_number.contains("Add the NHS number or UPN"), "{by_number}");
}

#[suite::test(each_engine)]
async fn a_shielded_childs_answer_widens_and_describes_the_area_exactly_as_an_unknown_childs(engine: Engine) {
    let app = TestApp::start(engine).await;
    let refuge = app.org("E06000046", "local-authority").await;
    app.org("URN100001", "school").await;
    let asker = app.org("E08000035", "local-authority").await;
    app.state.set_organisation_areas(None, "E06000046", &parse_areas("SO14").unwrap()).await.unwrap();
    app.state.set_organisation_areas(None, "URN100001", &parse_areas("SO").unwrap()).await.unwrap();
    app.state.set_organisation_areas(None, "E08000035", &parse_areas("LS").unwrap()).await.unwrap();
    let hidden =
        json!({"given_name": "Maya", "family_name": "Demowska", "date_of_birth": "2016-04-12", "postcode": "SO14 3AA"});
    holding(&app, &app.token(&refuge, Role::OrgAdmin).await, "R-1", hidden, true).await;
    let web = WebSession::sign_in(&app, &app.token(&asker, Role::Practitioner).await).await;

    let shielded = answer_page(&web, &by_name("Maya", "Demowska", "SO14 3AA")).await;
    assert!(shielded.contains("shielded record"), "{engine:?}: the shielded child is found: {shielded}");
    let unknown = answer_page(&web, &by_name("Mila", "Dabrowska", "SO14 2BB")).await;
    assert!(unknown.contains("Not known to participating organisations"), "{engine:?}: {unknown}");
    assert_eq!(after_matches(&shielded), after_matches(&unknown), "{engine:?}: the same words for both");
    assert!(
        after_matches(&unknown).contains("Who takes part in the child&#39;s area")
            || after_matches(&unknown).contains("Who takes part in the child's area")
    );
    // The area is never narrowed to the holder: the shielded answer names no district or council.
    for page in [&shielded, &unknown] {
        assert!(!page.contains("SO14") && !page.contains("E06000046"), "{engine:?}: {page}");
    }
}

#[suite::test(each_engine)]
async fn not_known_names_the_kinds_taking_part_in_the_childs_area_and_when_they_last_sent_records(engine: Engine) {
    let app = TestApp::start(engine).await;
    let council = app.org("E06000045", "local-authority").await;
    app.org("URN100002", "school").await;
    app.org("RHM", "nhs-trust").await;
    let asker = app.org("E08000035", "local-authority").await;
    app.state.set_organisation_areas(None, "E06000045", &parse_areas("SO14 SO15").unwrap()).await.unwrap();
    app.state.set_organisation_areas(None, "URN100002", &parse_areas("NE1").unwrap()).await.unwrap();
    app.state.set_organisation_areas(None, "E08000035", &parse_areas("LS").unwrap()).await.unwrap();
    // The council sends its caseload (the trust lists no area: it counts everywhere).
    let csv = "local_ref,category,status,nhs_number,upn,given_name,family_name,date_of_birth,postcode\n\
               SB-1,child-in-need,open,,,Alfie,Demoson,2019-09-30,SO15 2BB\n";
    let (status, reply) = app.sync(&app.token(&council, Role::OrgAdmin).await, "text/csv", csv.into(), "").await;
    assert!(status.is_success(), "{reply}");
    let web = WebSession::sign_in(&app, &app.token(&asker, Role::Practitioner).await).await;

    let local = answer_page(&web, &by_name("Oliver", "Nowak", "SO14 3AA")).await;
    assert!(local.contains("Not known to participating organisations"), "{engine:?}: {local}");
    assert!(local.contains("What to do next"), "{local}");
    let area = after_matches(&local);
    let cells = |kind: &str, rest: &str| format!("{kind}</th><td data-label=\"Taking part\">{rest}");
    assert!(area.contains(&cells("Local authorities", "1</td><td data-label=\"Have sent records\">1<")), "{area}");
    assert!(area.contains(&cells("NHS trusts", "1</td><td data-label=\"Have sent records\">0<")), "{area}");
    assert!(area.contains("Not yet"), "{engine:?}: the trust has never sent its caseload: {area}");
    assert!(area.contains("GMT") || area.contains("BST"), "{engine:?}: the council's sync on the UK clock: {area}");
    assert!(area.contains("None taking part here: GP practices, schools, police forces."), "{engine:?}: {area}");
    assert!(!local.contains("SO14") && !local.contains("Oliver"), "{engine:?}: nothing typed echoed");

    let national = answer_page(&web, &by_name("Oliver", "Nowak", "")).await;
    let area = after_matches(&national);
    assert!(area.contains("Who takes part across the country"), "{engine:?}: {area}");
    assert!(area.contains(&cells("Schools", "1<")), "{engine:?}: every school counts nationally: {area}");
    assert!(area.contains(&cells("Local authorities", "2</td><td data-label=\"Have sent records\">1<")), "{area}");
}

/// One record sent by PUT is records sent: the area summary must not say "Not yet" beside an
/// organisation it counts among those that have sent records.
#[suite::test(each_engine)]
async fn one_record_sent_on_its_own_counts_as_records_sent_in_the_area_summary(engine: Engine) {
    let app = TestApp::start(engine).await;
    let council = app.org("E06000045", "local-authority").await;
    let asker = app.org("E08000035", "local-authority").await;
    app.state.set_organisation_areas(None, "E06000045", &parse_areas("SO14").unwrap()).await.unwrap();
    app.state.set_organisation_areas(None, "E08000035", &parse_areas("LS").unwrap()).await.unwrap();
    let subject = json!({"given_name": "Alfie", "family_name": "Demoson", "date_of_birth": "2019-09-30"});
    holding(&app, &app.token(&council, Role::OrgAdmin).await, "SB-1", subject, false).await;
    let web = WebSession::sign_in(&app, &app.token(&asker, Role::Practitioner).await).await;
    let page = answer_page(&web, &by_name("Oliver", "Nowak", "SO14 3AA")).await;
    let area = after_matches(&page);
    assert!(area.contains("Have sent records\">1<"), "{engine:?}: {area}");
    assert!(!area.contains("Not yet"), "{engine:?}: the council sent a record: {area}");
    assert!(page.contains("(1 record, "), "{engine:?}: one record, not \"1 records\": {page}");
}

#[suite::test(each_engine)]
async fn a_subject_access_answer_lives_at_its_own_address_and_a_reload_is_not_a_new_search(engine: Engine) {
    let app = TestApp::start(engine).await;
    let council = app.org("E06000045", "local-authority").await;
    let subject = json!({"nhs_number": "9434765919", "given_name": "Ruby", "family_name": "Fletcher", "date_of_birth": "2016-04-12"});
    holding(&app, &app.token(&council, Role::OrgAdmin).await, "SB-1", subject, false).await;
    let ig = WebSession::sign_in(&app, &app.token(&council, Role::IgOfficer).await).await;
    let searches = |events: &[Value]| events.iter().filter(|e| e["type"] == "subject_access").count();

    let posted = ig.post("/audit/subject-access", &[("nhs_number", "943 476 5919")]).await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{engine:?}: {}", posted.body);
    let at = posted.location.expect("the answer's address");
    assert!(at.starts_with("/audit/subject-access/sa_"), "{at}");
    let first = ig.get(&at).await;
    assert_eq!(first.status, StatusCode::OK, "{engine:?}: {}", first.body);
    assert!(first.body.contains("Held by 1 organisation"), "{engine:?}: {}", first.body);
    assert!(!first.body.contains("9434765919") && !first.body.contains("943 476 5919"), "no identifier echoed");
    let reload = ig.get(&at).await;
    assert_eq!(reload.body, first.body, "{engine:?}: a reload shows the same answer");
    assert_eq!(searches(&app.audit_bodies().await), 1, "{engine:?}: one search, however often it is opened");

    // Only the session that searched opens it; a lookup's address never opens it either.
    let other = WebSession::sign_in(&app, &app.token(&council, Role::IgOfficer).await).await;
    assert_eq!(other.get(&at).await.status, StatusCode::NOT_FOUND, "{engine:?}: another IG officer");
    let id = at.trim_start_matches("/audit/subject-access/");
    let worker = WebSession::sign_in(&app, &app.token(&council, Role::Practitioner).await).await;
    assert_ne!(worker.get(&format!("/lookups/{id}")).await.status, StatusCode::OK, "{engine:?}");
    assert_eq!(ig.get(&format!("/lookups/{id}")).await.status, StatusCode::FORBIDDEN, "{engine:?}: not IG's page");
    if engine == Engine::Sqlite {
        app.assert_db_files_free_of(&["9434765919", "Ruby", "Fletcher"]);
    }
}

#[suite::test(each_engine)]
async fn start_pages_say_what_needs_attention_for_each_role(engine: Engine) {
    let app = TestApp::start(engine).await;
    let holder = app.org("E06000045", "local-authority").await;
    let asker = app.org("E08000035", "local-authority").await;
    let holder_admin = app.token(&holder, Role::OrgAdmin).await;
    let asker_admin = app.token(&asker, Role::OrgAdmin).await;
    let worker = app.token(&asker, Role::Practitioner).await;
    let ruby = json!({"nhs_number": "9434765919", "given_name": "Ruby", "family_name": "Fletcher", "date_of_birth": "2016-04-12"});
    holding(&app, &holder_admin, "SB-1", ruby.clone(), false).await;

    let admin = WebSession::sign_in(&app, &holder_admin).await;
    let start = admin.get("/").await.body;
    assert!(start.contains("Needs attention"), "{engine:?}: {start}");
    assert!(start.contains("0 requests to us waiting for an answer"), "{engine:?}: {start}");
    assert!(start.contains("Records last sent "), "{engine:?}: the record just sent counts: {start}");
    assert!(start.contains("0 new matches"), "{engine:?}: {start}");
    assert!(!start.contains(">Pages<"), "{engine:?}: no copy of the navigation");

    // The asker's admin registers the same child (a match), its practitioner requests the record.
    holding(&app, &asker_admin, "LS-9", ruby.clone(), false).await;
    let (_, answer) = app.post(&worker, "/api/v1/lookups", &json!({"subject": ruby, "purpose": "s47-enquiry"})).await;
    let match_id = answer["matches"][0]["match_id"].as_str().expect("a match").to_string();
    let ask = json!({"match_id": match_id, "legal_basis": "ca1989-s47", "reason": "Strategy meeting", "urgency": "immediate"});
    assert_eq!(app.post(&worker, "/api/v1/requests", &ask).await.0, StatusCode::CREATED);
    let csv = "local_ref,category,status,nhs_number,upn,given_name,family_name,date_of_birth,postcode\n\
               SB-1,child-protection-plan,open,9434765919,,Ruby,Fletcher,2016-04-12,\n";
    assert!(app.sync(&holder_admin, "text/csv", csv.into(), "").await.0.is_success());
    let start = admin.get("/").await.body;
    assert!(start.contains("1 request to us waiting for an answer"), "{engine:?}: {start}");
    assert!(!start.contains("past their deadline"), "{engine:?}: {start}");
    assert!(start.contains("Records last sent Tue 24 Nov 2026"), "{engine:?}: UK time: {start}");
    assert!(start.contains("1 new match with other organisations"), "{engine:?}: {start}");

    // Five hours on, the immediate request is overdue.
    app.clock.advance_ms(5 * 60 * 60 * 1000);
    let admin = WebSession::sign_in(&app, &holder_admin).await; // the idle session has ended
    let start = admin.get("/").await.body;
    assert!(start.contains("1 request to us past their deadline"), "{engine:?}: {start}");

    let ig = WebSession::sign_in(&app, &app.token(&holder, Role::IgOfficer).await).await;
    let start = ig.get("/").await.body;
    assert!(
        start.contains("flagged for review in the last 7 days") && start.contains("past their deadline"),
        "{start}"
    );

    // A third organisation has sent nothing: the operator sees it; a record sent by PUT counts.
    app.org("RHM", "nhs-trust").await;
    let operator = WebSession::sign_in(&app, &app.token(&holder, Role::Operator).await).await;
    let start = operator.get("/").await.body;
    assert!(start.contains("3 organisations taking part; 1 has sent no records"), "{engine:?}: {start}");
    assert!(start.contains("1 has sent nothing in the last 7 days"), "{engine:?}: {start}");

    let practitioner = WebSession::sign_in(&app, &worker).await;
    let start = practitioner.get("/").await.body;
    assert!(start.contains("Look up a child") && !start.contains("Needs attention"), "{engine:?}: {start}");
    // The header names the person and their organisation once.
    assert_eq!(start.matches("E08000035 Test Organisation").count(), 1, "{engine:?}: {start}");
}
