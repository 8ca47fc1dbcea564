//! The practitioner's lookup: rate limits, pseudonymise, find, assess, disclose as policy
//! allows, and write the audit event (with the match ids handed out) before answering.

use std::collections::BTreeMap;

use serde_json::json;

use super::redaction::{self, ShieldedRecord};
use super::{Service, ServiceError, ServiceResult};
use crate::audit::{Attachment, EventType, NewEvent};
use crate::clock::{Millis, rfc3339};
use crate::domain::FieldError;
use crate::domain::area::{AreaCoverage, Participant, area_coverage};
use crate::domain::cursor::PageCursor;
use crate::domain::holding::Contact;
use crate::domain::identity::{FieldsPresent, IndexKey, Tier, Variant};
use crate::domain::lookup::{Lookup, LookupInput};
use crate::domain::matching::{Basis, Candidate, Probe, assess_hits};
use crate::domain::organisation::Organisation;
use crate::domain::policy::Disclosure;
use crate::domain::user::Actor;
use crate::domain::widen::Widen;
use crate::store::holdings::{Hit, HitsAndHoldings, MatchedHolding, ReceivedLookup};

const COVERAGE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

pub use crate::domain::lookup::{CarerAgreement, MatchedRecord};

/// All matches at one organisation on one basis (and, in a family lookup, for one child),
/// strongest first.
#[derive(Debug, Clone)]
pub struct OrgMatches {
    pub organisation: Organisation,
    pub own_organisation: bool,
    pub records: Vec<MatchedRecord>,
}

/// How much of the country the answer covers: "not known" is never "safe".
#[derive(Debug, Clone, Copy)]
pub struct Coverage {
    pub organisations_participating: i64,
    pub organisations_with_holdings: i64,
    pub holdings: i64,
    pub last_update: Option<Millis>,
}

#[derive(Debug, Clone)]
pub struct LookupOutcome {
    pub lookup_id: String,
    pub matches: Vec<OrgMatches>,
    /// Records at shielded holdings, redacted (`redaction::shielded_record`): a tier and fixed
    /// wording, no organisation, contact, category or agreeing details, ever. Their holders
    /// have been alerted and will contact the asker.
    pub shielded: Vec<ShieldedRecord>,
    /// The asker sent a family; `children_asked` and `carers_asked` say how many of each.
    pub family: bool,
    pub children_asked: usize,
    pub carers_asked: usize,
    pub coverage: Coverage,
    /// How the asker could widen the lookup: from the fields given, never from what was found.
    pub widen: Vec<Widen>,
    /// Who takes part in the child's area (the postcode district given) or nationally: from
    /// the directory alone, so the same whether the child is unknown or shielded.
    pub area: AreaCoverage,
}

impl LookupOutcome {
    pub fn known(&self) -> bool {
        !self.matches.is_empty() || !self.shielded.is_empty()
    }
}

/// A candidate holding for one entered subject, before disclosure.
struct Found {
    basis: Basis,
    child: Option<usize>,
    candidate: Candidate,
    carers: Vec<CarerAgreement>,
}

/// What the asker is told and what is recorded, decided match by match (`Service::disclose`).
struct Disclosed {
    /// The audit event's attachments: every match id handed out, shielded ones included.
    attachments: Vec<Attachment>,
    matches: Vec<OrgMatches>,
    shielded: Vec<ShieldedRecord>,
    /// Each shielded holder's alert: its organisation and the payload.
    alerts: Vec<(i64, serde_json::Value)>,
}

/// What a lookup's search found: the candidates, their organisations, and each holding hit
/// as an answer may show it (sorted by id).
struct Searched {
    found: Vec<Found>,
    org_ids: Vec<i64>,
    holdings: Vec<MatchedHolding>,
}

