//! Verification of a whole stored audit log in one streaming pass, pure over an iterator,
//! so `locator audit verify` and an offline export verifier share one definition of "intact".

use std::fmt;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::checkpoint::{CheckpointError, SignedCheckpoint};
use super::merkle::{Frontier, Hash, hash_hex, leaf_hash};

/// One log entry as stored: its position, its canonical event bytes and the leaf hash kept beside them.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub index: u64,
    pub body: Vec<u8>,
    pub leaf_hash: Hash,
}

/// Shows the body's length only: event bytes may carry details that must not reach a log.
impl fmt::Debug for StoredEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredEntry")
            .field("index", &self.index)
            .field("body_len", &self.body.len())
            .field("leaf_hash", &hex::encode(self.leaf_hash))
            .finish()
    }
}

/// The current head as the database claims it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHead {
    pub size: u64,
    #[serde(with = "hash_hex")]
    pub root: Hash,
}

/// What a successful verification established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedLog {
    pub size: u64,
    #[serde(with = "hash_hex")]
    pub root: Hash,
    /// Checkpoints whose root matched the log at their size.
    pub checkpoints_checked: usize,
    /// Whether their signatures were checked too (only when a key was given).
    pub signatures_checked: bool,
}

/// The first thing found wrong with a stored log, naming the entry or checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A checkpoint not signed by the log key vouches for nothing (forged, or a wrong key given).
    #[error("checkpoint at size {size}: signature does not verify: {source}")]
    CheckpointSignature {
        size: u64,
        #[source]
        source: CheckpointError,
    },
    /// The entry's body or its stored leaf hash was changed after it was written.
    #[error("entry {index}: body does not match its leaf hash")]
    LeafHashMismatch { index: u64 },
    /// An index was skipped: the entry was deleted (or renumbered).
    #[error("entry {expected} is missing: the next stored entry is {found}")]
    MissingEntry { expected: u64, found: u64 },
    /// An index went backwards or repeated: entries were reordered or duplicated.
    #[error("entry {found} is out of order: entry {expected} was expected next")]
    OutOfOrder { expected: u64, found: u64 },
    /// Entries the head does not cover: written around the log's append path.
    #[error("entry {index}: stored beyond the head, which claims {head_size} entries")]
    BeyondHead { index: u64, head_size: u64 },
    /// The tail was removed: the head still counts entries that are gone.
    #[error(
        "log is truncated: the head claims {head_size} entries but only {stored} are stored \
         (entry {stored} onwards is missing)"
    )]
    TruncatedBelowHead { stored: u64, head_size: u64 },
    /// The tail was removed and the head rewritten, but a signed checkpoint remembers more.
    #[error(
        "log is truncated: a checkpoint covers {checkpoint_size} entries but only {stored} are \
         stored (entry {stored} onwards is missing)"
    )]
    TruncatedBelowCheckpoint { stored: u64, checkpoint_size: u64 },
    /// The entries up to this checkpoint are not the ones it signed for: history was rewritten.
    #[error("checkpoint at size {size}: root does not match the log's recomputed root at that size")]
    CheckpointRootMismatch { size: u64 },
    /// The head's root is not the root of the stored entries.
    #[error("head at size {size}: root does not match the recomputed root")]
    HeadRootMismatch { size: u64 },
    /// Unreachable in practice; refused rather than wrapped.
    #[error("log has more entries than a 64-bit size can count")]
    TooLarge,
}

