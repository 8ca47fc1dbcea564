//! Full-replace sync of an organisation's caseload, streamed: a blocking thread reads and
//! pseudonymises rows while this task writes them in batches. Memory stays flat in the file
//! size (about 40 bytes per existing holding for the "what is absent" index).
//!
//! Failure semantics (resumable, not all-or-nothing): batches that were written stay written;
//! removal of holdings absent from the file happens only after the whole file was read, so an
//! interrupted sync never removes anything. Sending the same file again completes it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};

use serde_json::json;
use tokio::sync::mpsc;

use super::holdings::Signalled;
use super::{Service, ServiceError};
use crate::audit::{EventType, NewEvent};
use crate::domain::enumeration::{NameGroups, Suspicion};
use crate::domain::holding::NewHolding;
use crate::domain::sync::{CsvLayout, Rejected, SyncFormat, ndjson_row};
use crate::domain::user::Actor;
use crate::store::StoreError;
use crate::store::holdings::{Change, SyncTransaction, fingerprint_prefix, ref_hash};

/// Rows the reader hands the writer at a time.
const BATCH: usize = 5000;

/// Rows per write transaction, at most. A commit writes every B-tree page the transaction
/// touched, and pseudonyms are random keys, so small transactions write the same pages again
/// and again: a million holdings into SQLite took 97 s in transactions of 5,000 rows and 59 s in
/// transactions of 100,000. But SQLite has one write lock per file, so a transaction stays this
/// long only while no other write in this process waits for it: after each batch, a sync that
/// sees one waiting commits and hands over (lookups never wait: the audit trail is its own file).
const TRANSACTION_ROWS: usize = 100_000;

/// How a sync runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncOptions {
    /// Validate and count; write nothing.
    pub dry_run: bool,
}

impl SyncOptions {
    pub fn dry_run(dry_run: bool) -> SyncOptions {
        SyncOptions { dry_run }
    }
}

/// Changed rows after which a sync first refreshes the planner's statistics.
const FIRST_ANALYZE: u64 = 10_000;

#[derive(Debug, Default, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SyncSummary {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub removed: u64,
    pub rejected: Vec<Rejected>,
    /// Rows read (data rows, not the header).
    pub lines: u64,
    pub matches_new: u64,
    pub matches_withdrawn: u64,
    pub dry_run: bool,
}

impl SyncSummary {
    fn count(&mut self, signalled: Signalled) {
        self.matches_new += signalled.new;
        self.matches_withdrawn += signalled.withdrawn;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Nothing could be read: no header, an unknown column, not text.
    #[error("{message}")]
    Unreadable { field: String, message: String },
    /// The upload stopped part-way; what was read is kept and nothing was removed.
    #[error("the file could not be read to the end (stopped after line {line}); nothing was removed: send it again")]
    Interrupted { line: u64 },
    /// Many rows share one name with different dates of birth or postcodes: guesses, not a
    /// caseload. Stopped at the row that showed it; nothing after it written, nothing removed.
    #[error(
        "this file has many rows sharing one name with different dates of birth or postcodes, which is how \
         guessing a child's details looks, so the sync was stopped and nothing was removed; your information \
         governance officer and the national operator have been told. If this is a real caseload, ask the \
         national operator"
    )]
    LooksLikeEnumeration,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// Passes committed batches to the signaller. A closed channel means the signaller failed: the
/// sync stops, and the signaller's error is the one reported.
async fn pass_on(
    committed: &mpsc::Sender<Vec<WrittenBatch>>,
    batches: &mut Vec<WrittenBatch>,
) -> Result<(), SyncError> {
    if !batches.is_empty() && committed.send(std::mem::take(batches)).await.is_err() {
        let stopped = StoreError::Inconsistent("match signalling stopped".into());
        return Err(SyncError::Service(ServiceError::Store(stopped)));
    }
    Ok(())
}

/// A batch that is written (committed) and not yet signalled.
struct WrittenBatch {
    holdings: Vec<NewHolding>,
    changes: Vec<(Change, i64)>,
}

enum Row {
    Holding(Box<NewHolding>),
    Rejected(Vec<Rejected>),
}

enum Parsed {
    Rows(Vec<Row>, u64),
    Unreadable(String, String),
    Interrupted(u64),
    /// The file looks like guesses (`domain::enumeration`): stop, write nothing more.
    LooksLikeEnumeration(Suspicion),
}

