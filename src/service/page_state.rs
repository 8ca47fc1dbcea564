//! What a page keeps between a POST and the GET it redirects to (POST → redirect → GET, so
//! Back and Refresh never repeat an act): a lookup's answer and a one-time message.

use rand::RngCore;

use super::{Service, ServiceError, ServiceResult, sealing};
use crate::clock::Millis;
use crate::domain::lookup::KeptAnswer;
use crate::domain::user::Actor;
use crate::store::page_state::Owner;

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
        let sealed = sealing::seal(&keys.key, &keys.bound, text.as_bytes());
        let now = self.clock.now_ms();
        Ok(self.store.put_flash(&keys.bound, &sealed.nonce, &sealed.body, now, now + FLASH_MS).await?)
    }

    /// Takes this session's one-time message, if any: it is gone once read.
    pub async fn take_flash(&self, keys: &PageKeys) -> ServiceResult<Option<String>> {
        let Some((nonce, payload)) = self.store.take_flash(&keys.bound, self.clock.now_ms()).await? else {
            return Ok(None);
        };
        // Sealed under the session's key and bound to its row: a changed or moved row is not shown.
        Ok(sealing::open(&keys.key, &keys.bound, &nonce, &payload).and_then(|text| String::from_utf8(text).ok()))
    }
}
