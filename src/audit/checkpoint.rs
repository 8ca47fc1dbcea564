//! Signed checkpoints of the audit log in the C2SP tlog-checkpoint / signed-note text form,
//! and the Ed25519 key that signs them (kept in a PKCS#8 PEM file readable only by its owner).
//!
//! A note looks like this; the signed bytes are exactly the body, up to and including the
//! newline after the timestamp line (the blank line and the signature lines are not signed):
//!
//! ```text
//! audit.child-locator.example
//! 42
//! <base64 of the 32-byte RFC 9162 root>
//! timestamp-ms 1714000000000
//!
//! — audit.child-locator.example <base64 of key ID (4 bytes) ‖ Ed25519 signature (64 bytes)>
//! ```
//!
//! The key ID is SHA-256(origin ‖ 0x0A ‖ 0x01 ‖ public key)[..4], as C2SP signed-note
//! recommends for Ed25519, and the key name is the origin.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::merkle::{Hash, hash_hex};

/// C2SP signed-note signature type byte for Ed25519.
const ED25519_SIGNATURE_TYPE: u8 = 0x01;
/// Starts every signature line: em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// Label of the extension line that carries the checkpoint's time.
const TIMESTAMP_LABEL: &str = "timestamp-ms ";
/// Origins are key names too; bounded so a hostile note cannot be huge.
const MAX_ORIGIN_LEN: usize = 255;
/// Bounds the work done on a note from outside; real ones are a few hundred bytes.
const MAX_NOTE_LEN: usize = 64 * 1024;
/// A PKCS#8 PEM Ed25519 key is about 120 bytes; anything far larger is not our key file.
const MAX_KEY_FILE_LEN: usize = 16 * 1024;
/// DER prefix of a SubjectPublicKeyInfo holding an Ed25519 key (RFC 8410), before the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// A tree head at a moment: what a signed checkpoint commits to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The log's identity and the key name; see [`Checkpoint::new`] for what is allowed.
    pub origin: String,
    pub tree_size: u64,
    #[serde(with = "hash_hex")]
    pub root_hash: Hash,
    /// Milliseconds since the Unix epoch when the checkpoint was made.
    pub timestamp_ms: i64,
}

/// Why a checkpoint could not be written, read or verified.
///
/// Messages never echo note text: a malformed note may hold anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The origin is also the key name and a line of the note, so it must fit on one.
    #[error("origin must be 1 to {MAX_ORIGIN_LEN} bytes with no spaces, '+' or control characters")]
    InvalidOrigin,
    /// The text is not a checkpoint note in the form this module writes.
    #[error("checkpoint note is malformed: {0}")]
    Malformed(&'static str),
    /// The note carries no signature under its own origin's name.
    #[error("checkpoint note has no signature from its origin's key")]
    NoSignature,
    /// Signed by some other key (for example before a key rotation): not this key's word.
    #[error("checkpoint was signed by a different key (key ID {found}, expected {expected})")]
    KeyMismatch { expected: String, found: String },
    /// The signature does not cover this body under this key: forged or altered.
    #[error("checkpoint signature does not verify")]
    BadSignature,
}

impl Checkpoint {
    /// A checkpoint whose origin can be written as a note line and a key name.
    pub fn new(
        origin: impl Into<String>,
        tree_size: u64,
        root_hash: Hash,
        timestamp_ms: i64,
    ) -> Result<Self, CheckpointError> {
        let checkpoint = Self { origin: origin.into(), tree_size, root_hash, timestamp_ms };
        check_origin(&checkpoint.origin)?;
        Ok(checkpoint)
    }

    /// The note body: exactly the bytes that are signed.
    pub fn body(&self) -> Result<String, CheckpointError> {
        check_origin(&self.origin)?;
        Ok(self.render_body())
    }

    /// The body without the origin check, for checkpoints already known to be valid.
    fn render_body(&self) -> String {
        format!(
            "{}\n{}\n{}\n{TIMESTAMP_LABEL}{}\n",
            self.origin,
            self.tree_size,
            BASE64.encode(self.root_hash),
            self.timestamp_ms
        )
    }

