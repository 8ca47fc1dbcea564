//! Leaf format v2: a leaf commits to what it must not reveal. An inclusion proof hands the
//! leaf's exact bytes to an IG officer, so anything in them reaches every organisation in the
//! event's scope. The scope (which organisations an event concerns, a shielded holder among
//! them), which holding each match reached, the pseudonyms a search asked and any free text
//! are therefore kept as salted commitments: `blake3(label ‖ seq ‖ salt ‖ value)`, the salt a
//! keyed hash of the same under a key only the service holds (derived from the audit signing
//! key). Nobody can test a guess against a commitment; the service, holding the key,
//! recomputes every one from the rows stored beside the leaf (`audit verify`); and an
//! organisation given its salt can check its own membership of a scope.

use std::fmt;

/// The version field of every new leaf. Leaves without one are v1 (scope in clear).
pub const LEAF_VERSION: u64 = 2;

const KEY_CONTEXT: &str = "child-locator audit leaf v2 commitments";

/// What each commitment commits to, so one can never stand for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    /// One organisation in the event's scope.
    Scope,
    /// One match a lookup handed out: which holding, whose, how strong, shielded or not.
    Match,
    /// The exact-form pseudonyms a search asked (all of them, sorted).
    Asked,
    /// Free text a person typed (kept beside the leaf, erasable).
    FreeText,
}

impl Sealed {
    fn label(self) -> &'static [u8] {
        match self {
            Sealed::Scope => b"scope",
            Sealed::Match => b"match",
            Sealed::Asked => b"asked",
            Sealed::FreeText => b"free-text",
        }
    }
}

/// The service's key for leaf commitments. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct LeafKey([u8; 32]);

impl fmt::Debug for LeafKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LeafKey(..)")
    }
}

impl LeafKey {
    /// Derived from the audit signing key's secret, so no new file needs keeping.
    pub fn derive(secret: &[u8; 32]) -> LeafKey {
        LeafKey(blake3::derive_key(KEY_CONTEXT, secret))
    }

    /// The salt for one value at one position: what an organisation is given to open its own
    /// membership of a scope.
    pub fn salt(&self, what: Sealed, seq: u64, value: &[u8]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        framed(&mut h, what, seq, value);
        *h.finalize().as_bytes()
    }

    /// The commitment (hex) the leaf holds for `value`.
    pub fn commit(&self, what: Sealed, seq: u64, value: &[u8]) -> String {
        commitment(what, seq, &self.salt(what, seq, value), value)
    }
}

/// Recomputes a commitment from an opening (the salt and the value): anyone given both can
/// check them against a leaf without the service's key.
pub fn commitment(what: Sealed, seq: u64, salt: &[u8; 32], value: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(salt);
    framed(&mut h, what, seq, value);
    h.finalize().to_hex().to_string()
}

fn framed(h: &mut blake3::Hasher, what: Sealed, seq: u64, value: &[u8]) {
    h.update(what.label());
    h.update(&[0]);
    h.update(&seq.to_be_bytes());
    h.update(&(value.len() as u64).to_be_bytes());
    h.update(value);
}

/// The bytes a scope member is committed as.
pub fn scope_value(org_id: i64) -> [u8; 8] {
    org_id.to_be_bytes()
}

/// The bytes a match is committed as: every field a view reads from `lookup_matches`.
pub fn match_value(
    match_id: &str,
    holding_id: i64,
    holder_org_id: i64,
    tier: &str,
    basis: &str,
    shielded: bool,
) -> Vec<u8> {
    format!("{match_id}\n{holding_id}\n{holder_org_id}\n{tier}\n{basis}\n{}", u8::from(shielded)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commitment_opens_with_its_salt_and_not_with_a_guess() {
        let key = LeafKey::derive(&[7; 32]);
        let c = key.commit(Sealed::Scope, 5, &scope_value(3));
        let salt = key.salt(Sealed::Scope, 5, &scope_value(3));
        assert_eq!(commitment(Sealed::Scope, 5, &salt, &scope_value(3)), c);
        assert_ne!(commitment(Sealed::Scope, 5, &[0; 32], &scope_value(3)), c, "no salt, no test of a guess");
        assert_ne!(key.commit(Sealed::Scope, 6, &scope_value(3)), c, "unlinkable across events");
        assert_ne!(LeafKey::derive(&[8; 32]).commit(Sealed::Scope, 5, &scope_value(3)), c);
        assert!(!format!("{key:?}").contains('7'));
    }
}
