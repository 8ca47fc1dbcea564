//! Full-replace sync of an organisation's caseload, streamed: a blocking thread reads and
//! pseudonymises rows while this task writes them in batches. Memory stays flat in the file
//! size (about 40 bytes per existing holding for the "what is absent" index).
//!
//! Failure semantics (resumable, not all-or-nothing): batches that were written stay written;
//! removal of holdings absent from the file happens only after the whole file was read, so an
//! interrupted sync never removes anything. Sending the same file again completes it.
//!
//! One sync per organisation runs at a time (`sync_lease`), every one that writes is in the
//! audit trail even if its process dies, and a record longer than `MAX_RECORD_BYTES` is
//! skipped unread (`sync_records`), so memory stays flat whatever the file's shape.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use super::holdings::Signalled;
use super::sync_records::{self, CsvRecords};
use super::{Service, ServiceError};
use crate::audit::{EventType, NewEvent};
use crate::clock::Millis;
use crate::domain::enumeration::{NameGroups, Suspicion};
use crate::domain::holding::Change;
use crate::domain::holding::{HoldingInput, NewHolding};
use crate::domain::keyring::Keyring;
use crate::domain::sync::{CsvLayout, Rejected, SyncFormat, ndjson_row};
use crate::domain::user::Actor;
use crate::store::StoreError;
use crate::store::holdings::{SyncIndex, SyncTransaction, Written, change_of, ref_hash};
use crate::store::sync_leases::LeaseRef;

/// Rows the reader hands the writer at a time.
const BATCH: usize = 5000;

/// Rows per write transaction, at most. A commit writes every B-tree page the transaction
/// touched, and pseudonyms are random keys, so small transactions write the same pages again
/// and again: a million holdings into SQLite took 97 s in transactions of 5,000 rows and 59 s in
/// transactions of 100,000. But SQLite has one write lock per file, so a transaction stays this
/// long only while no other write in this process waits for it: after each batch, a sync that
/// sees one waiting commits and hands over (lookups never wait: the audit trail is its own file).
const TRANSACTION_ROWS: usize = 100_000;

/// How old a sync's transaction may grow before it commits, however few rows it holds. Its rows
/// carry the time they were written; a signalling refresh re-reads `LATE_COMMIT_MARGIN_MS` before
/// the time its filter was complete, so a commit must land within that of its oldest row, the
/// commit's own key inserts included (a full transaction's 2.2 M keys: about 7 s on SQLite).
const TRANSACTION_AGE_MS: Millis = 10_000;
const _: () = assert!(TRANSACTION_AGE_MS * 3 <= super::prefilter::LATE_COMMIT_MARGIN_MS);

/// Whether the sync's open transaction should commit now: nothing is open (the batches changed
/// nothing), it is full, or it is old enough that a later commit could land outside the margin
/// a signalling refresh re-reads.
fn transaction_due(open: Option<&SyncTransaction>, now: Millis) -> bool {
    open.is_none_or(|tx| full_or_old(tx.rows, now.saturating_sub(tx.opened_at)))
}

fn full_or_old(rows: usize, age: Millis) -> bool {
    rows >= TRANSACTION_ROWS || age >= TRANSACTION_AGE_MS
}

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

/// Rejected rows listed in a summary; `rejected_count` says how many there were in all. A file
/// of a million bad lines must not make a million-entry answer (or hold one in memory).
pub const MAX_REJECTED_LISTED: usize = 1000;

/// How long the writer waits for the next rows with a transaction open before it commits: a
/// stalled upload must not hold the write lock, nor leave read rows uncommitted.
const IDLE_COMMIT: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SyncSummary {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub removed: u64,
    /// The first `MAX_REJECTED_LISTED` problems, in line order.
    pub rejected: Vec<Rejected>,
    /// Every problem found, listed or not.
    pub rejected_count: u64,
    /// Rows with at least one problem (a row may have several).
    pub rejected_rows: u64,
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

    /// Counts one row by what writing it changed (or would change, in a dry run).
    fn count_change(&mut self, change: Change) {
        match change {
            Change::Added => self.added += 1,
            Change::Updated => self.updated += 1,
            Change::Unchanged => self.unchanged += 1,
        }
    }

    /// Counts every problem, lists the first few.
    fn reject(&mut self, rejected: Vec<Rejected>) {
        self.rejected_count += rejected.len() as u64;
        self.rejected_rows += u64::from(!rejected.is_empty());
        let room = MAX_REJECTED_LISTED.saturating_sub(self.rejected.len());
        self.rejected.extend(rejected.into_iter().take(room));
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
    /// Another sync of the organisation is running (on this node, another, or `locator import`).
    #[error(
        "a sync of this organisation's caseload is already running, or one that stopped without finishing \
         has not yet timed out (one runs at a time, from the API or `locator import`); nothing was read or \
         changed: send the file again when it has finished"
    )]
    Busy,
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
        return Err(SyncError::Service(ServiceError::from(stopped)));
    }
    Ok(())
}

