//! Disclosure policy: what an asker sees about a match, by their organisation's kind and role.
//! The safe default: everyone sees who to call; only social care, health and police
//! practitioners see the category and status. docs/policy.md states it.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::organisation::OrgKind;
use super::request::Side;
use super::role::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disclosure {
    /// Organisation, contact, tier and evidence: "known to X, call this line".
    Contact,
    /// Contact plus the category (e.g. child protection plan) and status (open/closed).
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    by_kind: HashMap<OrgKind, Disclosure>,
}

impl Default for Policy {
    fn default() -> Self {
        let by_kind = OrgKind::ALL
            .into_iter()
            .map(|kind| {
                let level = match kind {
                    OrgKind::LocalAuthority | OrgKind::NhsTrust | OrgKind::Police => Disclosure::Full,
                    OrgKind::GpPractice | OrgKind::School | OrgKind::Other => Disclosure::Contact,
                };
                (kind, level)
            })
            .collect();
        Policy { by_kind }
    }
}

impl Policy {
    /// The default with some kinds overridden (from the `[disclosure]` table of the config file).
    pub fn with_overrides(overrides: &HashMap<String, Disclosure>) -> Result<Policy, String> {
        let mut policy = Policy::default();
        for (kind, level) in overrides {
            let kind = OrgKind::parse(kind)
                .ok_or_else(|| format!("[disclosure] has an unknown organisation kind `{kind}`"))?;
            policy.by_kind.insert(kind, *level);
        }
        Ok(policy)
    }

    /// What this asker may see. IG officers and admins see no more than their organisation's
    /// practitioners; operators run the service and see contacts only.
    pub fn for_asker(&self, kind: OrgKind, role: Role) -> Disclosure {
        match role {
            Role::Operator => Disclosure::Contact,
            _ => self.by_kind.get(&kind).copied().unwrap_or(Disclosure::Contact),
        }
    }
}

/// A match notice (`match.new`, `match.withdrawn`) for one side: the match, and who holds the
/// other record (`other`, its directory entry), unless that holding is shielded. A shielded
/// holder is never named to the other side: it is alerted, and contacts them.
pub fn match_notice(match_id: &str, tier: &str, basis: &str, other: Value, other_shielded: bool) -> Value {
    let mut payload = json!({"match_id": match_id, "tier": tier, "basis": basis});
    if other_shielded {
        payload["shielded"] = json!(true);
    } else {
        payload["other_organisation"] = other;
    }
    payload
}

/// Whether a side of a request must not be told who holds the record: the requesting side,
/// when the record was shielded as it was asked for. Every view of a request (answers, history,
/// pages, exports) applies it through the service's one redaction point.
pub fn hides_holder(holder_shielded: bool, viewer: Option<Side>) -> bool {
    holder_shielded && viewer == Some(Side::Requester)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_notice_names_the_other_holder_unless_its_holding_is_shielded() {
        let other = json!({"code": "E1", "name": "Northshire"});
        let open = match_notice("m1", "confirmed", "child", other.clone(), false);
        assert_eq!(open["other_organisation"], other);
        let shielded = match_notice("m1", "confirmed", "child", other, true);
        assert_eq!(shielded["shielded"], true);
        assert!(shielded.get("other_organisation").is_none(), "{shielded}");
        assert!(!shielded.to_string().contains("Northshire"), "{shielded}");
    }

    #[test]
    fn only_the_requesting_side_of_a_shielded_request_is_kept_from_the_holder() {
        assert!(hides_holder(true, Some(Side::Requester)));
        assert!(!hides_holder(true, Some(Side::Holder)));
        assert!(!hides_holder(false, Some(Side::Requester)));
        assert!(!hides_holder(true, None), "no side sees the request at all, so there is nothing to hide");
    }

    #[test]
    fn a_school_sees_the_contact_but_not_the_category() {
        assert_eq!(Policy::default().for_asker(OrgKind::School, Role::Practitioner), Disclosure::Contact);
    }

    #[test]
    fn a_council_social_worker_sees_category_and_status() {
        assert_eq!(Policy::default().for_asker(OrgKind::LocalAuthority, Role::Practitioner), Disclosure::Full);
    }

    #[test]
    fn overrides_change_one_kind_and_unknown_kinds_are_refused() {
        let overrides = HashMap::from([("school".to_string(), Disclosure::Full)]);
        let policy = Policy::with_overrides(&overrides).unwrap();
        assert_eq!(policy.for_asker(OrgKind::School, Role::Practitioner), Disclosure::Full);
        assert!(Policy::with_overrides(&HashMap::from([("academy".to_string(), Disclosure::Full)])).is_err());
    }
}
