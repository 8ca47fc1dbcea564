//! The documentation is a test subject: every route and every `locator` command that docs/ and
//! the README name must exist, and no built feature may be called "planned".

use std::path::{Path, PathBuf};

use child_locator::cli::Cli;
use child_locator::http::access::{PUBLIC, rules};
use clap::CommandFactory;

const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

/// Features that exist: a line that calls one of them planned or not built is stale.
const BUILT: [&str; 12] = [
    "rotat",
    "witness",
    "webhook",
    "purge",
    "subject access",
    "subject-access",
    "audit/events",
    "outbox",
    "upn",
    "uk time",
    "british summer time",
    "directory search",
];

fn documents() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).expect("readable doc"))).collect()
}

fn place(path: &Path, line: usize) -> String {
    format!("{}:{}", path.file_name().unwrap_or_default().to_string_lossy(), line + 1)
}

/// A documented path matches a route when each segment is equal, or either side is a `{param}`
/// (docs write concrete values such as `/api/v1/requests/rq_123` as often as templates).
fn same_route(documented: &str, template: &str) -> bool {
    let documented: Vec<&str> = documented.trim_end_matches('/').split('/').collect();
    let template: Vec<&str> = template.trim_end_matches('/').split('/').collect();
    let param = |s: &str| s.starts_with('{') && s.ends_with('}');
    documented.len() == template.len()
        && documented.iter().zip(&template).all(|(d, t)| d == t || param(t) || param(d) || d.contains('…'))
}

/// The path that starts at `text`, up to the first character that cannot be part of one.
fn path_at(text: &str) -> &str {
    let end = text.find(|c: char| c.is_whitespace() || "`)\"'?,;|<>*".contains(c)).unwrap_or(text.len());
    text[..end].trim_end_matches(['.', ':'])
}

/// (where, method or None, path) for every `METHOD /path` and every backticked `/api/…` path
/// (a prefix such as `/api/v1/`, ending in a slash, names no route).
fn documented_routes() -> Vec<(String, Option<&'static str>, String)> {
    let mut found = Vec::new();
    for (file, text) in documents() {
        for (n, line) in text.lines().enumerate() {
            for method in METHODS {
                let pattern = format!("{method} /");
                let mut rest = line;
                while let Some(at) = rest.find(&pattern) {
                    let boundary = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric();
                    let path = path_at(&rest[at + method.len() + 1..]);
                    if boundary && path.len() > 1 && !path.ends_with('/') {
                        found.push((place(&file, n), Some(method), path.to_string()));
                    }
                    rest = &rest[at + pattern.len()..];
                }
            }
            let mut rest = line;
            while let Some(at) = rest.find("`/api/") {
                let path = path_at(&rest[at + 1..]);
                if !path.ends_with('/') {
                    found.push((place(&file, n), None, path.to_string()));
                }
                rest = &rest[at + 6..];
            }
        }
    }
    found
}

#[suite::test]
fn every_route_the_docs_name_exists() {
    let routes = documented_routes();
    assert!(routes.len() > 50, "the scan finds the documented routes ({} found)", routes.len());
    let missing: Vec<String> = routes
        .iter()
        .filter(|(_, method, path)| {
            let public = PUBLIC.iter().any(|p| same_route(path, p));
            let ruled = rules().any(|r| same_route(path, r.path) && method.is_none_or(|m| m == r.method));
            !public && !ruled
        })
        .map(|(at, method, path)| format!("{at}: {} {path}", method.unwrap_or("(any)")))
        .collect();
    assert!(missing.is_empty(), "routes named in the docs that the service does not have:\n{}", missing.join("\n"));
}

/// `locator WORD [WORD]` in backticks: the command (and its subcommand, when it has them) exists.
#[suite::test]
fn every_command_the_docs_name_exists() {
    let cli = Cli::command();
    let mut checked = 0;
    let mut missing = Vec::new();
    for (file, text) in documents() {
        for (n, line) in text.lines().enumerate() {
            for (i, _) in line.match_indices("`locator ") {
                let words: Vec<&str> = line[i + 9..]
                    .split(|c: char| c.is_whitespace() || c == '`')
                    .take_while(|w| {
                        !w.is_empty() && !w.starts_with('-') && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    })
                    .take(2)
                    .collect();
                let Some(name) = words.first() else { continue };
                checked += 1;
                let Some(command) = cli.find_subcommand(name) else {
                    missing.push(format!("{}: locator {name}", place(&file, n)));
                    continue;
                };
                if let Some(sub) = words.get(1).filter(|_| command.has_subcommands())
                    && command.find_subcommand(sub).is_none()
                {
                    missing.push(format!("{}: locator {name} {sub}", place(&file, n)));
                }
            }
        }
    }
    assert!(checked > 30, "the scan finds the documented commands ({checked} found)");
    assert!(missing.is_empty(), "commands named in the docs that `locator` does not have:\n{}", missing.join("\n"));
}