/// What writing `holding` would change, as the index says; taken out of the index (a dry run's
/// count: it writes nothing).
fn change_against(index: &mut SyncIndex, holding: &NewHolding) -> Change {
    change_of(holding, index.remove(&ref_hash(&holding.local_ref)))
}

/// Whether writing these rows would change anything the index holds.
fn changes_any(holdings: &[NewHolding], index: &SyncIndex) -> bool {
    holdings.iter().any(|h| change_of(h, index.get(&ref_hash(&h.local_ref)).copied()) != Change::Unchanged)
}

/// A record of the file that a single PUT added after the sync read the caseload: its insert
/// breaks the unique local_ref, and the sync stops (409) with this explanation.
fn put_meanwhile(e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict("already exists") => StoreError::Conflict(
            "a record in the file was added by hand while this sync ran; nothing was removed: send the file again",
        ),
        other => other,
    }
}

/// A batch that is written (committed) and not yet signalled.
struct WrittenBatch {
    holdings: Vec<NewHolding>,
    written: Vec<Written>,
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

/// The reading side of a sync, on its blocking thread: turns records into rows and hands
/// them to the writer a batch at a time.
struct RowReader {
    keys: Keyring,
    today: time::Date,
    /// Each local_ref seen so far (by hash) and its line: a second one is rejected.
    seen: HashMap<u64, u64>,
    rows: Vec<Row>,
    to_writer: mpsc::Sender<Parsed>,
    /// Names seen in this file, to stop one that guesses (`None` with rate limits off).
    groups: Option<NameGroups>,
    /// Set when the file gave itself away as guesses: nothing more is read or handed over.
    guessing: bool,
}

impl RowReader {
    fn reject(&mut self, line: u64, field: &str, message: impl Into<String>) {
        self.rows.push(Row::Rejected(vec![Rejected {
            line,
            field: field.into(),
            message: message.into(),
            local_ref: None,
        }]));
    }

    fn push(&mut self, line: u64, mut input: HoldingInput) {
        if let Some(groups) = self.groups.as_mut()
            && let Err(suspicion) = groups.observe_row(input.subject.iter().chain(&input.carers))
        {
            // Stopped before this row's batch is written: the rows read with it are dropped.
            self.rows.clear();
            self.guessing = true;
            let _ = self.to_writer.blocking_send(Parsed::LooksLikeEnumeration(suspicion));
            return;
        }
        let row = match input.local_ref.take() {
            None => Row::Rejected(vec![Rejected {
                line,
                field: "local_ref".into(),
                message: "local_ref is required".into(),
                local_ref: None,
            }]),
            Some(local_ref) => match self.seen.insert(ref_hash(local_ref.trim()), line) {
                Some(first) => Row::Rejected(vec![Rejected {
                    line,
                    field: "local_ref".into(),
                    message: format!("this local_ref already appeared on line {first}"),
                    local_ref: Some(local_ref.trim().to_string()),
                }]),
                None => match input.into_holding(&local_ref, &self.keys, self.today) {
                    Ok(h) => Row::Holding(Box::new(h)),
                    Err(errors) => Row::Rejected(Rejected::from_errors(line, Some(local_ref.trim()), errors)),
                },
            },
        };
        self.rows.push(row);
    }

    /// Hands over the rows read so far; false if the writer has stopped.
    fn flush(&mut self, line: u64) -> bool {
        if self.guessing {
            return false;
        }
        self.to_writer.blocking_send(Parsed::Rows(std::mem::take(&mut self.rows), line)).is_ok()
    }

