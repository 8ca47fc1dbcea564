//! The house's rules, checked on its source: data flows one way (http and cli → service →
//! domain + store + audit), the domain stays pure, and no two files import each other, however
//! indirectly. A new file that breaks a rule fails here, not in review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every source file as (module path, text before its `#[cfg(test)]` module): `store::matches`,
/// `service` (for service/mod.rs), `` (lib.rs and main.rs).
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&src).expect("under src").with_extension("");
            let mut module = relative.to_string_lossy().replace('/', "::");
            if let Some(parent) = module.strip_suffix("::mod") {
                module = parent.to_string();
            }
            if module == "lib" || module == "main" {
                module.clear();
            }
            let text = std::fs::read_to_string(&path).expect("readable");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_string();
            (module, code)
        })
        .collect()
}

/// The files a file names through `crate::…` or `super::…` paths (its own descendants and
/// ancestors aside: a parent declaring its children, or a child using its parent's items, is
/// one unit).
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (module, code) in modules {
        let own: Vec<&str> = if module.is_empty() { Vec::new() } else { module.split("::").collect() };
        let mut targets = BTreeSet::new();
        for (root, base) in [("crate::", Vec::new()), ("super::", own[..own.len().saturating_sub(1)].to_vec())] {
            for (at, _) in code.match_indices(root) {
                let before = code[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let rest = &code[at + root.len()..];
                let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
                let mut path = base.clone();
                path.extend(rest[..end].split("::").filter(|s| !s.is_empty()));
                let target = (1..=path.len()).rev().map(|n| path[..n].join("::")).find(|c| modules.contains_key(c));
                if let Some(target) = target {
                    let related =
                        module.starts_with(&format!("{target}::")) || target.starts_with(&format!("{module}::"));
                    if target != *module && !related && !module.is_empty() {
                        targets.insert(target);
                    }
                }
            }
        }
        graph.insert(module.clone(), targets);
    }
    graph
}

/// A cycle through `start`, if there is one: the path back to it.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_string());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[suite::test]
fn no_two_files_import_each_other_even_indirectly() {
    let graph = imports(&modules());
    assert!(graph.len() > 80, "the scan reads the source ({} files)", graph.len());
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|c| c.join(" → "))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(cycles.is_empty(), "import cycles between files:\n{}", cycles.join("\n"));
}

#[suite::test]
fn the_domain_is_pure_and_the_store_decides_nothing() {
    let modules = modules();
    let graph = imports(&modules);
    let layer = |m: &str| m.split("::").next().unwrap_or_default().to_string();
    let mut broken = Vec::new();
    for (module, targets) in &graph {
        let forbidden: &[&str] = match layer(module).as_str() {
            "domain" => &["http", "cli", "service", "store", "audit"],
            "store" | "audit" => &["http", "cli", "service"],
            "service" => &["http", "cli"],
            _ => &[],
        };
        for target in targets.iter().filter(|t| forbidden.contains(&layer(t).as_str())) {
            broken.push(format!("{module} imports {target}"));
        }
        let code = &modules[module];
        if layer(module) == "domain" && ["axum::", "sqlx::"].iter().any(|c| code.contains(c)) {
            broken.push(format!("{module} uses axum or sqlx"));
        }
    }
    assert!(
        broken.is_empty(),
        "imports against the flow http/cli → service → domain + store + audit:\n{}",
        broken.join("\n")
    );
}

#[suite::test]
fn the_scan_sees_an_import_and_a_cycle() {
    let modules: BTreeMap<String, String> = [
        ("a".to_string(), "use crate::b::Thing;".to_string()),
        ("b".to_string(), "fn f() { super::a::g() }".to_string()),
        ("c".to_string(), "use crate::a;".to_string()),
    ]
    .into();
    let graph = imports(&modules);
    assert_eq!(graph["c"], BTreeSet::from(["a".to_string()]));
    assert_eq!(cycle_from(&graph, "a"), Some(vec!["a".into(), "b".into(), "a".into()]));
    assert_eq!(cycle_from(&graph, "c"), None);
}

/// The code of a file without its comment lines (a comment may say "store" freely).
fn without_comments(code: &str) -> String {
    code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Whether `code` names `word` as a whole identifier (`Store`, not `StoreError`).
fn names_identifier(code: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(word).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

#[suite::test]
fn http_and_the_command_line_reach_the_store_only_through_service_methods() {
    let modules = modules();
    let mut broken = Vec::new();
    for (module, code) in &modules {
        let layer = module.split("::").next().unwrap_or_default();
        if layer != "http" && layer != "cli" {
            continue;
        }
        // `ServiceError::Store` is the error variant, not the handle.
        let code = without_comments(code).replace("ServiceError::Store(", "ServiceError::(");
        if names_identifier(&code, "Store") {
            broken.push(format!("{module} holds the store handle (`Store`)"));
        }
        // `Service`'s parts are private; the only ways to them are for tests, and the layers
        // above must not use those.
        for reach in ["_for_tests(", ".store.", ".audit.", ".service."] {
            if code.contains(reach) {
                broken.push(format!("{module} uses `{reach}`"));
            }
        }
    }
    assert!(broken.is_empty(), "http/ and cli/ go through `Service` methods only:\n{}", broken.join("\n"));
}

/// Not even the store's types: what http/ and cli/ need comes through the service, as its views
/// or the domain types it returns, so a change of schema never reaches a handler or a command.
#[suite::test]
fn http_and_the_command_line_import_nothing_from_the_store() {
    let graph = imports(&modules());
    let layer = |m: &str| m.split("::").next().unwrap_or_default().to_string();
    let broken: Vec<String> = graph
        .iter()
        .filter(|(module, _)| ["http", "cli"].contains(&layer(module).as_str()))
        .flat_map(|(module, targets)| {
            targets.iter().filter(|t| layer(t) == "store").map(move |t| format!("{module} imports {t}"))
        })
        .collect();
    assert!(broken.is_empty(), "http/ and cli/ name the store:\n{}", broken.join("\n"));
}

#[suite::test]
fn the_store_check_tells_the_handle_from_its_types() {
    assert!(names_identifier("let s: &Store = x;", "Store"));
    assert!(names_identifier("Store::connect(url)", "Store"));
    assert!(!names_identifier("use crate::store::StoreError;", "Store"));
    assert!(!names_identifier("StoredSession", "Store"));
    assert!(!without_comments("/// Store it safely\nfn f() {}").contains("Store"));
}