#[suite::test]
fn no_built_feature_is_called_planned() {
    let mut stale = Vec::new();
    for (file, text) in documents() {
        for (n, line) in text.lines().enumerate() {
            let lower = line.to_lowercase();
            let says_unbuilt = ["planned", "not built", "not yet built"].iter().any(|w| lower.contains(w));
            if let Some(feature) = BUILT.iter().find(|f| lower.contains(*f)).filter(|_| says_unbuilt) {
                stale.push(format!("{}: calls `{feature}` planned: {}", place(&file, n), line.trim()));
            }
        }
    }
    assert!(stale.is_empty(), "docs that call a built feature planned:\n{}", stale.join("\n"));
}

/// Paths the docs name that an operator or a run creates (secrets, a fuzzer's findings).
const MADE_WHEN_RUN: [&str; 2] = ["deploy/secrets", "fuzz/artifacts"];

/// Every file or folder of the project that the docs name by path (`tests/suite/crash.rs`,
/// `bench/run.sh`, `src/http/access.rs`) exists: moving code moves its docs.
#[suite::test]
fn every_project_file_the_docs_name_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    let mut checked = 0;
    for (file, text) in documents() {
        for (n, line) in text.lines().enumerate() {
            for top in ["tests/", "src/", "bench/", "benches/", "deploy/", "migrations/", "fuzz/"] {
                for (at, _) in line.match_indices(top) {
                    let preceded_by_path =
                        line[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || "_./-".contains(c));
                    if preceded_by_path {
                        continue;
                    }
                    let named: String =
                        line[at..].chars().take_while(|c| c.is_alphanumeric() || "_./-*".contains(*c)).collect();
                    let named = named.trim_end_matches(['.', '/']);
                    let made_when_run = MADE_WHEN_RUN.iter().any(|p| named.starts_with(p));
                    if named.contains('*') || named == top.trim_end_matches('/') || made_when_run {
                        continue;
                    }
                    checked += 1;
                    if !root.join(named).exists() {
                        missing.push(format!("{}: {named}", place(&file, n)));
                    }
                }
            }
        }
    }
    assert!(checked > 50, "the scan finds the paths the docs name ({checked} found)");
    assert!(missing.is_empty(), "paths named in the docs that do not exist:\n{}", missing.join("\n"));
}

#[suite::test]
fn the_route_scan_understands_templates_and_concrete_ids() {
    assert!(same_route("/api/v1/requests/rq_1/withdraw", "/api/v1/requests/{id}/withdraw"));
    assert!(same_route("/api/v1/holdings/{ref}", "/api/v1/holdings/{local_ref}"));
    assert!(!same_route("/api/v1/requests/rq_1/undo", "/api/v1/requests/{id}/withdraw"));
    assert_eq!(path_at("/api/v1/matches?since=1` and"), "/api/v1/matches");
}

/// A lookup's matches carry `lm_` ids (a holding-to-holding match is `m_`): an example that
/// shows a lookup answer with another prefix would send an integrator's parser the wrong way.
#[suite::test]
fn the_docs_show_lookup_match_ids_with_their_lm_prefix() {
    let mut wrong = Vec::new();
    for (file, text) in documents() {
        // Each JSON example that carries a lookup_id is a lookup answer.
        for (n, line) in text.lines().enumerate() {
            if line.contains("\"lookup_id\": \"lk_") || line.contains("\"lookup_id\":\"lk_") {
                let answer: String = text.lines().skip(n).take(4).collect::<Vec<_>>().join("\n");
                if answer.contains("\"match_id\"") && !answer.contains("\"match_id\": \"lm_") {
                    wrong.push(format!("{}: {}", place(&file, n), line.trim()));
                }
            }
        }
    }
    let integrators = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/integrators.md"))
        .expect("docs/integrators.md");
    assert!(integrators.contains("\"match_id\": \"lm_"), "docs/integrators.md shows a lookup's lm_ match id");
    assert!(wrong.is_empty(), "lookup answers whose match_id is not lm_:\n{}", wrong.join("\n"));
}