impl Service {
    /// A lookup in stages: limits, pseudonymise, search, disclose as policy allows, audit (fail
    /// closed: nothing leaves unless the event is durable), alert shielded holders, answer.
    pub async fn lookup(&self, actor: &Actor, input: LookupInput) -> ServiceResult<LookupOutcome> {
        self.check_lookup_limits(actor, input.subjects_asked()).await?;
        let mut lookup = input.into_lookup(&self.keys, self.clock.today())?;
        let asked = lookup.probes().count();
        let Searched { found, org_ids, holdings } = self.search(&mut lookup).await?;
        let now = self.clock.now_ms();
        let lookup_id = time_ordered_id("lk", now);
        let Disclosed { mut attachments, matches, shielded, alerts } =
            self.disclose(actor, &lookup, &lookup_id, found, &holdings, now);

        // Exact-form pseudonyms asked, kept beside the event so subject access can find this lookup.
        attachments.extend(
            lookup.probes().filter(|p| p.variant == Variant::Exact).map(|p| Attachment::LookupPseudonym(p.pseudonym)),
        );
        let mut event = lookup_event(actor, &lookup, asked, &lookup_id, &matches, &shielded, org_ids);
        event.attachments = attachments;
        // Fail closed: nothing below runs unless the event and its match ids are durable.
        self.audit.record(event).await?;
        self.alert_shielded_holders(actor, &lookup_id, alerts).await?;

        let coverage = self.coverage().await?;
        let participants = self.participants().await?;
        let area = area_coverage(lookup.postcode.as_ref().map(|p| p.outward()), &participants, rfc3339);
        let children_asked = lookup.children_asked();
        Ok(LookupOutcome {
            lookup_id,
            matches,
            shielded,
            family: lookup.family,
            children_asked,
            carers_asked: lookup.subjects.len() - children_asked,
            coverage,
            widen: lookup.widen,
            area,
        })
    }

    /// Screens the probes, finds their pseudonyms in the index and assesses the holdings hit:
    /// the candidates, the organisations they belong to, and what an answer may show of each
    /// holding hit (read in the same search).
    async fn search(&self, lookup: &mut Lookup) -> ServiceResult<Searched> {
        for subject in &mut lookup.subjects {
            subject.probes = self.prefilter.screen(std::mem::take(&mut subject.probes));
        }
        let mut keys: Vec<IndexKey> = lookup.probes().map(|p| p.pseudonym.index_key()).collect();
        keys.sort_unstable();
        keys.dedup();
        let HitsAndHoldings { hits, holdings } = self.store.find_hits_and_holdings(&keys).await?;
        let found = find_matches(lookup, &hits);
        let mut org_ids: Vec<i64> = found.iter().map(|f| f.candidate.org_id).collect();
        org_ids.sort_unstable();
        org_ids.dedup();
        Ok(Searched { found, org_ids, holdings })
    }

