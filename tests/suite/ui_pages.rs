//! The web pages without a browser: sessions, cookies, CSRF, expiry, roles, scoping and caching,
//! on every engine. (The journeys in a real browser are tests/ui_browser.rs.)

use crate::common;

use child_locator::domain::role::Role;
use common::fixtures::{LEEDS, MANCHESTER, amelia, org_with, put_holding};
use common::web::{WebSession, no_redirects, post_sign_in};
use common::{Engine, TestApp};
use reqwest::StatusCode;
use serde_json::json;

/// Manchester holds a child; a Leeds practitioner, admin and IG officer use the pages.
struct World {
    app: TestApp,
    leeds_worker: String,
    leeds_admin: String,
    leeds_ig: String,
    manchester_admin: String,
}

async fn world(engine: Engine) -> World {
    world_with(engine, |_| {}).await
}

async fn world_with(engine: Engine, adjust: impl FnOnce(&mut child_locator::config::Settings)) -> World {
    let app = TestApp::start_with(engine, adjust).await;
    let (_, [manchester_admin]) = org_with(&app, MANCHESTER, [Role::OrgAdmin]).await;
    let mut subject = amelia();
    subject.as_object_mut().expect("a subject").remove("postcode");
    let body = json!({"category": "child-protection-plan", "status": "open", "subject": subject,
        "contact": {"team": "Children's Assessment Team", "phone": "0161 234 5678", "email": "cat@manchester.test.invalid"}});
    put_holding(&app, &manchester_admin, "MCR-1", &body).await;
    let (_, [leeds_worker, leeds_admin, leeds_ig]) =
        org_with(&app, LEEDS, [Role::Practitioner, Role::OrgAdmin, Role::IgOfficer]).await;
    World { app, leeds_worker, leeds_admin, leeds_ig, manchester_admin }
}

fn lookup_form() -> Vec<(&'static str, &'static str)> {
    vec![
        ("purpose", "s47-enquiry"),
        ("purpose_detail", ""),
        ("nhs_number", "907 483 3780"),
        ("dob_day", "9"),
        ("dob_month", "5"),
        ("dob_year", "2014"),
    ]
}

#[suite::test(each_engine)]
async fn a_practitioner_signs_in_with_a_token_and_lands_on_the_lookup_form(engine: Engine) {
    let w = world(engine).await;
    let signed = post_sign_in(&w.app, &w.leeds_worker, &[]).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{engine:?}");
    assert_eq!(signed.location.as_deref(), Some("/lookup"), "the fastest journey starts at once");
    let session = WebSession::sign_in(&w.app, &w.leeds_admin).await;
    let home = session.get("/").await;
    assert!(home.body.contains("href=\"/caseload\""), "an admin's start page links to the caseload");
    assert!(!home.body.contains("href=\"/lookup\""), "and not to a page the table refuses an admin");
}

#[suite::test]
async fn the_session_cookie_is_http_only_and_strict_and_secure_behind_tls() {
    let w = world(Engine::Sqlite).await;
    let plain = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    assert!(plain.set_cookie.starts_with("locator-session="), "{}", plain.set_cookie);
    assert!(plain.set_cookie.contains("HttpOnly") && plain.set_cookie.contains("SameSite=Strict"));
    assert!(!plain.set_cookie.contains("Secure"), "plain HTTP on loopback: a Secure cookie would never come back");
    assert!(!plain.set_cookie.contains("Max-Age"), "a browser-session cookie");

    let proxied = WebSession::sign_in_with(&w.app, &w.leeds_worker, &[("x-forwarded-proto", "https")]).await;
    assert!(proxied.set_cookie.starts_with("__Host-locator-session="), "{}", proxied.set_cookie);
    assert!(proxied.set_cookie.contains("; Secure") && proxied.set_cookie.contains("HttpOnly"));

    let always =
        world_with(Engine::Sqlite, |s| s.web.secure_cookies = child_locator::config::SecureCookies::Always).await;
    let session = WebSession::sign_in(&always.app, &always.leeds_worker).await;
    assert!(session.set_cookie.contains("; Secure"), "{}", session.set_cookie);
}

