//! Who is asking: a presented token resolved to its actor, through the failed-sign-in limiter,
//! with failures audited. The API's middleware and the web sign-in page both come here.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::json;

use super::limits::Refusal;
use super::{Service, ServiceError, ServiceResult};
use crate::audit::{EventType, NewEvent};
use crate::domain::token::Token;
use crate::domain::user::Actor;
use crate::store::users::TokenActor;

/// Counts something a client address does (an IPv6 client per /64, what one host is given);
/// past the quota the address is answered 429 for a minute. Used for failed authentications
/// (only failures: a valid token is never blocked, so one client guessing cannot lock out the
/// rest of a council behind the same proxy or NAT; past the quota failures are no longer
/// audited one by one) and for sign-ins started through an identity provider.
pub struct AddressLimiter {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

const BLOCK_FOR: Duration = Duration::from_secs(60);

impl AddressLimiter {
    pub fn new(per_minute: u32, enabled: bool) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN));
        AddressLimiter { limiter: enabled.then(|| RateLimiter::keyed(quota)), blocked: Mutex::new(HashMap::new()) }
    }

    pub(crate) fn blocked_for(&self, ip: IpAddr) -> Option<u64> {
        let ip = limit_key(ip);
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let until = *blocked.get(&ip)?;
        let now = Instant::now();
        if until <= now {
            blocked.remove(&ip);
            return None;
        }
        Some((until - now).as_secs().max(1))
    }

    /// Counts one more; whether that took the address past its quota (it is blocked from now).
    pub(crate) fn record(&self, ip: IpAddr) -> bool {
        let Some(limiter) = &self.limiter else { return false };
        let ip = limit_key(ip);
        let over = limiter.check_key(&ip).is_err();
        if over {
            let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
            // Forget stale entries so a scan from many addresses cannot grow the map forever.
            if blocked.len() > 100_000 {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
            }
            blocked.insert(ip, Instant::now() + BLOCK_FOR);
        }
        over
    }
}

/// The key failures are counted under: the address, an IPv6 one by its /64 (one host's share).
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    }
}

impl Service {
    /// Resolves a presented token to its actor, through the failed-sign-in limiter; failures are
    /// audited (never the token: it might be a live one mistyped).
    pub async fn authenticate(&self, ip: IpAddr, presented: Option<&str>, route: &str) -> ServiceResult<Actor> {
        Ok(self.authenticate_token(ip, presented, route).await?.actor)
    }

    /// `authenticate`, with whether the actor's organisation accepts long-lived API tokens.
    pub(crate) async fn authenticate_token(
        &self,
        ip: IpAddr,
        presented: Option<&str>,
        route: &str,
    ) -> ServiceResult<TokenActor> {
        let Some(presented) = presented else { return Err(ServiceError::Unauthenticated) };
        let found = match Token::parse(presented) {
            Ok(token) => self.find_actor(&token).await?,
            Err(_) => None,
        };
        if let Some(found) = found {
            return Ok(found);
        }
        Err(self.failed_authentication(ip, route).await)
    }

    /// A token that did not resolve: counted against the address and audited, unless the
    /// address is already blocked (then 429).
    pub(crate) async fn failed_authentication(&self, ip: IpAddr, route: &str) -> ServiceError {
        if let Some(retry_after_secs) = self.failed_auth.blocked_for(ip) {
            return ServiceError::RateLimited(Refusal {
                limit: "failed_auth",
                retry_after_secs,
                message: "too many failed sign-in attempts from this address; wait a minute and try again".into(),
            });
        }
        self.failed_auth.record(ip);
        let event = NewEvent::new(EventType::AuthFailed).details(json!({"source": ip.to_string(), "route": route}));
        match self.audit.record(event).await {
            Ok(_) => ServiceError::Unauthenticated,
            Err(e) => e.into(),
        }
    }

    /// The token's user. During a key rotation a token stored under the previous key is found
    /// under it and re-hashed under the current key, so users do not lose their tokens.
    async fn find_actor(&self, token: &Token) -> ServiceResult<Option<TokenActor>> {
        let hash = self.tokens.hash(token);
        if let Some(found) = self.store.actor_for_token(&hash).await? {
            return Ok(Some(found));
        }
        let Some(previous) = &self.previous_tokens else { return Ok(None) };
        let old_hash = previous.hash(token);
        let Some(found) = self.store.actor_for_token(&old_hash).await? else { return Ok(None) };
        self.store.rehash_token(&old_hash, &hash).await?;
        Ok(Some(found))
    }
}
