//! RFC 9162 (Certificate Transparency v2) Merkle tree hashing for the audit log:
//! the append-only frontier, the reference tree hash, and inclusion and consistency proofs.

use serde::{Deserialize, Deserializer, Serializer};
use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// MTH({}) = SHA-256(""), the root of the empty tree (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Domain separation prefixes: a leaf can never be mistaken for an interior node.
const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// SHA-256(0x00 || data): the hash of one log entry.
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new().chain_update([LEAF_PREFIX]).chain_update(data).finalize().into()
}

/// SHA-256(0x01 || left || right): the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new().chain_update([NODE_PREFIX]).chain_update(left).chain_update(right).finalize().into()
}

/// The largest power of two strictly smaller than `n`; `n` must be at least 2.
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    // n - 1 >= 1, so the shift is at most usize::BITS - 1.
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The Merkle Tree Hash of a list of leaf hashes (RFC 9162 §2.1.1).
///
/// This is the reference definition, recursive and O(n); the log itself uses [`Frontier`].
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => EMPTY_ROOT,
        [leaf] => *leaf,
        _ => {
            let (left, right) = leaves.split_at(split_point(leaves.len()));
            node_hash(&root_of(left), &root_of(right))
        }
    }
}

/// Why a Merkle proof could not be produced or did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf asked about is not in the tree, so no proof can exist.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// A log only grows, so an "old" tree larger than the new one is a contradiction.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    OldSizeTooLarge { old_size: u64, new_size: u64 },
    /// The proof has more or fewer hashes than the tree shape requires.
    #[error("proof has the wrong number of hashes for these tree sizes")]
    WrongProofLength,
    /// The old tree's root is not the one the proof leads to.
    #[error("old root does not match the proof")]
    OldRootMismatch,
    /// The (new) tree's root is not the one the proof leads to.
    #[error("root does not match the proof")]
    RootMismatch,
}

/// Converts a tree size or index to `u64`; lossless on every platform Rust supports.
fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The inclusion proof (audit path) for the leaf at `index` (RFC 9162 §2.1.3.1).
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    let out_of_range = ProofError::IndexOutOfRange { index, size: to_u64(leaves.len()) };
    let m = usize::try_from(index).map_err(|_| out_of_range)?;
    if m >= leaves.len() {
        return Err(out_of_range);
    }
    let mut proof = Vec::new();
    path(m, leaves, &mut proof);
    Ok(proof)
}

/// PATH(m, D[n]), appending hashes from the leaf level up; requires m < n.
fn path(m: usize, leaves: &[Hash], proof: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split_point(leaves.len());
    let (left, right) = leaves.split_at(k);
    if m < k {
        path(m, left, proof);
        proof.push(root_of(right));
    } else {
        path(m - k, right, proof);
        proof.push(root_of(left));
    }
}

/// Checks that `leaf_hash` is at `index` in the tree of `tree_size` with `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= tree_size {
        return Err(ProofError::IndexOutOfRange { index, size: tree_size });
    }
    let (mut fn_, mut sn) = (index, tree_size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongProofLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            // Skip the levels where this node is a right-edge node with no sibling.
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongProofLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The consistency proof that the first `old_size` leaves are a prefix of `leaves`
/// (RFC 9162 §2.1.4.1). Empty when `old_size` is 0 or equals the tree size.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, ProofError> {
    let too_large = ProofError::OldSizeTooLarge { old_size, new_size: to_u64(leaves.len()) };
    let m = usize::try_from(old_size).map_err(|_| too_large)?;
    if m > leaves.len() {
        return Err(too_large);
    }
    let mut proof = Vec::new();
    if m > 0 {
        subproof(m, leaves, true, &mut proof);
    }
    Ok(proof)
}

