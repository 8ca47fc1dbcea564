//! A browser's side of the web pages without a browser: sign in with a token, keep the session
//! cookie, read the CSRF token from a page, post forms. Redirects are not followed, so tests see
//! each 303 and where it points.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use super::TestApp;

pub struct WebSession {
    pub http: reqwest::Client,
    pub base: String,
    /// `name=value` of the session cookie.
    pub cookie: String,
    /// The full Set-Cookie line the sign-in answered with (flags included).
    pub set_cookie: String,
    pub csrf: String,
}

pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// The value of the first hidden `csrf` field on a page.
pub fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(html[at..].split('"').next()?.to_string())
}

/// `name=value` of a Set-Cookie line.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or("").trim().to_string()
}

pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let location = headers.get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    Answer { status, location, headers, body: response.text().await.expect("body") }
}

/// Opens the sign-in page and posts the token, as a browser would. Returns the raw answer and
/// the pre-session cookie, for tests about sign-in itself.
pub async fn post_sign_in(app: &TestApp, token: &str, extra_headers: &[(&str, &str)]) -> Answer {
    let http = no_redirects();
    let mut form = http.get(app.url("/sign-in"));
    for (name, value) in extra_headers {
        form = form.header(*name, *value); // a browser behind the same proxy on every request
    }
    let form = form.send().await.expect("sign-in page");
    let pre =
        form.headers().get(SET_COOKIE).and_then(|v| v.to_str().ok()).map(cookie_pair).expect("pre-session cookie");
    let csrf = csrf_of(&form.text().await.expect("page")).expect("csrf on the sign-in form");
    let mut request =
        http.post(app.url("/sign-in")).header(COOKIE, pre).form(&[("csrf", csrf.as_str()), ("token", token)]);
    for (name, value) in extra_headers {
        request = request.header(*name, *value);
    }
    answer(request.send().await.expect("sign in")).await
}

impl WebSession {
    pub async fn sign_in(app: &TestApp, token: &str) -> WebSession {
        Self::sign_in_with(app, token, &[]).await
    }

    pub async fn sign_in_with(app: &TestApp, token: &str, headers: &[(&str, &str)]) -> WebSession {
        let signed = post_sign_in(app, token, headers).await;
        assert_eq!(signed.status, StatusCode::SEE_OTHER, "sign-in answers a redirect: {}", signed.body);
        let set_cookie = signed
            .headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.contains("locator-session="))
            .expect("a session cookie")
            .to_string();
        let mut session = WebSession {
            http: no_redirects(),
            base: app.base.clone(),
            cookie: cookie_pair(&set_cookie),
            set_cookie,
            csrf: String::new(),
        };
        let home = session.get("/").await;
        session.csrf = csrf_of(&home.body).expect("the start page carries the sign-out form's csrf");
        session
    }

    pub async fn get(&self, path: &str) -> Answer {
        let response =
            self.http.get(format!("{}{path}", self.base)).header(COOKIE, &self.cookie).send().await.expect("get");
        answer(response).await
    }

    /// Posts a form with this session's CSRF token first.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut form = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        self.post_raw(path, &form).await
    }

    /// Posts exactly these fields (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .form(fields)
            .send()
            .await
            .expect("post");
        answer(response).await
    }

    /// Posts a form (with this session's CSRF token) and, when it answers a redirect, opens the
    /// page it points to, as a browser would (POST → redirect → GET).
    pub async fn post_and_follow(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let posted = self.post(path, fields).await;
        match (&posted.status, &posted.location) {
            (&StatusCode::SEE_OTHER, Some(to)) => self.get(to).await,
            _ => posted,
        }
    }
}
