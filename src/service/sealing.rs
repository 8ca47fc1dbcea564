//! Small secrets the service keeps for a while and must neither show nor lose to tampering: a
//! one-time page message, a sign-in in flight, an identity provider's client secret. One
//! construction, encrypt-then-MAC: blake3's keyed extendable output under a fresh 24-byte nonce as
//! the keystream, then a keyed-BLAKE3 tag over the context, the nonce and the ciphertext, under a
//! second key derived apart from the first. `context` binds a sealed value to where it belongs
//! (a session's row, a sign-in's `state`), so a value moved elsewhere does not open.

use rand::RngCore;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 32;

fn keystream_key(key: &[u8; 32]) -> [u8; 32] {
    blake3::derive_key("child-locator 2026-12 seal keystream v2", key)
}

fn tag_key(key: &[u8; 32]) -> [u8; 32] {
    blake3::derive_key("child-locator 2026-12 seal tag v2", key)
}

fn xor_keystream(key: &[u8; 32], nonce: &[u8], data: &mut [u8]) {
    let mut stream = vec![0u8; data.len()];
    blake3::Hasher::new_keyed(&keystream_key(key)).update(nonce).finalize_xof().fill(&mut stream);
    data.iter_mut().zip(stream).for_each(|(d, s)| *d ^= s);
}

fn tag(key: &[u8; 32], context: &[u8], nonce: &[u8], ciphertext: &[u8]) -> blake3::Hash {
    let mut mac = blake3::Hasher::new_keyed(&tag_key(key));
    mac.update(&(context.len() as u64).to_le_bytes()).update(context);
    mac.update(&(nonce.len() as u64).to_le_bytes()).update(nonce).update(ciphertext);
    mac.finalize()
}

/// A sealed value: its nonce, and the ciphertext with the tag appended. Stored as one byte string
/// (`to_bytes`), or in two columns where a table keeps the nonce apart.
pub struct Sealed {
    pub nonce: [u8; NONCE_LEN],
    pub body: Vec<u8>,
}

impl Sealed {
    pub fn to_bytes(&self) -> Vec<u8> {
        [self.nonce.as_slice(), &self.body].concat()
    }

    /// Splits what `to_bytes` wrote; `None` when it is too short to be one.
    pub fn from_bytes(bytes: &[u8]) -> Option<Sealed> {
        let (nonce, body) = bytes.split_at_checked(NONCE_LEN)?;
        Some(Sealed { nonce: nonce.try_into().ok()?, body: body.to_vec() })
    }
}

/// `plain` sealed under `key` for `context`.
pub fn seal(key: &[u8; 32], context: &[u8], plain: &[u8]) -> Sealed {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut body = plain.to_vec();
    xor_keystream(key, &nonce, &mut body);
    let tag = tag(key, context, &nonce, &body);
    body.extend_from_slice(tag.as_bytes());
    Sealed { nonce, body }
}

/// The plain text, or `None` when the tag does not hold: another key or context, or a sealed
/// value changed, truncated or moved.
pub fn open(key: &[u8; 32], context: &[u8], nonce: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let split = body.len().checked_sub(TAG_LEN)?;
    let (data, given) = body.split_at(split);
    // `blake3::Hash` compares in constant time.
    if tag(key, context, nonce, data) != blake3::Hash::from_bytes(given.try_into().ok()?) {
        return None;
    }
    let mut plain = data.to_vec();
    xor_keystream(key, nonce, &mut plain);
    Some(plain)
}

/// `open` for a value stored whole (`Sealed::to_bytes`).
pub fn open_bytes(key: &[u8; 32], context: &[u8], bytes: &[u8]) -> Option<Vec<u8>> {
    let sealed = Sealed::from_bytes(bytes)?;
    open(key, context, &sealed.nonce, &sealed.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_under_its_own_key_and_context() {
        let sealed = seal(&[7; 32], b"row-a", b"tok_secret").to_bytes();
        assert!(!sealed.windows(10).any(|w| w == b"tok_secret"), "not stored in clear");
        assert_eq!(open_bytes(&[7; 32], b"row-a", &sealed).as_deref(), Some(&b"tok_secret"[..]));
        assert_eq!(open_bytes(&[8; 32], b"row-a", &sealed), None, "another key");
        assert_eq!(open_bytes(&[7; 32], b"row-b", &sealed), None, "moved to another row");
    }

    #[test]
    fn a_changed_or_truncated_value_never_opens() {
        let sealed = seal(&[7; 32], b"row", b"tok_secret").to_bytes();
        for i in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 1;
            assert_eq!(open_bytes(&[7; 32], b"row", &flipped), None, "bit flipped at byte {i}");
        }
        assert_eq!(open_bytes(&[7; 32], b"row", &sealed[..sealed.len() - 1]), None);
        assert_eq!(open_bytes(&[7; 32], b"row", &sealed[..NONCE_LEN + TAG_LEN - 1]), None);
        assert_eq!(open_bytes(&[7; 32], b"row", &sealed[..3]), None);
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        assert_ne!(seal(&[7; 32], b"row", b"same").to_bytes(), seal(&[7; 32], b"row", b"same").to_bytes());
    }
}