    /// Each candidate as the asker may see it: the policy's disclosure for their organisation
    /// and role, and a shielded holding reduced to a tier (its holder alerted instead), grouped
    /// by organisation, child matches first.
    fn disclose(
        &self,
        actor: &Actor,
        lookup: &Lookup,
        lookup_id: &str,
        found: Vec<Found>,
        holdings: &[MatchedHolding],
        now: Millis,
    ) -> Disclosed {
        let disclosure = self.settings.policy.for_asker(actor.org_kind, actor.role);
        let mut attachments = Vec::new();
        let mut groups: BTreeMap<(i64, Basis, Option<usize>), OrgMatches> = BTreeMap::new();
        let mut shielded = Vec::new();
        let mut alerts = Vec::new();
        for f in found {
            let c = &f.candidate;
            let Ok(at) = holdings.binary_search_by_key(&c.holding_id, |h| h.id) else {
                continue; // removed between the search's two statements
            };
            let holding = &holdings[at];
            let org = &holding.organisation;
            let match_id = time_ordered_id("lm", now);
            attachments.push(Attachment::LookupMatch {
                match_id: match_id.clone(),
                holding_id: holding.id,
                holder_org_id: org.id,
                tier: c.assessment.tier.as_str(),
                basis: f.basis.as_str(),
                shielded: holding.shielded,
            });
            let evidence = match f.basis {
                Basis::Child => c.assessment.evidence.clone(),
                Basis::Carer => f
                    .carers
                    .iter()
                    .map(|a| format!("carer {} as you entered them: {}", a.carer + 1, a.evidence))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            let full = disclosure == Disclosure::Full && !holding.shielded;
            let mut record = MatchedRecord {
                match_id,
                tier: c.assessment.tier,
                evidence,
                ambiguous: c.assessment.ambiguous,
                contact: Contact {
                    team: holding.contact.team.clone(),
                    phone: holding.contact.phone.clone().or_else(|| Some(org.duty_phone.clone())),
                    email: holding.contact.email.clone().or_else(|| Some(org.secure_email.clone())),
                },
                category: full.then_some(holding.category),
                status: full.then_some(holding.status),
                basis: f.basis,
                child: f.child,
                carers: f.carers,
            };
            if holding.shielded {
                record.contact = Contact::default();
                alerts.push((org.id, shielded_alert(actor, lookup, lookup_id, &record, &holding.local_ref)));
                shielded.push(redaction::shielded_record(record));
                continue;
            }
            groups
                .entry((org.id, f.basis, f.child))
                .or_insert_with(|| OrgMatches {
                    organisation: org.clone(),
                    own_organisation: org.id == actor.org_id,
                    records: Vec::new(),
                })
                .records
                .push(record);
        }
        let mut matches: Vec<OrgMatches> = groups.into_values().collect();
        // Child matches before carer matches, then strongest first.
        matches.sort_by_key(|g| {
            g.records.first().map(|r| (r.basis != Basis::Child, r.child, tier_rank(r.tier))).unwrap_or_default()
        });
        Disclosed { attachments, matches, shielded, alerts }
    }

    /// A shielded holder hears at once: its outbox (webhook) and its IG officer's audit view.
    async fn alert_shielded_holders(
        &self,
        actor: &Actor,
        lookup_id: &str,
        alerts: Vec<(i64, serde_json::Value)>,
    ) -> ServiceResult<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        let queued: Vec<(i64, &str, serde_json::Value)> =
            alerts.iter().map(|(org, payload)| (*org, "lookup.shielded", payload.clone())).collect();
        self.store.enqueue_alerts(&queued, self.clock.now_ms()).await?;
        for (org, payload) in alerts {
            let event = NewEvent::new(EventType::ShieldedHit).by(actor).concerning([org]).details(json!({
                "lookup_id": lookup_id,
                "match_id": payload["match_id"],
                "tier": payload["tier"],
                "basis": payload["basis"],
            }));
            self.audit.record(event).await?;
        }
        Ok(())
    }

    /// Coverage as of at most `COVERAGE_TTL` ago. Counting is cheap (kept counts and an index
    /// seek per organisation) but still a database round trip, so lookups share one count: one
    /// caller at a time recounts and the others answer from the stale copy meanwhile, and a
    /// serving node recounts ahead of time (`maintain_coverage`), so no lookup waits for it.
    pub async fn coverage(&self) -> ServiceResult<Coverage> {
        let cached = *self.coverage_cache.lock().unwrap_or_else(|p| p.into_inner());
        match cached {
            Some((at, coverage)) if at.elapsed() < COVERAGE_TTL => Ok(coverage),
            Some((_, stale)) => match self.recount_coverage().await? {
                Some(fresh) => Ok(fresh),
                None => Ok(stale),
            },
            None => self.count_coverage().await,
        }
    }

