//! The org-admin's users and tokens: the list, issuing a user a token (shown once, on a page
//! that is never stored), and revoking one. The same functions as `/api/v1/users`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use maud::{Markup, html};

use super::ui::{self, Input, Select};
use super::{FormPairs, PageError, PageResult, Session, respond, see_other};
use crate::domain::FieldError;
use crate::domain::organisation::parse_label;
use crate::domain::role::Role;
use crate::http::AppState;

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
                        td { (u.name) } td { (ui::words(u.role.as_str())) } td { code { (u.token_hint) "…" } }
                        td { (ui::date(u.created_at)) }
                        td { @if let Some(at) = u.revoked_at { (ui::tag("Revoked", "grey")) " " (ui::date(at)) } @else { (ui::tag("Active", "green")) } }
                        td {
                            @if u.revoked_at.is_none() && u.id != session.actor.user_id {
                                form method="post" action={ "/users/" (u.id) "/revoke" } {
                                    (ui::csrf_field(session))
                                    button type="submit" class="button button-warning button-small" {
                                        "Revoke" span class="visually-hidden" { " the token of " (u.name) }
                                    }
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

/// GET /users
pub async fn list(State(state): State<AppState>, session: Session) -> PageResult {
    page(&state, &session, &[], None).await
}

/// POST /users: a new user of this organisation and their token, shown this once.
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
    let notice = html! {
        div class="panel panel-green" role="status" {
            h2 class="heading-m" { "Token issued for " (user.name) }
            p class="body" { "Give it to them securely now. It is shown this once: the index keeps only a keyed hash." }
            label class="label" for="issued-token" { "Token" }
            input class="input input-width-full token" id="issued-token" type="text" readonly value=(token);
        }
    };
    page(&state, &session, &[], Some(notice)).await
}

/// POST /users/{id}/revoke
pub async fn revoke(State(state): State<AppState>, session: Session, Path(id): Path<i64>) -> PageResult {
    state.revoke_token(&session.actor, id).await.map_err(|e| PageError::new(e, &session))?;
    Ok(see_other("/users"))
}
