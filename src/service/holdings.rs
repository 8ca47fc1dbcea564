//! Registering holdings and signalling matches: a holding is pseudonymised, stored, then
//! compared with other organisations' holdings; new matches are recorded for both sides and
//! audited, and matches whose evidence has gone are withdrawn.

use std::collections::HashMap;

use serde_json::json;

use super::{Service, ServiceResult};
use crate::audit::{EventType, NewEvent};
use crate::domain::holding::{Change, StoredHolding};
use crate::domain::holding::{HoldingInput, NewHolding};
use crate::domain::identity::IndexKey;
use crate::domain::matching::MatchDecision;
use crate::domain::matching::{Basis, Candidate, assess_hits, blind_to_district};
use crate::domain::user::Actor;
use crate::store::holdings::Hit;
use crate::store::matches::Recorded;
use crate::store::sync_leases::LeaseRef;

/// What a match-signalling pass did, for sync summaries and audit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Signalled {
    pub new: u64,
    pub withdrawn: u64,
}

impl std::ops::AddAssign for Signalled {
    fn add_assign(&mut self, other: Signalled) {
        self.new += other.new;
        self.withdrawn += other.withdrawn;
    }
}

impl Service {
    /// Creates or replaces one holding (PUT), then signals matches.
    pub async fn put_holding(
        &self,
        actor: &Actor,
        local_ref: &str,
        input: HoldingInput,
    ) -> ServiceResult<(Change, StoredHolding)> {
        let holding = input.into_holding(local_ref, &self.keys, self.clock.today())?;
        let exists = match self.store.holding(actor.org_id, &holding.local_ref).await {
            Ok(_) => true,
            Err(crate::store::StoreError::NotFound) => false,
            Err(e) => return Err(e.into()),
        };
        if !exists {
            self.check_churn(actor.org_id, Some(actor)).await?;
        }
        let written = self.store.put_holding(actor.org_id, &holding, &self.key_id, self.clock.now_ms()).await?;
        let (change, id) = (written.change, written.id);
        // One record sent is records sent: the area summary's "last sent records" counts it.
        self.store.mark_synced(actor.org_id, self.clock.now_ms()).await?;
        if change == Change::Added {
            self.count_churn(actor.org_id, Some(actor), 1, 0, false).await?;
        }
        self.prefilter.add(written.new_keys(&holding));
        if change != Change::Unchanged {
            self.signal_matches(actor.org_id, id, &holding, change).await?;
            self.recheck_key_family().await;
        }
        let event = NewEvent::new(EventType::HoldingPut).by(actor).details(json!({
            "holding_id": id,
            "change": format!("{change:?}").to_lowercase(),
            "category": holding.category.as_str(),
            "status": holding.status.as_str(),
            "pseudonyms": holding.keys.len(),
        }));
        self.audit.record(event).await?;
        Ok((change, self.store.holding(actor.org_id, &holding.local_ref).await?))
    }

    /// Shields or unshields a holding without resending its identifiers. From now on askers and
    /// the other side of its matches are not told who holds it (what they were told before stays
    /// told); unshielding names the holder again.
    pub async fn set_shielded(&self, actor: &Actor, local_ref: &str, shielded: bool) -> ServiceResult<StoredHolding> {
        self.store.set_shielded(actor.org_id, local_ref, shielded, self.clock.now_ms()).await?;
        let holding = self.store.holding(actor.org_id, local_ref).await?;
        let event = NewEvent::new(EventType::HoldingPut)
            .by(actor)
            .details(json!({"holding_id": holding.id, "change": if shielded { "shielded" } else { "unshielded" }}));
        self.audit.record(event).await?;
        Ok(holding)
    }

    /// Removes one holding; its matches are withdrawn for both sides.
    pub async fn delete_holding(&self, actor: &Actor, local_ref: &str) -> ServiceResult<()> {
        let holding = self.store.holding(actor.org_id, local_ref).await?;
        self.remove_holdings(actor.org_id, &[holding.id], None).await?;
        self.count_churn(actor.org_id, Some(actor), 0, 1, false).await?;
        let event = NewEvent::new(EventType::HoldingDeleted).by(actor).details(json!({"holding_id": holding.id}));
        self.audit.record(event).await?;
        Ok(())
    }

