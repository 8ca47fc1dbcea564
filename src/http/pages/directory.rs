//! The directory: participating organisations and their duty lines, for everyone signed in.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use maud::html;
use serde::Deserialize;

use super::{PageError, PageResult, Session, respond, ui};
use crate::http::AppState;

#[derive(Deserialize)]
pub struct DirectoryQuery {
    q: Option<String>,
}

/// GET /directory?q=…: `search_directory`, as `GET /api/v1/organisations`.
pub async fn search(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<DirectoryQuery>,
) -> PageResult {
    let text = query.q.unwrap_or_default();
    let organisations =
        state.search_directory(&session.actor, text.trim(), false).await.map_err(|e| PageError::new(e, &session))?;
    let body = html! {
        h1 class="heading-l" { "Directory" }
        form method="get" action="/directory" class="search-form" role="search" {
            (ui::text_input(&ui::Input {
                hint: Some("Words from a name in any order, a code, or a phone number. Leave empty to list all."),
                value: Some(text.as_str()).filter(|t| !t.is_empty()),
                kind: "search",
                autofocus: true,
                ..ui::Input::new("q", "Search organisations")
            }))
            button type="submit" class="button" { "Search" }
        }
        @if organisations.is_empty() { p class="body" { "No organisation matches." } }
        @else {
            table class="table" {
                caption class="visually-hidden" { "Organisations and their duty lines" }
                thead { tr { th scope="col" { "Organisation" } th scope="col" { "Kind" } th scope="col" { "Duty line" }
                    th scope="col" { "Out of hours" } th scope="col" { "Secure email" } } }
                tbody {
                    @for o in &organisations {
                        tr {
                            td data-label="Organisation" { (o.name) br; span class="body-s" { (o.code) } }
                            td data-label="Kind" { (ui::words(o.kind.as_str())) }
                            td data-label="Duty line" { a href=(ui::tel_href(&o.duty_phone)) class="link" { (o.duty_phone) } }
                            td data-label="Out of hours" { @if let Some(p) = &o.out_of_hours_phone { a href=(ui::tel_href(p)) class="link" { (p) } } @else { "–" } }
                            td data-label="Secure email" { a href={ "mailto:" (o.secure_email) } class="link" { (o.secure_email) } }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(StatusCode::OK, ui::layout("Directory", Some(&session), body)))
}
