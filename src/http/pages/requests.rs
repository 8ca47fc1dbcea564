//! Record requests as pages: the request form for a match, the inbox (requests to us, with
//! deadlines) and our own requests with their states, one request with its history, and the
//! steps (acknowledge, fulfil, decline, withdraw). Every step is the service's `request_step`,
//! so the side and state rules are the domain's, not this file's.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::ui::{self, Select};
use super::{FormPairs, PageError, PageResult, Session, field_errors, respond, see_other};
use crate::domain::FieldError;
use crate::domain::request::RequestFilter;
use crate::domain::request::{
    Action, FulfilMethod, LegalBasis, RequestInput, RequestState, Side, StepInput, Urgency, transition,
};
use crate::http::AppState;
use crate::http::access;
use crate::service::ServiceError;
use crate::service::redaction::{HistoryEntry, RequestView, SHIELDED_HOLDER};

fn legal_basis_words(b: LegalBasis) -> &'static str {
    match b {
        LegalBasis::Ca1989S47 => "Children Act 1989 section 47 (significant harm)",
        LegalBasis::Ca1989S17 => "Children Act 1989 section 17 (child in need)",
        LegalBasis::Ca1989S20S31 => "Children Act 1989 sections 20 and 31 (looked after)",
        LegalBasis::Ca2004S11 => "Children Act 2004 section 11 (duty to safeguard)",
        LegalBasis::CourtOrder => "Court order",
        LegalBasis::Consent => "Consent",
        LegalBasis::Other => "Other (give the basis)",
    }
}

fn urgency_words(u: Urgency) -> &'static str {
    match u {
        Urgency::Immediate => "Immediate: risk to the child now (hours)",
        Urgency::Urgent => "Urgent: within 24 hours",
        Urgency::Routine => "Routine: within 10 working days",
    }
}

fn state_tag(state: RequestState, overdue: bool) -> Markup {
    let colour = match state {
        RequestState::Requested => "blue",
        RequestState::Acknowledged => "yellow",
        RequestState::Fulfilled => "green",
        RequestState::Declined => "red",
        RequestState::Withdrawn => "grey",
    };
    html! { (ui::tag(&ui::words(state.as_str()), colour)) @if overdue { " " (ui::tag("Overdue", "red")) } }
}

#[derive(Deserialize)]
pub struct NewQuery {
    match_id: Option<String>,
    /// The asker's case reference, carried from the lookup answer.
    case_ref: Option<String>,
}

struct RequestForm {
    match_id: String,
    case_ref: Option<String>,
    legal_basis: Option<String>,
    legal_basis_detail: Option<String>,
    reason: Option<String>,
    urgency: Option<String>,
}

fn field_id(field: &str) -> String {
    match field {
        "match_id" => "reason".into(),
        other => other.to_string(),
    }
}

fn request_form_page(session: &Session, f: &RequestForm, errors: &[FieldError]) -> Markup {
    let mut bases = vec![("", "Choose a legal basis")];
    bases.extend(LegalBasis::ALL.iter().map(|b| (b.as_str(), legal_basis_words(*b))));
    let urgency_error = ui::error_for(errors, field_id, "urgency");
    let body = html! {
        (ui::error_summary(errors, field_id))
        h1 class="heading-l" { "Request this record" }
        p class="body" { "The organisation that holds it is told at once and has a deadline to answer. The record itself is sent by them, not through this service." }
        form method="post" action="/requests" novalidate {
            (ui::csrf_field(session))
            input type="hidden" name="match_id" value=(f.match_id);
            (ui::select(&Select {
                id: "legal_basis",
                name: None,
                label: "Legal basis",
                hint: None,
                options: bases,
                selected: f.legal_basis.as_deref(),
                error: ui::error_for(errors, field_id, "legal_basis"),
                autofocus: true,
            }))
            (ui::text_input(&ui::Input {
                hint: Some("Only if the legal basis is other."),
                value: f.legal_basis_detail.as_deref(),
                error: ui::error_for(errors, field_id, "legal_basis_detail"),
                width: "input-width-full",
                ..ui::Input::new("legal_basis_detail", "Other legal basis")
            }))
            (ui::text_input(&ui::Input {
                hint: Some("Optional: your own system's reference for this child, so you can tell your requests apart. Never the child's name or NHS number. Only your organisation sees it."),
                value: f.case_ref.as_deref(),
                error: ui::error_for(errors, field_id, "case_ref"),
                autocomplete: "off",
                ..ui::Input::new("case_ref", "Your case reference")
            }))
            (ui::textarea("reason", "Why you need the record",
                "What you need it for, in up to 500 characters. Not case details: they see this.",
                f.reason.as_deref(), ui::error_for(errors, field_id, "reason")))
            div class={ "form-group" @if urgency_error.is_some() { " form-group-error" } } {
                fieldset class="fieldset" {
                    legend class="fieldset-legend-s" { "How urgent is it?" }
                    @if let Some(e) = urgency_error {
                        p class="error-message" id="urgency-error" { span class="visually-hidden" { "Error: " } (ui::message(e)) }
                    }
                    div class="radios" {
                        @for (i, u) in Urgency::ALL.iter().enumerate() {
                            div class="radio" {
                                input class="radio-input" type="radio" name="urgency"
                                    id=(if i == 0 { "urgency".to_string() } else { format!("urgency-{}", u.as_str()) })
                                    value=(u.as_str()) checked[f.urgency.as_deref() == Some(u.as_str())];
                                label class="label radio-label"
                                    for=(if i == 0 { "urgency".to_string() } else { format!("urgency-{}", u.as_str()) }) {
                                    (urgency_words(*u))
                                }
                            }
                        }
                    }
                }
            }
            button type="submit" class="button" { "Send the request" }
        }
    };
    ui::layout(
        if errors.is_empty() { "Request this record" } else { "Error: Request this record" },
        Some(session),
        body,
    )
}