    /// Deletes holdings and withdraws their matches (audited per match, for the other side);
    /// returns how many holdings really went (one deleted meanwhile is not counted). A sync
    /// passes its lease: its removals go behind its fence.
    pub(crate) async fn remove_holdings(
        &self,
        org_id: i64,
        ids: &[i64],
        sync: Option<&LeaseRef>,
    ) -> ServiceResult<(u64, Signalled)> {
        let withdrawn = self.store.withdraw_all_matches(ids, self.clock.now_ms()).await?;
        self.audit_withdrawals(&withdrawn).await?;
        let fence = sync.map(|lease| (lease, self.lease_expiry()));
        let deleted = self.store.delete_holdings(org_id, ids, fence).await?;
        Ok((deleted, Signalled { withdrawn: withdrawn.len() as u64, ..Signalled::default() }))
    }

    /// Compares a freshly written holding with other organisations' holdings: its child with
    /// their children (`child` basis) and its carers with their carers (`carer` basis).
    pub(crate) async fn signal_matches(
        &self,
        org_id: i64,
        holding_id: i64,
        holding: &NewHolding,
        change: Change,
    ) -> ServiceResult<Signalled> {
        self.signal_batch(org_id, &[(holding_id, holding, change)], false).await
    }

    /// Signals matches for a batch of freshly written holdings of one organisation with one
    /// candidate search for the whole batch. `screened`: the prefilter has just been refreshed
    /// (`refresh_for_signalling`), so probes it has never seen need not be asked.
    pub(crate) async fn signal_batch(
        &self,
        org_id: i64,
        written: &[(i64, &NewHolding, Change)],
        screened: bool,
    ) -> ServiceResult<Signalled> {
        let mut keys: Vec<IndexKey> = written
            .iter()
            .filter(|(_, _, change)| *change != Change::Unchanged)
            .flat_map(|(_, h, _)| self.probes_to_ask(h, screened))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let hits = self.store.find_hits(&keys).await?;
        let mut by_key: HashMap<IndexKey, Vec<&Hit>> = HashMap::new();
        for hit in &hits {
            by_key.entry(hit.key).or_default().push(hit);
        }
        let now = self.clock.now_ms();
        let mut signalled = Signalled::default();
        let mut decisions = Vec::new();
        let mut kept = Vec::new();
        for (holding_id, holding, change) in written {
            if *change == Change::Unchanged {
                continue;
            }
            let mut mine: Vec<&Hit> = holding
                .all_probes()
                .filter_map(|p| by_key.get(&p.pseudonym.index_key()))
                .flatten()
                .filter(|h| h.holding_id != *holding_id)
                .copied()
                .collect();
            // Each stored pseudonym once, however many of this holding's subjects asked it.
            mine.sort_unstable_by_key(|h| std::ptr::from_ref::<Hit>(h) as usize);
            mine.dedup_by_key(|h| std::ptr::from_ref::<Hit>(h) as usize);
            let mut keep = Vec::new();
            for (basis, c) in decide_matches(org_id, holding, is_shielded(*holding_id, holding, &hits), &mine) {
                keep.push((c.holding_id, basis.as_str()));
                decisions.push(MatchDecision::new(org_id, *holding_id, basis, &c));
            }
            // A holding written for the first time has no matches to withdraw.
            if *change == Change::Updated {
                kept.push((*holding_id, keep));
            }
        }
        signalled.withdrawn += self.withdraw_unkept(&kept).await?;
        signalled.new += self.record_decisions(&decisions, now).await?;
        Ok(signalled)
    }

    /// A written holding's probes that may find another holding. Screened, a probe passes if the
    /// filter may hold it, and one of the holding's own stored keys only if the filter may hold
    /// it twice: once is the holding itself (its keys were added before screening).
    fn probes_to_ask<'a>(&'a self, holding: &'a NewHolding, screened: bool) -> impl Iterator<Item = IndexKey> + 'a {
        let mut own: Vec<IndexKey> = holding.keys.iter().map(|k| k.pseudonym.index_key()).collect();
        own.sort_unstable();
        let prefilter = &self.prefilter;
        holding.all_probes().map(|p| p.pseudonym.index_key()).filter(move |&key| {
            !screened
                || if own.binary_search(&key).is_ok() {
                    prefilter.may_be_shared(key)
                } else {
                    prefilter.may_contain(key)
                }
        })
    }

