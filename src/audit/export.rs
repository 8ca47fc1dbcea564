//! Offline audit exports: every event body with its leaf hash, the kept checkpoints and the
//! head's signed checkpoint, as NDJSON; and their verification with only the public key.
//!
//! Layout (one JSON object a line): a `header`, the kept `checkpoint`s, the `head` note, then
//! one `entry` per event in log order. Bodies are the exact canonical bytes (JSON text).

use std::cell::RefCell;
use std::io::{BufRead, Write};

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::checkpoint::SignedCheckpoint;
use super::stored::{claimed_position, names_entry_before};
use super::verify::{StoredEntry, TreeHead, VerifiedLog, VerifyError, verify_log};
use crate::clock::Millis;
use crate::store::{Store, StoreError};

pub const FORMAT: &str = "child-locator-audit-export/1";
const PAGE: i64 = 5_000;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case", deny_unknown_fields)]
enum Record {
    Header { format: String, tree_size: u64, exported_at: Millis },
    Checkpoint { note: String },
    Head { note: String },
    Entry { seq: u64, leaf_hash: String, body: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the audit log is empty: there is no signed checkpoint to export")]
    Empty,
    #[error("a stored checkpoint is unreadable: {0}")]
    Checkpoint(String),
    #[error("entry {0}: its stored body is not UTF-8 JSON")]
    Body(u64),
    #[error("cannot read the audit log: {0}")]
    Store(#[from] StoreError),
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
}

/// What an export holds.
#[derive(Debug, Clone, Copy)]
pub struct ExportSummary {
    pub entries: u64,
    pub checkpoints: usize,
}

/// Writes the log up to its current head (entries appended meanwhile are left for the next export).
pub async fn write_export(store: &Store, out: &mut impl Write, now: Millis) -> Result<ExportSummary, ExportError> {
    let head = store.audit_head().await?;
    let note = head.checkpoint.ok_or(ExportError::Empty)?;
    let signed = SignedCheckpoint::from_note(&note).map_err(|e| ExportError::Checkpoint(e.to_string()))?;
    let size = signed.checkpoint().tree_size;
    let mut kept = Vec::new();
    for n in store.audit_checkpoints().await? {
        let c = SignedCheckpoint::from_note(&n).map_err(|e| ExportError::Checkpoint(e.to_string()))?;
        if c.checkpoint().tree_size <= size {
            kept.push(n);
        }
    }
    let line = |out: &mut dyn Write, r: &Record| -> Result<(), ExportError> {
        serde_json::to_writer(&mut *out, r).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        Ok(())
    };
    line(out, &Record::Header { format: FORMAT.into(), tree_size: size, exported_at: now })?;
    for n in &kept {
        line(out, &Record::Checkpoint { note: n.clone() })?;
    }
    line(out, &Record::Head { note })?;
    let mut from = 0i64;
    let mut written = 0u64;
    'pages: loop {
        let page = store.audit_entries(from, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for e in page {
            let seq = u64::try_from(e.seq).unwrap_or(u64::MAX);
            if seq >= size {
                break 'pages;
            }
            from = e.seq + 1;
            let body = String::from_utf8(e.body).map_err(|_| ExportError::Body(seq))?;
            line(out, &Record::Entry { seq, leaf_hash: hex::encode(&e.leaf_hash), body })?;
            written += 1;
        }
    }
    out.flush()?;
    Ok(ExportSummary { entries: written, checkpoints: kept.len() + 1 })
}

/// The first thing wrong with an export, naming the entry or line.
#[derive(Debug, thiserror::Error)]
pub enum ExportVerifyError {
    #[error("line {0}: not a record of an audit export")]
    Unreadable(usize),
    #[error("line {line}: {what}")]
    Misplaced { line: usize, what: &'static str },
    #[error("the export has no head checkpoint")]
    NoHead,
    #[error("a checkpoint is unreadable: {0}")]
    Checkpoint(String),
    #[error("the header claims {claimed} entries but the head checkpoint covers {head}")]
    HeaderMismatch { claimed: u64, head: u64 },
    #[error("{0}")]
    Log(#[from] VerifyError),
    #[error("entry {index}: its body names position {claimed}")]
    WrongPosition { index: u64, claimed: String },
    #[error("cannot read the export: {0}")]
    Io(#[from] std::io::Error),
}

/// Verifies an export with the public key alone: every checkpoint's signature (including the
/// head's, whose root becomes the tree head), every leaf hash, positions and order, and each
/// checkpoint's root at its size. `witnessed` are checkpoints a witness kept: the export must
/// agree with each (a rewritten or truncated history cannot).
pub fn verify_export(
    input: impl BufRead,
    key: &VerifyingKey,
    witnessed: &[SignedCheckpoint],
) -> Result<VerifiedLog, ExportVerifyError> {
    let mut lines = input.lines().enumerate().map(|(i, l)| (i + 1, l));
    let mut header_size = None;
    let mut checkpoints = Vec::new();
    let mut head = None;
    // The preamble: header, kept checkpoints, then the head.
    for (n, text) in lines.by_ref() {
        let text = text?;
        let record: Record = serde_json::from_str(&text).map_err(|_| ExportVerifyError::Unreadable(n))?;
        match (record, header_size) {
            (Record::Header { format, tree_size, .. }, None) if format == FORMAT => header_size = Some(tree_size),
            (Record::Header { .. }, _) => {
                return Err(ExportVerifyError::Misplaced { line: n, what: "an unknown or repeated header" });
            }
            (_, None) => {
                return Err(ExportVerifyError::Misplaced { line: n, what: "the export must start with its header" });
            }
            (Record::Checkpoint { note }, _) => checkpoints.push(parse_note(&note)?),
            (Record::Head { note }, _) => {
                head = Some(parse_note(&note)?);
                break;
            }
            (Record::Entry { .. }, _) => {
                return Err(ExportVerifyError::Misplaced { line: n, what: "an entry before the head checkpoint" });
            }
        }
    }
    let head = head.ok_or(ExportVerifyError::NoHead)?;
    let tree_head = TreeHead { size: head.checkpoint().tree_size, root: head.checkpoint().root_hash };
    if header_size != Some(tree_head.size) {
        return Err(ExportVerifyError::HeaderMismatch { claimed: header_size.unwrap_or(0), head: tree_head.size });
    }
    checkpoints.push(head);
    checkpoints.extend(witnessed.iter().cloned());

    // Entries stream through the pure verifier; a line problem stops the stream and is reported.
    let problem: RefCell<Option<ExportVerifyError>> = RefCell::new(None);
    let mut wrong_position = None;
    let entries = lines.map_while(|(n, text)| {
        let entry = match text {
            Err(e) => Err(ExportVerifyError::Io(e)),
            Ok(text) => match serde_json::from_str::<Record>(&text) {
                Ok(Record::Entry { seq, leaf_hash, body }) => {
                    let leaf = hex::decode(&leaf_hash).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
                    // A malformed leaf hash can never match: all zeros makes the verifier say so.
                    Ok(StoredEntry { index: seq, body: body.into_bytes(), leaf_hash: leaf.unwrap_or([0; 32]) })
                }
                Ok(_) => Err(ExportVerifyError::Misplaced { line: n, what: "a checkpoint after the entries began" }),
                Err(_) => Err(ExportVerifyError::Unreadable(n)),
            },
        };
        match entry {
            Ok(entry) => {
                let claimed = claimed_position(&entry.body);
                if claimed.as_deref() != Some(entry.index.to_string().as_str()) {
                    wrong_position = Some((entry.index, claimed.unwrap_or_else(|| "nothing".into())));
                    return None;
                }
                Some(entry)
            }
            Err(e) => {
                *problem.borrow_mut() = Some(e);
                None
            }
        }
    });
    let result = verify_log(entries, &tree_head, &checkpoints, Some(key));
    if let Some(e) = problem.into_inner() {
        // An entry the verifier already faulted comes before the unreadable line.
        return Err(match result {
            Err(v)
                if !matches!(
                    v,
                    VerifyError::TruncatedBelowHead { .. } | VerifyError::TruncatedBelowCheckpoint { .. }
                ) =>
            {
                v.into()
            }
            _ => e,
        });
    }
    match (result, wrong_position) {
        (Err(e), Some((index, _))) if names_entry_before(&e, index) => Err(e.into()),
        (_, Some((index, claimed))) => Err(ExportVerifyError::WrongPosition { index, claimed }),
        (result, None) => Ok(result?),
    }
}

fn parse_note(note: &str) -> Result<SignedCheckpoint, ExportVerifyError> {
    SignedCheckpoint::from_note(note).map_err(|e| ExportVerifyError::Checkpoint(e.to_string()))
}
