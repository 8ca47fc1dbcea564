//! The information governance officer's use cases over the audit trail: filtered event lists
//! and CSV, subject access (audited, identifiers pseudonymised at once), and anomaly flags.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Service, ServiceError, ServiceResult};
use crate::audit::checkpoint::AuditSigningKey;
use crate::audit::export::ExportError;
use crate::audit::export::ExportSummary;
use crate::audit::leaf::{Sealed, scope_value};
use crate::audit::merkle::Hash;
use crate::audit::nodes;
use crate::audit::{Attachment, EventType, NewEvent};
use crate::clock::{Millis, parse_instant, rfc3339};
use crate::domain::FieldError;
use crate::domain::anomaly::{AnomalyRules, LookupFact, Rule, detect};
use crate::domain::identity::{IndexKey, KeyUse, Pseudonym, RawSubject, Subject, SubjectRole, Tier, Variant};
use crate::domain::matching::assess_hits;
use crate::domain::user::Actor;
use crate::store::StoreError;
use crate::store::audit_views::{EventQuery, EventRow, OurRecord};

/// A proof that cannot exist is the caller's input (`invalid`); a read that failed is the store's.
fn proof_error(e: nodes::ProofSourceError, invalid: FieldError) -> ServiceError {
    match e {
        nodes::ProofSourceError::Proof(_) => ServiceError::Invalid(vec![invalid]),
        nodes::ProofSourceError::Store(e) => ServiceError::from(e),
    }
}

const DAY_MS: Millis = 86_400_000;
pub const DEFAULT_PAGE: i64 = 100;
pub const MAX_PAGE: i64 = 1000;

/// Filters as they arrive (query string or command line), all text, all optional.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilterInput {
    /// Only events by this user (their numeric id).
    pub user: Option<String>,
    /// Only events by users of this organisation (its code).
    pub organisation: Option<String>,
    /// Only events of this type, e.g. `lookup`, `subject_access`, `token_revoked`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Only lookups with this purpose, e.g. `s47-enquiry`.
    pub purpose: Option<String>,
    /// From this time (RFC 3339, or YYYY-MM-DD for midnight UTC), inclusive.
    pub from: Option<String>,
    /// Up to this time, exclusive (a bare date means up to the end of that day).
    pub to: Option<String>,
    pub lookup_id: Option<String>,
    /// `true`: only lookups by other organisations that matched records we hold.
    pub touching_our_holdings: Option<bool>,
    /// The cursor: `next_cursor` from the previous page.
    pub before: Option<i64>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Who acted, as the IG view shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActorView {
    pub user_id: i64,
    /// The user's name as registered (absent for service events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub organisation: String,
    pub role: String,
    /// When a system acted (client credentials): its `client_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// One event as an IG officer sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventView {
    /// The event's position in the signed log (use it for an inclusion proof).
    pub id: i64,
    pub at: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Absent for events the service itself records (start-up, failed sign-ins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<ActorView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup_id: Option<String>,
    /// Organisations (codes) whose records a lookup matched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub organisations_touched: Vec<String>,
    /// Our records this lookup matched (local reference and tier).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub our_records: Vec<OurRecordView>,
    /// The event's details as logged: counts, ids and key kinds, never an identifier.
    #[schema(value_type = Object)]
    pub details: Value,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OurRecordView {
    pub match_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_ref: Option<String>,
    pub tier: String,
}

impl From<OurRecord> for OurRecordView {
    fn from(r: OurRecord) -> Self {
        OurRecordView { match_id: r.match_id, local_ref: r.local_ref, tier: r.tier }
    }
}

#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// Pass as `before` for the next (older) page; `None` on the last page.
    pub next_cursor: Option<i64>,
}

/// One organisation that holds the child, as subject access reports it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HolderView {
    /// Empty for shielded records of other organisations: their holders are never named.
    pub organisation: String,
    pub organisation_name: String,
    /// Records at organisations that shield them: counted, never named.
    pub shielded: bool,
    /// How strong the evidence is that this is the same child.
    pub tier: String,
    pub records: usize,
    pub own_organisation: bool,
}

#[derive(Debug, Clone)]
pub struct SubjectAccessOutcome {
    /// The subject access request's own event id.
    pub request_event_id: i64,
    pub searches: Vec<EventView>,
    pub holders: Vec<HolderView>,
}

