//! The words and times a person meets on the pages: no internal term (field paths, API codes,
//! format names, raw timestamps, UTC) on any page a role can reach, errors included; UK time;
//! a page for a browser at an unknown address; the UPN on the lookup form; directory search by
//! words, code or phone; and a caseload summary that says which rows need fixing.

use crate::common;

use child_locator::domain::organisation::OrganisationInput;
use child_locator::domain::role::Role;
use child_locator::http::pages::ui;
use common::web::{Answer, WebSession, no_redirects, post_sign_in};
use common::{Engine, TestApp};
use reqwest::StatusCode;
use serde_json::json;

/// Terms that belong to the API, the code or the docs, never to a page a person reads.
const INTERNAL: &[&str] = &["subject.", "secure-email", "_changed", "RFC 3339", "docs/", " UTC", "->", "ISO 8601"];

/// The text a person sees: the page without its tags (attribute values such as an option's
/// `value="secure-email"` are the form's business, not the reader's).
fn visible_text(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&")
}

/// A raw ISO-8601 timestamp such as `2026-11-24T09:00:00Z`.
fn has_raw_timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    b.windows(16).any(|w| {
        let d = |i: usize| w[i].is_ascii_digit();
        d(0) && d(1)
            && d(2)
            && d(3)
            && w[4] == b'-'
            && d(5)
            && d(6)
            && w[7] == b'-'
            && d(8)
            && d(9)
            && w[10] == b'T'
            && d(11)
            && d(12)
            && w[13] == b':'
            && d(14)
            && d(15)
    })
}

fn title_of(html: &str) -> &str {
    let start = html.find("<title>").map(|i| i + "<title>".len()).unwrap_or(0);
    let end = html[start..].find("</title>").map(|i| start + i).unwrap_or(start);
    &html[start..end]
}

/// Fails on any internal term, and on an error page whose title does not start "Error:".
fn assert_plain(engine: Engine, what: &str, page: &Answer) {
    if page.status.is_redirection() {
        return;
    }
    let text = visible_text(&page.body);
    for term in INTERNAL {
        assert!(!text.contains(term), "{engine:?} {what}: shows the internal term {term:?}:\n{text}");
    }
    assert!(!has_raw_timestamp(&text), "{engine:?} {what}: shows a raw timestamp:\n{text}");
    if page.status.is_client_error() || page.status.is_server_error() {
        assert!(
            title_of(&page.body).starts_with("Error:"),
            "{engine:?} {what}: an error page ({}) titled {:?}",
            page.status,
            title_of(&page.body)
        );
    }
}

/// A form posted with mistakes: who posts it, where, and the fields.
type ErrorForm<'a> = (&'a WebSession, String, Vec<(&'a str, &'a str)>);

async fn org_named(app: &TestApp, code: &str, name: &str, kind: &str, phone: &str) {
    let input = OrganisationInput {
        code: Some(code.into()),
        name: Some(name.into()),
        kind: Some(kind.into()),
        duty_phone: Some(phone.into()),
        out_of_hours_phone: None,
        secure_email: Some(format!("duty@{}.test.invalid", code.to_lowercase())),
        active: None,
    };
    app.store().add_organisation(&input.into_new().expect("valid org"), app.clock.now_ms()).await.expect("org added");
}

