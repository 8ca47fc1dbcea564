//! The pieces every page is built from, after the GOV.UK Design System's patterns: the layout
//! with a skip link and the navigation the access table allows, an error summary that links to
//! each field, labelled inputs with hints and inline errors, and plain-word formatting.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::Session;
use crate::clock::{Millis, parse_instant};
use crate::domain::FieldError;
use crate::http::access;

/// The navigation: each link is shown only when the access table lets this role open it.
const NAV: &[(&str, &str)] = &[
    ("/lookup", "Look up a child"),
    ("/requests", "Requests"),
    ("/matches", "Matches"),
    ("/caseload", "Caseload"),
    ("/users", "Users and tokens"),
    ("/audit", "Audit"),
    ("/audit/anomalies", "Anomalies"),
    ("/audit/subject-access", "Subject access"),
    ("/directory", "Directory"),
];

/// The links this session's role may follow, for the header and the start page.
pub fn nav_links(session: &Session) -> Vec<(&'static str, &'static str)> {
    NAV.iter().copied().filter(|(path, _)| access::allows(session.actor.role, "GET", path)).collect()
}

pub fn layout(title: &str, session: Option<&Session>, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – child-locator" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                a href="#main" class="skip-link" { "Skip to main content" }
                header class="header" {
                    div class="width-container header-inner" {
                        a href="/" class="header-service" { "child-locator" }
                        @if let Some(s) = session {
                            span class="header-user" {
                                (s.actor.user_name) ", " (s.actor.org_name)
                            }
                            form method="post" action="/sign-out" class="header-sign-out" {
                                (csrf_field(s))
                                button type="submit" class="button-link" { "Sign out" }
                            }
                        }
                    }
                    @if let Some(s) = session {
                        nav class="width-container nav" aria-label="Main" {
                            ul class="nav-list" {
                                @for (path, label) in nav_links(s) {
                                    li { a href=(path) class="nav-link" { (label) } }
                                }
                            }
                        }
                    }
                }
                div class="width-container" {
                    main id="main" class="main" { (main) }
                }
                footer class="footer" {
                    div class="width-container" {
                        p class="body-s" {
                            "Every lookup is recorded in a tamper-evident audit trail. "
                            "Not known here does not mean a child is safe."
                        }
                    }
                }
            }
        }
    }
}

/// A page's title, starting "Error: " when the page shows errors (GOV.UK's pattern, so a screen
/// reader hears it first).
pub fn title(title: &str, errors: &[FieldError]) -> String {
    if errors.is_empty() { title.to_string() } else { format!("Error: {title}") }
}

/// The hidden CSRF token every POST form carries (the middleware checks it).
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// The error summary at the top of a page, each message linking to its field (`field_id`
/// maps a service field name such as `subject.nhs_number` to the input's id).
pub fn error_summary(errors: &[FieldError], field_id: impl Fn(&str) -> String) -> Markup {
    html! {
        @if !errors.is_empty() {
            // `autofocus` moves the focus to the summary (no script needed), as GOV.UK's does.
            div class="error-summary" role="alert" aria-labelledby="error-summary-title" tabindex="-1" autofocus {
                h2 class="error-summary-title" id="error-summary-title" { "There is a problem" }
                ul class="error-summary-list" {
                    @for e in errors {
                        li { a href={ "#" (field_id(&e.field)) } { (message(e)) } }
                    }
                }
            }
        }
    }
}

/// The first error for an input, if any.
pub fn error_for<'a>(errors: &'a [FieldError], field_id: impl Fn(&str) -> String, id: &str) -> Option<&'a FieldError> {
    errors.iter().find(|e| field_id(&e.field) == id)
}

