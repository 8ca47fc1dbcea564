//! Running the `locator` binary as an operator would: in a fresh directory, with no LOCATOR_*
//! settings inherited from the test's environment.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_locator");

pub fn locator(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("LOCATOR_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("LOCATOR_LOG", "warn");
    cmd
}

pub fn run(dir: &Path, args: &[&str]) -> Output {
    locator(dir).args(args).output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `locator org add` for `code` (also its name) of `kind`, with a duty phone and email.
pub fn org_add_args<'a>(code: &'a str, kind: &'a str) -> [&'a str; 12] {
    [
        "org",
        "add",
        "--code",
        code,
        "--name",
        code,
        "--kind",
        kind,
        "--duty-phone",
        "01632 960000",
        "--secure-email",
        "duty@example.org",
    ]
}

/// Adds an organisation with the CLI (set-up for a test of something else).
pub fn add_org(dir: &Path, code: &str, kind: &str) {
    let out = run(dir, &org_add_args(code, kind));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
