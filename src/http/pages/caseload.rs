//! The org-admin's caseload upload: a CSV or NDJSON file, streamed into the same full-replace
//! sync as `POST /api/v1/holdings/sync`, and the summary (added, updated, removed, rejected rows).
//! Replacing the caseload needs its box ticked (without it the file is only checked, and the
//! summary says what it would do); a replacement redirects to the summary, shown once.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use futures::TryStreamExt;
use maud::{Markup, html};
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::{Flash, PageError, PageResult, Session, put_flash, respond, see_other, take_flash, ui};
use crate::domain::sync::SyncFormat;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::holdings::LimitedReader;
use crate::service::sync::{SyncError, SyncOptions, SyncSummary};

fn page(session: &Session, error: Option<&str>, summary: Option<(&SyncSummary, bool)>) -> Markup {
    shield_page(session, error, summary, None)
}

fn shield_page(
    session: &Session,
    error: Option<&str>,
    summary: Option<(&SyncSummary, bool)>,
    shielded: Option<&str>,
) -> Markup {
    let body = html! {
        @if let Some(text) = shielded { (ui::notice(text)) }
        @if let Some(message) = error {
            div class="error-summary" role="alert" aria-labelledby="error-summary-title" tabindex="-1" autofocus {
                h2 class="error-summary-title" id="error-summary-title" { "There is a problem" }
                ul class="error-summary-list" { li { a href="#caseload" { (ui::plain(message)) } } }
            }
        }
        @if let Some((s, unconfirmed)) = summary { (summary_panel(s, unconfirmed)) }
        h1 class="heading-l" { "Upload your caseload" }
        p class="body" {
            "The file replaces your organisation's whole caseload in the index: records missing from it are removed. "
            "Identifiers are turned into keyed pseudonyms as the file is read and are never stored."
        }
        form method="post" action="/caseload" enctype="multipart/form-data" novalidate {
            (ui::csrf_field(session))
            div class="form-group" {
                div class="checkbox" {
                    input class="checkbox-input" type="checkbox" id="dry_run" name="dry_run" value="true";
                    label class="label checkbox-label" for="dry_run" { "Check the file only: change nothing" }
                }
                div class="checkbox" {
                    input class="checkbox-input" type="checkbox" id="replace" name="replace" value="yes" aria-describedby="replace-hint";
                    label class="label checkbox-label" for="replace" { "Replace our whole caseload with this file" }
                }
                div class="hint" id="replace-hint" {
                    "Records missing from the file are removed from the index, and their matches withdrawn. "
                    "Without this box ticked the file is only checked, and you see what it would change."
                }
            }
            div class={ "form-group" @if error.is_some() { " form-group-error" } } {
                label class="label" for="caseload" { "Caseload file" }
                @if let Some(message) = error {
                    p class="error-message" id="caseload-error" { span class="visually-hidden" { "Error: " } (ui::plain(message)) }
                }
                div class="hint" id="caseload-hint" {
                    // The file's own column names, as the file must spell them: shown as code.
                    "CSV with a header row ("
                    code { "local_ref, category, status, nhs_number, upn, given_name, family_name, date_of_birth, postcode" }
                    ") or NDJSON, one record a line."
                }
                input class="file-upload" type="file" id="caseload" name="caseload" accept=".csv,.ndjson,.jsonl"
                    aria-describedby="caseload-hint";
            }
            button type="submit" class="button" { "Upload" }
        }
        h2 class="heading-m" id="shield" { "Shield one record" }
        p class="body" {
            "A shielded record's organisation, contact and category are never shown to anyone who asks: "
            "they are told a participating organisation knows the child and will contact them, and you are alerted."
        }
        form method="post" action="/caseload/shield" novalidate {
            (ui::csrf_field(session))
            (ui::text_input(&ui::Input { hint: Some("Your own record reference, as in the caseload file."),
                ..ui::Input::new("shield-local_ref", "Record reference") }.named("local_ref")))
            div class="button-group" {
                button type="submit" name="shielded" value="yes" class="button" { "Shield this record" }
                button type="submit" name="shielded" value="no" class="button button-secondary" { "Stop shielding it" }
            }
        }
    };
    ui::layout(if error.is_some() { "Error: Caseload" } else { "Caseload" }, Some(session), body)
}

