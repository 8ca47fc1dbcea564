//! The use cases that used to be reached by handlers and commands through the service's fields:
//! the directory's writes (with their audit events), a holding and a webhook read, web sessions,
//! readiness, key status, backups, exports and the witness. With these, `Service` keeps its
//! parts private and `http/` and `cli/` have one door.

use serde_json::json;

use super::{Service, ServiceResult};
use crate::audit::checkpoint::AuditSigningKey;
use crate::audit::export::{ExportError, ExportSummary};
use crate::audit::{EventType, NewEvent};
use crate::clock::{Clock, Millis};
use crate::config::Settings;
use crate::domain::organisation::{NewOrganisation, Organisation, OrganisationChanges};
use crate::domain::user::{Actor, User};
use crate::store::audit_views::EventRow;
use crate::store::holdings::StoredHolding;
use crate::store::outbox::Webhook;
use crate::store::sessions::StoredSession;
use crate::store::{Engine, Store, StoreError};

/// A live session's last-seen time is written at most this often (a write per page is waste).
const TOUCH_EVERY_MS: i64 = 60_000;

/// Who changes the directory: a signed-in operator, or the machine owner at the command line.
fn directory_event(kind: EventType, by: Option<&Actor>, org: &Organisation) -> NewEvent {
    let event = NewEvent::new(kind).concerning([org.id]);
    match by {
        Some(actor) => event.by(actor).details(json!({"code": org.code})),
        None => event.details(json!({"code": org.code, "via": "cli"})),
    }
}

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

    /// Records an event of the machine owner's own operations (start-up, key rotation, backups).
    pub async fn record(&self, event: NewEvent) -> ServiceResult<()> {
        self.audit.record(event).await?;
        Ok(())
    }

    /// One directory entry by code.
    pub async fn organisation_by_code(&self, code: &str) -> ServiceResult<Organisation> {
        Ok(self.store.organisation_by_code(code).await?)
    }

    /// Every directory entry matching `text` (the command line's listing: no role, no page limit).
    pub async fn directory_listing(&self, text: &str, include_inactive: bool) -> ServiceResult<Vec<Organisation>> {
        Ok(self.store.search_organisations(text, include_inactive, 10_000).await?)
    }

    /// Adds an organisation and audits it (`by` None: the command line).
    pub async fn add_organisation(&self, by: Option<&Actor>, new: &NewOrganisation) -> ServiceResult<Organisation> {
        let org = self.store.add_organisation(new, self.clock.now_ms()).await?;
        self.audit.record(directory_event(EventType::OrganisationAdded, by, &org)).await?;
        Ok(org)
    }

    /// Changes an organisation (its code in any case) and audits it (`by` None: the command line).
    pub async fn update_organisation(
        &self,
        by: Option<&Actor>,
        code: &str,
        changes: &OrganisationChanges,
    ) -> ServiceResult<Organisation> {
        let org = self.store.update_organisation(&code.to_ascii_uppercase(), changes, self.clock.now_ms()).await?;
        self.audit.record(directory_event(EventType::OrganisationUpdated, by, &org)).await?;
        Ok(org)
    }

    /// The users of one organisation (the command line).
    pub async fn users_of_org(&self, org_id: i64) -> ServiceResult<Vec<User>> {
        Ok(self.store.users_of_org(org_id).await?)
    }

    /// The machine owner revokes a user's token (the command line).
    pub async fn revoke_token_of(&self, org_id: i64, user_id: i64) -> ServiceResult<User> {
        let user = self.store.revoke_user(org_id, user_id, self.clock.now_ms()).await?;
        let event = NewEvent::new(EventType::TokenRevoked)
            .concerning([org_id])
            .details(json!({"user_id": user.id, "via": "cli"}));
        self.audit.record(event).await?;
        Ok(user)
    }

    /// Reports a token of the actor's organisation as lost: every further use is flagged.
    pub async fn report_token_lost(&self, actor: &Actor, user_id: i64) -> ServiceResult<User> {
        let user = self.store.report_token_lost(actor.org_id, user_id, self.clock.now_ms()).await?;
        let event = NewEvent::new(EventType::TokenReportedLost).by(actor).details(json!({"user_id": user.id}));
        self.audit.record(event).await?;
        Ok(user)
    }

    /// What the index holds for one of the actor's organisation's records.
    pub async fn holding_of(&self, actor: &Actor, local_ref: &str) -> ServiceResult<StoredHolding> {
        Ok(self.store.holding(actor.org_id, local_ref).await?)
    }

    /// The actor's organisation's webhook, if set.
    pub async fn webhook_of(&self, actor: &Actor) -> ServiceResult<Option<Webhook>> {
        Ok(self.store.webhook(actor.org_id).await?)
    }

    /// The stored session under `id_hash` if it is live; an expired one is deleted, a live one
    /// touched (at most once a minute).
    pub async fn live_session(&self, id_hash: &[u8]) -> ServiceResult<Option<StoredSession>> {
        let Some(stored) = self.store.session(id_hash).await? else { return Ok(None) };
        let now = self.clock.now_ms();
        let idle_ms = i64::try_from(self.settings.web.session_idle.as_millis()).unwrap_or(i64::MAX);
        if stored.expires_at <= now || stored.last_seen_at.saturating_add(idle_ms) <= now {
            self.store.delete_session(id_hash).await?;
            return Ok(None);
        }
        if now - stored.last_seen_at >= TOUCH_EVERY_MS {
            self.store.touch_session(id_hash, now).await?;
        }
        Ok(Some(stored))
    }

    /// Starts a session for `user_id` under `id_hash`, clearing expired ones first.
    pub async fn start_session(&self, id_hash: &[u8], user_id: i64) -> ServiceResult<()> {
        let now = self.clock.now_ms();
        let idle_ms = i64::try_from(self.settings.web.session_idle.as_millis()).unwrap_or(i64::MAX);
        let max_ms = i64::try_from(self.settings.web.session_max.as_millis()).unwrap_or(i64::MAX);
        self.store.delete_expired_sessions(now, idle_ms).await?;
        self.store.create_session(id_hash, user_id, now, now.saturating_add(max_ms)).await?;
        Ok(())
    }

    /// Ends the session under `id_hash`.
    pub async fn end_session(&self, id_hash: &[u8]) -> ServiceResult<()> {
        Ok(self.store.delete_session(id_hash).await?)
    }

    /// Why this node is not ready to serve, if it is not (see `/readyz`).
    pub async fn not_ready(&self) -> Option<&'static str> {
        if let Err(e) = self.store.ready().await {
            tracing::warn!(error = %e, "not ready");
            return Some("not ready: the database is unreachable or not migrated");
        }
        if !self.audit.is_writable() {
            return Some("not ready: the audit trail cannot be written");
        }
        if self.prefilter.is_warming() {
            return Some("not ready: loading the lookup prefilter");
        }
        None
    }

    /// Searches whose pseudonyms wait to be indexed for subject access (a metric).
    pub async fn searches_unindexed(&self) -> ServiceResult<i64> {
        Ok(self.store.pending_pseudonym_events().await?)
    }

    /// Marks the lookup prefilter as loading (readiness waits for it).
    pub fn mark_prefilter_warming(&self) {
        self.prefilter.mark_warming();
    }

    /// One event of the actor's organisation's scope, by its position in the log.
    pub async fn audit_event_in_scope(&self, org_id: i64, seq: i64) -> ServiceResult<Option<EventRow>> {
        let query = crate::store::audit_views::EventQuery {
            scope_org: Some(org_id),
            seqs: Some(vec![seq]),
            limit: 1,
            ..Default::default()
        };
        Ok(self.store.audit_events_page(&query).await?.into_iter().next())
    }

    /// The tree size asked (default: the head) and its signed checkpoint if kept.
    pub async fn audit_tree_at(&self, size: Option<u64>) -> ServiceResult<(u64, Option<String>)> {
        let head = self.store.audit_head().await?;
        let size = size.unwrap_or(head.size);
        if size > head.size {
            return Err(vec![crate::domain::FieldError::new(
                "tree_size",
                "too_large",
                "the log is not that large yet",
            )]
            .into());
        }
        let note = if size == head.size {
            head.checkpoint
        } else {
            self.store.audit_checkpoint_at(i64::try_from(size).map_err(|_| StoreError::NotFound)?).await?
        };
        Ok((size, note))
    }

    /// The key that signs the audit log's checkpoints.
    pub fn audit_signer(&self) -> &AuditSigningKey {
        self.audit.signer()
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

    /// Writes the whole audit log and its checkpoints to `out`.
    pub async fn export_audit(&self, out: &mut impl std::io::Write, now: Millis) -> Result<ExportSummary, ExportError> {
        crate::audit::export::write_export(&self.store, out, now).await
    }

    /// Pushes the signed checkpoint to the witness now and every `every`; a log inconsistent with
    /// what was already witnessed is logged as an error on every attempt (it will not go away).
    pub async fn witness_on_schedule(&self, target: crate::audit::witness::WitnessTarget, every: std::time::Duration) {
        use crate::audit::witness::{Pushed, push};
        let key = self.audit.signer().verifying_key();
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match push(&self.store, &target, &key).await {
                Ok(Pushed::Appended(size)) => {
                    tracing::info!(size, witness = %target.describe(), "audit checkpoint witnessed")
                }
                Ok(Pushed::Unchanged(_)) => {}
                Err(e) if e.is_alarm() => tracing::error!(error = %e, witness = %target.describe(), "AUDIT LOG ALARM"),
                Err(e) => {
                    tracing::warn!(error = %e, witness = %target.describe(), "audit witness push failed; will retry")
                }
            }
        }
    }

    /// The store, for tests' set-up and inspection only: `http/` and `cli/` go through the
    /// methods above (tests/architecture.rs checks they never call this).
    #[doc(hidden)]
    pub fn store_for_tests(&self) -> &Store {
        &self.store
    }

    /// The audit log's leaf key, for tests that open scope commitments themselves.
    #[doc(hidden)]
    pub fn leaf_key_for_tests(&self) -> crate::audit::leaf::LeafKey {
        self.audit.leaf_key()
    }

    /// The lookup prefilter, for tests that watch it load.
    #[doc(hidden)]
    pub fn prefilter_for_tests(&self) -> &super::prefilter::Prefilter {
        &self.prefilter
    }

    /// The index keys, for tests that build holdings by hand.
    #[doc(hidden)]
    pub fn keyring_for_tests(&self) -> &crate::domain::keyring::Keyring {
        &self.keys
    }
}
