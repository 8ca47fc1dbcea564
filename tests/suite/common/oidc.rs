//! A real OpenID provider for the tests (the certified `oidc-provider` package, run by
//! tests/oidc/provider.mjs on a free port with keys of its own), and a browser's side of the
//! sign-in without a browser: an HTTP client that follows redirects by hand and keeps each
//! host's cookies.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use child_locator::domain::identity_provider::{ProviderInput, RoleMapping};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use super::TestApp;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// node and the provider package (`npm ci` in tests/oidc) must be there; the harness reports the
/// tests skipped otherwise (failed in CI).
pub fn provider_available() -> Result<(), String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Err("node is not installed (install nodejs and npm, and run `npm ci` in tests/oidc)".into());
    }
    if !dir().join("node_modules/oidc-provider/package.json").is_file() {
        return Err("oidc-provider is not installed in tests/oidc (run `npm ci` there)".into());
    }
    Ok(())
}

/// The provider process, stopped when dropped.
pub struct IdP {
    child: Child,
    pub issuer: String,
    http: reqwest::Client,
}

/// A client registered at the provider: id, secret, and the app it sends people back to.
pub fn client(id: &str, secret: &str, app: &TestApp) -> Value {
    json!({
        "client_id": id, "client_secret": secret,
        "redirect_uris": [app.url("/sign-in/provider/callback")],
        "post_logout_redirect_uris": [app.url("/sign-in")],
    })
}

impl IdP {
    pub fn start(clients: &[Value]) -> IdP {
        let mut child = Command::new("node")
            .arg(dir().join("provider.mjs"))
            .env("OIDC_CLIENTS", Value::from(clients.to_vec()).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts the provider");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        stdout.read_line(&mut line).expect("the provider's first line");
        // Keep reading what it prints: a closed pipe would kill it at its next line.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let first: Value = serde_json::from_str(&line).expect("the provider says its issuer");
        let issuer = first["issuer"].as_str().expect("issuer").to_string();
        IdP { child, issuer, http: reqwest::Client::new() }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self.http.post(format!("{}{path}", self.issuer)).body(body.to_string()).send().await.expect("provider");
        assert!(r.status().is_success(), "the provider refused {path}");
        r.json().await.expect("json")
    }

    /// A person the provider knows, with their claims.
    pub async fn account(&self, sub: &str, claims: Value) {
        self.post("/test/account", json!({"sub": sub, "claims": claims})).await;
    }

    /// Who signs in at the provider next (each sign-in there is this person, until changed).
    pub async fn login_as(&self, sub: &str) {
        self.post("/test/login", json!({"sub": sub})).await;
    }

    /// A new signing key; the old one is gone from the provider's key set.
    pub async fn rotate_keys(&self) -> String {
        self.post("/test/rotate", json!({})).await["kid"].as_str().expect("kid").to_string()
    }

    /// `{"idTokenTtl": secs}` and/or `{"conformIdTokenClaims": bool}`.
    pub async fn configure(&self, settings: Value) {
        self.post("/test/config", settings).await;
    }
}

impl Drop for IdP {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sets `org_code`'s provider as an operator would (a practitioner for `sw`, an IG officer for
/// `ig`, an org-admin for `admins`; groups from the `groups` scope).
pub async fn configure_org(app: &TestApp, idp: &IdP, org_code: &str, client_id: &str, secret: &str) {
    let input = ProviderInput {
        label: Some("Test Identity Provider".into()),
        issuer: Some(idp.issuer.clone()),
        client_id: Some(client_id.into()),
        client_secret: Some(secret.into()),
        scopes: Some("profile email groups".into()),
        roles: RoleMapping {
            practitioner: vec!["sw".into()],
            ig_officer: vec!["ig".into()],
            org_admin: vec!["admins".into()],
        },
        ..ProviderInput::default()
    };
    app.state.set_identity_provider(None, org_code, input).await.expect("provider set");
}

/// The app's manual clock moved to now: the provider's tokens carry real times.
pub fn clock_to_now(app: &TestApp) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis() as i64;
    let behind = now - app.clock.now_ms();
    if behind > 0 {
        app.clock.advance_ms(behind);
    }
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
    pub url: String,
}

/// One browser: cookies by host and port, redirects followed by hand.
#[derive(Default)]
pub struct Browser {
    jar: HashMap<String, Vec<(String, String)>>,
}

fn host_of(url: &str) -> String {
    let u = url::Url::parse(url).expect("url");
    format!("{}:{}", u.host_str().unwrap_or(""), u.port_or_known_default().unwrap_or(0))
}

impl Browser {
    pub async fn get(&mut self, url: &str) -> Page {
        let request = super::web::no_redirects().get(url);
        self.send(url, request).await
    }

    pub async fn post_form(&mut self, url: &str, fields: &[(&str, &str)]) -> Page {
        let origin = url::Url::parse(url).expect("url").origin().ascii_serialization();
        let request = super::web::no_redirects().post(url).header("origin", origin).form(fields);
        self.send(url, request).await
    }

    /// Sends with this browser's cookies for the host, keeps the ones it sets, and reads the page
    /// (a redirect's location made absolute).
    async fn send(&mut self, url: &str, mut request: reqwest::RequestBuilder) -> Page {
        let host = host_of(url);
        let cookies =
            self.jar.get(&host).map(|c| c.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "));
        if let Some(cookies) = cookies.filter(|c| !c.is_empty()) {
            request = request.header(COOKIE, cookies);
        }
        let response = request.send().await.expect("request");
        self.keep_cookies(&host, response.headers());
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| url::Url::parse(url).expect("url").join(l).expect("location").to_string());
        Page { status, location, body: response.text().await.expect("body"), url: url.to_string() }
    }

    fn keep_cookies(&mut self, host: &str, headers: &reqwest::header::HeaderMap) {
        let jar = self.jar.entry(host.to_string()).or_default();
        for line in headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let Some((name, value)) = line.split(';').next().and_then(|kv| kv.trim().split_once('=')) else { continue };
            jar.retain(|(n, _)| n != name);
            let expired = line.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
            if !expired {
                jar.push((name.to_string(), value.to_string()));
            }
        }
    }

    /// The cookie `name` this browser holds for the app, if any.
    pub fn cookie(&self, app: &TestApp, name: &str) -> Option<String> {
        self.jar.get(&host_of(&app.base))?.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }

    /// Starts a sign-in for `org_code` and follows the provider's redirects until it sends the
    /// browser back: the callback URL (with `code` and `state`), not yet opened.
    pub async fn until_callback(&mut self, app: &TestApp, org_code: &str) -> String {
        let mut url = app.url(&format!("/sign-in/provider/start?org={org_code}"));
        for _ in 0..10 {
            let page = self.get(&url).await;
            assert!(page.status.is_redirection(), "{} answered {}: {}", page.url, page.status, page.body);
            url = page.location.expect("a redirect has a location");
            if url.starts_with(&app.url("/sign-in/provider/callback")) {
                return url;
            }
        }
        panic!("the provider never sent the browser back");
    }

    /// The whole sign-in: the callback's page.
    pub async fn sign_in(&mut self, app: &TestApp, org_code: &str) -> Page {
        let callback = self.until_callback(app, org_code).await;
        self.get(&callback).await
    }
}

/// A parameter of a URL's query.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url).ok()?.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}