/// POST /caseload/shield: the same service call as `PUT /api/v1/holdings/{local_ref}/shielded`.
pub async fn shield(State(state): State<AppState>, session: Session, form: super::FormPairs) -> PageResult {
    let local_ref = form.text("local_ref").unwrap_or_default();
    let shielded = form.get("shielded") == Some("yes");
    match state.set_shielded(&session.actor, &local_ref, shielded).await {
        Ok(h) => {
            put_flash(&state, &session, &Flash::Shielded { local_ref: h.local_ref, shielded: h.shielded }).await?;
            Ok(see_other("/caseload?done=1"))
        }
        Err(crate::service::ServiceError::NotFound) => Ok(respond(
            StatusCode::NOT_FOUND,
            page(&session, Some("no record of your organisation has that reference"), None),
        )),
        Err(e) => Err(PageError::new(e, &session)),
    }
}

/// "7 rows read, 2 added, 5 need fixing": the sentence the summary starts with.
fn summary_sentence(s: &SyncSummary) -> String {
    let rows = |n: u64| if n == 1 { "1 row".to_string() } else { format!("{n} rows") };
    let mut parts = vec![format!("{} read", rows(s.lines))];
    let verb = if s.dry_run { "would be " } else { "" };
    for (n, what) in [(s.added, "added"), (s.updated, "updated"), (s.removed, "removed")] {
        if n > 0 {
            parts.push(format!("{n} {verb}{what}"));
        }
    }
    if s.rejected_rows > 0 {
        parts.push(format!("{} need{} fixing", s.rejected_rows, if s.rejected_rows == 1 { "s" } else { "" }));
    }
    parts.join(", ")
}

/// A rejected row's field as people name it: `subject.nhs_number` → "NHS number".
fn row_field(field: &str) -> String {
    let leaf = field.rsplit('.').next().unwrap_or(field);
    match leaf {
        "line" => "The whole row".into(),
        "local_ref" => "Record reference".into(),
        "subject" => "Identifiers".into(),
        other => ui::message(&crate::domain::FieldError::new(other, "", other)),
    }
}

fn summary_panel(s: &SyncSummary, unconfirmed: bool) -> Markup {
    // Blue only when every row went in; rows to fix make it a warning, not a success.
    let colour = if s.rejected_rows > 0 { "panel-yellow" } else { "panel-blue" };
    html! {
        div class={ "panel " (colour) } role="status" {
            h2 class="heading-m" {
                @if s.rejected_rows > 0 && s.dry_run { "File checked: some rows need fixing" }
                @else if s.rejected_rows > 0 { "Caseload updated, but some rows need fixing" }
                @else if s.dry_run { "File checked: nothing was changed" }
                @else { "Caseload updated" }
            }
            p class="body" { (summary_sentence(s)) "." }
            @if unconfirmed {
                p class="body" { strong {
                    "To replace your caseload with this file (" (s.removed) " records would be removed), tick "
                    "\"Replace our whole caseload with this file\" and upload it again."
                } }
            }
        }
        dl class="summary-list" {
            div class="summary-row" { dt { "Added" } dd { (s.added) } }
            div class="summary-row" { dt { "Updated" } dd { (s.updated) } }
            div class="summary-row" { dt { "Unchanged" } dd { (s.unchanged) } }
            div class="summary-row" { dt { "Removed" } dd { (s.removed) } }
            div class="summary-row" { dt { "Rows that need fixing" } dd { (s.rejected_rows) } }
            div class="summary-row" { dt { "New matches" } dd { (s.matches_new) } }
            div class="summary-row" { dt { "Matches withdrawn" } dd { (s.matches_withdrawn) } }
        }
        @if !s.rejected.is_empty() {
            table class="table" {
                caption class="table-caption" {
                    "Rows that need fixing (fix them in your system and upload again)"
                    @if s.rejected_count > s.rejected.len() as u64 { ": the first " (s.rejected.len()) " of " (s.rejected_count) " problems" }
                }
                thead { tr { th scope="col" { "Record reference" } th scope="col" { "Line" } th scope="col" { "What" } th scope="col" { "Problem" } } }
                tbody { @for r in s.rejected.iter().take(500) { tr {
                    td data-label="Record reference" { (r.local_ref.as_deref().unwrap_or("No reference")) }
                    td data-label="Line" { (r.line) }
                    td data-label="What" { (row_field(&r.field)) }
                    td data-label="Problem" { (ui::plain(&r.message)) }
                } } }
            }
        }
    }
}

