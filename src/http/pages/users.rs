//! The org-admin's users and tokens: the list, issuing a user a token (shown once, on the page
//! the form redirects to, then gone), and revoking one after a confirmation. The same functions
//! as `/api/v1/users`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;

use super::ui::{self, Input, Select};
use super::{Flash, FormPairs, PageError, PageResult, Session, put_flash, respond, see_other, take_flash};
use crate::domain::FieldError;
use crate::domain::organisation::parse_label;
use crate::domain::role::Role;
use crate::http::AppState;
use crate::http::error::ApiError;

/// The roles an org-admin may issue (operators are issued by operators only).
const ISSUABLE: [Role; 3] = [Role::Practitioner, Role::IgOfficer, Role::OrgAdmin];

async fn page(state: &AppState, session: &Session, errors: &[FieldError], notice: Option<Markup>) -> PageResult {
    let users = state.users_of(&session.actor).await.map_err(|e| PageError::new(e, session))?;
    let role_words: Vec<(&str, String)> = ISSUABLE.iter().map(|r| (r.as_str(), ui::words(r.as_str()))).collect();
    let roles: Vec<(&str, &str)> =
        std::iter::once(("", "Choose a role")).chain(role_words.iter().map(|(v, t)| (*v, t.as_str()))).collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let body = html! {
        (ui::error_summary(errors, |f| f.to_string()))
        @if let Some(n) = notice { (n) }
        h1 class="heading-l" { "Users and tokens" }
        table class="table" {
            caption class="visually-hidden" { "Users of your organisation" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "Token starts" }
                th scope="col" { "Issued" } th scope="col" { "State" } th scope="col" { span class="visually-hidden" { "Action" } } } }
            tbody {
                @for u in &users {
                    tr {
                        td data-label="Name" { (u.name) } td data-label="Role" { (ui::words(u.role.as_str())) } td data-label="Token starts" { code { (u.token_hint) "…" } }
                        td data-label="Issued" { (ui::date(u.created_at)) }
                        td data-label="State" { @if let Some(at) = u.revoked_at { (ui::tag("Revoked", "grey")) " " (ui::date(at)) } @else { (ui::tag("Active", "green")) } }
                        td {
                            @if u.revoked_at.is_none() && u.id != session.actor.user_id {
                                // Irreversible: a confirmation page first (no script needed).
                                a href={ "/users/" (u.id) "/revoke" } class="button button-warning button-small" role="button" {
                                    "Revoke" span class="visually-hidden" { " the token of " (u.name) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 class="heading-m" { "Issue a token" }
        form method="post" action="/users" novalidate {
            (ui::csrf_field(session))
            (ui::text_input(&Input { error: ui::error_for(errors, |f| f.to_string(), "name"), autocomplete: "off",
                ..Input::new("name", "Name") }))
            (ui::select(&Select { id: "role", name: None, label: "Role", hint: None, options: roles, selected: None,
                error: ui::error_for(errors, |f| f.to_string(), "role"), autofocus: false }))
            button type="submit" class="button" { "Issue token" }
        }
    };
    Ok(respond(status, ui::layout(&ui::title("Users and tokens", errors), Some(session), body)))
}

#[derive(Deserialize)]
pub struct ListQuery {
    /// A token was just issued: its one-time message is waiting.
    issued: Option<String>,
    /// A token was just revoked: the user's id.
    revoked: Option<i64>,
}

/// GET /users (after issuing: the token, this once; after revoking: what happened).
pub async fn list(State(state): State<AppState>, session: Session, Query(q): Query<ListQuery>) -> PageResult {
    let mut notice = None;
    if q.issued.is_some() {
        notice = Some(match take_flash(&state, &session).await? {
            Some(Flash::Token { name, token }) => html! {
                div class="panel panel-green" role="status" {
                    h2 class="heading-m" { "Token issued for " (name) }
                    p class="body" { "Give it to them securely now. It is shown this once: the index keeps only a keyed hash, and reloading this page will not show it again." }
                    label class="label" for="issued-token" { "Token" }
                    input class="input input-width-full token" id="issued-token" type="text" readonly value=(token);
                }
            },
            _ => ui::notice(
                "The token was shown once and cannot be shown again. If it did not reach them, revoke it and issue a new one.",
            ),
        });
    }
    if let Some(id) = q.revoked {
        let users = state.users_of(&session.actor).await.map_err(|e| PageError::new(e, &session))?;
        if let Some(u) = users.iter().find(|u| u.id == id && u.revoked_at.is_some()) {
            notice = Some(ui::notice(&format!(
                "The token of {} was revoked. They were signed out and cannot use it again.",
                u.name
            )));
        }
    }
    page(&state, &session, &[], notice).await
}

/// POST /users: a new user of this organisation and their token, shown once on the page this
/// redirects to (so a reload neither issues a second token nor shows this one again).
pub async fn issue(State(state): State<AppState>, session: Session, form: FormPairs) -> PageResult {
    let mut errors = Vec::new();
    let name = parse_label("name", form.get("name").unwrap_or(""), 200).map_err(|e| errors.push(e)).ok();
    let role = form.text("role").and_then(|r| Role::parse(&r)).filter(|r| ISSUABLE.contains(r));
    if role.is_none() {
        errors.push(FieldError::new("role", "invalid_role", "select practitioner, IG officer or org admin"));
    }
    let (Some(name), Some(role)) = (name, role) else { return page(&state, &session, &errors, None).await };
    let (user, token) = state
        .issue_user(Some(&session.actor), session.actor.org_id, &name, role)
        .await
        .map_err(|e| PageError::new(e, &session))?;
    put_flash(&state, &session, &Flash::Token { name: user.name, token }).await?;
    Ok(see_other("/users?issued=1"))
}

/// GET /users/{id}/revoke: are you sure? A revoked token cannot be restored.
pub async fn confirm_revoke(State(state): State<AppState>, session: Session, Path(id): Path<i64>) -> PageResult {
    let users = state.users_of(&session.actor).await.map_err(|e| PageError::new(e, &session))?;
    let Some(user) = users.into_iter().find(|u| u.id == id) else {
        return Err(PageError::new(ApiError::NotFound, &session));
    };
    if user.revoked_at.is_some() {
        return Err(PageError::new(ApiError::Conflict("this token is already revoked".into()), &session));
    }
    let body = html! {
        h1 class="heading-l" { "Revoke the token of " (user.name) "?" }
        p class="body" { (user.name) " (" (user.role.as_str()) ", token starting " code { (user.token_hint) "…" } ")." }
        div class="warning-text body" { strong { "They are signed out at once and can never use this token again. This cannot be undone: to let them back in, issue a new token." } }
        form method="post" action={ "/users/" (user.id) "/revoke" } novalidate {
            (ui::csrf_field(&session))
            div class="button-group" {
                button type="submit" class="button button-warning" { "Yes, revoke the token" }
                a href="/users" class="link" { "No, keep it" }
            }
        }
    };
    Ok(respond(StatusCode::OK, ui::layout("Revoke a token?", Some(&session), body)))
}

/// POST /users/{id}/revoke (from the confirmation page)
pub async fn revoke(State(state): State<AppState>, session: Session, Path(id): Path<i64>) -> PageResult {
    state.revoke_token(&session.actor, id).await.map_err(|e| PageError::new(e, &session))?;
    Ok(see_other(&format!("/users?revoked={id}")))
}