/// What an organisation needs to check its own membership of a v2 leaf's scope without the
/// service's key: its id and its salt, so `commitment(scope, seq, salt, id)` is in `scope`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScopeOpening {
    pub organisation_id: i64,
    /// Hex; see docs/audit.md ("Leaf format v2") for how the commitment is computed.
    pub salt: String,
}

/// One anomaly flag as listed for review.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AnomalyView {
    pub event_id: i64,
    pub at: String,
    pub rule: Rule,
    pub reason: String,
    pub user_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup_id: Option<String>,
}

impl EventFilterInput {
    /// Checks the filters; the organisation's code is resolved by the caller.
    fn parse(&self) -> Result<EventQuery, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut q =
            EventQuery { limit: self.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE), ..EventQuery::default() };
        if let Some(u) = self.user.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            match u.parse::<i64>() {
                Ok(id) => q.user_id = Some(id),
                Err(_) => errors.push(FieldError::new("user", "invalid_user", "user must be a numeric user id")),
            }
        }
        if let Some(t) = self.kind.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            match EventType::parse(t) {
                Some(t) => q.kind = Some(t.as_str().to_string()),
                None => {
                    errors.push(FieldError::new("type", "invalid_type", "type must be an event type such as lookup"))
                }
            }
        }
        if let Some(p) = self.purpose.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            match crate::domain::lookup::Purpose::parse(p) {
                Some(p) => q.purpose = Some(p.as_str().to_string()),
                None => errors.push(FieldError::new("purpose", "invalid_purpose", "purpose must be a lookup purpose")),
            }
        }
        let mut time = |field: &'static str, text: &Option<String>, end_of_day: bool| {
            let text = text.as_deref().map(str::trim).filter(|t| !t.is_empty())?;
            match parse_instant(text) {
                // A bare date as the upper bound includes that whole day.
                Some(ms) if end_of_day && text.len() == 10 => Some(ms + DAY_MS),
                Some(ms) => Some(ms),
                None => {
                    errors.push(FieldError::new(field, "invalid_time", "use RFC 3339 or YYYY-MM-DD"));
                    None
                }
            }
        };
        q.from = time("from", &self.from, false);
        q.to = time("to", &self.to, true);
        q.lookup_id = self.lookup_id.as_deref().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string);
        q.before_seq = self.before;
        if errors.is_empty() { Ok(q) } else { Err(errors) }
    }
}

/// The holders (codes) of a lookup's matches a viewer may see: all unshielded ones for the
/// asker's organisation (its practitioner was told them), only itself for a holder.
fn touched(reached: Vec<(i64, String)>, row: &EventRow, viewer: Option<i64>) -> Vec<String> {
    let asker = askers_side(row, viewer);
    let codes: BTreeSet<String> =
        reached.into_iter().filter(|(org, _)| asker || Some(*org) == viewer).map(|(_, code)| code).collect();
    codes.into_iter().collect()
}

/// Whether the viewer is the actor's own organisation (or the operator's whole-log view, which
/// reads the database anyway): only that side sees the free text the actor typed and every
/// holder a lookup reached.
fn askers_side(row: &EventRow, viewer: Option<i64>) -> bool {
    viewer.is_none() || viewer == row.actor_org_id
}

fn view(row: EventRow, our_records: Vec<OurRecord>, reached: Vec<(i64, String)>, viewer: Option<i64>) -> EventView {
    let body: Value = serde_json::from_slice(&row.body).unwrap_or(Value::Null);
    let mut details = body.get("details").cloned().unwrap_or(Value::Null);
    if let Some(fields) = details.as_object_mut() {
        // A v1 lookup's results name every unshielded holder: only the asker's side reads them.
        if !askers_side(&row, viewer) {
            for result in fields.get_mut("results").and_then(Value::as_array_mut).into_iter().flatten() {
                result.as_object_mut().map(|r| r.remove("organisation"));
            }
        }
        // A v1 leaf still holds its free text: shown by the same rule as a v2 leaf's.
        let v1_text = fields.remove("purpose_detail").filter(|t| !t.is_null());
        if askers_side(&row, viewer)
            && let Some(text) = row.free_text.clone().map(Value::String).or(v1_text)
        {
            fields.insert("purpose_detail".into(), text);
        }
    }
    let actor = row.actor_user_id.map(|user_id| ActorView {
        user_id,
        name: row.actor_name.clone(),
        organisation: row
            .actor_org_code
            .clone()
            .or_else(|| body["actor"]["org_code"].as_str().map(str::to_string))
            .unwrap_or_default(),
        role: body["actor"]["role"].as_str().unwrap_or_default().to_string(),
        client_id: body["actor"]["client_id"].as_str().map(str::to_string),
    });
    let organisations_touched = touched(reached, &row, viewer);
    EventView {
        id: row.seq,
        at: rfc3339(row.at),
        kind: row.kind,
        actor,
        purpose: row.purpose,
        lookup_id: row.lookup_id,
        organisations_touched,
        our_records: our_records.into_iter().map(OurRecordView::from).collect(),
        details,
    }
}

