//! Load generator: drives lookups (and, for the yardstick, `/healthz`) at a running server from
//! a separate process, and prints p50/p99 latency and throughput for each.
//!
//! cargo run --release --example loadgen -- --url http://127.0.0.1:8080 --token clk_... \
//!     --lookups bench/data/lookups.ndjson --seconds 15 --concurrency 32
//!
//! With `--rate R`, only lookups, sent open-loop at R a second whatever the answers do, each
//! timed from when it was due: latency under a given load, queueing included.
//!
//! With `--admin-token` (an org-admin of an organisation set aside for churn), a third phase
//! drives mixed traffic: 85 % lookups, 10 % record requests on matches the lookups found, and
//! 5 % small caseload syncs (20 rows, one changed each time) for that organisation, with
//! p50/p99 per kind.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

type MakeRequest = Arc<dyn Fn(usize) -> reqwest::RequestBuilder + Send + Sync>;

struct Outcome {
    latencies_us: Vec<u64>,
    errors: u64,
    elapsed: Duration,
}

async fn drive(seconds: u64, concurrency: usize, make: MakeRequest) -> Outcome {
    let counter = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let make = make.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                match make(n).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed().as_micros() as u64);
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            all.extend(l);
            errors += e;
        }
    }
    all.sort_unstable();
    Outcome { latencies_us: all, errors, elapsed: started.elapsed() }
}

/// Sends request n at `start + n / rate`, each on its own task. Latency counts from when a request
/// was due, not from when it was sent, so a server that falls behind is charged for the queue it
/// makes (a closed loop would wait for it and hide that: coordinated omission).
async fn drive_at_rate(seconds: u64, rate: f64, make: MakeRequest) -> (Outcome, Vec<u64>) {
    let started = tokio::time::Instant::now();
    let total = (seconds as f64 * rate) as usize;
    let mut tasks = Vec::with_capacity(total);
    let mut late_us = Vec::with_capacity(total);
    for n in 0..total {
        let due = started + Duration::from_secs_f64(n as f64 / rate);
        tokio::time::sleep_until(due).await;
        // Each request is its own task, so a slow answer never delays the next send; but this
        // process shares the machine, and its timer can wake late. Latency still counts from
        // `due` (the conservative figure); how late the sends were is reported beside it, so a
        // load generator that fell behind shows.
        late_us.push(due.elapsed().as_micros() as u64);
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            match make(n).send().await {
                Ok(r) if r.status().is_success() => {
                    let _ = r.bytes().await;
                    Some(due.elapsed().as_micros() as u64)
                }
                _ => None,
            }
        }));
    }
    let (mut all, mut errors) = (Vec::with_capacity(total), 0);
    for t in tasks {
        match t.await {
            Ok(Some(latency)) => all.push(latency),
            _ => errors += 1,
        }
    }
    all.sort_unstable();
    late_us.sort_unstable();
    (Outcome { latencies_us: all, errors, elapsed: started.elapsed() }, late_us)
}

#[derive(Clone, Copy)]
enum Kind {
    Lookup,
    Request,
    Sync,
}

