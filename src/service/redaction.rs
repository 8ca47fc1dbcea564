//! The one redaction point: every view of a request, a match or a lookup's shielded record that
//! an organisation receives is built here from the store's rows, and nowhere else.
//!
//! A view type here can only be constructed in this module (each carries a private `_sealed`
//! field), and the service's use cases return these views, never the raw rows. So the JSON
//! handlers, the pages and anything else on the asker's side can only show what was redacted
//! here: a shielded holder is never named to the other side (not its code, name, contact or
//! staff), and a shielded match says its tier and fixed wording only, never which details
//! agree (that would narrow the child's area).

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::{Service, ServiceResult};
use crate::clock::{Millis, rfc3339};
use crate::domain::identity::Tier;
use crate::domain::lookup::{CarerAgreement, MatchedRecord};
use crate::domain::matching::Basis;
use crate::domain::organisation::Organisation;
use crate::domain::policy;
use crate::domain::request::{LegalBasis, RequestState, Side, Urgency};
use crate::domain::user::Actor;
use crate::store::StoreError;
use crate::store::matches::MatchRow;
use crate::store::requests::{RequestEventRow, StagedStep, StoredRequest};

/// What a shielded match says instead of which details agree: the same words whatever the
/// asker typed, so an answer never tells a right guess (e.g. a postcode district) from a wrong one.
pub const SHIELDED_EVIDENCE: &str = "A shielded record matches; which details agree is not shown";

/// What an asker is told about a shielded record, in place of who holds it.
pub const SHIELDED_NOTICE: &str = "Known to a participating organisation, which has been alerted and will contact you. \
     Request the record with this match_id.";

/// Stands in for a holder's name wherever the requester of a shielded record would see it.
pub const SHIELDED_HOLDER: &str = "A participating organisation (shielded record: they will contact you)";

/// Makes a view constructible only in this module.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sealed;

/// A request as one of its two organisations may see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RequestView {
    pub request_id: String,
    /// `requested`, `acknowledged`, `fulfilled`, `declined` or `withdrawn`.
    pub state: RequestState,
    pub match_id: String,
    /// Your organisation's side: `requester` or `holder`.
    pub your_side: Side,
    pub legal_basis: LegalBasis,
    pub legal_basis_detail: Option<String>,
    /// Why the record is needed (not case details).
    pub reason: String,
    pub urgency: Urgency,
    #[serde(serialize_with = "crate::clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub created_at: Millis,
    #[serde(serialize_with = "crate::clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: Millis,
    /// When the holder should have answered (fulfilled or declined).
    #[serde(serialize_with = "crate::clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub due_at: Millis,
    /// Open and past its deadline.
    pub overdue: bool,
    /// When the overdue request was escalated to the holder (once).
    #[serde(serialize_with = "crate::clock::as_rfc3339_opt")]
    #[schema(value_type = Option<String>)]
    pub escalated_at: Option<Millis>,
    pub requesting_organisation: Organisation,
    /// The practitioner who asked.
    pub requested_by: String,
    /// Absent for the requester when the record is shielded: the holder contacts you.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holding_organisation: Option<Organisation>,
    /// The record was shielded: the index never names its holder to the requester.
    pub shielded: bool,
    /// The holder's own record reference (shown to the holder only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_ref: Option<String>,
    /// The requester's own case reference (shown to the requesting organisation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_ref: Option<String>,
    /// Every step, oldest first (on single-request answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntry>>,
    #[serde(skip)]
    _sealed: Sealed,
}

/// One step of a request's history, as the viewer may see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntry {
    #[serde(serialize_with = "crate::clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub at: Millis,
    /// `created`, `acknowledged`, `fulfilled`, `declined`, `withdrawn` or `escalated`.
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: String,
    /// Who took the step (absent for the system's escalation, and for a shielded holder's
    /// steps as its requester sees them).
    pub by: Option<String>,
    pub by_organisation: Option<String>,
    /// fulfil: how the record was sent, its reference and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub how: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "crate::clock::as_rfc3339_opt")]
    #[schema(value_type = Option<String>)]
    pub sent_at: Option<Millis>,
    /// The note or reason given with the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip)]
    _sealed: Sealed,
}