impl Service {
    /// The RFC 9162 inclusion proof of event `index` in the log of `size` entries, from the
    /// stored subtree nodes (O(log n) reads).
    pub async fn audit_inclusion_proof(&self, index: u64, size: u64) -> ServiceResult<Vec<Hash>> {
        nodes::inclusion_proof_at(&self.store, index, size).await.map_err(|e| {
            proof_error(e, FieldError::new("tree_size", "too_small", "the event is not in a tree of that size"))
        })
    }

    /// The RFC 9162 consistency proof from the log of `old_size` entries to that of `size`.
    pub async fn audit_consistency_proof(&self, old_size: u64, size: u64) -> ServiceResult<Vec<Hash>> {
        nodes::consistency_proof_at(&self.store, old_size, size)
            .await
            .map_err(|e| proof_error(e, FieldError::new("from", "too_large", "from must not be larger than the tree")))
    }
    /// The opening of `org_id`'s scope commitment in the leaf at `seq` (none for a v1 leaf,
    /// whose scope is in clear).
    pub fn scope_opening(&self, org_id: i64, seq: u64, body: &[u8]) -> Option<ScopeOpening> {
        let leaf: Value = serde_json::from_slice(body).ok()?;
        leaf.get("v")?;
        let salt = self.audit.leaf_key().salt(Sealed::Scope, seq, &scope_value(org_id));
        Some(ScopeOpening { organisation_id: org_id, salt: hex::encode(salt) })
    }