/// SUBPROOF(m, D[n], b); requires 0 < m <= n.
fn subproof(m: usize, leaves: &[Hash], whole_old_tree: bool, proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        // The verifier already knows the old root; any other complete old subtree must be sent.
        if !whole_old_tree {
            proof.push(root_of(leaves));
        }
        return;
    }
    let k = split_point(n);
    let (left, right) = leaves.split_at(k);
    if m <= k {
        subproof(m, left, whole_old_tree, proof);
        proof.push(root_of(right));
    } else {
        subproof(m - k, right, false, proof);
        proof.push(root_of(left));
    }
}

/// Checks that the tree (`old_size`, `old_root`) is a prefix of (`new_size`, `new_root`)
/// (RFC 9162 §2.1.4.2).
///
/// The RFC defines proofs only for 0 < old < new. At the edges this follows C2SP
/// merkle-tree (compatible with the RFC): equal sizes need an empty proof and equal roots;
/// old size 0 needs an empty proof, and its root must be the empty tree's.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::OldSizeTooLarge { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength);
        }
        if old_size == 0 && *old_root != EMPTY_ROOT {
            return Err(ProofError::OldRootMismatch);
        }
        if old_size == new_size && old_root != new_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }

    // When the old tree is a perfect subtree its root is the proof's implicit first node.
    let (first, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        proof.split_first().ok_or(ProofError::WrongProofLength)?
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::WrongProofLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongProofLength);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// A perfect subtree of the log: the `2^level` leaves from `index << level`. Level 0 is a
/// leaf. Every complete subtree's hash is stored as the writer appends, so a proof reads
/// O(log n) of them instead of every leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

/// One hash of a proof, as the perfect subtrees whose right fold it is (largest, leftmost,
/// first): one node for a complete subtree, several for a subtree on the tree's right edge.
pub type ProofStep = Vec<NodeId>;

/// The largest power of two strictly smaller than `n` (`n` at least 2), for u64 sizes.
fn split_point_u64(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// The perfect subtrees that cover `[start, end)`, largest first: greedily the largest subtree
/// aligned at `start` that fits. For the ranges RFC 9162 splits off (aligned to a power of two
/// at least their length) this is the binary decomposition of the length, as in [`Frontier`].
pub fn covering(mut start: u64, end: u64) -> Vec<NodeId> {
    let mut nodes = Vec::new();
    while start < end {
        let fits = u64::BITS - 1 - (end - start).leading_zeros();
        let level = if start == 0 { fits } else { fits.min(start.trailing_zeros()) };
        // level < 64, so the cast and shifts are lossless.
        nodes.push(NodeId { level: level as u8, index: start >> level });
        start += 1 << level;
    }
    nodes
}

/// Which stored nodes make the inclusion proof for `index` in a tree of `size` (the same hashes,
/// in the same order, as [`inclusion_proof`]); at most about 2·log2(size) nodes.
pub fn inclusion_plan(index: u64, size: u64) -> Result<Vec<ProofStep>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut plan = Vec::new();
    path_plan(index, 0, size, &mut plan);
    Ok(plan)
}

/// PATH(m, D[start..start+n]) as node ranges; requires m < n.
fn path_plan(m: u64, start: u64, n: u64, plan: &mut Vec<ProofStep>) {
    if n <= 1 {
        return;
    }
    let k = split_point_u64(n);
    if m < k {
        path_plan(m, start, k, plan);
        plan.push(covering(start + k, start + n));
    } else {
        path_plan(m - k, start + k, n - k, plan);
        plan.push(covering(start, start + k));
    }
}

/// Which stored nodes make the consistency proof from `old_size` to `size` (the same hashes as
/// [`consistency_proof`]).
pub fn consistency_plan(old_size: u64, size: u64) -> Result<Vec<ProofStep>, ProofError> {
    if old_size > size {
        return Err(ProofError::OldSizeTooLarge { old_size, new_size: size });
    }
    let mut plan = Vec::new();
    if old_size > 0 {
        subproof_plan(old_size, 0, size, true, &mut plan);
    }
    Ok(plan)
}

