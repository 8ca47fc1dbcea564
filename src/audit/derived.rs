//! What the IG views read beside the leaves, checked against the signed leaves: an event's
//! columns (`type`, `at`, actor, `purpose`, `lookup_id`), its scope rows (`audit_event_orgs`),
//! the matches a lookup handed out (`lookup_matches`), the pseudonyms a search asked and its
//! free text. Each is re-derived from the leaf (or its commitments, with the service's leaf
//! key) and any difference names the event. Pure over one event; `verify_derived` pages the
//! store through it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use super::event::asked_value;
use super::leaf::{LeafKey, Sealed, match_value, scope_value};
use crate::store::audit::{EventColumns, StoredMatchRow};
use crate::store::{Store, StoreError};

const PAGE: i64 = 5_000;

/// The first stored row found disagreeing with the signed log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DerivedMismatch {
    #[error("entry {seq}: {what} does not match the signed leaf")]
    Event { seq: u64, what: String },
    #[error("{table} holds rows for entry {seq}, which is not in the log")]
    Outside { table: &'static str, seq: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum DerivedError {
    #[error("{0}")]
    Mismatch(#[from] DerivedMismatch),
    #[error("cannot read the audit log: {0}")]
    Store(#[from] StoreError),
}

/// One event and every row stored beside it.
#[derive(Debug, Clone, Default)]
pub struct Beside {
    pub orgs: Vec<i64>,
    pub matches: Vec<StoredMatchRow>,
    /// Pseudonym blobs (16 bytes each, end to end).
    pub asked: Vec<Vec<u8>>,
    /// (text, erased_at) when a row exists.
    pub free_text: Option<(Option<String>, Option<i64>)>,
}

#[derive(Deserialize)]
struct Leaf {
    v: Option<u64>,
    at: i64,
    #[serde(rename = "type")]
    kind: String,
    actor: Option<LeafActor>,
    purpose: Option<String>,
    lookup_id: Option<String>,
    #[serde(default)]
    scope: Vec<Value>,
    #[serde(default)]
    matches: Vec<LeafMatch>,
    asked: Option<String>,
    free_text: Option<String>,
    #[serde(default)]
    details: Value,
}

#[derive(Deserialize)]
struct LeafActor {
    user_id: i64,
    org_id: i64,
}

#[derive(Deserialize)]
struct LeafMatch {
    match_id: String,
    row: String,
}

/// Checks one event's columns and rows against its (already authenticated) leaf. Without
/// `key`, commitments are checked by count and presence only.
pub fn check_event(columns: &EventColumns, beside: &Beside, key: Option<&LeafKey>) -> Result<(), DerivedMismatch> {
    let seq = u64::try_from(columns.seq).unwrap_or(u64::MAX);
    let bad = |what: &str| DerivedMismatch::Event { seq, what: what.to_string() };
    let leaf: Leaf = serde_json::from_slice(&columns.body).map_err(|_| bad("the body"))?;
    check_columns(columns, &leaf).map_err(|column| bad(&format!("column `{column}` of audit_events")))?;
    if !scope_agrees(&leaf, seq, &beside.orgs, key) {
        return Err(bad("its organisations (audit_event_orgs)"));
    }
    if !matches_agree(&leaf, seq, &beside.matches, key) {
        return Err(bad("its matches (lookup_matches)"));
    }
    if leaf.v.is_some() {
        if !asked_agrees(&leaf, seq, &beside.asked, key) {
            return Err(bad("the pseudonyms it asked (lookup_pseudonyms)"));
        }
        if let Err(what) = free_text_agrees(&leaf, seq, beside.free_text.as_ref(), key) {
            return Err(bad(what));
        }
    }
    Ok(())
}

fn check_columns(c: &EventColumns, leaf: &Leaf) -> Result<(), &'static str> {
    let checks = [
        ("at", c.at == leaf.at),
        ("type", c.kind == leaf.kind),
        ("actor_user_id", c.actor_user_id == leaf.actor.as_ref().map(|a| a.user_id)),
        ("actor_org_id", c.actor_org_id == leaf.actor.as_ref().map(|a| a.org_id)),
        ("purpose", c.purpose == leaf.purpose),
        ("lookup_id", c.lookup_id == leaf.lookup_id),
    ];
    match checks.into_iter().find(|(_, ok)| !ok) {
        Some((column, _)) => Err(column),
        None => Ok(()),
    }
}

fn scope_agrees(leaf: &Leaf, seq: u64, orgs: &[i64], key: Option<&LeafKey>) -> bool {
    let stored: BTreeSet<i64> = orgs.iter().copied().collect();
    if stored.len() != orgs.len() || stored.len() != leaf.scope.len() {
        return false;
    }
    if leaf.v.is_none() {
        let signed: BTreeSet<i64> = leaf.scope.iter().filter_map(Value::as_i64).collect();
        return signed == stored;
    }
    let Some(key) = key else { return true };
    let mut derived: Vec<String> =
        stored.iter().map(|org| key.commit(Sealed::Scope, seq, &scope_value(*org))).collect();
    derived.sort_unstable();
    let signed: Vec<&str> = leaf.scope.iter().filter_map(Value::as_str).collect();
    derived.iter().map(String::as_str).eq(signed)
}

fn matches_agree(leaf: &Leaf, seq: u64, rows: &[StoredMatchRow], key: Option<&LeafKey>) -> bool {
    let by_id: BTreeMap<&str, &StoredMatchRow> = rows.iter().map(|r| (r.match_id.as_str(), r)).collect();
    if by_id.len() != rows.len() {
        return false;
    }
    let shared = |r: &StoredMatchRow| {
        r.lookup_id == leaf.lookup_id.clone().unwrap_or_default()
            && Some(r.asker_user_id) == leaf.actor.as_ref().map(|a| a.user_id)
            && Some(r.asker_org_id) == leaf.actor.as_ref().map(|a| a.org_id)
            && r.purpose == leaf.purpose.clone().unwrap_or_default()
            && r.at == leaf.at
    };
    if !rows.iter().all(shared) {
        return false;
    }
    if leaf.v.is_none() {
        return v1_matches_agree(leaf, &by_id);
    }
    if leaf.matches.len() != rows.len() {
        return false;
    }
    leaf.matches.iter().all(|m| {
        let Some(row) = by_id.get(m.match_id.as_str()) else { return false };
        let Some(key) = key else { return true };
        let value = match_value(&row.match_id, row.holding_id, row.holder_org_id, &row.tier, &row.basis, row.shielded);
        key.commit(Sealed::Match, seq, &value) == m.row
    })
}

/// A v1 lookup's results list its match ids with tier, basis and whether shielded.
fn v1_matches_agree(leaf: &Leaf, by_id: &BTreeMap<&str, &StoredMatchRow>) -> bool {
    let results: Vec<&Value> =
        if leaf.kind == "lookup" { leaf.details["results"].as_array().into_iter().flatten().collect() } else { vec![] };
    if results.len() != by_id.len() {
        return false;
    }
    results.iter().all(|r| {
        let Some(row) = r["match_id"].as_str().and_then(|id| by_id.get(id)) else { return false };
        let agrees = |field: &str, stored: &str| r[field].as_str().is_none_or(|signed| signed == stored);
        agrees("tier", &row.tier)
            && agrees("basis", &row.basis)
            && r["shielded"].as_bool().unwrap_or(false) == row.shielded
    })
}

fn asked_agrees(leaf: &Leaf, seq: u64, blobs: &[Vec<u8>], key: Option<&LeafKey>) -> bool {
    let pseudonyms = blobs.iter().flat_map(|b| b.chunks(crate::domain::identity::Pseudonym::LEN).map(<[u8]>::to_vec));
    let derived = asked_value(pseudonyms);
    match (&leaf.asked, derived) {
        (None, None) => true,
        (Some(signed), Some(value)) => key.is_none_or(|key| key.commit(Sealed::Asked, seq, &value) == *signed),
        _ => false,
    }
}

fn free_text_agrees(
    leaf: &Leaf,
    seq: u64,
    row: Option<&(Option<String>, Option<i64>)>,
    key: Option<&LeafKey>,
) -> Result<(), &'static str> {
    match (&leaf.free_text, row) {
        (None, None) => Ok(()),
        (Some(signed), Some((Some(text), _))) => match key {
            Some(key) if key.commit(Sealed::FreeText, seq, text.as_bytes()) != *signed => Err("its free text"),
            _ => Ok(()),
        },
        // Erased under retention: the commitment stays, the text is gone.
        (Some(_), Some((None, Some(_)))) => Ok(()),
        (Some(_), _) => Err("its free text (missing, and not erased by retention)"),
        (None, Some(_)) => Err("its free text (none was written)"),
    }
}

