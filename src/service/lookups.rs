//! The practitioner's lookup: rate limits, pseudonymise, find, assess, disclose as policy
//! allows, and write the audit event (with the match ids handed out) before answering.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Service, ServiceError, ServiceResult};
use crate::audit::{Attachment, EventType, NewEvent};
use crate::clock::Millis;
use crate::domain::holding::{Category, Contact, Status};
use crate::domain::identity::{Tier, Variant};
use crate::domain::lookup::{Lookup, LookupInput};
use crate::domain::matching::{HitRef, assess_hits};
use crate::domain::organisation::Organisation;
use crate::domain::policy::Disclosure;
use crate::domain::user::Actor;

const COVERAGE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// One holding that matched, as this asker may see it.
#[derive(Debug, Clone)]
pub struct MatchedRecord {
    pub match_id: String,
    pub tier: Tier,
    pub evidence: String,
    pub ambiguous: bool,
    pub contact: Contact,
    /// `None` when the disclosure policy withholds them from this asker.
    pub category: Option<Category>,
    pub status: Option<Status>,
}

/// All matches at one organisation, strongest first.
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
    pub coverage: Coverage,
}

impl Service {
    pub async fn lookup(&self, actor: &Actor, input: LookupInput) -> ServiceResult<LookupOutcome> {
        self.check_lookup_limits(actor).await?;
        let mut lookup = input.into_lookup(&self.keys, self.clock.today())?;
        let asked = lookup.probes.len();
        lookup.probes = self.prefilter.screen(lookup.probes);
        let pseudonyms: Vec<Vec<u8>> = lookup.probes.iter().map(|p| p.pseudonym.as_bytes().to_vec()).collect();
        let hits = self.store.find_hits(&pseudonyms).await?;
        let candidates = assess_hits(
            &lookup.probes,
            hits.iter().map(|h| HitRef {
                pseudonym: &h.pseudonym,
                holding_id: h.holding_id,
                org_id: h.org_id,
                holder_fields: h.fields_present,
            }),
            lookup.asker_fields,
            None,
        );
        let holding_ids: Vec<i64> = candidates.iter().map(|c| c.holding_id).collect();
        let holdings = self.store.holdings_by_id(&holding_ids).await?;
        let mut org_ids: Vec<i64> = candidates.iter().map(|c| c.org_id).collect();
        org_ids.sort_unstable();
        org_ids.dedup();
        let organisations = self.store.organisations_by_id(&org_ids).await?;
        let disclosure = self.settings.policy.for_asker(actor.org_kind, actor.role);

        let lookup_id = format!("lk_{}", uuid::Uuid::new_v4().simple());
        let mut attachments = Vec::new();
        let mut groups: BTreeMap<i64, OrgMatches> = BTreeMap::new();
        for c in &candidates {
            let (Some(holding), Some(org)) =
                (holdings.iter().find(|h| h.id == c.holding_id), organisations.iter().find(|o| o.id == c.org_id))
            else {
                continue; // removed between the search and now
            };
            let match_id = format!("lm_{}", uuid::Uuid::new_v4().simple());
            attachments.push(Attachment::LookupMatch {
                match_id: match_id.clone(),
                holding_id: holding.id,
                holder_org_id: org.id,
                tier: c.assessment.tier.as_str(),
            });
            let full = disclosure == Disclosure::Full;
            let record = MatchedRecord {
                match_id,
                tier: c.assessment.tier,
                evidence: c.assessment.evidence.clone(),
                ambiguous: c.assessment.ambiguous,
                contact: Contact {
                    team: holding.contact.team.clone(),
                    phone: holding.contact.phone.clone().or_else(|| Some(org.duty_phone.clone())),
                    email: holding.contact.email.clone().or_else(|| Some(org.secure_email.clone())),
                },
                category: full.then_some(holding.category),
                status: full.then_some(holding.status),
            };
            groups
                .entry(org.id)
                .or_insert_with(|| OrgMatches {
                    organisation: org.clone(),
                    own_organisation: org.id == actor.org_id,
                    records: Vec::new(),
                })
                .records
                .push(record);
        }
        let mut matches: Vec<OrgMatches> = groups.into_values().collect();
        matches.sort_by_key(|g| g.records.first().map(|r| tier_rank(r.tier)).unwrap_or(u8::MAX));

        // Exact-form pseudonyms asked, kept beside the event so subject access can find this lookup.
        attachments.extend(
            lookup
                .probes
                .iter()
                .filter(|p| p.variant == Variant::Exact)
                .map(|p| Attachment::LookupPseudonym(p.pseudonym.as_bytes().to_vec())),
        );
        let mut event = lookup_event(actor, &lookup, asked, &lookup_id, &matches);
        event.attachments = attachments;
        // Fail closed: nothing below runs unless the event and its match ids are durable.
        self.audit.record(event).await?;

        let coverage = self.coverage().await?;
        Ok(LookupOutcome { lookup_id, matches, coverage })
    }

