//! `locator serve`: migrate, serve, drain on SIGTERM/SIGINT, exit 0.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;

use crate::audit::{EventType, NewEvent};
use crate::clock::Clock;
use crate::config::Settings;
use crate::http::{self, AppState};
use crate::service::Service;

pub async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let (service, task) = Service::open(settings, Clock::System).await?;
    run_service(service, task, |_| {}).await
}

/// Binds, announces, serves until a signal, then drains the audit writer.
pub async fn run_service(
    service: Service,
    task: crate::service::AuditTask,
    announce: impl FnOnce(&std::net::SocketAddr),
) -> anyhow::Result<ExitCode> {
    for notice in service.notices() {
        tracing::warn!("{notice}");
    }
    if !service.settings().limits.enabled {
        tracing::warn!("RATE LIMITS ARE OFF (LOCATOR_RATE_LIMITS=off): for load tests only, never in production");
    }
    let bind = service.settings().bind;
    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    let event = NewEvent::new(EventType::ServiceStarted).details(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "engine": service.engine().as_str(),
        "rate_limits": service.settings().limits.enabled,
    }));
    service.record(event).await.context("cannot write the audit trail at start-up")?;
    tracing::info!(%addr, engine = service.engine().as_str(), "child-locator listening");
    announce(&addr);
    let state = AppState::new(service);
    let witness = state.settings().audit_witness.clone().map(|target| {
        let state = state.clone();
        let every = state.settings().audit_witness_interval;
        tokio::spawn(async move { state.witness_on_schedule(target, every).await })
    });
    // Outbox delivery and request escalation, stopped after the HTTP server has drained;
    // the hourly retention purge and the audit witness beside them.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = {
        let state = state.clone();
        tokio::spawn(async move { state.run_background(stopped).await })
    };
    let maintenance = tokio::spawn(maintenance(state.clone()));
    let reconciler = tokio::spawn(reconcile_syncs(state.clone()));
    let prefilter = {
        let state = state.clone();
        state.mark_prefilter_warming();
        tokio::spawn(async move { state.maintain_prefilter(std::time::Duration::from_secs(30)).await })
    };
    let coverage = {
        let state = state.clone();
        tokio::spawn(async move { state.maintain_coverage(std::time::Duration::from_secs(10)).await })
    };
    let served = http::serve(state, listener).await;
    coverage.abort();
    let _ = stop.send(true);
    let _ = worker.await;
    maintenance.abort();
    reconciler.abort();
    prefilter.abort();
    let _ = maintenance.await;
    let _ = prefilter.await;
    if let Some(w) = witness {
        w.abort();
    }
    served?;
    task.finish().await;
    tracing::info!("drained; bye");
    Ok(ExitCode::SUCCESS)
}

/// Hourly housekeeping while serving: the retention purge. Failures are logged and retried
/// next hour; they never stop the service.
async fn maintenance(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match state.purge(false).await {
            Ok(s) if s.holdings > 0 => tracing::info!(holdings = s.holdings, "retention purge"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention purge failed; will retry"),
        }
    }
}

/// Accounts for syncs whose process died (their lease expired without an end) at start-up and
/// then once a lease length, on every node: each is recorded as `sync_interrupted`.
async fn reconcile_syncs(state: AppState) {
    let mut tick = tokio::time::interval(state.settings().sync_lease);
    loop {
        tick.tick().await;
        match state.reconcile_interrupted_syncs(None).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(syncs = n, "recorded interrupted syncs in the audit trail (sync_interrupted)"),
            Err(e) => tracing::warn!(error = %e, "could not reconcile interrupted syncs; will retry"),
        }
    }
}
