//! Registering holdings and signalling matches: a holding is pseudonymised, stored, then
//! compared with other organisations' holdings; new matches are recorded for both sides and
//! audited, and matches whose evidence has gone are withdrawn.

use serde_json::json;

use super::{Service, ServiceResult};
use crate::audit::{EventType, NewEvent};
use crate::domain::holding::{HoldingInput, NewHolding};
use crate::domain::matching::{HitRef, assess_hits};
use crate::domain::user::Actor;
use crate::store::holdings::{Change, StoredHolding};
use crate::store::matches::{MatchDecision, Recorded};

/// What a match-signalling pass did, for sync summaries and audit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Signalled {
    pub new: u64,
    pub withdrawn: u64,
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
        let (change, id) = self.store.put_holding(actor.org_id, &holding, &self.key_id, self.clock.now_ms()).await?;
        self.prefilter.add(holding.keys.iter().map(|(_, p)| p.as_bytes().as_slice()));
        if change != Change::Unchanged {
            self.signal_matches(actor.org_id, id, &holding).await?;
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

    /// Removes one holding; its matches are withdrawn for both sides.
    pub async fn delete_holding(&self, actor: &Actor, local_ref: &str) -> ServiceResult<()> {
        let holding = self.store.holding(actor.org_id, local_ref).await?;
        self.remove_holdings(actor.org_id, &[holding.id]).await?;
        let event = NewEvent::new(EventType::HoldingDeleted).by(actor).details(json!({"holding_id": holding.id}));
        self.audit.record(event).await?;
        Ok(())
    }

    /// Deletes holdings and withdraws their matches (audited per match, for the other side).
    pub(crate) async fn remove_holdings(&self, org_id: i64, ids: &[i64]) -> ServiceResult<Signalled> {
        let mut signalled = Signalled::default();
        for id in ids {
            signalled.withdrawn += self.withdraw(*id, &[]).await?;
        }
        self.store.delete_holdings(org_id, ids).await?;
        Ok(signalled)
    }

    /// Compares a freshly written holding with other organisations' holdings.
    pub(crate) async fn signal_matches(
        &self,
        org_id: i64,
        holding_id: i64,
        holding: &NewHolding,
    ) -> ServiceResult<Signalled> {
        let pseudonyms: Vec<Vec<u8>> = holding.probes.iter().map(|p| p.pseudonym.as_bytes().to_vec()).collect();
        let hits = self.store.find_hits(&pseudonyms).await?;
        let candidates = assess_hits(
            &holding.probes,
            hits.iter().filter(|h| h.holding_id != holding_id).map(|h| HitRef {
                pseudonym: &h.pseudonym,
                holding_id: h.holding_id,
                org_id: h.org_id,
                holder_fields: h.fields_present,
            }),
            holding.fields_present,
            Some(org_id),
        );
        let now = self.clock.now_ms();
        let mut signalled = Signalled::default();
        for c in &candidates {
            let ((holding_a, org_a), (holding_b, org_b)) = if holding_id < c.holding_id {
                ((holding_id, org_id), (c.holding_id, c.org_id))
            } else {
                ((c.holding_id, c.org_id), (holding_id, org_id))
            };
            let decision = MatchDecision {
                holding_a,
                holding_b,
                org_a,
                org_b,
                basis: "child",
                tier: c.assessment.tier.as_str(),
                evidence: c.assessment.evidence.clone(),
            };
            if let Recorded::New(match_id) = self.store.record_match(&decision, now).await? {
                signalled.new += 1;
                let event = NewEvent::new(EventType::MatchMade).concerning([org_a, org_b]).details(json!({
                    "match_id": match_id,
                    "basis": "child",
                    "tier": decision.tier,
                }));
                self.audit.record(event).await?;
            }
        }
        let keep: Vec<i64> = candidates.iter().map(|c| c.holding_id).collect();
        signalled.withdrawn += self.withdraw(holding_id, &keep).await?;
        Ok(signalled)
    }

    async fn withdraw(&self, holding_id: i64, keep: &[i64]) -> ServiceResult<u64> {
        let withdrawn = self.store.withdraw_matches(holding_id, keep, self.clock.now_ms()).await?;
        for (match_id, org_a, org_b) in &withdrawn {
            let event = NewEvent::new(EventType::MatchWithdrawn)
                .concerning([*org_a, *org_b])
                .details(json!({"match_id": match_id}));
            self.audit.record(event).await?;
        }
        Ok(withdrawn.len() as u64)
    }
}