/// SUBPROOF(m, D[start..start+n], b) as node ranges; requires 0 < m <= n.
fn subproof_plan(m: u64, start: u64, n: u64, whole_old_tree: bool, plan: &mut Vec<ProofStep>) {
    if m == n {
        if !whole_old_tree {
            plan.push(covering(start, start + n));
        }
        return;
    }
    let k = split_point_u64(n);
    if m <= k {
        subproof_plan(m, start, k, whole_old_tree, plan);
        plan.push(covering(start + k, start + n));
    } else {
        subproof_plan(m - k, start + k, n - k, false, plan);
        plan.push(covering(start, start + k));
    }
}

/// Every node a plan reads, once each.
pub fn plan_nodes(plan: &[ProofStep]) -> Vec<NodeId> {
    let mut nodes: Vec<NodeId> = plan.iter().flatten().copied().collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes
}

/// The proof's hashes from a plan and the nodes it read; `None` if a node is missing.
pub fn assemble(plan: &[ProofStep], node: impl Fn(NodeId) -> Option<Hash>) -> Option<Vec<Hash>> {
    plan.iter()
        .map(|step| {
            let mut hashes = step.iter().rev();
            let last = node(*hashes.next()?)?;
            hashes.try_fold(last, |acc, id| Some(node_hash(&node(*id)?, &acc)))
        })
        .collect()
}

/// Why a frontier could not be restored or extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrontierError {
    /// The stored bytes are not a frontier this code wrote (corrupt row or other format).
    #[error("stored frontier is malformed: {0}")]
    Malformed(&'static str),
    /// A u64 leaf count cannot grow further; unreachable in practice, refused rather than wrapped.
    #[error("the log is full: its size cannot exceed 2^64 - 1 entries")]
    Full,
}

/// The compact range over `[0, size)`: the roots of the perfect subtrees that cover it,
/// largest (leftmost) first. One root per set bit of `size`, so at most 64.
///
/// Appending is O(log n) and the root is computable without reading old leaves, which is
/// what lets the log be extended and verified in a single streaming pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    roots: Vec<Hash>,
}

