//! The running service's parts, assembled once from settings: store, keys, audit writer,
//! and the use cases that the HTTP layer and the CLI share (holdings, sync, matching).

pub mod attention;
pub mod audit;
pub mod auth;
pub mod churn;
pub mod clients;
pub mod directory;
pub mod health;
pub mod holdings;
pub mod limits;
pub mod lookups;
pub mod node;
pub mod offline;
pub mod oidc;
pub mod outbox;
pub mod page_state;
pub mod prefilter;
pub mod purge;
pub mod redaction;
pub mod refusals;
pub mod requests;
pub mod sealing;
pub mod sessions;
pub mod sync;
pub mod sync_lease;
pub mod sync_records;
pub mod users;
pub mod views;

use std::sync::Arc;

use anyhow::Context;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::audit::checkpoint::AuditSigningKey;
use crate::audit::rollback::{self, HighWater};
use crate::audit::witness;
use crate::audit::{AuditError, AuditLog, EventType, NewEvent};
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::FieldError;
use crate::domain::identity::{IndexSecret, Pseudonymiser};
use crate::domain::keyring::Keyring;
use crate::keys::{self, SecretBytes, TokenHasher};
use crate::store::{Store, StoreError};

/// The use-case layer's one error type; `http::error` maps it to a status once.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// No token, or one that is not (or no longer) valid (401).
    #[error("no valid token")]
    Unauthenticated,
    /// A valid long-lived token of an organisation that has turned those off for the API (401).
    #[error("long-lived tokens are turned off for this organisation")]
    LongLivedTokensOff,
    /// Does not exist, or belongs to another organisation: the two look the same (404).
    #[error("not found")]
    NotFound,
    /// The database cannot be reached or is overloaded: the caller may retry later (503).
    #[error(transparent)]
    Unavailable(StoreError),
    /// Any other store failure: a bug or corrupt data, logged, never shown (500).
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// A rate limit or quota refused the request (already audited).
    #[error("{}", .0.message)]
    RateLimited(limits::Refusal),
    /// The object is visible to the actor, but their side may not take this step (403).
    #[error("{0}")]
    Refused(String),
    /// Not allowed in the object's current state, e.g. fulfilling a withdrawn request (409).
    #[error("{0}")]
    Conflict(String),
    /// The organisation already has an open request for this record: this one (409).
    #[error("your organisation already has an open request for this record")]
    AlreadyRequested(String),
}

/// Store failures as the layers above see them: not found, a broken uniqueness rule (a
/// conflict), unavailable, or internal. Only the last two keep the cause, for the log.
impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ServiceError::NotFound,
            StoreError::Conflict(m) => ServiceError::Conflict(m.to_string()),
            StoreError::Unavailable(_) => ServiceError::Unavailable(e),
            other => ServiceError::Store(other),
        }
    }
}

impl From<Vec<FieldError>> for ServiceError {
    fn from(errors: Vec<FieldError>) -> Self {
        ServiceError::Invalid(errors)
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

pub struct Service {
    settings: Settings,
    store: Store,
    audit: AuditLog,
    tokens: TokenHasher,
    /// During a key rotation, the previous key's token hasher: a token found under it is
    /// re-hashed under the current key on its first use.
    previous_tokens: Option<TokenHasher>,
    clock: Clock,
    secret: SecretBytes,
    /// The index keys in force: pseudonyms are written under the current one, and during a
    /// rotation looked up under both.
    keys: Keyring,
    /// The current key's public id, stored with each holding (for rotation).
    key_id: String,
    limiter: limits::Limiter,
    /// Failed sign-ins per client address (`auth`).
    failed_auth: auth::AddressLimiter,
    sign_in_starts: auth::AddressLimiter,
    /// Bounds how many refusal events one caller can make the audit trail store.
    refusals: refusals::RefusalThrottle,
    /// Screens a lookup's typo-variant probes against the pseudonyms this node knows exist.
    prefilter: prefilter::Prefilter,
    /// The last coverage figures and when they were computed (see `Service::coverage`).
    coverage_cache: std::sync::Mutex<Option<(std::time::Instant, lookups::Coverage)>>,
    /// Set while one caller recounts coverage (see `Service::coverage`).
    coverage_recounting: std::sync::atomic::AtomicBool,
    /// The directory as the area summary counts it, recounted with coverage.
    participants_cache: std::sync::Mutex<Option<std::sync::Arc<Vec<crate::domain::area::Participant>>>>,
    /// Lines for a person: e.g. that a key file was created.
    notices: Vec<String>,
    /// The webhook delivery client, built on first use (see `outbox`).
    webhook_client: std::sync::OnceLock<reqwest::Client>,
    /// OpenID Connect providers' discovery documents and keys, and the client that fetches them.
    oidc: oidc::ProviderCache,
}

/// The audit writer task; await it after the last `AuditLog` clone is dropped.
/// Also the task that records the latest signed head, so the last head written is recorded.
pub struct AuditTask(JoinHandle<()>, JoinHandle<()>);

impl AuditTask {
    pub async fn finish(self) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let _ = self.0.await;
            let _ = self.1.await;
        })
        .await;
    }
}

