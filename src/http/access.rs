//! Who may call what: the one table of route × role, in two parts, the JSON API's `RULES` and the
//! web `PAGES`. The auth middleware enforces it, the pages router is built from it, the security
//! tests walk it, and docs/api.md prints it (`locator routes` writes that table).
//! A route missing from this table is refused to everyone (fail closed).

use crate::domain::role::Role;

/// One row: a route and the roles that may call it.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub method: &'static str,
    pub path: &'static str,
    pub roles: &'static [Role],
    /// What the rule allows, in a few words, for the printed table.
    pub why: &'static str,
}

/// A web page's row: a rule, and the API route the page is built on.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub method: &'static str,
    pub path: &'static str,
    pub roles: &'static [Role],
    /// The API route whose use case the page serves; `None` for the session's own pages.
    pub on: Option<ApiRoute>,
    pub why: &'static str,
}

/// A page's row, built on no API route until `.on(..)` names one.
const fn page(method: &'static str, path: &'static str, roles: &'static [Role], why: &'static str) -> Page {
    Page { method, path, roles, on: None, why }
}

impl Page {
    /// The API route this page is built on.
    const fn on(self, method: &'static str, path: &'static str) -> Page {
        Page { on: Some((method, path)), ..self }
    }

    pub const fn rule(&self) -> Rule {
        Rule { method: self.method, path: self.path, roles: self.roles, why: self.why }
    }
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
];

/// An API route: method and path.
pub type ApiRoute = (&'static str, &'static str);

/// The web pages (docs/ui.md): a signed-in session instead of a bearer token. Each names the API
/// route it is built on (`.on`), and its roles must be among that route's (a test checks), so a
/// page never lets a role do what the API would refuse it; only the session's own pages name none.
/// The pages router is built from these rows (`pages::handler` has one line for each).
pub const PAGES: &[Page] = &[
    page("GET", "/", EVERYONE, "page: start, links for your role").on("GET", "/api/v1/me"),
    page("POST", "/sign-out", EVERYONE, "page: end the session"),
    page("GET", "/directory", EVERYONE, "page: organisations and duty lines").on("GET", "/api/v1/organisations"),
    page("GET", "/lookup", &[Pr], "page: the lookup form").on("POST", "/api/v1/lookups"),
    page("POST", "/lookup", &[Pr], "page: look up, then to the answer").on("POST", "/api/v1/lookups"),
    page("GET", "/lookups/{lookup_id}", &[Pr], "page: our lookup's answer again").on("POST", "/api/v1/lookups"),
    page("GET", "/requests", &[Pr, Ig, Admin], "page: inbox and our requests").on("GET", "/api/v1/requests"),
    page("GET", "/requests/new", &[Pr], "page: request form for a match").on("POST", "/api/v1/requests"),
    page("POST", "/requests", &[Pr], "page: request the record").on("POST", "/api/v1/requests"),
    page("GET", "/requests/{id}", &[Pr, Ig, Admin], "page: one request, its actions")
        .on("GET", "/api/v1/requests/{id}"),
    page("POST", "/requests/{id}/acknowledge", &[Pr, Admin], "page: acknowledge")
        .on("POST", "/api/v1/requests/{id}/acknowledge"),
    page("POST", "/requests/{id}/fulfil", &[Pr, Admin], "page: record sent").on("POST", "/api/v1/requests/{id}/fulfil"),
    page("POST", "/requests/{id}/decline", &[Pr, Admin], "page: decline").on("POST", "/api/v1/requests/{id}/decline"),
    page("GET", "/requests/{id}/withdraw", &[Pr], "page: confirm a withdrawal")
        .on("POST", "/api/v1/requests/{id}/withdraw"),
    page("POST", "/requests/{id}/withdraw", &[Pr], "page: withdraw").on("POST", "/api/v1/requests/{id}/withdraw"),
    page("GET", "/matches", &[Pr, Ig, Admin], "page: our matches with others").on("GET", "/api/v1/matches"),
    page("GET", "/caseload", &[Admin], "page: caseload upload form").on("POST", "/api/v1/holdings/sync"),
    page("POST", "/caseload", &[Admin], "page: upload, see the sync summary").on("POST", "/api/v1/holdings/sync"),
    page("POST", "/caseload/shield", &[Admin], "page: shield or unshield one record")
        .on("PUT", "/api/v1/holdings/{local_ref}/shielded"),
    page("GET", "/users", &[Admin], "page: users and tokens").on("GET", "/api/v1/users"),
    page("POST", "/users", &[Admin], "page: issue a token (shown once)").on("POST", "/api/v1/users"),
    page("GET", "/users/{id}/revoke", &[Admin], "page: confirm a revocation").on("POST", "/api/v1/users/{id}/revoke"),
    page("POST", "/users/{id}/revoke", &[Admin], "page: revoke a token").on("POST", "/api/v1/users/{id}/revoke"),
    page("GET", "/audit", &[Ig], "page: audit search and chart").on("GET", "/api/v1/audit/events"),
    page("GET", "/audit/export.csv", &[Ig], "page: CSV export (audited)").on("GET", "/api/v1/audit/events.csv"),
    page("GET", "/audit/anomalies", &[Ig], "page: anomaly list").on("GET", "/api/v1/audit/anomalies"),
    page("GET", "/audit/subject-access", &[Ig], "page: subject access form").on("POST", "/api/v1/audit/subject-access"),
    page("POST", "/audit/subject-access", &[Ig], "page: subject access (audited)")
        .on("POST", "/api/v1/audit/subject-access"),
    page("GET", "/audit/subject-access/{answer_id}", &[Ig], "page: our subject access answer again")
        .on("POST", "/api/v1/audit/subject-access"),
    page("GET", "/audit/checkpoint", &[Ig, Op], "page: download the checkpoint").on("GET", "/api/v1/audit/checkpoint"),
];