    /// Recounts coverage every `every` for as long as the node serves.
    pub async fn maintain_coverage(&self, every: std::time::Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = self.recount_coverage().await {
                tracing::warn!(error = %e, "coverage not recounted; lookups keep the last count");
            }
            self.recheck_key_family().await;
        }
    }

    /// Clears the keyring's "holdings of key family 1 remain" once the last one has been re-keyed
    /// by its holder's sync (on this node or another), so lookups stop asking family 1's ~800
    /// variants. It only ever goes from set to clear: nothing writes family 1 any more.
    pub(crate) async fn recheck_key_family(&self) {
        if !self.keys.family_one_holdings() {
            return;
        }
        match self.store.holdings_of_key_family_one().await {
            Ok(remaining) => self.keys.set_family_one_holdings(remaining),
            Err(e) => tracing::warn!(error = %e, "key families not rechecked; lookups keep asking family 1's variants"),
        }
    }

    /// Recounts unless another caller already is (`None`).
    async fn recount_coverage(&self) -> ServiceResult<Option<Coverage>> {
        use std::sync::atomic::{AtomicBool, Ordering};
        /// Clears the flag however the count ends, a dropped request included.
        struct Recounting<'a>(&'a AtomicBool);
        impl Drop for Recounting<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        if self.coverage_recounting.swap(true, Ordering::AcqRel) {
            return Ok(None);
        }
        let _recounting = Recounting(&self.coverage_recounting);
        self.count_coverage().await.map(Some)
    }

    /// The directory as the area summary counts it, as of the last coverage count.
    async fn participants(&self) -> ServiceResult<std::sync::Arc<Vec<Participant>>> {
        let cached = self.participants_cache.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match cached {
            Some(participants) => Ok(participants),
            None => {
                self.count_coverage().await?;
                let cached = self.participants_cache.lock().unwrap_or_else(|p| p.into_inner()).clone();
                Ok(cached.unwrap_or_default())
            }
        }
    }

    async fn count_coverage(&self) -> ServiceResult<Coverage> {
        let participants = std::sync::Arc::new(self.store.participants().await?);
        *self.participants_cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(participants);
        let (holdings_total, orgs_with_holdings, last_update) = self.store.coverage().await?;
        let coverage = Coverage {
            organisations_participating: self.store.count_active_organisations().await?,
            organisations_with_holdings: orgs_with_holdings,
            holdings: holdings_total,
            last_update,
        };
        *self.coverage_cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((std::time::Instant::now(), coverage));
        Ok(coverage)
    }

    /// Rate limits and the daily quota, each counting the `subjects` this lookup asks about.
    async fn check_lookup_limits(&self, actor: &Actor, subjects: u32) -> ServiceResult<()> {
        if !self.limiter.enabled() {
            return Ok(());
        }
        let mut refusal = self.limiter.check(actor.user_id, actor.org_id, subjects).err();
        if refusal.is_none() {
            let now = self.clock.now_ms();
            let midnight = now - now.rem_euclid(86_400_000);
            let used = self.store.count_subjects_looked_up(actor.user_id, midnight).await?;
            let to_midnight = u64::try_from((midnight + 86_400_000 - now) / 1000).unwrap_or(1);
            refusal = self.limiter.check_daily(used, subjects, to_midnight).err();
        }
        match refusal {
            None => Ok(()),
            Some(refusal) => {
                let event = NewEvent::new(EventType::RateLimited)
                    .by(actor)
                    .details(json!({"limit": refusal.limit, "retry_after_secs": refusal.retry_after_secs}));
                self.record_refusal(actor, event).await?;
                Err(ServiceError::RateLimited(refusal))
            }
        }
    }
}

/// `prefix_` then 32 hex digits: the time in milliseconds (12 digits), then 20 of a random UUID's
/// (74 random bits). The audit trail indexes lookup and match ids, and ids that grow with time
/// are appended at the end of those indexes instead of each landing on a random page (a page
/// written to the WAL per id).
fn time_ordered_id(prefix: &str, now: Millis) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{:012x}{}", now.clamp(0, 0xffff_ffff_ffff), &random[..20])
}

fn tier_rank(tier: Tier) -> u8 {
    match tier {
        Tier::Confirmed => 0,
        Tier::Probable => 1,
        Tier::Possible => 2,
    }
}