/// Why the writer stopped before the end of the file.
enum Stopped {
    Interrupted(u64),
    LooksLikeEnumeration(Suspicion),
}

impl Service {
    /// Syncs an organisation's whole caseload from `reader`. `progress` is told the number of
    /// rows read after each batch.
    pub async fn sync_holdings<R: Read + Send + 'static>(
        &self,
        org_id: i64,
        actor: Option<&Actor>,
        format: SyncFormat,
        reader: R,
        options: SyncOptions,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<SyncSummary, SyncError> {
        let dry_run = options.dry_run;
        let mut first_load = false;
        if !dry_run {
            self.check_churn(org_id, actor).await?;
            first_load = self.store.holdings_of_org(org_id).await.map_err(ServiceError::from)? == 0;
        }
        // Parsed batches waiting for the writer.
        let (tx, mut rx) = mpsc::channel::<Parsed>(4);
        let keys = self.keys.clone();
        let today = self.clock.today();
        let mut groups = self.settings.limits.enabled.then(|| NameGroups::new(self.settings.limits.enumeration));
        let parser = tokio::task::spawn_blocking(move || {
            let mut rows = Vec::with_capacity(BATCH);
            let mut seen: HashMap<u64, u64> = HashMap::new();
            let flush =
                |rows: &mut Vec<Row>, line: u64| tx.blocking_send(Parsed::Rows(std::mem::take(rows), line)).is_ok();
            // A file that guesses is stopped at the row that gives it away, before that row's
            // batch is written: `Some` then.
            let mut handle =
                |line: u64, input: Result<crate::domain::holding::HoldingInput, Rejected>, rows: &mut Vec<Row>| {
                    if let (Some(groups), Ok(input)) = (groups.as_mut(), &input)
                        && let Err(suspicion) = groups.observe_row(input.subject.iter().chain(&input.carers))
                    {
                        return Some(suspicion);
                    }
                    let row = match input {
                        Err(r) => Row::Rejected(vec![r]),
                        Ok(mut input) => match input.local_ref.take() {
                            None => Row::Rejected(vec![Rejected {
                                line,
                                field: "local_ref".into(),
                                message: "local_ref is required".into(),
                            }]),
                            Some(local_ref) => match seen.insert(ref_hash(local_ref.trim()), line) {
                                Some(first) => Row::Rejected(vec![Rejected {
                                    line,
                                    field: "local_ref".into(),
                                    message: format!("this local_ref already appeared on line {first}"),
                                }]),
                                None => match input.into_holding(&local_ref, &keys, today) {
                                    Ok(h) => Row::Holding(Box::new(h)),
                                    Err(errors) => Row::Rejected(Rejected::from_errors(line, errors)),
                                },
                            },
                        },
                    };
                    rows.push(row);
                    None
                };
            let stop = |suspicion: Suspicion| {
                let _ = tx.blocking_send(Parsed::LooksLikeEnumeration(suspicion));
            };
            match format {
                SyncFormat::Csv => {
                    let mut csv = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::None).from_reader(reader);
                    let layout = match csv.headers() {
                        Ok(h) => CsvLayout::from_header(h.iter()),
                        Err(_) => {
                            let _ = tx.blocking_send(Parsed::Unreadable(
                                "header".into(),
                                "the file has no readable CSV header row".into(),
                            ));
                            return;
                        }
                    };
                    let layout = match layout {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = tx.blocking_send(Parsed::Unreadable(e.field, e.message));
                            return;
                        }
                    };
                    let mut record = csv::StringRecord::new();
                    let mut line = 1;
                    loop {
                        match csv.read_record(&mut record) {
                            Ok(false) => break,
                            Ok(true) => {
                                line = record.position().map(|p| p.line()).unwrap_or(line + 1);
                                if let Some(suspicion) = handle(line, Ok(layout.row(record.iter())), &mut rows) {
                                    return stop(suspicion);
                                }
                            }
                            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                                let _ = flush(&mut rows, line);
                                let _ = tx.blocking_send(Parsed::Interrupted(line));
                                return;
                            }
                            Err(e) => {
                                line = e.position().map(|p| p.line()).unwrap_or(line + 1);
                                let reason = Rejected {
                                    line,
                                    field: "line".into(),
                                    message: "this row is not valid CSV text (UTF-8)".into(),
                                };
                                let _ = handle(line, Err(reason), &mut rows);
                            }
                        }
                        if rows.len() >= BATCH && !flush(&mut rows, line) {
                            return;
                        }
                    }
                    let _ = flush(&mut rows, line);
                }
                SyncFormat::Ndjson => {
                    let mut reader = BufReader::new(reader);
                    let mut buf = Vec::new();
                    let mut line = 0u64;
                    loop {
                        buf.clear();
                        match reader.read_until(b'\n', &mut buf) {
                            Ok(0) => break,
                            Ok(_) => line += 1,
                            Err(_) => {
                                let _ = flush(&mut rows, line);
                                let _ = tx.blocking_send(Parsed::Interrupted(line));
                                return;
                            }
                        }
                        let text = match std::str::from_utf8(&buf) {
                            Ok(t) => t.trim(),
                            Err(_) => {
                                let reason = Rejected {
                                    line,
                                    field: "line".into(),
                                    message: "this line is not UTF-8 text".into(),
                                };
                                let _ = handle(line, Err(reason), &mut rows);
                                continue;
                            }
                        };
                        if text.is_empty() {
                            continue;
                        }
                        let input = ndjson_row(text).map_err(|e| Rejected { line, field: e.field, message: e.message });
                        if let Some(suspicion) = handle(line, input, &mut rows) {
                            return stop(suspicion);
                        }
                        if rows.len() >= BATCH && !flush(&mut rows, line) {
                            return;
                        }
                    }
                    let _ = flush(&mut rows, line);
                }
            }
        });

        let mut index = self.store.sync_index(org_id).await.map_err(ServiceError::from)?;
        let mut summary = SyncSummary { dry_run, ..SyncSummary::default() };
        // Committed batches go to the signaller, which finds their matches while the writer
        // goes on with the next transaction. It holds at most one set waiting.
        let (committed, mut to_signal) = mpsc::channel::<Vec<WrittenBatch>>(1);
        let write = async {
            // Owned here, so the signaller's channel closes when writing ends, however it ends.
            let committed = committed;
            // Planner statistics are refreshed as a large sync grows the tables (10k, 40k, 160k … changes).
            let mut analyze_at = FIRST_ANALYZE;
            let mut open = None;
            let mut uncommitted = Vec::new();
            while let Some(parsed) = rx.recv().await {
                let (rows, line) = match parsed {
                    Parsed::Rows(rows, line) => (rows, line),
                    Parsed::Unreadable(field, message) => return Err(SyncError::Unreadable { field, message }),
                    Parsed::Interrupted(line) => {
                        self.commit_sync(&mut open).await?;
                        pass_on(&committed, &mut uncommitted).await?;
                        return Ok(Some(Stopped::Interrupted(line)));
                    }
                    Parsed::LooksLikeEnumeration(suspicion) => {
                        self.commit_sync(&mut open).await?;
                        pass_on(&committed, &mut uncommitted).await?;
                        return Ok(Some(Stopped::LooksLikeEnumeration(suspicion)));
                    }
                };
                let mut holdings = Vec::with_capacity(rows.len());
                for row in rows {
                    summary.lines += 1;
                    match row {
                        Row::Holding(h) => holdings.push(*h),
                        Row::Rejected(r) => summary.rejected.extend(r),
                    }
                }
                if dry_run {
                    for h in &holdings {
                        match index.remove(&ref_hash(&h.local_ref)) {
                            Some((_, fp)) if fp == fingerprint_prefix(&h.fingerprint) => summary.unchanged += 1,
                            Some(_) => summary.updated += 1,
                            None => summary.added += 1,
                        }
                    }
                } else {
                    let now = self.clock.now_ms();
                    let changes = self
                        .store
                        .sync_batch(&mut open, org_id, &holdings, &self.key_id, now, &mut index)
                        .await
                        .map_err(ServiceError::from)?;
                    for (change, _) in &changes {
                        match change {
                            Change::Added => summary.added += 1,
                            Change::Updated => summary.updated += 1,
                            Change::Unchanged => summary.unchanged += 1,
                        }
                    }
                    uncommitted.push(WrittenBatch { holdings, changes });
                    // Nothing open (the batches changed nothing), the transaction is full, or
                    // another write is waiting for it.
                    let commit = open.as_ref().is_none_or(|tx| tx.rows >= TRANSACTION_ROWS);
                    if commit || self.store.writers_waiting() {
                        self.commit_sync(&mut open).await?;
                        // Before signalling, whose candidate search needs the statistics.
                        if summary.added + summary.updated >= analyze_at {
                            self.store.analyze_holdings().await.map_err(ServiceError::from)?;
                            analyze_at *= 4;
                        }
                        pass_on(&committed, &mut uncommitted).await?;
                    }
                }
                progress(line);
            }
            self.commit_sync(&mut open).await?;
            pass_on(&committed, &mut uncommitted).await?;
            Ok(None)
        };
        let signal = async {
            let mut signalled = Signalled::default();
            while let Some(batches) = to_signal.recv().await {
                for batch in &batches {
                    signalled += self.signal_written(org_id, batch).await?;
                }
            }
            Ok::<_, ServiceError>(signalled)
        };
        let (written, signalled) = tokio::join!(write, signal);
        let _ = parser.await;
        // A signalling failure stops the writer (its channel closes), so it is the one to report.
        summary.count(signalled?);
        match written? {
            None => {}
            Some(Stopped::Interrupted(line)) => {
                self.audit_sync(org_id, actor, &summary, false).await?;
                self.count_churn(org_id, actor, summary.added, 0, first_load).await?;
                return Err(SyncError::Interrupted { line });
            }
            Some(Stopped::LooksLikeEnumeration(suspicion)) => {
                self.audit_sync(org_id, actor, &summary, false).await?;
                self.count_churn(org_id, actor, summary.added, 0, first_load).await?;
                self.flag_sync(
                    org_id,
                    actor,
                    "rows_sharing_a_name",
                    json!({
                        "rows_sharing_a_name": suspicion.rows_sharing_a_name, "rows_read": suspicion.rows,
                    }),
                )
                .await?;
                return Err(SyncError::LooksLikeEnumeration);
            }
        }
        let absent: Vec<i64> = index.values().map(|(id, _)| *id).collect();
        summary.removed = absent.len() as u64;
        if !dry_run && !absent.is_empty() {
            summary.count(self.remove_holdings(org_id, &absent).await?);
        }
        if !dry_run && summary.added + summary.updated + summary.removed >= FIRST_ANALYZE / 10 {
            self.store.analyze_holdings().await.map_err(ServiceError::from)?;
        }
        summary.rejected.sort_by_key(|r| r.line);
        if !dry_run {
            self.audit_sync(org_id, actor, &summary, true).await?;
            self.count_churn(org_id, actor, summary.added, summary.removed, first_load).await?;
        }
        Ok(summary)
    }

    /// Commits the sync's open transaction, if there is one.
    async fn commit_sync(&self, open: &mut Option<SyncTransaction>) -> Result<(), SyncError> {
        if let Some(tx) = open.take() {
            self.store.commit_sync(tx).await.map_err(ServiceError::from)?;
        }
        Ok(())
    }

    /// Signals the matches of a written batch, screening its probes through the prefilter, and
    /// then adds its keys to the filter.
    async fn signal_written(&self, org_id: i64, batch: &WrittenBatch) -> Result<Signalled, ServiceError> {
        let (holdings, changes) = (&batch.holdings, &batch.changes);
        let written: Vec<_> = holdings.iter().zip(changes).map(|(h, (change, id))| (*id, h, *change)).collect();
        let changed = written.iter().any(|(_, _, change)| *change != Change::Unchanged);
        if changed && self.prefilter.completeness().is_none() {
            // A command-line import has no serving node's filter: signalling screens through
            // one, built when the first batch with changes needs it.
            self.rebuild_prefilter().await?;
        }
        let screened = changed && self.refresh_for_signalling(org_id).await?;
        let signalled = self.signal_batch(org_id, &written, screened).await?;
        self.prefilter.add(holdings.iter().flat_map(|h| h.keys.iter().map(|k| k.pseudonym.as_bytes().as_slice())));
        Ok(signalled)
    }

    async fn audit_sync(
        &self,
        org_id: i64,
        actor: Option<&Actor>,
        s: &SyncSummary,
        complete: bool,
    ) -> Result<(), ServiceError> {
        let mut event = NewEvent::new(EventType::SyncRun).concerning([org_id]).details(json!({
            "added": s.added, "updated": s.updated, "unchanged": s.unchanged, "removed": s.removed,
            "rejected": s.rejected.len(), "lines": s.lines, "complete": complete,
            "matches_new": s.matches_new, "matches_withdrawn": s.matches_withdrawn,
        }));
        if let Some(actor) = actor {
            event = event.by(actor);
        }
        self.audit.record(event).await?;
        Ok(())
    }
}