/// First byte of [`Frontier::to_bytes`], so the stored format can evolve.
const FRONTIER_FORMAT: u8 = 1;
const FRONTIER_HEADER_LEN: usize = 1 + 8;

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves covered.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash, merging equal-sized subtrees as a binary counter carries.
    pub fn push(&mut self, leaf: Hash) -> Result<(), FrontierError> {
        self.push_noting(leaf, |_, _| {})
    }

    /// As [`push`](Self::push), and hands `completed` every subtree this leaf completes: the leaf
    /// itself (level 0), then each node a carry makes, so the writer can store them all.
    pub fn push_noting(&mut self, leaf: Hash, mut completed: impl FnMut(NodeId, Hash)) -> Result<(), FrontierError> {
        let position = self.size;
        let new_size = self.size.checked_add(1).ok_or(FrontierError::Full)?;
        completed(NodeId { level: 0, index: position }, leaf);
        let mut carry = leaf;
        let mut bits = self.size;
        let mut level = 0u8;
        while bits & 1 == 1 {
            // One root per set bit, so a set bit always has a root to merge with.
            let Some(left) = self.roots.pop() else {
                return Err(FrontierError::Malformed("fewer roots than the size needs"));
            };
            carry = node_hash(&left, &carry);
            level += 1;
            completed(NodeId { level, index: position >> level }, carry);
            bits >>= 1;
        }
        self.roots.push(carry);
        self.size = new_size;
        Ok(())
    }

    /// The frontier of a tree of `size` from its perfect subtrees' roots, as [`covering`]
    /// `(0, size)` lists them (which is how the node table stores them).
    pub fn from_roots(size: u64, roots: Vec<Hash>) -> Result<Self, FrontierError> {
        if roots.len() != size.count_ones() as usize {
            return Err(FrontierError::Malformed("number of roots does not match the size"));
        }
        Ok(Self { size, roots })
    }

    /// The Merkle Tree Hash of the covered leaves.
    pub fn root(&self) -> Hash {
        // MTH of a left-balanced tree folds its perfect subtrees from the right.
        let mut roots = self.roots.iter().rev();
        let Some(last) = roots.next() else {
            return EMPTY_ROOT;
        };
        roots.fold(*last, |acc, left| node_hash(left, &acc))
    }

    /// Serialises as: format byte (1), size (u64 big-endian), then the roots, largest first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FRONTIER_HEADER_LEN + self.roots.len() * 32);
        out.push(FRONTIER_FORMAT);
        out.extend_from_slice(&self.size.to_be_bytes());
        for root in &self.roots {
            out.extend_from_slice(root);
        }
        out
    }

    /// Restores a frontier written by [`Frontier::to_bytes`], checking the length against the size.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FrontierError> {
        let (&format, rest) = bytes.split_first().ok_or(FrontierError::Malformed("empty"))?;
        if format != FRONTIER_FORMAT {
            return Err(FrontierError::Malformed("unknown format version"));
        }
        let (size_bytes, hashes) =
            rest.split_first_chunk::<8>().ok_or(FrontierError::Malformed("too short for its size field"))?;
        let size = u64::from_be_bytes(*size_bytes);
        let expected_roots =
            usize::try_from(size.count_ones()).map_err(|_| FrontierError::Malformed("size out of range"))?;
        let (chunks, remainder) = hashes.as_chunks::<32>();
        if !remainder.is_empty() || chunks.len() != expected_roots {
            return Err(FrontierError::Malformed("number of hashes does not match the size"));
        }
        Ok(Self { size, roots: chunks.to_vec() })
    }
}

/// Serde helper: a [`Hash`](type@Hash) as a lowercase hex string, for JSON that people read.
pub mod hash_hex {
    use super::{Deserialize, Deserializer, Hash, Serializer};

    pub fn serialize<S: Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Hash, D::Error> {
        let text = <&str>::deserialize(deserializer)?;
        let mut hash = [0u8; 32];
        hex::decode_to_slice(text, &mut hash).map_err(|_| serde::de::Error::custom("expected 64 hex digits"))?;
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(hex_str: &str) -> Hash {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_str, &mut out).expect("test vector is 32 bytes of hex");
        out
    }

