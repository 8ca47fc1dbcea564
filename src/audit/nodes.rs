//! Proofs from the stored subtree nodes: an inclusion or consistency proof reads O(log n) node
//! rows (`audit_nodes`), never the whole log. Also the resumable build of the nodes of a trail
//! written before they were stored.

use super::merkle::{
    Frontier, Hash, NodeId, ProofError, ProofStep, assemble, consistency_plan, consistency_proof, covering,
    inclusion_plan, inclusion_proof, plan_nodes,
};
use crate::store::{Store, StoreError};

/// Leaves whose nodes one backfill transaction builds: short enough that the writer, which
/// waits for the head's lock meanwhile, is held up for milliseconds.
const BACKFILL_PAGE: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ProofSourceError {
    /// The sizes or index asked cannot have a proof.
    #[error("{0}")]
    Proof(#[from] ProofError),
    #[error("cannot read the audit log: {0}")]
    Store(#[from] StoreError),
}

/// The RFC 9162 inclusion proof of the leaf at `index` in the tree of `size` leaves.
pub async fn inclusion_proof_at(store: &Store, index: u64, size: u64) -> Result<Vec<Hash>, ProofSourceError> {
    let plan = inclusion_plan(index, size)?;
    match from_nodes(store, &plan, size).await? {
        Some(proof) => Ok(proof),
        None => Ok(inclusion_proof(&all_leaves(store, size).await?, index)?),
    }
}

/// The RFC 9162 consistency proof from the tree of `old_size` leaves to the tree of `size`.
pub async fn consistency_proof_at(store: &Store, old_size: u64, size: u64) -> Result<Vec<Hash>, ProofSourceError> {
    let plan = consistency_plan(old_size, size)?;
    match from_nodes(store, &plan, size).await? {
        Some(proof) => Ok(proof),
        None => Ok(consistency_proof(&all_leaves(store, size).await?, old_size)?),
    }
}

/// The proof from stored nodes, or `None` while the nodes of this tree are not all built yet
/// (an older trail during its backfill), when the caller falls back to every leaf hash.
async fn from_nodes(store: &Store, plan: &[ProofStep], size: u64) -> Result<Option<Vec<Hash>>, StoreError> {
    if store.audit_head().await?.nodes_size < size {
        return Ok(None);
    }
    let wanted = plan_nodes(plan);
    let read = store.audit_nodes(&wanted).await?;
    let proof = assemble(plan, |id| {
        read.iter().find(|(found, _)| *found == id).and_then(|(_, hash)| <Hash>::try_from(hash.as_slice()).ok())
    });
    if proof.is_none() {
        // A node below the covered size is missing: serve the slow proof rather than none.
        tracing::warn!("an audit node below the covered size is missing; proving from every leaf");
    }
    Ok(proof)
}

/// Every leaf hash of the tree of `size`: the slow path, for trails whose nodes are not built.
async fn all_leaves(store: &Store, size: u64) -> Result<Vec<Hash>, StoreError> {
    Ok(store
        .audit_leaf_hashes(size)
        .await?
        .iter()
        .map(|l| <[u8; 32]>::try_from(l.as_slice()).unwrap_or([0; 32]))
        .collect())
}

/// Builds the nodes of every leaf that has none, a page a transaction, until the nodes cover
/// the whole log (the writer keeps them in step from then on). Safe to interrupt and rerun,
/// and to run beside writers on other nodes. Answers how many leaves it covered.
pub async fn backfill(store: &Store) -> Result<u64, StoreError> {
    let mut built = 0;
    loop {
        let mut page_leaves = 0;
        let (covered, size) = store
            .backfill_audit_nodes(
                BACKFILL_PAGE,
                |from| covering(0, from),
                |from, roots, leaves| {
                    page_leaves = leaves.len() as u64;
                    nodes_of_page(from, &roots, &leaves)
                },
            )
            .await?
            .map_err(|e| StoreError::Inconsistent(e.to_string()))?;
        built += page_leaves;
        if covered >= size {
            return Ok(built);
        }
    }
}

/// The nodes that leaves `from..` complete, given the stored roots of the first `from`.
fn nodes_of_page(from: u64, roots: &[Vec<u8>], leaves: &[Vec<u8>]) -> Result<Vec<(NodeId, Hash)>, String> {
    let hash = |bytes: &Vec<u8>| <Hash>::try_from(bytes.as_slice()).map_err(|_| "a stored hash is not 32 bytes");
    let roots = roots.iter().map(hash).collect::<Result<Vec<_>, _>>()?;
    let mut frontier = Frontier::from_roots(from, roots).map_err(|e| e.to_string())?;
    let mut nodes = Vec::with_capacity(leaves.len() * 2);
    for leaf in leaves {
        frontier.push_noting(hash(leaf)?, |id, hash| nodes.push((id, hash))).map_err(|e| e.to_string())?;
    }
    Ok(nodes)
}
