//! The main journeys in a real headless Chromium (Debian's `chromium` and `chromium-driver`),
//! driven over WebDriver: sign in, look up, request the record, the holder acknowledges, an
//! org-admin uploads a caseload and issues and revokes a token, an IG officer searches, charts
//! and exports the audit trail, the directory, sign out. Every page is screenshotted to
//! target/ui-screenshots/ and checked with axe-core: no serious or critical violation.
//!
//! Without chromium, chromedriver or axe-core (tests/ui: `npm ci`) the test fails in CI
//! (`CI=true`) and is skipped with a notice elsewhere.

use crate::common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use child_locator::domain::role::Role;
use common::{Engine, TestApp};
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::{Value, json};
use std::panic::AssertUnwindSafe;

const CHROMEDRIVER: &str = "chromedriver";
const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/// The browser test needs chromium, chromedriver and axe-core; the harness reports it skipped
/// (or, in CI, failed) when one is missing.
fn browser_available() -> Result<(), String> {
    let install = "(install chromium and chromium-driver, and run `npm ci` in tests/ui)";
    if which(CHROMEDRIVER).is_none() {
        return Err(format!("chromedriver is not installed {install}"));
    }
    if !CHROMIUM.iter().any(|p| Path::new(p).is_file()) {
        return Err(format!("chromium is not installed {install}"));
    }
    axe_source().map(drop).ok_or_else(|| format!("axe-core is not installed in tests/ui {install}"))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(program)).find(|p| p.is_file())
}

fn axe_source() -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(path).ok()
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// chromedriver on a free port, stopped when dropped.
struct Driver(Child, u16);

impl Driver {
    fn start(path: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Driver(
            Command::new(path)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts"),
            port,
        );
        // Wait until it listens (bounded: 100 tries); dropping `driver` stops it if it never does.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return driver;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chromedriver did not start listening");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The browser, the app, and the checks every page gets.
struct Journey {
    client: Client,
    app: TestApp,
    axe: String,
    shots: PathBuf,
    count: usize,
    pages_checked: Vec<String>,
}

impl Journey {
    async fn go(&self, path: &str) {
        self.client.goto(&self.app.url(path)).await.expect("navigate");
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        let mut path = url.path().to_string();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        path
    }

    async fn text(&self) -> String {
        self.client.find(Locator::Css("body")).await.expect("body").text().await.expect("text")
    }

    async fn fill(&self, id: &str, text: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap_or_else(|_| panic!("#{id} on the page"));
        field.clear().await.ok();
        field.send_keys(text).await.expect("type");
    }

    async fn choose(&self, id: &str, value: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap_or_else(|_| panic!("#{id} on the page"));
        field.select_by_value(value).await.expect("choose");
    }

    /// Clicks something that stays on the page (a radio button).
    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("{css} on the page"))
            .click()
            .await
            .expect("click");
    }