/// GET /requests/new?match_id=…
pub async fn new_form(session: Session, Query(q): Query<NewQuery>) -> PageResult {
    let Some(match_id) = q.match_id.filter(|m| !m.trim().is_empty()) else {
        return Err(PageError::new(crate::http::error::ApiError::NotFound, &session));
    };
    // A case reference that is not valid is simply not carried over (the form asks again).
    let case_ref = crate::domain::case_ref::parse_case_ref("case_ref", q.case_ref.as_deref()).ok().flatten();
    let f =
        RequestForm { match_id, case_ref, legal_basis: None, legal_basis_detail: None, reason: None, urgency: None };
    Ok(respond(StatusCode::OK, request_form_page(&session, &f, &[])))
}

/// POST /requests: `create_request`, as `POST /api/v1/requests`.
pub async fn create(State(state): State<AppState>, session: Session, form: FormPairs) -> PageResult {
    let f = RequestForm {
        match_id: form.text("match_id").unwrap_or_default(),
        case_ref: form.text("case_ref"),
        legal_basis: form.text("legal_basis"),
        legal_basis_detail: form.text("legal_basis_detail"),
        reason: form.text("reason"),
        urgency: form.text("urgency"),
    };
    let input = RequestInput {
        match_id: Some(f.match_id.clone()),
        legal_basis: f.legal_basis.clone(),
        legal_basis_detail: f.legal_basis_detail.clone(),
        reason: f.reason.clone(),
        urgency: f.urgency.clone(),
        case_ref: f.case_ref.clone(),
    };
    match state.create_request(&session.actor, input).await {
        Ok(request) => Ok(see_other(&format!("/requests/{}?done=created", request.request_id))),
        // One open request per record: lead the worker to the one already open.
        Err(ServiceError::AlreadyRequested(open)) => Ok(see_other(&format!("/requests/{open}?done=already"))),
        Err(e) => {
            let errors = field_errors(e, &session)?;
            Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, request_form_page(&session, &f, &errors)))
        }
    }
}

/// Who holds the record, as this viewer may see it (`None` for the requester of a shielded record).
fn holder_name(r: &RequestView) -> String {
    match &r.holding_organisation {
        Some(org) => org.name.clone(),
        None => SHIELDED_HOLDER.into(),
    }
}