/// Recomputes the tree from `entries` and checks every stored leaf hash, the order of the
/// indexes, the head and each checkpoint (and its signature when `key` is given).
///
/// Memory is O(log n) for the tree plus the checkpoint list: entries are consumed one by one
/// and the running root is compared when the size reaches each checkpoint's and the head's.
/// Stops at the first problem, in log order, after checking all signatures first.
pub fn verify_log(
    entries: impl IntoIterator<Item = StoredEntry>,
    head: &TreeHead,
    checkpoints: &[SignedCheckpoint],
    key: Option<&VerifyingKey>,
) -> Result<VerifiedLog, VerifyError> {
    // Signatures do not depend on the entries, so a forged checkpoint is reported up front.
    if let Some(key) = key {
        for signed in checkpoints {
            signed
                .verify(key)
                .map_err(|source| VerifyError::CheckpointSignature { size: signed.checkpoint().tree_size, source })?;
        }
    }
    let mut pending: Vec<&SignedCheckpoint> = checkpoints.iter().collect();
    pending.sort_by_key(|signed| signed.checkpoint().tree_size);
    let mut pending = pending.into_iter().peekable();

    let mut frontier = Frontier::new();
    let mut checked = 0;
    check_at_current_size(&frontier, head, &mut pending, &mut checked)?;

    for entry in entries {
        let expected = frontier.size();
        if entry.index != expected {
            return Err(if entry.index > expected {
                VerifyError::MissingEntry { expected, found: entry.index }
            } else {
                VerifyError::OutOfOrder { expected, found: entry.index }
            });
        }
        if expected >= head.size {
            return Err(VerifyError::BeyondHead { index: entry.index, head_size: head.size });
        }
        if leaf_hash(&entry.body) != entry.leaf_hash {
            return Err(VerifyError::LeafHashMismatch { index: entry.index });
        }
        frontier.push(entry.leaf_hash).map_err(|_| VerifyError::TooLarge)?;
        check_at_current_size(&frontier, head, &mut pending, &mut checked)?;
    }

    let stored = frontier.size();
    if stored < head.size {
        return Err(VerifyError::TruncatedBelowHead { stored, head_size: head.size });
    }
    if let Some(beyond) = pending.next() {
        return Err(VerifyError::TruncatedBelowCheckpoint { stored, checkpoint_size: beyond.checkpoint().tree_size });
    }
    Ok(VerifiedLog {
        size: stored,
        root: frontier.root(),
        checkpoints_checked: checked,
        signatures_checked: key.is_some(),
    })
}