/// One of our holdings that matches another organisation's, as we may see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MatchView {
    /// The same id is seen by both organisations; request the record with it.
    pub match_id: String,
    pub local_ref: String,
    /// Absent when the other record is shielded: its holder has been alerted and will contact you.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_organisation: Option<Organisation>,
    pub shielded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<&'static str>,
    pub tier: String,
    /// `child` (the child's keys agree) or `carer` (a parent or carer's keys agree).
    pub basis: String,
    /// Which details agree; for a shielded record, fixed wording only.
    pub evidence: String,
    #[serde(serialize_with = "crate::clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub first_seen: Millis,
    #[serde(skip)]
    _sealed: Sealed,
}

/// A lookup's match with a shielded record: a match id to request it with, a tier and fixed
/// wording. It has no field for an organisation, a contact, a category or which details
/// agreed, so no answer built from it can carry them.
#[derive(Debug, Clone)]
pub struct ShieldedRecord {
    pub match_id: String,
    pub tier: Tier,
    pub basis: Basis,
    /// In a family lookup, which entered child (index in `family.children`) it is about.
    pub child: Option<usize>,
    /// For a carer match, each entered carer that agreed, and how strongly.
    pub carers: Vec<(usize, Tier)>,
    _sealed: Sealed,
}

impl ShieldedRecord {
    /// Always `SHIELDED_EVIDENCE`.
    pub fn evidence(&self) -> &'static str {
        SHIELDED_EVIDENCE
    }
}

/// Redacts a lookup's match with a shielded holding: everything but the match id, tier, basis
/// and which entered subject matched is dropped.
pub(super) fn shielded_record(record: MatchedRecord) -> ShieldedRecord {
    ShieldedRecord {
        match_id: record.match_id,
        tier: record.tier,
        basis: record.basis,
        child: record.child,
        carers: record.carers.iter().map(|a: &CarerAgreement| (a.carer, a.tier)).collect(),
        _sealed: Sealed,
    }
}

/// Redacts a holding match for the organisation that sees it.
pub(super) fn match_view(row: MatchRow, other: Option<Organisation>) -> MatchView {
    let shielded = row.other_shielded || other.is_none();
    MatchView {
        match_id: row.match_id,
        local_ref: row.own_local_ref,
        other_organisation: if shielded { None } else { other },
        shielded,
        notice: shielded.then_some(SHIELDED_NOTICE),
        tier: row.tier,
        basis: row.basis,
        evidence: if shielded { SHIELDED_EVIDENCE.to_string() } else { row.evidence },
        first_seen: row.first_seen,
        _sealed: Sealed,
    }
}

/// The other organisation's `request.state_changed` message (webhook payload) for a step. A
/// shielded holder contacts the requester itself: its steps are not attributed.
pub(super) fn step_notice(step: &StagedStep) -> serde_json::Value {
    let mut notice = serde_json::json!({
        "request_id": step.request_id,
        "state": step.to_state.as_str(),
        "previous_state": step.from_state.as_str(),
        "at": rfc3339(step.at),
    });
    if !(step.holder_shielded && step.actor_org_id == step.holder_org_id) {
        notice["by_organisation"] = serde_json::json!(step.actor_org_code);
    }
    notice
}

/// Builds request views for one viewer, loading each organisation once.
pub(super) struct RequestViews<'a> {
    service: &'a Service,
    viewer: &'a Actor,
    orgs: HashMap<i64, Organisation>,
}

impl<'a> RequestViews<'a> {
    pub(super) fn new(service: &'a Service, viewer: &'a Actor) -> Self {
        RequestViews { service, viewer, orgs: HashMap::new() }
    }

    async fn org(&mut self, id: i64) -> ServiceResult<Organisation> {
        if let Some(org) = self.orgs.get(&id) {
            return Ok(org.clone());
        }
        let org = self.service.store.organisation_by_id(id).await?;
        self.orgs.insert(id, org.clone());
        Ok(org)
    }

    /// The request without its history (lists).
    pub(super) async fn summary(&mut self, r: StoredRequest) -> ServiceResult<RequestView> {
        self.view(r, None).await
    }

    /// The request with its full history, read now (single-request answers, step answers).
    pub(super) async fn with_history(&mut self, r: StoredRequest) -> ServiceResult<RequestView> {
        let history = self.service.store.request_history(&r.request_id).await?;
        self.view(r, Some(history)).await
    }