/// Service messages start lower-case ("nhs_number is required"); a page shows a sentence.
pub fn sentence(message: &str) -> String {
    let message = message.replace('_', " ");
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub struct Input<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub label: &'a str,
    pub hint: Option<&'a str>,
    pub value: Option<&'a str>,
    pub error: Option<&'a FieldError>,
    /// e.g. `numeric` for digits (phones show a number pad).
    pub inputmode: Option<&'a str>,
    pub autocomplete: &'a str,
    pub width: &'a str,
    pub autofocus: bool,
    pub kind: &'a str,
}

impl<'a> Input<'a> {
    pub fn new(id: &'a str, label: &'a str) -> Self {
        Input {
            id,
            name: id,
            label,
            hint: None,
            value: None,
            error: None,
            inputmode: None,
            autocomplete: "off",
            width: "input-width-20",
            autofocus: false,
            kind: "text",
        }
    }

    /// The form field's name, when it differs from the id (several forms on one page).
    pub fn named(self, name: &'a str) -> Self {
        Input { name, ..self }
    }
}

pub fn text_input(i: &Input) -> Markup {
    let hint_id = format!("{}-hint", i.id);
    let error_id = format!("{}-error", i.id);
    let mut described = Vec::new();
    if i.hint.is_some() {
        described.push(hint_id.clone());
    }
    if i.error.is_some() {
        described.push(error_id.clone());
    }
    let described = described.join(" ");
    html! {
        div class={ "form-group" @if i.error.is_some() { " form-group-error" } } {
            label class="label" for=(i.id) { (i.label) }
            @if let Some(hint) = i.hint { div class="hint" id=(hint_id) { (hint) } }
            @if let Some(e) = i.error {
                p class="error-message" id=(error_id) { span class="visually-hidden" { "Error: " } (message(e)) }
            }
            input class={ "input " (i.width) @if i.error.is_some() { " input-error" } }
                id=(i.id) name=(i.name) type=(i.kind) value=[i.value]
                inputmode=[i.inputmode] autocomplete=(i.autocomplete) spellcheck="false"
                aria-describedby=[(!described.is_empty()).then_some(described.as_str())]
                autofocus[i.autofocus];
        }
    }
}

pub struct Select<'a> {
    pub id: &'a str,
    /// The form field's name when it differs from the id.
    pub name: Option<&'a str>,
    pub label: &'a str,
    pub hint: Option<&'a str>,
    pub options: Vec<(&'a str, &'a str)>,
    pub selected: Option<&'a str>,
    pub error: Option<&'a FieldError>,
    pub autofocus: bool,
}

impl<'a> Select<'a> {
    pub fn named(self, name: &'a str) -> Self {
        Select { name: Some(name), ..self }
    }
}

pub fn select(s: &Select) -> Markup {
    let hint_id = format!("{}-hint", s.id);
    html! {
        div class={ "form-group" @if s.error.is_some() { " form-group-error" } } {
            label class="label" for=(s.id) { (s.label) }
            @if let Some(hint) = s.hint { div class="hint" id=(hint_id) { (hint) } }
            @if let Some(e) = s.error {
                p class="error-message" id={ (s.id) "-error" } { span class="visually-hidden" { "Error: " } (message(e)) }
            }
            select class="select" id=(s.id) name=(s.name.unwrap_or(s.id)) autofocus[s.autofocus]
                aria-describedby=[s.hint.map(|_| hint_id.as_str())] {
                @for (value, text) in &s.options {
                    option value=(value) selected[s.selected == Some(*value)] { (text) }
                }
            }
        }
    }
}

pub fn textarea(id: &str, label: &str, hint: &str, value: Option<&str>, error: Option<&FieldError>) -> Markup {
    html! {
        div class={ "form-group" @if error.is_some() { " form-group-error" } } {
            label class="label" for=(id) { (label) }
            div class="hint" id={ (id) "-hint" } { (hint) }
            @if let Some(e) = error {
                p class="error-message" { span class="visually-hidden" { "Error: " } (message(e)) }
            }
            textarea class="textarea" id=(id) name=(id) rows="3" aria-describedby={ (id) "-hint" } { (value.unwrap_or("")) }
        }
    }
}