#[suite::test]
async fn in_secure_mode_only_the_host_prefixed_session_cookie_is_accepted() {
    let w = world_with(Engine::Sqlite, |s| s.web.secure_cookies = child_locator::config::SecureCookies::Always).await;
    let session = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    assert!(session.cookie.starts_with("__Host-locator-session="), "{}", session.cookie);
    let home = session.get("/").await;
    assert_eq!(home.status, StatusCode::OK, "the prefixed cookie opens the session");

    // The same session id under the plain name: what a sibling subdomain or a plain-HTTP
    // answer could plant (cookie tossing), which the `__Host-` prefix exists to rule out.
    let id = session.cookie.split_once('=').unwrap().1;
    let tossed = w.app.http.get(w.app.url("/")).header("cookie", format!("locator-session={id}"));
    let tossed = no_redirects().execute(tossed.build().unwrap()).await.unwrap();
    assert_eq!(tossed.status(), StatusCode::SEE_OTHER, "the unprefixed cookie is ignored in secure mode");
    assert_eq!(tossed.headers()["location"], "/sign-in");
}

#[suite::test(each_engine)]
async fn a_form_without_the_csrf_token_is_refused_and_changes_nothing(engine: Engine) {
    let w = world(engine).await;
    let admin = WebSession::sign_in(&w.app, &w.leeds_admin).await;
    let forged = admin.post_raw("/users", &[("name", "Mallory"), ("role", "org-admin")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{engine:?}");
    assert!(forged.body.contains("this form has expired"), "{}", forged.body);
    let wrong =
        admin.post_raw("/users", &[("csrf", &"0".repeat(64)), ("name", "Mallory"), ("role", "org-admin")]).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let other_session = WebSession::sign_in(&w.app, &w.leeds_admin).await;
    let borrowed =
        admin.post_raw("/users", &[("csrf", &other_session.csrf), ("name", "Mallory"), ("role", "org-admin")]).await;
    assert_eq!(borrowed.status, StatusCode::FORBIDDEN, "a token is bound to its own session");
    let (_, users) = w.app.get(&w.leeds_admin, "/api/v1/users").await;
    assert!(!users.to_string().contains("Mallory"), "{users}");

    let real = admin.post_and_follow("/users", &[("name", "Sam Worker"), ("role", "practitioner")]).await;
    assert_eq!(real.status, StatusCode::OK, "{}", real.body);
    assert!(real.body.contains("clk_"), "the new token is shown once");
}

#[suite::test]
async fn a_form_posted_from_another_origin_is_refused() {
    let w = world(Engine::Sqlite).await;
    let admin = WebSession::sign_in(&w.app, &w.leeds_admin).await;
    let response = admin
        .http
        .post(w.app.url("/users"))
        .header("cookie", &admin.cookie)
        .header("origin", "https://evil.example")
        .form(&[("csrf", admin.csrf.as_str()), ("name", "Mallory"), ("role", "org-admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[suite::test(each_engine)]
async fn an_idle_session_ends_and_so_does_a_long_one(engine: Engine) {
    let w = world(engine).await;
    let session = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    w.app.clock.advance_ms(29 * 60_000);
    assert_eq!(session.get("/lookup").await.status, StatusCode::OK, "{engine:?}: 29 minutes idle is fine");
    w.app.clock.advance_ms(31 * 60_000);
    let idle = session.get("/lookup").await;
    assert_eq!(idle.status, StatusCode::SEE_OTHER, "{engine:?}: 31 minutes idle ends it");
    assert_eq!(idle.location.as_deref(), Some("/sign-in?ended=1"));
    w.app.clock.advance_ms(-(31 * 60_000));
    assert_eq!(session.get("/lookup").await.status, StatusCode::SEE_OTHER, "an ended session is gone for good");

    let busy = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    for _ in 0..(10 * 60 / 20 - 1) {
        w.app.clock.advance_ms(20 * 60_000);
        assert_eq!(busy.get("/lookup").await.status, StatusCode::OK, "used every 20 minutes");
    }
    w.app.clock.advance_ms(20 * 60_000);
    assert_eq!(busy.get("/lookup").await.status, StatusCode::SEE_OTHER, "{engine:?}: ten hours is the most");
}

#[suite::test(each_engine)]
async fn signing_out_ends_the_session_on_the_server(engine: Engine) {
    let w = world(engine).await;
    let session = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    let out = session.post("/sign-out", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{engine:?}");
    assert_eq!(out.location.as_deref(), Some("/sign-in"));
    let cleared = out.headers.get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let replayed = session.get("/lookup").await;
    assert_eq!(replayed.status, StatusCode::SEE_OTHER, "the old cookie no longer works");
}

#[suite::test(each_engine)]
async fn revoking_a_token_ends_its_sessions(engine: Engine) {
    let w = world(engine).await;
    let admin = WebSession::sign_in(&w.app, &w.leeds_admin).await;
    let issued = admin.post_and_follow("/users", &[("name", "Temp Worker"), ("role", "practitioner")]).await;
    let token = issued.body.split("value=\"clk_").nth(1).unwrap().split('"').next().unwrap();
    let token = format!("clk_{token}");
    let worker = WebSession::sign_in(&w.app, &token).await;
    assert_eq!(worker.get("/lookup").await.status, StatusCode::OK);
    let (_, users) = w.app.get(&w.leeds_admin, "/api/v1/users").await;
    let id = users["users"].as_array().unwrap().iter().find(|u| u["name"] == "Temp Worker").unwrap()["id"].clone();
    let revoked = admin.post(&format!("/users/{id}/revoke"), &[]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{engine:?}: {}", revoked.body);
    assert_eq!(
        worker.get("/lookup").await.status,
        StatusCode::SEE_OTHER,
        "{engine:?}: the session ended with the token"
    );
    assert!(w.app.audit_types().await.contains(&"token_revoked".to_string()));
}

#[suite::test]
async fn a_wrong_token_is_refused_audited_and_slowed_down_like_the_apis() {
    let w = world_with(Engine::Sqlite, |s| s.limits.failed_auth_per_minute = 3).await;
    let bogus = format!("clk_{}", "B".repeat(43));
    let first = post_sign_in(&w.app, &bogus, &[]).await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED);
    assert!(
        first.body.contains("was not recognised") && first.body.contains("href=\"#token\""),
        "error summary links to the field"
    );
    assert!(!first.body.contains(&bogus), "the token typed is not echoed");
    let mut last = first.status;
    for _ in 0..5 {
        last = post_sign_in(&w.app, &bogus, &[]).await.status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    assert!(w.app.audit_types().await.iter().filter(|t| *t == "auth_failed").count() >= 3);
}

#[suite::test(each_engine)]
async fn a_role_without_access_gets_a_403_page_and_it_is_audited(engine: Engine) {
    let w = world(engine).await;
    let worker = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    let refused = worker.get("/audit").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{engine:?}");
    assert!(refused.body.contains("Your role does not allow this page"));
    assert!(w.app.audit_types().await.contains(&"access_denied".to_string()));
    let ig = WebSession::sign_in(&w.app, &w.leeds_ig).await;
    assert_eq!(ig.post("/lookup", &lookup_form()).await.status, StatusCode::FORBIDDEN, "only practitioners look up");
}

#[suite::test(each_engine)]
async fn the_lookup_page_answers_with_who_to_call_and_audits_first(engine: Engine) {
    let w = world(engine).await;
    let worker = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    let answer = worker.post_and_follow("/lookup", &lookup_form()).await;
    assert_eq!(answer.status, StatusCode::OK, "{engine:?}: {}", answer.body);
    assert!(answer.body.contains("Known to 1 organisation"), "{}", answer.body);
    assert!(answer.body.contains("0161 234 5678") && answer.body.contains("cat@manchester.test.invalid"));
    assert!(answer.body.contains("NHS number"), "the evidence in words");
    assert!(answer.body.contains("/requests/new?match_id=lm_"));
    assert!(!answer.body.contains("9074833780") && !answer.body.contains("907 483 3780"), "no identifier echoed");
    let events = w.app.audit_bodies().await;
    let lookup = events.iter().find(|e| e["type"] == "lookup").expect("the lookup is audited");
    assert_eq!(lookup["purpose"], "s47-enquiry");
}

#[suite::test]
async fn a_lookup_form_with_mistakes_comes_back_with_an_error_summary() {
    let w = world(Engine::Sqlite).await;
    let worker = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    let bad = worker.post("/lookup", &[("purpose", ""), ("nhs_number", "907 483 3781"), ("dob_day", "9")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("There is a problem"));
    assert!(bad.body.contains("href=\"#dob_day\""), "the summary links to the date");
    assert!(bad.body.contains("value=\"907 483 3781\""), "what was typed is shown again to fix");
    assert!(!w.app.audit_types().await.contains(&"lookup".to_string()), "nothing was looked up");
    let no_purpose = worker.post("/lookup", &[("nhs_number", "907 483 3780")]).await;
    assert!(no_purpose.body.contains("href=\"#purpose\""), "{}", no_purpose.body);
}

#[suite::test(each_engine)]
async fn a_request_made_on_the_pages_reaches_the_holders_inbox_and_is_acknowledged(engine: Engine) {
    let w = world(engine).await;
    let worker = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    let answer = worker.post_and_follow("/lookup", &lookup_form()).await;
    let match_id = answer.body.split("match_id=").nth(1).unwrap().split('"').next().unwrap().to_string();
    let form = worker.get(&format!("/requests/new?match_id={match_id}")).await;
    assert_eq!(form.status, StatusCode::OK);
    let made = worker
        .post(
            "/requests",
            &[
                ("match_id", &match_id),
                ("legal_basis", "ca1989-s47"),
                ("reason", "Strategy meeting"),
                ("urgency", "urgent"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{engine:?}: {}", made.body);
    let at = made.location.unwrap();
    let id = at.trim_start_matches("/requests/").split('?').next().unwrap().to_string();

    let holder = WebSession::sign_in(&w.app, &w.manchester_admin).await;
    let inbox = holder.get("/requests").await;
    assert!(inbox.body.contains(&format!("/requests/{id}")) && inbox.body.contains("MCR-1"), "{}", inbox.body);
    let ack = holder.post(&format!("/requests/{id}/acknowledge"), &[("note", "On it")]).await;
    assert_eq!(ack.status, StatusCode::SEE_OTHER, "{}", ack.body);
    let (_, view) = w.app.get(&w.manchester_admin, &format!("/api/v1/requests/{id}")).await;
    assert_eq!(view["state"], "acknowledged", "{engine:?}");
    let mine = worker.get("/requests").await;
    assert!(mine.body.contains("Acknowledged"));

    let missing_reason = holder.post(&format!("/requests/{id}/decline"), &[]).await;
    assert_eq!(missing_reason.status, StatusCode::UNPROCESSABLE_ENTITY, "decline needs a reason");
    assert!(missing_reason.body.contains("href=\"#decline-reason\""), "{}", missing_reason.body);
}

#[suite::test(each_engine)]
async fn a_page_never_shows_another_organisations_data(engine: Engine) {
    let w = world(engine).await;
    let bristol = w.app.org("E06000023", "local-authority").await;
    let outsider = WebSession::sign_in(&w.app, &w.app.token(&bristol, Role::OrgAdmin).await).await;
    let worker = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    let answer = worker.post_and_follow("/lookup", &lookup_form()).await;
    let match_id = answer.body.split("match_id=").nth(1).unwrap().split('"').next().unwrap().to_string();
    let made = worker
        .post(
            "/requests",
            &[("match_id", &match_id), ("legal_basis", "ca1989-s47"), ("reason", "R"), ("urgency", "routine")],
        )
        .await;
    let at = made.location.unwrap();
    let path = at.split('?').next().unwrap();

    let seen = outsider.get(path).await;
    assert_eq!(seen.status, StatusCode::NOT_FOUND, "{engine:?}: another organisation's request is not found");
    assert!(!seen.body.contains("MCR-1"));
    let step = outsider.post(&format!("{path}/acknowledge"), &[]).await;
    assert_eq!(step.status, StatusCode::NOT_FOUND);
    for page in ["/requests", "/matches", "/users"] {
        let body = outsider.get(page).await.body;
        assert!(!body.contains("MCR-1") && !body.contains("E08000035"), "{engine:?}: {page} shows only Bristol's");
    }
    let stolen = outsider.get(&format!("/requests/new?match_id={match_id}")).await;
    assert_eq!(stolen.status, StatusCode::FORBIDDEN, "an admin cannot request records at all");
}

#[suite::test]
async fn pages_with_personal_data_are_never_stored_but_the_stylesheet_is_cached() {
    let w = world(Engine::Sqlite).await;
    let worker = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    let answer = worker.post_and_follow("/lookup", &lookup_form()).await;
    let admin = WebSession::sign_in(&w.app, &w.leeds_admin).await;
    let ig = WebSession::sign_in(&w.app, &w.leeds_ig).await;
    let mut pages =
        vec![answer, worker.get("/lookup").await, worker.get("/requests").await, worker.get("/matches").await];
    pages.push(admin.get("/users").await);
    pages.push(ig.get("/audit").await);
    pages.push(ig.get("/audit/export.csv").await);
    pages.push(worker.get("/directory?q=E08").await);
    for page in &pages {
        assert_eq!(page.headers["cache-control"], "no-store", "{}", &page.body[..page.body.len().min(200)]);
        assert!(page.headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    }
    let css = no_redirects().get(w.app.url("/assets/app.css")).send().await.unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(css.headers()["cache-control"].to_str().unwrap().contains("max-age"));
}

#[suite::test(each_engine)]
async fn the_ig_officer_searches_charts_and_exports_the_audit_trail(engine: Engine) {
    let w = world(engine).await;
    let worker = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    worker.post("/lookup", &lookup_form()).await;
    let ig = WebSession::sign_in(&w.app, &w.leeds_ig).await;
    let page = ig.get("/audit?type=lookup").await;
    assert_eq!(page.status, StatusCode::OK, "{engine:?}: {}", page.body);
    assert!(page.body.contains("<svg") && page.body.contains("Lookups per day"));
    assert!(page.body.contains("s47-enquiry"), "the purpose bar and the event");
    let bad = ig.get("/audit?from=yesterday").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("href=\"#from\""));
    let csv = ig.get("/audit/export.csv?type=lookup").await;
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(csv.body.starts_with("id,at,type") && csv.body.contains("s47-enquiry"));
    assert!(w.app.audit_types().await.contains(&"audit_exported".to_string()), "the export is audited");
    let checkpoint = ig.get("/audit/checkpoint").await;
    assert!(checkpoint.body.starts_with("child-locator/audit"), "{}", checkpoint.body);
    let posted = ig.post("/audit/subject-access", &[("nhs_number", "9074833780")]).await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
    let sar = ig.get(posted.location.as_deref().expect("the answer's address")).await;
    assert_eq!(sar.status, StatusCode::OK, "{}", sar.body);
    assert!(sar.body.contains("E08000003 Test Organisation") && sar.body.contains("searched 1 time"), "{}", sar.body);
    assert!(!sar.body.contains("9074833780"), "the identifiers are not shown back with the answer");
}

#[suite::test(each_engine)]
async fn an_admin_uploads_a_caseload_file_and_sees_the_summary(engine: Engine) {
    let w = world(engine).await;
    let admin = WebSession::sign_in(&w.app, &w.leeds_admin).await;
    let csv = "local_ref,category,status,nhs_number,upn,given_name,family_name,date_of_birth,postcode\n\
               LDS-1,child-in-need,open,9074833780,,Amelia,Hughes,2014-05-09,\n\
               LDS-2,child-in-need,open,123,,,,,\n";
    let form = reqwest::multipart::Form::new()
        .text("csrf", admin.csrf.clone())
        .text("dry_run", "false")
        .text("replace", "yes")
        .part("caseload", reqwest::multipart::Part::text(csv).file_name("caseload.csv").mime_str("text/csv").unwrap());
    let response =
        admin.http.post(w.app.url("/caseload")).header("cookie", &admin.cookie).multipart(form).send().await.unwrap();
    // Replacing the caseload redirects to its summary (POST -> redirect -> GET).
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{engine:?}");
    let summary = response.headers()["location"].to_str().unwrap().to_string();
    let body = admin.get(&summary).await.body;
    assert!(body.contains("Caseload updated"), "{body}");
    assert!(
        body.contains("<dt>Added</dt><dd>1</dd>") && body.contains("<dt>Rows that need fixing</dt><dd>1</dd>"),
        "{body}"
    );
    assert!(body.contains("<dt>New matches</dt><dd>1</dd>"), "{body}");

    let forged = reqwest::multipart::Form::new()
        .text("csrf", "0".repeat(64))
        .part("caseload", reqwest::multipart::Part::text("local_ref\n").file_name("c.csv"));
    let refused =
        admin.http.post(w.app.url("/caseload")).header("cookie", &admin.cookie).multipart(forged).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "the upload checks the CSRF token too");
}

#[suite::test(each_engine)]
async fn the_lookup_form_grows_a_carer_block_without_script_and_finds_a_sibling_through_her(engine: Engine) {
    let w = world(engine).await;
    // Manchester also holds Amelia's brother, with their mother as carer.
    let brother = json!({"category": "child-in-need", "status": "open",
        "subject": {"given_name": "Oscar", "family_name": "Hughes", "date_of_birth": "2016-08-02"},
        "carers": [{"given_name": "Dorothea", "family_name": "Hughes", "date_of_birth": "1988-01-30"}]});
    assert!(w.app.put(&w.manchester_admin, "/api/v1/holdings/MCR-2", &brother).await.0.is_success());
    let worker = WebSession::sign_in(&w.app, &w.leeds_worker).await;

    // One child is the short form; "Add a parent or carer" brings it back with a carer block.
    let form = worker.get("/lookup").await;
    assert!(!form.body.contains("carer0-given_name"), "the common case stays one short form");
    let mut typed = vec![
        ("purpose", "s17-assessment"),
        ("children", "1"),
        ("carers", "0"),
        ("given_name", "Ivy"),
        ("family_name", "Hughes"),
        ("dob_day", "3"),
        ("dob_month", "3"),
        ("dob_year", "2020"),
    ];
    let grown = worker.post("/lookup", &[typed.clone(), vec![("add", "carer")]].concat()).await;
    assert_eq!(grown.status, StatusCode::OK, "{engine:?}");
    assert!(grown.body.contains("id=\"carer0-given_name\""), "{}", grown.body);
    assert!(grown.body.contains("value=\"Ivy\""), "what was typed is kept");
    assert!(w.app.audit_types().await.iter().all(|t| t != "lookup"), "adding a block is not a lookup");

    typed[2] = ("carers", "1");
    typed.extend([
        ("carer0-given_name", "Dorothea"),
        ("carer0-family_name", "Hughes"),
        ("carer0-dob_day", "30"),
        ("carer0-dob_month", "1"),
        ("carer0-dob_year", "1988"),
    ]);
    let answer = worker.post_and_follow("/lookup", &typed).await;
    assert_eq!(answer.status, StatusCode::OK, "{engine:?}: {}", answer.body);
    assert!(answer.body.contains("carer 1 as you entered them"), "{}", answer.body);
    assert!(answer.body.contains("Known through a parent or carer") && answer.body.contains("Child 1"));
    assert!(answer.body.contains("E08000003 Test Organisation"), "who to call about the sibling");

    // A bad carer date names the carer's own field.
    let mut bad = typed.clone();
    bad.retain(|(k, _)| *k != "carer0-dob_month");
    let refused = worker.post("/lookup", &bad).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{engine:?}");
    assert!(refused.body.contains("href=\"#carer0-dob_day\""), "{}", refused.body);
}

#[suite::test(each_engine)]
async fn a_shielded_record_on_the_pages_names_no_holder(engine: Engine) {
    let w = world(engine).await;
    let refuge = json!({"category": "looked-after", "status": "open", "shielded": true,
        "subject": {"nhs_number": "9074833780", "given_name": "Amelia", "family_name": "Hughes", "date_of_birth": "2014-05-09"},
        "contact": {"team": "Children's Assessment Team", "phone": "0161 234 5678", "email": "cat@manchester.test.invalid"}});
    assert!(w.app.put(&w.manchester_admin, "/api/v1/holdings/MCR-1", &refuge).await.0.is_success());
    let worker = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    let answer = worker.post_and_follow("/lookup", &lookup_form()).await;
    assert_eq!(answer.status, StatusCode::OK, "{engine:?}");
    assert!(answer.body.contains("shielded record"), "{}", answer.body);
    assert!(answer.body.contains("/requests/new?match_id=lm_"), "the record can still be requested");
    for name in ["E08000003", "0161 234 5678", "cat@manchester.test.invalid", "Children's Assessment Team"] {
        assert!(!answer.body.contains(name), "{engine:?}: the page names the holder ({name})");
    }
}

#[suite::test(each_engine)]
async fn the_requesters_pages_of_a_shielded_record_name_no_holder_and_say_no_more_than_the_tier(engine: Engine) {
    let w = world(engine).await;
    let refuge = json!({"category": "looked-after", "status": "open", "shielded": true,
        "subject": {"given_name": "Poppy", "family_name": "Thistlewhite", "date_of_birth": "2021-09-17", "postcode": "M14 5RB"},
        "contact": {"team": "Children's Assessment Team", "phone": "0161 234 5678"}});
    assert!(w.app.put(&w.manchester_admin, "/api/v1/holdings/SAFE-1", &refuge).await.0.is_success());
    let worker = WebSession::sign_in(&w.app, &w.leeds_worker).await;
    let form = vec![
        ("purpose", "s47-enquiry"),
        ("purpose_detail", ""),
        ("given_name", "Poppy"),
        ("family_name", "Thistlewhite"),
        ("dob_day", "17"),
        ("dob_month", "9"),
        ("dob_year", "2021"),
        ("postcode", "M14 5RB"),
    ];
    let answer = worker.post_and_follow("/lookup", &form).await;
    assert_eq!(answer.status, StatusCode::OK, "{engine:?}");
    assert!(answer.body.contains("shielded record"), "{}", answer.body);
    assert!(!answer.body.contains("postcode district"), "{engine:?}: the page tells which details agree");
    let match_id = answer.body.split("match_id=").nth(1).unwrap().split('"').next().unwrap().to_string();
    let ask =
        json!({"match_id": match_id, "legal_basis": "ca1989-s47", "reason": "Strategy meeting", "urgency": "urgent"});
    let (status, request) = w.app.post(&w.leeds_worker, "/api/v1/requests", &ask).await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    let id = request["request_id"].as_str().unwrap();
    let ack = json!({"note": "On it"});
    assert_eq!(
        w.app.post(&w.manchester_admin, &format!("/api/v1/requests/{id}/acknowledge"), &ack).await.0,
        StatusCode::OK
    );

    let leeds_admin = WebSession::sign_in(&w.app, &w.leeds_admin).await;
    let matches_put = json!({"category": "child-in-need", "status": "open", "subject":
        {"given_name": "Poppy", "family_name": "Thistlewhite", "date_of_birth": "2021-09-17", "postcode": "M14 5RB"}});
    assert!(w.app.put(&w.leeds_admin, "/api/v1/holdings/LDS-1", &matches_put).await.0.is_success());
    for (what, page) in [
        ("request", worker.get(&format!("/requests/{id}")).await),
        ("requests", worker.get("/requests").await),
        ("matches", leeds_admin.get("/matches").await),
    ] {
        assert_eq!(page.status, StatusCode::OK, "{engine:?}: {what}");
        for name in ["E08000003", "0161 234 5678", "Children's Assessment Team", "postcode district"] {
            assert!(!page.body.contains(name), "{engine:?}: the {what} page says {name}: {}", page.body);
        }
    }
}
