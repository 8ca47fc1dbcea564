//! The directory of participating organisations: reads, and the operator's (or the machine
//! owner's) writes, each with its audit event.

use super::{Service, ServiceResult};
use crate::audit::{EventType, NewEvent};
use crate::domain::organisation::{NewOrganisation, Organisation, OrganisationChanges};
use crate::domain::user::Actor;
use serde_json::json;

/// Who changes the directory: a signed-in operator, or the machine owner at the command line.
fn directory_event(kind: EventType, by: Option<&Actor>, org: &Organisation) -> NewEvent {
    let event = NewEvent::new(kind).concerning([org.id]);
    match by {
        Some(actor) => event.by(actor).details(json!({"code": org.code})),
        None => event.details(json!({"code": org.code, "via": "cli"})),
    }
}

impl Service {
    /// One directory entry by code.
    pub async fn organisation_by_code(&self, code: &str) -> ServiceResult<Organisation> {
        Ok(self.store.organisation_by_code(code).await?)
    }

    /// Every directory entry matching `text` (the command line's listing: no role, no page limit).
    pub async fn directory_listing(&self, text: &str, include_inactive: bool) -> ServiceResult<Vec<Organisation>> {
        Ok(self.store.search_organisations(text, include_inactive, 10_000).await?)
    }

    /// Adds an organisation and audits it (`by` None: the command line).
    pub async fn add_organisation(&self, by: Option<&Actor>, new: &NewOrganisation) -> ServiceResult<Organisation> {
        let org = self.store.add_organisation(new, self.clock.now_ms()).await?;
        self.audit.record(directory_event(EventType::OrganisationAdded, by, &org)).await?;
        Ok(org)
    }

    /// Changes an organisation (its code in any case) and audits it (`by` None: the command line).
    pub async fn update_organisation(
        &self,
        by: Option<&Actor>,
        code: &str,
        changes: &OrganisationChanges,
    ) -> ServiceResult<Organisation> {
        let org = self.store.update_organisation(&code.to_ascii_uppercase(), changes, self.clock.now_ms()).await?;
        self.audit.record(directory_event(EventType::OrganisationUpdated, by, &org)).await?;
        Ok(org)
    }

    /// Sets the postcode areas an organisation covers (the operator's `locator org areas`).
    pub async fn set_organisation_areas(&self, by: Option<&Actor>, code: &str, areas: &[String]) -> ServiceResult<()> {
        let code = code.to_ascii_uppercase();
        self.store.set_organisation_areas(&code, areas, self.clock.now_ms()).await?;
        // The next lookup counts the directory afresh rather than keep the old areas for a while.
        *self.coverage_cache.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.participants_cache.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let org = self.store.organisation_by_code(&code).await?;
        self.audit.record(directory_event(EventType::OrganisationUpdated, by, &org)).await?;
        Ok(())
    }
}