/// GET /requests: the inbox (requests to us) and the requests we made.
pub async fn list(State(state): State<AppState>, session: Session) -> PageResult {
    let fetch = |side| RequestFilter { side: Some(side), state: None, overdue: None, limit: 200, after: None };
    let err = |e| PageError::new(e, &session);
    let mut inbox = state.list_requests(&session.actor, &fetch(Side::Holder)).await.map_err(err)?;
    // Overdue requests are listed however old they are (the newest 200 might not reach them).
    let overdue = RequestFilter { overdue: Some(true), ..fetch(Side::Holder) };
    for r in state.list_requests(&session.actor, &overdue).await.map_err(err)? {
        if !inbox.iter().any(|listed| listed.request_id == r.request_id) {
            inbox.push(r);
        }
    }
    // The inbox by deadline: open requests first, soonest (so overdue) first; answered ones
    // after them, newest first.
    inbox.sort_by_key(|r| if r.state.is_terminal() { (1, -r.created_at) } else { (0, r.due_at) });
    let ours = state.list_requests(&session.actor, &fetch(Side::Requester)).await.map_err(err)?;
    let body = html! {
        h1 class="heading-l" { "Requests" }
        h2 class="heading-m" { "Requests to us" }
        @if inbox.is_empty() { p class="body" { "No requests for your organisation's records." } }
        @else {
            table class="table" {
                caption class="visually-hidden" { "Requests to us: open ones by deadline, overdue first, then answered ones" }
                thead { tr { th scope="col" { "From" } th scope="col" { "Our record" } th scope="col" { "Urgency" }
                    th scope="col" { "Answer by" } th scope="col" { "State" } } }
                tbody {
                    @for r in &inbox {
                        tr {
                            td data-label="From" { a href={ "/requests/" (r.request_id) } class="link" { (r.requesting_organisation.name) } }
                            td data-label="Our record" { (r.local_ref.as_deref().unwrap_or("removed")) }
                            td data-label="Urgency" { (ui::words(r.urgency.as_str())) }
                            td data-label="Answer by" { (ui::when(r.due_at)) }
                            td data-label="State" { (state_tag(r.state, r.overdue)) }
                        }
                    }
                }
            }
        }
        h2 class="heading-m" { "Our requests" }
        @if ours.is_empty() { p class="body" { "Your organisation has not requested any records." } }
        @else {
            table class="table" {
                caption class="visually-hidden" { "Requests we made, newest first" }
                thead { tr { th scope="col" { "To" } th scope="col" { "Our case reference" } th scope="col" { "Asked by" } th scope="col" { "Urgency" }
                    th scope="col" { "Due" } th scope="col" { "State" } } }
                tbody {
                    @for r in &ours {
                        tr {
                            td data-label="To" { a href={ "/requests/" (r.request_id) } class="link" { (holder_name(r)) } }
                            td data-label="Our case reference" { (r.case_ref.as_deref().unwrap_or("none given")) }
                            td data-label="Asked by" { (r.requested_by) }
                            td data-label="Urgency" { (ui::words(r.urgency.as_str())) }
                            td data-label="Due" { (ui::when(r.due_at)) }
                            td data-label="State" { (state_tag(r.state, r.overdue)) }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(StatusCode::OK, ui::layout("Requests", Some(&session), body)))
}

#[derive(Deserialize)]
pub struct ShowQuery {
    /// What was just done, for the banner after the redirect.
    done: Option<String>,
}

/// The banner after a redirect: what just happened.
fn done_words(done: &str) -> Option<&'static str> {
    Some(match done {
        "created" => "Request sent. They have been told, and the deadline is below.",
        "already" => {
            "Your organisation already has an open request for this record: this one. No second request was sent."
        }
        "acknowledge" => "Acknowledged. The requester has been told you are working on it.",
        "fulfil" => "Recorded as sent. The requester has been told.",
        "decline" => "Declined. The requester has been told, with your reason.",
        "withdraw" => "Request withdrawn. The holding organisation has been told; it cannot be reopened.",
        _ => return None,
    })
}

/// GET /requests/{id}: one request, its history, and the steps this user may take now.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> PageResult {
    let notice = q.done.as_deref().and_then(done_words);
    render(&state, &session, &id, notice, &[], None).await
}

async fn render(
    state: &AppState,
    session: &Session,
    id: &str,
    notice: Option<&str>,
    errors: &[FieldError],
    failed: Option<Action>,
) -> PageResult {
    let err = |e| PageError::new(e, session);
    let request = state.request_view(&session.actor, id).await.map_err(err)?;
    let side = request.your_side;
    let actions: Vec<Action> = Action::ALL
        .into_iter()
        .filter(|a| transition(request.state, *a, side).is_ok())
        .filter(|a| access::allows(session.actor.role, "POST", &format!("/requests/{{id}}/{}", a.as_str())))
        .collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let body = html! {
        (ui::error_summary(errors, |f| format!("{}-{}", failed.map(|a| a.as_str()).unwrap_or("step"), f)))
        @if let Some(text) = notice { (ui::notice(text)) }
        h1 class="heading-l" { "Request for a record" }
        dl class="summary-list" {
            div class="summary-row" { dt { "State" } dd { (state_tag(request.state, request.overdue)) } }
            @if side == Side::Holder {
                div class="summary-row" { dt { "Our record" } dd { strong { (request.local_ref.as_deref().unwrap_or("removed")) } } }
            }
            @if side == Side::Requester {
                div class="summary-row" { dt { "Your case reference" } dd { strong { (request.case_ref.as_deref().unwrap_or("none given")) } } }
            }
            div class="summary-row" { dt { "From" } dd { (request.requesting_organisation.name) " (" (request.requested_by) ")" } }
            @if side == Side::Holder {
                @let from = &request.requesting_organisation;
                div class="summary-row" { dt { "Their phone" } dd { a href=(ui::tel_href(&from.duty_phone)) class="link" { (from.duty_phone) } } }
                div class="summary-row" { dt { "Their secure email" } dd { a href={ "mailto:" (from.secure_email) } class="link" { (from.secure_email) } } }
            }
            div class="summary-row" { dt { "To" } dd { (holder_name(&request)) } }
            div class="summary-row" { dt { "Legal basis" } dd { (legal_basis_words(request.legal_basis))
                @if let Some(d) = &request.legal_basis_detail { ": " (d) } } }
            div class="summary-row" { dt { "Reason" } dd { (request.reason) } }
            div class="summary-row" { dt { "Urgency" } dd { (urgency_words(request.urgency)) } }
            div class="summary-row" { dt { "Answer by" } dd { (ui::when(request.due_at)) } }
            div class="summary-row" { dt { "Sent" } dd { (ui::when(request.created_at)) } }
        }
        @for action in &actions {
            @if *action == Action::Withdraw {
                // Irreversible: a confirmation page first (no script needed).
                h2 class="heading-s" { "Withdraw" }
                p class="body" { a href={ "/requests/" (request.request_id) "/withdraw" } class="button button-warning" role="button" { "Withdraw our request" } }
            } @else {
                (step_form(session, &request.request_id, *action, if failed == Some(*action) { errors } else { &[] }))
            }
        }
        h2 class="heading-m" { "History" }
        (history_table(request.history.as_deref().unwrap_or_default()))
        p class="body" { a href="/requests" class="link" { "All requests" } }
    };
    Ok(respond(status, ui::layout(&ui::title("Request", errors), Some(session), body)))
}

fn step_form(session: &Session, id: &str, action: Action, errors: &[FieldError]) -> Markup {
    let a = action.as_str();
    // Each field's inline error, as the error summary above links to it (`fulfil-how`).
    let e = |field: &str| errors.iter().find(|e| e.field.rsplit('.').next() == Some(field));
    let (heading, button) = match action {
        Action::Acknowledge => ("Acknowledge", "Acknowledge: we are working on it"),
        Action::Fulfil => ("Record sent", "We have sent the record"),
        Action::Decline => ("Decline", "Decline the request"),
        Action::Withdraw => ("Withdraw", "Withdraw our request"),
    };
    let mut methods = vec![("", "Choose how it was sent")];
    let method_words: Vec<(&str, String)> =
        FulfilMethod::ALL.iter().map(|m| (m.as_str(), ui::words(m.as_str()))).collect();
    methods.extend(method_words.iter().map(|(v, t)| (*v, t.as_str())));
    html! {
        form method="post" action={ "/requests/" (id) "/" (a) } class="step-form" novalidate {
            (ui::csrf_field(session))
            h2 class="heading-s" { (heading) }
            @match action {
                Action::Acknowledge => {
                    (ui::text_input(&ui::Input { hint: Some("Optional, for the requester. Not case details."), width: "input-width-full",
                        error: e("note"), ..ui::Input::new(&format!("{a}-note"), "Note") }.named("note")))
                }
                Action::Fulfil => {
                    (ui::select(&Select { id: &format!("{a}-how"), name: None, label: "How it was sent", hint: None, options: methods,
                        selected: None, error: e("how"), autofocus: false }.named("how")))
                    (ui::text_input(&ui::Input { hint: Some("Optional, for example the secure transfer reference."),
                        error: e("reference"), ..ui::Input::new(&format!("{a}-reference"), "Reference") }.named("reference")))
                }
                Action::Decline | Action::Withdraw => {
                    (ui::text_input(&ui::Input {
                        hint: Some(if action == Action::Decline { "Required: the requester sees it. Not case details." } else { "Optional." }),
                        width: "input-width-full",
                        error: e("reason"),
                        ..ui::Input::new(&format!("{a}-reason"), "Reason") }.named("reason")))
                }
            }
            button type="submit" class={ "button" @if matches!(action, Action::Decline | Action::Withdraw) { " button-warning" } } { (button) }
        }
    }
}

fn history_table(history: &[HistoryEntry]) -> Markup {
    html! {
        table class="table" {
            caption class="visually-hidden" { "What has happened, oldest first" }
            thead { tr { th scope="col" { "When" } th scope="col" { "What" } th scope="col" { "Who" } th scope="col" { "Note" } } }
            tbody {
                @for e in history {
                    tr {
                        td data-label="When" { (ui::when(e.at)) }
                        td data-label="What" {
                            (ui::request_step_words(&e.action, &e.to_state))
                            @if let Some(from) = &e.from_state { ": " (ui::words(from)) " → " (ui::words(&e.to_state)) }
                        }
                        td data-label="Who" { (e.by.as_deref().unwrap_or(if e.action == "escalated" { "the service" } else { "the holding organisation" }))
                            @if let Some(o) = &e.by_organisation { " (" (o) ")" } }
                        td data-label="Note" {
                            @if let Some(how) = &e.how { "Sent by " (ui::words(how).to_lowercase()) ". " }
                            @if let Some(r) = &e.reference { "Reference " (r) ". " }
                            @if let Some(n) = &e.note { (n) }
                        }
                    }
                }
            }
        }
    }
}

async fn step(state: AppState, session: Session, id: String, action: Action, form: FormPairs) -> PageResult {
    let input = StepInput {
        how: form.text("how"),
        reference: form.text("reference"),
        sent_at: None,
        reason: form.text("reason"),
        note: form.text("note"),
    };
    match state.request_step(&session.actor, &id, action, input).await {
        Ok(_) => Ok(see_other(&format!("/requests/{id}?done={}", action.as_str()))),
        Err(e) => {
            let errors = field_errors(e, &session)?;
            render(&state, &session, &id, None, &errors, Some(action)).await
        }
    }
}

pub async fn acknowledge(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    form: FormPairs,
) -> Result<Response, PageError> {
    step(state, session, id, Action::Acknowledge, form).await
}

pub async fn fulfil(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    form: FormPairs,
) -> PageResult {
    step(state, session, id, Action::Fulfil, form).await
}

pub async fn decline(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    form: FormPairs,
) -> PageResult {
    step(state, session, id, Action::Decline, form).await
}

/// GET /requests/{id}/withdraw: are you sure? Withdrawing cannot be undone.
pub async fn confirm_withdraw(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> PageResult {
    let request = state.request_view(&session.actor, &id).await.map_err(|e| PageError::new(e, &session))?;
    if transition(request.state, Action::Withdraw, request.your_side).is_err() {
        return Err(PageError::new(
            crate::http::error::ApiError::Conflict("this request can no longer be withdrawn".into()),
            &session,
        ));
    }
    let body = html! {
        h1 class="heading-l" { "Withdraw this request?" }
        dl class="summary-list" {
            div class="summary-row" { dt { "To" } dd { (holder_name(&request)) } }
            div class="summary-row" { dt { "Your case reference" } dd { (request.case_ref.as_deref().unwrap_or("none given")) } }
            div class="summary-row" { dt { "Sent" } dd { (ui::when(request.created_at)) } }
        }
        div class="warning-text body" { strong { "The holding organisation is told at once, and a withdrawn request cannot be reopened: you would have to request the record again." } }
        form method="post" action={ "/requests/" (request.request_id) "/withdraw" } novalidate {
            (ui::csrf_field(&session))
            (ui::text_input(&ui::Input { hint: Some("Optional: why, for the holding organisation. Not case details."), width: "input-width-full",
                ..ui::Input::new("withdraw-reason", "Reason") }.named("reason")))
            div class="button-group" {
                button type="submit" class="button button-warning" { "Yes, withdraw the request" }
                a href={ "/requests/" (request.request_id) } class="link" { "No, keep it" }
            }
        }
    };
    Ok(respond(StatusCode::OK, ui::layout("Withdraw this request?", Some(&session), body)))
}

pub async fn withdraw(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    form: FormPairs,
) -> PageResult {
    step(state, session, id, Action::Withdraw, form).await
}
