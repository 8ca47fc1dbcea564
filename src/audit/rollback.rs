//! Rollback protection: every node remembers the latest signed checkpoint it saw, somewhere a
//! restored copy of the trail does not carry (the main database file on SQLite, whose trail is
//! a file of its own; a state file beside the audit key on PostgreSQL), and refuses, at start
//! and in `audit verify`, a trail that is shorter than that checkpoint or does not extend it.

use std::path::{Path, PathBuf};

use tokio::sync::watch;

use super::checkpoint::SignedCheckpoint;
use super::merkle::{Frontier, verify_consistency};
use super::nodes::{ProofSourceError, consistency_proof_at};
use crate::store::{Engine, Store, StoreError};

/// The shortest time between two records of the latest checkpoint.
const RECORD_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Where a node keeps the latest checkpoint it saw.
#[derive(Clone)]
pub enum HighWater {
    /// SQLite: a row in the main file, which a restored audit file does not replace.
    MainDatabase(Store),
    /// PostgreSQL (trail and everything else in one database): a file beside the audit key.
    File(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error(
        "ROLLBACK: the audit trail has {size} entries, but {who} saw a signed checkpoint at size {seen}; \
         an older copy of the trail was restored. Restore the trail this node last wrote (or both database \
         files from one backup), never an older audit file alone (docs/audit.md, Rollback protection)"
    )]
    Shorter { size: u64, seen: u64, who: &'static str },
    #[error(
        "ROLLBACK: the audit trail does not extend the signed checkpoint at size {seen} {who} saw \
         (its history differs); the trail was replaced or rewritten"
    )]
    Diverged { seen: u64, who: &'static str },
    #[error("the recorded latest checkpoint ({0}) is unreadable")]
    Unreadable(String),
    #[error("cannot read the audit trail: {0}")]
    Store(#[from] StoreError),
    #[error("cannot read or write the checkpoint file: {0}")]
    Io(#[from] std::io::Error),
}

impl HighWater {
    /// The place for this node's store: the main database on SQLite, else a file beside the key.
    pub fn for_node(store: &Store, audit_key_file: &Path) -> HighWater {
        match store.engine() {
            Engine::Sqlite => HighWater::MainDatabase(store.clone()),
            Engine::Postgres => HighWater::File(state_file(audit_key_file)),
        }
    }

    /// The latest checkpoint recorded, if any.
    pub async fn load(&self) -> Result<Option<SignedCheckpoint>, RollbackError> {
        let note = match self {
            HighWater::MainDatabase(store) => store.audit_high_water().await?,
            HighWater::File(path) => match tokio::fs::read_to_string(path).await {
                Ok(text) => Some(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e.into()),
            },
        };
        note.map(|n| SignedCheckpoint::from_note(&n).map_err(|e| RollbackError::Unreadable(e.to_string()))).transpose()
    }

    /// Records `note` (the checkpoint at `size`) unless a larger one is recorded already.
    pub async fn record(&self, size: u64, note: &str) -> Result<(), RollbackError> {
        match self {
            HighWater::MainDatabase(store) => Ok(store.record_audit_high_water(size, note).await?),
            HighWater::File(path) => {
                if self.load().await?.is_some_and(|seen| seen.checkpoint().tree_size >= size) {
                    return Ok(());
                }
                write_durably(path, note).await
            }
        }
    }
}

/// `locator-audit.key` gives `locator-audit.key.checkpoint`.
fn state_file(audit_key_file: &Path) -> PathBuf {
    let mut name = audit_key_file.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".checkpoint");
    audit_key_file.with_file_name(name)
}

/// Replaces the file atomically (write beside it, sync, rename), so a crash leaves one whole note.
async fn write_durably(path: &Path, note: &str) -> Result<(), RollbackError> {
    let path = path.to_path_buf();
    let note = note.to_string();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        let temporary = path.with_extension("checkpoint-new");
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(note.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))??;
    Ok(())
}

/// Refuses a trail older than the checkpoint `seen`, or one whose history differs from it.
pub async fn check_extends(store: &Store, seen: &SignedCheckpoint) -> Result<(), RollbackError> {
    extends(store, seen, "this node").await
}

async fn extends(store: &Store, seen: &SignedCheckpoint, who: &'static str) -> Result<(), RollbackError> {
    let seen_size = seen.checkpoint().tree_size;
    let head = store.audit_head().await?;
    if head.size < seen_size {
        return Err(RollbackError::Shorter { size: head.size, seen: seen_size, who });
    }
    let root = if head.frontier.is_empty() && head.size == 0 {
        Frontier::new().root()
    } else {
        Frontier::from_bytes(&head.frontier).map_err(|e| RollbackError::Unreadable(e.to_string()))?.root()
    };
    let proof = match consistency_proof_at(store, seen_size, head.size).await {
        Ok(proof) => proof,
        Err(ProofSourceError::Store(e)) => return Err(e.into()),
        Err(ProofSourceError::Proof(_)) => return Err(RollbackError::Diverged { seen: seen_size, who }),
    };
    verify_consistency(seen_size, head.size, &seen.checkpoint().root_hash, &root, &proof)
        .map_err(|_| RollbackError::Diverged { seen: seen_size, who })
}

/// At start: the trail must extend the latest checkpoint this node recorded, and the latest
/// its file witness holds (`witnessed`, already checked to be signed by the log's key).
pub async fn check_at_start(
    store: &Store,
    high_water: &HighWater,
    witnessed: Option<&SignedCheckpoint>,
) -> Result<(), RollbackError> {
    if let Some(seen) = high_water.load().await? {
        extends(store, &seen, "this node").await?;
    }
    match witnessed {
        Some(seen) => extends(store, seen, "the audit witness").await,
        None => Ok(()),
    }
}

/// Records each new signed head the writer publishes, off the writer's path: the writer never
/// waits for the main database (a sync may hold its lock), and heads that arrive meanwhile are
/// coalesced into the latest. The record lags the trail by at most the write in progress.
/// The task ends once the writer has stopped and its last head is recorded.
pub fn spawn_recorder(
    high_water: HighWater,
    mut heads: watch::Receiver<Option<(u64, String)>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while heads.changed().await.is_ok() {
            let latest = heads.borrow_and_update().clone();
            if let Some((size, note)) = latest
                && let Err(e) = high_water.record(size, &note).await
            {
                tracing::warn!(error = %e, "the latest audit checkpoint was not recorded; retrying with the next");
            }
            // At most a few records a second: each takes the main file's write lock on SQLite.
            if heads.has_changed().is_ok() {
                tokio::time::sleep(RECORD_EVERY).await;
            }
        }
    })
}
