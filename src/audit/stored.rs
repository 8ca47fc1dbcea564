//! Verifies the log as stored in the database: streams entries page by page into the pure
//! verifier, and also checks that each body names its own position (so a swap of two rows
//! with renumbered indexes is caught at the entry, not only at the next checkpoint).

use std::sync::{Arc, Mutex};

use ed25519_dalek::VerifyingKey;

use super::checkpoint::SignedCheckpoint;
use super::derived::{DerivedError, DerivedMismatch, verify_derived};
use super::leaf::LeafKey;
use super::merkle::{Frontier, Hash};
use super::verify::{StoredEntry, TreeHead, VerifiedLog, VerifyError, verify_log};
use crate::store::{Store, StoreError};

const PAGE: i64 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum StoredVerifyError {
    #[error("{0}")]
    Log(#[from] VerifyError),
    #[error("entry {index}: its body names position {claimed}")]
    WrongPosition { index: u64, claimed: String },
    #[error("the stored head is unreadable: {0}")]
    Head(String),
    #[error("a stored checkpoint is unreadable: {0}")]
    Checkpoint(String),
    #[error("cannot read the audit log: {0}")]
    Store(#[from] StoreError),
    /// A column or row the views read disagrees with its signed leaf.
    #[error("{0}")]
    Derived(#[from] DerivedMismatch),
}

impl From<DerivedError> for StoredVerifyError {
    fn from(e: DerivedError) -> Self {
        match e {
            DerivedError::Mismatch(m) => StoredVerifyError::Derived(m),
            DerivedError::Store(s) => StoredVerifyError::Store(s),
        }
    }
}

/// Checks the whole stored log against its head and every kept checkpoint.
pub async fn verify_stored(store: &Store, key: Option<VerifyingKey>) -> Result<VerifiedLog, StoredVerifyError> {
    verify_stored_against(store, key, &[]).await
}

/// As `verify_stored`, and the log must also agree with each of `witnessed` (checkpoints a
/// witness kept): a history rewritten or truncated since one was witnessed fails.
pub async fn verify_stored_against(
    store: &Store,
    key: Option<VerifyingKey>,
    witnessed: &[SignedCheckpoint],
) -> Result<VerifiedLog, StoredVerifyError> {
    verify_stored_sealed(store, key, None, witnessed).await
}

/// The whole check: the leaves (as `verify_stored_against`), then every column and row the
/// views read beside them, re-derived from the signed leaves (`derived`). With `leaf_key` (the
/// service's, from the audit key file) each commitment is recomputed; without it they are
/// checked by count and presence.
pub async fn verify_stored_sealed(
    store: &Store,
    key: Option<VerifyingKey>,
    leaf_key: Option<&LeafKey>,
    witnessed: &[SignedCheckpoint],
) -> Result<VerifiedLog, StoredVerifyError> {
    let verified = verify_leaves(store, key, witnessed).await?;
    verify_derived(store, verified.size, leaf_key).await?;
    Ok(verified)
}

async fn verify_leaves(
    store: &Store,
    key: Option<VerifyingKey>,
    witnessed: &[SignedCheckpoint],
) -> Result<VerifiedLog, StoredVerifyError> {
    let head = store.audit_head().await?;
    let frontier = if head.frontier.is_empty() && head.size == 0 {
        Frontier::new()
    } else {
        Frontier::from_bytes(&head.frontier).map_err(|e| StoredVerifyError::Head(e.to_string()))?
    };
    if frontier.size() != head.size {
        return Err(StoredVerifyError::Head("its size and frontier disagree".into()));
    }
    let mut checkpoints = Vec::new();
    for note in store.audit_checkpoints().await?.iter().chain(head.checkpoint.iter()) {
        checkpoints.push(SignedCheckpoint::from_note(note).map_err(|e| StoredVerifyError::Checkpoint(e.to_string()))?);
    }
    checkpoints.extend(witnessed.iter().cloned());
    let tree_head = TreeHead { size: head.size, root: frontier.root() };

    let (pages_tx, pages_rx) = std::sync::mpsc::sync_channel::<Vec<StoredEntry>>(4);
    let store_error: Arc<Mutex<Option<StoreError>>> = Arc::default();
    let producer_error = store_error.clone();
    let reader = store.clone();
    let producer = tokio::spawn(async move {
        let mut from = 0i64;
        loop {
            match reader.audit_entries(from, PAGE).await {
                Ok(page) if page.is_empty() => break,
                Ok(page) => {
                    from = page.last().map(|e| e.seq + 1).unwrap_or(from);
                    let entries = page
                        .into_iter()
                        .map(|e| StoredEntry {
                            index: u64::try_from(e.seq).unwrap_or(u64::MAX),
                            leaf_hash: leaf_array(&e.leaf_hash),
                            body: e.body,
                        })
                        .collect();
                    if pages_tx.send(entries).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    *producer_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    break;
                }
            }
        }
    });

    let outcome = tokio::task::spawn_blocking(move || {
        let mut wrong_position = None;
        let entries = pages_rx.into_iter().flatten().map_while(|entry| {
            let claimed = claimed_position(&entry.body);
            if claimed.as_deref() != Some(entry.index.to_string().as_str()) {
                wrong_position = Some((entry.index, claimed.unwrap_or_else(|| "nothing".into())));
                return None;
            }
            Some(entry)
        });
        let result = verify_log(entries, &tree_head, &checkpoints, key.as_ref());
        (result, wrong_position)
    })
    .await
    .map_err(|_| StoredVerifyError::Head("verification task failed".into()))?;
    let _ = producer.await;
    if let Some(e) = store_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e.into());
    }
    match outcome {
        (Err(e), Some((index, _))) if names_entry_before(&e, index) => Err(e.into()),
        (_, Some((index, claimed))) => Err(StoredVerifyError::WrongPosition { index, claimed }),
        (result, None) => Ok(result?),
    }
}

/// Whether the verifier's error is about an entry earlier than `index` (and so comes first).
pub(crate) fn names_entry_before(e: &VerifyError, index: u64) -> bool {
    match e {
        VerifyError::LeafHashMismatch { index: i } | VerifyError::BeyondHead { index: i, .. } => *i < index,
        VerifyError::MissingEntry { expected, .. } | VerifyError::OutOfOrder { expected, .. } => *expected < index,
        VerifyError::CheckpointRootMismatch { size } => *size <= index,
        VerifyError::CheckpointSignature { .. } => true,
        _ => false,
    }
}

/// The `seq` a canonical body claims, read without trusting the rest of it.
pub(crate) fn claimed_position(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: serde_json::Value,
    }
    serde_json::from_slice::<Seq>(body).ok().map(|s| s.seq.to_string())
}

/// A stored leaf hash of the wrong length can never match; all zeros makes the verifier say so.
fn leaf_array(bytes: &[u8]) -> Hash {
    bytes.try_into().unwrap_or([0u8; 32])
}
