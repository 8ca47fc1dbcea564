//! The duty desk's journeys (issue 23) in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`), driven over WebDriver, twice: with JavaScript on, and with it off (the
//! pages have no script, so everything must work the same). Sign in, look up (keyboard only,
//! keys counted), reload and Back (no second lookup), request the record, a second request leads
//! to the first, the holder acknowledges, an org-admin uploads a caseload and issues a token
//! (reloaded: no second token) and revokes it after a confirmation, an IG officer searches,
//! charts and exports the audit trail and runs a subject access search (reloaded: no second
//! search), the requester withdraws after a confirmation, sign out and Back.
//!
//! Every page, in both passes: a screenshot at 1280 px and at 375 px in target/ui-screenshots/;
//! no internal term in its text (snake_case words, `subject.`); at 375 px the document is no
//! wider than the screen, measured by the browser's own layout (DevTools'
//! `Page.getLayoutMetrics`, which needs no page script, so it runs in both passes); and, with
//! JavaScript on, axe-core: no serious or critical violation.
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
use fantoccini::wd::WebDriverCompatibleCommand;
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

/// A DevTools command through chromedriver (`goog/cdp/execute`): the phone-sized viewport and
/// the page's layout size, neither of which needs the page's own JavaScript.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (axum::http::Method::POST, Some(json!({"cmd": self.cmd, "params": self.params}).to_string()))
    }
}

/// The two passes: the same journeys with JavaScript on (axe-core runs there) and off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Script,
    NoScript,
}

impl Pass {
    fn name(self) -> &'static str {
        match self {
            Pass::Script => "js",
            Pass::NoScript => "nojs",
        }
    }
}

/// The phone width the pages must fit (an iPhone's 375 CSS pixels).
const PHONE_WIDTH: u32 = 375;

/// Words that are internal terms, not words a person uses: snake_case (`request_state_changed`)
/// and API field paths (`subject.nhs_number`).
fn internal_terms(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .map(|w| w.trim_matches('.'))
        .filter(|w| {
            let snake = w.contains('_')
                && w.split('_').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase()));
            snake || w.contains("subject.")
        })
        .map(str::to_string)
        .collect()
}

/// Keys a person presses on a journey, counted as the test sends them.
#[derive(Default)]
struct Keys {
    counted: Vec<(&'static str, usize)>,
}

/// The browser, the app, and the checks every page gets.
struct Journey {
    client: Client,
    app: TestApp,
    pass: Pass,
    axe: String,
    shots: PathBuf,
    count: usize,
    pages_checked: Vec<String>,
    keys: Keys,
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

    /// Waits (bounded) until `old` (the previous page's root) is gone and the next page is in.
    async fn next_page(&self, old: fantoccini::elements::Element) {
        for _ in 0..400 {
            if old.tag_name().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.settle("footer").await;
    }

    /// Clicks a button or link that loads another page, and waits (bounded) until it has.
    async fn follow(&self, css: &str) {
        let old = self.client.find(Locator::Css("html")).await.expect("page");
        self.click(css).await;
        self.next_page(old).await;
    }

    async fn reload(&self) {
        let old = self.client.find(Locator::Css("html")).await.expect("page");
        self.client.refresh().await.expect("reload");
        self.next_page(old).await;
    }

    async fn back(&self) {
        let old = self.client.find(Locator::Css("html")).await.expect("page");
        self.client.back().await.expect("back");
        self.next_page(old).await;
    }

    /// Presses keys on whatever has the focus, counting each as a person's keystroke: a
    /// character is one, a named key ("\u{E004}" Tab, "\u{E007}" Enter) is one.
    async fn press(&mut self, journey: &'static str, keys: &str) {
        let n = keys.chars().count();
        self.client.active_element().await.expect("focus").send_keys(keys).await.expect("keys");
        self.count_keys(journey, n);
    }

    fn count_keys(&mut self, journey: &'static str, n: usize) {
        match self.keys.counted.iter_mut().find(|(j, _)| *j == journey) {
            Some((_, total)) => *total += n,
            None => self.keys.counted.push((journey, n)),
        }
    }

    fn keys_of(&self, journey: &str) -> usize {
        self.keys.counted.iter().find(|(j, _)| *j == journey).map_or(0, |(_, n)| *n)
    }

    /// Presses Tab until `css` has the focus (at most 40 times), counting each press.
    async fn tab_to(&mut self, journey: &'static str, css: &str) {
        let target = self.client.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("{css} on the page"));
        for _ in 0..40 {
            let active = self.client.active_element().await.expect("focus");
            if active.element_id() == target.element_id() {
                return;
            }
            self.press(journey, "\u{E004}").await;
        }
        panic!("Tab never reached {css}");
    }

