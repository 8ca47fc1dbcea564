//! The index secret on disk, and the keyed hash that protects stored tokens.
//! The secret never enters the database or a log; only its public key id does.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::domain::token::Token;

pub const SECRET_LEN: usize = 32;

/// 32 secret bytes. Not `Display`, and `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(pub [u8; SECRET_LEN]);

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBytes(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path} cannot be read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("key file {path} cannot be written: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("key file {path} must hold exactly 32 bytes (or 64 hex digits)")]
    Malformed { path: PathBuf },
    #[error("key file {path} is readable by other users; run `chmod 600 {path}`")]
    TooOpen { path: PathBuf },
    #[error("key file {path} already exists; refusing to overwrite a secret")]
    Exists { path: PathBuf },
}

/// Creates a new secret file with mode 0600. Never overwrites.
pub fn generate(path: &Path) -> Result<SecretBytes, KeyError> {
    let mut bytes = [0u8; SECRET_LEN];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    write_new(path, &bytes)?;
    Ok(SecretBytes(bytes))
}

/// Writes bytes to a file that must not exist yet, readable by the owner only.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|source| KeyError::Write { path: path.into(), source })?;
    }
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|source| {
        match source.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists { path: path.into() },
            _ => KeyError::Write { path: path.into(), source },
        }
    })?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|source| KeyError::Write { path: path.into(), source })
}

/// Reads a secret file, refusing one that other users could read.
pub fn load(path: &Path) -> Result<SecretBytes, KeyError> {
    let meta = fs::metadata(path).map_err(|source| KeyError::Read { path: path.into(), source })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(KeyError::TooOpen { path: path.into() });
    }
    let raw = fs::read(path).map_err(|source| KeyError::Read { path: path.into(), source })?;
    decode_secret(&raw).ok_or_else(|| KeyError::Malformed { path: path.into() })
}

/// Loads the secret, or creates it when missing; says whether it was created.
pub fn load_or_create(path: &Path) -> Result<(SecretBytes, bool), KeyError> {
    match load(path) {
        Ok(secret) => Ok((secret, false)),
        Err(KeyError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok((generate(path)?, true))
        }
        Err(other) => Err(other),
    }
}

/// 32 raw bytes, or 64 hex digits with optional surrounding white space (secret managers).
fn decode_secret(raw: &[u8]) -> Option<SecretBytes> {
    if raw.len() == SECRET_LEN {
        let mut out = [0u8; SECRET_LEN];
        out.copy_from_slice(raw);
        return Some(SecretBytes(out));
    }
    let text = std::str::from_utf8(raw).ok()?.trim();
    let bytes = hex::decode(text).ok()?;
    let array: [u8; SECRET_LEN] = bytes.try_into().ok()?;
    Some(SecretBytes(array))
}

/// The file that holds the key being retired during a rotation.
pub fn previous_key_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".previous");
    PathBuf::from(name)
}

/// Keyed hash for stored bearer tokens, with a subkey of its own so that token hashes
/// and match-key pseudonyms can never be compared.
#[derive(Clone)]
pub struct TokenHasher {
    key: [u8; 32],
}

impl TokenHasher {
    pub fn new(secret: &SecretBytes) -> Self {
        TokenHasher { key: blake3::derive_key("child-locator 2026-11 bearer token v1", &secret.0) }
    }

    pub fn hash(&self, token: &Token) -> Vec<u8> {
        blake3::keyed_hash(&self.key, token.expose().as_bytes()).as_bytes().to_vec()
    }

    /// A client's short-lived access token, hashed the same way (its prefix keeps the two apart).
    pub fn hash_access(&self, token: &crate::domain::client::AccessToken) -> Vec<u8> {
        blake3::keyed_hash(&self.key, token.expose().as_bytes()).as_bytes().to_vec()
    }
}

impl std::fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHasher(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_file_is_private_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locator.key");
        let created = generate(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load(&path).unwrap(), created);
        assert!(matches!(generate(&path), Err(KeyError::Exists { .. })));
    }

    #[test]
    fn load_or_create_creates_once_and_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let (first, created) = load_or_create(&path).unwrap();
        assert!(created);
        let (second, created_again) = load_or_create(&path).unwrap();
        assert!(!created_again);
        assert_eq!(first, second);
    }

    #[test]
    fn a_world_readable_or_malformed_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open.key");
        fs::write(&open, [7u8; 32]).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(load(&open), Err(KeyError::TooOpen { .. })));
        let short = dir.path().join("short.key");
        write_new(&short, b"too short").unwrap();
        assert!(matches!(load(&short), Err(KeyError::Malformed { .. })));
    }

    #[test]
    fn a_hex_key_file_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hex.key");
        write_new(&path, format!("{}\n", "ab".repeat(32)).as_bytes()).unwrap();
        assert_eq!(load(&path).unwrap().0, [0xab; 32]);
    }

    #[test]
    fn debug_output_never_shows_secret_bytes() {
        let s = SecretBytes([0x41; 32]);
        assert_eq!(format!("{s:?}"), "SecretBytes(***)");
        assert!(!format!("{:?}", TokenHasher::new(&s)).contains("65"));
    }
}