/// A GET as a browser sends it (`Accept: text/html`).
async fn browser_get(app: &TestApp, cookie: Option<&str>, path: &str) -> Answer {
    let mut request = no_redirects().get(app.url(path)).header("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("get");
    let status = response.status();
    let headers = response.headers().clone();
    Answer { status, location: None, headers, body: response.text().await.expect("body") }
}

async fn upload(session: &WebSession, app: &TestApp, csv: &str) -> (StatusCode, String) {
    let form = reqwest::multipart::Form::new().text("csrf", session.csrf.clone()).text("dry_run", "false").part(
        "caseload",
        reqwest::multipart::Part::text(csv.to_string()).file_name("caseload.csv").mime_str("text/csv").unwrap(),
    );
    let response =
        session.http.post(app.url("/caseload")).header("cookie", &session.cookie).multipart(form).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[suite::test(each_engine)]
async fn no_page_any_role_reaches_shows_an_internal_term_and_every_error_page_says_error(engine: Engine) {
    let app = TestApp::start(engine).await;
    let manchester = app.org("E08000003", "local-authority").await;
    let leeds = app.org("E08000035", "local-authority").await;
    let mcr_admin = app.token(&manchester, Role::OrgAdmin).await;
    let mcr_worker = app.token(&manchester, Role::Practitioner).await;
    let worker = app.token(&leeds, Role::Practitioner).await;
    let ig = app.token(&leeds, Role::IgOfficer).await;
    let admin = app.token(&leeds, Role::OrgAdmin).await;
    let body = json!({"category": "child-protection-plan", "status": "open",
        "subject": {"nhs_number": "9074833780", "given_name": "Amelia", "family_name": "Hughes", "date_of_birth": "2014-05-09"}});
    assert!(app.put(&mcr_admin, "/api/v1/holdings/MCR-1", &body).await.0.is_success());
    // A lookup, a request, its acknowledgement and its fulfilment: every kind of history.
    let (_, found) = app
        .post(&worker, "/api/v1/lookups", &json!({"subject": {"nhs_number": "9074833780"}, "purpose": "s47-enquiry"}))
        .await;
    let match_id = found["matches"][0]["match_id"].as_str().expect("a match").to_string();
    let (_, request) = app
        .post(
            &worker,
            "/api/v1/requests",
            &json!({"match_id": match_id, "legal_basis": "ca1989-s47", "reason": "Section 47 enquiry", "urgency": "urgent"}),
        )
        .await;
    let request_id = request["request_id"].as_str().expect("a request").to_string();
    // A second child, whose request stays open for the holder's forms.
    let body = json!({"category": "child-in-need", "status": "open", "subject": {"nhs_number": "9434765919"}});
    assert!(app.put(&mcr_admin, "/api/v1/holdings/MCR-2", &body).await.0.is_success());
    let (_, found) = app
        .post(
            &worker,
            "/api/v1/lookups",
            &json!({"subject": {"nhs_number": "9434765919"}, "purpose": "s17-assessment"}),
        )
        .await;
    let second_match = found["matches"][0]["match_id"].as_str().expect("a second match").to_string();
    let (_, second) = app
        .post(
            &worker,
            "/api/v1/requests",
            &json!({"match_id": second_match, "legal_basis": "ca1989-s17", "reason": "Assessment", "urgency": "routine"}),
        )
        .await;
    let open_id = second["request_id"].as_str().expect("a second request").to_string();
    let steps = [("acknowledge", json!({})), ("fulfil", json!({"how": "secure-email", "reference": "T-1"}))];
    for (step, body) in steps {
        let (status, reply) = app.post(&mcr_worker, &format!("/api/v1/requests/{request_id}/{step}"), &body).await;
        assert!(status.is_success(), "{engine:?} {step}: {reply}");
    }

    let pages = [
        "/",
        "/lookup",
        "/requests",
        &format!("/requests/{request_id}"),
        &format!("/requests/{open_id}"),
        "/matches",
        "/caseload",
        "/users",
        "/audit",
        "/audit?type=request_state_changed",
        "/audit?from=yesterday",
        "/audit/anomalies",
        "/audit/subject-access",
        "/directory",
        "/requests/00000000-0000-0000-0000-000000000000",
    ];
    for token in [&worker, &ig, &admin, &mcr_admin, &mcr_worker] {
        let session = WebSession::sign_in(&app, token).await;
        for path in pages {
            let page = session.get(path).await;
            assert_plain(engine, path, &page);
        }
        assert_plain(engine, "unknown page", &browser_get(&app, Some(&session.cookie), "/no/such/page").await);
    }

    // Forms sent back with errors.
    let worker_s = WebSession::sign_in(&app, &worker).await;
    let holder_s = WebSession::sign_in(&app, &mcr_worker).await;
    let admin_s = WebSession::sign_in(&app, &admin).await;
    let ig_s = WebSession::sign_in(&app, &ig).await;
    let forms: Vec<ErrorForm> = vec![
        (&worker_s, "/lookup".into(), vec![]),
        (&worker_s, "/lookup".into(), vec![("purpose", "other"), ("nhs_number", "123")]),
        (&worker_s, "/lookup".into(), vec![("purpose", "s47-enquiry"), ("upn", "B80120000500"), ("dob_day", "3")]),
        (&worker_s, "/requests".into(), vec![("match_id", match_id.as_str())]),
        (&holder_s, format!("/requests/{open_id}/fulfil"), vec![]),
        (&holder_s, format!("/requests/{open_id}/decline"), vec![]),
        (&admin_s, "/users".into(), vec![]),
        (&ig_s, "/audit/subject-access".into(), vec![]),
        (&ig_s, "/audit/subject-access".into(), vec![("nhs_number", "12")]),
    ];
    for (session, path, fields) in &forms {
        let page = session.post(path, fields).await;
        assert!(page.status.is_client_error(), "{engine:?} {path}: {}", page.status);
        assert_plain(engine, path, &page);
        assert!(page.body.contains("error-summary"), "{engine:?} {path}: an error summary");
        assert!(page.body.contains("autofocus"), "{engine:?} {path}: the focus moves to the error summary");
    }
    // The fulfil form's own fields say what is wrong, next to them.
    let fulfil = holder_s.post(&format!("/requests/{open_id}/fulfil"), &[]).await;
    assert!(fulfil.body.contains("id=\"fulfil-how-error\""), "{engine:?}: an inline error at the field");
    // A page the role may not open, a missing file, and a wrong token.
    assert_plain(engine, "403", &worker_s.get("/users").await);
    let (status, body) = upload(&admin_s, &app, "").await;
    let missing = Answer { status, location: None, headers: Default::default(), body };
    assert_plain(engine, "empty upload", &missing);
    let wrong = post_sign_in(&app, "clk_not-a-real-token", &[]).await;
    assert_plain(engine, "wrong token", &wrong);
}

#[suite::test(each_engine)]
async fn times_are_shown_on_the_uk_clock_with_bst_in_summer(engine: Engine) {
    // 2026's clocks go forward at 01:00 UTC on 29 March and back at 01:00 UTC on 25 October.
    let at = |text: &str| child_locator::clock::parse_instant(text).expect("a time");
    assert_eq!(ui::when(at("2026-03-29T00:59:00Z")), "Sun 29 Mar 2026, 00:59 GMT");
    assert_eq!(ui::when(at("2026-03-29T01:00:00Z")), "Sun 29 Mar 2026, 02:00 BST");
    assert_eq!(ui::when(at("2026-07-01T23:30:00Z")), "Thu 2 Jul 2026, 00:30 BST");
    assert_eq!(ui::when(at("2026-10-25T00:59:00Z")), "Sun 25 Oct 2026, 01:59 BST");
    assert_eq!(ui::when(at("2026-10-25T01:00:00Z")), "Sun 25 Oct 2026, 01:00 GMT");
    assert_eq!(ui::date(at("2026-11-24T09:00:00Z")), "24 Nov 2026");
    assert_eq!(ui::when_text("2026-06-01T08:15:00Z"), "Mon 1 Jun 2026, 09:15 BST");

    let app = TestApp::start(engine).await;
    let leeds = app.org("E08000035", "local-authority").await;
    let ig = WebSession::sign_in(&app, &app.token(&leeds, Role::IgOfficer).await).await;
    // The test clock stands at 09:00 UTC on 24 November: 09:00 GMT on the page.
    let audit = ig.get("/audit").await;
    assert!(audit.body.contains("24 Nov 2026, 09:00 GMT"), "{engine:?}: {}", visible_text(&audit.body));
    // And the API keeps UTC.
    let (_, events) = app.get(&app.token(&leeds, Role::IgOfficer).await, "/api/v1/audit/events").await;
    assert!(events["events"][0]["at"].as_str().unwrap().ends_with('Z'), "{engine:?}: {events}");
}

#[suite::test(each_engine)]
async fn an_unknown_address_is_a_page_for_a_browser_and_json_for_an_api_client(engine: Engine) {
    let app = TestApp::start(engine).await;
    let page = browser_get(&app, None, "/no/such/page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND, "{engine:?}");
    assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"), "{engine:?}");
    assert!(title_of(&page.body).starts_with("Error: Page not found"), "{engine:?}: {}", page.body);
    assert_eq!(page.headers["cache-control"], "no-store");

    let api = no_redirects().get(app.url("/no/such/page")).header("accept", "application/json").send().await.unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{engine:?}: {body}");
    // Under /api/ a browser too gets the API's JSON.
    let under_api = browser_get(&app, None, "/api/v1/nothing-here").await;
    assert!(under_api.body.starts_with('{'), "{engine:?}: {}", under_api.body);
}

#[suite::test(each_engine)]
async fn a_school_looks_a_child_up_by_upn_in_the_browser(engine: Engine) {
    let app = TestApp::start(engine).await;
    let manchester = app.org("E08000003", "local-authority").await;
    let school = app.org("SCH-100001", "school").await;
    let mcr_admin = app.token(&manchester, Role::OrgAdmin).await;
    let body = json!({"category": "child-in-need", "status": "open",
        "subject": {"upn": "B801200005001", "given_name": "Leo", "family_name": "Marsh", "date_of_birth": "2015-02-11"}});
    assert!(app.put(&mcr_admin, "/api/v1/holdings/MCR-9", &body).await.0.is_success());
    let teacher = WebSession::sign_in(&app, &app.token(&school, Role::Practitioner).await).await;
    let form = teacher.get("/lookup").await;
    assert!(form.body.contains("id=\"upn\""), "{engine:?}: the lookup form has a UPN field");
    let answer =
        teacher.post_and_follow("/lookup", &[("purpose", "education-safeguarding"), ("upn", "B801 2000 05001")]).await;
    assert_eq!(answer.status, StatusCode::OK, "{engine:?}: {}", visible_text(&answer.body));
    assert!(answer.body.contains("E08000003 Test Organisation"), "{engine:?}: {}", visible_text(&answer.body));
    assert!(visible_text(&answer.body).contains("UPN agrees"), "{engine:?}: one detail agrees, in grammar");

    let ig = WebSession::sign_in(&app, &app.token(&school, Role::IgOfficer).await).await;
    assert!(ig.get("/audit/subject-access").await.body.contains("id=\"upn\""), "{engine:?}: subject access too");
}

#[suite::test(each_engine)]
async fn the_audit_page_offers_people_by_name_event_types_in_words_and_uk_dates(engine: Engine) {
    let app = TestApp::start(engine).await;
    let leeds = app.org("E08000035", "local-authority").await;
    let worker = app.token(&leeds, Role::Practitioner).await;
    let ig_token = app.token(&leeds, Role::IgOfficer).await;
    let lookup = json!({"subject": {"nhs_number": "9074833780"}, "purpose": "front-door-triage"});
    assert!(app.post(&worker, "/api/v1/lookups", &lookup).await.0.is_success());
    let ig = WebSession::sign_in(&app, &ig_token).await;
    let page = ig.get("/audit").await;
    let text = visible_text(&page.body);
    assert!(page.body.contains("<select class=\"select\" id=\"user\""), "{engine:?}: the user filter is a choice");
    assert!(text.contains("practitioner E08000035 (Practitioner)"), "{engine:?}: by name: {text}");
    assert!(!text.contains("Their number"), "{engine:?}");
    assert!(text.contains("Token issued"), "{engine:?}: event types in words: {text}");
    assert!(text.contains("Front door / MASH triage"), "{engine:?}: purposes in words: {text}");
    assert!(page.body.contains(">24 Nov</text>"), "{engine:?}: the chart's axis has UK dates");
    assert_plain(engine, "/audit", &page);

    // A long list has paging links both ways (five events a page, to keep the list short).
    for _ in 0..5 {
        assert!(app.post(&worker, "/api/v1/lookups", &lookup).await.0.is_success());
    }
    let first = ig.get("/audit?limit=5").await;
    let older = first.body.split("href=\"/audit?").find(|s| s.contains("rel=\"next\"")).map(|s| s.to_string());
    let older = older.expect("an older-events link on a long list");
    let href = older.split('"').next().unwrap().replace("&amp;", "&");
    let second = ig.get(&format!("/audit?{href}")).await;
    assert_eq!(second.status, StatusCode::OK, "{engine:?}");
    assert!(visible_text(&second.body).contains("Newest events"), "{engine:?}: a way back to the start");
}

#[suite::test(each_engine)]
async fn the_directory_finds_words_in_any_order_codes_and_phone_numbers(engine: Engine) {
    let app = TestApp::start(engine).await;
    org_named(&app, "RIV-01", "Riverside Community NHS Trust", "nhs-trust", "0161 496 0123").await;
    org_named(&app, "HIL-02", "Hillside Borough Council", "local-authority", "01632 960777").await;
    let leeds = app.org("E08000035", "local-authority").await;
    let worker = WebSession::sign_in(&app, &app.token(&leeds, Role::Practitioner).await).await;
    for query in ["riverside trust", "trust+riverside", "RIV-01", "01614960123", "0161+4960+123", "%2B44+161+496+0123"]
    {
        let page = worker.get(&format!("/directory?q={query}")).await;
        let text = visible_text(&page.body);
        assert!(text.contains("Riverside Community NHS Trust"), "{engine:?} {query:?}: {text}");
        assert!(!text.contains("Hillside Borough Council"), "{engine:?} {query:?}: only the match");
    }
    let none = worker.get("/directory?q=riverside+council").await;
    assert!(visible_text(&none.body).contains("No organisation matches"), "{engine:?}: every word must match");
    let (_, api) =
        app.get(&app.token(&leeds, Role::Practitioner).await, "/api/v1/organisations?q=trust%20riverside").await;
    assert!(api.to_string().contains("RIV-01"), "{engine:?}: the API searches the same way: {api}");
}

#[suite::test(each_engine)]
async fn a_caseload_with_rows_to_fix_says_how_many_and_lists_them_by_reference(engine: Engine) {
    let app = TestApp::start(engine).await;
    let leeds = app.org("E08000035", "local-authority").await;
    let admin = WebSession::sign_in(&app, &app.token(&leeds, Role::OrgAdmin).await).await;
    let csv = "local_ref,category,status,nhs_number,upn,given_name,family_name,date_of_birth,postcode\n\
               LDS-1,child-in-need,open,9074833780,,,,,\n\
               LDS-2,child-in-need,open,9434765919,,,,,\n\
               LDS-3,child-in-need,open,123,,,,,\n\
               LDS-4,child-in-need,open,,,Ann,,,\n\
               LDS-5,not-a-category,open,9449305552,,,,,\n\
               LDS-6,child-in-need,open,,,Bo,Smith,2099-01-01,\n\
               ,child-in-need,open,9876543210,,,,,\n";
    let (status, body) = upload(&admin, &app, csv).await;
    assert_eq!(status, StatusCode::OK, "{engine:?}");
    let text = visible_text(&body);
    // Without "replace" ticked the file is only checked (ui_desk_acts): the same sentence, conditional.
    assert!(text.contains("7 rows read, 2 would be added, 5 need fixing"), "{engine:?}: {text}");
    assert!(!body.contains("panel panel-blue"), "{engine:?}: rows to fix are not a success panel");
    for reference in ["LDS-3", "LDS-4", "LDS-5", "LDS-6", "No reference"] {
        assert!(text.contains(reference), "{engine:?}: the row {reference} is listed: {text}");
    }
    assert!(text.contains("NHS number"), "{engine:?}: fields in words: {text}");
    let page = Answer { status, location: None, headers: Default::default(), body };
    assert_plain(engine, "caseload summary", &page);
}
