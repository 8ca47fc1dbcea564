//! `locator audit export|verify --export|witness|events`, run as an IG officer or an auditor
//! outside the operator would: an export verifies with only the public key and no database.

use crate::common;

use std::path::Path;

use common::cli::{run, stdout};

fn add_org(dir: &Path, code: &str) {
    common::cli::add_org(dir, code, "other");
}

/// A trail with a few events, its public key in `audit.pub`.
fn trail(dir: &Path) {
    for code in ["E1", "E2", "E3"] {
        add_org(dir, code);
    }
    let out = run(dir, &["audit", "public-key"]);
    assert!(out.status.success());
    std::fs::write(dir.join("audit.pub"), &out.stdout).unwrap();
}

#[suite::test]
fn an_export_verifies_offline_with_only_the_public_key() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    let out = run(dir.path(), &["audit", "export", "trail.ndjson"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("exported"), "{}", stdout(&out));

    // An auditor elsewhere: no database, no signing key, only the export and the public key.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("trail.ndjson"), elsewhere.path().join("trail.ndjson")).unwrap();
    std::fs::copy(dir.path().join("audit.pub"), elsewhere.path().join("audit.pub")).unwrap();
    let out = run(elsewhere.path(), &["audit", "verify", "--export", "trail.ndjson", "--public-key", "audit.pub"]);
    assert!(out.status.success(), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("audit trail intact") && stdout(&out).contains("signatures valid"));
    assert!(!elsewhere.path().join("locator.db").exists(), "no database was opened or created");
    let text = std::fs::read_to_string(elsewhere.path().join("trail.ndjson")).unwrap();
    assert!(text.contains("audit_exported"), "the export is inside what it exports");
}

#[suite::test]
fn a_tampered_export_fails_naming_the_first_bad_entry() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    assert!(run(dir.path(), &["audit", "export", "trail.ndjson"]).status.success());
    let text = std::fs::read_to_string(dir.path().join("trail.ndjson")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Entry 2's line: change what its body says, as someone editing the file would.
    let (i, line) = lines.iter().enumerate().find(|(_, l)| l.contains("\"seq\":2,")).unwrap();
    assert!(line.contains("organisation_added"), "{line}");
    let mut tampered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    tampered[i] = line.replace("organisation_added", "organisation_addeD");
    std::fs::write(dir.path().join("tampered.ndjson"), tampered.join("\n") + "\n").unwrap();
    let out = run(dir.path(), &["audit", "verify", "--export", "tampered.ndjson", "--public-key", "audit.pub"]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("BROKEN") && stdout(&out).contains("entry 2"), "{}", stdout(&out));

    // A deleted entry is named as missing.
    let mut dropped: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    dropped.remove(i);
    std::fs::write(dir.path().join("dropped.ndjson"), dropped.join("\n") + "\n").unwrap();
    let out = run(dir.path(), &["audit", "verify", "--export", "dropped.ndjson", "--public-key", "audit.pub"]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("entry 2 is missing"), "{}", stdout(&out));

    // The wrong key vouches for nothing.
    let other = tempfile::tempdir().unwrap();
    let key = run(other.path(), &["audit", "public-key"]);
    std::fs::write(dir.path().join("other.pub"), &key.stdout).unwrap();
    let out = run(dir.path(), &["audit", "verify", "--export", "trail.ndjson", "--public-key", "other.pub"]);
    assert!(!out.status.success(), "{}", stdout(&out));
}

#[suite::test]
fn the_witness_file_grows_with_the_log_and_catches_a_rewritten_history() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    let out = run(dir.path(), &["audit", "witness", "--to", "witness.log"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("witnessed the checkpoint"));
    let out = run(dir.path(), &["audit", "witness", "--to", "witness.log"]);
    assert!(stdout(&out).contains("already holds"), "nothing new: {}", stdout(&out));
    add_org(dir.path(), "E4");
    assert!(run(dir.path(), &["audit", "witness", "--to", "witness.log"]).status.success());
    let notes = std::fs::read_to_string(dir.path().join("witness.log")).unwrap();
    assert_eq!(notes.matches("child-locator/audit\n").count(), 2, "{notes}");
    let out = run(dir.path(), &["audit", "verify", "--witness", "witness.log"]);
    assert!(out.status.success(), "{}", stdout(&out));

    // Another log signed with the same key (an operator rebuilding history) disagrees with it.
    let rebuilt = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("locator-audit.key"), rebuilt.path().join("locator-audit.key")).unwrap();
    for code in ["X1", "X2", "X3", "X4", "X5", "X6"] {
        add_org(rebuilt.path(), code);
    }
    let out =
        run(rebuilt.path(), &["audit", "verify", "--witness", &dir.path().join("witness.log").display().to_string()]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("BROKEN"), "{}", stdout(&out));
    let out = run(rebuilt.path(), &["audit", "witness", "--to", &dir.path().join("witness.log").display().to_string()]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("HISTORY REWRITTEN"), "{}", stdout(&out));
}

#[suite::test]
fn audit_events_lists_an_organisations_scope_as_json_lines_or_csv() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    let out = run(dir.path(), &["audit", "events", "--org", "E2", "--type", "organisation_added"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "only E2's own event: {lines:?}");
    assert_eq!(lines[0]["details"]["code"], "E2");
    let out = run(dir.path(), &["audit", "events", "--csv"]);
    let csv = stdout(&out);
    assert!(csv.starts_with("id,at,type,"), "{csv}");
    assert_eq!(csv.matches("organisation_added").count(), 3);
    let out = run(dir.path(), &["audit", "events", "--type", "nonsense"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--type"));
}

/// Copies the audit file (with its WAL, if one is left) from `from` to `to`, as a backup would.
fn copy_audit_file(from: &Path, to: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let name = format!("locator-audit.db{suffix}");
        let _ = std::fs::remove_file(to.join(&name));
        if from.join(&name).exists() {
            std::fs::copy(from.join(&name), to.join(&name)).unwrap();
        }
    }
}

#[suite::test]
fn restoring_an_older_copy_of_the_audit_file_alone_is_refused_at_start_and_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let kept = tempfile::tempdir().unwrap();
    trail(dir.path());
    copy_audit_file(dir.path(), kept.path());
    add_org(dir.path(), "E4");
    add_org(dir.path(), "E5");
    let out = run(dir.path(), &["audit", "verify"]);
    assert!(out.status.success(), "{}", stdout(&out));

    copy_audit_file(kept.path(), dir.path());
    let out = run(dir.path(), &["audit", "verify"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("BROKEN") && stdout(&out).contains("ROLLBACK"), "{}", stdout(&out));
    // Any command that starts the service (as `serve` does) refuses the trail.
    let out = common::cli::locator(dir.path())
        .args([
            "org",
            "add",
            "--code",
            "E6",
            "--name",
            "E6",
            "--kind",
            "other",
            "--duty-phone",
            "0100 000 0000",
            "--secure-email",
            "duty@e6.example",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ROLLBACK"), "{}", String::from_utf8_lossy(&out.stderr));
}
