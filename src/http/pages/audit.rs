//! The IG officer's pages: audit search with filters, a chart of lookups per day and per purpose
//! (SVG drawn here, with the same numbers as a table), CSV export (itself audited), the anomaly
//! list, subject access (audited before the answer), and the signed checkpoint to download.
//! Every query is the service's, scoped to the officer's organisation as the API's are.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::lookup::{SubjectForm, field_id as subject_field_id, subject_fields};
use super::ui::{self, Input, Select};
use super::{FormPairs, PageError, PageResult, Session, field_errors, respond, see_other};
use crate::clock::{Millis, parse_instant};
use crate::domain::lookup::Purpose;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::service::audit::{EventFilterInput, EventView};

const DAY_MS: Millis = 86_400_000;
/// The chart covers at most this many days, and reads at most this many lookups.
const CHART_DAYS: i64 = 14;
const CHART_EVENTS: usize = 20_000;

fn query<T>(q: Result<Query<T>, QueryRejection>, session: &Session) -> Result<T, PageError> {
    q.map(|Query(v)| v).map_err(|_| {
        PageError::new(
            ApiError::BadRequest {
                code: "invalid_query",
                message: "the search filters could not be read".into(),
                field: None,
            },
            session,
        )
    })
}

/// The filters as a query string, for the export link and the next page.
fn query_string(f: &EventFilterInput) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    let pairs = [
        ("type", &f.kind),
        ("purpose", &f.purpose),
        ("user", &f.user),
        ("organisation", &f.organisation),
        ("from", &f.from),
        ("to", &f.to),
        ("lookup_id", &f.lookup_id),
    ];
    for (name, value) in pairs {
        if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
            s.append_pair(name, v);
        }
    }
    if f.touching_our_holdings == Some(true) {
        s.append_pair("touching_our_holdings", "true");
    }
    s.finish()
}