    /// Parses a body in exactly the canonical form [`Checkpoint::body`] writes.
    fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let lines = body.strip_suffix('\n').ok_or(CheckpointError::Malformed("body does not end with a newline"))?;
        let mut lines = lines.split('\n');
        let mut next = |what: &'static str| lines.next().ok_or(CheckpointError::Malformed(what));
        let origin = next("missing origin line")?;
        let size = next("missing tree size line")?;
        let root = next("missing root hash line")?;
        let timestamp = next("missing timestamp line")?;
        if lines.next().is_some() {
            return Err(CheckpointError::Malformed("unexpected extra body lines"));
        }

        let tree_size =
            parse_canonical::<u64>(size).ok_or(CheckpointError::Malformed("tree size is not a canonical decimal"))?;
        let root_hash = BASE64
            .decode(root)
            .ok()
            .and_then(|bytes| Hash::try_from(bytes).ok())
            .ok_or(CheckpointError::Malformed("root hash is not 32 bytes of base64"))?;
        let timestamp_ms = timestamp
            .strip_prefix(TIMESTAMP_LABEL)
            .and_then(parse_canonical::<i64>)
            .ok_or(CheckpointError::Malformed("timestamp line is not canonical"))?;
        let checkpoint = Self::new(origin, tree_size, root_hash, timestamp_ms)?;
        // Only one text may stand for a checkpoint, so the signed bytes are never ambiguous.
        if checkpoint.body()? != body {
            return Err(CheckpointError::Malformed("body is not in canonical form"));
        }
        Ok(checkpoint)
    }
}

/// Parses a number only from the digits its `Display` would print (no '+', no leading zeros).
fn parse_canonical<T: std::str::FromStr + ToString>(text: &str) -> Option<T> {
    let value = text.parse::<T>().ok()?;
    (value.to_string() == text).then_some(value)
}

fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    let fits = !origin.is_empty()
        && origin.len() <= MAX_ORIGIN_LEN
        && !origin.chars().any(|c| c.is_whitespace() || c.is_control() || c == '+');
    if fits { Ok(()) } else { Err(CheckpointError::InvalidOrigin) }
}

/// C2SP signed-note key ID: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[..4].
fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', ED25519_SIGNATURE_TYPE])
        .chain_update(key.as_bytes())
        .finalize();
    let mut id = [0u8; 4];
    id.copy_from_slice(&digest[..4]);
    id
}

/// A checkpoint with the log key's Ed25519 signature over its note body.
///
/// Made only by [`AuditSigningKey::sign`] or [`SignedCheckpoint::from_note`], so its origin
/// is always valid and its note always writable. Holding one proves nothing until
/// [`SignedCheckpoint::verify`] passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    checkpoint: Checkpoint,
    /// Which key signed, so a wrong key is reported as such rather than as a forgery.
    key_id: [u8; 4],
    signature: [u8; 64],
}

impl SignedCheckpoint {
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The C2SP key ID of the key that claims to have signed.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// The full signed note: body, blank line, one signature line.
    pub fn to_note(&self) -> String {
        let mut blob = Vec::with_capacity(4 + 64);
        blob.extend_from_slice(&self.key_id);
        blob.extend_from_slice(&self.signature);
        format!(
            "{}\n{SIGNATURE_PREFIX}{} {}\n",
            self.checkpoint.render_body(),
            self.checkpoint.origin,
            BASE64.encode(blob)
        )
    }

    /// Reads a signed note, keeping the first signature made under the origin's name.
    ///
    /// Signatures under other names (witness cosignatures, say) are ignored, as C2SP
    /// signed-note requires. Nothing is trusted until [`SignedCheckpoint::verify`] passes.
    pub fn from_note(note: &str) -> Result<Self, CheckpointError> {
        if note.len() > MAX_NOTE_LEN {
            return Err(CheckpointError::Malformed("note is too long"));
        }
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(CheckpointError::Malformed("note contains control characters"));
        }
        // The body keeps its final newline; the last empty line separates the signatures.
        let split = note.rfind("\n\n").ok_or(CheckpointError::Malformed("no blank line before the signatures"))?;
        let (body, signatures) = (&note[..=split], &note[split + 2..]);
        let checkpoint = Checkpoint::parse_body(body)?;

