//! Read-only use cases that the JSON API and the web pages share: an organisation's matches, its
//! users, the directory and the latest checkpoint. Scoping to the actor's organisation is decided
//! here, once, so both surfaces show exactly the same thing.

use serde_json::json;

use super::redaction::{self, MatchView};
use super::{Service, ServiceResult};
use crate::audit::{EventType, NewEvent};
use crate::domain::organisation::Organisation;
use crate::domain::role::Role;
use crate::domain::user::{Actor, User};

impl Service {
    /// The actor's organisation's live matches with other organisations, newest first, as
    /// `redaction` lets this organisation see them.
    pub async fn matches_of(&self, actor: &Actor) -> ServiceResult<Vec<MatchView>> {
        let rows = self.store.matches_of_org(actor.org_id, false).await?;
        let mut other_ids: Vec<i64> = rows.iter().map(|m| m.other_org).collect();
        other_ids.sort_unstable();
        other_ids.dedup();
        let others = self.store.organisations_by_id(&other_ids).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let other = others.iter().find(|o| o.id == row.other_org)?.clone();
                Some(redaction::match_view(row, Some(other)))
            })
            .collect())
    }

    /// The users of the actor's organisation.
    pub async fn users_of(&self, actor: &Actor) -> ServiceResult<Vec<User>> {
        Ok(self.store.users_of_org(actor.org_id).await?)
    }

    /// Revokes a user's token (the actor's organisation only; anyone else's is not found).
    pub async fn revoke_token(&self, actor: &Actor, user_id: i64) -> ServiceResult<User> {
        let user = self.store.revoke_user(actor.org_id, user_id, self.clock.now_ms()).await?;
        let event = NewEvent::new(EventType::TokenRevoked).by(actor).details(json!({"user_id": user.id}));
        self.audit.record(event).await?;
        Ok(user)
    }

    /// Searches the directory; only operators may include inactive organisations.
    pub async fn search_directory(
        &self,
        actor: &Actor,
        text: &str,
        include_inactive: bool,
    ) -> ServiceResult<Vec<Organisation>> {
        let include_inactive = actor.role == Role::Operator && include_inactive;
        if let Some(digits) = crate::domain::organisation::phone_query(text) {
            // A phone number is matched by its digits, so spacing never matters; the directory
            // is small enough (organisations, not children) to read whole for it.
            // A code of digits alone still finds its organisation.
            let mut found = self.store.search_organisations(text, include_inactive, 100).await?;
            let all = self.store.search_organisations("", include_inactive, 100_000).await?;
            for org in all.into_iter().filter(|o| o.has_phone(&digits)) {
                if found.len() < 100 && !found.iter().any(|f| f.id == org.id) {
                    found.push(org);
                }
            }
            return Ok(found);
        }
        Ok(self.store.search_organisations(text, include_inactive, 100).await?)
    }

    /// Directory entries by id (names and duty lines are visible to every signed-in user).
    pub async fn organisations(&self, ids: &[i64]) -> ServiceResult<Vec<Organisation>> {
        Ok(self.store.organisations_by_id(ids).await?)
    }

    /// The latest signed checkpoint note, if the log has one yet.
    pub async fn latest_checkpoint(&self) -> ServiceResult<Option<String>> {
        Ok(self.store.audit_head().await?.checkpoint)
    }
}
