//! What an audit event says, and its canonical bytes (the Merkle leaf).
//! Details carry counts, ids and pseudonym key kinds, never a plaintext identifier.

use serde::Serialize;
use serde_json::Value;

use crate::clock::Millis;
use crate::domain::user::Actor;

/// Every kind of event, with a stable name that filters and exports use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Lookup,
    SubjectAccess,
    ShieldedHit,
    HoldingPut,
    HoldingDeleted,
    SyncRun,
    SyncStarted,
    SyncInterrupted,
    MatchMade,
    MatchWithdrawn,
    RequestCreated,
    RequestStateChanged,
    RequestEscalated,
    TokenIssued,
    TokenRevoked,
    TokenReportedLost,
    AuthFailed,
    AccessDenied,
    RateLimited,
    KeyOperation,
    Purge,
    OrganisationAdded,
    OrganisationUpdated,
    ServiceStarted,
    AuditExported,
    BackupTaken,
    /// An operator issued the first org-admin of an organisation that had none (bootstrap).
    AdminBootstrapped,
    /// A caseload change looked like guessing (enumeration) or went past the daily churn allowance.
    SyncFlagged,
}

impl EventType {
    pub const ALL: [EventType; 28] = [
        EventType::Lookup,
        EventType::SubjectAccess,
        EventType::ShieldedHit,
        EventType::HoldingPut,
        EventType::HoldingDeleted,
        EventType::SyncRun,
        EventType::SyncStarted,
        EventType::SyncInterrupted,
        EventType::MatchMade,
        EventType::MatchWithdrawn,
        EventType::RequestCreated,
        EventType::RequestStateChanged,
        EventType::RequestEscalated,
        EventType::TokenIssued,
        EventType::TokenRevoked,
        EventType::TokenReportedLost,
        EventType::AuthFailed,
        EventType::AccessDenied,
        EventType::RateLimited,
        EventType::KeyOperation,
        EventType::Purge,
        EventType::OrganisationAdded,
        EventType::OrganisationUpdated,
        EventType::ServiceStarted,
        EventType::AuditExported,
        EventType::BackupTaken,
        EventType::AdminBootstrapped,
        EventType::SyncFlagged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Lookup => "lookup",
            EventType::SubjectAccess => "subject_access",
            EventType::ShieldedHit => "shielded_hit",
            EventType::HoldingPut => "holding_put",
            EventType::HoldingDeleted => "holding_deleted",
            EventType::SyncRun => "sync_run",
            EventType::SyncStarted => "sync_started",
            EventType::SyncInterrupted => "sync_interrupted",
            EventType::MatchMade => "match_made",
            EventType::MatchWithdrawn => "match_withdrawn",
            EventType::RequestCreated => "request_created",
            EventType::RequestStateChanged => "request_state_changed",
            EventType::RequestEscalated => "request_escalated",
            EventType::TokenIssued => "token_issued",
            EventType::TokenRevoked => "token_revoked",
            EventType::TokenReportedLost => "token_reported_lost",
            EventType::AuthFailed => "auth_failed",
            EventType::AccessDenied => "access_denied",
            EventType::RateLimited => "rate_limited",
            EventType::KeyOperation => "key_operation",
            EventType::Purge => "purge",
            EventType::OrganisationAdded => "organisation_added",
            EventType::OrganisationUpdated => "organisation_updated",
            EventType::ServiceStarted => "service_started",
            EventType::AuditExported => "audit_exported",
            EventType::BackupTaken => "backup_taken",
            EventType::AdminBootstrapped => "admin_bootstrapped",
            EventType::SyncFlagged => "sync_flagged",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// Who acted, by id and role: enough to answer "who looked?" without copying names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActorRef {
    pub user_id: i64,
    pub org_id: i64,
    pub org_code: String,
    pub role: String,
}

impl From<&Actor> for ActorRef {
    fn from(a: &Actor) -> Self {
        ActorRef { user_id: a.user_id, org_id: a.org_id, org_code: a.org_code.clone(), role: a.role.as_str().into() }
    }
}

/// Rows written in the same transaction as the event, so they exist if and only if the event
/// does (e.g. the match ids a lookup handed out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    LookupMatch {
        match_id: String,
        holding_id: i64,
        holder_org_id: i64,
        tier: &'static str,
        basis: &'static str,
        /// The holder stays hidden from the asker, in every later view and request.
        shielded: bool,
    },
    /// An exact-form pseudonym the search asked, so subject access can find it later.
    LookupPseudonym(crate::domain::identity::Pseudonym),
}

/// An event before it has a place in the log.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventType,
    pub actor: Option<ActorRef>,
    pub purpose: Option<String>,
    pub lookup_id: Option<String>,
    /// Organisations (by id) the event concerns beyond the actor's: their IG officers see it.
    pub concerns: Vec<i64>,
    pub details: Value,
    /// Not part of the hashed body: derived rows stored beside it.
    pub attachments: Vec<Attachment>,
}

impl NewEvent {
    pub fn new(kind: EventType) -> Self {
        NewEvent {
            kind,
            actor: None,
            purpose: None,
            lookup_id: None,
            concerns: Vec::new(),
            details: Value::Null,
            attachments: Vec::new(),
        }
    }

    /// Whether the event stores pseudonyms for subject access to find it by.
    pub fn asks_pseudonyms(&self) -> bool {
        self.attachments.iter().any(|a| matches!(a, Attachment::LookupPseudonym(_)))
    }

    pub fn by(mut self, actor: &Actor) -> Self {
        self.actor = Some(ActorRef::from(actor));
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn concerning(mut self, org_ids: impl IntoIterator<Item = i64>) -> Self {
        self.concerns.extend(org_ids);
        self
    }

    /// Organisations whose IG officers may see this event: the actor's and those concerned.
    pub fn scope(&self) -> Vec<i64> {
        let mut orgs: Vec<i64> = self.actor.iter().map(|a| a.org_id).chain(self.concerns.iter().copied()).collect();
        orgs.sort_unstable();
        orgs.dedup();
        orgs
    }
}

/// The canonical form that is hashed into the log. Field order is fixed by this struct, and
/// JSON objects in `details` serialise with sorted keys, so the bytes are reproducible.
#[derive(Serialize)]
struct CanonicalEvent<'a> {
    seq: u64,
    at: Millis,
    #[serde(rename = "type")]
    kind: &'static str,
    actor: &'a Option<ActorRef>,
    purpose: &'a Option<String>,
    lookup_id: &'a Option<String>,
    scope: Vec<i64>,
    details: &'a Value,
}

pub fn canonical_body(event: &NewEvent, seq: u64, at: Millis) -> Vec<u8> {
    let canonical = CanonicalEvent {
        seq,
        at,
        kind: event.kind.as_str(),
        actor: &event.actor,
        purpose: &event.purpose,
        lookup_id: &event.lookup_id,
        scope: event.scope(),
        details: &event.details,
    };
    // Serialising plain data to a Vec cannot fail.
    serde_json::to_vec(&canonical).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn canonical_bytes_are_reproducible_whatever_the_key_order_given() {
        let a = NewEvent::new(EventType::Lookup).details(serde_json::json!({"b": 1, "a": 2}));
        let b = NewEvent::new(EventType::Lookup).details(serde_json::json!({"a": 2, "b": 1}));
        assert_eq!(canonical_body(&a, 7, 1000), canonical_body(&b, 7, 1000));
    }
}
