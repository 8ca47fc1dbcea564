//! People sign in through their organisation's OpenID Connect provider: a real, certified
//! provider (`oidc-provider` from npm, tests/oidc) on a free port, and the app on both engines.
//! The browser's side is an HTTP client following the redirects by hand (the Chromium journey
//! is the last test here). Without node or the package, the harness reports these skipped
//! (failed in CI).

use crate::common;

use child_locator::domain::role::Role;
use common::oidc::{Browser, IdP, client, clock_to_now, configure_org, provider_available, query_param};
use common::{Engine, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

const A: &str = "E06000001";
const B: &str = "E06000002";

/// The app with organisation A, whose provider is a fresh `IdP` with client `client-a`.
async fn app_with_provider(engine: Engine) -> (TestApp, IdP) {
    let app = TestApp::start(engine).await;
    clock_to_now(&app);
    app.org(A, "local-authority").await;
    let idp = IdP::start(&[client("client-a", "secret-a", &app)]);
    configure_org(&app, &idp, A, "client-a", "secret-a").await;
    (app, idp)
}

async fn person(idp: &IdP, sub: &str, groups: Value) {
    idp.account(
        sub,
        json!({"name": format!("Person {sub}"), "email": format!("{sub}@north.test.invalid"), "groups": groups}),
    )
    .await;
    idp.login_as(sub).await;
}

/// The session cookie's `name=value` after a sign-in.
fn session_cookie(browser: &Browser, app: &TestApp) -> String {
    let value = browser.cookie(app, "locator-session").expect("a session cookie");
    format!("locator-session={value}")
}

async fn get_with(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, Option<String>, String) {
    let r = common::web::no_redirects().get(app.url(path)).header("cookie", cookie).send().await.expect("request");
    let location = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
    (r.status(), location, r.text().await.expect("body"))
}

async fn refusal_reasons(app: &TestApp) -> Vec<String> {
    app.audit_bodies()
        .await
        .iter()
        .filter(|e| e["type"] == "sign_in_refused")
        .filter_map(|e| e["details"]["reason"].as_str().map(str::to_string))
        .collect()
}

#[suite::test(each_engine, requires = provider_available)]
async fn a_person_signs_in_through_their_provider_and_is_created_just_in_time(engine: Engine) {
    let (app, idp) = app_with_provider(engine).await;
    person(&idp, "ann", json!(["sw"])).await;
    let mut browser = Browser::default();
    let page = browser.sign_in(&app, A).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("You are signed in") && page.body.contains("Person ann"), "{}", page.body);
    let cookie = session_cookie(&browser, &app);
    let (status, _, body) = get_with(&app, &cookie, "/lookup").await;
    assert_eq!(status, StatusCode::OK, "the practitioner's lookup form opens");
    assert!(body.contains("Person ann"));
    // The user exists now, known by issuer and subject, with the mapped role.
    let org = app.state.organisation_by_code(A).await.unwrap();
    let admin = app.token(&org, Role::OrgAdmin).await;
    let (_, users) = app.get(&admin, "/api/v1/users").await;
    let ann: Vec<&Value> = users["users"].as_array().unwrap().iter().filter(|u| u["name"] == "Person ann").collect();
    assert_eq!(ann.len(), 1, "{users}");
    assert_eq!(ann[0]["role"], "practitioner");
    // A second sign-in finds the same user (no duplicate).
    let mut again = Browser::default();
    assert_eq!(again.sign_in(&app, A).await.status, StatusCode::OK);
    let (_, users) = app.get(&admin, "/api/v1/users").await;
    assert_eq!(users["users"].as_array().unwrap().iter().filter(|u| u["name"] == "Person ann").count(), 1);
    let types = app.audit_types().await;
    assert_eq!(types.iter().filter(|t| *t == "user_provisioned").count(), 1, "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "signed_in").count(), 2, "{types:?}");
}

#[suite::test(each_engine, requires = provider_available)]
async fn roles_follow_the_claims_and_a_lost_claim_disables_the_user_and_ends_their_sessions(engine: Engine) {
    let (app, idp) = app_with_provider(engine).await;
    person(&idp, "bob", json!(["sw"])).await;
    let mut first = Browser::default();
    assert_eq!(first.sign_in(&app, A).await.status, StatusCode::OK);
    let first_cookie = session_cookie(&first, &app);
    assert_eq!(get_with(&app, &first_cookie, "/lookup").await.0, StatusCode::OK);
    assert_eq!(get_with(&app, &first_cookie, "/users").await.0, StatusCode::FORBIDDEN, "a practitioner");

    // Now in the admins group: the next sign-in makes them an org-admin.
    person(&idp, "bob", json!(["admins", "sw"])).await;
    let mut second = Browser::default();
    assert_eq!(second.sign_in(&app, A).await.status, StatusCode::OK);
    let second_cookie = session_cookie(&second, &app);
    assert_eq!(get_with(&app, &second_cookie, "/users").await.0, StatusCode::OK, "now an org-admin");

    // The claim goes: refused, disabled, and every session of theirs ends at once.
    person(&idp, "bob", json!(["operator", "unrelated"])).await;
    let refused = Browser::default().sign_in(&app, A).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("did not give you a role"), "{}", refused.body);
    for cookie in [&first_cookie, &second_cookie] {
        let (status, location, _) = get_with(&app, cookie, "/").await;
        assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/sign-in?ended=1")));
    }
    // A role again: enabled again, as that role.
    person(&idp, "bob", json!(["ig"])).await;
    let mut back = Browser::default();
    assert_eq!(back.sign_in(&app, A).await.status, StatusCode::OK);
    assert_eq!(get_with(&app, &session_cookie(&back, &app), "/audit").await.0, StatusCode::OK, "an IG officer");

    let changes: Vec<Value> = app
        .audit_bodies()
        .await
        .into_iter()
        .filter(|e| e["type"] == "role_changed")
        .map(|e| e["details"].clone())
        .collect();
    let moves: Vec<(Value, Value)> = changes.iter().map(|d| (d["from"].clone(), d["to"].clone())).collect();
    assert_eq!(
        moves,
        vec![
            (json!("practitioner"), json!("org-admin")),
            (json!("org-admin"), Value::Null),
            (json!("org-admin"), json!("ig-officer")),
        ]
    );
    assert_eq!(refusal_reasons(&app).await, vec!["no_role"]);
}