        let signatures =
            signatures.strip_suffix('\n').ok_or(CheckpointError::Malformed("signatures do not end with a newline"))?;
        let mut ours = None;
        for line in signatures.split('\n') {
            let (name, blob) = line
                .strip_prefix(SIGNATURE_PREFIX)
                .and_then(|rest| rest.split_once(' '))
                .ok_or(CheckpointError::Malformed("signature line is not '— name signature'"))?;
            let blob = BASE64.decode(blob).map_err(|_| CheckpointError::Malformed("signature is not base64"))?;
            if ours.is_none() && name == checkpoint.origin {
                ours = Some(blob);
            }
        }
        let blob = ours.ok_or(CheckpointError::NoSignature)?;
        let (key_id, signature) =
            blob.split_first_chunk::<4>().ok_or(CheckpointError::Malformed("signature is too short"))?;
        let signature =
            <[u8; 64]>::try_from(signature).map_err(|_| CheckpointError::Malformed("signature is not Ed25519"))?;
        Ok(Self { checkpoint, key_id: *key_id, signature })
    }

    /// Checks the signature over the note body with the log's public key.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CheckpointError> {
        let expected = key_id(&self.checkpoint.origin, key);
        if expected != self.key_id {
            return Err(CheckpointError::KeyMismatch {
                expected: hex::encode(expected),
                found: hex::encode(self.key_id),
            });
        }
        let body = self.checkpoint.render_body();
        // verify_strict also rejects small-order keys and malleable signatures.
        key.verify_strict(body.as_bytes(), &Signature::from_bytes(&self.signature))
            .map_err(|_| CheckpointError::BadSignature)
    }
}

/// Why a key could not be loaded, created or parsed.
///
/// Messages name the file but never its contents.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A signing key others can read lets them forge checkpoints; refuse rather than warn.
    #[error(
        "key file {} is readable by group or others (mode {mode:o}); restrict it with `chmod 600`",
        path.display()
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("key file {} is not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error("key file {} does not hold a PKCS#8 PEM Ed25519 private key", path.display())]
    Unparseable { path: PathBuf },
    #[error("could not encode the new signing key")]
    Encode,
    #[error("public key is not valid: {0}")]
    PublicKey(&'static str),
}

/// The log's Ed25519 signing key. Its `Debug` shows only the public half.
pub struct AuditSigningKey {
    key: SigningKey,
}

impl fmt::Debug for AuditSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditSigningKey").field("public_key", &self.public_key_base64()).finish_non_exhaustive()
    }
}

impl AuditSigningKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Self {
        Self { key: SigningKey::generate(&mut rand::rngs::OsRng) }
    }

    /// Loads the key at `path`, or creates one there (mode 0600) if there is no file.
    /// The flag is true when the key was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        match File::open(path) {
            Ok(file) => Ok((Self::load(file, path)?, false)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => match Self::create(path) {
                Ok(key) => Ok((key, true)),
                // Another process created it between our two calls: use theirs.
                Err(KeyError::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
                    let file = File::open(path).map_err(|source| io_error(path, source))?;
                    Ok((Self::load(file, path)?, false))
                }
                Err(err) => Err(err),
            },
            Err(source) => Err(io_error(path, source)),
        }
    }

    fn load(mut file: File, path: &Path) -> Result<Self, KeyError> {
        // Checked on the open handle, so the file inspected is the file read.
        let metadata = file.metadata().map_err(|source| io_error(path, source))?;
        if !metadata.is_file() {
            return Err(KeyError::NotAFile { path: path.into() });
        }
        check_private(&metadata, path)?;
        // Sized up front so the buffer never reallocates and leaves key copies behind.
        let mut pem = Zeroizing::new(String::with_capacity(MAX_KEY_FILE_LEN + 1));
        let limit = u64::try_from(MAX_KEY_FILE_LEN + 1).unwrap_or(u64::MAX);
        (&mut file).take(limit).read_to_string(&mut pem).map_err(|source| io_error(path, source))?;
        if pem.len() > MAX_KEY_FILE_LEN {
            return Err(KeyError::Unparseable { path: path.into() });
        }
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|_| KeyError::Unparseable { path: path.into() })?;
        Ok(Self { key })
    }

    fn create(path: &Path) -> Result<Self, KeyError> {
        let key = Self::generate();
        let pem = key.key.to_pkcs8_pem(LineEnding::LF).map_err(|_| KeyError::Encode)?;
        let mut file = create_private(path).map_err(|source| io_error(path, source))?;
        let written = file.write_all(pem.as_bytes()).and_then(|()| file.sync_all());
        if let Err(source) = written {
            // A half-written key would fail every later start; leave no file instead.
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(io_error(path, source));
        }
        Ok(key)
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The key that salts leaf commitments (format v2), derived from this key's secret.
    pub fn leaf_key(&self) -> super::leaf::LeafKey {
        let secret = Zeroizing::new(self.key.to_bytes());
        super::leaf::LeafKey::derive(&secret)
    }

    /// The public key as standard base64 of its 32 raw bytes.
    pub fn public_key_base64(&self) -> String {
        BASE64.encode(self.key.verifying_key().as_bytes())
    }

    /// The public key as a SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY"), as OpenSSL writes it.
    pub fn public_key_pem(&self) -> String {
        let mut der = Vec::with_capacity(ED25519_SPKI_PREFIX.len() + 32);
        der.extend_from_slice(&ED25519_SPKI_PREFIX);
        der.extend_from_slice(self.key.verifying_key().as_bytes());
        // 44 DER bytes make 60 base64 characters: one PEM line.
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", BASE64.encode(der))
    }

    /// Signs the checkpoint's note body under its origin's name.
    ///
    /// Fails only for an origin [`Checkpoint::new`] would have refused: such a note could not be read back.
    pub fn sign(&self, checkpoint: &Checkpoint) -> Result<SignedCheckpoint, CheckpointError> {
        let body = checkpoint.body()?;
        let signature = self.key.sign(body.as_bytes());
        Ok(SignedCheckpoint {
            checkpoint: checkpoint.clone(),
            key_id: key_id(&checkpoint.origin, &self.key.verifying_key()),
            signature: signature.to_bytes(),
        })
    }
}