/// GET /audit: filters, the chart, and a page of events (newest first).
pub async fn search(
    State(state): State<AppState>,
    session: Session,
    q: Result<Query<EventFilterInput>, QueryRejection>,
) -> PageResult {
    let filter = query(q, &session)?;
    let org = session.actor.org_id;
    let (page, errors) = match state.audit_events(Some(org), &filter).await {
        Ok(page) => (Some(page), Vec::new()),
        Err(e) => (None, field_errors(e, &session)?),
    };
    let chart = if errors.is_empty() { Some(chart_data(&state, &session, &filter).await?) } else { None };
    let type_words: Vec<(&str, String)> =
        crate::audit::EventType::ALL.iter().map(|t| (t.as_str(), ui::event_words(t.as_str()))).collect();
    let mut types = vec![("", "Any type")];
    types.extend(type_words.iter().map(|(v, t)| (*v, t.as_str())));
    // The user filter is a choice of this organisation's people by name (the API takes their id).
    let users = state.users_of(&session.actor).await.map_err(|e| PageError::new(e, &session))?;
    let user_options: Vec<(String, String)> =
        users.iter().map(|u| (u.id.to_string(), format!("{} ({})", u.name, ui::words(u.role.as_str())))).collect();
    let mut user_choices = vec![("", "Anyone")];
    user_choices.extend(user_options.iter().map(|(v, t)| (v.as_str(), t.as_str())));
    let mut purposes = vec![("", "Any purpose")];
    purposes.extend(Purpose::ALL.iter().map(|p| (p.as_str(), p.describe())));
    let qs = query_string(&filter);
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let field = |f: &str| if f == "type" { "kind".to_string() } else { f.to_string() };
    let body = html! {
        (ui::error_summary(&errors, field))
        h1 class="heading-l" { "Audit trail" }
        form method="get" action="/audit" class="filters" {
            div class="filter-grid" {
                (ui::select(&Select { id: "kind", name: Some("type"), label: "Event type", hint: None, options: types,
                    selected: filter.kind.as_deref(), error: ui::error_for(&errors, field, "kind"), autofocus: false }))
                (ui::select(&Select { id: "purpose", name: None, label: "Purpose", hint: None, options: purposes,
                    selected: filter.purpose.as_deref(), error: ui::error_for(&errors, field, "purpose"), autofocus: false }))
                (ui::select(&Select { id: "user", name: None, label: "User", hint: None, options: user_choices,
                    selected: filter.user.as_deref(), error: ui::error_for(&errors, field, "user"), autofocus: false }))
                (ui::text_input(&Input { value: filter.organisation.as_deref(), width: "input-width-10",
                    hint: Some("Acting organisation's code"), ..Input::new("organisation", "Organisation") }))
                (ui::text_input(&Input { value: filter.from.as_deref(), error: ui::error_for(&errors, field, "from"),
                    width: "input-width-10", hint: Some("For example, 2026-11-24"), ..Input::new("from", "From") }))
                (ui::text_input(&Input { value: filter.to.as_deref(), error: ui::error_for(&errors, field, "to"),
                    width: "input-width-10", hint: Some("For example, 2026-11-30 (that day included)"), ..Input::new("to", "To") }))
                (ui::text_input(&Input { value: filter.lookup_id.as_deref(), width: "input-width-20",
                    ..Input::new("lookup_id", "Lookup reference") }))
            }
            div class="form-group" {
                div class="checkbox" {
                    input class="checkbox-input" type="checkbox" id="touching_our_holdings" name="touching_our_holdings"
                        value="true" checked[filter.touching_our_holdings == Some(true)];
                    label class="label checkbox-label" for="touching_our_holdings" { "Only other organisations' lookups that matched our records" }
                }
            }
            button type="submit" class="button" { "Search" }
            " "
            a href={ "/audit/export.csv?" (qs) } class="button button-secondary" role="button" download { "Export these as CSV" }
            " "
            a href="/audit/checkpoint" class="button button-secondary" role="button" download { "Download the signed checkpoint" }
        }
        @if let Some(c) = &chart { (chart_section(c)) }
        @if let Some(page) = &page {
            h2 class="heading-m" { "Events" }
            (events_table(&page.events))
            nav class="pagination" aria-label="Pages of events" {
                ul class="pagination-list" {
                    @if filter.before.is_some() {
                        li { a class="link" href={ "/audit?" (qs) } { "Newest events" } }
                    }
                    @if let Some(cursor) = page.next_cursor {
                        li { a class="link" href={ "/audit?" (qs) "&before=" (cursor) } rel="next" { "Older events" } }
                    }
                }
            }
        }
    };
    Ok(respond(status, ui::layout(&ui::title("Audit trail", &errors), Some(&session), body)))
}

/// A purpose code (`s47-enquiry`) in the words the lookup form uses.
fn purpose_words(code: &str) -> String {
    Purpose::parse(code).map(|p| p.describe().to_string()).unwrap_or_else(|| ui::words(code))
}

fn events_table(events: &[EventView]) -> Markup {
    html! {
        @if events.is_empty() { p class="body" { "No events match." } }
        @else {
            table class="table table-s" {
                caption class="visually-hidden" { "Audit events, newest first" }
                thead { tr { th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Type" } th scope="col" { "Who" }
                    th scope="col" { "Purpose" } th scope="col" { "Touched" } } }
                tbody {
                    @for e in events {
                        tr {
                            td data-label="Event number" { (e.id) }
                            td data-label="When" { (ui::when_text(&e.at)) }
                            td data-label="Type" { (ui::event_words(&e.kind)) }
                            td data-label="Who" { @if let Some(a) = &e.actor { (a.name.as_deref().unwrap_or("")) " (" (a.organisation) ", " (ui::words(&a.role)) ")" } @else { "The service" } }
                            td data-label="Purpose" { (e.purpose.as_deref().map(purpose_words).unwrap_or_default()) }
                            td data-label="Touched" {
                                (e.organisations_touched.join(", "))
                                @for r in &e.our_records { br; "Our " (r.local_ref.as_deref().unwrap_or("removed")) " (" (r.tier) ")" }
                            }
                        }
                    }
                }
            }
        }
    }
}

struct Chart {
    from: Millis,
    days: Vec<(Millis, usize)>,
    purposes: Vec<(String, usize)>,
    total: usize,
    capped: bool,
}