#[suite::test(each_engine, requires = provider_available)]
async fn a_person_with_no_mapped_role_is_refused_and_not_created(engine: Engine) {
    let (app, idp) = app_with_provider(engine).await;
    // `operator` is never granted from a claim, whatever the provider says.
    person(&idp, "eve", json!(["operator"])).await;
    let page = Browser::default().sign_in(&app, A).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let types = app.audit_types().await;
    assert!(!types.iter().any(|t| t == "user_provisioned" || t == "signed_in"), "{types:?}");
    assert_eq!(refusal_reasons(&app).await, vec!["no_role"]);
}

#[suite::test(each_engine, requires = provider_available)]
async fn one_organisations_provider_can_never_sign_anyone_in_to_another(engine: Engine) {
    let app = TestApp::start(engine).await;
    clock_to_now(&app);
    app.org(A, "local-authority").await;
    app.org(B, "local-authority").await;
    let idp = IdP::start(&[client("client-a", "secret-a", &app), client("client-b", "secret-b", &app)]);
    configure_org(&app, &idp, A, "client-a", "secret-a").await;
    configure_org(&app, &idp, B, "client-b", "secret-b").await;
    person(&idp, "cara", json!(["sw"])).await;

    // A code the provider issued for A's sign-in, brought back with B's sign-in's state.
    let mut browser = Browser::default();
    let for_a = browser.until_callback(&app, A).await;
    let for_b = browser.until_callback(&app, B).await;
    let code_a = query_param(&for_a, "code").unwrap();
    let state_b = query_param(&for_b, "state").unwrap();
    let mixed = app.url(&format!(
        "/sign-in/provider/callback?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code_a)
            .append_pair("state", &state_b)
            .finish()
    ));
    let page = browser.get(&mixed).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(browser.cookie(&app, "locator-session").is_none(), "no session");

    // Cara signs in to A; the same person (issuer and subject) is then refused at B.
    assert_eq!(Browser::default().sign_in(&app, A).await.status, StatusCode::OK);
    let at_b = Browser::default().sign_in(&app, B).await;
    assert_eq!(at_b.status, StatusCode::FORBIDDEN, "{}", at_b.body);
    assert_eq!(refusal_reasons(&app).await, vec!["code_refused_by_provider", "subject_of_another_organisation"]);

    // And B cannot be given A's provider (its issuer and client): a provider has one organisation.
    let operator_org = app.org("OPS", "other").await;
    let operator = app.token(&operator_org, Role::Operator).await;
    let body =
        json!({"issuer": idp.issuer, "client_id": "client-a", "client_secret": "x", "roles": {"practitioner": ["sw"]}});
    let (status, answer) = app.put(&operator, &format!("/api/v1/organisations/{B}/identity-provider"), &body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
}

#[suite::test(each_engine, requires = provider_available)]
async fn a_replayed_state_or_a_callback_in_another_browser_is_refused(engine: Engine) {
    let (app, idp) = app_with_provider(engine).await;
    person(&idp, "dan", json!(["sw"])).await;
    let mut browser = Browser::default();
    let callback = browser.until_callback(&app, A).await;
    assert_eq!(browser.get(&callback).await.status, StatusCode::OK);
    // The same callback again (state, code and nonce used once already).
    let replay = browser.get(&callback).await;
    assert_eq!(replay.status, StatusCode::FORBIDDEN, "{}", replay.body);

    // A callback opened in another browser (a planted sign-in): refused, and its state is spent.
    let mut victim_side = Browser::default();
    let planted = victim_side.until_callback(&app, A).await;
    let mut other = Browser::default();
    assert_eq!(other.get(&planted).await.status, StatusCode::FORBIDDEN);
    assert_eq!(victim_side.get(&planted).await.status, StatusCode::FORBIDDEN, "the state cannot be used again");

    // The code of a finished sign-in brought back under a new sign-in's state: its nonce is not
    // that sign-in's, and the provider will not redeem a code twice.
    let fresh = browser.until_callback(&app, A).await;
    let replayed_code = app.url(&format!(
        "/sign-in/provider/callback?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &query_param(&callback, "code").unwrap())
            .append_pair("state", &query_param(&fresh, "state").unwrap())
            .finish()
    ));
    assert_eq!(browser.get(&replayed_code).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refusal_reasons(&app).await,
        vec![
            "unknown_or_used_state",
            "state_not_from_this_browser",
            "unknown_or_used_state",
            "code_refused_by_provider"
        ]
    );
}

#[suite::test(each_engine, requires = provider_available)]
async fn an_expired_id_token_is_refused(engine: Engine) {
    let (app, idp) = app_with_provider(engine).await;
    idp.configure(json!({"idTokenTtl": 5})).await;
    person(&idp, "fay", json!(["sw"])).await;
    let mut browser = Browser::default();
    let callback = browser.until_callback(&app, A).await;
    // 90 seconds on the app's clock: well inside the sign-in's 10 minutes, past the ID token's
    // 5 seconds and the 60 seconds of skew.
    app.clock.advance_ms(90_000);
    let page = browser.get(&callback).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert_eq!(refusal_reasons(&app).await, vec!["id_token_expired"]);
}

#[suite::test(each_engine, requires = provider_available)]
async fn a_key_rotation_at_the_provider_is_followed_without_a_restart(engine: Engine) {
    let (app, idp) = app_with_provider(engine).await;
    person(&idp, "gus", json!(["sw"])).await;
    assert_eq!(Browser::default().sign_in(&app, A).await.status, StatusCode::OK, "keys fetched and cached");
    idp.rotate_keys().await;
    person(&idp, "gus", json!(["sw"])).await;
    let page = Browser::default().sign_in(&app, A).await;
    assert_eq!(page.status, StatusCode::OK, "the new key is fetched: {}", page.body);
    assert!(refusal_reasons(&app).await.is_empty());
}

#[suite::test(each_engine, requires = provider_available)]
async fn sign_out_ends_the_session_and_offers_the_providers_sign_out(engine: Engine) {
    let (app, idp) = app_with_provider(engine).await;
    person(&idp, "hal", json!(["sw"])).await;
    let mut browser = Browser::default();
    assert_eq!(browser.sign_in(&app, A).await.status, StatusCode::OK);
    let cookie = session_cookie(&browser, &app);
    let (_, _, home) = get_with(&app, &cookie, "/").await;
    let csrf = common::web::csrf_of(&home).expect("csrf");
    let out = browser.post_form(&app.url("/sign-out"), &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let next = out.location.expect("to the signed-out page");
    assert!(next.ends_with(&format!("/signed-out?org={A}")), "{next}");
    let page = browser.get(&next).await;
    let link = format!("{}/session/end?client_id=client-a", idp.issuer);
    assert!(page.body.contains(&link), "the provider's sign-out is offered: {}", page.body);
    assert_eq!(get_with(&app, &cookie, "/").await.1.as_deref(), Some("/sign-in?ended=1"), "the session is over");
    // The provider's end-session page answers (it asks the person to confirm).
    let href = page.body.split("href=\"").find(|s| s.starts_with(&idp.issuer)).unwrap().split('"').next().unwrap();
    let provider_page = browser.get(&href.replace("&amp;", "&")).await;
    assert_eq!(provider_page.status, StatusCode::OK, "{}", provider_page.body);
}

#[suite::test(each_engine, requires = provider_available)]
async fn a_session_lasts_no_longer_than_the_id_token_or_the_configured_limit(engine: Engine) {
    let (app, idp) = app_with_provider(engine).await;
    idp.configure(json!({"idTokenTtl": 300})).await;
    person(&idp, "ivy", json!(["sw"])).await;
    let mut browser = Browser::default();
    assert_eq!(browser.sign_in(&app, A).await.status, StatusCode::OK);
    let cookie = session_cookie(&browser, &app);
    app.clock.advance_ms(240_000);
    assert_eq!(get_with(&app, &cookie, "/lookup").await.0, StatusCode::OK, "within the ID token's five minutes");
    // The provider stamped the token a moment after the app's (manual) clock was set: two
    // minutes more is past its expiry whatever that moment was.
    app.clock.advance_ms(120_000);
    assert_eq!(get_with(&app, &cookie, "/lookup").await.1.as_deref(), Some("/sign-in?ended=1"), "ended with it");

    // An hour's ID token, but the organisation allows sessions of 5 minutes.
    idp.configure(json!({"idTokenTtl": 3600})).await;
    let input = child_locator::domain::identity_provider::ProviderInput {
        issuer: Some(idp.issuer.clone()),
        client_id: Some("client-a".into()),
        client_secret: Some("secret-a".into()),
        scopes: Some("profile email groups".into()),
        roles: child_locator::domain::identity_provider::RoleMapping {
            practitioner: vec!["sw".into()],
            ..Default::default()
        },
        session_max_minutes: Some(5),
        ..Default::default()
    };
    app.state.set_identity_provider(None, A, input).await.expect("provider set");
    person(&idp, "ivy", json!(["sw"])).await;
    let mut browser = Browser::default();
    assert_eq!(browser.sign_in(&app, A).await.status, StatusCode::OK);
    let cookie = session_cookie(&browser, &app);
    app.clock.advance_ms(4 * 60_000);
    assert_eq!(get_with(&app, &cookie, "/lookup").await.0, StatusCode::OK, "within the organisation's five minutes");
    app.clock.advance_ms(61_000);
    assert_eq!(get_with(&app, &cookie, "/lookup").await.1.as_deref(), Some("/sign-in?ended=1"), "ended at its limit");
}

#[suite::test(each_engine, requires = provider_available)]
async fn roles_answered_only_at_userinfo_are_read_there(engine: Engine) {
    // As NHS CIS2 answers its roles: the ID token lacks the claim, userinfo has it.
    let (app, idp) = app_with_provider(engine).await;
    idp.configure(json!({"conformIdTokenClaims": true})).await;
    person(&idp, "jo", json!(["ig"])).await;
    let mut browser = Browser::default();
    let page = browser.sign_in(&app, A).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(get_with(&app, &session_cookie(&browser, &app), "/audit").await.0, StatusCode::OK, "an IG officer");
}

#[suite::test(each_engine)]
async fn an_operator_sets_a_provider_whose_secret_is_never_shown_and_the_input_is_checked(engine: Engine) {
    let app = TestApp::start(engine).await;
    let north = app.org(A, "local-authority").await;
    let south = app.org(B, "local-authority").await;
    let ops = app.org("OPS", "other").await;
    let operator = app.token(&ops, Role::Operator).await;
    let admin = app.token(&north, Role::OrgAdmin).await;
    let south_admin = app.token(&south, Role::OrgAdmin).await;
    let worker = app.token(&north, Role::Practitioner).await;
    let path = format!("/api/v1/organisations/{A}/identity-provider");
    let secret = "canary-client-secret-8d1f";
    let body = json!({
        "label": "Microsoft Entra ID", "issuer": "https://login.microsoftonline.com/tenant-1/v2.0",
        "client_id": "app-1", "client_secret": secret, "allowed_tenant": "tenant-1",
        "role_claim": "roles", "roles": {"practitioner": ["Locator.Practitioner"], "org_admin": ["Locator.Admin"]},
    });
    let (status, view) = app.put(&operator, &path, &body).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["client_authentication"], "sealed");
    assert!(!view.to_string().contains(secret));
    let (status, mine) = app.get(&admin, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["roles"]["practitioner"], json!(["Locator.Practitioner"]));
    assert!(!mine.to_string().contains(secret));
    assert_eq!(app.get(&south_admin, &path).await.0, StatusCode::NOT_FOUND, "another organisation's");
    assert_eq!(app.get(&worker, &path).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.put(&admin, &path, &body).await.0, StatusCode::FORBIDDEN, "only an operator sets it");
    // Bad input names the field and never echoes it.
    let bad = json!({"issuer": "http://evil.example/", "client_id": "app-1", "client_secret": "s", "roles": {}});
    let (status, error) = app.put(&operator, &path, &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert!(!error.to_string().contains("evil.example"), "{error}");
    assert!(error.to_string().contains("issuer") && error.to_string().contains("roles"), "{error}");
    // An operator role in the mapping is not even a field.
    let operator_role = json!({"issuer": "https://idp.example", "client_id": "c", "client_secret": "s",
        "roles": {"operator": ["ops"]}});
    assert_eq!(app.put(&operator, &path, &operator_role).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    app.assert_db_files_free_of(&[secret]);
    let audit = serde_json::to_string(&app.audit_bodies().await).unwrap();
    assert!(audit.contains("identity_provider_changed") && !audit.contains(secret));
    assert_eq!(app.delete(&operator, &path).await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&admin, &path).await.0, StatusCode::NOT_FOUND);
}

/// The Chromium journey needs the provider, chromium and chromedriver.
fn provider_and_browser_available() -> Result<(), String> {
    provider_available()?;
    let which = |p: &str| {
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
    };
    if !which("chromedriver") || !std::path::Path::new("/usr/bin/chromium").is_file() {
        return Err("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)".into());
    }
    Ok(())
}

#[suite::test(requires = provider_and_browser_available)]
async fn the_whole_provider_sign_in_and_sign_out_work_in_chromium() {
    use fantoccini::{ClientBuilder, Locator};
    use futures::FutureExt;
    use std::panic::AssertUnwindSafe;

    let (app, idp) = app_with_provider(Engine::Sqlite).await;
    person(&idp, "kim", json!(["sw"])).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut driver = std::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let caps = json!({"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args":
        ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]}});
    let client = ClientBuilder::rustls()
        .expect("tls")
        .capabilities(caps.as_object().unwrap().clone())
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("chromedriver session");
    // axe-core (tests/ui, `npm ci`) on the new pages: no serious or critical violation.
    let axe = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/node_modules/axe-core/axe.min.js"),
    );
    if axe.is_err() {
        assert!(!common::in_ci(), "axe-core is not installed in tests/ui");
        eprintln!("axe-core is not installed in tests/ui: the accessibility check of these pages is skipped");
    }
    let accessible = |name: &'static str| {
        let (client, axe) = (client.clone(), axe.as_ref().ok().cloned());
        async move {
            let Some(axe) = axe else { return };
            client.execute(&format!("{axe};return true;"), vec![]).await.expect("inject axe-core");
            let script = "const done = arguments[arguments.length - 1];\
                axe.run(document, {resultTypes: ['violations']})\
                  .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')\
                     .map(v => v.id)))\
                  .catch(e => done(['axe-error: ' + String(e)]));";
            let serious = client.execute_async(script, vec![]).await.expect("axe runs");
            assert_eq!(serious, json!([]), "{name}: accessibility violations");
        }
    };
    let journey = async {
        client.goto(&app.url("/sign-in")).await.expect("sign-in page");
        client.find(Locator::Id("provider-sign-in")).await.expect("the provider link").click().await.expect("click");
        accessible("choose your organisation").await;
        client
            .find(Locator::LinkText("Sign in with Test Identity Provider (E06000001 Test Organisation)"))
            .await
            .expect("the organisation's provider")
            .click()
            .await
            .expect("click");
        // The provider signs Kim in and sends the browser back; the page moves on to the lookup form.
        let lookup = client.wait().for_element(Locator::Css("form[action='/lookup']")).await;
        assert!(lookup.is_ok(), "the practitioner reaches the lookup form");
        let body = client.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
        assert!(body.contains("Person kim"), "{body}");
        client.find(Locator::Css(".header-sign-out button")).await.expect("sign out").click().await.expect("click");
        client.wait().for_element(Locator::Id("provider-sign-out")).await.expect("the provider's sign-out offered");
        accessible("signed out").await;
        client.goto(&app.url("/lookup")).await.unwrap();
        let url = client.current_url().await.unwrap();
        assert_eq!(url.path(), "/sign-in", "signed out");
    };
    let outcome = AssertUnwindSafe(journey).catch_unwind().await;
    let _ = client.clone().close().await;
    let _ = driver.kill();
    let _ = driver.wait();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A PEM file of a test-only private key (tests/fixtures/client-keys) in `dir`.
