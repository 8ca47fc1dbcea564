//! Issuing users and tokens. Each organisation's org-admin issues its own users; an operator runs
//! the index and is no one's colleague, so it may only bootstrap an organisation that has no live
//! org-admin, by issuing that first org-admin: its own audit event, seen by the organisation's IG.

use serde_json::json;

use super::{Service, ServiceError, ServiceResult};
use crate::audit::{EventType, NewEvent};
use crate::domain::FieldError;
use crate::domain::role::Role;
use crate::domain::token::Token;
use crate::domain::user::{Actor, User};

const OPERATOR_BOOTSTRAP_ONLY: &str = "an operator may only issue the first org-admin of an organisation that has \
     none; every other user is issued by the organisation's own org-admin";
const ALREADY_HAS_AN_ADMIN: &str =
    "this organisation already has a live org-admin, who issues its users; an operator may not";

impl Service {
    /// Creates a user with a fresh token and audits it. For the machine owner (the CLI, the demo)
    /// and for an org-admin adding to its own organisation: no policy check here.
    pub async fn issue_user(
        &self,
        by: Option<&Actor>,
        org_id: i64,
        name: &str,
        role: Role,
    ) -> ServiceResult<(User, String)> {
        let token = Token::generate();
        let user = self
            .store
            .add_user(org_id, name, role, &self.tokens.hash(&token), &token.hint(), self.clock.now_ms())
            .await?;
        let mut event = NewEvent::new(EventType::TokenIssued)
            .concerning([org_id])
            .details(json!({"user_id": user.id, "role": role.as_str(), "token_hint": user.token_hint}));
        if let Some(actor) = by {
            event = event.by(actor);
        }
        self.audit.record(event).await?;
        Ok((user, token.expose().to_string()))
    }

    /// A signed-in user issues a user: an org-admin into its own organisation (never an operator);
    /// an operator only the first org-admin of the organisation named by `organisation`.
    pub async fn issue_user_as(
        &self,
        actor: &Actor,
        organisation: Option<&str>,
        name: &str,
        role: Role,
    ) -> ServiceResult<(User, String)> {
        match actor.role {
            Role::OrgAdmin => {
                let elsewhere = organisation.is_some_and(|code| !code.trim().eq_ignore_ascii_case(&actor.org_code));
                if elsewhere || role == Role::Operator {
                    return Err(ServiceError::Refused("an org-admin issues users of its own organisation only".into()));
                }
                self.issue_user(Some(actor), actor.org_id, name, role).await
            }
            Role::Operator => self.bootstrap_org_admin(actor, organisation, name, role).await,
            _ => Err(ServiceError::Refused("your role does not allow this action".into())),
        }
    }

    async fn bootstrap_org_admin(
        &self,
        actor: &Actor,
        organisation: Option<&str>,
        name: &str,
        role: Role,
    ) -> ServiceResult<(User, String)> {
        if role != Role::OrgAdmin {
            return Err(ServiceError::Refused(OPERATOR_BOOTSTRAP_ONLY.into()));
        }
        let Some(code) = organisation else {
            let missing = "organisation is required: the code of the organisation whose first org-admin this is";
            return Err(vec![FieldError::new("organisation", "required", missing)].into());
        };
        let org = self.store.organisation_by_code(code).await.map_err(|_| {
            ServiceError::from(vec![FieldError::new(
                "organisation",
                "unknown_organisation",
                "no organisation has this code",
            )])
        })?;
        let token = Token::generate();
        let now = self.clock.now_ms();
        let user = self.store.add_first_org_admin(org.id, name, &self.tokens.hash(&token), &token.hint(), now).await?;
        let Some(user) = user else { return Err(ServiceError::Refused(ALREADY_HAS_AN_ADMIN.into())) };
        let event = NewEvent::new(EventType::AdminBootstrapped).by(actor).concerning([org.id]).details(
            json!({"user_id": user.id, "role": role.as_str(), "token_hint": user.token_hint, "organisation": org.code}),
        );
        self.audit.record(event).await?;
        tracing::warn!(org = org.code.as_str(), "an operator issued the first org-admin of an organisation");
        Ok((user, token.expose().to_string()))
    }
}

impl Service {
    /// The users of one organisation (the command line).
    pub async fn users_of_org(&self, org_id: i64) -> ServiceResult<Vec<User>> {
        Ok(self.store.users_of_org(org_id).await?)
    }

    /// The machine owner revokes a user's token (the command line).
    pub async fn revoke_token_of(&self, org_id: i64, user_id: i64) -> ServiceResult<User> {
        let user = self.store.revoke_user(org_id, user_id, self.clock.now_ms()).await?;
        let event = NewEvent::new(EventType::TokenRevoked)
            .concerning([org_id])
            .details(json!({"user_id": user.id, "via": "cli"}));
        self.audit.record(event).await?;
        Ok(user)
    }

    /// Reports a token of the actor's organisation as lost: every further use is flagged.
    pub async fn report_token_lost(&self, actor: &Actor, user_id: i64) -> ServiceResult<User> {
        let user = self.store.report_token_lost(actor.org_id, user_id, self.clock.now_ms()).await?;
        let event = NewEvent::new(EventType::TokenReportedLost).by(actor).details(json!({"user_id": user.id}));
        self.audit.record(event).await?;
        Ok(user)
    }
}