impl Service {
    /// Opens (and migrates) the database, loads or creates the keys, starts the audit writer.
    pub async fn open(settings: Settings, clock: Clock) -> anyhow::Result<(Service, AuditTask)> {
        let store = Store::open(&settings.database_url).await.with_context(|| {
            format!("cannot open the database {}", crate::config::redact_url(&settings.database_url))
        })?;
        let mut notices = Vec::new();
        let (secret, created) = keys::load_or_create(&settings.key_file)?;
        if created {
            notices
                .push(format!("created a new index secret at {} (mode 0600); back it up", settings.key_file.display()));
        }
        let (signer, created) = AuditSigningKey::load_or_create(&settings.audit_key_file)
            .with_context(|| format!("audit signing key {}", settings.audit_key_file.display()))?;
        if created {
            notices.push(format!(
                "created a new audit signing key at {} (mode 0600); publish its public key with `locator audit public-key`",
                settings.audit_key_file.display()
            ));
        }
        let high_water = HighWater::for_node(&store, &settings.audit_key_file);
        let witnessed = match &settings.audit_witness {
            Some(target) => witness::latest_witnessed(target, &signer.verifying_key())
                .with_context(|| format!("cannot read the audit witness {}", target.describe()))?,
            None => None,
        };
        rollback::check_at_start(&store, &high_water, witnessed.as_ref())
            .await
            .context("the audit trail was refused")?;
        let (audit, task) = AuditLog::start(store.clone(), Arc::new(signer), clock.clone(), AUDIT_ORIGIN.to_string());
        let recorder = rollback::spawn_recorder(high_water, audit.heads());
        spawn_node_backfill(store.clone());
        for notice in &notices {
            let event =
                NewEvent::new(EventType::KeyOperation).details(json!({"operation": "created", "notice": notice}));
            audit.record(event).await.context("cannot write the audit trail")?;
        }
        let tokens = TokenHasher::new(&secret);
        let pseudonymiser = Pseudonymiser::new(&IndexSecret::from_bytes(secret.0));
        let key_id = pseudonymiser.key_id().to_string();
        let previous_file = keys::previous_key_path(&settings.key_file);
        let previous = if previous_file.exists() {
            let old = keys::load(&previous_file)?;
            notices.push(format!(
                "key rotation in progress: lookups also use the previous key {}; run `locator key retire` once every organisation has re-synced",
                previous_file.display()
            ));
            Some((Pseudonymiser::new(&IndexSecret::from_bytes(old.0)), TokenHasher::new(&old)))
        } else {
            None
        };
        let previous_tokens = previous.as_ref().map(|(_, t)| t.clone());
        let keys = Keyring::new(pseudonymiser, previous.map(|(p, _)| p));
        // Holdings written before key family 2 are found through family 1's variants until
        // their holders' next syncs re-key them (docs/matching.md, "Re-keying to a new key family").
        let family_one = store.holdings_of_key_family_one().await.context("cannot read the holdings' key families")?;
        keys.set_family_one_holdings(family_one);
        if family_one {
            notices.push(
                "some holdings carry an older key family: lookups also ask its variants until every organisation has \
                 synced again"
                    .to_string(),
            );
        }
        let limiter = limits::Limiter::new(&settings.limits);
        let failed_auth = auth::AddressLimiter::new(settings.limits.failed_auth_per_minute, settings.limits.enabled);
        let sign_in_starts =
            auth::AddressLimiter::new(settings.limits.sign_in_starts_per_minute, settings.limits.enabled);
        let refusals =
            refusals::RefusalThrottle::new(settings.limits.refusals_recorded_per_minute, settings.limits.enabled);
        let service = Service {
            settings,
            store,
            audit,
            tokens,
            previous_tokens,
            clock,
            secret,
            keys,
            key_id,
            limiter,
            failed_auth,
            sign_in_starts,
            refusals,
            prefilter: Default::default(),
            coverage_cache: Default::default(),
            coverage_recounting: Default::default(),
            participants_cache: Default::default(),
            notices,
            webhook_client: Default::default(),
            oidc: Default::default(),
        };
        service.settle_unpublished_requests().await.context("cannot settle unpublished requests")?;
        Ok((service, AuditTask(task, recorder)))
    }
}

/// Builds, in the background, the subtree nodes of a trail written before they were stored
/// (proofs read every leaf until it is done). Interrupted, the next start resumes it.
fn spawn_node_backfill(store: Store) {
    tokio::spawn(async move {
        match crate::audit::nodes::backfill(&store).await {
            Ok(0) => {}
            Ok(built) => tracing::info!(entries = built, "audit proof nodes built for the existing trail"),
            Err(e) => tracing::warn!(error = %e, "audit proof nodes not built yet; proofs read every leaf meanwhile"),
        }
    });
}

/// The checkpoint origin line: names this log in every signed checkpoint.
pub const AUDIT_ORIGIN: &str = "child-locator/audit";

impl Service {
    /// The store, for tests' set-up and inspection only: `http/` and `cli/` go through the
    /// use cases (tests/suite/architecture.rs checks they never call this).
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
    pub fn prefilter_for_tests(&self) -> &prefilter::Prefilter {
        &self.prefilter
    }

    /// The index keys, for tests that build holdings by hand.
    #[doc(hidden)]
    pub fn keyring_for_tests(&self) -> &crate::domain::keyring::Keyring {
        &self.keys
    }
}
