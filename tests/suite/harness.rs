//! The suite's runner: every `#[suite::test]` becomes a libtest-mimic trial named
//! `module::test` (or `module::test::sqlite` and `module::test::postgres` for `each_engine`).
//! A trial whose precondition fails (no PostgreSQL server, no browser) is reported as ignored
//! with its reason, never as passed; under CI (`CI` set) it fails instead, so CI cannot go green
//! on a suite that did not run.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

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
        let run = case.run;
        run_within_time_limit(&label, move || run(engine))
    })
}

/// How long one test may take before it is failed as hung (the slowest takes about a minute);
/// `LOCATOR_TEST_TIME_LIMIT_SECS` changes it.
fn time_limit() -> Duration {
    let secs = std::env::var("LOCATOR_TEST_TIME_LIMIT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    Duration::from_secs(secs)
}

/// Runs a test body on a thread of its own and waits at most `time_limit()`: a test that hangs
/// (a browser or a provider that stops answering, a lock never released) fails by name, and the
/// rest of the run goes on, instead of the whole run hanging until CI's clock kills it.
fn run_within_time_limit(label: &str, body: impl FnOnce() + Send + 'static) -> Result<Completion, Failed> {
    let (done, outcome) = mpsc::channel();
    std::thread::Builder::new()
        .name(label.to_owned())
        .spawn(move || {
            let _ = done.send(std::panic::catch_unwind(AssertUnwindSafe(body)));
        })
        .map_err(|e| format!("starting the test's thread: {e}"))?;
    let limit = time_limit();
    match outcome.recv_timeout(limit) {
        Ok(Ok(())) => Ok(Completion::Completed),
        Ok(Err(panic)) => Err(panic_message(&*panic).into()),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(format!("did not finish within {} s: failed as hung", limit.as_secs()).into())
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("the test's thread ended without an outcome".into()),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic.downcast_ref::<String>().map(String::as_str).or_else(|| panic.downcast_ref::<&str>().copied());
    format!("test panicked: {}", text.unwrap_or("(no message)"))
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
