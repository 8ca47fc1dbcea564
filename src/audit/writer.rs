//! The single audit writer: group commit. Events queue on a channel; the writer appends all
//! that are waiting in one transaction, signs the new head, commits, and only then answers
//! each caller. Many lookups share one fsync, and none is answered before it is durable.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::checkpoint::{AuditSigningKey, Checkpoint};
use super::event::{NewEvent, canonical_body};
use super::merkle::{Frontier, leaf_hash};
use crate::clock::{Clock, Millis};
use crate::store::audit::{AuditBatch, AuditHead, AuditRow};
use crate::store::{Store, StoreError};

/// Most events in one transaction; bounds a commit's size under a flood.
const MAX_BATCH: usize = 512;
/// Keep a checkpoint in the history table at least this often (entries or milliseconds).
const KEEP_EVERY_ENTRIES: u64 = 1024;
const KEEP_EVERY_MS: Millis = 60_000;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// The append failed; the caller must fail closed and disclose nothing.
    #[error("the audit trail could not be written")]
    WriteFailed,
    /// The writer is gone (shutting down).
    #[error("the audit writer has stopped")]
    Stopped,
}

/// Where an event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub at: Millis,
}

struct Pending {
    event: NewEvent,
    reply: oneshot::Sender<Result<Appended, AuditError>>,
}

/// The handle every part of the service records through. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Pending>,
    signer: Arc<AuditSigningKey>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog")
    }
}

impl AuditLog {
    /// Starts the writer task. It runs until every `AuditLog` clone is dropped, then drains.
    pub fn start(
        store: Store,
        signer: Arc<AuditSigningKey>,
        clock: Clock,
        origin: String,
    ) -> (AuditLog, JoinHandle<()>) {
        let (queue, rx) = mpsc::channel(4096);
        let writer = Writer { store, signer: signer.clone(), clock, origin, kept: None };
        let handle = tokio::spawn(writer.run(rx));
        (AuditLog { queue, signer }, handle)
    }

    /// Appends one event and waits until it is durable.
    pub async fn record(&self, event: NewEvent) -> Result<Appended, AuditError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Pending { event, reply }).await.map_err(|_| AuditError::Stopped)?;
        answer.await.map_err(|_| AuditError::Stopped)?
    }

    /// Appends several events and waits until all are durable. They are queued together, so
    /// they share group commits instead of taking one each.
    pub async fn record_all(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, AuditError> {
        let mut answers = Vec::with_capacity(events.len());
        for event in events {
            let (reply, answer) = oneshot::channel();
            self.queue.send(Pending { event, reply }).await.map_err(|_| AuditError::Stopped)?;
            answers.push(answer);
        }
        let mut appended = Vec::with_capacity(answers.len());
        for answer in answers {
            appended.push(answer.await.map_err(|_| AuditError::Stopped)??);
        }
        Ok(appended)
    }

    pub fn signer(&self) -> &AuditSigningKey {
        &self.signer
    }
}

struct Writer {
    store: Store,
    signer: Arc<AuditSigningKey>,
    clock: Clock,
    origin: String,
    /// Size and time of the last checkpoint kept in history (loaded lazily).
    kept: Option<(u64, Millis)>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Pending>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let result = self.write(&batch).await;
            for (i, pending) in batch.drain(..).enumerate() {
                let answer = result.as_ref().map(|(first, at)| Appended { seq: first + i as u64, at: *at });
                let _ = pending.reply.send(answer.map_err(Clone::clone));
            }
        }
    }

    async fn write(&mut self, batch: &[Pending]) -> Result<(u64, Millis), AuditError> {
        if self.kept.is_none() {
            self.kept = Some(self.store.latest_kept_checkpoint().await.map_err(log_failure)?.unwrap_or((0, 0)));
        }
        let at = self.clock.now_ms();
        let kept = self.kept.unwrap_or((0, 0));
        let (signer, origin) = (&self.signer, &self.origin);
        let mut first_seq = 0;
        let outcome = self
            .store
            .append_audit(|head: &AuditHead| {
                let mut frontier = if head.frontier.is_empty() && head.size == 0 {
                    Frontier::new()
                } else {
                    Frontier::from_bytes(&head.frontier).map_err(|e| StoreError::Inconsistent(e.to_string()))?
                };
                if frontier.size() != head.size {
                    return Err(StoreError::Inconsistent("audit head size and frontier disagree".into()));
                }
                first_seq = head.size;
                let mut rows = Vec::with_capacity(batch.len());
                for pending in batch {
                    let seq = frontier.size();
                    let body = canonical_body(&pending.event, seq, at);
                    let leaf = leaf_hash(&body);
                    frontier.push(leaf).map_err(|e| StoreError::Inconsistent(e.to_string()))?;
                    let e = &pending.event;
                    rows.push(AuditRow {
                        seq,
                        at,
                        kind: e.kind.as_str(),
                        actor_user_id: e.actor.as_ref().map(|a| a.user_id),
                        actor_org_id: e.actor.as_ref().map(|a| a.org_id),
                        purpose: e.purpose.clone(),
                        lookup_id: e.lookup_id.clone(),
                        body,
                        leaf_hash: leaf.to_vec(),
                        scope: e.scope(),
                        attachments: e.attachments.clone(),
                    });
                }
                let checkpoint = Checkpoint::new(origin.clone(), frontier.size(), frontier.root(), at)
                    .map_err(|e| StoreError::Inconsistent(e.to_string()))?;
                let note = signer.sign(&checkpoint).map_err(|e| StoreError::Inconsistent(e.to_string()))?.to_note();
                let keep = frontier.size() >= kept.0 + KEEP_EVERY_ENTRIES || at >= kept.1 + KEEP_EVERY_MS;
                Ok(AuditBatch {
                    rows,
                    keep_checkpoint: keep.then(|| (frontier.size(), note.clone())),
                    head: AuditHead { size: frontier.size(), frontier: frontier.to_bytes(), checkpoint: Some(note) },
                })
            })
            .await;
        match outcome {
            Ok(Ok(new_size)) => {
                if new_size >= kept.0 + KEEP_EVERY_ENTRIES || at >= kept.1 + KEEP_EVERY_MS {
                    self.kept = Some((new_size, at));
                }
                Ok((first_seq, at))
            }
            Ok(Err(e)) | Err(e) => Err(log_failure(e)),
        }
    }
}

fn log_failure(e: StoreError) -> AuditError {
    // The cause is logged (it names no identifier: events never hold one); callers fail closed.
    tracing::error!(error = %e, "audit append failed; the requests waiting on it fail closed");
    AuditError::WriteFailed
}