    async fn view(&mut self, r: StoredRequest, history: Option<Vec<RequestEventRow>>) -> ServiceResult<RequestView> {
        let now = self.service.clock.now_ms();
        let viewer_org = self.viewer.org_id;
        let your_side = r.side_of(viewer_org).ok_or(StoreError::NotFound)?;
        let hide_holder = policy::hides_holder(r.holder_shielded, Some(your_side));
        Ok(RequestView {
            overdue: r.is_overdue(now),
            requesting_organisation: self.org(r.requester_org_id).await?,
            holding_organisation: if hide_holder { None } else { Some(self.org(r.holder_org_id).await?) },
            shielded: r.holder_shielded,
            local_ref: if your_side == Side::Holder { r.local_ref } else { None },
            case_ref: if your_side == Side::Requester { r.case_ref } else { None },
            history: history
                .map(|h| h.into_iter().map(|step| history_entry(step, hide_holder.then_some(viewer_org))).collect()),
            request_id: r.request_id,
            state: r.state,
            match_id: r.match_id,
            your_side,
            legal_basis: r.legal_basis,
            legal_basis_detail: r.legal_basis_detail,
            reason: r.reason,
            urgency: r.urgency,
            created_at: r.created_at,
            updated_at: r.updated_at,
            due_at: r.due_at,
            escalated_at: r.escalated_at,
            requested_by: r.requester_name,
            _sealed: Sealed,
        })
    }
}

/// A history step; with `only_name_org`, a step taken by any other organisation (the shielded
/// holder) is shown without who took it.
fn history_entry(e: RequestEventRow, only_name_org: Option<i64>) -> HistoryEntry {
    let anonymous = only_name_org.is_some_and(|org| e.actor_org_id.is_some_and(|by| by != org));
    HistoryEntry {
        at: e.at,
        action: e.action,
        from_state: e.from_state,
        to_state: e.to_state,
        by: if anonymous { None } else { e.actor_name },
        by_organisation: if anonymous { None } else { e.actor_org_code },
        how: e.how,
        reference: e.reference,
        sent_at: e.sent_at,
        note: e.note,
        _sealed: Sealed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store's rows behind these views: only the service may read them.
    const RAW_VIEW_READS: [&str; 7] = [
        "request_history(",
        "request_for_org(",
        ".list_requests(", // the store's; the service's `list_requests` is called on `state`
        "matches_of_org(",
        "matched_holdings(",
        "find_hits(",
        "find_hits_and_holdings(",
    ];

    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable source dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn no_handler_reads_the_rows_behind_a_view_from_the_store() {
        let mut files = Vec::new();
        rust_files(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http"), &mut files);
        assert!(!files.is_empty());
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable source");
            for line in text.lines().filter(|l| l.contains("store.") || l.contains("store()")) {
                for read in RAW_VIEW_READS {
                    assert!(
                        !line.contains(read),
                        "{}: builds a view from raw store rows ({read}); use the service's redacted view",
                        file.display()
                    );
                }
            }
        }
    }

    fn row(other_shielded: bool) -> MatchRow {
        MatchRow {
            match_id: "m_1".into(),
            own_holding: 1,
            own_local_ref: "LDS-1".into(),
            other_org: 2,
            other_shielded,
            basis: "child".into(),
            tier: "probable".into(),
            evidence: "Names, date of birth and postcode district agree".into(),
            first_seen: 0,
            withdrawn_at: None,
        }
    }

    #[test]
    fn a_shielded_match_says_its_tier_and_fixed_words_only() {
        let view = match_view(row(true), None);
        assert_eq!((view.evidence.as_str(), view.tier.as_str()), (SHIELDED_EVIDENCE, "probable"));
        assert!(view.other_organisation.is_none() && view.shielded);
        let open = match_view(row(false), None);
        assert!(open.shielded, "no organisation to name is treated as shielded");
    }

    #[test]
    fn a_shielded_holders_steps_are_anonymous_to_the_requester_only() {
        let step = RequestEventRow {
            at: 0,
            action: "acknowledged".into(),
            from_state: Some("requested".into()),
            to_state: "acknowledged".into(),
            actor_name: Some("practitioner E08000003".into()),
            actor_org_code: Some("E08000003".into()),
            actor_org_id: Some(2),
            how: None,
            reference: None,
            sent_at: None,
            note: Some("On it".into()),
        };
        let seen = history_entry(step.clone(), Some(1));
        assert!(seen.by.is_none() && seen.by_organisation.is_none());
        assert_eq!(seen.note.as_deref(), Some("On it"));
        let own = history_entry(step, None);
        assert_eq!(own.by_organisation.as_deref(), Some("E08000003"));
    }
}