    /// Clicks a button or link that loads another page, and waits (bounded) until it has.
    async fn follow(&self, css: &str) {
        let old = self.client.find(Locator::Css("html")).await.expect("page");
        self.click(css).await;
        for _ in 0..400 {
            if old.tag_name().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.settle("footer").await;
    }

    /// Screenshot, then axe-core: no serious or critical violation on this page.
    async fn check(&mut self, name: &str) {
        self.count += 1;
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{:02}-{name}.png", self.count)), png).expect("save screenshot");
        let violations = self.axe_violations().await;
        let serious: Vec<&Value> = violations
            .as_array()
            .expect("a list")
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious") | Some("critical")))
            .collect();
        let all: Vec<&str> = violations.as_array().into_iter().flatten().filter_map(|v| v["id"].as_str()).collect();
        eprintln!("{name}: axe-core: {} serious or critical; all kinds found: {all:?}", serious.len());
        assert!(
            serious.is_empty(),
            "{name}: accessibility violations {}",
            serde_json::to_string_pretty(&serious).unwrap()
        );
        self.pages_checked.push(name.to_string());
    }

    /// Runs axe-core on the current page; its violations (id, impact, help, targets).
    async fn axe_violations(&self) -> Value {
        self.client.execute(&format!("{};return true;", self.axe), vec![]).await.expect("inject axe-core");
        let script = "const done = arguments[arguments.length - 1];\
            axe.run(document, {resultTypes: ['violations']})\
              .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,\
                 targets: v.nodes.map(n => n.target.join(' '))}))))\
              .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), targets: []}]));";
        self.client.execute_async(script, vec![]).await.expect("axe runs")
    }

    async fn sign_in(&mut self, token: &str) {
        self.go("/sign-in").await;
        self.fill("token", token).await;
        // Enter submits, as a person would after pasting; then wait for the next page.
        let old = self.client.find(Locator::Css("html")).await.expect("page");
        self.client.find(Locator::Id("token")).await.unwrap().send_keys("\u{E007}").await.expect("Enter");
        for _ in 0..400 {
            if old.tag_name().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.settle("footer").await;
    }

    /// Waits (bounded) until the page that a click or Enter led to shows `css`.
    async fn settle(&self, css: &str) {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("the next page never showed {css}"));
    }

    async fn sign_out(&mut self) {
        self.follow(".header-sign-out button").await;
        assert_eq!(self.path().await, "/sign-in", "signed out");
    }
}

#[suite::test(requires = browser_available)]
async fn the_main_journeys_work_in_a_browser_and_pass_the_accessibility_check() {
    let driver_path = which(CHROMEDRIVER).expect("chromedriver");
    let chromium = CHROMIUM.iter().map(PathBuf::from).find(|p| p.is_file()).expect("chromium");
    let axe = axe_source().expect("axe-core");

    let app = TestApp::start(Engine::Sqlite).await;
    let north = app.org("E06000001", "local-authority").await;
    let south = app.org("E06000002", "local-authority").await;
    let worker = app.token(&north, Role::Practitioner).await;
    let north_admin = app.token(&north, Role::OrgAdmin).await;
    let north_ig = app.token(&north, Role::IgOfficer).await;
    let south_admin = app.token(&south, Role::OrgAdmin).await;
    let holding = json!({"category": "child-protection-plan", "status": "open",
        "subject": {"nhs_number": "9434765919", "given_name": "Ruby", "family_name": "Fletcher", "date_of_birth": "2016-04-12"},
        "contact": {"team": "Front Door", "phone": "01632 960002", "email": "front.door@south.test.invalid"}});
    assert!(app.put(&south_admin, "/api/v1/holdings/SB-1001", &holding).await.0.is_success());

    // Two TLS back ends are linked (reqwest's and fantoccini's): say which one to use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let driver = Driver::start(&driver_path);
    let caps = json!({"goog:chromeOptions": {"binary": chromium, "args":
        ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]}});
    let client = ClientBuilder::rustls()
        .expect("tls")
        .capabilities(caps.as_object().unwrap().clone())
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("chromedriver session");
    let mut j = Journey { client, app, axe, shots: screenshot_dir(), count: 0, pages_checked: Vec::new() };
    // Close the browser whatever happened, then report.
    let outcome =
        AssertUnwindSafe(journeys(&mut j, &worker, &north_admin, &north_ig, &south_admin)).catch_unwind().await;
    let _ = j.client.clone().close().await;
    drop(driver);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    eprintln!("checked {} pages: {:?}; screenshots in {}", j.pages_checked.len(), j.pages_checked, j.shots.display());
}

