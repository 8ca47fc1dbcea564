//! What a page keeps between a POST and the GET it redirects to (POST → redirect → GET, so
//! Back and Refresh never repeat an act): a lookup's answer and a one-time message.

use rand::RngCore;

use super::{Service, ServiceError, ServiceResult};
use crate::clock::Millis;
use crate::domain::user::Actor;
use crate::store::page_state::{KeptAnswer, Owner};

/// How long a lookup's answer can be opened again at its address (a shift's reloads, not a
/// record: the audit trail is the record).
pub const KEEP_ANSWER_MS: Millis = 4 * 60 * 60 * 1000;

/// Kept subject access answers share the lookup answers' table under ids with this prefix
/// (a lookup's id starts `lk_`), so neither page ever reads the other's.
pub const SUBJECT_ACCESS_PREFIX: &str = "sa_";

/// How long a one-time message waits for the page it was meant for.
const FLASH_MS: Millis = 10 * 60 * 1000;

/// A session's page-state keys, derived from its id by the pages (`session.rs`): `bound`
/// names the session's rows, `key` encrypts its one-time messages. Neither is stored with the
/// session, so the database alone can open neither.
#[derive(Debug, Clone)]
pub struct PageKeys {
    pub bound: [u8; 32],
    pub key: [u8; 32],
}

/// A one-time message sealed for one session: a keystream (blake3's keyed extendable output
/// under a fresh nonce) then a keyed-BLAKE3 tag over the session's row name, the nonce and the
/// ciphertext (encrypt-then-MAC). Whoever can write the table can neither read a message nor
/// change one unnoticed: a message that fails its tag is never shown.
struct Sealer {
    stream_key: [u8; 32],
    tag_key: [u8; 32],
}

const TAG_LEN: usize = 32;

impl Sealer {
    /// Separate keys for the keystream and the tag, both derived from the session's page key.
    fn new(keys: &PageKeys) -> Sealer {
        Sealer {
            stream_key: blake3::derive_key("child-locator page flash keystream v2", &keys.key),
            tag_key: blake3::derive_key("child-locator page flash tag v2", &keys.key),
        }
    }

    fn xor_stream(&self, nonce: &[u8], data: &mut [u8]) {
        let mut stream = vec![0u8; data.len()];
        blake3::Hasher::new_keyed(&self.stream_key).update(nonce).finalize_xof().fill(&mut stream);
        data.iter_mut().zip(stream).for_each(|(d, s)| *d ^= s);
    }

    fn tag(&self, bound: &[u8; 32], nonce: &[u8], ciphertext: &[u8]) -> blake3::Hash {
        let mut mac = blake3::Hasher::new_keyed(&self.tag_key);
        mac.update(bound).update(&(nonce.len() as u64).to_le_bytes()).update(nonce).update(ciphertext);
        mac.finalize()
    }

    /// The ciphertext with its tag appended.
    fn seal(&self, bound: &[u8; 32], nonce: &[u8], text: &str) -> Vec<u8> {
        let mut payload = text.as_bytes().to_vec();
        self.xor_stream(nonce, &mut payload);
        let tag = self.tag(bound, nonce, &payload);
        payload.extend_from_slice(tag.as_bytes());
        payload
    }

    /// The text, or `None` when the tag does not hold (a changed, truncated or foreign row).
    fn open(&self, bound: &[u8; 32], nonce: &[u8], mut payload: Vec<u8>) -> Option<String> {
        let split = payload.len().checked_sub(TAG_LEN)?;
        let tag = blake3::Hash::from_bytes(payload[split..].try_into().ok()?);
        payload.truncate(split);
        // `blake3::Hash` compares in constant time.
        if self.tag(bound, nonce, &payload) != tag {
            return None;
        }
        self.xor_stream(nonce, &mut payload);
        String::from_utf8(payload).ok()
    }
}

impl Service {
    /// Keeps a lookup's answer (the API's redacted JSON) for the asking user's session.
    pub async fn keep_lookup_answer(
        &self,
        actor: &Actor,
        keys: &PageKeys,
        lookup_id: &str,
        kept: &KeptAnswer,
    ) -> ServiceResult<()> {
        let now = self.clock.now_ms();
        let owner = Owner { user_id: actor.user_id, org_id: actor.org_id, bound: &keys.bound };
        Ok(self.store.keep_lookup_answer(lookup_id, owner, kept, now, now + KEEP_ANSWER_MS).await?)
    }

