//! `POST /api/v1/lookups`: is this child known elsewhere, and who do I call? And the
//! holder's side: `GET /api/v1/lookups/received`, every lookup that reached our holdings.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiResult;
use super::extract::ApiQuery as Query;
use super::json::ApiJson;
use crate::clock::rfc3339;
use crate::domain::area::AreaCoverage;
use crate::domain::holding::{Category, Contact, Status};
use crate::domain::lookup::LookupInput;
use crate::domain::organisation::Organisation;
use crate::domain::user::Actor;
use crate::domain::widen::Widen;
use crate::service::lookups::{LookupOutcome, MatchedRecord, OrgMatches};
use crate::service::redaction::{SHIELDED_NOTICE, ShieldedRecord};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(lookup)).routes(routes!(received))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LookupAnswer {
    pub(crate) lookup_id: String,
    /// True when at least one participating organisation holds a matching record.
    pub(crate) known: bool,
    /// One sentence for the worker.
    pub(crate) summary: String,
    /// Every match: one entry per organisation (and basis, and child), strongest first;
    /// several records there are grouped. Shielded records come last, one entry each.
    pub(crate) matches: Vec<MatchAnswer>,
    /// Family lookups only: each entered child, in the order given, with its own matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) children: Option<Vec<ChildAnswer>>,
    /// Family lookups only: records whose carers match an entered carer and that no entered
    /// child matched: a sibling known elsewhere, an unborn child.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) family_matches: Option<Vec<MatchAnswer>>,
    /// Family lookups only: how many carers were entered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) carers_asked: Option<usize>,
    pub(crate) coverage: CoverageAnswer,
    /// Where this lookup could have missed a near match, how to widen it (decided from the
    /// fields given, never from what was found; see docs/matching.md).
    #[serde(default)]
    pub(crate) widen: Vec<Widen>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ChildAnswer {
    /// Index in `family.children`.
    pub(crate) child: usize,
    pub(crate) known: bool,
    pub(crate) matches: Vec<MatchAnswer>,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct MatchAnswer {
    /// The strongest record's match id: request the record with it.
    pub(crate) match_id: String,
    /// Absent for a shielded record: its holder is never named to an asker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) organisation: Option<Organisation>,
    pub(crate) tier: String,
    /// In plain words, e.g. "NHS number and date of birth agree".
    pub(crate) evidence: String,
    /// Who to call about this child (the team's line, or the organisation's duty line);
    /// absent for a shielded record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) contact: Option<Contact>,
    /// Omitted when your organisation's kind may not see it (see docs/policy.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) category: Option<Category>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<Status>,
    /// `child`: the child's own identifiers agree; `carer`: an entered carer's agree with a
    /// carer on the record (a family match).
    pub(crate) basis: String,
    /// Family lookups: which entered child (index in `family.children`) a child match is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) child: Option<usize>,
    /// Carer matches: each entered carer that agreed, how strongly, in plain words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) carers: Vec<CarerAnswer>,
    /// The record is shielded: its holder has been alerted and will contact you. Request the
    /// record with `match_id` as usual.
    pub(crate) shielded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) notice: Option<String>,
    /// The record is held by your own organisation.
    pub(crate) own_organisation: bool,
    /// Every matching record at this organisation (the first is the one above).
    pub(crate) records: Vec<RecordAnswer>,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CarerAnswer {
    /// Index in `family.carers`.
    pub(crate) carer: usize,
    pub(crate) tier: String,
    pub(crate) evidence: String,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordAnswer {
    pub(crate) match_id: String,
    pub(crate) tier: String,
    pub(crate) evidence: String,
    /// A key that decided this match is shared by more records than one child would have.
    pub(crate) ambiguous: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) contact: Option<Contact>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) category: Option<Category>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<Status>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CoverageAnswer {
    pub(crate) organisations_participating: i64,
    pub(crate) organisations_with_holdings: i64,
    pub(crate) holdings: i64,
    pub(crate) last_update: Option<String>,
    /// Which kinds of organisation take part in the child's area (the district of the postcode
    /// given, never repeated) or nationally, and when they last sent their records.
    #[serde(default)]
    pub(crate) area: Option<AreaCoverage>,
}

/// The asking side's answer: what the API returns, and what the lookup page keeps and shows.
pub(crate) fn answer(outcome: LookupOutcome) -> LookupAnswer {
    let known = outcome.known();
    let c = outcome.coverage;
    let summary = if known {
        let n = outcome.matches.len() + outcome.shielded.len();
        format!(
            "Known to participating organisations ({n} match{}): call the contact below.",
            if n == 1 { "" } else { "es" }
        )
    } else {
        format!(
            "Not known to participating organisations. This is not a statement that the child is safe: \
             {} of {} participating organisations have registered records.",
            c.organisations_with_holdings, c.organisations_participating
        )
    };
    let mut matches: Vec<MatchAnswer> = outcome.matches.into_iter().filter_map(group_answer).collect();
    matches.extend(outcome.shielded.into_iter().map(shielded_answer));
    let (children, family_matches) = if outcome.family {
        let children = (0..outcome.children_asked)
            .map(|i| {
                let mine: Vec<MatchAnswer> =
                    matches.iter().filter(|m| m.basis == "child" && m.child == Some(i)).cloned().collect();
                ChildAnswer { child: i, known: !mine.is_empty(), matches: mine }
            })
            .collect();
        (Some(children), Some(matches.iter().filter(|m| m.basis == "carer").cloned().collect()))
    } else {
        (None, None)
    };
    LookupAnswer {
        lookup_id: outcome.lookup_id,
        known,
        summary,
        matches,
        children,
        family_matches,
        carers_asked: outcome.family.then_some(outcome.carers_asked),
        coverage: CoverageAnswer {
            organisations_participating: c.organisations_participating,
            organisations_with_holdings: c.organisations_with_holdings,
            holdings: c.holdings,
            last_update: c.last_update.map(rfc3339),
            area: Some(outcome.area),
        },
        widen: outcome.widen,
    }
}

fn record_answer(r: &MatchedRecord) -> RecordAnswer {
    RecordAnswer {
        match_id: r.match_id.clone(),
        tier: r.tier.as_str().to_string(),
        evidence: r.evidence.clone(),
        ambiguous: r.ambiguous,
        contact: Some(r.contact.clone()),
        category: r.category,
        status: r.status,
    }
}

fn group_answer(group: OrgMatches) -> Option<MatchAnswer> {
    let best = group.records.first()?;
    let records = group.records.iter().map(record_answer).collect();
    Some(MatchAnswer {
        match_id: best.match_id.clone(),
        organisation: Some(group.organisation.clone()),
        tier: best.tier.as_str().to_string(),
        evidence: best.evidence.clone(),
        contact: Some(best.contact.clone()),
        category: best.category,
        status: best.status,
        basis: best.basis.as_str().into(),
        child: best.child,
        carers: best
            .carers
            .iter()
            .map(|a| CarerAnswer { carer: a.carer, tier: a.tier.as_str().to_string(), evidence: a.evidence.clone() })
            .collect(),
        shielded: false,
        notice: None,
        own_organisation: group.own_organisation,
        records,
    })
}

/// A shielded record's answer: only what `ShieldedRecord` carries, which is all the asker may learn.
fn shielded_answer(record: ShieldedRecord) -> MatchAnswer {
    let tier = record.tier.as_str().to_string();
    let evidence = record.evidence().to_string();
    MatchAnswer {
        match_id: record.match_id.clone(),
        organisation: None,
        tier: tier.clone(),
        evidence: evidence.clone(),
        contact: None,
        category: None,
        status: None,
        basis: record.basis.as_str().into(),
        child: record.child,
        carers: record
            .carers
            .iter()
            .map(|(carer, tier)| CarerAnswer {
                carer: *carer,
                tier: tier.as_str().to_string(),
                evidence: evidence.clone(),
            })
            .collect(),
        shielded: true,
        notice: Some(SHIELDED_NOTICE.into()),
        own_organisation: false,
        records: vec![RecordAnswer {
            match_id: record.match_id,
            tier,
            evidence,
            ambiguous: false,
            contact: None,
            category: None,
            status: None,
        }],
    }
}

/// Is this child known to another participating organisation, and who do I call?
/// Give a strong identifier (NHS number or UPN) or given name, family name and date of birth,
/// and a purpose. The lookup is written to the audit trail before the answer is sent.
#[utoipa::path(post, path = "/api/v1/lookups", tag = "lookups", request_body = LookupInput,
    responses((status = 200, body = LookupAnswer), (status = 422), (status = 429), (status = 503, description = "audit trail unavailable: nothing disclosed")))]