async fn journeys(j: &mut Journey, worker: &str, north_admin: &str, north_ig: &str, south_admin: &str) {
    // Sign in, with a wrong token first.
    j.go("/sign-in").await;
    j.check("sign-in").await;
    j.sign_in(&format!("clk_{}", "Z".repeat(43))).await;
    assert!(j.text().await.contains("There is a problem"));
    j.check("sign-in-error").await;
    j.sign_in(worker).await;
    assert_eq!(j.path().await, "/lookup", "a practitioner lands on the lookup form: {}", j.text().await);
    j.check("lookup-form").await;

    // The fast journey, keyboard only, as counted in docs/ui.md: the purpose list has the focus,
    // "f" chooses front door triage, Tab Tab reaches the NHS number, ten digits, Enter.
    let keys = ["f", "\u{E004}", "\u{E004}", "9434765919", "\u{E007}"];
    let old = j.client.find(Locator::Css("html")).await.unwrap();
    for k in keys {
        j.client.active_element().await.expect("focus").send_keys(k).await.expect("type");
    }
    for _ in 0..400 {
        if old.tag_name().await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    j.settle("footer").await;
    assert!(j.text().await.contains("Known to 1 organisation"), "17 keystrokes from sign-in: {}", j.text().await);
    j.go("/lookup").await;

    // A lookup with a mistake, then the right one: NHS number with spaces, date as three fields.
    j.choose("purpose", "front-door-triage").await;
    j.fill("nhs_number", "943 476 591").await;
    j.follow("form[action='/lookup'] button").await;
    assert!(j.text().await.contains("There is a problem"));
    j.check("lookup-error").await;
    j.fill("nhs_number", "943 476 5919").await;
    j.fill("dob_day", "12").await;
    j.fill("dob_month", "4").await;
    j.fill("dob_year", "2016").await;
    j.follow("form[action='/lookup'] button").await;
    let answer = j.text().await;
    assert!(answer.contains("Known to 1 organisation"), "{answer}");
    assert!(answer.contains("01632 960002") && answer.contains("front.door@south.test.invalid"));
    j.check("lookup-answer").await;

    // Request the record: the form's errors, then sent.
    j.follow("a[href^='/requests/new']").await;
    j.check("request-form").await;
    j.follow("form[action='/requests'] button").await;
    assert!(j.text().await.contains("There is a problem"));
    j.check("request-form-error").await;
    j.choose("legal_basis", "ca1989-s47").await;
    j.fill("reason", "Strategy discussion today: need the chronology").await;
    j.click("#urgency").await;
    j.follow("form[action='/requests'] button").await;
    assert!(j.text().await.contains("Request sent"), "{}", j.text().await);
    j.check("request-sent").await;
    j.go("/requests").await;
    j.check("requests-mine").await;
    j.go("/directory").await;
    j.fill("q", "E06000002").await;
    j.follow("form[action='/directory'] button").await;
    assert!(j.text().await.contains("E06000002 Test Organisation"));
    j.check("directory").await;
    j.sign_out().await;

    // The holder acknowledges.
    j.sign_in(south_admin).await;
    j.check("start-admin").await;
    j.go("/requests").await;
    j.check("requests-inbox").await;
    j.follow("a[href^='/requests/rq_'], table a[href^='/requests/']").await;
    j.check("request-holder").await;
    j.follow("form[action$='/acknowledge'] button").await;
    assert!(j.text().await.contains("Acknowledged"));
    j.check("request-acknowledged").await;
    j.go("/matches").await;
    j.check("matches").await;
    j.sign_out().await;

    // The org-admin uploads a caseload, issues a token and revokes it.
    j.sign_in(north_admin).await;
    j.go("/caseload").await;
    j.check("caseload-form").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("caseload.csv");
    std::fs::write(
        &file,
        "local_ref,category,status,nhs_number,upn,given_name,family_name,date_of_birth,postcode\n\
         NB-1,child-in-need,open,9434765919,,Ruby,Fletcher,2016-04-12,\nNB-2,child-in-need,open,1,,,,,\n",
    )
    .unwrap();
    j.client.find(Locator::Id("caseload")).await.unwrap().send_keys(file.to_str().unwrap()).await.expect("choose file");
    // Replacing the whole caseload is confirmed with its box (else the file is only checked).
    j.click("#replace").await;
    j.follow("form[action='/caseload'] button").await;
    let summary = j.text().await;
    assert!(summary.contains("Caseload updated") && summary.contains("Rows that need fixing"), "{summary}");
    j.check("caseload-summary").await;
    j.go("/users").await;
    j.fill("name", "Casey Temp").await;
    j.choose("role", "practitioner").await;
    j.follow("form[action='/users'] button").await;
    assert!(j.text().await.contains("Token issued for Casey Temp"));
    j.check("users-token-issued").await;
    // Revoking asks first, on a page of its own.
    j.follow("a[href$='/revoke']").await;
    assert!(j.text().await.contains("cannot be undone"), "{}", j.text().await);
    j.check("users-revoke-confirm").await;
    j.follow("form[action$='/revoke'] button").await;
    assert!(j.text().await.contains("REVOKED") || j.text().await.to_lowercase().contains("revoked"));
    j.check("users-revoked").await;
    j.sign_out().await;

    // The IG officer: audit search, chart, export, anomalies, subject access.
    j.sign_in(north_ig).await;
    j.go("/audit").await;
    assert!(j.client.find(Locator::Css("svg.chart")).await.is_ok(), "the chart is drawn");
    j.check("audit").await;
    j.choose("kind", "lookup").await;
    j.follow("form.filters button").await;
    assert!(j.path().await.contains("type=lookup"));
    j.check("audit-filtered").await;
    let href =
        j.client.find(Locator::Css("a[href^='/audit/export.csv']")).await.unwrap().attr("href").await.unwrap().unwrap();
    let cookie =
        j.client.get_all_cookies().await.unwrap().into_iter().find(|c| c.name().contains("locator-session")).unwrap();
    let csv = reqwest::Client::new()
        .get(j.app.url(&href))
        .header("cookie", format!("{}={}", cookie.name(), cookie.value()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("id,at,type") && csv.contains("front-door-triage"), "{csv}");
    j.go("/audit/anomalies").await;
    j.check("anomalies").await;
    j.go("/audit/subject-access").await;
    j.check("subject-access-form").await;
    j.fill("nhs_number", "9434765919").await;
    j.follow("form[action='/audit/subject-access'] button").await;
    assert!(j.text().await.contains("Held by"), "{}", j.text().await);
    j.check("subject-access-answer").await;
    j.sign_out().await;
    j.check("signed-out").await;

    // The checker itself can fail: an input without a label is reported as critical.
    j.client
        .execute("document.querySelector('main').insertAdjacentHTML('beforeend', '<input id=\"bare\">');", vec![])
        .await
        .unwrap();
    let found = j.axe_violations().await;
    assert!(found.to_string().contains("\"label\""), "axe-core finds an unlabelled input: {found}");
}
