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

/// Routes that need no token: probes, metrics, the API description, the web sign-in page
/// with its stylesheet, the OAuth token endpoint (a signed client assertion authenticates), and
/// sign-in through an identity provider (the provider authenticates; `pages/oidc.rs`).
pub const PUBLIC: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/sign-in",
    "/assets/app.css",
    "/oauth/token",
    "/sign-in/provider",
    "/sign-in/provider/start",
    "/sign-in/provider/callback",
    "/signed-out",
];

pub const RULES: &[Rule] = &[
    Rule { method: "GET", path: "/api/v1/me", roles: EVERYONE, why: "who am I" },
    Rule { method: "GET", path: "/api/v1/organisations", roles: EVERYONE, why: "search the directory" },
    Rule { method: "GET", path: "/api/v1/organisations/{code}", roles: EVERYONE, why: "one directory entry" },
    Rule { method: "POST", path: "/api/v1/organisations", roles: &[Op], why: "add an organisation" },
    Rule { method: "PATCH", path: "/api/v1/organisations/{code}", roles: &[Op], why: "change an organisation" },
    Rule { method: "GET", path: "/api/v1/users", roles: &[Admin], why: "the organisation's users" },
    Rule {
        method: "POST",
        path: "/api/v1/users",
        roles: &[Admin, Op],
        why: "issue a user and token (operator: only an organisation's first org-admin)",
    },
    Rule { method: "POST", path: "/api/v1/users/{id}/revoke", roles: &[Admin], why: "revoke a token" },
    Rule { method: "POST", path: "/api/v1/users/{id}/report-lost", roles: &[Admin], why: "flag a lost token" },
    Rule { method: "GET", path: "/api/v1/clients", roles: &[Admin], why: "the organisation's OAuth clients (systems)" },
    Rule {
        method: "POST",
        path: "/api/v1/clients",
        roles: &[Admin],
        why: "register a system by its public key (client credentials)",
    },
    Rule {
        method: "DELETE",
        path: "/api/v1/clients/{client_id}",
        roles: &[Admin],
        why: "revoke a client: its access tokens stop working",
    },
    Rule {
        method: "GET",
        path: "/api/v1/organisations/{code}/token-policy",
        roles: &[Admin, Op],
        why: "whether long-lived API tokens are accepted (org-admin: own organisation)",
    },
    Rule {
        method: "PUT",
        path: "/api/v1/organisations/{code}/token-policy",
        roles: &[Admin, Op],
        why: "turn long-lived API tokens off or on (org-admin: own organisation)",
    },
    Rule {
        method: "GET",
        path: "/api/v1/organisations/{code}/identity-provider",
        roles: &[Admin, Op],
        why: "the organisation's OpenID Connect provider, never its secret (org-admin: own organisation)",
    },
    Rule {
        method: "PUT",
        path: "/api/v1/organisations/{code}/identity-provider",
        roles: &[Op],
        why: "set an organisation's OpenID Connect provider and claim → role mapping",
    },
    Rule {
        method: "DELETE",
        path: "/api/v1/organisations/{code}/identity-provider",
        roles: &[Op],
        why: "remove an organisation's provider: its people sign in no more through it",
    },
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
    Rule {
        method: "PUT",
        path: "/api/v1/holdings/{local_ref}/shielded",
        roles: &[Admin],
        why: "shield a holding: its holder is never named",
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
    // Web pages (docs/ui.md): a signed-in session instead of a bearer token. Each page's roles are
    // among those of the API route it is built on (`PAGE_BACKING`; a test checks).
    Rule { method: "GET", path: "/", roles: EVERYONE, why: "page: start, links for your role" },
    Rule { method: "POST", path: "/sign-out", roles: EVERYONE, why: "page: end the session" },
    Rule { method: "GET", path: "/directory", roles: EVERYONE, why: "page: organisations and duty lines" },
    Rule { method: "GET", path: "/lookup", roles: &[Pr], why: "page: the lookup form" },
    Rule { method: "POST", path: "/lookup", roles: &[Pr], why: "page: look up, then to the answer" },
    Rule { method: "GET", path: "/lookups/{lookup_id}", roles: &[Pr], why: "page: our lookup's answer again" },
    Rule { method: "GET", path: "/requests", roles: &[Pr, Ig, Admin], why: "page: inbox and our requests" },
    Rule { method: "GET", path: "/requests/new", roles: &[Pr], why: "page: request form for a match" },
    Rule { method: "POST", path: "/requests", roles: &[Pr], why: "page: request the record" },
    Rule { method: "GET", path: "/requests/{id}", roles: &[Pr, Ig, Admin], why: "page: one request, its actions" },
    Rule { method: "POST", path: "/requests/{id}/acknowledge", roles: &[Pr, Admin], why: "page: acknowledge" },
    Rule { method: "POST", path: "/requests/{id}/fulfil", roles: &[Pr, Admin], why: "page: record sent" },
    Rule { method: "POST", path: "/requests/{id}/decline", roles: &[Pr, Admin], why: "page: decline" },
    Rule { method: "GET", path: "/requests/{id}/withdraw", roles: &[Pr], why: "page: confirm a withdrawal" },
    Rule { method: "POST", path: "/requests/{id}/withdraw", roles: &[Pr], why: "page: withdraw" },
    Rule { method: "GET", path: "/matches", roles: &[Pr, Ig, Admin], why: "page: our matches with others" },
    Rule { method: "GET", path: "/caseload", roles: &[Admin], why: "page: caseload upload form" },
    Rule { method: "POST", path: "/caseload", roles: &[Admin], why: "page: upload, see the sync summary" },
    Rule { method: "POST", path: "/caseload/shield", roles: &[Admin], why: "page: shield or unshield one record" },
    Rule { method: "GET", path: "/users", roles: &[Admin], why: "page: users and tokens" },
    Rule { method: "POST", path: "/users", roles: &[Admin], why: "page: issue a token (shown once)" },
    Rule { method: "GET", path: "/users/{id}/revoke", roles: &[Admin], why: "page: confirm a revocation" },
    Rule { method: "POST", path: "/users/{id}/revoke", roles: &[Admin], why: "page: revoke a token" },
    Rule { method: "GET", path: "/audit", roles: &[Ig], why: "page: audit search and chart" },
    Rule { method: "GET", path: "/audit/export.csv", roles: &[Ig], why: "page: CSV export (audited)" },
    Rule { method: "GET", path: "/audit/anomalies", roles: &[Ig], why: "page: anomaly list" },
    Rule { method: "GET", path: "/audit/subject-access", roles: &[Ig], why: "page: subject access form" },
    Rule { method: "POST", path: "/audit/subject-access", roles: &[Ig], why: "page: subject access (audited)" },
    Rule {
        method: "GET",
        path: "/audit/subject-access/{answer_id}",
        roles: &[Ig],
        why: "page: our subject access answer again",
    },
    Rule { method: "GET", path: "/audit/checkpoint", roles: &[Ig, Op], why: "page: download the checkpoint" },
];

/// An API route: method and path.
pub type ApiRoute = (&'static str, &'static str);

/// Which API route each web page is built on: the page's roles must be among the API route's (a
/// test checks), so a page never lets a role do what the API would refuse it. `None` for the pages
/// that only concern the session itself.
pub const PAGE_BACKING: &[(&str, &str, Option<ApiRoute>)] = &[
    ("GET", "/", Some(("GET", "/api/v1/me"))),
    ("POST", "/sign-out", None),
    ("GET", "/directory", Some(("GET", "/api/v1/organisations"))),
    ("GET", "/lookup", Some(("POST", "/api/v1/lookups"))),
    ("POST", "/lookup", Some(("POST", "/api/v1/lookups"))),
    ("GET", "/lookups/{lookup_id}", Some(("POST", "/api/v1/lookups"))),
    ("GET", "/requests", Some(("GET", "/api/v1/requests"))),
    ("GET", "/requests/new", Some(("POST", "/api/v1/requests"))),
    ("POST", "/requests", Some(("POST", "/api/v1/requests"))),
    ("GET", "/requests/{id}", Some(("GET", "/api/v1/requests/{id}"))),
    ("POST", "/requests/{id}/acknowledge", Some(("POST", "/api/v1/requests/{id}/acknowledge"))),
    ("POST", "/requests/{id}/fulfil", Some(("POST", "/api/v1/requests/{id}/fulfil"))),
    ("POST", "/requests/{id}/decline", Some(("POST", "/api/v1/requests/{id}/decline"))),
    ("GET", "/requests/{id}/withdraw", Some(("POST", "/api/v1/requests/{id}/withdraw"))),
    ("POST", "/requests/{id}/withdraw", Some(("POST", "/api/v1/requests/{id}/withdraw"))),
    ("GET", "/matches", Some(("GET", "/api/v1/matches"))),
    ("GET", "/caseload", Some(("POST", "/api/v1/holdings/sync"))),
    ("POST", "/caseload", Some(("POST", "/api/v1/holdings/sync"))),
    ("POST", "/caseload/shield", Some(("PUT", "/api/v1/holdings/{local_ref}/shielded"))),
    ("GET", "/users", Some(("GET", "/api/v1/users"))),
    ("POST", "/users", Some(("POST", "/api/v1/users"))),
    ("GET", "/users/{id}/revoke", Some(("POST", "/api/v1/users/{id}/revoke"))),
    ("POST", "/users/{id}/revoke", Some(("POST", "/api/v1/users/{id}/revoke"))),
    ("GET", "/audit", Some(("GET", "/api/v1/audit/events"))),
    ("GET", "/audit/export.csv", Some(("GET", "/api/v1/audit/events.csv"))),
    ("GET", "/audit/anomalies", Some(("GET", "/api/v1/audit/anomalies"))),
    ("GET", "/audit/subject-access", Some(("POST", "/api/v1/audit/subject-access"))),
    ("POST", "/audit/subject-access", Some(("POST", "/api/v1/audit/subject-access"))),
    ("GET", "/audit/subject-access/{answer_id}", Some(("POST", "/api/v1/audit/subject-access"))),
    ("GET", "/audit/checkpoint", Some(("GET", "/api/v1/audit/checkpoint"))),
];

/// The roles allowed on a route, or `None` if the route is not in the table.
pub fn roles_for(method: &str, path: &str) -> Option<&'static [Role]> {
    RULES.iter().find(|r| r.method == method && r.path == path).map(|r| r.roles)
}