#[derive(serde::Deserialize)]
pub struct FormQuery {
    /// A replacement just ran: its summary is waiting, once.
    done: Option<String>,
}

/// GET /caseload (after a replacement: its summary, once)
pub async fn form(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Query(q): axum::extract::Query<FormQuery>,
) -> PageResult {
    if q.done.is_some() {
        match take_flash(&state, &session).await? {
            Some(Flash::Caseload { summary }) => {
                return Ok(respond(StatusCode::OK, page(&session, None, Some((&summary, false)))));
            }
            Some(Flash::Shielded { local_ref, shielded }) => {
                let text = format!("{local_ref} is {}.", if shielded { "now shielded" } else { "no longer shielded" });
                return Ok(respond(StatusCode::OK, shield_page(&session, None, None, Some(&text))));
            }
            _ => {}
        }
    }
    Ok(respond(StatusCode::OK, page(&session, None, None)))
}

/// POST /caseload (multipart: csrf, dry_run, then the file, in that order).
pub async fn upload(State(state): State<AppState>, session: Session, headers: HeaderMap, body: Body) -> PageResult {
    let err = |e: ApiError| PageError::new(e, &session);
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        err(ApiError::BadRequest {
            code: "not_multipart",
            message: "send the form as a file upload".into(),
            field: None,
        })
    })?;
    let mut multipart = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut dry_run = false;
    let mut replace = false;
    let unreadable = || ApiError::BadRequest {
        code: "unreadable_form",
        message: "the upload could not be read".into(),
        field: None,
    };
    while let Some(field) = multipart.next_field().await.map_err(|_| err(unreadable()))? {
        match field.name() {
            Some("dry_run") => dry_run = field.text().await.map_err(|_| err(unreadable()))? == "true",
            Some("replace") => replace = field.text().await.map_err(|_| err(unreadable()))? == "yes",
            Some("caseload") => {
                let file_name = field.file_name().unwrap_or("").to_string();
                let format = SyncFormat::from_extension(std::path::Path::new(&file_name))
                    .or_else(|| field.content_type().and_then(|m| SyncFormat::from_content_type(m.as_ref())));
                let Some(format) = format else {
                    let message = if file_name.is_empty() {
                        "choose a file to upload"
                    } else {
                        "the file must be .csv or .ndjson"
                    };
                    return Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, page(&session, Some(message), None)));
                };
                // Not confirmed: only checked, and the summary says what it would change.
                let unconfirmed = !dry_run && !replace;
                let dry_run = dry_run || unconfirmed;
                let stream = field.map_err(std::io::Error::other);
                let reader = LimitedReader {
                    inner: SyncIoBridge::new(StreamReader::new(stream)),
                    left: state.settings().max_sync_bytes as u64,
                    exceeded: Default::default(),
                };
                let result = state
                    .sync_holdings(
                        session.actor.org_id,
                        Some(&session.actor),
                        format,
                        reader,
                        SyncOptions::dry_run(dry_run),
                        &|_| {},
                    )
                    .await;
                return match result {
                    Ok(summary) if summary.dry_run => {
                        Ok(respond(StatusCode::OK, page(&session, None, Some((&summary, unconfirmed)))))
                    }
                    Ok(summary) => {
                        put_flash(&state, &session, &Flash::Caseload { summary }).await?;
                        Ok(see_other("/caseload?done=1"))
                    }
                    Err(SyncError::Unreadable { message, .. }) => {
                        Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, page(&session, Some(&message), None)))
                    }
                    Err(e @ SyncError::Interrupted { .. }) => {
                        Ok(respond(StatusCode::BAD_REQUEST, page(&session, Some(&e.to_string()), None)))
                    }
                    Err(e @ SyncError::LooksLikeEnumeration) => {
                        Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, page(&session, Some(&e.to_string()), None)))
                    }
                    Err(e @ SyncError::Busy) => {
                        Ok(respond(StatusCode::CONFLICT, page(&session, Some(&e.to_string()), None)))
                    }
                    Err(SyncError::Service(e)) => Err(PageError::new(e, &session)),
                };
            }
            _ => {}
        }
    }
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, page(&session, Some("choose a file to upload"), None)))
}