    /// Coverage counts scan the holdings table, so they are computed at most every
    /// `COVERAGE_TTL` and shared by every lookup in between (they are context, not evidence).
    pub async fn coverage(&self) -> ServiceResult<Coverage> {
        if let Some((at, coverage)) = *self.coverage_cache.lock().unwrap_or_else(|p| p.into_inner())
            && at.elapsed() < COVERAGE_TTL
        {
            return Ok(coverage);
        }
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

    async fn check_lookup_limits(&self, actor: &Actor) -> ServiceResult<()> {
        if !self.limiter.enabled() {
            return Ok(());
        }
        let mut refusal = self.limiter.check(actor.user_id, actor.org_id).err();
        if refusal.is_none() {
            let now = self.clock.now_ms();
            let midnight = now - now.rem_euclid(86_400_000);
            let used = self.store.count_user_events(actor.user_id, EventType::Lookup.as_str(), midnight).await?;
            let to_midnight = u64::try_from((midnight + 86_400_000 - now) / 1000).unwrap_or(1);
            refusal = self.limiter.check_daily(used, to_midnight).err();
        }
        match refusal {
            None => Ok(()),
            Some(refusal) => {
                let event = NewEvent::new(EventType::RateLimited)
                    .by(actor)
                    .details(json!({"limit": refusal.limit, "retry_after_secs": refusal.retry_after_secs}));
                self.audit.record(event).await?;
                Err(ServiceError::RateLimited(refusal))
            }
        }
    }
}

fn tier_rank(tier: Tier) -> u8 {
    match tier {
        Tier::Confirmed => 0,
        Tier::Probable => 1,
        Tier::Possible => 2,
    }
}

/// The lookup's audit event: who, why, which key kinds were asked (never values), what came back.
fn lookup_event(actor: &Actor, lookup: &Lookup, asked: usize, lookup_id: &str, matches: &[OrgMatches]) -> NewEvent {
    let mut kinds: Vec<&str> = lookup.probes.iter().map(|p| p.kind.name()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let results: Vec<_> = matches
        .iter()
        .flat_map(|g| {
            g.records
                .iter()
                .map(|r| json!({"organisation": g.organisation.code, "match_id": r.match_id, "tier": r.tier.as_str()}))
        })
        .collect();
    let mut event = NewEvent::new(EventType::Lookup).by(actor).concerning(matches.iter().map(|g| g.organisation.id));
    event.purpose = Some(lookup.purpose.as_str().to_string());
    event.lookup_id = Some(lookup_id.to_string());
    event.details = json!({
        "purpose_detail": lookup.purpose_detail,
        "key_kinds_asked": kinds,
        "keys_asked": asked,
        "keys_queried": lookup.probes.len(),
        "subjects_asked": 1,
        "result_count": results.len(),
        "results": results,
        "token_reported_lost": actor.reported_lost_at.is_some(),
    });
    event
}
