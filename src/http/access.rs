//! Who may call what: the one table of route × role. The auth middleware enforces it, the
//! security tests walk it, and docs/api.md prints it (`locator routes` writes that table).
//! A route missing from this table is refused to everyone (fail closed).

use crate::domain::role::Role;

pub struct Rule {
    pub method: &'static str,
    pub path: &'static str,
    pub roles: &'static [Role],
    /// What the rule allows, in a few words, for the printed table.
    pub why: &'static str,
}

use Role::{IgOfficer as Ig, Operator as Op, OrgAdmin as Admin, Practitioner as Pr};

const EVERYONE: &[Role] = &[Pr, Ig, Admin, Op];

/// Routes that need no token: probes, metrics and the API description.
pub const PUBLIC: &[&str] = &["/healthz", "/readyz", "/metrics", "/openapi.json"];

pub const RULES: &[Rule] = &[
    Rule { method: "GET", path: "/api/v1/me", roles: EVERYONE, why: "who am I" },
    Rule { method: "GET", path: "/api/v1/organisations", roles: EVERYONE, why: "search the directory" },
    Rule { method: "GET", path: "/api/v1/organisations/{code}", roles: EVERYONE, why: "one directory entry" },
    Rule { method: "POST", path: "/api/v1/organisations", roles: &[Op], why: "add an organisation" },
    Rule { method: "PATCH", path: "/api/v1/organisations/{code}", roles: &[Op], why: "change an organisation" },
    Rule { method: "GET", path: "/api/v1/users", roles: &[Admin], why: "the organisation's users" },
    Rule { method: "POST", path: "/api/v1/users", roles: &[Admin, Op], why: "issue a user and token" },
    Rule { method: "POST", path: "/api/v1/users/{id}/revoke", roles: &[Admin], why: "revoke a token" },
    Rule { method: "POST", path: "/api/v1/users/{id}/report-lost", roles: &[Admin], why: "flag a lost token" },
    Rule { method: "POST", path: "/api/v1/lookups", roles: &[Pr], why: "is this child known elsewhere?" },
    Rule {
        method: "GET",
        path: "/api/v1/lookups/received",
        roles: &[Pr, Ig, Admin],
        why: "lookups that reached our holdings",
    },
    Rule { method: "PUT", path: "/api/v1/holdings/{local_ref}", roles: &[Admin], why: "register or replace a holding" },
    Rule {
        method: "GET",
        path: "/api/v1/holdings/{local_ref}",
        roles: &[Admin, Ig],
        why: "what the index holds for a record",
    },
    Rule { method: "DELETE", path: "/api/v1/holdings/{local_ref}", roles: &[Admin], why: "remove a holding" },
    Rule { method: "POST", path: "/api/v1/holdings/sync", roles: &[Admin], why: "replace the whole caseload" },
    Rule { method: "GET", path: "/api/v1/matches", roles: &[Pr, Ig, Admin], why: "our holdings that match others'" },
    Rule { method: "POST", path: "/api/v1/requests", roles: &[Pr], why: "request the record behind a match" },
    Rule { method: "GET", path: "/api/v1/requests", roles: &[Pr, Ig, Admin], why: "requests made and received" },
    Rule { method: "GET", path: "/api/v1/requests/{id}", roles: &[Pr, Ig, Admin], why: "one request and its history" },
    Rule {
        method: "POST",
        path: "/api/v1/requests/{id}/acknowledge",
        roles: &[Pr, Admin],
        why: "holder: working on it",
    },
    Rule { method: "POST", path: "/api/v1/requests/{id}/fulfil", roles: &[Pr, Admin], why: "holder: record sent" },
    Rule { method: "POST", path: "/api/v1/requests/{id}/decline", roles: &[Pr, Admin], why: "holder: will not send" },
    Rule { method: "POST", path: "/api/v1/requests/{id}/withdraw", roles: &[Pr], why: "requester: no longer needed" },
    Rule { method: "GET", path: "/api/v1/webhook", roles: &[Admin], why: "where notifications go" },
    Rule { method: "PUT", path: "/api/v1/webhook", roles: &[Admin], why: "set the webhook (secret shown once)" },
    Rule { method: "DELETE", path: "/api/v1/webhook", roles: &[Admin], why: "stop webhook delivery" },
    Rule { method: "GET", path: "/api/v1/outbox", roles: &[Admin], why: "notifications and delivery state" },
    Rule { method: "GET", path: "/api/v1/audit/events", roles: &[Ig], why: "audit events in our scope" },
    Rule { method: "GET", path: "/api/v1/audit/events.csv", roles: &[Ig], why: "the same, as CSV (audited)" },
    Rule {
        method: "POST",
        path: "/api/v1/audit/subject-access",
        roles: &[Ig],
        why: "who searched for a child, who holds them (audited)",
    },
    Rule { method: "GET", path: "/api/v1/audit/anomalies", roles: &[Ig], why: "lookups flagged for review" },
    Rule { method: "GET", path: "/api/v1/audit/checkpoint", roles: &[Ig, Op], why: "the signed log head and key" },
    Rule { method: "GET", path: "/api/v1/audit/proof/inclusion", roles: &[Ig], why: "prove our event is in the log" },
    Rule { method: "GET", path: "/api/v1/audit/proof/consistency", roles: &[Ig, Op], why: "prove the log only grew" },
];

/// The roles allowed on a route, or `None` if the route is not in the table.
pub fn roles_for(method: &str, path: &str) -> Option<&'static [Role]> {
    RULES.iter().find(|r| r.method == method && r.path == path).map(|r| r.roles)
}

pub fn is_public(path: &str) -> bool {
    PUBLIC.contains(&path)
}

/// The table as Markdown, for docs/api.md.
pub fn markdown_table() -> String {
    let mut out = String::from("| method | route | practitioner | ig-officer | org-admin | operator | allows |\n");
    out.push_str("| --- | --- | :-: | :-: | :-: | :-: | --- |\n");
    for rule in RULES {
        let cells: Vec<&str> = Role::ALL.iter().map(|role| if rule.roles.contains(role) { "✔" } else { "" }).collect();
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} | {} |\n",
            rule.method, rule.path, cells[0], cells[1], cells[2], cells[3], rule.why
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_unique_and_names_at_least_one_role() {
        for (i, a) in RULES.iter().enumerate() {
            assert!(!a.roles.is_empty(), "{} {}", a.method, a.path);
            for b in &RULES[i + 1..] {
                assert!(!(a.method == b.method && a.path == b.path), "duplicate rule {} {}", a.method, a.path);
            }
        }
    }

    #[test]
    fn an_unknown_route_is_allowed_to_nobody() {
        assert!(roles_for("DELETE", "/api/v1/everything").is_none());
    }
}
