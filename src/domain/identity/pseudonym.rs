//! Pseudonyms: keyed BLAKE3 hashes of match-key material under the index secret, with one
//! derived subkey per (role, key kind) so no two key spaces can ever meet.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::keys::{KeyKind, MatchKey};
use super::subject::SubjectRole;

/// Prefix of every subkey's derivation context. Changing it changes every pseudonym: it is
/// versioned by date so a future scheme can run beside this one during re-keying.
const SUBKEY_CONTEXT: &str = "child-locator 2026-11 match key v1";
/// Context for the public fingerprint of a secret; distinct from every subkey context.
const KEY_ID_CONTEXT: &str = "child-locator 2026-11 index secret fingerprint v1";

/// The 32-byte index secret. Whoever holds it can test guesses against pseudonyms, so it
/// never prints and never leaves the key manager.
#[derive(Clone, PartialEq, Eq)]
pub struct IndexSecret([u8; 32]);

impl IndexSecret {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret's public fingerprint (see `KeyId`).
    pub fn key_id(&self) -> KeyId {
        let digest = blake3::derive_key(KEY_ID_CONTEXT, &self.0);
        KeyId([digest[0], digest[1], digest[2], digest[3]])
    }
}

impl fmt::Debug for IndexSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IndexSecret(***)")
    }
}

/// A short public fingerprint of an index secret: 8 hex characters of a BLAKE3 key
/// derivation over it. It names which secret made a pseudonym; 32 bits of a one-way
/// function reveal nothing usable about a 256-bit secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 4]);

impl KeyId {
    /// Parses the 8-hex-character form.
    pub fn parse(hex: &str) -> Option<Self> {
        let bytes = hex.as_bytes();
        if bytes.len() != 8 {
            return None;
        }
        let mut out = [0u8; 4];
        for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let text = std::str::from_utf8(pair).ok()?;
            *slot = u8::from_str_radix(text, 16).ok()?;
        }
        Some(Self(out))
    }

    pub fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        KeyId::parse(&text).ok_or_else(|| serde::de::Error::custom("key id must be 8 hex digits"))
    }
}

/// A stored pseudonym: the first 16 bytes of a keyed BLAKE3 hash of a key's material.
/// 128 bits keeps accidental collisions out of reach for any realistic index size.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pseudonym([u8; 16]);

impl Pseudonym {
    /// Bytes in a pseudonym; lists of them are stored end to end.
    pub const LEN: usize = 16;

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// What the index's table of keys stores of this pseudonym (see `IndexKey`).
    pub fn index_key(&self) -> IndexKey {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&self.0[..8]);
        IndexKey(i64::from_be_bytes(prefix))
    }
}

/// What the index's table of keys stores of a pseudonym: its first 8 bytes, big-endian, as a
/// signed integer. An integer key makes each stored row about a third smaller than the 16-byte
/// blob and compares in one instruction, and a sync's cost is its B-tree inserts
/// (docs/performance.md, "Integer index keys"). 64 bits is still out of reach of accidental
/// collisions at national scale: 300 million stored keys (10 million holdings) give an expected
/// 0.002 colliding pairs in the whole index, and a lookup's 100 keys meet a stranger's key by
/// chance once in 600 million lookups. Holdings' key lists, the prefilter's input and the audit
/// trail keep the whole 16-byte pseudonym.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct IndexKey(pub i64);

impl IndexKey {
    /// The index key of a pseudonym given as bytes (a key list's entry): `None` if shorter than 8.
    pub fn of_bytes(pseudonym: &[u8]) -> Option<IndexKey> {
        let prefix: [u8; 8] = pseudonym.get(..8)?.try_into().ok()?;
        Some(IndexKey(i64::from_be_bytes(prefix)))
    }

    /// The index keys of a holding's key list (its pseudonyms end to end, `Pseudonym::LEN`
    /// bytes each, as the store writes it).
    pub fn all_in_key_list(list: &[u8]) -> impl Iterator<Item = IndexKey> + '_ {
        list.chunks_exact(Pseudonym::LEN).filter_map(IndexKey::of_bytes)
    }
}

impl fmt::Debug for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A pseudonym is not an identifier without the secret; hex helps trace a stored row.
        write!(f, "Pseudonym({})", self.to_hex())
    }
}

/// Turns match keys into pseudonyms under one index secret.
///
/// It accepts only `MatchKey`s, which only this module builds, so a single name or date can
/// never be hashed on its own through it.
#[derive(Clone)]
pub struct Pseudonymiser {
    /// `subkeys[role][kind id - 1]`: one independent key per (role, kind).
    subkeys: [[[u8; 32]; KeyKind::ALL.len()]; SubjectRole::ALL.len()],
    key_id: KeyId,
}

impl fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pseudonymiser").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl Pseudonymiser {
    /// Derives every subkey up front: `blake3::derive_key("child-locator 2026-11 match key v1
    /// <role> <kind>", secret)`. A pseudonym then costs one keyed hash.
    pub fn new(secret: &IndexSecret) -> Self {
        let mut subkeys = [[[0u8; 32]; KeyKind::ALL.len()]; SubjectRole::ALL.len()];
        for (r, role) in SubjectRole::ALL.into_iter().enumerate() {
            for (k, kind) in KeyKind::ALL.into_iter().enumerate() {
                let context = format!("{SUBKEY_CONTEXT} {} {}", role.as_str(), kind.name());
                subkeys[r][k] = blake3::derive_key(&context, &secret.0);
            }
        }
        Self { subkeys, key_id: secret.key_id() }
    }

    /// The pseudonym of one match key.
    pub fn pseudonym(&self, key: &MatchKey) -> Pseudonym {
        // `KeyKind::ALL` is in id order, so its index is the kind's position; the role is read
        // back from the material, which always names one.
        let role = key.role().unwrap_or(SubjectRole::Child);
        let r = SubjectRole::ALL.iter().position(|x| *x == role).unwrap_or(0);
        let k = KeyKind::ALL.iter().position(|x| *x == key.kind()).unwrap_or(0);
        let hash = blake3::keyed_hash(&self.subkeys[r][k], key.material());
        let mut out = [0u8; 16];
        out.copy_from_slice(&hash.as_bytes()[..16]);
        Pseudonym(out)
    }

    /// Fingerprint of the secret in use, stored beside pseudonyms to support re-keying.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }
}