/// A time on the UK's clock (Europe/London from jiff's bundled tz database, so BST and GMT
/// change on the right days); the API keeps UTC.
fn uk(ms: Millis) -> jiff::Zoned {
    let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let zone = jiff::tz::TimeZone::get("Europe/London").unwrap_or(jiff::tz::TimeZone::UTC);
    at.to_zoned(zone)
}

/// A date and time for people, on the UK's clock: "Tue 24 Nov 2026, 09:00 GMT" (BST in summer).
pub fn when(ms: Millis) -> String {
    uk(ms).strftime("%a %-d %b %Y, %H:%M %Z").to_string()
}

/// An API time (RFC 3339 text, as audit events carry) for people; unreadable text is shown as is.
pub fn when_text(at: &str) -> String {
    parse_instant(at).map(when).unwrap_or_else(|| at.to_string())
}

/// A UK date: "24 Nov 2026".
pub fn date(ms: Millis) -> String {
    uk(ms).strftime("%-d %b %Y").to_string()
}

/// A short UK date for a chart's axis: "24 Nov".
pub fn day_month(ms: Millis) -> String {
    uk(ms).strftime("%-d %b").to_string()
}

/// A word from the API (`request_state_changed`, `child-in-need`) as words: "Request state changed".
pub fn words(code: &str) -> String {
    sentence(&code.replace(['_', '-'], " "))
}

/// An audit event type in plain words, for the audit pages.
pub fn event_words(kind: &str) -> String {
    let text = match kind {
        "lookup" => "Lookup",
        "subject_access" => "Subject access search",
        "shielded_hit" => "Lookup reached a shielded record",
        "holding_put" => "Record added or changed",
        "holding_deleted" => "Record removed",
        "sync_run" => "Caseload uploaded",
        "sync_started" => "Caseload upload started",
        "sync_interrupted" => "Caseload upload interrupted",
        "sync_flagged" => "Caseload upload flagged",
        "match_made" => "Match found",
        "match_withdrawn" => "Match withdrawn",
        "request_created" => "Record requested",
        "request_state_changed" => "Request answered or moved on",
        "request_escalated" => "Request overdue: escalated",
        "token_issued" => "Token issued",
        "token_revoked" => "Token revoked",
        "token_reported_lost" => "Token reported lost",
        "auth_failed" => "Failed sign-in",
        "access_denied" => "Page or action refused",
        "rate_limited" => "Too many requests: slowed down",
        "key_operation" => "Key change",
        "purge" => "Old data removed",
        "organisation_added" => "Organisation added",
        "organisation_updated" => "Organisation changed",
        "service_started" => "Service started",
        "audit_exported" => "Audit trail exported",
        "backup_taken" => "Backup taken",
        "admin_bootstrapped" => "First administrator created",
        other => return words(other),
    };
    text.to_string()
}

/// The name people use for a field the service names (`subject.nhs_number`, `family.carers[0].upn`).
fn field_words(field: &str) -> Option<&'static str> {
    let leaf = field.rsplit(['.', ':']).next().unwrap_or(field);
    Some(match leaf {
        "nhs_number" => "NHS number",
        "upn" => "UPN",
        "given_name" => "first name",
        "family_name" => "last name",
        "date_of_birth" => "date of birth",
        "postcode" => "postcode",
        "purpose" => "why you are asking",
        "purpose_detail" => "the other purpose",
        "legal_basis" => "the legal basis",
        "legal_basis_detail" => "the other legal basis",
        "reason" => "the reason",
        "urgency" => "how urgent it is",
        "how" => "how the record was sent",
        "reference" => "the reference",
        "note" => "the note",
        "name" => "their name",
        "role" => "a role",
        "from" => "the first day",
        "to" => "the last day",
        "user" => "a user",
        "local_ref" => "the record reference",
        "match_id" => "the match",
        _ => return None,
    })
}

