//! The commands that work on the database without starting the service: applying migrations,
//! verifying the stored audit trail (a service would refuse to start on a rolled-back one, which
//! is what this must report), pushing a checkpoint to a witness and checking a backup copy. They
//! live here, beside the service, so the command line never holds the store itself.

use std::path::Path;

use ed25519_dalek::VerifyingKey;

use crate::audit::checkpoint::{AuditSigningKey, SignedCheckpoint};
use crate::audit::rollback::{HighWater, RollbackError, check_extends};
use crate::audit::stored::verify_stored_sealed;
use crate::audit::verify::VerifiedLog;
use crate::audit::witness::{Pushed, WitnessError, WitnessTarget, push};
use crate::config::Settings;
use crate::store::sqlite::CheckedCopy;
use crate::store::{Store, StoreError};

/// Opens the database, which applies every migration, and closes it.
pub async fn migrate(database_url: &str) -> Result<(), StoreError> {
    Store::open(database_url).await?.close().await;
    Ok(())
}

/// Verifies the stored trail: it extends the latest checkpoint this node recorded, its leaves
/// chain to `key`'s signed checkpoints, and the views beside them are derived from the leaves
/// (each commitment recomputed when the audit key file is present). The error is for a person.
pub async fn verify_stored_trail(
    settings: &Settings,
    key: Option<VerifyingKey>,
    witnessed: &[SignedCheckpoint],
) -> anyhow::Result<Result<VerifiedLog, String>> {
    // The service's key re-derives every commitment in v2 leaves; without the key file they are
    // checked by count and presence only.
    let leaf_key = if settings.audit_key_file.exists() {
        Some(AuditSigningKey::load_or_create(&settings.audit_key_file)?.0.leaf_key())
    } else {
        None
    };
    let store = Store::connect(&settings.database_url).await?;
    let high_water = HighWater::for_node(&store, &settings.audit_key_file);
    let result = match not_rolled_back(&store, &high_water).await {
        Err(e) => Err(e.to_string()),
        Ok(()) => verify_stored_sealed(&store, key, leaf_key.as_ref(), witnessed).await.map_err(|e| e.to_string()),
    };
    store.close().await;
    Ok(result)
}

/// The trail must extend the latest checkpoint this node recorded (rollback protection). A
/// database from before the record existed has none to check: said, not failed.
async fn not_rolled_back(store: &Store, high_water: &HighWater) -> Result<(), RollbackError> {
    match high_water.load().await {
        Ok(Some(seen)) => check_extends(store, &seen).await,
        Ok(None) => Ok(()),
        Err(RollbackError::Store(e)) => {
            eprintln!("note: no recorded latest checkpoint to check the trail against ({e})");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Pushes the database's latest signed checkpoint to `target` once.
pub async fn push_to_witness(
    database_url: &str,
    target: &WitnessTarget,
    key: &VerifyingKey,
) -> anyhow::Result<Result<Pushed, WitnessError>> {
    let store = Store::connect(database_url).await?;
    let result = push(&store, target, key).await;
    store.close().await;
    Ok(result)
}

/// Opens a backup copy read-only and checks it (integrity, a readable audit trail).
pub async fn check_backup(path: &Path) -> Result<CheckedCopy, StoreError> {
    crate::store::sqlite::check_copy(path).await
}