    /// Hands over a full batch; false if the writer has stopped.
    fn flush_full(&mut self, line: u64) -> bool {
        !self.guessing && (self.rows.len() < BATCH || self.flush(line))
    }

    fn stop(&mut self, line: u64, why: Parsed) {
        if self.flush(line) {
            let _ = self.to_writer.blocking_send(why);
        }
    }

    fn read_csv(&mut self, reader: impl Read) {
        let mut records = CsvRecords::new(BufReader::new(reader));
        let unreadable = |field: &str, message: &str| Parsed::Unreadable(field.into(), message.into());
        let layout = match records.next_record() {
            Ok(None) => CsvLayout::from_header(std::iter::empty()),
            Ok(Some((_, sync_records::Read::Whole))) => match records.cells() {
                Some(cells) => CsvLayout::from_header(cells),
                None => return self.stop(0, unreadable("header", "the header row is not UTF-8 text")),
            },
            Ok(Some((_, sync_records::Read::TooLong))) => {
                return self.stop(0, unreadable("header", "the header row is longer than a row may be"));
            }
            Err(_) => return self.stop(0, unreadable("header", "the file has no readable CSV header row")),
        };
        let layout = match layout {
            Ok(layout) => layout,
            Err(e) => return self.stop(0, Parsed::Unreadable(e.field, e.message)),
        };
        let mut line = 1;
        loop {
            match records.next_record() {
                Ok(None) => break,
                Ok(Some((at, read))) => {
                    line = at;
                    match (read, records.cells()) {
                        (sync_records::Read::TooLong, _) => self.reject(line, "line", sync_records::too_long_message()),
                        (sync_records::Read::Whole, Some(cells)) => {
                            let input = layout.row(cells);
                            self.push(line, input)
                        }
                        (sync_records::Read::Whole, None) => {
                            self.reject(line, "line", "this row is not valid CSV text (UTF-8)")
                        }
                    }
                }
                Err(_) => return self.stop(line, Parsed::Interrupted(line)),
            }
            if !self.flush_full(line) {
                return;
            }
        }
        let _ = self.flush(line);
    }

    fn read_ndjson(&mut self, reader: impl Read) {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        let mut line = 0u64;
        loop {
            match sync_records::read_line(&mut reader, &mut buf) {
                Ok(None) => break,
                Ok(Some(sync_records::Read::TooLong)) => {
                    line += 1;
                    self.reject(line, "line", sync_records::too_long_message());
                }
                Ok(Some(sync_records::Read::Whole)) => {
                    line += 1;
                    match std::str::from_utf8(&buf).map(str::trim) {
                        Err(_) => self.reject(line, "line", "this line is not UTF-8 text"),
                        Ok("") => continue,
                        Ok(text) => match ndjson_row(text) {
                            Ok(input) => self.push(line, input),
                            Err(e) => self.rows.push(Row::Rejected(vec![Rejected {
                                line,
                                field: e.field,
                                message: e.message,
                                local_ref: None,
                            }])),
                        },
                    }
                }
                Err(_) => return self.stop(line, Parsed::Interrupted(line)),
            }
            if !self.flush_full(line) {
                return;
            }
        }
        let _ = self.flush(line);
    }
}

impl Service {
    /// Syncs an organisation's whole caseload from `reader`. `progress` is told the number of
    /// rows read after each batch. A sync that writes holds its organisation's lease from
    /// before it reads a row until it ends (`SyncError::Busy` if another holds it).
    pub async fn sync_holdings<R: Read + Send + 'static>(
        &self,
        org_id: i64,
        actor: Option<&Actor>,
        format: SyncFormat,
        reader: R,
        options: SyncOptions,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<SyncSummary, SyncError> {
        if options.dry_run {
            return self.run_sync(org_id, actor, format, reader, None, false, progress).await;
        }
        self.check_churn(org_id, actor).await?;
        let first_load = self.store.holdings_of_org(org_id).await.map_err(ServiceError::from)? == 0;
        let run = self.begin_sync_run(org_id, actor).await?;
        let result = self.run_sync(org_id, actor, format, reader, Some(&run.lease), first_load, progress).await;
        // A finished sync, an interrupted upload and a stopped guess have their `sync_run` event;
        // any other failure is recorded as `sync_interrupted`, with what it committed.
        let accounted = matches!(result, Ok(_) | Err(SyncError::Interrupted { .. } | SyncError::LooksLikeEnumeration));
        self.end_sync_run(run, accounted).await;
        if result.is_ok() {
            // For the area summary's "last sent their records" and the org-admin's start page.
            if let Err(e) = self.store.mark_synced(org_id, self.clock.now_ms()).await {
                tracing::warn!(error = %e, "the time of a finished sync was not recorded");
            }
        }
        result
    }