async fn lookup(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<LookupInput>,
) -> ApiResult<Json<LookupAnswer>> {
    let outcome = state.lookup(&actor, input).await?;
    state.metrics.increment("lookups", 1);
    Ok(Json(answer(outcome)))
}

#[derive(Deserialize, IntoParams)]
pub struct ReceivedQuery {
    /// The previous page's `next_cursor`; or a time (RFC 3339 or YYYY-MM-DD): only lookups
    /// strictly before it.
    before: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ReceivedList {
    lookups: Vec<ReceivedAnswer>,
    /// Pass as `before` for the next page (an opaque cursor; null on the last page).
    next_cursor: Option<String>,
    /// The same cursor, under the name this list used when its cursor was a time.
    next_before: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ReceivedAnswer {
    at: String,
    lookup_id: String,
    match_id: String,
    asked_by: String,
    asking_organisation: String,
    asking_organisation_name: String,
    purpose: String,
    /// Your record that matched (absent if it has since been removed).
    local_ref: Option<String>,
    tier: String,
    /// `child` or `carer` (the asker's entered carer matched a carer on your record).
    basis: String,
    /// Your record is shielded: the asker was told only that a participating organisation
    /// knows the child and will contact them. Please contact them.
    shielded: bool,
}

/// Lookups by other organisations that matched your holdings: who asked, from where, why, when.
#[utoipa::path(get, path = "/api/v1/lookups/received", tag = "lookups", params(ReceivedQuery),
    responses((status = 200, body = ReceivedList)))]
async fn received(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<ReceivedQuery>,
) -> ApiResult<Json<ReceivedList>> {
    let page = state.lookups_received(&actor, q.before.as_deref(), q.limit).await?;
    let next_cursor = page.next.map(|c| c.encode());
    let lookups = page
        .lookups
        .into_iter()
        .map(|r| ReceivedAnswer {
            at: rfc3339(r.at),
            lookup_id: r.lookup_id,
            match_id: r.match_id,
            asked_by: r.asker_name,
            asking_organisation: r.asker_org_code,
            asking_organisation_name: r.asker_org_name,
            purpose: r.purpose,
            local_ref: r.local_ref,
            tier: r.tier,
            basis: r.basis,
            shielded: r.shielded,
        })
        .collect();
    Ok(Json(ReceivedList { lookups, next_before: next_cursor.clone(), next_cursor }))
}