/// Compares the running root with every checkpoint, and the head, at the frontier's size.
fn check_at_current_size<'a>(
    frontier: &Frontier,
    head: &TreeHead,
    pending: &mut std::iter::Peekable<impl Iterator<Item = &'a SignedCheckpoint>>,
    checked: &mut usize,
) -> Result<(), VerifyError> {
    let size = frontier.size();
    let at_head = head.size == size;
    let at_checkpoint = pending.peek().is_some_and(|signed| signed.checkpoint().tree_size == size);
    if !at_head && !at_checkpoint {
        return Ok(());
    }
    // The root costs O(log n); compute it only at sizes something claims a root for.
    let root = frontier.root();
    while let Some(signed) = pending.next_if(|signed| signed.checkpoint().tree_size == size) {
        if signed.checkpoint().root_hash != root {
            return Err(VerifyError::CheckpointRootMismatch { size });
        }
        *checked += 1;
    }
    if at_head && head.root != root {
        return Err(VerifyError::HeadRootMismatch { size });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::checkpoint::{AuditSigningKey, Checkpoint};
    use super::super::merkle::{EMPTY_ROOT, root_of};
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    const ORIGIN: &str = "audit.child-locator.example";

    /// One key for all tests: key generation is not what is under test.
    fn key() -> &'static AuditSigningKey {
        static KEY: OnceLock<AuditSigningKey> = OnceLock::new();
        KEY.get_or_init(AuditSigningKey::generate)
    }

    struct Log {
        entries: Vec<StoredEntry>,
        head: TreeHead,
        checkpoints: Vec<SignedCheckpoint>,
    }

    impl Log {
        fn verify(&self) -> Result<VerifiedLog, VerifyError> {
            verify_log(self.entries.clone(), &self.head, &self.checkpoints, Some(&key().verifying_key()))
        }
    }

    fn entry(index: usize, body: Vec<u8>) -> StoredEntry {
        StoredEntry { index: u64::try_from(index).expect("small"), leaf_hash: leaf_hash(&body), body }
    }

    fn sign_at(leaves: &[Hash], size: usize) -> SignedCheckpoint {
        let checkpoint =
            Checkpoint::new(ORIGIN, u64::try_from(size).expect("small"), root_of(&leaves[..size]), 1_714_000_000_000)
                .expect("valid origin");
        key().sign(&checkpoint).expect("valid origin")
    }

    /// A well-formed log of `bodies`, with a signed checkpoint at each of `checkpoint_sizes`.
    fn build(bodies: Vec<Vec<u8>>, checkpoint_sizes: &[usize]) -> Log {
        let entries: Vec<StoredEntry> = bodies.into_iter().enumerate().map(|(i, body)| entry(i, body)).collect();
        let leaves: Vec<Hash> = entries.iter().map(|e| e.leaf_hash).collect();
        Log {
            head: TreeHead { size: u64::try_from(leaves.len()).expect("small"), root: root_of(&leaves) },
            checkpoints: checkpoint_sizes.iter().map(|&size| sign_at(&leaves, size.min(leaves.len()))).collect(),
            entries,
        }
    }

    fn small_log() -> Log {
        build((0..10u8).map(|i| vec![i; 3]).collect(), &[4, 7, 10])
    }

    #[test]
    fn an_intact_log_verifies_with_every_checkpoint_counted() {
        let log = small_log();
        let verified = log.verify().expect("intact");
        assert_eq!(verified.size, 10);
        assert_eq!(verified.root, log.head.root);
        assert_eq!(verified.checkpoints_checked, 3);
        assert!(verified.signatures_checked);
    }

    #[test]
    fn debug_of_an_entry_does_not_print_its_body() {
        let printed = format!("{:?}", entry(3, b"pseudonym-abc123".to_vec()));
        assert!(!printed.contains("pseudonym"), "{printed}");
        assert!(!printed.contains("112, 115"), "{printed}");
        assert!(printed.contains("body_len: 16"), "{printed}");
    }

    #[test]
    fn an_empty_log_verifies_against_the_empty_root() {
        let head = TreeHead { size: 0, root: EMPTY_ROOT };
        let verified = verify_log(Vec::new(), &head, &[], None).expect("empty is intact");
        assert_eq!(verified.root, EMPTY_ROOT);
        assert!(!verified.signatures_checked);
    }

    #[test]
    fn checkpoints_are_checked_in_size_order_whatever_order_they_come_in() {
        let mut log = small_log();
        log.checkpoints.reverse();
        assert_eq!(log.verify().expect("intact").checkpoints_checked, 3);
    }

    #[test]
    fn a_changed_body_names_its_entry() {
        let mut log = small_log();
        log.entries[6].body[1] ^= 0x20;
        let err = log.verify().expect_err("tampered");
        assert_eq!(err, VerifyError::LeafHashMismatch { index: 6 });
        assert_eq!(err.to_string(), "entry 6: body does not match its leaf hash");
    }

    #[test]
    fn a_changed_leaf_hash_names_its_entry() {
        let mut log = small_log();
        log.entries[3].leaf_hash[0] ^= 1;
        assert_eq!(log.verify(), Err(VerifyError::LeafHashMismatch { index: 3 }));
    }

    #[test]
    fn a_rewritten_entry_with_a_matching_leaf_hash_is_caught_by_the_next_checkpoint() {
        let mut log = small_log();
        log.entries[5] = entry(5, b"forged".to_vec());
        assert_eq!(log.verify(), Err(VerifyError::CheckpointRootMismatch { size: 7 }));
    }

    #[test]
    fn a_rewritten_entry_after_the_last_checkpoint_is_caught_by_the_head() {
        let mut log = build((0..10u8).map(|i| vec![i; 3]).collect(), &[4]);
        log.entries[8] = entry(8, b"forged".to_vec());
        assert_eq!(log.verify(), Err(VerifyError::HeadRootMismatch { size: 10 }));
    }

    #[test]
    fn a_deleted_entry_names_the_missing_index() {
        let mut log = small_log();
        log.entries.remove(2);
        let err = log.verify().expect_err("tampered");
        assert_eq!(err, VerifyError::MissingEntry { expected: 2, found: 3 });
        assert_eq!(err.to_string(), "entry 2 is missing: the next stored entry is 3");
    }

    #[test]
    fn reordered_entries_are_reported_as_out_of_order() {
        let mut log = small_log();
        log.entries.swap(4, 5);
        assert_eq!(log.verify(), Err(VerifyError::MissingEntry { expected: 4, found: 5 }));
        let mut log = small_log();
        log.entries.insert(5, log.entries[2].clone());
        assert_eq!(log.verify(), Err(VerifyError::OutOfOrder { expected: 5, found: 2 }));
    }

    #[test]
    fn a_truncated_tail_is_reported_against_the_head() {
        let mut log = small_log();
        log.entries.truncate(8);
        let err = log.verify().expect_err("tampered");
        assert_eq!(err, VerifyError::TruncatedBelowHead { stored: 8, head_size: 10 });
        assert!(err.to_string().contains("entry 8 onwards is missing"));
    }

    #[test]
    fn a_truncation_with_a_rewritten_head_is_caught_by_a_later_checkpoint() {
        let mut log = small_log();
        log.entries.truncate(8);
        let leaves: Vec<Hash> = log.entries.iter().map(|e| e.leaf_hash).collect();
        log.head = TreeHead { size: 8, root: root_of(&leaves) };
        assert_eq!(log.verify(), Err(VerifyError::TruncatedBelowCheckpoint { stored: 8, checkpoint_size: 10 }));
    }

    #[test]
    fn entries_beyond_the_head_are_reported() {
        let mut log = small_log();
        log.entries.push(entry(10, b"late".to_vec()));
        assert_eq!(log.verify(), Err(VerifyError::BeyondHead { index: 10, head_size: 10 }));
    }

    #[test]
    fn a_head_with_a_wrong_root_is_reported() {
        let mut log = small_log();
        log.head.root[0] ^= 1;
        assert_eq!(log.verify(), Err(VerifyError::HeadRootMismatch { size: 10 }));
    }

    #[test]
    fn a_validly_signed_checkpoint_of_a_different_history_is_reported() {
        let mut log = small_log();
        let other = Checkpoint::new(ORIGIN, 7, [1; 32], 0).expect("valid origin");
        log.checkpoints.push(key().sign(&other).expect("valid origin"));
        assert_eq!(log.verify(), Err(VerifyError::CheckpointRootMismatch { size: 7 }));
    }

    #[test]
    fn a_checkpoint_with_a_bad_signature_is_reported_when_a_key_is_given() {
        let mut log = small_log();
        // Re-sign the same checkpoint with another key: right shape, wrong signer.
        let forged = AuditSigningKey::generate().sign(log.checkpoints[1].checkpoint()).expect("valid origin");
        log.checkpoints[1] = forged;
        let err = log.verify().expect_err("forged");
        assert!(matches!(err, VerifyError::CheckpointSignature { size: 7, .. }));
        assert!(err.to_string().starts_with("checkpoint at size 7: signature"));
        // Without a key only the roots can be checked, and those match.
        assert!(verify_log(log.entries.clone(), &log.head, &log.checkpoints, None).is_ok());
    }

    #[test]
    fn a_checkpoint_at_size_zero_must_commit_to_the_empty_root() {
        let mut log = small_log();
        log.checkpoints.push(sign_at(&[], 0));
        assert!(log.verify().is_ok());
        let wrong = Checkpoint::new(ORIGIN, 0, [1; 32], 0).expect("valid origin");
        log.checkpoints.push(key().sign(&wrong).expect("valid origin"));
        assert_eq!(log.verify(), Err(VerifyError::CheckpointRootMismatch { size: 0 }));
    }

    /// 1..200 entries of 1..24 bytes each, and up to 6 checkpoint sizes within the log.
    fn arb_log() -> impl Strategy<Value = (Vec<Vec<u8>>, Vec<usize>)> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 1..24), 1..200).prop_flat_map(|bodies| {
            let n = bodies.len();
            (Just(bodies), prop::collection::vec(1..=n, 0..6))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn an_intact_generated_log_verifies((bodies, sizes) in arb_log()) {
            let log = build(bodies, &sizes);
            let verified = log.verify().expect("intact");
            prop_assert_eq!(verified.size, log.head.size);
            prop_assert_eq!(verified.root, log.head.root);
            prop_assert_eq!(verified.checkpoints_checked, sizes.len());
        }

        #[test]
        fn any_single_byte_change_names_that_entry(
            (bodies, sizes) in arb_log(),
            pick in any::<prop::sample::Index>(),
            offset in any::<prop::sample::Index>(),
            xor in 1u8..=255,
        ) {
            let mut log = build(bodies, &sizes);
            let i = pick.index(log.entries.len());
            let body = &mut log.entries[i].body;
            let at = offset.index(body.len());
            body[at] ^= xor;
            prop_assert_eq!(
                log.verify(),
                Err(VerifyError::LeafHashMismatch { index: u64::try_from(i).expect("small") })
            );
        }

        #[test]
        fn deleting_any_entry_is_detected(
            (bodies, sizes) in arb_log(),
            pick in any::<prop::sample::Index>(),
        ) {
            let mut log = build(bodies, &sizes);
            let i = pick.index(log.entries.len());
            log.entries.remove(i);
            let index = u64::try_from(i).expect("small");
            let err = log.verify().expect_err("deletion detected");
            let names_it = match err {
                VerifyError::MissingEntry { expected, .. } => expected == index,
                VerifyError::TruncatedBelowHead { stored, .. } => stored == index,
                _ => false,
            };
            prop_assert!(names_it, "{}", err);
        }

        #[test]
        fn swapping_two_adjacent_distinct_entries_is_detected(
            (bodies, sizes) in arb_log(),
            pick in any::<prop::sample::Index>(),
        ) {
            prop_assume!(bodies.len() >= 2);
            let mut log = build(bodies, &sizes);
            let i = pick.index(log.entries.len() - 1);
            prop_assume!(log.entries[i].body != log.entries[i + 1].body);

            // Rows moved as they are: the indexes give it away at entry i.
            let mut moved = log.entries.clone();
            moved.swap(i, i + 1);
            let err = verify_log(moved, &log.head, &log.checkpoints, None)
                .expect_err("swap detected");
            let index = u64::try_from(i).expect("small");
            prop_assert_eq!(err, VerifyError::MissingEntry { expected: index, found: index + 1 });

            // Contents swapped and indexes rewritten to hide it: the roots give it away.
            let (a, b) = log.entries.split_at_mut(i + 1);
            std::mem::swap(&mut a[i].body, &mut b[0].body);
            std::mem::swap(&mut a[i].leaf_hash, &mut b[0].leaf_hash);
            let err = log.verify().expect_err("swap detected");
            let caught_by_a_root = matches!(
                err,
                VerifyError::CheckpointRootMismatch { .. } | VerifyError::HeadRootMismatch { .. }
            );
            prop_assert!(caught_by_a_root, "{}", err);
        }

        #[test]
        fn truncating_the_tail_is_detected(
            (bodies, sizes) in arb_log(),
            keep in any::<prop::sample::Index>(),
        ) {
            let mut log = build(bodies, &sizes);
            let kept = keep.index(log.entries.len());
            log.entries.truncate(kept);
            prop_assert_eq!(
                log.verify(),
                Err(VerifyError::TruncatedBelowHead {
                    stored: u64::try_from(kept).expect("small"),
                    head_size: log.head.size,
                })
            );
        }
    }
}
