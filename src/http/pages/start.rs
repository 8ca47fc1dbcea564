//! The start page (`GET /`): what needs this person's attention, by role, each with a link to
//! the page that deals with it (the header's navigation has the rest). Everything is read through the same service calls as the pages it links to,
//! and only what the role's own pages may show (the access table decides).

use axum::extract::State;
use axum::http::StatusCode;
use maud::{Markup, html};

use super::ui;
use super::{PageError, PageResult, Session, respond};
use crate::clock::Millis;
use crate::domain::request::RequestFilter;
use crate::domain::request::Side;
use crate::domain::role::Role;
use crate::http::AppState;
use crate::http::access;
use crate::service::attention::STALE_SYNC_MS;

const DAY_MS: Millis = 86_400_000;
/// "New" matches and anomalies: the last week.
const RECENT_MS: Millis = 7 * DAY_MS;

/// One line of "Needs attention": a count or a fact, and the page that deals with it.
struct Item {
    text: String,
    href: &'static str,
    link: &'static str,
    urgent: bool,
}

/// GET /: what needs attention, then the pages this role may open.
pub async fn home(State(state): State<AppState>, session: Session) -> PageResult {
    let items = attention(&state, &session).await.map_err(|e| PageError::new(e, &session))?;
    let role = session.actor.role;
    let body = html! {
        h1 class="heading-l" { "child-locator" }
        p class="body" { "Signed in as " (role_words(role)) "." }
        @if access::allows(role, "GET", "/lookup") {
            p class="body" { a href="/lookup" class="button" role="button" { "Look up a child" } }
        }
        @if !items.is_empty() {
            h2 class="heading-m" id="attention" { "Needs attention" }
            ul class="list" aria-labelledby="attention" {
                @for item in &items {
                    li {
                        @if item.urgent { (ui::tag("Now", "red")) " " }
                        (item.text) " " a href=(item.href) class="link" { (item.link) }
                    }
                }
            }
        }
        @if items.is_empty() && !access::allows(role, "GET", "/lookup") {
            // Nothing to count for this role: its pages, once (the header has them too).
            (links(&session))
        }
    };
    Ok(respond(StatusCode::OK, ui::layout("Start", Some(&session), body)))
}

fn links(session: &Session) -> Markup {
    html! {
        ul class="list" {
            @for (path, label) in ui::nav_links(session) {
                li { a href=(path) class="link" { (label) } }
            }
        }
    }
}

fn role_words(role: Role) -> &'static str {
    match role {
        Role::Practitioner => "a practitioner",
        Role::IgOfficer => "an information governance officer",
        Role::OrgAdmin => "your organisation's administrator",
        Role::Operator => "the service's operator",
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What needs attention for this role, from the service calls behind its own pages.
async fn attention(state: &AppState, session: &Session) -> Result<Vec<Item>, crate::http::error::ApiError> {
    let actor = &session.actor;
    let role = actor.role;
    let now = state.clock().now_ms();
    let mut items = Vec::new();
    if role == Role::Practitioner {
        // A practitioner's page is the lookup; requests are on their own page.
        return Ok(items);
    }
    if access::allows(role, "GET", "/requests") {
        let fetch = |side, overdue| RequestFilter { side: Some(side), state: None, overdue, limit: 200, after: None };
        let inbox = state.list_requests(actor, &fetch(Side::Holder, None)).await?;
        let open = inbox.iter().filter(|r| !r.state.is_terminal()).count();
        let overdue = state.list_requests(actor, &fetch(Side::Holder, Some(true))).await?.len();
        if overdue > 0 {
            items.push(Item {
                text: format!("{} to us past their deadline.", plural(overdue, "request", "requests")),
                href: "/requests",
                link: "Requests",
                urgent: true,
            });
        }
        items.push(Item {
            text: format!("{} to us waiting for an answer.", plural(open, "request", "requests")),
            href: "/requests",
            link: "Requests",
            urgent: false,
        });
    }
    if role == Role::OrgAdmin {
        let last = state.last_sync(actor).await?;
        let text = match last {
            Some(at) => format!("Records last sent {}.", ui::when(at)),
            None => "No records sent yet.".to_string(),
        };
        let stale = last.is_none_or(|at| now - at > STALE_SYNC_MS);
        items.push(Item { text, href: "/caseload", link: "Upload the caseload", urgent: stale });
    }
    if access::allows(role, "GET", "/matches") {
        let new = state.matches_of(actor).await?.iter().filter(|m| now - m.first_seen <= RECENT_MS).count();
        items.push(Item {
            text: format!("{} with other organisations in the last 7 days.", plural(new, "new match", "new matches")),
            href: "/matches",
            link: "Matches",
            urgent: false,
        });
    }
    if access::allows(role, "GET", "/audit/anomalies") {
        let flagged = state.anomalies(actor.org_id, now - RECENT_MS, now + 1, &state.settings().anomaly_rules).await?;
        items.push(Item {
            text: format!("{} flagged for review in the last 7 days.", plural(flagged.len(), "lookup", "lookups")),
            href: "/audit/anomalies",
            link: "Anomalies",
            urgent: !flagged.is_empty(),
        });
    }
    if role == Role::Operator {
        let d = state.directory_health().await?;
        items.push(Item {
            text: format!(
                "{} taking part; {} sent no records; {} sent nothing in the last 7 days.",
                plural(d.participating, "organisation", "organisations"),
                plural(d.without_records, "has", "have"),
                plural(d.not_sent_lately, "has", "have"),
            ),
            href: "/directory",
            link: "Directory",
            urgent: d.not_sent_lately > 0,
        });
    }
    Ok(items)
}