/// Parses a public key from the PEM or base64 text that `public_key_pem`/`public_key_base64` write.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return VerifyingKey::from_public_key_pem(text)
            .map_err(|_| KeyError::PublicKey("not an Ed25519 public key PEM"));
    }
    let bytes = BASE64.decode(text).map_err(|_| KeyError::PublicKey("neither PEM nor base64"))?;
    let bytes = <[u8; 32]>::try_from(bytes).map_err(|_| KeyError::PublicKey("an Ed25519 public key is 32 bytes"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::PublicKey("not a point on the curve"))
}

fn io_error(path: &Path, source: io::Error) -> KeyError {
    KeyError::Io { path: path.into(), source }
}

/// Creates a new file that only its owner can read; fails if it already exists.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Set at creation, so the key is never readable by others, even briefly.
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(unix)]
fn check_private(metadata: &std::fs::Metadata, path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed { path: path.into(), mode });
    }
    Ok(())
}

/// Elsewhere permissions are ACLs this module does not interpret.
#[cfg(not(unix))]
fn check_private(_metadata: &std::fs::Metadata, _path: &Path) -> Result<(), KeyError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::pkcs8::EncodePublicKey;
    use proptest::prelude::*;

    const ORIGIN: &str = "audit.child-locator.example";

    fn key() -> AuditSigningKey {
        AuditSigningKey { key: SigningKey::from_bytes(&[7; 32]) }
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint::new(ORIGIN, 42, [9; 32], 1_714_000_000_000).expect("valid origin")
    }

    fn signed() -> SignedCheckpoint {
        key().sign(&checkpoint()).expect("valid origin")
    }

    #[test]
    fn note_has_the_c2sp_checkpoint_shape() {
        let note = signed().to_note();
        let lines: Vec<&str> = note.split('\n').collect();
        assert_eq!(lines[0], ORIGIN);
        assert_eq!(lines[1], "42");
        assert_eq!(lines[2], BASE64.encode([9u8; 32]));
        assert_eq!(lines[3], "timestamp-ms 1714000000000");
        assert_eq!(lines[4], "");
        assert!(lines[5].starts_with(&format!("\u{2014} {ORIGIN} ")));
        assert_eq!(lines[6], "");
        assert_eq!(lines.len(), 7);
    }

    #[test]
    fn signed_bytes_are_exactly_the_note_body() {
        let signed = signed();
        let note = signed.to_note();
        let body = &note[..note.find("\n\n").expect("separator") + 1];
        let signature = Signature::from_bytes(&signed.signature);
        key().verifying_key().verify_strict(body.as_bytes(), &signature).expect("signature covers the body");
    }

    #[test]
    fn key_id_follows_the_c2sp_signed_note_recipe() {
        let key = key().verifying_key();
        let mut preimage = ORIGIN.as_bytes().to_vec();
        preimage.extend_from_slice(&[0x0a, 0x01]);
        preimage.extend_from_slice(key.as_bytes());
        assert_eq!(key_id(ORIGIN, &key), Sha256::digest(&preimage)[..4]);
        assert_eq!(signed().key_id, key_id(ORIGIN, &key));
    }

    #[test]
    fn note_round_trips_and_verifies() {
        let signed = signed();
        let parsed = SignedCheckpoint::from_note(&signed.to_note()).expect("own note parses");
        assert_eq!(parsed, signed);
        assert_eq!(parsed.verify(&key().verifying_key()), Ok(()));
    }

    #[test]
    fn note_with_other_signatures_keeps_the_origins_signature() {
        let note = signed().to_note();
        let witness = format!("\u{2014} witness.example {}\n", BASE64.encode([1u8; 68]));
        let with_witness_first = note.replacen("\n\n", &format!("\n\n{witness}"), 1);
        let parsed = SignedCheckpoint::from_note(&with_witness_first).expect("parses");
        assert_eq!(parsed, signed());
    }

    #[test]
    fn note_without_the_origins_signature_is_refused() {
        let note = signed().to_note();
        let renamed = note.replace(&format!("\u{2014} {ORIGIN} "), "\u{2014} someone.else ");
        assert_eq!(SignedCheckpoint::from_note(&renamed), Err(CheckpointError::NoSignature));
    }

    #[test]
    fn any_change_to_the_body_breaks_the_signature() {
        let key = key().verifying_key();
        let mut changed = signed();
        changed.checkpoint.tree_size += 1;
        assert_eq!(changed.verify(&key), Err(CheckpointError::BadSignature));
        let mut changed = signed();
        changed.checkpoint.root_hash[31] ^= 1;
        assert_eq!(changed.verify(&key), Err(CheckpointError::BadSignature));
        let mut changed = signed();
        changed.checkpoint.timestamp_ms -= 1;
        assert_eq!(changed.verify(&key), Err(CheckpointError::BadSignature));
        let mut changed = signed();
        changed.signature[0] ^= 1;
        assert_eq!(changed.verify(&key), Err(CheckpointError::BadSignature));
    }

    #[test]
    fn a_different_key_is_reported_as_a_key_mismatch() {
        let other = AuditSigningKey::generate().verifying_key();
        assert!(matches!(signed().verify(&other), Err(CheckpointError::KeyMismatch { .. })));
    }

    #[test]
    fn non_canonical_or_malformed_notes_are_refused() {
        let note = signed().to_note();
        let cases = [
            note.replacen("\n42\n", "\n042\n", 1),
            note.replacen("\n42\n", "\n+42\n", 1),
            note.replacen("timestamp-ms ", "timestamp-ms +", 1),
            note.replacen("timestamp-ms ", "timestamp ", 1),
            note.replacen("\n\n", "\nextra line\n\n", 1),
            note.replacen("\n\n", "\n", 1),
            note.trim_end().to_owned(),
            note.replacen('\n', "\r\n", 1),
            note.replacen(&BASE64.encode([9u8; 32]), &BASE64.encode([9u8; 31]), 1),
            format!("{}\n", "x".repeat(MAX_NOTE_LEN)),
            String::new(),
        ];
        for (i, case) in cases.iter().enumerate() {
            assert!(SignedCheckpoint::from_note(case).is_err(), "case {i} parsed");
        }
    }

    #[test]
    fn origins_that_cannot_be_a_note_line_are_refused() {
        for origin in ["", "two words", "a+b", "line\nbreak", "tab\there", &"x".repeat(256)] {
            assert_eq!(Checkpoint::new(origin, 0, [0; 32], 0), Err(CheckpointError::InvalidOrigin));
        }
        let mut hand_built = checkpoint();
        hand_built.origin = "two words".into();
        assert_eq!(key().sign(&hand_built), Err(CheckpointError::InvalidOrigin));
    }

    #[test]
    fn errors_do_not_echo_note_text() {
        let secret_looking = "NHS-943-476-5919";
        let note = format!("{secret_looking}\nnot a number\nx\ny\n\n\u{2014} a b\n");
        let message = SignedCheckpoint::from_note(&note).expect_err("malformed").to_string();
        assert!(!message.contains(secret_looking), "{message}");
    }

    #[test]
    fn debug_of_the_signing_key_never_prints_the_secret() {
        let key = key();
        let secret = key.key.to_bytes();
        let printed = format!("{key:?} {key:#?}");
        let pem = key.key.to_pkcs8_pem(LineEnding::LF).expect("encodes");
        let pem_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!printed.contains(&hex::encode(secret)));
        assert!(!printed.contains(&hex::encode_upper(secret)));
        assert!(!printed.contains(&BASE64.encode(secret)));
        assert!(!printed.contains(&pem_body));
        assert!(!printed.contains(&format!("{secret:?}")));
        assert!(!printed.contains("7, 7, 7"));
        assert!(printed.contains(&key.public_key_base64()));
    }

    #[test]
    fn public_key_pem_matches_the_standard_encoding_and_parses_back() {
        let key = key();
        let standard = key.verifying_key().to_public_key_pem(LineEnding::LF).expect("encodes");
        assert_eq!(key.public_key_pem(), standard);
        assert_eq!(parse_public_key(&key.public_key_pem()).expect("parses"), key.verifying_key());
        assert_eq!(parse_public_key(&format!(" {}\n", key.public_key_base64())).expect("parses"), key.verifying_key());
    }

    #[test]
    fn public_key_parsing_refuses_garbage() {
        assert!(parse_public_key("").is_err());
        assert!(parse_public_key("not base64!").is_err());
        assert!(parse_public_key(&BASE64.encode([1u8; 31])).is_err());
        assert!(parse_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn from_note_never_panics(text in "(?s).{0,400}") {
            let _ = SignedCheckpoint::from_note(&text);
        }

        #[test]
        fn a_note_changed_in_one_character_never_verifies_as_a_different_checkpoint(
            at in any::<prop::sample::Index>(),
            replacement in any::<char>(),
        ) {
            let original = signed();
            let note = original.to_note();
            let mut chars: Vec<char> = note.chars().collect();
            let i = at.index(chars.len());
            chars[i] = replacement;
            let changed: String = chars.into_iter().collect();
            if let Ok(parsed) = SignedCheckpoint::from_note(&changed)
                && parsed.verify(&key().verifying_key()).is_ok()
            {
                prop_assert_eq!(parsed, original);
            }
        }
    }

    #[cfg(unix)]
    mod key_file {
        use super::*;
        use std::os::unix::fs::PermissionsExt;

        fn mode(path: &Path) -> u32 {
            std::fs::metadata(path).expect("exists").permissions().mode() & 0o777
        }

        #[test]
        fn a_new_key_file_is_created_owner_only_and_loads_back() {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("audit.key");
            let (created, was_created) = AuditSigningKey::load_or_create(&path).expect("creates");
            assert!(was_created);
            assert_eq!(mode(&path), 0o600);
            let (loaded, was_created) = AuditSigningKey::load_or_create(&path).expect("loads");
            assert!(!was_created);
            assert_eq!(loaded.verifying_key(), created.verifying_key());
        }

        #[test]
        fn a_key_file_readable_by_others_is_refused() {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("audit.key");
            AuditSigningKey::load_or_create(&path).expect("creates");
            for exposed in [0o640, 0o604, 0o644, 0o660] {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(exposed)).expect("chmod");
                let err = AuditSigningKey::load_or_create(&path).expect_err("refused");
                assert!(matches!(err, KeyError::Exposed { mode, .. } if mode == exposed));
                assert!(err.to_string().contains("chmod 600"), "{err}");
            }
        }

        #[test]
        fn a_key_file_that_is_not_a_key_is_refused_without_echoing_it() {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("audit.key");
            std::fs::write(&path, "hello secret").expect("writes");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
            let err = AuditSigningKey::load_or_create(&path).expect_err("refused");
            assert!(matches!(err, KeyError::Unparseable { .. }));
            assert!(!err.to_string().contains("hello"));
        }

        #[test]
        fn a_directory_is_not_a_key_file() {
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
            let err = AuditSigningKey::load_or_create(dir.path()).expect_err("refused");
            assert!(matches!(err, KeyError::NotAFile { .. }));
        }

        #[test]
        fn a_missing_directory_is_an_io_error() {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("missing").join("audit.key");
            let err = AuditSigningKey::load_or_create(&path).expect_err("refused");
            assert!(matches!(err, KeyError::Io { .. }));
        }
    }
}
