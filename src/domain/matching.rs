//! Turning pseudonym hits into assessed candidates: which keys agreed, how common each key
//! is in the index, and the tier that evidence supports. Pure: the store supplies the hits.

use std::collections::HashMap;

use super::identity::{Agreement, Assessment, Evidence, FieldsPresent, IndexKey, KeyKind, Pseudonym, Variant, assess};

/// What two records agree on: the child's own identifiers, or a parent's or carer's.
/// Ordered so a child match outranks a carer match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Basis {
    Carer,
    Child,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Child => "child",
            Basis::Carer => "carer",
        }
    }
}

/// One key the asker (or a newly registered holding) queries with, as a pseudonym.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub pseudonym: Pseudonym,
    pub kind: KeyKind,
    pub variant: Variant,
}

/// The probes and fields a subject is assessed with against a shielded record: as if no
/// postcode had been given, so neither whether it matches nor its tier can tell a right guess
/// of the shielded child's district from a wrong one (lookups and holding matches alike).
pub fn blind_to_district(probes: &[Probe], fields: FieldsPresent) -> (Vec<Probe>, FieldsPresent) {
    let probes = probes.iter().filter(|p| p.kind != KeyKind::DistrictDobFamily).copied().collect();
    (probes, FieldsPresent::from_bits(fields.bits() & !FieldsPresent::POSTCODE))
}

/// A stored pseudonym found for a probe.
#[derive(Debug, Clone)]
pub struct HitRef {
    /// The stored key (the pseudonym's `IndexKey`).
    pub key: IndexKey,
    pub holding_id: i64,
    /// Which of the holding's subjects carries the pseudonym: 0 the child, 1.. its carers.
    pub holder_subject: u8,
    pub org_id: i64,
    /// The fields that subject of the holding had.
    pub holder_fields: FieldsPresent,
}

/// A holding (or one carer on it) that reached at least `possible`.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub holding_id: i64,
    pub holder_subject: u8,
    pub org_id: i64,
    pub assessment: Assessment,
}

/// What matching decided for one pair of holdings (ids ordered a < b): the match the store
/// records and both organisations are told of.
#[derive(Debug, Clone)]
pub struct MatchDecision {
    pub holding_a: i64,
    pub holding_b: i64,
    pub org_a: i64,
    pub org_b: i64,
    pub basis: &'static str,
    pub tier: &'static str,
    pub evidence: String,
}

impl MatchDecision {
    /// The decision for a written holding (of `org_id`) and one candidate, on `basis`.
    pub fn new(org_id: i64, holding_id: i64, basis: Basis, c: &Candidate) -> MatchDecision {
        let ((holding_a, org_a), (holding_b, org_b)) = if holding_id < c.holding_id {
            ((holding_id, org_id), (c.holding_id, c.org_id))
        } else {
            ((c.holding_id, c.org_id), (holding_id, org_id))
        };
        let evidence = match basis {
            Basis::Child => c.assessment.evidence.clone(),
            Basis::Carer => format!("a carer on both records: {}", c.assessment.evidence),
        };
        MatchDecision {
            holding_a,
            holding_b,
            org_a,
            org_b,
            basis: basis.as_str(),
            tier: c.assessment.tier.as_str(),
            evidence,
        }
    }
}

/// Assesses every holding among the hits. Holdings of `exclude_org` (the asker's own, for
/// match signalling) are skipped. The result is sorted strongest first.
pub fn assess_hits(
    probes: &[Probe],
    hits: impl IntoIterator<Item = HitRef>,
    asker_fields: FieldsPresent,
    exclude_org: Option<i64>,
) -> Vec<Candidate> {
    // The best (lowest) variant per pseudonym: an exact agreement beats a derived one.
    let mut by_key: HashMap<IndexKey, (KeyKind, Variant)> = HashMap::new();
    for p in probes {
        let entry = by_key.entry(p.pseudonym.index_key()).or_insert((p.kind, p.variant));
        if p.variant < entry.1 {
            *entry = (p.kind, p.variant);
        }
    }
    let hits: Vec<HitRef> = hits.into_iter().collect();
    let mut frequency: HashMap<IndexKey, u32> = HashMap::new();
    for hit in &hits {
        *frequency.entry(hit.key).or_default() += 1;
    }
    // Per holding subject: a child and each carer on one holding are assessed separately.
    let mut per_holding: HashMap<(i64, u8), (i64, FieldsPresent, Vec<Agreement>)> = HashMap::new();
    for hit in &hits {
        if Some(hit.org_id) == exclude_org {
            continue;
        }
        let Some(&(kind, variant)) = by_key.get(&hit.key) else { continue };
        let holders_with_key = frequency.get(&hit.key).copied().unwrap_or(1);
        let entry = per_holding
            .entry((hit.holding_id, hit.holder_subject))
            .or_insert_with(|| (hit.org_id, hit.holder_fields, Vec::new()));
        match entry.2.iter_mut().find(|a| a.kind == kind) {
            Some(existing) if variant < existing.variant => {
                *existing = Agreement { kind, variant, holders_with_key };
            }
            Some(_) => {}
            None => entry.2.push(Agreement { kind, variant, holders_with_key }),
        }
    }
    let mut candidates: Vec<Candidate> = per_holding
        .into_iter()
        .filter_map(|((holding_id, holder_subject), (org_id, holder_fields, mut agreed))| {
            agreed.sort_by_key(|a| a.kind);
            let evidence = Evidence { agreed, asker_fields, holder_fields };
            assess(&evidence).map(|assessment| Candidate { holding_id, holder_subject, org_id, assessment })
        })
        .collect();
    candidates.sort_by(|a, b| {
        b.assessment
            .score
            .partial_cmp(&a.assessment.score)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.holding_id.cmp(&b.holding_id))
            .then(a.holder_subject.cmp(&b.holder_subject))
    });
    candidates
}