/// When the table has `path` but not with `method`: the methods it does have, for a 405's
/// `Allow` header. `None` when the method is in the table, or the path is not (fail closed: 403).
pub fn methods_if_not(method: &str, path: &str) -> Option<String> {
    let methods: Vec<&str> = RULES.iter().filter(|r| r.path == path).map(|r| r.method).collect();
    (!methods.is_empty() && !methods.contains(&method)).then(|| methods.join(", "))
}

pub fn is_public(path: &str) -> bool {
    PUBLIC.contains(&path)
}

/// Web pages authenticate with a session cookie; everything under /api/ with a bearer token.
pub fn is_page(path: &str) -> bool {
    !path.starts_with("/api/") && !is_public(path)
}

/// Whether the table lets this role call this route (pages use it to decide which links to show,
/// so a link appears exactly when following it would be allowed).
pub fn allows(role: Role, method: &str, path: &str) -> bool {
    roles_for(method, path).is_some_and(|roles| roles.contains(&role))
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
    fn no_page_allows_a_role_that_the_api_route_behind_it_refuses() {
        for rule in RULES.iter().filter(|r| is_page(r.path)) {
            let backing = PAGE_BACKING.iter().find(|(m, p, _)| *m == rule.method && *p == rule.path);
            let Some((_, _, backing)) = backing else {
                panic!("{} {} has no PAGE_BACKING entry", rule.method, rule.path)
            };
            if let Some((method, path)) = backing {
                let api = roles_for(method, path).unwrap_or_else(|| panic!("{method} {path} is not in the table"));
                for role in rule.roles {
                    assert!(api.contains(role), "{role} on {} {} but not on {method} {path}", rule.method, rule.path);
                }
            }
        }
        assert_eq!(PAGE_BACKING.len(), RULES.iter().filter(|r| is_page(r.path)).count());
    }

    #[test]
    fn a_method_the_route_lacks_is_named_with_the_ones_it_has() {
        assert_eq!(methods_if_not("HEAD", "/api/v1/me").as_deref(), Some("GET"));
        assert_eq!(methods_if_not("GET", "/api/v1/me"), None);
        assert_eq!(methods_if_not("GET", "/api/v1/nowhere"), None);
        assert_eq!(methods_if_not("OPTIONS", "/api/v1/webhook").as_deref(), Some("GET, PUT, DELETE"));
    }

    #[test]
    fn an_unknown_route_is_allowed_to_nobody() {
        assert!(roles_for("DELETE", "/api/v1/everything").is_none());
    }
}