/// Lookups in the filter's window (default the last 14 days), counted per day and per purpose.
async fn chart_data(state: &AppState, session: &Session, filter: &EventFilterInput) -> Result<Chart, PageError> {
    let now = state.clock().now_ms();
    let to_day = filter
        .to
        .as_deref()
        .and_then(parse_instant)
        .map(|t| t - t.rem_euclid(DAY_MS))
        .unwrap_or(now - now.rem_euclid(DAY_MS));
    let from_day = filter
        .from
        .as_deref()
        .and_then(parse_instant)
        .map(|t| t - t.rem_euclid(DAY_MS))
        .filter(|f| *f <= to_day && to_day - f < CHART_DAYS * DAY_MS)
        .unwrap_or(to_day - (CHART_DAYS - 1) * DAY_MS);
    let mut input = EventFilterInput {
        kind: Some("lookup".into()),
        purpose: filter.purpose.clone(),
        user: filter.user.clone(),
        organisation: filter.organisation.clone(),
        touching_our_holdings: filter.touching_our_holdings,
        from: Some(crate::clock::rfc3339(from_day)),
        to: Some(crate::clock::rfc3339(to_day + DAY_MS)),
        limit: Some(1000),
        ..EventFilterInput::default()
    };
    let mut per_day: BTreeMap<Millis, usize> =
        (0..=(to_day - from_day) / DAY_MS).map(|i| (from_day + i * DAY_MS, 0)).collect();
    let mut per_purpose: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    let capped = loop {
        let page =
            state.audit_events(Some(session.actor.org_id), &input).await.map_err(|e| PageError::new(e, session))?;
        for e in &page.events {
            let Some(at) = parse_instant(&e.at) else { continue };
            *per_day.entry(at - at.rem_euclid(DAY_MS)).or_default() += 1;
            *per_purpose.entry(e.purpose.clone().unwrap_or_else(|| "unknown".into())).or_default() += 1;
            total += 1;
        }
        match page.next_cursor {
            Some(cursor) if total < CHART_EVENTS => input.before = Some(cursor),
            Some(_) => break true,
            None => break false,
        }
    };
    let mut purposes: Vec<(String, usize)> = per_purpose.into_iter().collect();
    purposes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(Chart { from: from_day, days: per_day.into_iter().collect(), purposes, total, capped })
}

