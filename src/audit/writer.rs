//! The single audit writer: group commit. Events queue on a channel; the writer appends all
//! that are waiting in one transaction, signs the new head, commits, and only then answers
//! each caller. Many lookups share one fsync, and none is answered before it is durable.
//! Between commits it indexes the pseudonyms searches asked, so lookups never wait for that.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::checkpoint::{AuditSigningKey, Checkpoint};
use super::event::{NewEvent, canonical_body};
use super::leaf::LeafKey;
use super::merkle::{Frontier, leaf_hash};
use crate::clock::{Clock, Millis};
use crate::store::audit::{AuditBatch, AuditHead, AuditRow};
use crate::store::{Store, StoreError};

/// Most events in one transaction; bounds a commit's size under a flood.
const MAX_BATCH: usize = 512;
/// Events whose pending pseudonyms one indexing transaction moves (about ten rows each): about
/// what one group commit used to write, so an event arriving meanwhile waits no longer than it
/// did then (chunks of 128 took p99 at a fixed 500/s from 6.4 to 8.8-9.6 ms; docs/performance.md).
const INDEX_CHUNK: usize = 16;
/// How long pseudonyms may wait to be indexed while the writer is busy with nothing else.
const INDEX_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Unindexed events past which the writer indexes between commits even while events wait.
const INDEX_BACKLOG: usize = 50_000;
/// How often a writer whose last append failed tries a write of its own, to learn that the
/// trail can be written again (e.g. the disk has room again) while no event comes.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
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
    /// The size and signed note of the latest head this writer committed.
    heads: watch::Receiver<Option<(u64, String)>>,
    /// False from a failed append until an append or a probe succeeds (`is_writable`).
    writable: Arc<AtomicBool>,
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
        let (published, heads) = watch::channel(None);
        let leaf_key = signer.leaf_key();
        let writable = Arc::new(AtomicBool::new(true));
        let health = Health { writable: writable.clone(), probe_due: None };
        let writer = Writer { store, signer: signer.clone(), leaf_key, clock, origin, kept: None, published, health };
        let handle = tokio::spawn(writer.run(rx));
        (AuditLog { queue, signer, heads, writable }, handle)
    }

    /// Whether the trail can be written: false from a failed append until an append, or the
    /// writer's own probe, succeeds. Readiness reads it, so a node that cannot record (and so
    /// answers every lookup 503) is taken out of service until it can again.
    pub fn is_writable(&self) -> bool {
        self.writable.load(Ordering::Relaxed)
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

    /// Each signed head as it is committed (size and note), for whoever must remember it.
    pub fn heads(&self) -> watch::Receiver<Option<(u64, String)>> {
        self.heads.clone()
    }

    /// The key the log's v2 leaves are salted under (for verification and openings).
    pub fn leaf_key(&self) -> LeafKey {
        self.signer.leaf_key()
    }
}

struct Writer {
    store: Store,
    signer: Arc<AuditSigningKey>,
    leaf_key: LeafKey,
    clock: Clock,
    origin: String,
    /// Size and time of the last checkpoint kept in history (loaded lazily).
    kept: Option<(u64, Millis)>,
    published: watch::Sender<Option<(u64, String)>>,
    health: Health,
}

/// Whether the last append succeeded, shared with `AuditLog::is_writable`, and when to probe.
struct Health {
    writable: Arc<AtomicBool>,
    /// When to try a probe write next; `None` while appends succeed.
    probe_due: Option<Instant>,
}

impl Health {
    fn succeeded(&mut self) {
        if !self.writable.swap(true, Ordering::Relaxed) {
            tracing::info!("the audit trail can be written again");
        }
        self.probe_due = None;
    }

    fn failed(&mut self, now: Instant) {
        self.writable.store(false, Ordering::Relaxed);
        self.probe_due = Some(now + PROBE_EVERY);
    }

