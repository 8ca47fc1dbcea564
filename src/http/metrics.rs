//! Prometheus metrics: request counts and latency histograms by route template and status.
//! Labels are route templates, never paths or values, so no identifier can become a label.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

const BUCKETS_SECONDS: [f64; 12] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Series {
    count: u64,
    sum_seconds: f64,
    buckets: [u64; BUCKETS_SECONDS.len()],
}

#[derive(Default)]
pub struct Metrics {
    /// (method, route, status) → requests; (method, route) → latency.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Series>>,
    counters: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *requests.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
        drop(requests);
        let mut latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let series = latency.entry((method.to_owned(), route.to_owned())).or_default();
        series.count += 1;
        series.sum_seconds += seconds;
        for (i, bound) in BUCKETS_SECONDS.iter().enumerate() {
            if seconds <= *bound {
                series.buckets[i] += 1;
            }
        }
    }

    /// A named event counter (e.g. lookups answered), with a fixed name from the code.
    pub fn increment(&self, name: &'static str, by: u64) {
        *self.counters.lock().unwrap_or_else(|p| p.into_inner()).entry(name).or_default() += by;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP locator_http_requests_total HTTP requests by route template and status.\n");
        out.push_str("# TYPE locator_http_requests_total counter\n");
        for ((method, route, status), n) in self.requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "locator_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP locator_http_request_duration_seconds Time to answer, by route template.\n");
        out.push_str("# TYPE locator_http_request_duration_seconds histogram\n");
        for ((method, route), s) in self.latency.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            for (i, bound) in BUCKETS_SECONDS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "locator_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(out, "locator_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", s.count);
            let _ = writeln!(out, "locator_http_request_duration_seconds_sum{{{labels}}} {}", s.sum_seconds);
            let _ = writeln!(out, "locator_http_request_duration_seconds_count{{{labels}}} {}", s.count);
        }
        for (name, n) in self.counters.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "# TYPE locator_{name}_total counter\nlocator_{name}_total {n}");
        }
        out
    }
}

/// Appends a gauge read at scrape time, under a fixed name from the code.
pub fn gauge(out: &mut String, name: &'static str, help: &'static str, value: i64) {
    let _ = writeln!(out, "# HELP locator_{name} {help}\n# TYPE locator_{name} gauge\nlocator_{name} {value}");
}

/// Records every request that matched a route; unmatched paths count under one label.
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route =
        req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    state.metrics.observe(&method, &route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}
