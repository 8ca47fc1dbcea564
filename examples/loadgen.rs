//! Load generator: drives lookups (and, for the yardstick, `/healthz`) at a running server from
//! a separate process, and prints p50/p99 latency and throughput for each.
//!
//! cargo run --release --example loadgen -- --url http://127.0.0.1:8080 --token clk_... \
//!     --lookups bench/data/lookups.ndjson --seconds 15 --concurrency 32

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
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap_or_default();

    let health_url = format!("{url}/healthz");
    let c = client.clone();
    let health = drive(seconds, concurrency, Arc::new(move |_| c.get(&health_url))).await;

    let lookup_url = format!("{url}/api/v1/lookups");
    let c = client.clone();
    let b = bodies.clone();
    let lookups = drive(
        seconds,
        concurrency,
        Arc::new(move |n| {
            c.post(&lookup_url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(b[n % b.len()].clone())
        }),
    )
    .await;

    println!("concurrency {concurrency}, {seconds} s each, one client process on the same machine");
    let yardstick = report("/healthz", &health);
    let rate = report("lookups", &lookups);
    println!("lookup throughput / healthz throughput = {:.2}", rate / yardstick.max(1.0));
}
