//! What a page keeps between a POST and the GET it redirects to (POST → redirect → GET, so
//! Back and Refresh never repeat an act): a lookup's answer and a one-time message.

use rand::RngCore;

use super::{Service, ServiceError, ServiceResult};
use crate::clock::Millis;
use crate::domain::lookup::KeptAnswer;
use crate::domain::user::Actor;
use crate::store::page_state::Owner;

/// How long a lookup's answer can be opened again at its address (a shift's reloads, not a
/// record: the audit trail is the record).
pub const KEEP_ANSWER_MS: Millis = 4 * 60 * 60 * 1000;

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

/// The keystream of a one-time message (blake3's keyed extendable output under a fresh nonce).
fn xor_stream(key: &[u8; 32], nonce: &[u8], data: &mut [u8]) {
    let mut stream = vec![0u8; data.len()];
    blake3::Hasher::new_keyed(key).update(nonce).finalize_xof().fill(&mut stream);
    data.iter_mut().zip(stream).for_each(|(d, s)| *d ^= s);
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
        self.store.kept_lookup_answer(lookup_id, owner, self.clock.now_ms()).await?.ok_or(ServiceError::NotFound)
    }

    /// At sign-out: the user's kept answers go.
    pub async fn forget_lookup_answers(&self, actor: &Actor) -> ServiceResult<()> {
        Ok(self.store.forget_lookup_answers(actor.user_id).await?)
    }

    /// Leaves `text` for this session's next page, encrypted.
    pub async fn put_flash(&self, keys: &PageKeys, text: &str) -> ServiceResult<()> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut payload = text.as_bytes().to_vec();
        xor_stream(&keys.key, &nonce, &mut payload);
        let now = self.clock.now_ms();
        Ok(self.store.put_flash(&keys.bound, &nonce, &payload, now, now + FLASH_MS).await?)
    }

    /// Takes this session's one-time message, if any: it is gone once read.
    pub async fn take_flash(&self, keys: &PageKeys) -> ServiceResult<Option<String>> {
        let Some((nonce, mut payload)) = self.store.take_flash(&keys.bound, self.clock.now_ms()).await? else {
            return Ok(None);
        };
        xor_stream(&keys.key, &nonce, &mut payload);
        Ok(String::from_utf8(payload).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_comes_back_only_under_its_own_key() {
        let mut data = b"tok_secret".to_vec();
        xor_stream(&[7; 32], b"nonce", &mut data);
        assert_ne!(data, b"tok_secret");
        let mut wrong = data.clone();
        xor_stream(&[8; 32], b"nonce", &mut wrong);
        assert_ne!(wrong, b"tok_secret");
        xor_stream(&[7; 32], b"nonce", &mut data);
        assert_eq!(data, b"tok_secret");
    }
}