/// Fields answered by a choice (a list or radios): their message says "Select", not "Enter".
const CHOSEN: &[&str] = &["purpose", "legal_basis", "urgency", "how", "role", "user", "type", "kind"];

/// A field error in GOV.UK wording for the page: "Enter …" when something is missing, "Select …"
/// for a choice, and the rule in plain words otherwise, with no field path or format name.
pub fn message(e: &FieldError) -> String {
    let leaf = e.field.rsplit(['.', ':']).next().unwrap_or(&e.field);
    let chosen = CHOSEN.contains(&leaf);
    match (e.code, field_words(&e.field)) {
        ("insufficient_identifiers", _) | ("required", None) if leaf == "subject" => {
            return "Enter an NHS number, a UPN, or a first name, last name and date of birth".into();
        }
        ("required", Some(words)) if chosen => return format!("Select {words}"),
        ("required", Some(words)) => return format!("Enter {words}"),
        (_, Some(words)) if chosen => return format!("Select {words} from the list"),
        ("invalid_time", Some(words)) => {
            return format!("Enter {words} as a date, for example 24 11 2026 or 2026-11-24");
        }
        _ => {}
    }
    plain(&e.message)
}

/// A service message with its internal names replaced by the words people use.
pub fn plain(message: &str) -> String {
    const NAMES: &[(&str, &str)] = &[
        ("subject.", ""),
        ("family.", ""),
        ("nhs_number", "NHS number"),
        ("given_name", "first name"),
        ("family_name", "last name"),
        ("date_of_birth", "date of birth"),
        ("expected_date", "expected date"),
        ("purpose_detail", "the other purpose"),
        ("legal_basis_detail", "the other legal basis"),
        ("legal_basis", "the legal basis"),
        ("local_ref", "record reference"),
        ("match_id", "match"),
        ("an ISO 8601 date (YYYY-MM-DD)", "a real date"),
        ("RFC 3339 or YYYY-MM-DD", "a date such as 2026-11-24"),
        ("RFC 3339", "a date and time"),
        ("secure_email", "secure email"),
        ("secure-email", "secure email"),
        ("duty_phone", "duty phone"),
    ];
    let mut text = message.to_string();
    for (from, to) in NAMES {
        text = text.replace(from, to);
    }
    sentence(&text)
}

/// Words for a request's step in its history: "Requested", "Acknowledged", "Record sent".
pub fn request_step_words(action: &str, to_state: &str) -> String {
    match (action, to_state) {
        ("created", _) => "Requested".into(),
        ("escalated", _) => "Overdue: escalated".into(),
        ("fulfilled" | "fulfil", _) | (_, "fulfilled") => "Record sent".into(),
        (_, state) => words(state),
    }
}

/// How strong a match is, in plain words.
pub fn tier_words(tier: &str) -> &'static str {
    match tier {
        "confirmed" => "Confirmed: an NHS number or UPN agrees",
        "probable" => "Probable: name and date of birth agree",
        _ => "Possible: worth checking with them",
    }
}

pub fn tag(text: &str, colour: &str) -> Markup {
    html! { strong class={ "tag tag-" (colour) } { (text) } }
}

pub fn tier_tag(tier: &str) -> Markup {
    let colour = match tier {
        "confirmed" => "green",
        "probable" => "blue",
        _ => "grey",
    };
    tag(&words(tier), colour)
}

/// A `tel:` link keeps the digits only (and a leading +).
pub fn tel_href(phone: &str) -> String {
    let digits: String = phone.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
    format!("tel:{digits}")
}

pub fn notice(text: &str) -> Markup {
    html! {
        div class="notification" role="status" {
            p class="body" { (text) }
        }
    }
}

/// Raw markup for the server-drawn SVG (built from numbers and escaped labels only).
pub fn raw(svg: String) -> Markup {
    PreEscaped(svg)
}