/// Mixed traffic; latencies per kind.
async fn drive_mixed(
    seconds: u64,
    concurrency: usize,
    make: Arc<dyn Fn(usize) -> (Kind, reqwest::RequestBuilder) + Send + Sync>,
) -> [Outcome; 3] {
    let counter = Arc::new(AtomicUsize::new(0));
    // One organisation's syncs run one at a time (the service refuses a second with 409), as
    // its case-recording system sends them: a client whose turn it is waits for the one before.
    let sync_turn = Arc::new(tokio::sync::Mutex::new(()));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let make = make.clone();
        let counter = counter.clone();
        let sync_turn = sync_turn.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies: [Vec<u64>; 3] = Default::default();
            let mut errors = [0u64; 3];
            while Instant::now() < deadline {
                let (kind, request) = make(counter.fetch_add(1, Ordering::Relaxed));
                let _turn = match kind {
                    Kind::Sync => Some(sync_turn.lock().await),
                    Kind::Lookup | Kind::Request => None,
                };
                let t = Instant::now();
                match request.send().await {
                    // A second request through the same match is refused as a duplicate (409):
                    // with a bounded set of matches that is most of them after a while, and it is
                    // still a full round trip through auth, the store and the audit trail.
                    Ok(r) if r.status().is_success() || (matches!(kind, Kind::Request) && r.status() == 409) => {
                        let _ = r.bytes().await;
                        latencies[kind as usize].push(t.elapsed().as_micros() as u64);
                    }
                    Ok(r) => {
                        errors[kind as usize] += 1;
                        // The first few refusals are shown: a load test that mostly fails measures nothing.
                        if errors[kind as usize] <= 2 {
                            let status = r.status();
                            eprintln!("refused: {status} {}", r.text().await.unwrap_or_default());
                        }
                    }
                    Err(e) => {
                        errors[kind as usize] += 1;
                        eprintln!("failed: {e}");
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut all: [Vec<u64>; 3] = Default::default();
    let mut errors = [0u64; 3];
    for t in tasks {
        if let Ok((l, e)) = t.await {
            for k in 0..3 {
                all[k].extend(&l[k]);
                errors[k] += e[k];
            }
        }
    }
    let elapsed = started.elapsed();
    all.map(|mut l| {
        l.sort_unstable();
        l
    })
    .into_iter()
    .zip(errors)
    .map(|(latencies_us, errors)| Outcome { latencies_us, errors, elapsed })
    .collect::<Vec<_>>()
    .try_into()
    .unwrap_or_else(|_| unreachable!())
}

/// A 20-row NDJSON caseload; row `n % 20` changes status each time, so every sync writes.
fn churn_caseload(n: usize) -> String {
    let mut out = String::new();
    for i in 0..20 {
        let status = if i == n % 20 && (n / 20) % 2 == 1 { "closed" } else { "open" };
        out.push_str(&format!(
            "{{\"local_ref\": \"CHURN-{i}\", \"category\": \"early-help\", \"status\": \"{status}\", \"subject\": \
             {{\"given_name\": \"Churn\", \"family_name\": \"Testcase{i}\", \"date_of_birth\": \"2016-01-{:02}\"}}}}\n",
            1 + i
        ));
    }
    out
}

fn report(name: &str, o: &Outcome) -> f64 {
    let n = o.latencies_us.len();
    let pct = |p: f64| o.latencies_us.get(((n as f64 * p) as usize).min(n.saturating_sub(1))).copied().unwrap_or(0);
    let rate = n as f64 / o.elapsed.as_secs_f64();
    println!(
        "{name:<10} requests {n:>8}  errors {:>5}  throughput {rate:>9.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms",
        o.errors,
        pct(0.50) as f64 / 1000.0,
        pct(0.99) as f64 / 1000.0,
        o.latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    rate
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let url = arg("--url", "http://127.0.0.1:8080");
    let token = arg("--token", "");
    let seconds: u64 = arg("--seconds", "10").parse().unwrap_or(10);
    let concurrency: usize = arg("--concurrency", "32").parse().unwrap_or(32);
    let bodies: Arc<Vec<String>> = Arc::new(
        std::fs::read_to_string(arg("--lookups", "bench/data/lookups.ndjson"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect(),
    );
    if bodies.is_empty() {
        eprintln!("no lookup bodies: pass --lookups FILE (see examples/gen_caseload.rs)");
        std::process::exit(2);
    }
    // A request the server never answers counts as an error after 30 s: an open-loop run past
    // the server's capacity once waited for one forever and never reported.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default();
    let lookup_url = format!("{url}/api/v1/lookups");
    let lookup = {
        let (c, b, u, t) = (client.clone(), bodies.clone(), lookup_url.clone(), token.clone());
        Arc::new(move |n: usize| {
            c.post(&u).bearer_auth(&t).header("content-type", "application/json").body(b[n % b.len()].clone())
        })
    };

    if let Some(rate) = args.iter().any(|a| a == "--rate").then(|| arg("--rate", "").parse::<f64>()) {
        let Ok(rate) = rate.map(|r| r.max(1.0)) else {
            eprintln!("--rate takes lookups a second, e.g. --rate 1000");
            std::process::exit(2);
        };
        let (lookups, late_us) = drive_at_rate(seconds, rate, lookup).await;
        println!("lookups sent at {rate:.0}/s for {seconds} s, each timed from when it was due:");
        report("lookups", &lookups);
        let late = |p: f64| late_us[((late_us.len() as f64 * p) as usize).min(late_us.len().saturating_sub(1))];
        println!(
            "sends late by p50 {:.2} ms, p99 {:.2} ms (the load generator's own timer; large means it fell behind)",
            late(0.5) as f64 / 1000.0,
            late(0.99) as f64 / 1000.0
        );
        fail_on_errors(&[&lookups]);
        return;
    }

    let health_url = format!("{url}/healthz");
    let c = client.clone();
    let health = drive(seconds, concurrency, Arc::new(move |_| c.get(&health_url))).await;

    // The product's yardstick: an authenticated point read (token check + one row) on the same
    // server in the same run; /healthz alone measures only the web framework.
    let me_url = format!("{url}/api/v1/me");
    let (c, t) = (client.clone(), token.clone());
    let me = drive(seconds, concurrency, Arc::new(move |_| c.get(&me_url).bearer_auth(&t))).await;

    let lookups = drive(seconds, concurrency, lookup).await;

    println!("concurrency {concurrency}, {seconds} s each, one client process on the same machine");
    let framework = report("/healthz", &health);
    let point_read = report("/api/v1/me", &me);
    let rate = report("lookups", &lookups);
    println!("lookup throughput / GET /api/v1/me throughput = {:.2}", rate / point_read.max(1.0));
    println!("lookup throughput / healthz throughput = {:.2}", rate / framework.max(1.0));

    let admin_token = arg("--admin-token", "");
    if admin_token.is_empty() {
        fail_on_errors(&[&health, &me, &lookups]);
        return;
    }
    // Match ids to request records on: from lookups that hit.
    let mut match_ids = Vec::new();
    for body in bodies.iter().take(400) {
        let Ok(r) = client
            .post(&lookup_url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
        else {
            continue;
        };
        let Ok(v) = r.json::<serde_json::Value>().await else { continue };
        // A record held by the asker's own organisation cannot be requested.
        let others = v["matches"].as_array().into_iter().flatten().filter(|g| g["own_organisation"] == false);
        let found = others.filter_map(|g| g["match_id"].as_str());
        match_ids.extend(found.map(String::from));
    }
    match_ids.sort_unstable();
    match_ids.dedup();
    if match_ids.is_empty() {
        eprintln!("no lookup found a match: mixed traffic needs hits");
        std::process::exit(2);
    }
    let match_ids = Arc::new(match_ids);
    let (c, b) = (client.clone(), bodies.clone());
    let requests_url = format!("{url}/api/v1/requests");
    let sync_url = format!("{url}/api/v1/holdings/sync");
    let mixed = drive_mixed(
        seconds,
        concurrency,
        Arc::new(move |n| match n % 20 {
            0 => (
                Kind::Sync,
                c.post(&sync_url)
                    .bearer_auth(&admin_token)
                    .header("content-type", "application/x-ndjson")
                    .body(churn_caseload(n / 20)),
            ),
            1 | 2 => (
                Kind::Request,
                c.post(&requests_url).bearer_auth(&token).json(&serde_json::json!({
                    "match_id": match_ids[n % match_ids.len()], "legal_basis": "ca1989-s47",
                    "reason": "load test: section 47 enquiry", "urgency": "routine"})),
            ),
            _ => (
                Kind::Lookup,
                c.post(&lookup_url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(b[n % b.len()].clone()),
            ),
        }),
    )
    .await;
    println!(
        "mixed traffic (85 % lookups, 10 % record requests (201 or 409 duplicate), 5 % 20-row syncs), {seconds} s:"
    );
    let total: f64 = ["lookups", "requests", "syncs"].iter().zip(&mixed).map(|(name, o)| report(name, o)).sum();
    println!(
        "mixed throughput {total:.0}/s = {:.2} x GET /api/v1/me = {:.2} x healthz",
        total / point_read.max(1.0),
        total / framework.max(1.0)
    );
    fail_on_errors(&[&health, &me, &lookups, &mixed[0], &mixed[1], &mixed[2]]);
}

/// A run with refused or failed requests measured something else: exit non-zero (CI's smoke run
/// relies on it).
fn fail_on_errors(outcomes: &[&Outcome]) {
    let errors: u64 = outcomes.iter().map(|o| o.errors).sum();
    if errors > 0 {
        eprintln!("{errors} requests failed or were refused");
        std::process::exit(1);
    }
}
