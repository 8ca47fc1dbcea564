//! Our holdings that match another organisation's: who else knows the child, how sure the match
//! is, and who to call there (the holder's side of "known elsewhere").

use axum::extract::State;
use axum::http::StatusCode;
use maud::html;

use super::{PageError, PageResult, Session, respond, ui};
use crate::http::AppState;
use crate::http::access;

/// GET /matches: `matches_of`, as `GET /api/v1/matches`.
pub async fn list(State(state): State<AppState>, session: Session) -> PageResult {
    let matches = state.matches_of(&session.actor).await.map_err(|e| PageError::new(e, &session))?;
    let can_request = access::allows(session.actor.role, "GET", "/requests/new");
    let body = html! {
        h1 class="heading-l" { "Matches with other organisations" }
        p class="body" { "Records your organisation holds that another participating organisation also holds." }
        @if matches.is_empty() { p class="body" { "No matches at the moment." } }
        @else {
            table class="table" {
                caption class="visually-hidden" { "Matches, newest first" }
                thead { tr {
                    th scope="col" { "Our record" } th scope="col" { "Also known to" } th scope="col" { "Contact" }
                    th scope="col" { "How sure" } th scope="col" { "Since" }
                    @if can_request { th scope="col" { span class="visually-hidden" { "Action" } } }
                } }
                tbody {
                    @for m in &matches {
                        tr {
                            td data-label="Our record" { (m.local_ref) }
                            @if let Some(other) = &m.other_organisation {
                                td data-label="Also known to" { (other.name) }
                                td data-label="Contact" {
                                    a href=(ui::tel_href(&other.duty_phone)) class="link" { (other.duty_phone) } br;
                                    a href={ "mailto:" (other.secure_email) } class="link" { (other.secure_email) }
                                }
                            } @else {
                                // A shielded record: its holder is never named; it has been alerted.
                                td data-label="Also known to" { strong { "A participating organisation" } " (shielded record)" }
                                td data-label="Contact" { "They have been alerted and will contact you." }
                            }
                            td data-label="How sure" { (ui::tier_tag(&m.tier)) " " (m.evidence) }
                            td data-label="Since" { (ui::date(m.first_seen)) }
                            @if can_request {
                                td { a href={ "/requests/new?match_id=" (m.match_id) } class="link" {
                                    "Request" span class="visually-hidden" { " the record behind match " (m.match_id) } } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(StatusCode::OK, ui::layout("Matches", Some(&session), body)))
}
