//! The suite's runner: every `#[suite::test]` becomes a libtest-mimic trial named
//! `module::test` (or `module::test::sqlite` and `module::test::postgres` for `each_engine`).
//! A trial whose precondition fails (no PostgreSQL server, no browser) is reported as ignored
//! with its reason, never as passed; under CI (`CI` set) it fails instead, so CI cannot go green
//! on a suite that did not run.

use std::future::Future;
use std::process::Command;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use crate::common::{self, Engine};

/// One test as the attribute registered it.
pub struct Case {
    pub module: &'static str,
    pub name: &'static str,
    pub each_engine: bool,
    pub isolated: bool,
    pub requires: Option<fn() -> Result<(), String>>,
    pub run: fn(Option<Engine>),
}

inventory::collect!(Case);

/// Set in the child process that runs one `isolated` test.
const ISOLATED_CHILD: &str = "LOCATOR_SUITE_ISOLATED_CHILD";

pub fn main() {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = inventory::iter::<Case>.into_iter().flat_map(trials_of).collect();
    trials.sort_by(|a, b| a.name().cmp(b.name()));
    libtest_mimic::run(&args, trials).exit();
}

/// Runs a test body the way `#[tokio::test]` did: a fresh runtime per test.
pub fn block_on<F: Future<Output = ()>>(multi_thread: bool, body: F) {
    let mut builder = if multi_thread {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().expect("a tokio runtime").block_on(body)
}

fn trials_of(case: &'static Case) -> Vec<Trial> {
    // `suite::api_holdings` -> `api_holdings`: the file the test lives in.
    let module = case.module.split_once("::").map_or(case.module, |(_, rest)| rest);
    let name = format!("{module}::{}", case.name);
    if case.each_engine {
        [(Engine::Sqlite, "sqlite"), (Engine::Postgres, "postgres")]
            .into_iter()
            .map(|(engine, suffix)| trial(case, format!("{name}::{suffix}"), Some(engine)))
            .collect()
    } else {
        vec![trial(case, name, None)]
    }
}

fn trial(case: &'static Case, name: String, engine: Option<Engine>) -> Trial {
    let label = name.clone();
    Trial::ignorable_test(name, move || {
        if let Err(reason) = preconditions(case, engine) {
            return cannot_run(&label, &reason);
        }
        if case.isolated && std::env::var_os(ISOLATED_CHILD).is_none() {
            return run_in_own_process(&label);
        }
        (case.run)(engine);
        Ok(Completion::Completed)
    })
}

fn preconditions(case: &Case, engine: Option<Engine>) -> Result<(), String> {
    if engine == Some(Engine::Postgres) {
        common::postgres_available()?;
    }
    case.requires.map_or(Ok(()), |check| check())
}

/// A test that cannot run here is ignored with its reason (and noted for the closing summary),
/// except in CI, where it fails.
fn cannot_run(test: &str, reason: &str) -> Result<Completion, Failed> {
    if common::in_ci() {
        return Err(format!("could not run in CI: {reason}").into());
    }
    common::skipped(test, reason);
    Ok(Completion::ignored_with(reason))
}

/// Runs one test alone in a child process of this binary, for tests that measure the process.
fn run_in_own_process(test: &str) -> Result<Completion, Failed> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let output = Command::new(exe)
        .args(["--exact", test, "--test-threads", "1", "--nocapture"])
        .env(ISOLATED_CHILD, "1")
        .output()
        .map_err(|e| format!("starting the isolated run: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() && stdout.contains("1 passed") {
        Ok(Completion::Completed)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!("isolated run failed ({}):\n{stdout}\n{stderr}", output.status).into())
    }
}