    fn should_probe(&self, now: Instant, nothing_waits: bool) -> bool {
        nothing_waits && self.probe_due.is_some_and(|due| due <= now)
    }
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Writer {
    /// Writes whatever events wait, and between their commits indexes the pseudonyms that
    /// lookups asked (`index_pseudonyms`), so no lookup's commit writes the index's random pages.
    async fn run(mut self, mut rx: mpsc::Receiver<Pending>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        // Rows may be pending from before a restart: look once at start.
        let mut indexing = Indexing { due: Some(Instant::now()), unindexed: 0 };
        loop {
            if self.health.should_probe(Instant::now(), rx.is_empty()) {
                self.probe().await;
                continue;
            }
            if indexing.should_run(Instant::now(), rx.is_empty()) {
                self.index_pseudonyms(&mut indexing).await;
                continue;
            }
            let received = match earliest(indexing.due, self.health.probe_due) {
                Some(due) => match tokio::time::timeout_at(due, rx.recv_many(&mut batch, MAX_BATCH)).await {
                    Ok(received) => received,
                    Err(_) => continue, // indexing or a probe is due
                },
                None => rx.recv_many(&mut batch, MAX_BATCH).await,
            };
            if received == 0 {
                break; // every handle dropped and the queue drained
            }
            let result = self.write(&batch).await;
            if result.is_ok() {
                self.health.succeeded();
                indexing.wrote(batch.iter().filter(|p| p.event.asks_pseudonyms()).count(), Instant::now());
            } else {
                self.health.failed(Instant::now());
            }
            for (i, pending) in batch.drain(..).enumerate() {
                let answer = result.as_ref().map(|(first, at)| Appended { seq: first + i as u64, at: *at });
                let _ = pending.reply.send(answer.map_err(Clone::clone));
            }
        }
    }

    /// After a failed append: a write beside the trail (`Store::probe_audit_write`), to see
    /// whether the trail can be written again. The store discards a connection a failed commit left inside a transaction,
    /// so a success here means the next append starts clean.
    async fn probe(&mut self) {
        match self.store.probe_audit_write().await {
            Ok(()) => self.health.succeeded(),
            Err(e) => {
                tracing::debug!(error = %e, "the audit trail still cannot be written");
                self.health.failed(Instant::now());
            }
        }
    }

    /// Moves one chunk of pending pseudonyms into the index. A failure is logged and retried
    /// later: the rows stay pending, where every reader of the index also looks.
    async fn index_pseudonyms(&mut self, indexing: &mut Indexing) {
        match self.store.index_pending_pseudonyms(INDEX_CHUNK).await {
            Ok(moved) => indexing.moved(moved, moved == INDEX_CHUNK, Instant::now()),
            Err(e) => {
                tracing::warn!(error = %e, "pending lookup pseudonyms not indexed; retrying later");
                indexing.failed(Instant::now());
            }
        }
    }

    async fn write(&mut self, batch: &[Pending]) -> Result<(u64, Millis), AuditError> {
        if self.kept.is_none() {
            self.kept = Some(self.store.latest_kept_checkpoint().await.map_err(log_failure)?.unwrap_or((0, 0)));
        }
        let at = self.clock.now_ms();
        let kept = self.kept.unwrap_or((0, 0));
        let (signer, origin, leaf_key) = (&self.signer, &self.origin, &self.leaf_key);
        let mut first_seq = 0;
        let mut signed_head = None;
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
                // Nodes only extend a complete prefix: while an older trail's are being built
                // (`nodes::backfill`), that task stores these too.
                let store_nodes = head.nodes_size == head.size;
                let mut nodes = Vec::new();
                let mut rows = Vec::with_capacity(batch.len());
                for pending in batch {
                    let seq = frontier.size();
                    let body = canonical_body(&pending.event, seq, at, leaf_key);
                    let leaf = leaf_hash(&body);
                    frontier
                        .push_noting(leaf, |id, hash| {
                            if store_nodes {
                                nodes.push((id, hash));
                            }
                        })
                        .map_err(|e| StoreError::Inconsistent(e.to_string()))?;
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
                        free_text: e.free_text.clone(),
                    });
                }
                let checkpoint = Checkpoint::new(origin.clone(), frontier.size(), frontier.root(), at)
                    .map_err(|e| StoreError::Inconsistent(e.to_string()))?;
                let note = signer.sign(&checkpoint).map_err(|e| StoreError::Inconsistent(e.to_string()))?.to_note();
                let keep = frontier.size() >= kept.0 + KEEP_EVERY_ENTRIES || at >= kept.1 + KEEP_EVERY_MS;
                signed_head = Some((frontier.size(), note.clone()));
                Ok(AuditBatch {
                    rows,
                    keep_checkpoint: keep.then(|| (frontier.size(), note.clone())),
                    head: AuditHead {
                        size: frontier.size(),
                        frontier: frontier.to_bytes(),
                        checkpoint: Some(note),
                        nodes_size: if store_nodes { frontier.size() } else { head.nodes_size },
                    },
                    nodes,
                })
            })
            .await;
        match outcome {
            Ok(Ok(new_size)) => {
                self.published.send_replace(signed_head);
                if new_size >= kept.0 + KEEP_EVERY_ENTRIES || at >= kept.1 + KEEP_EVERY_MS {
                    self.kept = Some((new_size, at));
                }
                Ok((first_seq, at))
            }
            Ok(Err(e)) | Err(e) => Err(log_failure(e)),
        }
    }
}

/// When the writer indexes pending pseudonyms: every `INDEX_EVERY` while some are pending, one
/// chunk at a time and only while no event waits, so a lookup waits for at most one chunk; past
/// `INDEX_BACKLOG` unindexed events (a node saturated for many seconds) it indexes between
/// commits anyway, which bounds what readers scan beside the index.
struct Indexing {
    /// When to index next; `None` while nothing is known to be pending.
    due: Option<Instant>,
    /// Events with pseudonyms this writer committed since the pending table was last emptied.
    unindexed: usize,
}

