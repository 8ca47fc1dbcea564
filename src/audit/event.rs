//! What an audit event says, and its canonical bytes (the Merkle leaf).
//! Details carry counts, ids and pseudonym key kinds, never a plaintext identifier.

use serde::Serialize;
use serde_json::Value;

use super::leaf::{LEAF_VERSION, LeafKey, Sealed, match_value, scope_value};
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
    /// An org-admin registered a system as an OAuth client (its public key).
    ClientRegistered,
    /// A client was revoked: its access tokens stop working.
    ClientRevoked,
    /// A client proved itself with a signed assertion and was issued an access token.
    ClientTokenIssued,
    /// An organisation's long-lived API tokens were turned off or on.
    TokenPolicyChanged,
    /// An organisation's OpenID Connect provider was set or removed (never its secret).
    IdentityProviderChanged,
    /// A person signed in through their organisation's identity provider.
    SignedIn,
    /// A sign-in through an identity provider was refused, and why.
    SignInRefused,
    /// A person's first sign-in through their provider created their user (just in time).
    UserProvisioned,
    /// A provider user's role changed, or they were disabled or enabled, by their claims.
    RoleChanged,
}

impl EventType {
    pub const ALL: [EventType; 37] = [
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
        EventType::ClientRegistered,
        EventType::ClientRevoked,
        EventType::ClientTokenIssued,
        EventType::TokenPolicyChanged,
        EventType::IdentityProviderChanged,
        EventType::SignedIn,
        EventType::SignInRefused,
        EventType::UserProvisioned,
        EventType::RoleChanged,
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
            EventType::ClientRegistered => "client_registered",
            EventType::ClientRevoked => "client_revoked",
            EventType::ClientTokenIssued => "client_token_issued",
            EventType::TokenPolicyChanged => "token_policy_changed",
            EventType::IdentityProviderChanged => "identity_provider_changed",
            EventType::SignedIn => "signed_in",
            EventType::SignInRefused => "sign_in_refused",
            EventType::UserProvisioned => "user_provisioned",
            EventType::RoleChanged => "role_changed",
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

/// The actor as the leaf names it: `ActorRef`, plus the `client_id` when a system acted (absent
/// for a person, so the bytes of every other event are as before clients existed).
#[derive(Serialize)]
struct CanonicalActor<'a> {
    user_id: i64,
    org_id: i64,
    org_code: &'a str,
    role: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
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
    /// The acting system's `client_id`, named beside the actor in the leaf (see `by`).
    pub client_id: Option<String>,
    /// Not part of the hashed body: derived rows stored beside it.
    pub attachments: Vec<Attachment>,
    /// What a person typed (a purpose's detail): stored beside the leaf, which holds only a
    /// salted commitment to it, so it can be erased under retention and shown only to the
    /// actor's organisation.
    pub free_text: Option<String>,
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
            client_id: None,
            attachments: Vec::new(),
            free_text: None,
        }
    }

    /// Whether the event stores pseudonyms for subject access to find it by.
    pub fn asks_pseudonyms(&self) -> bool {
        self.attachments.iter().any(|a| matches!(a, Attachment::LookupPseudonym(_)))
    }

    pub fn by(mut self, actor: &Actor) -> Self {
        self.actor = Some(ActorRef::from(actor));
        self.client_id = actor.client_id.clone();
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

/// The canonical form that is hashed into the log (format v2). Field order is fixed by this
/// struct, and JSON objects in `details` serialise with sorted keys, so the bytes are
/// reproducible. Only the actor is named in clear: every other organisation, the holdings a
/// lookup reached, the pseudonyms it asked and any free text are salted commitments
/// (`super::leaf`), so the bytes an inclusion proof hands an IG officer name no one else.
#[derive(Serialize)]
struct CanonicalEvent<'a> {
    v: u64,
    seq: u64,
    at: Millis,
    #[serde(rename = "type")]
    kind: &'static str,
    actor: Option<CanonicalActor<'a>>,
    purpose: &'a Option<String>,
    lookup_id: &'a Option<String>,
    /// One commitment per organisation in scope, sorted (so the order says nothing).
    scope: Vec<String>,
    /// The match ids a lookup handed out, each with a commitment to its `lookup_matches` row.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    matches: Vec<SealedMatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asked: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    free_text: Option<String>,
    details: &'a Value,
}

#[derive(Serialize)]
struct SealedMatch {
    match_id: String,
    row: String,
}

/// The canonical bytes of `event` at `seq`, its commitments salted under `key`.
pub fn canonical_body(event: &NewEvent, seq: u64, at: Millis, key: &LeafKey) -> Vec<u8> {
    let mut scope: Vec<String> =
        event.scope().into_iter().map(|org| key.commit(Sealed::Scope, seq, &scope_value(org))).collect();
    scope.sort_unstable();
    let mut matches: Vec<SealedMatch> = event
        .attachments
        .iter()
        .filter_map(|a| match a {
            Attachment::LookupMatch { match_id, holding_id, holder_org_id, tier, basis, shielded } => {
                let value = match_value(match_id, *holding_id, *holder_org_id, tier, basis, *shielded);
                Some(SealedMatch { match_id: match_id.clone(), row: key.commit(Sealed::Match, seq, &value) })
            }
            Attachment::LookupPseudonym(_) => None,
        })
        .collect();
    matches.sort_by(|a, b| a.match_id.cmp(&b.match_id));
    let asked = asked_value(event.attachments.iter().filter_map(|a| match a {
        Attachment::LookupPseudonym(p) => Some(p.as_bytes().to_vec()),
        Attachment::LookupMatch { .. } => None,
    }))
    .map(|value| key.commit(Sealed::Asked, seq, &value));
    let free_text = event.free_text.as_ref().map(|text| key.commit(Sealed::FreeText, seq, text.as_bytes()));
    let canonical = CanonicalEvent {
        v: LEAF_VERSION,
        seq,
        at,
        kind: event.kind.as_str(),
        actor: event.actor.as_ref().map(|a| CanonicalActor {
            user_id: a.user_id,
            org_id: a.org_id,
            org_code: &a.org_code,
            role: &a.role,
            client_id: event.client_id.as_deref(),
        }),
        purpose: &event.purpose,
        lookup_id: &event.lookup_id,
        scope,
        matches,
        asked,
        free_text,
        details: &event.details,
    };
    // Serialising plain data to a Vec cannot fail.
    serde_json::to_vec(&canonical).unwrap_or_default()
}

/// The bytes the asked pseudonyms are committed as: sorted, without repeats, end to end
/// (`None` when the event asked none).
pub fn asked_value(pseudonyms: impl IntoIterator<Item = Vec<u8>>) -> Option<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = pseudonyms.into_iter().collect();
    all.sort_unstable();
    all.dedup();
    (!all.is_empty()).then(|| all.concat())
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
        let key = LeafKey::derive(&[1; 32]);
        assert_eq!(canonical_body(&a, 7, 1000, &key), canonical_body(&b, 7, 1000, &key));
    }

    #[test]
    fn a_v2_leaf_names_no_organisation_but_the_actors_and_no_free_text() {
        let mut event = NewEvent::new(EventType::ShieldedHit).concerning([424_242]);
        event.free_text = Some("checking for a colleague".into());
        let body = String::from_utf8(canonical_body(&event, 3, 1000, &LeafKey::derive(&[1; 32]))).unwrap();
        assert!(body.starts_with(r#"{"v":2,"seq":3,"#), "{body}");
        assert!(!body.contains("424242") && !body.contains("colleague"), "{body}");
    }
}