    /// The kept answer: 404 for anyone but its asker's session, and once it has expired.
    pub async fn kept_lookup_answer(
        &self,
        actor: &Actor,
        keys: &PageKeys,
        lookup_id: &str,
    ) -> ServiceResult<KeptAnswer> {
        let owner = Owner { user_id: actor.user_id, org_id: actor.org_id, bound: &keys.bound };
        self.store
            .kept_lookup_answer(lookup_id, owner, self.clock.now_ms())
            .await?
            .ok_or(ServiceError::Store(crate::store::StoreError::NotFound))
    }

    /// Keeps a subject access answer (as its page shows it: names of organisations and users
    /// and times, never the child's identifiers) for the asking session; returns its address id.
    pub async fn keep_subject_access_answer(
        &self,
        actor: &Actor,
        keys: &PageKeys,
        shown: &str,
    ) -> ServiceResult<String> {
        let mut random = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let id = format!("{SUBJECT_ACCESS_PREFIX}{}", hex::encode(random));
        let kept = KeptAnswer { answer: shown.to_string(), case_ref: None };
        self.keep_lookup_answer(actor, keys, &id, &kept).await?;
        Ok(id)
    }

    /// A kept subject access answer: 404 for anyone but its asker's session, and after expiry.
    pub async fn kept_subject_access_answer(&self, actor: &Actor, keys: &PageKeys, id: &str) -> ServiceResult<String> {
        if !id.starts_with(SUBJECT_ACCESS_PREFIX) {
            return Err(ServiceError::Store(crate::store::StoreError::NotFound));
        }
        Ok(self.kept_lookup_answer(actor, keys, id).await?.answer)
    }

    /// At sign-out: the user's kept answers go.
    pub async fn forget_lookup_answers(&self, actor: &Actor) -> ServiceResult<()> {
        Ok(self.store.forget_lookup_answers(actor.user_id).await?)
    }

    /// Leaves `text` for this session's next page, encrypted.
    pub async fn put_flash(&self, keys: &PageKeys, text: &str) -> ServiceResult<()> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Sealer::new(keys).seal(&keys.bound, &nonce, text);
        let now = self.clock.now_ms();
        Ok(self.store.put_flash(&keys.bound, &nonce, &payload, now, now + FLASH_MS).await?)
    }

    /// Takes this session's one-time message, if any: it is gone once read.
    pub async fn take_flash(&self, keys: &PageKeys) -> ServiceResult<Option<String>> {
        let Some((nonce, payload)) = self.store.take_flash(&keys.bound, self.clock.now_ms()).await? else {
            return Ok(None);
        };
        Ok(Sealer::new(keys).open(&keys.bound, &nonce, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(seed: u8) -> PageKeys {
        PageKeys { bound: [seed; 32], key: [seed.wrapping_add(1); 32] }
    }

    #[test]
    fn a_message_opens_only_under_its_own_session_keys() {
        let (mine, theirs) = (keys(7), keys(9));
        let sealed = Sealer::new(&mine).seal(&mine.bound, b"nonce", "tok_secret");
        assert!(!sealed.windows(10).any(|w| w == b"tok_secret"), "the text is not stored in clear");
        assert_eq!(Sealer::new(&mine).open(&mine.bound, b"nonce", sealed.clone()).as_deref(), Some("tok_secret"));
        assert_eq!(Sealer::new(&theirs).open(&theirs.bound, b"nonce", sealed.clone()), None);
        assert_eq!(Sealer::new(&mine).open(&theirs.bound, b"nonce", sealed), None, "bound to its session's row");
    }

    #[test]
    fn a_changed_or_truncated_message_is_never_shown() {
        let k = keys(7);
        let sealer = Sealer::new(&k);
        let sealed = sealer.seal(&k.bound, b"nonce", "tok_secret");
        for i in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 1;
            assert_eq!(sealer.open(&k.bound, b"nonce", flipped), None, "bit flipped at byte {i}");
        }
        assert_eq!(sealer.open(&k.bound, b"nonce", sealed[..sealed.len() - 1].to_vec()), None);
        assert_eq!(sealer.open(&k.bound, b"nonce", sealed[..TAG_LEN - 1].to_vec()), None);
        assert_eq!(sealer.open(&k.bound, b"other", sealed), None, "the nonce is covered too");
    }
}