/// The lookup's audit event: who, why, which key kinds were asked (never values), what came
/// back (match ids and tiers). Holders are named only by `concerning` and the sealed matches, so
/// the leaf names no holder to anyone, a shielded one least of all.
fn lookup_event(
    actor: &Actor,
    lookup: &Lookup,
    asked: usize,
    lookup_id: &str,
    matches: &[OrgMatches],
    shielded: &[ShieldedRecord],
    holder_orgs: Vec<i64>,
) -> NewEvent {
    let mut kinds: Vec<&str> = lookup.probes().map(|p| p.kind.name()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    // No holder is named in the leaf: every organisation in the scope reads it. Which holder each
    // match reached is committed to (`matches`) and stored in `lookup_matches`, where the views
    // read it for whoever may see it (the asker: every unshielded holder; a holder: itself).
    let mut results: Vec<_> = matches
        .iter()
        .flat_map(|g| {
            g.records
                .iter()
                .map(|r| json!({"match_id": r.match_id, "tier": r.tier.as_str(), "basis": r.basis.as_str()}))
        })
        .collect();
    results.extend(shielded.iter().map(
        |r| json!({"shielded": true, "match_id": r.match_id, "tier": r.tier.as_str(), "basis": r.basis.as_str()}),
    ));
    let children = lookup.children_asked();
    let mut event = NewEvent::new(EventType::Lookup).by(actor).concerning(holder_orgs);
    event.purpose = Some(lookup.purpose.as_str().to_string());
    event.lookup_id = Some(lookup_id.to_string());
    // What the person typed stays out of the permanent leaf (it holds a commitment): kept
    // beside it, erasable, shown only to the asker's organisation.
    event.free_text = lookup.purpose_detail.clone();
    event.details = json!({
        "key_kinds_asked": kinds,
        "keys_asked": asked,
        "keys_queried": lookup.probes().count(),
        "subjects_asked": lookup.subjects.len(),
        "children_asked": children,
        "carers_asked": lookup.subjects.len() - children,
        "result_count": results.len(),
        "results": results,
        "token_reported_lost": actor.reported_lost_at.is_some(),
    });
    event
}

/// What a shielded holder is told at once: who asked, from where, why, and which record.
fn shielded_alert(
    actor: &Actor,
    lookup: &Lookup,
    lookup_id: &str,
    record: &MatchedRecord,
    local_ref: &str,
) -> serde_json::Value {
    json!({
        "lookup_id": lookup_id,
        "match_id": record.match_id,
        "local_ref": local_ref,
        "tier": record.tier.as_str(),
        "basis": record.basis.as_str(),
        "purpose": lookup.purpose.as_str(),
        // No free text: what the asker typed is shown to the asker's organisation only.
        "asked_by": actor.user_name,
        "asking_organisation": {"code": actor.org_code, "name": actor.org_name},
        "message": "A lookup reached your shielded record. The asker was told only that a participating \
                    organisation knows the child and will contact them: please contact them.",
    })
}

/// Which holdings the entered subjects meet. Open holdings are assessed on everything entered;
/// shielded ones as if no postcode had been entered, so neither whether a shielded record
/// matches nor its tier can tell a right guess of its district from a wrong one.
fn find_matches(lookup: &Lookup, hits: &[Hit]) -> Vec<Found> {
    let (open, shielded): (Vec<&Hit>, Vec<&Hit>) = hits.iter().partition(|h| !h.shielded);
    let mut found = find_among(lookup, &open, false);
    found.extend(find_among(lookup, &shielded, true));
    found
}

/// The probes and fields a subject is assessed with; `blind_to_district` drops the postcode.
fn asked(subject: &crate::domain::lookup::AskedSubject, blind_to_district: bool) -> (Vec<Probe>, FieldsPresent) {
    if !blind_to_district {
        return (subject.probes.clone(), subject.fields);
    }
    crate::domain::matching::blind_to_district(&subject.probes, subject.fields)
}

/// Each child's own matches (per child), then family matches, holdings whose carers match an
/// entered carer and that no entered child already matched (a sibling, an unborn child), with
/// every agreeing carer listed.
fn find_among(lookup: &Lookup, hits: &[&Hit], blind_to_district: bool) -> Vec<Found> {
    let mut found = Vec::new();
    let mut child_holdings = std::collections::HashSet::new();
    for s in lookup.subjects.iter().filter(|s| s.basis == Basis::Child) {
        let refs = hits.iter().filter(|h| !h.is_carer()).map(|h| h.as_ref());
        let (probes, fields) = asked(s, blind_to_district);
        for candidate in assess_hits(&probes, refs, fields, None) {
            child_holdings.insert(candidate.holding_id);
            found.push(Found {
                basis: Basis::Child,
                child: lookup.family.then_some(s.index),
                candidate,
                carers: vec![],
            });
        }
    }
    let mut family: BTreeMap<i64, Found> = BTreeMap::new();
    for s in lookup.subjects.iter().filter(|s| s.basis == Basis::Carer) {
        let refs = hits.iter().filter(|h| h.is_carer()).map(|h| h.as_ref());
        let (probes, fields) = asked(s, blind_to_district);
        for candidate in assess_hits(&probes, refs, fields, None) {
            if child_holdings.contains(&candidate.holding_id) {
                continue;
            }
            let agreement = CarerAgreement {
                carer: s.index,
                tier: candidate.assessment.tier,
                evidence: candidate.assessment.evidence.clone(),
            };
            let entry = family.entry(candidate.holding_id).or_insert_with(|| Found {
                basis: Basis::Carer,
                child: None,
                candidate: candidate.clone(),
                carers: Vec::new(),
            });
            if candidate.assessment.score > entry.candidate.assessment.score {
                entry.candidate = candidate;
            }
            // One line per entered carer: the best of the holding's carers it agreed with.
            match entry.carers.iter_mut().find(|a| a.carer == agreement.carer) {
                Some(existing) if agreement.tier > existing.tier => *existing = agreement,
                Some(_) => {}
                None => entry.carers.push(agreement),
            }
        }
    }
    let mut family: Vec<Found> = family.into_values().collect();
    family.sort_by(|a, b| {
        b.candidate.assessment.score.partial_cmp(&a.candidate.assessment.score).unwrap_or(std::cmp::Ordering::Equal)
    });
    found.extend(family);
    found
}

/// One page of the lookups that matched an organisation's holdings, newest first.
#[derive(Debug, Clone)]
pub struct ReceivedPage {
    pub lookups: Vec<ReceivedLookup>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<PageCursor>,
}

impl Service {
    /// Lookups by others that matched `actor`'s organisation's holdings. `before` is the previous
    /// page's cursor, or (as before cursors existed) a time: lookups strictly before it.
    pub async fn lookups_received(
        &self,
        actor: &Actor,
        before: Option<&str>,
        limit: Option<i64>,
    ) -> ServiceResult<ReceivedPage> {
        let limit = limit.unwrap_or(100).clamp(1, 1000);
        let (before_time, after) = match before.map(str::trim).filter(|b| !b.is_empty()) {
            None => (Millis::MAX, None),
            Some(text) => match (PageCursor::parse(text), crate::clock::parse_instant(text)) {
                (Some(cursor), _) => (Millis::MAX, Some(cursor)),
                (None, Some(time)) => (time, None),
                (None, None) => {
                    return Err(ServiceError::Invalid(vec![FieldError::new(
                        "before",
                        "invalid_cursor",
                        "before must be the next_cursor of the previous page, or a time (RFC 3339 or YYYY-MM-DD)",
                    )]));
                }
            },
        };
        let lookups = self.store.lookups_received(actor.org_id, before_time, after.as_ref(), limit).await?;
        let next = PageCursor::after_page(&lookups, limit, |r| PageCursor::new(r.at, r.match_id.clone()));
        Ok(ReceivedPage { lookups, next })
    }
}