/// Every row of the table: the API's, then the pages'.
pub fn rules() -> impl Iterator<Item = Rule> {
    RULES.iter().copied().chain(PAGES.iter().map(Page::rule))
}

/// The roles allowed on a route, or `None` if the route is not in the table.
pub fn roles_for(method: &str, path: &str) -> Option<&'static [Role]> {
    rules().find(|r| r.method == method && r.path == path).map(|r| r.roles)
}

/// When the table has `path` but not with `method`: the methods it does have, for a 405's
/// `Allow` header. `None` when the method is in the table, or the path is not (fail closed: 403).
pub fn methods_if_not(method: &str, path: &str) -> Option<String> {
    let methods: Vec<&str> = rules().filter(|r| r.path == path).map(|r| r.method).collect();
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
    for rule in rules() {
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
        let all: Vec<Rule> = rules().collect();
        for (i, a) in all.iter().enumerate() {
            assert!(!a.roles.is_empty(), "{} {}", a.method, a.path);
            for b in &all[i + 1..] {
                assert!(!(a.method == b.method && a.path == b.path), "duplicate rule {} {}", a.method, a.path);
            }
        }
    }

    #[test]
    fn no_page_allows_a_role_that_the_api_route_behind_it_refuses() {
        for page in PAGES {
            assert!(is_page(page.path), "{} {} is listed with the pages but is not one", page.method, page.path);
            if let Some((method, path)) = page.on {
                let api = roles_for(method, path).unwrap_or_else(|| panic!("{method} {path} is not in the table"));
                for role in page.roles {
                    assert!(api.contains(role), "{role} on {} {} but not on {method} {path}", page.method, page.path);
                }
            }
        }
        for rule in RULES {
            assert!(
                !is_page(rule.path),
                "{} {} is a page: it belongs in PAGES, with its API route",
                rule.method,
                rule.path
            );
        }
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
