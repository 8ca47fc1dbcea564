//! The sync lease: one full sync per organisation at a time, across processes and PostgreSQL
//! nodes, and the counts of what each sync committed, written inside its own transactions so
//! they are exactly what the database holds (migration 0015).

use sqlx::{Any, FromRow, Transaction};

use super::{Store, StoreError, StoreResult};
use crate::clock::Millis;

/// A running sync's hold on its organisation. Only the run that took it can extend, fence or
/// release it: another run's id never matches.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LeaseRef {
    pub org_id: i64,
    pub run_id: String,
}

/// A lease as stored: whose run, until when, and what that run has committed so far.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LeaseRow {
    #[sqlx(flatten)]
    pub lease: LeaseRef,
    pub started_at: Millis,
    pub expires_at: Millis,
    pub added: i64,
    pub updated: i64,
    pub removed: i64,
    pub commits: i64,
}

/// What one of a sync's transactions adds to its run's counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub added: i64,
    pub updated: i64,
    pub removed: i64,
}

impl Store {
    /// Takes the organisation's lease for `lease.run_id` unless any run holds it, live or
    /// expired (an expired one is accounted for and removed first: `drop_expired_lease`).
    /// One conditional insert: of two nodes racing, exactly one row goes in.
    pub async fn take_sync_lease(&self, lease: &LeaseRef, now: Millis, expires_at: Millis) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO sync_leases (org_id, run_id, started_at, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org_id) DO NOTHING",
        )
        .bind(lease.org_id)
        .bind(&lease.run_id)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends a run's lease; false when it is no longer that run's.
    pub async fn renew_sync_lease(&self, lease: &LeaseRef, expires_at: Millis) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE sync_leases SET expires_at = $1 WHERE org_id = $2 AND run_id = $3")
            .bind(expires_at)
            .bind(lease.org_id)
            .bind(&lease.run_id)
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The lease a run holds, with its counts (none once released or taken over).
    pub async fn sync_lease(&self, lease: &LeaseRef) -> StoreResult<Option<LeaseRow>> {
        let row = sqlx::query("SELECT * FROM sync_leases WHERE org_id = $1 AND run_id = $2")
            .bind(lease.org_id)
            .bind(&lease.run_id)
            .fetch_optional(self.reader())
            .await?;
        Ok(row.as_ref().map(LeaseRow::from_row).transpose()?)
    }

    /// Leases past their expiry, of one organisation or all: syncs that crashed or stalled.
    pub async fn expired_sync_leases(&self, now: Millis, org_id: Option<i64>) -> StoreResult<Vec<LeaseRow>> {
        let rows = match org_id {
            Some(org_id) => {
                sqlx::query("SELECT * FROM sync_leases WHERE expires_at < $1 AND org_id = $2")
                    .bind(now)
                    .bind(org_id)
                    .fetch_all(self.reader())
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM sync_leases WHERE expires_at < $1 ORDER BY started_at")
                    .bind(now)
                    .fetch_all(self.reader())
                    .await?
            }
        };
        Ok(rows.iter().map(LeaseRow::from_row).collect::<Result<_, _>>()?)
    }

    /// Removes an expired lease as it was read (same run, still expired, nothing committed
    /// since): false if it changed meanwhile, e.g. a stalled sync woke and renewed it.
    pub async fn drop_expired_lease(&self, seen: &LeaseRow, now: Millis) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM sync_leases WHERE org_id = $1 AND run_id = $2 AND expires_at < $3 AND commits = $4",
        )
        .bind(seen.lease.org_id)
        .bind(&seen.lease.run_id)
        .bind(now)
        .bind(seen.commits)
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Releases a run's lease (nothing happens if it is no longer the run's).
    pub async fn release_sync_lease(&self, lease: &LeaseRef) -> StoreResult<()> {
        sqlx::query("DELETE FROM sync_leases WHERE org_id = $1 AND run_id = $2")
            .bind(lease.org_id)
            .bind(&lease.run_id)
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }
}

/// The fence, as the last statement of each of a sync's transactions: extends the run's lease
/// and adds what the transaction wrote to its counts. If the lease is no longer the run's (it
/// expired and another sync or a reconciliation took it), this fails and the caller's
/// transaction rolls back, so a sync that lost its lease can never write again. Run last, the
/// lease row is locked (PostgreSQL) only for the commit itself, so a second sync is not kept
/// waiting for a long transaction before it hears 409.
pub(crate) async fn fence(
    tx: &mut Transaction<'static, Any>,
    lease: &LeaseRef,
    expires_at: Millis,
    committed: Committed,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE sync_leases SET expires_at = $1, added = added + $2, updated = updated + $3, \
         removed = removed + $4, commits = commits + 1 WHERE org_id = $5 AND run_id = $6",
    )
    .bind(expires_at)
    .bind(committed.added)
    .bind(committed.updated)
    .bind(committed.removed)
    .bind(lease.org_id)
    .bind(&lease.run_id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict(
            "this sync stalled past its lease and another sync of the organisation took over; nothing more was written",
        ));
    }
    Ok(())
}