fn pem_file(dir: &std::path::Path, der: &[u8], label: &str) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let path = dir.join(format!("{}.pem", label.replace(' ', "-").to_lowercase()));
    std::fs::write(&path, format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))).unwrap();
    format!("file:{}", path.display())
}

#[suite::test(each_engine, requires = provider_available)]
async fn an_organisation_can_authenticate_to_its_provider_with_a_private_key(engine: Engine) {
    // As NHS CIS2 requires: private_key_jwt at the provider's token endpoint, RSA and P-256.
    let app = TestApp::start(engine).await;
    clock_to_now(&app);
    app.org(A, "local-authority").await;
    app.org(B, "local-authority").await;
    let rsa: Value = serde_json::from_str(include_str!("../fixtures/client-keys/rsa-a.public.jwk.json")).unwrap();
    let ec: Value = serde_json::from_str(include_str!("../fixtures/client-keys/ec-a.public.jwk.json")).unwrap();
    let with_key = |id: &str, jwk: &Value| {
        let mut c = client(id, "unused", &app);
        c.as_object_mut().unwrap().remove("client_secret");
        c["token_endpoint_auth_method"] = json!("private_key_jwt");
        c["jwks"] = json!({"keys": [jwk]});
        c
    };
    let idp = IdP::start(&[with_key("client-rsa", &rsa), with_key("client-ec", &ec)]);
    let keys = tempfile::tempdir().unwrap();
    let rsa_ref = pem_file(keys.path(), include_bytes!("../fixtures/client-keys/rsa-a.der"), "RSA PRIVATE KEY");
    let ec_ref = pem_file(keys.path(), include_bytes!("../fixtures/client-keys/ec-a.pkcs8.der"), "PRIVATE KEY");
    for (org, client_id, key_ref) in [(A, "client-rsa", rsa_ref), (B, "client-ec", ec_ref)] {
        let input = child_locator::domain::identity_provider::ProviderInput {
            issuer: Some(idp.issuer.clone()),
            client_id: Some(client_id.into()),
            private_key_ref: Some(key_ref),
            scopes: Some("profile groups".into()),
            roles: child_locator::domain::identity_provider::RoleMapping {
                practitioner: vec!["sw".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let view = app.state.set_identity_provider(None, org, input).await.expect("provider set");
        assert_eq!(view.client_authentication, "private_key");
    }
    person(&idp, "lou", json!(["sw"])).await;
    let page = Browser::default().sign_in(&app, A).await;
    assert_eq!(page.status, StatusCode::OK, "RSA: {}", page.body);
    person(&idp, "mo", json!(["sw"])).await;
    let page = Browser::default().sign_in(&app, B).await;
    assert_eq!(page.status, StatusCode::OK, "P-256: {}", page.body);
}

#[suite::test]
fn the_operator_sets_shows_and_removes_a_provider_on_the_command_line_with_the_secret_from_stdin() {
    use common::cli::{add_org, locator, stdout};
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    add_org(dir.path(), "E06000001", "local-authority");
    let mut child = locator(dir.path())
        .args(["org", "provider", "set", "E06000001", "--issuer", "https://login.example.test/tenant/v2.0"])
        .args(["--client-id", "app-1", "--client-secret-stdin", "--label", "Microsoft Entra ID"])
        .args(["--role-claim", "roles", "--practitioner", "Locator.Practitioner", "--org-admin", "Locator.Admin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"canary-cli-secret-77aa\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = stdout(&locator(dir.path()).args(["org", "provider", "show", "E06000001"]).output().unwrap());
    assert!(shown.contains("client_id=app-1") && shown.contains("secret=sealed"), "{shown}");
    assert!(shown.contains("practitioner=Locator.Practitioner") && !shown.contains("canary-cli-secret"), "{shown}");
    // A bad issuer names the option; the secret is never echoed.
    let bad = locator(dir.path())
        .args(["org", "provider", "set", "E06000001", "--issuer", "http://evil.example", "--client-id", "x"])
        .args(["--client-secret-ref", "env:IDP_SECRET", "--practitioner", "sw"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("issuer"));
    let removed = locator(dir.path()).args(["org", "provider", "remove", "E06000001"]).output().unwrap();
    assert!(removed.status.success());
    let gone = locator(dir.path()).args(["org", "provider", "show", "E06000001"]).output().unwrap();
    assert!(!gone.status.success());
    for file in ["locator.db", "locator.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(file)) {
            assert!(!bytes.windows(22).any(|w| w == b"canary-cli-secret-77aa"), "{file} holds the secret");
        }
    }
}

#[suite::test(each_engine, requires = provider_available)]
async fn a_user_an_org_admin_revokes_is_signed_out_at_once_and_stays_out_whatever_the_provider_says(engine: Engine) {
    let (app, idp) = app_with_provider(engine).await;
    person(&idp, "nia", json!(["sw"])).await;
    let mut browser = Browser::default();
    assert_eq!(browser.sign_in(&app, A).await.status, StatusCode::OK);
    let cookie = session_cookie(&browser, &app);
    let org = app.state.organisation_by_code(A).await.unwrap();
    let admin = app.token(&org, Role::OrgAdmin).await;
    let (_, users) = app.get(&admin, "/api/v1/users").await;
    let id =
        users["users"].as_array().unwrap().iter().find(|u| u["name"] == "Person nia").unwrap()["id"].as_i64().unwrap();
    let (status, body) = app.post(&admin, &format!("/api/v1/users/{id}/revoke"), &json!({})).await;
    assert!(status.is_success(), "{body}");
    assert_eq!(get_with(&app, &cookie, "/lookup").await.1.as_deref(), Some("/sign-in?ended=1"), "signed out at once");
    let again = Browser::default().sign_in(&app, A).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN, "the provider still says sw: {}", again.body);
    assert_eq!(refusal_reasons(&app).await, vec!["revoked_here"]);
}

#[suite::test(requires = provider_available)]
async fn sign_ins_started_from_one_address_are_limited_so_pending_ones_cannot_pile_up() {
    let app = TestApp::start_with(Engine::Sqlite, |s| s.limits.sign_in_starts_per_minute = 3).await;
    clock_to_now(&app);
    app.org(A, "local-authority").await;
    let idp = IdP::start(&[client("client-a", "secret-a", &app)]);
    configure_org(&app, &idp, A, "client-a", "secret-a").await;
    let start = |org: &'static str| {
        common::web::no_redirects().get(app.url(&format!("/sign-in/provider/start?org={org}"))).send()
    };
    for _ in 0..3 {
        assert_eq!(start(A).await.expect("start").status(), StatusCode::SEE_OTHER, "sent on to the provider");
    }
    let refused = start(A).await.expect("start");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().get("retry-after").is_some());
    assert!(refused.text().await.unwrap().contains("Wait a minute"));
    // Refused before anything is looked up: an unknown organisation gets the same answer.
    assert_eq!(start(B).await.expect("start").status(), StatusCode::TOO_MANY_REQUESTS);
}
