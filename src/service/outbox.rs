//! Webhook settings and delivery of the outbox: each due message is claimed, POSTed as signed
//! JSON, and settled as delivered, retried later with backoff, or dead after the last attempt.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::SocketAddr;
use std::sync::Arc;

use rand::Rng;
use serde_json::json;
use tokio::sync::watch;

use super::{Service, ServiceResult};
use crate::audit::{EventType, NewEvent};
use crate::clock::{Millis, rfc3339};
use crate::domain::FieldError;
use crate::domain::cursor::PageCursor;
use crate::domain::user::Actor;
use crate::domain::webhook::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookHost};
use crate::domain::webhook::{OutboxRow, OutboxState};
use crate::store::outbox::{Retry, Webhook};

/// Messages claimed per round of a pass.
const CLAIM_BATCH: i64 = 50;
/// Rounds per pass, so one pass cannot run forever under a flood.
const MAX_ROUNDS: usize = 20;

/// What one delivery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub delivered: u64,
    pub retrying: u64,
    pub dead: u64,
}

/// The delivery client: connections are reused; redirects are not followed (a redirect could
/// point the signed payload somewhere the organisation did not choose); names resolve through
/// `GuardedResolver`.
fn delivery_client(allowed_hosts: &[String]) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("child-locator/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver { allowed: Arc::new(allowed_hosts.to_vec()) }))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Resolves a webhook's host for the connection itself and drops internal addresses (unless the
/// operator allowed the host by name): a name that pointed outside when the webhook was set
/// cannot be re-pointed inside later (DNS rebinding), because the check is on the very address
/// the connection uses.
struct GuardedResolver {
    allowed: Arc<Vec<String>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        let permitted = WebhookHost::Name(host.clone()).is_allowed(&self.allowed);
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> =
                found.into_iter().filter(|a| permitted || !webhook::is_internal_address(a.ip())).collect();
            if kept.is_empty() {
                return Err(INTERNAL_ONLY.into());
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

const INTERNAL_ONLY: &str = "the webhook's host resolves only to internal addresses";

impl Service {
    /// The signing secret for an organisation's current webhook version.
    pub fn webhook_secret(&self, org_id: i64, version: i64) -> String {
        webhook::secret_text(&webhook::derive_secret(&self.secret.0, org_id, version))
    }

    /// Sets the organisation's webhook; returns it with its new signing secret (shown once).
    pub async fn set_webhook(&self, actor: &Actor, url: Option<&str>) -> ServiceResult<(Webhook, String)> {
        let url = webhook::parse_url(url.unwrap_or(""), self.settings.outbox.allow_http).map_err(|e| vec![e])?;
        self.check_webhook_destination(&url).await?;
        let hook = self.store.set_webhook(actor.org_id, &url, self.clock.now_ms()).await?;
        let event = NewEvent::new(EventType::OrganisationUpdated)
            .by(actor)
            .details(json!({"webhook": "set", "secret_version": hook.secret_version}));
        self.audit.record(event).await?;
        let secret = self.webhook_secret(actor.org_id, hook.secret_version);
        Ok((hook, secret))
    }

    /// Refuses a webhook pointing inside: an internal address or `localhost` by its text, and a
    /// name that resolves now to an internal address (a name that does not resolve yet is
    /// accepted: every delivery checks the address it connects to).
    async fn check_webhook_destination(&self, url: &str) -> ServiceResult<()> {
        let allowed = &self.settings.outbox.allowed_hosts;
        webhook::check_destination(url, allowed).map_err(|e| vec![e])?;
        let Some(WebhookHost::Name(name)) = WebhookHost::of(url) else { return Ok(()) };
        if WebhookHost::Name(name.clone()).is_allowed(allowed) {
            return Ok(());
        }
        let lookup = tokio::net::lookup_host((name.as_str(), 0));
        if let Ok(Ok(found)) = tokio::time::timeout(std::time::Duration::from_secs(2), lookup).await {
            let found: Vec<SocketAddr> = found.collect();
            if found.iter().any(|a| webhook::is_internal_address(a.ip())) {
                let refused = FieldError::new("url", "internal_address", webhook::INTERNAL_ADDRESS);
                return Err(vec![refused].into());
            }
        }
        Ok(())
    }

    /// Removes the webhook; messages stay queued until a new one is set.
    pub async fn delete_webhook(&self, actor: &Actor) -> ServiceResult<bool> {
        let removed = self.store.clear_webhook(actor.org_id, self.clock.now_ms()).await?;
        if removed {
            let event = NewEvent::new(EventType::OrganisationUpdated).by(actor).details(json!({"webhook": "removed"}));
            self.audit.record(event).await?;
        }
        Ok(removed)
    }

    /// One delivery pass at time `now`: every due message of an organisation with a webhook is
    /// tried once. The background task calls this; tests call it with a manual clock.
    pub async fn deliver_due(&self, now: Millis) -> ServiceResult<Delivery> {
        let claim = uuid::Uuid::new_v4().simple().to_string();
        let timeout = self.settings.outbox.timeout;
        // The claim outlives a whole round of sequential attempts, each bounded by the timeout.
        let lease = (timeout.as_millis() as Millis).saturating_mul(CLAIM_BATCH) + 60_000;
        let mut hooks: HashMap<i64, Option<Webhook>> = HashMap::new();
        let mut outcome = Delivery::default();
        for _ in 0..MAX_ROUNDS {
            let rows = self.store.claim_due(&claim, now, lease, CLAIM_BATCH).await?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let hook = match hooks.entry(row.org_id) {
                    Entry::Occupied(known) => known.into_mut(),
                    Entry::Vacant(slot) => slot.insert(self.store.webhook(row.org_id).await?),
                };
                // Removed since the claim: leave it; the claim lapses and it waits for a webhook.
                let Some(hook) = hook.as_ref() else { continue };
                match self.send(hook, &row, now, timeout).await {
                    Ok(()) => {
                        self.store.mark_delivered(row.id, &claim, now).await?;
                        outcome.delivered += 1;
                    }
                    Err(error) => {
                        let attempts = row.attempts + 1;
                        let retry = if attempts >= i64::from(self.settings.outbox.max_attempts) {
                            outcome.dead += 1;
                            Retry::Dead
                        } else {
                            outcome.retrying += 1;
                            let jitter: f64 = rand::thread_rng().r#gen();
                            Retry::At(now + webhook::retry_delay(attempts, jitter))
                        };
                        tracing::info!(message_id = row.id, attempts, %error, "webhook delivery failed");
                        self.store.mark_failed(row.id, &claim, now, &error, retry).await?;
                    }
                }
            }
        }
        Ok(outcome)
    }

    /// POSTs one message. The error is a short description of what went wrong, never the
    /// receiver's response body.
    async fn send(
        &self,
        hook: &Webhook,
        row: &OutboxRow,
        now: Millis,
        timeout: std::time::Duration,
    ) -> Result<(), String> {
        let sent_at = now.div_euclid(1000);
        let body = json!({
            "id": format!("ob_{}", row.id),
            "kind": row.kind,
            "created_at": rfc3339(row.created_at),
            "sent_at": sent_at,
            "attempt": row.attempts + 1,
            "data": row.payload,
        })
        .to_string();
        // An address in the URL itself never reaches the resolver: check it here.
        if webhook::check_destination(&hook.url, &self.settings.outbox.allowed_hosts).is_err() {
            return Err("refused: the webhook points at an internal address".to_string());
        }
        let secret = self.webhook_secret(hook.org_id, hook.secret_version);
        let client = self.webhook_client.get_or_init(|| delivery_client(&self.settings.outbox.allowed_hosts));
        let response = client
            .post(&hook.url)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, webhook::signature(&secret, body.as_bytes()))
            .header(TIMESTAMP_HEADER, sent_at.to_string())
            .header("x-locator-delivery", format!("ob_{}", row.id))
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out".to_string()
                } else if error_chain_says(&e, INTERNAL_ONLY) {
                    "refused: the webhook's host resolves only to internal addresses".to_string()
                } else if e.is_connect() {
                    "could not connect".to_string()
                } else {
                    "request failed".to_string()
                }
            })?;
        let status = response.status();
        if status.is_success() { Ok(()) } else { Err(format!("HTTP {}", status.as_u16())) }
    }

    /// The periodic work of a node: deliver due messages, escalate overdue requests and settle
    /// unpublished ones, until
    /// `stop` turns true. Several nodes may run it at once (rows are claimed, not shared).
    pub async fn run_background(&self, mut stop: watch::Receiver<bool>) {
        let poll = self.settings.outbox.poll;
        loop {
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
                () = tokio::time::sleep(poll) => {
                    let now = self.clock.now_ms();
                    if let Err(e) = self.flush_refusal_summaries().await {
                        tracing::warn!(error = %e, "writing refusal summaries failed; will retry");
                    }
                    if let Err(e) = self.escalate_overdue(now).await {
                        tracing::warn!(error = %e, "escalation pass failed; will retry");
                    }
                    // A request or step left unpublished by a node that stopped (start-up also does this).
                    if let Err(e) = self.settle_unpublished_requests().await {
                        tracing::warn!(error = %e, "settling unpublished requests failed; will retry");
                    }
                    if let Err(e) = self.deliver_due(now).await {
                        tracing::warn!(error = %e, "outbox delivery pass failed; will retry");
                    }
                }
            }
        }
    }
}

impl Service {
    /// A page of the organisation's notifications, newest first, and where the next starts.
    pub async fn outbox_page(
        &self,
        actor: &Actor,
        state: Option<OutboxState>,
        after: Option<PageCursor>,
        limit: Option<i64>,
    ) -> ServiceResult<(Vec<OutboxRow>, Option<PageCursor>)> {
        let limit = limit.unwrap_or(100).clamp(1, 1000);
        let rows = self.store.outbox_of_org(actor.org_id, state, after.as_ref(), limit).await?;
        let next = PageCursor::after_page(&rows, limit, |r| PageCursor::new(r.created_at, r.id.to_string()));
        Ok((rows, next))
    }
}

/// Whether an error or one of its causes says `text` (reqwest wraps the resolver's error).
fn error_chain_says(error: &(dyn std::error::Error + 'static), text: &str) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.to_string().contains(text) {
            return true;
        }
        cause = e.source();
    }
    false
}

impl Service {
    /// The actor's organisation's webhook, if set.
    pub async fn webhook_of(&self, actor: &Actor) -> ServiceResult<Option<Webhook>> {
        Ok(self.store.webhook(actor.org_id).await?)
    }
}