    // The classic CT test tree. Leaf inputs, node hashes and roots are from
    // transparency-dev/merkle testonly/constants.go (LeafInputs, NodeHashes, RootHashes);
    // the inclusion and consistency vectors are from transparency-dev/merkle
    // proof/verify_test.go (inclusionProofs, consistencyProofs; their leaf numbers are 1-based).
    const LEAF_INPUTS: [&str; 8] =
        ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];

    /// Roots for tree sizes 0..=8.
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// Leaf hashes (level 0 of NodeHashes).
    const LEAF_HASHES: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ];

    /// (0-based index, tree size, proof).
    const INCLUSION_VECTORS: [(u64, usize, &[&str]); 4] = [
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];

    /// (old size, new size, proof).
    const CONSISTENCY_VECTORS: [(u64, usize, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];

    fn vector_leaves() -> Vec<Hash> {
        LEAF_INPUTS.iter().map(|input| leaf_hash(&hex::decode(input).expect("test vector is hex"))).collect()
    }

    fn hashes(hex_list: &[&str]) -> Vec<Hash> {
        hex_list.iter().map(|s| h(s)).collect()
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT, <[u8; 32]>::from(Sha256::digest(b"")));
        assert_eq!(root_of(&[]), EMPTY_ROOT);
        assert_eq!(Frontier::new().root(), EMPTY_ROOT);
    }

    #[test]
    fn leaf_hashes_match_the_published_vectors() {
        assert_eq!(vector_leaves(), hashes(&LEAF_HASHES));
    }

    #[test]
    fn roots_match_the_published_vectors_for_every_size() {
        let leaves = vector_leaves();
        for (size, expected) in ROOTS.iter().enumerate() {
            assert_eq!(root_of(&leaves[..size]), h(expected), "size {size}");
        }
    }

    #[test]
    fn frontier_roots_match_the_published_vectors_for_every_size() {
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), h(ROOTS[0]));
        for (leaf, expected) in vector_leaves().into_iter().zip(&ROOTS[1..]) {
            frontier.push(leaf).expect("not full");
            assert_eq!(frontier.root(), h(expected), "size {}", frontier.size());
        }
    }

    #[test]
    fn inclusion_proofs_match_the_published_vectors() {
        let leaves = vector_leaves();
        for (index, size, expected) in INCLUSION_VECTORS {
            let tree = &leaves[..size];
            let proof = inclusion_proof(tree, index).expect("index in range");
            assert_eq!(proof, hashes(expected), "index {index} size {size}");
            let leaf = &tree[usize::try_from(index).expect("small")];
            verify_inclusion(leaf, index, to_u64(size), &proof, &h(ROOTS[size])).expect("published proof verifies");
        }
    }

    #[test]
    fn consistency_proofs_match_the_published_vectors() {
        let leaves = vector_leaves();
        for (old, new, expected) in CONSISTENCY_VECTORS {
            let proof = consistency_proof(&leaves[..new], old).expect("old <= new");
            assert_eq!(proof, hashes(expected), "{old} -> {new}");
            let old_root = h(ROOTS[usize::try_from(old).expect("small")]);
            verify_consistency(old, to_u64(new), &old_root, &h(ROOTS[new]), &proof).expect("published proof verifies");
        }
    }

    #[test]
    fn published_inclusion_proofs_fail_when_tampered() {
        let leaves = vector_leaves();
        for (index, size, expected) in INCLUSION_VECTORS {
            let proof = hashes(expected);
            let root = h(ROOTS[size]);
            let size = to_u64(size);
            let leaf = leaves[usize::try_from(index).expect("small")];
            let fails = |leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash| {
                verify_inclusion(leaf, index, size, proof, root).is_err()
            };
            assert!(fails(&leaf, index + 1, size, &proof, &root));
            assert!(fails(&leaf, index ^ 2, size, &proof, &root));
            assert!(fails(&leaf, index, size * 2, &proof, &root));
            assert!(fails(&leaf, index, size / 2, &proof, &root));
            assert!(fails(&EMPTY_ROOT, index, size, &proof, &root));
            assert!(fails(&leaf, index, size, &proof, &EMPTY_ROOT));
            let mut longer = proof.clone();
            longer.push(root);
            assert!(fails(&leaf, index, size, &longer, &root));
            assert!(fails(&leaf, index, size, &proof[..proof.len() - 1], &root));
        }
    }

    #[test]
    fn consistency_edge_cases_follow_the_rfc_conventions() {
        let a = h(ROOTS[1]);
        let b = h(ROOTS[2]);
        // Old size 0: only the empty tree's root, with an empty proof.
        assert_eq!(verify_consistency(0, 0, &EMPTY_ROOT, &EMPTY_ROOT, &[]), Ok(()));
        assert_eq!(verify_consistency(0, 5, &EMPTY_ROOT, &a, &[]), Ok(()));
        assert_eq!(verify_consistency(0, 5, &a, &b, &[]), Err(ProofError::OldRootMismatch));
        assert_eq!(verify_consistency(0, 5, &EMPTY_ROOT, &a, &[a]), Err(ProofError::WrongProofLength));
        // Equal sizes: equal roots, empty proof.
        assert_eq!(verify_consistency(1, 1, &a, &a, &[]), Ok(()));
        assert_eq!(verify_consistency(1, 1, &a, &b, &[]), Err(ProofError::RootMismatch));
        assert_eq!(verify_consistency(1, 1, &a, &a, &[a]), Err(ProofError::WrongProofLength));
        // Growing needs a proof; shrinking is never consistent.
        assert_eq!(verify_consistency(1, 2, &a, &b, &[]), Err(ProofError::WrongProofLength));
        assert_eq!(
            verify_consistency(2, 1, &b, &a, &[]),
            Err(ProofError::OldSizeTooLarge { old_size: 2, new_size: 1 })
        );
    }

    #[test]
    fn proofs_refuse_indexes_and_sizes_outside_the_tree() {
        let leaves = vector_leaves();
        assert_eq!(inclusion_proof(&leaves, 8), Err(ProofError::IndexOutOfRange { index: 8, size: 8 }));
        assert!(inclusion_proof(&leaves, u64::MAX).is_err());
        assert!(inclusion_proof(&[], 0).is_err());
        assert!(consistency_proof(&leaves, 9).is_err());
        assert!(consistency_proof(&leaves, u64::MAX).is_err());
        assert!(verify_inclusion(&leaves[0], 0, 0, &[], &EMPTY_ROOT).is_err());
        assert!(verify_inclusion(&leaves[0], u64::MAX, u64::MAX, &[], &EMPTY_ROOT).is_err());
    }

    #[test]
    fn frontier_bytes_round_trip() {
        let mut frontier = Frontier::new();
        for leaf in vector_leaves().into_iter().take(7) {
            frontier.push(leaf).expect("not full");
        }
        let restored = Frontier::from_bytes(&frontier.to_bytes()).expect("own bytes parse");
        assert_eq!(restored, frontier);
        assert_eq!(restored.root(), h(ROOTS[7]));
    }

    #[test]
    fn frontier_from_bytes_rejects_lengths_that_do_not_match_the_size() {
        let mut frontier = Frontier::new();
        for leaf in vector_leaves().into_iter().take(5) {
            frontier.push(leaf).expect("not full");
        }
        let bytes = frontier.to_bytes();
        assert!(Frontier::from_bytes(&[]).is_err());
        assert!(Frontier::from_bytes(&bytes[..5]).is_err());
        assert!(Frontier::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(Frontier::from_bytes(&bytes[..bytes.len() - 32]).is_err());
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0; 32]);
        assert!(Frontier::from_bytes(&longer).is_err());
        let mut other_format = bytes;
        other_format[0] = 9;
        assert!(Frontier::from_bytes(&other_format).is_err());
    }

    #[test]
    fn a_full_frontier_refuses_to_grow_instead_of_wrapping() {
        let mut bytes = vec![FRONTIER_FORMAT];
        bytes.extend_from_slice(&u64::MAX.to_be_bytes());
        bytes.extend(std::iter::repeat_n(7u8, 64 * 32));
        let mut frontier = Frontier::from_bytes(&bytes).expect("valid shape");
        assert_eq!(frontier.push(EMPTY_ROOT), Err(FrontierError::Full));
        assert_eq!(frontier.size(), u64::MAX);
    }

    #[test]
    fn hashes_serialise_as_hex_strings() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Wrapper(#[serde(with = "hash_hex")] Hash);
        let json = serde_json::to_string(&Wrapper(EMPTY_ROOT)).expect("serialises");
        assert_eq!(json, format!("\"{}\"", ROOTS[0]));
        let back: Wrapper = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, Wrapper(EMPTY_ROOT));
        assert!(serde_json::from_str::<Wrapper>("\"abc\"").is_err());
    }

    /// Every node the writer would store for `leaves`, as the frontier hands them over.
    fn stored_nodes(leaves: &[Hash]) -> std::collections::HashMap<NodeId, Hash> {
        let mut nodes = std::collections::HashMap::new();
        let mut frontier = Frontier::new();
        for leaf in leaves {
            frontier.push_noting(*leaf, |id, hash| assert!(nodes.insert(id, hash).is_none(), "{id:?} twice")).unwrap();
        }
        nodes
    }

    /// Leaves 0..size, each a distinct hash.
    fn numbered_leaves(size: u64) -> Vec<Hash> {
        (0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn every_stored_node_is_the_root_of_its_subtree() {
        let leaves = numbered_leaves(300);
        let nodes = stored_nodes(&leaves);
        assert_eq!(nodes.len(), 300 + 150 + 75 + 37 + 18 + 9 + 4 + 2 + 1, "every complete subtree, once");
        for (id, hash) in &nodes {
            let start = usize::try_from(id.index << id.level).unwrap();
            let end = start + (1usize << id.level);
            assert_eq!(*hash, root_of(&leaves[start..end]), "{id:?}");
        }
    }

    #[test]
    fn proofs_from_stored_nodes_equal_proofs_from_every_leaf_for_sizes_up_to_300() {
        let leaves = numbered_leaves(300);
        let nodes = stored_nodes(&leaves);
        let read = |id: NodeId| nodes.get(&id).copied();
        for size in 1..=300u64 {
            let tree = &leaves[..usize::try_from(size).unwrap()];
            // Several indexes per size: both ends, the middle, and around the split point.
            let split = if size >= 2 { split_point_u64(size) } else { 0 };
            let indexes = [0, size - 1, size / 2, split.saturating_sub(1), split.min(size - 1), size / 3];
            for index in indexes {
                let plan = inclusion_plan(index, size).unwrap();
                assert_eq!(assemble(&plan, read).unwrap(), inclusion_proof(tree, index).unwrap(), "{index} in {size}");
                assert!(plan_nodes(&plan).len() <= 2 * 64 - size.leading_zeros() as usize * 2 + 2, "O(log n) reads");
            }
            for old in [0, 1, size / 2, size.saturating_sub(1), size, split, split + 1] {
                if old > size {
                    continue;
                }
                let plan = consistency_plan(old, size).unwrap();
                assert_eq!(assemble(&plan, read).unwrap(), consistency_proof(tree, old).unwrap(), "{old} -> {size}");
            }
        }
    }

    #[test]
    fn a_proof_reads_logarithmically_many_nodes() {
        // A 4-million-event log: the proofs read tens of nodes, not millions of leaves.
        let size = 4_000_000u64;
        for index in [0, 1, 1_234_567, size / 2, size - 2, size - 1] {
            let reads = plan_nodes(&inclusion_plan(index, size).unwrap()).len();
            assert!(reads <= 44, "{reads} nodes for {index}");
        }
        for old in [1, 3, 1_048_576, 2_999_999, size - 1] {
            let reads = plan_nodes(&consistency_plan(old, size).unwrap()).len();
            assert!(reads <= 66, "{reads} nodes for {old}");
        }
    }

    #[test]
    fn a_missing_node_means_no_proof_rather_than_a_wrong_one() {
        let leaves = numbered_leaves(10);
        let mut nodes = stored_nodes(&leaves);
        let plan = inclusion_plan(3, 10).unwrap();
        nodes.remove(&plan[1][0]);
        assert_eq!(assemble(&plan, |id| nodes.get(&id).copied()), None);
        assert!(inclusion_plan(10, 10).is_err());
        assert!(consistency_plan(11, 10).is_err());
    }

    #[test]
    fn a_frontier_is_rebuilt_from_the_stored_roots_of_its_prefix() {
        let leaves = numbered_leaves(77);
        let nodes = stored_nodes(&leaves);
        for size in 0..=77u64 {
            let roots = covering(0, size).iter().map(|id| nodes[id]).collect();
            let frontier = Frontier::from_roots(size, roots).unwrap();
            assert_eq!(frontier.root(), root_of(&leaves[..usize::try_from(size).unwrap()]));
        }
        assert!(Frontier::from_roots(3, vec![EMPTY_ROOT]).is_err());
    }

    fn arb_leaves(max: usize) -> impl Strategy<Value = Vec<Hash>> {
        prop::collection::vec(any::<[u8; 32]>(), 0..=max)
    }

    fn flip(hash: &Hash, bit: usize) -> Hash {
        let mut out = *hash;
        out[(bit / 8) % 32] ^= 1 << (bit % 8);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn frontier_root_equals_reference_root_for_every_prefix(leaves in arb_leaves(130)) {
            let mut frontier = Frontier::new();
            prop_assert_eq!(frontier.root(), root_of(&[]));
            for (i, leaf) in leaves.iter().enumerate() {
                frontier.push(*leaf).expect("not full");
                prop_assert_eq!(frontier.root(), root_of(&leaves[..=i]));
                let restored = Frontier::from_bytes(&frontier.to_bytes()).expect("round trip");
                prop_assert_eq!(&restored, &frontier);
            }
        }

        #[test]
        fn frontier_from_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(mut frontier) = Frontier::from_bytes(&bytes) {
                let _ = frontier.root();
                let _ = frontier.push(EMPTY_ROOT);
            }
        }

        #[test]
        fn verifiers_never_panic_on_arbitrary_input(
            a in any::<u64>(),
            b in any::<u64>(),
            proof in prop::collection::vec(any::<[u8; 32]>(), 0..70),
        ) {
            let _ = verify_inclusion(&EMPTY_ROOT, a, b, &proof, &EMPTY_ROOT);
            let _ = verify_consistency(a, b, &EMPTY_ROOT, &EMPTY_ROOT, &proof);
            let _ = verify_consistency(a % 1024, b % 1024, &EMPTY_ROOT, &EMPTY_ROOT, &proof);
        }

        #[test]
        fn every_inclusion_proof_verifies_and_any_flipped_bit_fails(
            leaves in arb_leaves(70),
            bit in 0usize..256,
        ) {
            let root = root_of(&leaves);
            let size = to_u64(leaves.len());
            for (i, leaf) in leaves.iter().enumerate() {
                let index = to_u64(i);
                let proof = inclusion_proof(&leaves, index).expect("in range");
                prop_assert_eq!(verify_inclusion(leaf, index, size, &proof, &root), Ok(()));
                prop_assert!(verify_inclusion(&flip(leaf, bit), index, size, &proof, &root).is_err());
                prop_assert!(verify_inclusion(leaf, index, size, &proof, &flip(&root, bit)).is_err());
                for p in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[p] = flip(&bad[p], bit);
                    prop_assert!(verify_inclusion(leaf, index, size, &bad, &root).is_err());
                }
            }
        }

        #[test]
        fn every_consistency_proof_verifies_and_any_flipped_bit_fails(
            leaves in arb_leaves(70),
            bit in 0usize..256,
        ) {
            let new_root = root_of(&leaves);
            let new_size = to_u64(leaves.len());
            for old in 0..=leaves.len() {
                let old_size = to_u64(old);
                let old_root = root_of(&leaves[..old]);
                let proof = consistency_proof(&leaves, old_size).expect("old <= new");
                prop_assert_eq!(
                    verify_consistency(old_size, new_size, &old_root, &new_root, &proof),
                    Ok(())
                );
                prop_assert!(
                    verify_consistency(old_size, new_size, &flip(&old_root, bit), &new_root, &proof)
                        .is_err()
                );
                if old > 0 {
                    // A size-0 tree commits to nothing, so only its (fixed) old root can be wrong.
                    prop_assert!(
                        verify_consistency(old_size, new_size, &old_root, &flip(&new_root, bit), &proof)
                            .is_err()
                    );
                }
                for p in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[p] = flip(&bad[p], bit);
                    prop_assert!(
                        verify_consistency(old_size, new_size, &old_root, &new_root, &bad).is_err()
                    );
                }
            }
        }
    }
}