    /// A page of events within an organisation's scope (or the whole log when `scope` is `None`).
    pub async fn audit_events(&self, scope: Option<i64>, input: &EventFilterInput) -> ServiceResult<EventPage> {
        let mut q = input.parse()?;
        q.scope_org = scope;
        if let Some(code) = input.organisation.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            match self.store.organisation_by_code(code).await {
                Ok(org) => q.actor_org_id = Some(org.id),
                // No such organisation: nothing it did can be listed.
                Err(StoreError::NotFound) => return Ok(EventPage { events: Vec::new(), next_cursor: None }),
                Err(e) => return Err(e.into()),
            }
        }
        if input.touching_our_holdings == Some(true) {
            match scope {
                Some(org) => q.touching_holdings_of = Some(org),
                None => {
                    return Err(vec![FieldError::new(
                        "touching_our_holdings",
                        "needs_organisation",
                        "say whose holdings: give the organisation's scope",
                    )]
                    .into());
                }
            }
        }
        self.event_page(scope, q).await
    }

    async fn event_page(&self, scope: Option<i64>, q: EventQuery) -> ServiceResult<EventPage> {
        let limit = q.limit;
        let rows = self.store.audit_events_page(&q).await?;
        let next_cursor = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.seq)).flatten();
        let lookups: Vec<i64> = rows.iter().filter(|r| r.kind == "lookup").map(|r| r.seq).collect();
        let mut ours = match scope {
            Some(org) => self.store.our_records_for(org, &lookups).await?,
            None => Default::default(),
        };
        let mut reached = self.store.holders_reached(&lookups).await?;
        let events = rows
            .into_iter()
            .map(|row| {
                let records = ours.remove(&row.seq).unwrap_or_default();
                let holders = reached.remove(&row.seq).unwrap_or_default();
                view(row, records, holders, scope)
            })
            .collect();
        Ok(EventPage { events, next_cursor })
    }

    /// Every event matching the filters (up to `cap`), for CSV export; records the export.
    pub async fn audit_events_all(
        &self,
        actor: Option<&Actor>,
        scope: Option<i64>,
        input: &EventFilterInput,
        cap: usize,
    ) -> ServiceResult<(Vec<EventView>, Option<i64>)> {
        let mut input = input.clone();
        input.limit = Some(MAX_PAGE);
        let mut all = Vec::new();
        let next = loop {
            let page = self.audit_events(scope, &input).await?;
            all.extend(page.events);
            match page.next_cursor {
                Some(cursor) if all.len() < cap => input.before = Some(cursor),
                rest => break rest,
            }
        };
        let mut event = NewEvent::new(EventType::AuditExported)
            .details(json!({"format": "csv", "events": all.len(), "truncated": next.is_some()}));
        if let Some(actor) = actor {
            event = event.by(actor);
        }
        self.audit.record(event).await?;
        Ok((all, next))
    }

    /// Subject access: given a child's identifiers, every search (lookup or subject access)
    /// in this organisation's scope that asked about the child or matched its records, and
    /// every organisation holding the child. The identifiers become pseudonyms at once; the
    /// request is audited (without them) before anything is answered.
    pub async fn subject_access(&self, actor: &Actor, raw: &RawSubject) -> ServiceResult<SubjectAccessOutcome> {
        let subject = Subject::parse(raw, SubjectRole::Child, KeyUse::Lookup, self.clock.today())
            .map_err(|es| es.into_iter().map(|e| FieldError::from(e).within("subject")).collect::<Vec<_>>())?;
        let probes = self.keys.probes(&subject);
        let all: Vec<IndexKey> = probes.iter().map(|p| p.pseudonym.index_key()).collect();
        let exact: Vec<Pseudonym> =
            probes.iter().filter(|p| p.variant == Variant::Exact).map(|p| p.pseudonym).collect();

        // The same candidate search a lookup makes: who holds this child, and how surely.
        let hits = self.store.find_hits(&all).await?;
        let candidates = assess_hits(
            &probes,
            hits.iter().filter(|h| !h.is_carer()).map(|h| h.as_ref()),
            subject.fields_present(),
            None,
        );
        // Another organisation's shielded records are grouped under no name (org id 0).
        let hidden = |c: &crate::domain::matching::Candidate| {
            c.org_id != actor.org_id && hits.iter().any(|h| h.holding_id == c.holding_id && h.shielded)
        };
        let mut holders: Vec<(i64, Tier, usize)> = Vec::new();
        for c in &candidates {
            let org_id = if hidden(c) { 0 } else { c.org_id };
            match holders.iter_mut().find(|h| h.0 == org_id) {
                Some(h) => h.2 += 1,
                None => holders.push((org_id, c.assessment.tier, 1)),
            }
        }
        let org_ids: Vec<i64> = holders.iter().map(|h| h.0).filter(|id| *id != 0).collect();
        let organisations = self.store.organisations_by_id(&org_ids).await?;

        // Searches that asked this child's exact pseudonyms, or matched one of its records.
        let holding_ids: Vec<i64> = candidates.iter().map(|c| c.holding_id).collect();
        let mut seqs = self.store.events_asking(&exact).await?;
        seqs.extend(self.store.lookups_matching_holdings(&holding_ids).await?);
        seqs.sort_unstable();
        seqs.dedup();

        let mut kinds: Vec<&str> = probes.iter().map(|p| p.kind.name()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut event = NewEvent::new(EventType::SubjectAccess).by(actor).details(json!({
            "key_kinds_asked": kinds,
            "searches_found": seqs.len(),
            "holders_found": holders.len(),
        }));
        // Kept like a lookup's, so a later subject access finds this search too.
        event.attachments = exact.iter().map(|p| Attachment::LookupPseudonym(*p)).collect();
        let appended = self.audit.record(event).await?;

        let q = EventQuery { scope_org: Some(actor.org_id), seqs: Some(seqs), limit: 100_000, ..EventQuery::default() };
        let searches = self.event_page(Some(actor.org_id), q).await?.events;
        let holders = holders
            .into_iter()
            .filter_map(|(org_id, tier, records)| {
                if org_id == 0 {
                    return Some(HolderView {
                        organisation: String::new(),
                        organisation_name: "a participating organisation (shielded records are not named)".into(),
                        shielded: true,
                        tier: tier.as_str().to_string(),
                        records,
                        own_organisation: false,
                    });
                }
                let org = organisations.iter().find(|o| o.id == org_id)?;
                Some(HolderView {
                    organisation: org.code.clone(),
                    organisation_name: org.name.clone(),
                    shielded: false,
                    tier: tier.as_str().to_string(),
                    records,
                    own_organisation: org_id == actor.org_id,
                })
            })
            .collect();
        Ok(SubjectAccessOutcome {
            request_event_id: i64::try_from(appended.seq).unwrap_or(i64::MAX),
            searches,
            holders,
        })
    }

    /// Anomaly flags on lookups in `[from, to)` within an organisation's scope.
    pub async fn anomalies(
        &self,
        scope_org: i64,
        from: Millis,
        to: Millis,
        rules: &AnomalyRules,
    ) -> ServiceResult<Vec<AnomalyView>> {
        let scoped = self.store.scoped_lookups(scope_org, from, to).await?;
        let in_scope: std::collections::HashSet<i64> = scoped.iter().map(|(seq, _)| *seq).collect();
        let mut users: Vec<i64> = scoped.iter().map(|(_, u)| *u).collect();
        users.sort_unstable();
        users.dedup();
        // Norms are judged on each user's whole history, not only the part this scope sees.
        let raw_facts = self.store.lookup_facts(&users, from - rules.history_ms(), to).await?;
        let seqs: Vec<i64> = raw_facts.iter().map(|f| f.seq).collect();
        let followed = self.store.lookups_followed_by_request(&seqs).await?;
        let facts: Vec<LookupFact> = raw_facts
            .into_iter()
            .map(|f| {
                let body: Value = serde_json::from_slice(&f.body).unwrap_or(Value::Null);
                LookupFact {
                    seq: f.seq,
                    at: f.at,
                    user_id: f.user_id,
                    purpose: f.purpose,
                    // Free text reaches only the IG officer of the organisation that typed it.
                    purpose_detail: (f.org_id == Some(scope_org))
                        .then(|| {
                            f.free_text
                                .clone()
                                .or_else(|| body["details"]["purpose_detail"].as_str().map(str::to_string))
                        })
                        .flatten(),
                    token_reported_lost: body["details"]["token_reported_lost"].as_bool().unwrap_or(false),
                    child_keys: f.child_keys,
                    request_followed: followed.contains(&f.seq),
                }
            })
            .collect();
        let flagged: Vec<_> =
            detect(&facts, from, to, rules).into_iter().filter(|a| in_scope.contains(&a.seq)).collect();
        let seqs: Vec<i64> = flagged.iter().map(|a| a.seq).collect();
        let q = EventQuery { seqs: Some(seqs), limit: 100_000, ..EventQuery::default() };
        let rows = self.store.audit_events_page(&q).await?;
        Ok(flagged
            .into_iter()
            .rev()
            .map(|a| {
                let row = rows.iter().find(|r| r.seq == a.seq);
                AnomalyView {
                    event_id: a.seq,
                    at: rfc3339(a.at),
                    rule: a.rule,
                    reason: a.reason,
                    user_id: a.user_id,
                    user_name: row.and_then(|r| r.actor_name.clone()),
                    organisation: row.and_then(|r| r.actor_org_code.clone()),
                    lookup_id: row.and_then(|r| r.lookup_id.clone()),
                }
            })
            .collect())
    }
}