impl Indexing {
    fn should_run(&self, now: Instant, nothing_waits: bool) -> bool {
        let due = self.due.is_some_and(|due| due <= now);
        (due && nothing_waits) || self.unindexed >= INDEX_BACKLOG
    }

    fn wrote(&mut self, events_with_pseudonyms: usize, now: Instant) {
        if events_with_pseudonyms > 0 {
            self.unindexed += events_with_pseudonyms;
            self.due.get_or_insert(now + INDEX_EVERY);
        }
    }

    fn moved(&mut self, events: usize, more_pending: bool, now: Instant) {
        self.unindexed = self.unindexed.saturating_sub(events);
        if more_pending {
            self.due = Some(now);
        } else {
            // Others' rows (another node, a CLI command) count too, so this is only an estimate.
            (self.due, self.unindexed) = (None, 0);
        }
    }

    fn failed(&mut self, now: Instant) {
        self.due = Some(now + INDEX_EVERY);
        self.unindexed = 0;
    }
}

fn log_failure(e: StoreError) -> AuditError {
    // The cause is logged (it names no identifier: events never hold one); callers fail closed.
    tracing::error!(error = %e, "audit append failed; the requests waiting on it fail closed");
    AuditError::WriteFailed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle() -> Indexing {
        Indexing { due: None, unindexed: 0 }
    }

    #[test]
    fn pseudonyms_wait_for_a_quiet_moment_at_most_a_second_after_they_are_written() {
        let t0 = Instant::now();
        let mut indexing = idle();
        assert!(!indexing.should_run(t0, true), "nothing pending, nothing to do");
        indexing.wrote(3, t0);
        indexing.wrote(5, t0 + INDEX_EVERY / 2); // a later commit does not push the deadline back
        assert!(!indexing.should_run(t0 + INDEX_EVERY / 2, true), "not yet due");
        assert!(indexing.should_run(t0 + INDEX_EVERY, true), "due, and no event waits");
        assert!(!indexing.should_run(t0 + INDEX_EVERY, false), "due, but an event waits: it goes first");
    }

    #[test]
    fn a_full_chunk_means_more_to_move_at_once_and_a_short_one_means_done() {
        let t0 = Instant::now();
        let mut indexing = idle();
        indexing.wrote(40, t0);
        let later = t0 + INDEX_EVERY;
        indexing.moved(INDEX_CHUNK, true, later);
        assert!(indexing.should_run(later, true));
        assert_eq!(indexing.unindexed, 40 - INDEX_CHUNK);
        indexing.moved(3, false, later);
        assert!(!indexing.should_run(later + INDEX_EVERY * 10, true), "nothing known to be pending");
        assert_eq!(indexing.unindexed, 0);
    }

    #[test]
    fn a_large_backlog_is_indexed_even_while_events_wait() {
        let t0 = Instant::now();
        let mut indexing = idle();
        indexing.wrote(INDEX_BACKLOG - 1, t0);
        assert!(!indexing.should_run(t0, false));
        indexing.wrote(1, t0);
        assert!(indexing.should_run(t0, false), "readers' scan of pending rows stays bounded");
    }

    #[test]
    fn after_a_failed_append_the_writer_probes_once_a_second_while_idle_until_one_succeeds() {
        let t0 = Instant::now();
        let mut health = Health { writable: Arc::new(AtomicBool::new(true)), probe_due: None };
        assert!(!health.should_probe(t0 + PROBE_EVERY * 10, true), "appends succeed: nothing to probe");
        health.failed(t0);
        assert!(!health.writable.load(Ordering::Relaxed), "not writable until something succeeds");
        assert!(!health.should_probe(t0, true), "no hot loop against a full disk");
        assert!(!health.should_probe(t0 + PROBE_EVERY, false), "waiting events go first; they are a probe too");
        assert!(health.should_probe(t0 + PROBE_EVERY, true));
        health.succeeded();
        assert!(health.writable.load(Ordering::Relaxed));
        assert!(!health.should_probe(t0 + PROBE_EVERY * 10, true));
        assert_eq!(earliest(Some(t0 + PROBE_EVERY), Some(t0)), Some(t0));
        assert_eq!(earliest(None, Some(t0)), Some(t0));
    }

    #[test]
    fn a_failed_move_is_retried_after_a_pause_not_at_once() {
        let t0 = Instant::now();
        let mut indexing = idle();
        indexing.wrote(INDEX_BACKLOG, t0);
        indexing.failed(t0);
        assert!(!indexing.should_run(t0, true), "no hot loop against a failing database");
        assert!(indexing.should_run(t0 + INDEX_EVERY, true));
    }
}