    /// Waits (bounded) until `css` has the focus, as `autofocus` gives it once the page is in.
    async fn focused(&self, css: &str) {
        let target = self.client.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("{css} on the page"));
        for _ in 0..400 {
            if self.client.active_element().await.is_ok_and(|a| a.element_id() == target.element_id()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{css} never had the focus");
    }

    async fn cdp(&self, cmd: &'static str, params: Value) -> Value {
        self.client.issue_cmd(Cdp { cmd, params }).await.unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }

    /// A screenshot of the whole page, not only the window (DevTools, beyond the viewport).
    async fn full_page_png(&self) -> Vec<u8> {
        use base64::Engine as _;
        let size = self.cdp("Page.getLayoutMetrics", json!({})).await["cssContentSize"].clone();
        let clip = json!({"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1});
        let shot = self.cdp("Page.captureScreenshot", json!({"captureBeyondViewport": true, "clip": clip})).await;
        base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().expect("png data")).expect("base64")
    }

    async fn count_events(&self, kind: &str) -> usize {
        self.app.audit_bodies().await.iter().filter(|e| e["type"] == kind).count()
    }

    /// Every page: no internal term, screenshots at full and phone width, nothing wider than the
    /// phone's screen, and (JavaScript on) axe-core's serious and critical violations: none.
    async fn check(&mut self, name: &str) {
        self.count += 1;
        let shot = format!("{}-{:02}-{name}", self.pass.name(), self.count);
        let mut text = self.text().await;
        // Text set as code is technical on purpose (the caseload file's column names, a lookup
        // reference): the scan reads the words around it.
        for code in self.client.find_all(Locator::Css("code")).await.expect("code") {
            let shown = code.text().await.unwrap_or_default();
            if !shown.is_empty() {
                text = text.replace(&shown, " ");
            }
        }
        let terms = internal_terms(&text);
        assert!(terms.is_empty(), "{shot}: internal terms on the page: {terms:?}\n{text}");
        let png = self.full_page_png().await;
        std::fs::write(self.shots.join(format!("{shot}.png")), png).expect("save screenshot");

        // The phone: DevTools' device metrics, then the layout's own width of the content.
        let phone = json!({"width": PHONE_WIDTH, "height": 812, "deviceScaleFactor": 1, "mobile": true});
        self.cdp("Emulation.setDeviceMetricsOverride", phone).await;
        let metrics = self.cdp("Page.getLayoutMetrics", json!({})).await;
        let width = metrics["cssContentSize"]["width"].as_f64().expect("content width");
        let png = self.full_page_png().await;
        std::fs::write(self.shots.join(format!("{shot}-{PHONE_WIDTH}.png")), png).expect("save screenshot");
        if self.pass == Pass::Script {
            // The same measure as the page sees it, where a script may run.
            let seen = self
                .client
                .execute("return [document.documentElement.scrollWidth, document.documentElement.clientWidth];", vec![])
                .await
                .expect("widths");
            assert!(seen[0].as_f64() <= seen[1].as_f64(), "{shot}: scrollWidth {seen} at {PHONE_WIDTH} px");
        }
        self.cdp("Emulation.clearDeviceMetricsOverride", json!({})).await;
        assert!(width <= f64::from(PHONE_WIDTH), "{shot}: {width} px wide at {PHONE_WIDTH} px: scrolls sideways");

        if self.pass == Pass::Script {
            let violations = self.axe_violations().await;
            let serious: Vec<&Value> = violations
                .as_array()
                .expect("a list")
                .iter()
                .filter(|v| matches!(v["impact"].as_str(), Some("serious") | Some("critical")))
                .collect();
            let all: Vec<&str> = violations.as_array().into_iter().flatten().filter_map(|v| v["id"].as_str()).collect();
            eprintln!("{shot}: axe-core: {} serious or critical; all kinds found: {all:?}", serious.len());
            assert!(
                serious.is_empty(),
                "{shot}: accessibility violations {}",
                serde_json::to_string_pretty(&serious).unwrap()
            );
        }
        self.pages_checked.push(shot);
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

    /// Signs in as a person does: the token field has the focus, paste, Enter. The test types
    /// the token (there is no clipboard in headless Chromium) and counts the paste as Ctrl+V.
    async fn sign_in(&mut self, token: &str) {
        self.go("/sign-in").await;
        self.focused("#token").await;
        let old = self.client.find(Locator::Css("html")).await.expect("page");
        self.client.active_element().await.expect("focus").send_keys(token).await.expect("paste");
        // Counted once: the journey's own sign-in (later ones are other people's).
        let counting = self.keys_of("sign-in") == 0;
        if counting {
            self.count_keys("sign-in", 2);
        }
        let enter = self.client.active_element().await.expect("focus");
        enter.send_keys("\u{E007}").await.expect("Enter");
        if counting {
            self.count_keys("sign-in", 1);
        }
        self.next_page(old).await;
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

/// The documented total of a journey in docs/ui.md's keystroke table: "| **Total …** | **N keystrokes…".
fn documented_keys(journey: &str) -> Option<usize> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ui.md")).ok()?;
    let line = doc.lines().find(|l| l.starts_with(&format!("| **{journey}**")))?;
    let cell = line.split('|').nth(2)?;
    cell.trim().trim_start_matches("**").split(' ').next()?.parse().ok()
}

struct Tokens {
    worker: String,
    north_admin: String,
    north_ig: String,
    south_admin: String,
}

async fn start_pass(pass: Pass, axe: &str) -> (Driver, Journey, Tokens) {
    let driver_path = which(CHROMEDRIVER).expect("chromedriver");
    let chromium = CHROMIUM.iter().map(PathBuf::from).find(|p| p.is_file()).expect("chromium");
    let app = TestApp::start(Engine::Sqlite).await;
    let north = app.org("E06000001", "local-authority").await;
    let south = app.org("E06000002", "local-authority").await;
    let tokens = Tokens {
        worker: app.token(&north, Role::Practitioner).await,
        north_admin: app.token(&north, Role::OrgAdmin).await,
        north_ig: app.token(&north, Role::IgOfficer).await,
        south_admin: app.token(&south, Role::OrgAdmin).await,
    };
    let holding = json!({"category": "child-protection-plan", "status": "open",
        "subject": {"nhs_number": "9434765919", "given_name": "Ruby", "family_name": "Fletcher", "date_of_birth": "2016-04-12"},
        "contact": {"team": "Front Door", "phone": "01632 960002",
            "email": "front.door.children.and.families.service@southborough-council.test.invalid"}});
    assert!(app.put(&tokens.south_admin, "/api/v1/holdings/SB-1001", &holding).await.0.is_success());

    // Two TLS back ends are linked (reqwest's and fantoccini's): say which one to use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let driver = Driver::start(&driver_path);
    let mut args =
        vec!["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"];
    if pass == Pass::NoScript {
        // Pages' scripts off (WebDriver's and DevTools' own commands still run).
        args.push("--blink-settings=scriptEnabled=false");
    }
    let caps = json!({"goog:chromeOptions": {"binary": chromium, "args": args}});
    let client = ClientBuilder::rustls()
        .expect("tls")
        .capabilities(caps.as_object().unwrap().clone())
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("chromedriver session");
    let journey = Journey {
        client,
        app,
        pass,
        axe: axe.to_string(),
        shots: screenshot_dir(),
        count: 0,
        pages_checked: Vec::new(),
        keys: Keys::default(),
    };
    (driver, journey, tokens)
}

#[suite::test(requires = browser_available)]
async fn the_duty_desks_journeys_work_with_and_without_javascript_at_any_width() {
    let axe = axe_source().expect("axe-core");
    let mut report = String::new();
    for pass in [Pass::Script, Pass::NoScript] {
        let (driver, mut j, tokens) = start_pass(pass, &axe).await;
        // Close the browser whatever happened, then report.
        let outcome = AssertUnwindSafe(journeys(&mut j, &tokens)).catch_unwind().await;
        let _ = j.client.clone().close().await;
        drop(driver);
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
        eprintln!("{pass:?}: checked {} pages: {:?}", j.pages_checked.len(), j.pages_checked);
        for (journey, n) in &j.keys.counted {
            report.push_str(&format!("{}\t{journey}\t{n}\n", pass.name()));
        }
    }
    let shots = screenshot_dir();
    std::fs::write(shots.join("keystrokes.tsv"), &report).expect("keystroke report");
    eprintln!("keystrokes measured (pass, journey, keys):\n{report}screenshots in {}", shots.display());
}

async fn journeys(j: &mut Journey, t: &Tokens) {
    let pass = j.pass;
    // The pass is what it says: a page's own script runs only with JavaScript on.
    j.client
        .goto("data:text/html,<p id=p>off</p><script>document.getElementById('p').textContent='on'</script>")
        .await
        .expect("a page with a script");
    let ran = j.client.find(Locator::Id("p")).await.unwrap().text().await.unwrap();
    assert_eq!(ran, if pass == Pass::Script { "on" } else { "off" }, "{pass:?}: page scripts");
    // Sign in, with a wrong token first.
    j.go("/sign-in").await;
    j.check("sign-in").await;
    j.sign_in(&format!("clk_{}", "Z".repeat(43))).await;
    assert!(j.text().await.contains("There is a problem"));
    j.check("sign-in-error").await;
    j.keys = Keys::default();
    j.sign_in(&t.worker).await;
    assert_eq!(j.path().await, "/lookup", "a practitioner lands on the lookup form: {}", j.text().await);

    // The fast journey, keyboard only, as counted in docs/ui.md: the purpose list has the focus,
    // "f" chooses front door triage, Tab Tab reaches the NHS number, ten digits, Enter.
    j.focused("#purpose").await;
    let old = j.client.find(Locator::Css("html")).await.unwrap();
    for k in ["f", "\u{E004}", "\u{E004}", "9434765919", "\u{E007}"] {
        j.press("lookup by NHS number", k).await;
    }
    j.next_page(old).await;
    assert!(j.text().await.contains("Known to 1 organisation"), "{pass:?}: {}", j.text().await);
    let nhs_keys = j.keys_of("sign-in") + j.keys_of("lookup by NHS number");
    j.count_keys("sign-in and lookup by NHS number", nhs_keys);
    assert_eq!(Some(nhs_keys), documented_keys("Total"), "{pass:?}: docs/ui.md's count is the one measured");
    j.check("lookup-answer-fast").await;

    // Reload and Back: the answer again, never a second lookup.
    let answer_at = j.path().await;
    assert!(answer_at.starts_with("/lookups/"), "{answer_at}");
    assert_eq!(j.count_events("lookup").await, 1);
    j.reload().await;
    assert!(j.text().await.contains("Known to 1 organisation"));
    j.back().await;
    assert_eq!(j.path().await, "/lookup", "{pass:?}: Back goes to the form, not a resubmission");
    assert_eq!(j.count_events("lookup").await, 1, "{pass:?}: reload and Back repeat no lookup");
    j.check("lookup-form").await;

    // By name and date of birth, keyboard only, keys counted (from a fresh form: the focus is
    // where `autofocus` puts it on a page load, which Back does not repeat).
    j.go("/lookup").await;
    j.focused("#purpose").await;
    let old = j.client.find(Locator::Css("html")).await.unwrap();
    j.press("lookup by name", "f").await;
    j.tab_to("lookup by name", "#given_name").await;
    j.press("lookup by name", "Ruby").await;
    j.tab_to("lookup by name", "#family_name").await;
    j.press("lookup by name", "Fletcher").await;
    j.tab_to("lookup by name", "#dob_day").await;
    j.press("lookup by name", "12").await;
    j.tab_to("lookup by name", "#dob_month").await;
    j.press("lookup by name", "4").await;
    j.tab_to("lookup by name", "#dob_year").await;
    j.press("lookup by name", "2016\u{E007}").await;
    j.next_page(old).await;
    assert!(j.text().await.contains("Known to 1 organisation"), "{pass:?}: {}", j.text().await);
    assert_eq!(Some(j.keys_of("lookup by name")), documented_keys("By name"), "{pass:?}: docs/ui.md");
    assert!(j.text().await.contains("Could a record have been missed?"), "{pass:?}: the advice to widen");
    j.check("lookup-answer-by-name").await;

    // A family without a script: "Add a parent or carer" brings the form back a block longer.
    j.go("/lookup").await;
    j.follow("button[value='carer']").await;
    assert!(j.client.find(Locator::Id("carer0-nhs_number")).await.is_ok(), "{pass:?}: the carer's block");
    assert_eq!(j.count_events("lookup").await, 2, "{pass:?}: adding a block looks nothing up");
    j.check("lookup-form-with-carer").await;

    // A child not known: who takes part in the child's area, what to do next.
    j.go("/lookup").await;
    j.choose("purpose", "s47-enquiry").await;
    j.fill("given_name", "Oliver").await;
    j.fill("family_name", "Nowak").await;
    j.fill("dob_day", "4").await;
    j.fill("dob_month", "4").await;
    j.fill("dob_year", "2015").await;
    j.fill("postcode", "SO14 3AA").await;
    j.follow("form[action='/lookup'] button").await;
    let unknown = j.text().await;
    assert!(unknown.contains("Not known to participating organisations"), "{pass:?}: {unknown}");
    assert!(unknown.contains("Who takes part in the child's area") && unknown.contains("What to do next"));
    assert!(!unknown.contains("SO14") && !unknown.contains("Oliver"), "{pass:?}: nothing typed is shown back");
    j.check("lookup-not-known").await;

    // A lookup with a mistake, then the right one: NHS number with spaces, date as three fields.
    j.go("/lookup").await;
    j.choose("purpose", "front-door-triage").await;
    j.fill("nhs_number", "943 476 591").await;
    j.follow("form[action='/lookup'] button").await;
    assert!(j.text().await.contains("There is a problem"));
    j.check("lookup-error").await;
    j.fill("nhs_number", "943 476 5919").await;
    j.fill("dob_day", "12").await;
    j.fill("dob_month", "4").await;
    j.fill("dob_year", "2016").await;
    j.fill("case_ref", "CS-2026/117").await;
    j.follow("form[action='/lookup'] button").await;
    let answer = j.text().await;
    assert!(answer.contains("Known to 1 organisation"), "{answer}");
    assert!(answer.contains("01632 960002") && answer.contains("front.door.children.and.families"));
    j.check("lookup-answer").await;
    let answer_at = j.path().await;

    // Request the record, keyboard only from the answer: Tab to "Request this record", Enter;
    // the legal basis has the focus (Down: section 47), Tab to the reason, Tab to the urgency
    // (Space: immediate), Tab to the button, Enter. The reason's own letters are counted apart.
    let old = j.client.find(Locator::Css("html")).await.unwrap();
    j.tab_to("request", "a[href^='/requests/new']").await;
    j.press("request", "\u{E007}").await;
    j.next_page(old).await;
    j.check("request-form").await;
    j.focused("#legal_basis").await;
    j.press("request", "\u{E015}").await;
    j.tab_to("request", "#reason").await;
    let reason = "Strategy discussion today: need the chronology";
    j.client.active_element().await.unwrap().send_keys(reason).await.unwrap();
    j.count_keys("request: the reason typed", reason.chars().count());
    j.tab_to("request", "#urgency").await;
    j.press("request", " ").await;
    let old = j.client.find(Locator::Css("html")).await.unwrap();
    j.tab_to("request", "form[action='/requests'] button").await;
    j.press("request", "\u{E007}").await;
    j.next_page(old).await;
    assert!(j.text().await.contains("Request sent"), "{pass:?}: {}", j.text().await);
    assert_eq!(Some(j.keys_of("request")), documented_keys("Request"), "{pass:?}: docs/ui.md");
    j.check("request-sent").await;
    let request_at = j.path().await;
    j.reload().await;
    assert_eq!(j.count_events("request_created").await, 1, "{pass:?}: a reload sends no second request");

    // A second request for the same record (a colleague's reflex) leads to the first.
    j.go(&answer_at).await;
    j.follow("a[href^='/requests/new']").await;
    j.follow("form[action='/requests'] button").await;
    assert!(j.text().await.contains("There is a problem"));
    j.check("request-form-error").await;
    j.choose("legal_basis", "ca1989-s47").await;
    j.fill("reason", "Strategy discussion again").await;
    j.click("#urgency").await;
    j.follow("form[action='/requests'] button").await;
    assert!(j.text().await.contains("already has an open request"), "{pass:?}: {}", j.text().await);
    assert_eq!(j.path().await.split('?').next(), request_at.split('?').next(), "{pass:?}: the first request");
    assert_eq!(j.count_events("request_created").await, 1, "{pass:?}: still one request");
    j.check("request-again").await;

    j.go("/requests").await;
    let requests = j.text().await;
    assert!(requests.contains("CS-2026/117"), "{pass:?}: our case reference: {requests}");
    assert!(requests.contains("GMT") || requests.contains("BST"), "{pass:?}: UK times: {requests}");
    assert!(!requests.contains(" UTC"), "{pass:?}: {requests}");
    j.check("requests-mine").await;
    j.go("/directory").await;
    j.fill("q", "organisation e06000002").await;
    j.follow("form[action='/directory'] button").await;
    assert!(j.text().await.contains("E06000002 Test Organisation"), "{pass:?}: words in any order");
    j.check("directory").await;
    j.fill("q", "+44 1632 960999").await;
    j.follow("form[action='/directory'] button").await;
    assert!(j.text().await.contains("E06000001 Test Organisation"), "{pass:?}: a phone number, any spacing");
    j.sign_out().await;
    // Back after signing out: the sign-in page, and no lookup repeated.
    j.back().await;
    assert_eq!(j.path().await, "/sign-in", "{pass:?}: signed out means signed out");
    assert_eq!(j.count_events("lookup").await, 4, "{pass:?}: four lookups made, none repeated");
    j.go("/no/such/page").await;
    assert!(j.text().await.contains("Page not found"), "{pass:?}: {}", j.text().await);
    j.check("not-found").await;

    // The holder: its start page, then acknowledges.
    j.sign_in(&t.south_admin).await;
    let start = j.text().await;
    assert!(start.contains("Needs attention") && start.contains("1 request to us waiting"), "{pass:?}: {start}");
    j.check("start-admin").await;
    j.go("/requests").await;
    j.check("requests-inbox").await;
    j.follow("table a[href^='/requests/']").await;
    let holder_view = j.text().await;
    assert!(holder_view.contains("SB-1001"), "{pass:?}: the holder sees its own record reference");
    assert!(
        holder_view.contains("01632 960999") && holder_view.contains("duty@e06000001.test.invalid"),
        "{pass:?}: the requester's phone and secure email: {holder_view}"
    );
    j.check("request-holder").await;
    j.follow("form[action$='/acknowledge'] button").await;
    assert!(j.text().await.contains("Requested → Acknowledged"), "{pass:?}: history from → to: {}", j.text().await);
    j.check("request-acknowledged").await;
    // "Record sent" without saying how: the error at the field, nothing changed.
    j.follow("form[action$='/fulfil'] button").await;
    assert!(j.text().await.contains("There is a problem"), "{pass:?}: {}", j.text().await);
    j.check("request-fulfil-error").await;
    j.go("/matches").await;
    j.check("matches").await;
    j.sign_out().await;

    // The org-admin uploads a caseload, issues a token (reloaded: still one) and revokes it.
    j.sign_in(&t.north_admin).await;
    j.check("start-admin-north").await;
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
    j.check("users").await;
    j.fill("name", "Casey Temp").await;
    j.choose("role", "practitioner").await;
    j.follow("form[action='/users'] button").await;
    assert!(j.text().await.contains("Token issued for Casey Temp"));
    j.check("users-token-issued").await;
    let issued = j.count_events("token_issued").await;
    j.reload().await;
    assert!(j.text().await.contains("shown once"), "{pass:?}: {}", j.text().await);
    assert_eq!(j.count_events("token_issued").await, issued, "{pass:?}: a reload issues no second token");
    // Revoking asks first, on a page of its own (Casey's link, not a colleague's).
    let old = j.client.find(Locator::Css("html")).await.unwrap();
    j.client
        .find(Locator::XPath("//a[contains(@href, '/revoke') and contains(., 'Casey Temp')]"))
        .await
        .expect("Casey's revoke link")
        .click()
        .await
        .expect("click");
    j.next_page(old).await;
    assert!(j.text().await.contains("cannot be undone"), "{}", j.text().await);
    j.check("users-revoke-confirm").await;
    j.follow("form[action$='/revoke'] button").await;
    assert!(j.text().await.to_lowercase().contains("revoked"));
    j.check("users-revoked").await;
    j.sign_out().await;

    // The IG officer: start page, audit search, chart, export, anomalies, subject access.
    j.sign_in(&t.north_ig).await;
    assert!(j.text().await.contains("flagged for review"), "{pass:?}: {}", j.text().await);
    j.check("start-ig").await;
    j.go("/audit").await;
    assert!(j.client.find(Locator::Css("svg.chart")).await.is_ok(), "the chart is drawn");
    j.check("audit").await;
    j.choose("kind", "lookup").await;
    let practitioner = j
        .client
        .find(Locator::XPath("//select[@id='user']/option[contains(., 'practitioner E06000001')]"))
        .await
        .expect("the user filter is a choice of names");
    practitioner.click().await.expect("choose the practitioner");
    j.follow("form.filters button").await;
    assert!(j.path().await.contains("type=lookup"));
    assert!(j.text().await.contains("practitioner E06000001"), "{pass:?}: {}", j.text().await);
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
    assert!(j.path().await.starts_with("/audit/subject-access/"), "{pass:?}: its own address");
    j.check("subject-access-answer").await;
    j.reload().await;
    assert!(j.text().await.contains("Held by"));
    assert_eq!(j.count_events("subject_access").await, 1, "{pass:?}: a reload is not a second search");
    j.sign_out().await;

    // The requester, again: its own organisation now holds Ruby too (the upload above), so its
    // own card comes last, marked; then it withdraws the request, after a confirmation.
    j.sign_in(&t.worker).await;
    j.go("/lookup").await;
    j.choose("purpose", "s47-enquiry").await;
    j.fill("nhs_number", "9434765919").await;
    j.follow("form[action='/lookup'] button").await;
    let both = j.text().await;
    let (other, own) = (both.find("E06000002 Test Organisation"), both.find("Your own organisation holds this record"));
    assert!(other.is_some() && own.is_some() && other < own, "{pass:?}: others first, ours last: {both}");
    j.check("lookup-answer-own-last").await;
    j.go(&request_at).await;
    assert!(j.text().await.contains("Withdraw our request"), "{pass:?} {request_at}: {}", j.text().await);
    j.follow("a[href$='/withdraw']").await;
    assert!(j.text().await.contains("Withdraw this request?"), "{pass:?}: {}", j.text().await);
    j.check("request-withdraw-confirm").await;
    j.follow("form[action$='/withdraw'] button").await;
    assert!(j.text().await.contains("Request withdrawn"), "{pass:?}: {}", j.text().await);
    j.check("request-withdrawn").await;
    j.sign_out().await;
    j.check("signed-out").await;

    if pass == Pass::Script {
        // The checker itself can fail: an input without a label is reported as critical.
        j.client
            .execute("document.querySelector('main').insertAdjacentHTML('beforeend', '<input id=\"bare\">');", vec![])
            .await
            .unwrap();
        let found = j.axe_violations().await;
        assert!(found.to_string().contains("\"label\""), "axe-core finds an unlabelled input: {found}");
    }
}

#[suite::test]
fn the_internal_term_scan_finds_snake_case_and_field_paths_but_not_ids_or_words() {
    assert_eq!(internal_terms("Event: request_state_changed."), vec!["request_state_changed"]);
    assert_eq!(internal_terms("Check subject.nhs_number here"), vec!["subject.nhs_number"]);
    assert!(internal_terms("Lookup reference: lk_01J9ZX3Q. Token clk_Ab9x_yzQ, front-door e-mail.").is_empty());
}