/// Events as CSV: one row each, details as compact JSON in the last column.
pub fn events_csv(events: &[EventView]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "id",
        "at",
        "type",
        "user_id",
        "user_name",
        "organisation",
        "role",
        "purpose",
        "lookup_id",
        "organisations_touched",
        "our_records",
        "details",
    ]);
    for e in events {
        let actor = e.actor.as_ref();
        let ours: Vec<String> = e
            .our_records
            .iter()
            .map(|r| format!("{} ({})", r.local_ref.as_deref().unwrap_or("removed"), r.tier))
            .collect();
        let _ = w.write_record([
            e.id.to_string(),
            e.at.clone(),
            e.kind.clone(),
            actor.map(|a| a.user_id.to_string()).unwrap_or_default(),
            actor.and_then(|a| a.name.clone()).map(|n| csv_safe(&n)).unwrap_or_default(),
            actor.map(|a| a.organisation.clone()).unwrap_or_default(),
            actor.map(|a| a.role.clone()).unwrap_or_default(),
            e.purpose.clone().unwrap_or_default(),
            e.lookup_id.clone().unwrap_or_default(),
            e.organisations_touched.join(" "),
            csv_safe(&ours.join("; ")),
            csv_safe(&e.details.to_string()),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Spreadsheets run cells starting with these as formulas: prefix a quote so they stay text.
fn csv_safe(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@']) { format!("'{text}") } else { text.to_string() }
}

impl Service {
    /// Records an event of the machine owner's own operations (start-up, key rotation, backups).
    pub async fn record(&self, event: NewEvent) -> ServiceResult<()> {
        self.audit.record(event).await?;
        Ok(())
    }

    /// One event of the actor's organisation's scope, by its position in the log.
    pub async fn audit_event_in_scope(&self, org_id: i64, seq: i64) -> ServiceResult<Option<EventRow>> {
        let query = crate::store::audit_views::EventQuery {
            scope_org: Some(org_id),
            seqs: Some(vec![seq]),
            limit: 1,
            ..Default::default()
        };
        Ok(self.store.audit_events_page(&query).await?.into_iter().next())
    }

    /// The tree size asked (default: the head) and its signed checkpoint if kept.
    pub async fn audit_tree_at(&self, size: Option<u64>) -> ServiceResult<(u64, Option<String>)> {
        let head = self.store.audit_head().await?;
        let size = size.unwrap_or(head.size);
        if size > head.size {
            return Err(vec![crate::domain::FieldError::new(
                "tree_size",
                "too_large",
                "the log is not that large yet",
            )]
            .into());
        }
        let note = if size == head.size {
            head.checkpoint
        } else {
            self.store.audit_checkpoint_at(i64::try_from(size).map_err(|_| StoreError::NotFound)?).await?
        };
        Ok((size, note))
    }

    /// The key that signs the audit log's checkpoints.
    pub fn audit_signer(&self) -> &AuditSigningKey {
        self.audit.signer()
    }

    /// Writes the whole audit log and its checkpoints to `out`.
    pub async fn export_audit(&self, out: &mut impl std::io::Write, now: Millis) -> Result<ExportSummary, ExportError> {
        crate::audit::export::write_export(&self.store, out, now).await
    }

    /// Pushes the signed checkpoint to the witness now and every `every`; a log inconsistent with
    /// what was already witnessed is logged as an error on every attempt (it will not go away).
    pub async fn witness_on_schedule(&self, target: crate::audit::witness::WitnessTarget, every: std::time::Duration) {
        use crate::audit::witness::{Pushed, push};
        let key = self.audit.signer().verifying_key();
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match push(&self.store, &target, &key).await {
                Ok(Pushed::Appended(size)) => {
                    tracing::info!(size, witness = %target.describe(), "audit checkpoint witnessed")
                }
                Ok(Pushed::Unchanged(_)) => {}
                Err(e) if e.is_alarm() => tracing::error!(error = %e, witness = %target.describe(), "AUDIT LOG ALARM"),
                Err(e) => {
                    tracing::warn!(error = %e, witness = %target.describe(), "audit witness push failed; will retry")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_date_as_the_upper_bound_includes_that_day() {
        let input =
            EventFilterInput { from: Some("2026-11-24".into()), to: Some("2026-11-24".into()), ..Default::default() };
        let q = input.parse().unwrap();
        assert_eq!(q.to.unwrap() - q.from.unwrap(), DAY_MS);
    }

    #[test]
    fn bad_filters_name_their_field_without_echoing_it() {
        let input = EventFilterInput {
            user: Some("Amelia".into()),
            kind: Some("peek".into()),
            from: Some("yesterday".into()),
            ..Default::default()
        };
        let errors = input.parse().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["user", "type", "from"]);
        assert!(errors.iter().all(|e| !e.message.contains("Amelia")));
    }

    #[test]
    fn csv_cells_that_look_like_formulas_stay_text() {
        assert_eq!(csv_safe("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_safe("Pat"), "Pat");
    }
}
