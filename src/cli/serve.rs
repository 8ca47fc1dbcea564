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
    for notice in &service.notices {
        tracing::warn!("{notice}");
    }
    if !service.settings.limits.enabled {
        tracing::warn!("RATE LIMITS ARE OFF (LOCATOR_RATE_LIMITS=off): for load tests only, never in production");
    }
    let listener = tokio::net::TcpListener::bind(service.settings.bind)
        .await
        .with_context(|| format!("cannot listen on {}", service.settings.bind))?;
    let addr = listener.local_addr()?;
    let event = NewEvent::new(EventType::ServiceStarted).details(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "engine": service.store.engine().as_str(),
        "rate_limits": service.settings.limits.enabled,
    }));
    service.audit.record(event).await.context("cannot write the audit trail at start-up")?;
    tracing::info!(%addr, engine = service.store.engine().as_str(), "child-locator listening");
    announce(&addr);
    let witness = service.settings.audit_witness.clone().map(|target| {
        let (store, key, every) =
            (service.store.clone(), service.audit.signer().verifying_key(), service.settings.audit_witness_interval);
        tokio::spawn(witness_on_schedule(store, key, target, every))
    });
    let state = AppState::new(service);
    // Outbox delivery and request escalation, stopped after the HTTP server has drained;
    // the hourly retention purge and the audit witness beside them.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = {
        let state = state.clone();
        tokio::spawn(async move { state.service.run_background(stopped).await })
    };
    let maintenance = tokio::spawn(maintenance(state.clone()));
    let reconciler = tokio::spawn(reconcile_syncs(state.clone()));
    let prefilter = {
        let state = state.clone();
        state.service.prefilter.mark_warming();
        tokio::spawn(async move { state.service.maintain_prefilter(std::time::Duration::from_secs(30)).await })
    };
    let coverage = {
        let state = state.clone();
        tokio::spawn(async move { state.service.maintain_coverage(std::time::Duration::from_secs(10)).await })
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
    let mut tick = tokio::time::interval(state.settings.sync_lease);
    loop {
        tick.tick().await;
        match state.reconcile_interrupted_syncs(None).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(syncs = n, "recorded interrupted syncs in the audit trail (sync_interrupted)"),
            Err(e) => tracing::warn!(error = %e, "could not reconcile interrupted syncs; will retry"),
        }
    }
}

/// Pushes the signed checkpoint to the witness now and every `every`; a log inconsistent with
/// what was already witnessed is logged as an error on every attempt (it will not go away).
async fn witness_on_schedule(
    store: crate::store::Store,
    key: ed25519_dalek::VerifyingKey,
    target: crate::audit::witness::WitnessTarget,
    every: std::time::Duration,
) {
    use crate::audit::witness::{Pushed, push};
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match push(&store, &target, &key).await {
            Ok(Pushed::Appended(size)) => {
                tracing::info!(size, witness = %target.describe(), "audit checkpoint witnessed")
            }
            Ok(Pushed::Unchanged(_)) => {}
            Err(e) if e.is_alarm() => tracing::error!(error = %e, witness = %target.describe(), "AUDIT LOG ALARM"),
            Err(e) => tracing::warn!(error = %e, witness = %target.describe(), "audit witness push failed; will retry"),
        }
    }
}