    /// Records match decisions in one transaction and audits the new ones together.
    async fn record_decisions(&self, decisions: &[MatchDecision], now: crate::clock::Millis) -> ServiceResult<u64> {
        if decisions.is_empty() {
            return Ok(0);
        }
        let recorded = self.store.record_matches(decisions, now).await?;
        let events: Vec<NewEvent> = decisions
            .iter()
            .zip(recorded)
            .filter_map(|(decision, recorded)| match recorded {
                Recorded::New(match_id) => Some(
                    NewEvent::new(EventType::MatchMade)
                        .concerning([decision.org_a, decision.org_b])
                        .details(json!({"match_id": match_id, "basis": decision.basis, "tier": decision.tier})),
                ),
                Recorded::Changed(_) | Recorded::Same => None,
            })
            .collect();
        let new = events.len() as u64;
        self.audit.record_all(events).await?;
        Ok(new)
    }

    /// Withdraws what rewritten holdings' matches their new details no longer make (see
    /// `Store::withdraw_unkept_matches`).
    async fn withdraw_unkept(&self, kept: &[(i64, Vec<(i64, &str)>)]) -> ServiceResult<u64> {
        if kept.is_empty() {
            return Ok(0);
        }
        let withdrawn = self.store.withdraw_unkept_matches(kept, self.clock.now_ms()).await?;
        self.audit_withdrawals(&withdrawn).await?;
        Ok(withdrawn.len() as u64)
    }

    /// One event a withdrawn match, for both organisations' IG officers, queued together so
    /// they share group commits.
    async fn audit_withdrawals(&self, withdrawn: &[(String, i64, i64)]) -> ServiceResult<()> {
        let events = withdrawn.iter().map(|(match_id, org_a, org_b)| {
            NewEvent::new(EventType::MatchWithdrawn).concerning([*org_a, *org_b]).details(json!({"match_id": match_id}))
        });
        self.audit.record_all(events.collect()).await?;
        Ok(())
    }
}

/// Whether a freshly written holding is shielded as stored: its own stored keys come back among
/// the hits with the flag the write left (an update that does not mention shielding keeps it).
fn is_shielded(holding_id: i64, holding: &NewHolding, hits: &[Hit]) -> bool {
    hits.iter().find(|h| h.holding_id == holding_id).map_or(holding.shielded.unwrap_or(false), |own| own.shielded)
}

/// Which other holdings a newly written holding matches, and on what basis: the best
/// assessment per other holding, a child match taking the place of a carer match between the
/// same two holdings (the same child is more than a shared parent). A pair with a shielded
/// holding on either side is assessed blind to the postcode district, as a lookup is.
fn decide_matches(org_id: i64, holding: &NewHolding, shielded: bool, hits: &[&Hit]) -> Vec<(Basis, Candidate)> {
    let mut best: std::collections::BTreeMap<i64, (Basis, Candidate)> = std::collections::BTreeMap::new();
    for asked in &holding.probes {
        let basis = if asked.subject == 0 { Basis::Child } else { Basis::Carer };
        let of_basis = |h: &&&Hit| h.is_carer() == (basis == Basis::Carer);
        let (blind, open): (Vec<&Hit>, Vec<&Hit>) =
            hits.iter().filter(of_basis).copied().partition(|h| shielded || h.shielded);
        let (blind_probes, blind_fields) = blind_to_district(&asked.probes, asked.fields);
        let candidates = assess_hits(&asked.probes, open.iter().map(|h| h.as_ref()), asked.fields, Some(org_id))
            .into_iter()
            .chain(assess_hits(&blind_probes, blind.iter().map(|h| h.as_ref()), blind_fields, Some(org_id)));
        for c in candidates {
            let better = match best.get(&c.holding_id) {
                None => true,
                Some((b, existing)) => (basis, c.assessment.tier) > (*b, existing.assessment.tier),
            };
            if better {
                best.insert(c.holding_id, (basis, c));
            }
        }
    }
    best.into_values().collect()
}

impl Service {
    /// What the index holds for one of the actor's organisation's records.
    pub async fn holding_of(&self, actor: &Actor, local_ref: &str) -> ServiceResult<StoredHolding> {
        Ok(self.store.holding(actor.org_id, local_ref).await?)
    }
}