    /// The sync itself, in stages: read and parse on a blocking thread, write the batches while
    /// the committed ones are signalled (their matches found), then remove what the file no
    /// longer lists, audit and count churn. `lease` is `None` for a dry run, which writes
    /// nothing. `first_load`: the organisation had no holdings, so what it adds is not churn.
    #[allow(clippy::too_many_arguments)]
    async fn run_sync<R: Read + Send + 'static>(
        &self,
        org_id: i64,
        actor: Option<&Actor>,
        format: SyncFormat,
        reader: R,
        lease: Option<&LeaseRef>,
        first_load: bool,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<SyncSummary, SyncError> {
        let (parser, mut rx) = self.start_reading(format, reader);
        let mut index = self.store.sync_index(org_id).await.map_err(ServiceError::from)?;
        let mut summary = SyncSummary { dry_run: lease.is_none(), ..SyncSummary::default() };
        // Committed batches go to the signaller, which finds their matches while the writer
        // goes on with the next transaction. It holds at most one set waiting.
        let (committed, to_signal) = mpsc::channel::<Vec<WrittenBatch>>(1);
        let write = self.write_batches(org_id, &mut rx, committed, lease, &mut summary, &mut index, progress);
        let signal = self.signal_batches(org_id, to_signal);
        let (written, signalled) = tokio::join!(write, signal);
        // The reader stops at its next batch once the writer has gone.
        drop(rx);
        let _ = parser.await;
        // A signalling failure stops the writer (its channel closes), so it is the one to report.
        summary.count(signalled?);
        let run_id = lease.map(|l| l.run_id.as_str());
        if let Some(stopped) = written? {
            return self.stopped_sync(org_id, actor, &summary, run_id, first_load, stopped).await;
        }
        self.finish_sync(org_id, actor, index, lease, first_load, summary).await
    }

    /// Starts parsing `reader` on a blocking thread; its batches arrive on the receiver.
    fn start_reading<R: Read + Send + 'static>(
        &self,
        format: SyncFormat,
        reader: R,
    ) -> (tokio::task::JoinHandle<()>, mpsc::Receiver<Parsed>) {
        // Parsed batches waiting for the writer.
        let (tx, rx) = mpsc::channel::<Parsed>(4);
        let mut rows = RowReader {
            keys: self.keys.clone(),
            today: self.clock.today(),
            seen: HashMap::new(),
            rows: Vec::new(),
            to_writer: tx,
            groups: self.settings.limits.enabled.then(|| NameGroups::new(self.settings.limits.enumeration)),
            guessing: false,
        };
        let parser = tokio::task::spawn_blocking(move || match format {
            SyncFormat::Csv => rows.read_csv(reader),
            SyncFormat::Ndjson => rows.read_ndjson(reader),
        });
        (parser, rx)
    }

