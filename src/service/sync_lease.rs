//! One full sync per organisation at a time, and a trail for every sync that wrote anything.
//! A sync holds its organisation's lease row (so the rule holds across processes and
//! PostgreSQL nodes), records `sync_started` before its first write, and `sync_run` when it
//! ends; a sync that never ended (its process was killed) is found by its expired lease and
//! recorded as `sync_interrupted`, with the counts its own transactions wrote into the lease.

use serde_json::json;

use super::sync::SyncError;
use super::{Service, ServiceResult};
use crate::audit::{EventType, NewEvent};
use crate::clock::Millis;
use crate::domain::user::Actor;
use crate::store::sync_leases::{LeaseRef, LeaseRow};

/// A sync that holds its organisation's lease; the lease is renewed in the background until
/// the run is ended or dropped (a dropped run's lease expires and is reconciled).
pub(crate) struct SyncRun {
    pub lease: LeaseRef,
    renewer: tokio::task::JoinHandle<()>,
}

impl Drop for SyncRun {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

impl Service {
    /// When a lease taken or renewed now expires.
    pub(crate) fn lease_expiry(&self) -> Millis {
        let ttl = i64::try_from(self.settings.sync_lease.as_millis()).unwrap_or(i64::MAX / 2);
        self.clock.now_ms().saturating_add(ttl)
    }

    /// Takes the organisation's lease, first accounting for one a crashed sync left, and
    /// records `sync_started` (durably) before anything is written. `Busy` when a sync runs.
    pub(crate) async fn begin_sync_run(&self, org_id: i64, actor: Option<&Actor>) -> Result<SyncRun, SyncError> {
        self.reconcile_interrupted_syncs(Some(org_id)).await?;
        let lease = LeaseRef { org_id, run_id: uuid::Uuid::new_v4().simple().to_string() };
        let taken = self.store.take_sync_lease(&lease, self.clock.now_ms(), self.lease_expiry()).await;
        if !taken.map_err(super::ServiceError::from)? {
            return Err(SyncError::Busy);
        }
        let mut started = NewEvent::new(EventType::SyncStarted)
            .concerning([org_id])
            .details(json!({"run_id": lease.run_id, "lease_secs": self.settings.sync_lease.as_secs()}));
        if let Some(actor) = actor {
            started = started.by(actor);
        }
        if let Err(e) = self.audit.record(started).await {
            let _ = self.store.release_sync_lease(&lease).await;
            return Err(SyncError::Service(e.into()));
        }
        Ok(SyncRun { renewer: self.spawn_renewer(lease.clone()), lease })
    }

    /// Renews the lease every quarter of its length, so a slow upload with nothing to commit
    /// keeps it; stops when the lease is no longer the run's (the fence then refuses its writes).
    fn spawn_renewer(&self, lease: LeaseRef) -> tokio::task::JoinHandle<()> {
        let (store, clock) = (self.store.clone(), self.clock.clone());
        let ttl = self.settings.sync_lease;
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(ttl / 4);
            every.tick().await;
            loop {
                every.tick().await;
                match store.renew_sync_lease(&lease, clock.now_ms().saturating_add(ttl_ms)).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(org_id = lease.org_id, "a sync lost its lease; it will write nothing more");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "could not renew a sync's lease; will retry"),
                }
            }
        })
    }

    /// Ends a run. A finished one (its `sync_run` event already durable) just releases its
    /// lease; one that failed is recorded as `sync_interrupted` with what it committed first.
    /// If even that fails, the lease is left to expire and be reconciled later.
    pub(crate) async fn end_sync_run(&self, run: SyncRun, finished: bool) {
        run.renewer.abort();
        let ended = async {
            if !finished && let Some(row) = self.store.sync_lease(&run.lease).await? {
                self.record_interrupted(&row, "the sync failed before it finished").await?;
            }
            self.store.release_sync_lease(&run.lease).await?;
            Ok::<_, super::ServiceError>(())
        };
        if let Err(e) = ended.await {
            tracing::warn!(error = %e, "could not end a sync run; its lease will expire and be reconciled");
        }
    }

    /// Records `sync_interrupted` for every sync (of one organisation, or all) whose lease
    /// expired without its end, then removes the lease. Run at start-up, periodically while
    /// serving, and before each sync. The event is durable before the lease goes, so a crash
    /// here can repeat an account but never lose one. Returns how many were recorded.
    pub async fn reconcile_interrupted_syncs(&self, org_id: Option<i64>) -> ServiceResult<usize> {
        let now = self.clock.now_ms();
        let mut recorded = 0;
        for row in self.store.expired_sync_leases(now, org_id).await? {
            self.record_interrupted(&row, "its lease expired without the sync finishing").await?;
            if self.store.drop_expired_lease(&row, now).await? {
                recorded += 1;
            }
        }
        Ok(recorded)
    }

    async fn record_interrupted(&self, row: &LeaseRow, reason: &str) -> ServiceResult<()> {
        let event = NewEvent::new(EventType::SyncInterrupted).concerning([row.lease.org_id]).details(json!({
            "run_id": row.lease.run_id, "reason": reason, "started_at": row.started_at,
            "added": row.added, "updated": row.updated, "removed": row.removed, "commits": row.commits,
        }));
        self.audit.record(event).await?;
        Ok(())
    }
}