/// Pages the whole log (`size` entries) through `check_event`, then looks for rows beside it
/// that name positions it does not have. Call after the leaves themselves have verified.
pub async fn verify_derived(store: &Store, size: u64, key: Option<&LeafKey>) -> Result<(), DerivedError> {
    let end = i64::try_from(size).unwrap_or(i64::MAX);
    let mut from = 0i64;
    while from < end {
        let to = end.min(from + PAGE);
        let page = store.audit_derived_page(from, to).await?;
        let mut beside: BTreeMap<i64, Beside> = BTreeMap::new();
        for (seq, org) in page.orgs {
            beside.entry(seq).or_default().orgs.push(org);
        }
        for row in page.matches {
            beside.entry(row.seq).or_default().matches.push(row);
        }
        for (seq, blob) in page.asked {
            beside.entry(seq).or_default().asked.push(blob);
        }
        for (seq, text, erased_at) in page.free_text {
            beside.entry(seq).or_default().free_text = Some((text, erased_at));
        }
        let none = Beside::default();
        for columns in &page.events {
            check_event(columns, beside.get(&columns.seq).unwrap_or(&none), key)?;
        }
        from = to;
    }
    if let Some((table, seq)) = store.audit_rows_outside(size).await?.into_iter().next() {
        return Err(DerivedMismatch::Outside { table, seq }.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lookup as a v1 leaf recorded it: scope and holders in clear, no version field.
    fn v1_lookup() -> (EventColumns, Beside) {
        let body = br#"{"seq":4,"at":1000,"type":"lookup","actor":{"user_id":7,"org_id":2,"org_code":"B","role":"practitioner"},"purpose":"s47-enquiry","lookup_id":"lk_1","scope":[1,2],"details":{"results":[{"organisation":"A","match_id":"lm_1","tier":"confirmed","basis":"child"}]}}"#;
        let columns = EventColumns {
            seq: 4,
            at: 1000,
            kind: "lookup".into(),
            actor_user_id: Some(7),
            actor_org_id: Some(2),
            purpose: Some("s47-enquiry".into()),
            lookup_id: Some("lk_1".into()),
            body: body.to_vec(),
        };
        let matched = StoredMatchRow {
            seq: 4,
            match_id: "lm_1".into(),
            lookup_id: "lk_1".into(),
            asker_user_id: 7,
            asker_org_id: 2,
            holding_id: 9,
            holder_org_id: 1,
            tier: "confirmed".into(),
            purpose: "s47-enquiry".into(),
            at: 1000,
            basis: "child".into(),
            shielded: false,
        };
        (columns, Beside { orgs: vec![2, 1], matches: vec![matched], ..Beside::default() })
    }

    #[test]
    fn a_v1_leaf_is_checked_by_its_clear_fields() {
        let (columns, beside) = v1_lookup();
        assert_eq!(check_event(&columns, &beside, None), Ok(()));

        let mut other_scope = beside.clone();
        other_scope.orgs = vec![2, 3];
        let err = check_event(&columns, &other_scope, None).unwrap_err();
        assert_eq!(err.to_string(), "entry 4: its organisations (audit_event_orgs) does not match the signed leaf");

        let mut no_match = beside.clone();
        no_match.matches.clear();
        assert!(check_event(&columns, &no_match, None).unwrap_err().to_string().contains("lookup_matches"));

        let mut weaker = beside.clone();
        weaker.matches[0].tier = "possible".into();
        assert!(check_event(&columns, &weaker, None).is_err());

        let mut renamed = columns.clone();
        renamed.kind = "holding_put".into();
        let err = check_event(&renamed, &beside, None).unwrap_err();
        assert_eq!(err.to_string(), "entry 4: column `type` of audit_events does not match the signed leaf");
    }
}