/// Escapes text for SVG (labels come from fixed lists, but escape anyway).
fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A bar chart of lookups per day: bars, day labels and counts, all drawn here.
fn day_chart(c: &Chart) -> String {
    let (width, height, left, bottom, top) = (720.0_f64, 220.0_f64, 36.0_f64, 40.0_f64, 16.0_f64);
    let max = c.days.iter().map(|d| d.1).max().unwrap_or(0).max(1) as f64;
    let slot = (width - left) / c.days.len().max(1) as f64;
    let plot = height - bottom - top;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-labelledby=\"chart-days-title chart-days-desc\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"chart-days-title\">Lookups per day</title>\
         <desc id=\"chart-days-desc\">{} lookups from {}; the table below gives each day's number.</desc>\
         <line x1=\"{left}\" y1=\"{}\" x2=\"{width}\" y2=\"{}\" class=\"chart-axis\"/>",
        c.total,
        ui::date(c.from),
        height - bottom,
        height - bottom
    );
    for (i, (day, n)) in c.days.iter().enumerate() {
        let h = plot * (*n as f64) / max;
        let x = left + slot * i as f64 + slot * 0.15;
        let y = height - bottom - h;
        let label = ui::day_month(*day);
        svg.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" class=\"chart-bar\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"chart-value\" text-anchor=\"middle\">{n}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"chart-label\" text-anchor=\"middle\">{}</text>",
            slot * 0.7,
            x + slot * 0.35,
            y - 4.0,
            x + slot * 0.35,
            height - bottom + 16.0,
            esc(&label)
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars of lookups per purpose.
fn purpose_chart(c: &Chart) -> String {
    let (width, row, left) = (720.0_f64, 28.0_f64, 250.0_f64);
    let height = row * c.purposes.len().max(1) as f64 + 8.0;
    let max = c.purposes.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-labelledby=\"chart-purpose-title\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"chart-purpose-title\">Lookups per purpose</title>"
    );
    for (i, (purpose, n)) in c.purposes.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let w = (width - left - 40.0) * (*n as f64) / max;
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"chart-label\" text-anchor=\"end\">{}</text>\
             <rect x=\"{left}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" class=\"chart-bar\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"chart-value\">{n}</text>",
            left - 8.0,
            y + row * 0.6,
            esc(&purpose_words(purpose)),
            y + 4.0,
            row - 8.0,
            left + w + 6.0,
            y + row * 0.6
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn chart_section(c: &Chart) -> Markup {
    html! {
        h2 class="heading-m" { "Lookups per day" }
        @if c.capped { p class="body-s" { "Counted from the first " (CHART_EVENTS) " lookups only." } }
        figure class="figure" { (ui::raw(day_chart(c))) }
        details class="details" {
            summary class="details-summary" { "Lookups per day as a table" }
            table class="table table-s" {
                thead { tr { th scope="col" { "Day" } th scope="col" { "Lookups" } } }
                tbody { @for (day, n) in &c.days { tr { td data-label="Day" { (ui::date(*day)) } td data-label="Lookups" { (n) } } } }
            }
        }
        h2 class="heading-m" { "Lookups per purpose" }
        @if c.purposes.is_empty() { p class="body" { "No lookups in this window." } }
        @else {
            figure class="figure" { (ui::raw(purpose_chart(c))) }
            table class="table table-s" {
                caption class="visually-hidden" { "Lookups per purpose" }
                thead { tr { th scope="col" { "Purpose" } th scope="col" { "Lookups" } } }
                tbody { @for (p, n) in &c.purposes { tr { td data-label="Purpose" { (purpose_words(p)) } td data-label="Lookups" { (n) } } } }
            }
        }
    }
}

/// GET /audit/export.csv: the same filters as the search, as `GET /api/v1/audit/events.csv`
/// (the export is recorded in the audit trail).
pub async fn export(
    State(state): State<AppState>,
    session: Session,
    q: Result<Query<EventFilterInput>, QueryRejection>,
) -> PageResult {
    let filter = query(q, &session)?;
    let (events, next) = state
        .audit_events_all(Some(&session.actor), Some(session.actor.org_id), &filter, crate::http::audit::CSV_CAP)
        .await
        .map_err(|e| PageError::new(e, &session))?;
    Ok(crate::http::audit::csv_download(&events, next))
}

#[derive(serde::Deserialize)]
pub struct WindowQuery {
    days: Option<i64>,
}

/// GET /audit/anomalies: lookups flagged for review in the last 7 (or `days`) days.
pub async fn anomalies(
    State(state): State<AppState>,
    session: Session,
    q: Result<Query<WindowQuery>, QueryRejection>,
) -> PageResult {
    let days = query(q, &session)?.days.unwrap_or(7).clamp(1, 366);
    let to = state.clock().now_ms() + 1;
    let from = to - days * DAY_MS;
    let list = state
        .anomalies(session.actor.org_id, from, to, &state.settings().anomaly_rules)
        .await
        .map_err(|e| PageError::new(e, &session))?;
    let body = html! {
        h1 class="heading-l" { "Lookups flagged for review" }
        p class="body" { "The last " (days) " days. Each flag says which rule the lookup broke and why." }
        @if list.is_empty() { p class="body" { "Nothing flagged." } }
        @else {
            table class="table" {
                caption class="visually-hidden" { "Flagged lookups, newest first" }
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Rule" } th scope="col" { "Why" } th scope="col" { "Event" } } }
                tbody {
                    @for a in &list {
                        tr {
                            td data-label="When" { (ui::when_text(&a.at)) }
                            td data-label="Who" { (a.user_name.as_deref().unwrap_or("")) " (" (a.organisation.as_deref().unwrap_or("")) ")" }
                            td data-label="Rule" { (ui::words(a.rule.as_str())) }
                            td data-label="Why" { (a.reason) }
                            td data-label="Event" { @if let Some(l) = &a.lookup_id {
                                a class="link" href={ "/audit?lookup_id=" (l) } { "#" (a.event_id) } } @else { "#" (a.event_id) } }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(StatusCode::OK, ui::layout("Anomalies", Some(&session), body)))
}

fn subject_access_page(
    session: &Session,
    form: &SubjectForm,
    errors: &[crate::domain::FieldError],
    answer: Option<Markup>,
) -> Markup {
    let body = html! {
        (ui::error_summary(errors, subject_field_id))
        h1 class="heading-l" { "Subject access" }
        p class="body" {
            "Who searched for a child, when and why, and which organisations hold them. "
            "Your search is recorded in the audit trail; the identifiers are not."
        }
        @if let Some(a) = answer { (a) }
        form method="post" action="/audit/subject-access" novalidate {
            (ui::csrf_field(session))
            (subject_fields("The child", form, errors))
            button type="submit" class="button" { "Search" }
        }
    };
    ui::layout(&ui::title("Subject access", errors), Some(session), body)
}

/// GET /audit/subject-access
pub async fn subject_access_form(session: Session) -> Response {
    respond(StatusCode::OK, subject_access_page(&session, &SubjectForm::default(), &[], None))
}

/// POST /audit/subject-access: `subject_access`, as the API's (audited before the answer).
pub async fn subject_access(State(state): State<AppState>, session: Session, form: FormPairs) -> PageResult {
    let typed = SubjectForm::read(&form, "");
    let raw = match typed.to_raw("subject") {
        Ok(raw) => raw,
        Err(e) => {
            return Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, subject_access_page(&session, &typed, &[e], None)));
        }
    };
    let outcome = match state.subject_access(&session.actor, &raw).await {
        Ok(outcome) => outcome,
        Err(e) => {
            let errors = field_errors(e, &session)?;
            return Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, subject_access_page(&session, &typed, &errors, None)));
        }
    };
    let answer = html! {
        div class="panel panel-blue" role="status" {
            h2 class="heading-m" { "Held by " (outcome.holders.len()) " organisation" @if outcome.holders.len() != 1 { "s" }
                ", searched " (outcome.searches.len()) " time" @if outcome.searches.len() != 1 { "s" } }
            p class="body-s" { "This request is audit event #" (outcome.request_event_id) "." }
        }
        @if !outcome.holders.is_empty() {
            table class="table" {
                caption class="table-caption" { "Who holds the child" }
                thead { tr { th scope="col" { "Organisation" } th scope="col" { "How sure" } th scope="col" { "Records" } } }
                tbody { @for h in &outcome.holders { tr {
                    td data-label="Organisation" { (h.organisation_name) @if h.own_organisation { " (yours)" } }
                    td data-label="How sure" { (ui::tier_tag(&h.tier)) } td data-label="Records" { (h.records) } } } }
            }
        }
        h2 class="heading-m" { "Searches" }
        (events_table(&outcome.searches))
    };
    // Kept for this session and shown at its own address, so a reload or Back shows it again
    // without a second (audited) search.
    match state.keep_subject_access_answer(&session.actor, &session.page, &answer.0).await {
        Ok(id) => Ok(see_other(&format!("/audit/subject-access/{id}"))),
        Err(e) => {
            tracing::warn!(error = %e, "a subject access answer could not be kept; shown once");
            Ok(respond(StatusCode::OK, subject_access_page(&session, &SubjectForm::default(), &[], Some(answer))))
        }
    }
}

/// GET /audit/subject-access/{answer_id}: a subject access answer again, for the session that
/// searched (404 for anyone else, and after a few hours). Not a new search: nothing is audited.
pub async fn subject_access_answer(
    State(state): State<AppState>,
    session: Session,
    Path(answer_id): Path<String>,
) -> PageResult {
    let shown = state
        .kept_subject_access_answer(&session.actor, &session.page, &answer_id)
        .await
        .map_err(|e| PageError::new(e, &session))?;
    let answer = maud::PreEscaped(shown);
    Ok(respond(StatusCode::OK, subject_access_page(&session, &SubjectForm::default(), &[], Some(answer))))
}

/// GET /audit/checkpoint: the latest signed checkpoint note, as a file to keep or give a witness.
pub async fn checkpoint(State(state): State<AppState>, session: Session) -> PageResult {
    let note = state.latest_checkpoint().await.map_err(|e| PageError::new(e, &session))?;
    let note = note.ok_or_else(|| PageError::new(ApiError::NotFound, &session))?;
    let mut response = note.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers
        .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"audit-checkpoint.txt\""));
    Ok(response)
}