    /// Writes the parsed batches in transactions of about `TRANSACTION_ROWS` rows (a dry run
    /// only counts them against `index`), handing each committed set to the signaller through
    /// `committed`. `index` is left with the holdings the file did not list. `Some` when the
    /// reader stopped early.
    #[allow(clippy::too_many_arguments)]
    async fn write_batches(
        &self,
        org_id: i64,
        rx: &mut mpsc::Receiver<Parsed>,
        committed: mpsc::Sender<Vec<WrittenBatch>>,
        lease: Option<&LeaseRef>,
        summary: &mut SyncSummary,
        index: &mut SyncIndex,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Option<Stopped>, SyncError> {
        // Planner statistics are refreshed as a large sync grows the tables (10k, 40k, 160k … changes).
        let mut analyze_at = FIRST_ANALYZE;
        let mut open = None;
        let mut uncommitted = Vec::new();
        loop {
            let parsed = match tokio::time::timeout(IDLE_COMMIT, rx.recv()).await {
                Ok(parsed) => parsed,
                Err(_) => {
                    // The input has stalled (a slow upload): commit what was read rather
                    // than hold the write lock idle, and wait on.
                    self.commit_sync(&mut open, lease).await?;
                    pass_on(&committed, &mut uncommitted).await?;
                    rx.recv().await
                }
            };
            let Some(parsed) = parsed else { break };
            let (rows, line) = match parsed {
                Parsed::Rows(rows, line) => (rows, line),
                Parsed::Unreadable(field, message) => return Err(SyncError::Unreadable { field, message }),
                Parsed::Interrupted(line) => {
                    self.commit_sync(&mut open, lease).await?;
                    pass_on(&committed, &mut uncommitted).await?;
                    return Ok(Some(Stopped::Interrupted(line)));
                }
                Parsed::LooksLikeEnumeration(suspicion) => {
                    self.commit_sync(&mut open, lease).await?;
                    pass_on(&committed, &mut uncommitted).await?;
                    return Ok(Some(Stopped::LooksLikeEnumeration(suspicion)));
                }
            };
            let mut holdings = Vec::with_capacity(rows.len());
            for row in rows {
                summary.lines += 1;
                match row {
                    Row::Holding(h) => holdings.push(*h),
                    Row::Rejected(r) => summary.reject(r),
                }
            }
            if lease.is_none() {
                for h in &holdings {
                    summary.count_change(change_against(index, h));
                }
            } else {
                let written = self.write_batch(org_id, &mut open, &holdings, index).await?;
                for w in &written {
                    summary.count_change(w.change);
                }
                uncommitted.push(WrittenBatch { holdings, written });
                // Due (see `transaction_due`), or another write is waiting for it.
                if transaction_due(open.as_ref(), self.clock.now_ms()) || self.store.writers_waiting() {
                    self.commit_sync(&mut open, lease).await?;
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
        self.commit_sync(&mut open, lease).await?;
        pass_on(&committed, &mut uncommitted).await?;
        Ok(None)
    }

    /// Writes one batch into the sync's transaction, opening it if this batch is the first to
    /// change anything.
    async fn write_batch(
        &self,
        org_id: i64,
        open: &mut Option<SyncTransaction>,
        holdings: &[NewHolding],
        index: &mut SyncIndex,
    ) -> Result<Vec<Written>, SyncError> {
        if open.is_none() && self.prefilter.completeness().is_none() && changes_any(holdings, index) {
            // A command-line import has no serving node's filter. Built before this sync's first
            // write, it holds each of the sync's keys once, added as its batch is signalled;
            // built after, it would count them twice (see `prefilter`).
            self.rebuild_prefilter().await?;
        }
        let now = self.clock.now_ms();
        let changes = self.store.sync_batch(open, org_id, holdings, &self.key_id, now, index).await;
        Ok(changes.map_err(put_meanwhile).map_err(ServiceError::from)?)
    }

    /// Finds and signals the matches of each committed set of batches, as the writer hands them on.
    async fn signal_batches(
        &self,
        org_id: i64,
        mut to_signal: mpsc::Receiver<Vec<WrittenBatch>>,
    ) -> Result<Signalled, ServiceError> {
        let mut signalled = Signalled::default();
        while let Some(batches) = to_signal.recv().await {
            for batch in &batches {
                signalled += self.signal_written(org_id, batch).await?;
            }
        }
        Ok(signalled)
    }

    /// A sync the reader stopped: what was written is audited (as incomplete) and counted, and
    /// the reason is the answer.
    async fn stopped_sync(
        &self,
        org_id: i64,
        actor: Option<&Actor>,
        summary: &SyncSummary,
        run_id: Option<&str>,
        first_load: bool,
        stopped: Stopped,
    ) -> Result<SyncSummary, SyncError> {
        self.audit_sync(org_id, actor, summary, run_id, false).await?;
        self.count_churn(org_id, actor, summary.added, 0, first_load).await?;
        match stopped {
            Stopped::Interrupted(line) => Err(SyncError::Interrupted { line }),
            Stopped::LooksLikeEnumeration(suspicion) => {
                let counts = json!({
                    "rows_sharing_a_name": suspicion.rows_sharing_a_name, "rows_read": suspicion.rows,
                });
                self.flag_sync(org_id, actor, "rows_sharing_a_name", counts).await?;
                Err(SyncError::LooksLikeEnumeration)
            }
        }
    }

    /// A sync read to the end: the holdings it did not list (`absent`, left in the index) are
    /// removed, then it is audited and its churn counted. A dry run only reports.
    async fn finish_sync(
        &self,
        org_id: i64,
        actor: Option<&Actor>,
        absent: SyncIndex,
        lease: Option<&LeaseRef>,
        first_load: bool,
        mut summary: SyncSummary,
    ) -> Result<SyncSummary, SyncError> {
        let absent: Vec<i64> = absent.values().map(|(id, _)| *id).collect();
        summary.removed = absent.len() as u64;
        if let Some(lease) = lease
            && !absent.is_empty()
        {
            let (removed, signalled) = self.remove_holdings(org_id, &absent, Some(lease)).await?;
            // What really went: a holding deleted by hand meanwhile is not counted twice.
            summary.removed = removed;
            summary.count(signalled);
        }
        let dry_run = lease.is_none();
        if !dry_run && summary.added + summary.updated + summary.removed >= FIRST_ANALYZE / 10 {
            self.store.analyze_holdings().await.map_err(ServiceError::from)?;
        }
        summary.rejected.sort_by_key(|r| r.line);
        if !dry_run {
            let run_id = lease.map(|l| l.run_id.as_str());
            self.audit_sync(org_id, actor, &summary, run_id, true).await?;
            self.count_churn(org_id, actor, summary.added, summary.removed, first_load).await?;
            self.recheck_key_family().await;
        }
        Ok(summary)
    }

    /// Commits the sync's open transaction, if there is one, behind its lease's fence.
    async fn commit_sync(&self, open: &mut Option<SyncTransaction>, lease: Option<&LeaseRef>) -> Result<(), SyncError> {
        if let Some(tx) = open.take() {
            let lease = lease.ok_or_else(|| StoreError::Inconsistent("a dry run opened a transaction".into()));
            let lease = lease.map_err(ServiceError::from)?;
            self.store.commit_sync(tx, lease, self.lease_expiry()).await.map_err(ServiceError::from)?;
        }
        Ok(())
    }

    /// Signals the matches of a written batch, screening its probes through the prefilter, and
    /// then adds its keys to the filter.
    async fn signal_written(&self, org_id: i64, batch: &WrittenBatch) -> Result<Signalled, ServiceError> {
        let pairs = || batch.holdings.iter().zip(&batch.written);
        let written: Vec<_> = pairs().map(|(h, w)| (w.id, h, w.change)).collect();
        let changed = written.iter().any(|(_, _, change)| *change != Change::Unchanged);
        if changed && self.prefilter.completeness().is_none() {
            // A command-line import has no serving node's filter: signalling screens through
            // one, built when the first batch with changes needs it.
            self.rebuild_prefilter().await?;
        }
        let screened = changed && self.refresh_for_signalling(org_id).await?;
        // Before screening: a holding's own keys are then in the filter once (those it carried
        // before already were; only the new ones go in), and "there twice" means another
        // holding carries them too (see `prefilter`).
        self.prefilter.add(pairs().flat_map(|(h, w)| w.new_keys(h)));
        self.signal_batch(org_id, &written, screened).await
    }

    async fn audit_sync(
        &self,
        org_id: i64,
        actor: Option<&Actor>,
        s: &SyncSummary,
        run_id: Option<&str>,
        complete: bool,
    ) -> Result<(), ServiceError> {
        let mut event = NewEvent::new(EventType::SyncRun).concerning([org_id]).details(json!({
            "run_id": run_id,
            "added": s.added, "updated": s.updated, "unchanged": s.unchanged, "removed": s.removed,
            "rejected": s.rejected_count, "lines": s.lines, "complete": complete,
            "matches_new": s.matches_new, "matches_withdrawn": s.matches_withdrawn,
        }));
        if let Some(actor) = actor {
            event = event.by(actor);
        }
        self.audit.record(event).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_transaction_commits_when_full_or_when_old_however_few_its_rows() {
        assert!(!full_or_old(10, 0), "young and small: it waits for more");
        assert!(full_or_old(TRANSACTION_ROWS, 0), "full");
        assert!(full_or_old(1, TRANSACTION_AGE_MS), "old: its first rows' times must stay inside the margin");
        assert!(!full_or_old(TRANSACTION_ROWS - 1, TRANSACTION_AGE_MS - 1));
    }
}
