//! Pushing signed checkpoints to a witness outside the operator's reach: appended to a file
//! (e.g. on another host's mount), or POSTed to a webhook. Before appending, the new checkpoint
//! is proved consistent with the last one witnessed, so a rewritten history is caught at once.

use std::io::Write;
use std::path::PathBuf;

use ed25519_dalek::VerifyingKey;

use super::checkpoint::SignedCheckpoint;
use super::merkle::{Hash, verify_consistency};
use super::nodes::{ProofSourceError, consistency_proof_at};
use crate::store::{Store, StoreError};

/// Where checkpoints go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessTarget {
    File(PathBuf),
    Webhook(String),
}

impl WitnessTarget {
    /// `https://…` or `http://…` is a webhook; anything else is a file path.
    pub fn parse(text: &str) -> Result<WitnessTarget, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the witness target is empty".into());
        }
        if text.starts_with("https://") || text.starts_with("http://") {
            return Ok(WitnessTarget::Webhook(text.to_string()));
        }
        Ok(WitnessTarget::File(PathBuf::from(text)))
    }

    pub fn describe(&self) -> String {
        match self {
            WitnessTarget::File(p) => p.display().to_string(),
            // The URL path might carry a shared secret: show only scheme and host.
            WitnessTarget::Webhook(url) => {
                let host = url.trim_start_matches("http://").split('/').next().unwrap_or("");
                format!("http://{host}/…")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("the audit log is empty: nothing to witness yet")]
    Empty,
    #[error("the witness file holds an unreadable checkpoint: {0}")]
    Unreadable(String),
    #[error("the head checkpoint's signature does not verify: {0}")]
    BadSignature(String),
    /// The log is smaller than a checkpoint already witnessed: it was truncated.
    #[error("HISTORY REWRITTEN: the log has {now} entries but {witnessed} were already witnessed")]
    Shrunk { witnessed: u64, now: u64 },
    /// The stored entries are not an extension of what was witnessed.
    #[error("HISTORY REWRITTEN: the log is not consistent with the checkpoint witnessed at size {witnessed}")]
    Inconsistent { witnessed: u64 },
    #[error("the webhook answered {0}")]
    Webhook(String),
    #[error("cannot read the audit log: {0}")]
    Store(#[from] StoreError),
    #[error("cannot write the witness file: {0}")]
    Io(#[from] std::io::Error),
}

impl WitnessError {
    /// True when the log itself is at fault (not the witness): an alarm, not a retry.
    pub fn is_alarm(&self) -> bool {
        matches!(self, WitnessError::Shrunk { .. } | WitnessError::Inconsistent { .. } | WitnessError::BadSignature(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// A new checkpoint of this size was witnessed.
    Appended(u64),
    /// The witness already holds the current head.
    Unchanged(u64),
}

/// Reads a witness file: signed notes, each followed by a blank line.
pub fn parse_witness_file(text: &str) -> Result<Vec<SignedCheckpoint>, WitnessError> {
    let chunks: Vec<&str> = text.split("\n\n").map(|c| c.trim_matches('\n')).filter(|c| !c.is_empty()).collect();
    chunks
        .chunks(2)
        .map(|pair| match pair {
            [body, signatures] => SignedCheckpoint::from_note(&format!("{body}\n\n{signatures}\n"))
                .map_err(|e| WitnessError::Unreadable(e.to_string())),
            _ => Err(WitnessError::Unreadable("a checkpoint without its signature".into())),
        })
        .collect()
}

/// The largest checkpoint a file witness holds that `key` signed (`None` for a webhook witness,
/// which keeps its own copy, or a file not written yet): what start-up checks the trail against.
pub fn latest_witnessed(target: &WitnessTarget, key: &VerifyingKey) -> Result<Option<SignedCheckpoint>, WitnessError> {
    let WitnessTarget::File(path) = target else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let signed = parse_witness_file(&text)?.into_iter().filter(|c| c.verify(key).is_ok());
    Ok(signed.max_by_key(|c| c.checkpoint().tree_size))
}

/// Pushes the current head's signed checkpoint to `target`.
pub async fn push(store: &Store, target: &WitnessTarget, key: &VerifyingKey) -> Result<Pushed, WitnessError> {
    let head = store.audit_head().await?;
    let note = head.checkpoint.ok_or(WitnessError::Empty)?;
    let signed = SignedCheckpoint::from_note(&note).map_err(|e| WitnessError::Unreadable(e.to_string()))?;
    signed.verify(key).map_err(|e| WitnessError::BadSignature(e.to_string()))?;
    let size = signed.checkpoint().tree_size;
    match target {
        WitnessTarget::File(path) => {
            let existing = match std::fs::read_to_string(path) {
                Ok(text) => parse_witness_file(&text)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            if let Some(last) = existing.iter().max_by_key(|c| c.checkpoint().tree_size) {
                let old = last.checkpoint();
                if old.tree_size > size {
                    return Err(WitnessError::Shrunk { witnessed: old.tree_size, now: size });
                }
                check_consistent(store, old.tree_size, &old.root_hash, size, &signed.checkpoint().root_hash).await?;
                if old.tree_size == size {
                    return Ok(Pushed::Unchanged(size));
                }
            }
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            file.write_all(note.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            Ok(Pushed::Appended(size))
        }
        WitnessTarget::Webhook(url) => {
            let response = reqwest::Client::new()
                .post(url)
                .header("content-type", "text/plain; charset=utf-8")
                .header("x-audit-tree-size", size.to_string())
                .timeout(std::time::Duration::from_secs(10))
                .body(note)
                .send()
                .await
                .map_err(|e| WitnessError::Webhook(e.without_url().to_string()))?;
            if !response.status().is_success() {
                return Err(WitnessError::Webhook(response.status().to_string()));
            }
            Ok(Pushed::Appended(size))
        }
    }
}

/// Proves (old_size, old_root) is a prefix of (new_size, new_root) from the stored nodes, as
/// an external witness would with the same RFC 9162 consistency proof.
async fn check_consistent(
    store: &Store,
    old_size: u64,
    old_root: &Hash,
    new_size: u64,
    new_root: &Hash,
) -> Result<(), WitnessError> {
    let proof = match consistency_proof_at(store, old_size, new_size).await {
        Ok(proof) => proof,
        Err(ProofSourceError::Store(e)) => return Err(e.into()),
        Err(ProofSourceError::Proof(_)) => return Err(WitnessError::Inconsistent { witnessed: old_size }),
    };
    verify_consistency(old_size, new_size, old_root, new_root, &proof)
        .map_err(|_| WitnessError::Inconsistent { witnessed: old_size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_files_or_plain_http_webhooks() {
        assert_eq!(WitnessTarget::parse("/srv/witness.log").unwrap(), WitnessTarget::File("/srv/witness.log".into()));
        assert!(matches!(WitnessTarget::parse("http://relay:9000/cp").unwrap(), WitnessTarget::Webhook(_)));
        assert!(matches!(WitnessTarget::parse("https://witness.example/cp"), Ok(WitnessTarget::Webhook(_))));
        assert_eq!(WitnessTarget::parse("http://relay:9000/secret-path").unwrap().describe(), "http://relay:9000/…");
    }

    #[test]
    fn a_witness_file_reads_back_every_note_written() {
        use super::super::checkpoint::{AuditSigningKey, Checkpoint};
        let key = AuditSigningKey::generate();
        let mut text = String::new();
        for size in [1u64, 5, 9] {
            let note =
                key.sign(&Checkpoint::new("test/audit", size, [size as u8; 32], 1000).unwrap()).unwrap().to_note();
            text.push_str(&note);
            text.push('\n');
        }
        let notes = parse_witness_file(&text).unwrap();
        assert_eq!(notes.iter().map(|n| n.checkpoint().tree_size).collect::<Vec<_>>(), vec![1, 5, 9]);
        assert!(notes.iter().all(|n| n.verify(&key.verifying_key()).is_ok()));
    }
}
