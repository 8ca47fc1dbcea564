//! What this node runs with, read-only: its settings, clock, notices, engine, the index keys in
//! force and how many holdings each covers, keys derived for the pages, and a backup copy.

use super::{Service, ServiceResult};
use crate::clock::Clock;
use crate::config::Settings;
use crate::store::Engine;

impl Service {
    /// The settings this node runs with (read-only).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The clock every decision reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Lines for a person, e.g. that a key file was created.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// The database engine behind the store.
    pub fn engine(&self) -> Engine {
        self.store.engine()
    }

    /// A key for one named purpose, derived from the node secret (the secret itself stays here).
    pub fn derive_key(&self, context: &str) -> [u8; 32] {
        blake3::derive_key(context, &self.secret.0)
    }

    /// The current index key's id, and the previous one's during a rotation.
    pub fn key_ids(&self) -> (&str, Option<String>) {
        (&self.key_id, self.keys.previous().map(|p| p.key_id().to_string()))
    }

    /// How many holdings each index key holds.
    pub async fn holdings_by_key(&self) -> ServiceResult<Vec<(String, i64)>> {
        Ok(self.store.holdings_by_key().await?)
    }

    /// The organisations (code, holdings) still holding records under `key_id`.
    pub async fn organisations_on_key(&self, key_id: &str) -> ServiceResult<Vec<(String, i64)>> {
        Ok(self.store.organisations_on_key(key_id).await?)
    }

    /// Copies the SQLite database into `target` (an empty private file).
    pub async fn backup_into(&self, target: &std::path::Path) -> ServiceResult<()> {
        Ok(self.store.sqlite_backup_into(target).await?)
    }
}
