//! Systems as OAuth 2.0 clients: an org-admin registers a client's public key; the client trades
//! a signed assertion (RFC 7523) for a short-lived access token at the token endpoint; the token
//! acts as the client's role in its organisation. Organisations can turn long-lived tokens off.

use std::net::IpAddr;

use rand::RngCore;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Service, ServiceError, ServiceResult};
use crate::audit::{EventType, NewEvent};
use crate::domain::FieldError;
use crate::domain::client::{
    self, ASSERTION_TYPE, AccessToken, ApiClient, AssertionError, AssertionRules, ClientCredentials,
};
use crate::domain::role::Role;
use crate::domain::user::Actor;
use crate::store::clients::NewClient;
use crate::store::users::TokenActor;

/// The grant type the token endpoint serves (RFC 6749 s4.4).
pub const GRANT_TYPE: &str = "client_credentials";

/// A token request's parameters, as posted (each at most once).
#[derive(Debug, Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
    pub client_id: Option<String>,
}

/// The successful answer (RFC 6749 s5.1).
#[derive(Serialize, utoipa::ToSchema)]
pub struct IssuedAccessToken {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token stops working.
    pub expires_in: u64,
}

/// Why a token request was refused, as RFC 6749 s5.2 names it. The description never repeats
/// what was sent.
#[derive(Debug, Clone, Copy)]
pub enum OAuthError {
    InvalidRequest(&'static str),
    InvalidClient(&'static str),
    UnsupportedGrantType,
    /// Too many failures from this address: seconds until it may try again.
    SlowDown(u64),
    /// The database or audit trail could not be written; nothing was issued.
    Unavailable,
}

/// Whether an organisation's long-lived API tokens are accepted.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenPolicy {
    pub organisation: String,
    /// `false`: the organisation's long-lived tokens are refused on the API (401); its systems
    /// use client credentials, and web sign-in keeps working.
    pub long_lived_tokens: bool,
}

impl Service {
    /// An org-admin registers a system of its own organisation. A client cannot register
    /// clients: a leaked system key must not be able to mint lasting credentials.
    pub async fn register_client(
        &self,
        actor: &Actor,
        name: &str,
        role: Role,
        jwk: &Value,
        alg: Option<&str>,
    ) -> ServiceResult<ApiClient> {
        if actor.client_id.is_some() {
            return Err(ServiceError::Refused("a client may not register clients; an org-admin does".into()));
        }
        self.add_client(Some(actor), actor.org_id, name, role, jwk, alg).await
    }

    /// Registers a client for an organisation: for an org-admin (above) and the machine owner
    /// (the command line, `by` = `None`).
    pub async fn add_client(
        &self,
        by: Option<&Actor>,
        org_id: i64,
        name: &str,
        role: Role,
        jwk: &Value,
        alg: Option<&str>,
    ) -> ServiceResult<ApiClient> {
        let role = client::client_role(role)?;
        let key = client::parse_public_key(jwk, alg)?;
        let client_id = client::new_client_id();
        let mut unusable = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut unusable);
        let alg = format!("{:?}", key.alg);
        let new = NewClient {
            client_id: &client_id,
            org_id,
            name,
            role,
            alg: &alg,
            public_jwk: &key.jwk,
            thumbprint: &key.thumbprint,
            unusable_token_hash: &unusable,
        };
        let registered = self.store.add_client(&new, self.clock.now_ms()).await?;
        let mut event = NewEvent::new(EventType::ClientRegistered).concerning([org_id]).details(json!({
            "client_id": registered.client_id, "user_id": registered.user_id, "role": role.as_str(),
            "alg": registered.alg, "key_thumbprint": registered.key_thumbprint,
        }));
        if let Some(actor) = by {
            event = event.by(actor);
        }
        self.audit.record(event).await?;
        Ok(registered)
    }

    pub async fn clients_of(&self, actor: &Actor) -> ServiceResult<Vec<ApiClient>> {
        Ok(self.store.clients_of_org(actor.org_id).await?)
    }

    /// The clients of one organisation (the command line).
    pub async fn clients_of_org(&self, org_id: i64) -> ServiceResult<Vec<ApiClient>> {
        Ok(self.store.clients_of_org(org_id).await?)
    }

    /// Revokes a client of the actor's organisation (anyone else's is not found): its access
    /// tokens stop working on the next request.
    pub async fn revoke_client(&self, actor: &Actor, client_id: &str) -> ServiceResult<ApiClient> {
        self.revoke_client_of(Some(actor), actor.org_id, client_id).await
    }

    pub async fn revoke_client_of(&self, by: Option<&Actor>, org_id: i64, client_id: &str) -> ServiceResult<ApiClient> {
        let revoked = self.store.revoke_client(org_id, client_id, self.clock.now_ms()).await?;
        let mut event = NewEvent::new(EventType::ClientRevoked)
            .concerning([org_id])
            .details(json!({"client_id": revoked.client_id, "user_id": revoked.user_id}));
        if let Some(actor) = by {
            event = event.by(actor);
        }
        self.audit.record(event).await?;
        Ok(revoked)
    }

    /// The token endpoint: checks the request and the client's assertion, refuses a replayed
    /// one, and issues a short-lived access token. Failures count towards the address's
    /// failed-sign-in limit and are audited (never the assertion).
    pub async fn client_token(&self, ip: IpAddr, request: &TokenRequest) -> Result<IssuedAccessToken, OAuthError> {
        if let Some(retry_after) = self.failed_auth.blocked_for(ip) {
            return Err(OAuthError::SlowDown(retry_after));
        }
        let failure = match self.try_client_token(request).await {
            Ok(Ok(issued)) => return Ok(issued),
            Ok(Err(refused)) => refused,
            Err(e) => {
                tracing::warn!(error = %e, "token endpoint could not complete a request");
                return Err(OAuthError::Unavailable);
            }
        };
        let (error, reason) = failure;
        self.failed_auth.record(ip);
        let event = NewEvent::new(EventType::AuthFailed)
            .details(json!({"source": ip.to_string(), "route": "/oauth/token", "reason": reason}));
        if self.audit.record(event).await.is_err() {
            return Err(OAuthError::Unavailable);
        }
        Err(error)
    }

    /// The outer `Err` is the service failing; the inner one the request being refused, with a
    /// reason for the audit trail.
    async fn try_client_token(
        &self,
        request: &TokenRequest,
    ) -> ServiceResult<Result<IssuedAccessToken, (OAuthError, &'static str)>> {
        let refuse = |e: OAuthError, reason: &'static str| Ok(Err((e, reason)));
        let Some(grant_type) = request.grant_type.as_deref() else {
            return refuse(OAuthError::InvalidRequest("grant_type is required"), "no_grant_type");
        };
        if grant_type != GRANT_TYPE {
            return refuse(OAuthError::UnsupportedGrantType, "unsupported_grant_type");
        }
        if request.client_assertion_type.as_deref() != Some(ASSERTION_TYPE) {
            let message = "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
            return refuse(OAuthError::InvalidRequest(message), "assertion_type");
        }
        let Some(assertion) = request.client_assertion.as_deref().filter(|a| !a.is_empty()) else {
            return refuse(OAuthError::InvalidRequest("client_assertion is required"), "no_assertion");
        };
        let claimed = client::claimed_client(assertion);
        let client_id = match (request.client_id.as_deref(), claimed.as_deref()) {
            (Some(given), Some(claimed)) if given != claimed => {
                return refuse(OAuthError::InvalidClient("client_id and the assertion's iss differ"), "issuer");
            }
            (Some(given), _) => given.to_string(),
            (None, Some(claimed)) => claimed.to_string(),
            (None, None) => {
                let message =
                    "the client could not be identified: client_assertion must be a JWT whose iss is the client_id";
                return refuse(OAuthError::InvalidClient(message), "malformed");
            }
        };
        let Some(credentials) = self.store.client_credentials(&client_id).await? else {
            return refuse(OAuthError::InvalidClient("unknown or revoked client"), "unknown_client");
        };
        let now = self.clock.now_ms();
        let checked = match client::check_assertion(assertion, &credentials, &self.assertion_rules(), now) {
            Ok(checked) => checked,
            Err(e) => return refuse(OAuthError::InvalidClient(describe(e)), e.code()),
        };
        let jti = client::jti_hash(&credentials.client_id, &checked.jti);
        if !self.store.remember_assertion(credentials.row, &jti, checked.expires_at, now).await? {
            let e = AssertionError::Replayed;
            return refuse(OAuthError::InvalidClient(describe(e)), e.code());
        }
        Ok(Ok(self.issue_access_token(&credentials, now).await?))
    }

    async fn issue_access_token(&self, client: &ClientCredentials, now: i64) -> ServiceResult<IssuedAccessToken> {
        let lifetime = self.settings.oauth.access_token_lifetime;
        let token = AccessToken::generate();
        let expires_at = now + i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX / 2);
        self.store.add_access_token(client.row, &self.tokens.hash_access(&token), now, expires_at).await?;
        let actor = self.store.client_actor(client.row).await?;
        let event = NewEvent::new(EventType::ClientTokenIssued)
            .by(&actor)
            .details(json!({"client_id": client.client_id, "expires_in": lifetime.as_secs()}));
        self.audit.record(event).await?;
        Ok(IssuedAccessToken {
            access_token: token.expose().to_string(),
            token_type: "Bearer",
            expires_in: lifetime.as_secs(),
        })
    }

    fn assertion_rules(&self) -> AssertionRules {
        let oauth = &self.settings.oauth;
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4);
        AssertionRules {
            audience: oauth.token_endpoint.clone(),
            max_lifetime_ms: ms(oauth.max_assertion_lifetime),
            skew_ms: ms(oauth.clock_skew),
        }
    }

    /// Resolves an API request's bearer token: a client's access token, or a long-lived token
    /// unless its organisation has turned those off.
    pub async fn authenticate_api(&self, ip: IpAddr, presented: Option<&str>, route: &str) -> ServiceResult<Actor> {
        if let Some(token) = presented.and_then(AccessToken::parse) {
            let hash = self.tokens.hash_access(&token);
            if let Some(actor) = self.store.actor_for_access_token(&hash, self.clock.now_ms()).await? {
                return Ok(actor);
            }
            return Err(self.failed_authentication(ip, route).await);
        }
        let TokenActor { actor, long_lived_tokens_allowed } = self.authenticate_token(ip, presented, route).await?;
        if !long_lived_tokens_allowed {
            let event = NewEvent::new(EventType::AuthFailed)
                .by(&actor)
                .details(json!({"route": route, "reason": "long_lived_tokens_off"}));
            self.record_refusal(&actor, event).await?;
            return Err(ServiceError::LongLivedTokensOff);
        }
        Ok(actor)
    }

    /// Whether an organisation accepts long-lived API tokens: an org-admin asks of its own, an
    /// operator of any (another organisation is not found for an org-admin).
    pub async fn token_policy(&self, actor: &Actor, code: &str) -> ServiceResult<TokenPolicy> {
        let org_id = self.policy_org(actor, code).await?;
        let allowed = self.store.long_lived_tokens_allowed(org_id).await?;
        Ok(TokenPolicy { organisation: code.trim().to_ascii_uppercase(), long_lived_tokens: allowed })
    }

    pub async fn set_token_policy(&self, actor: &Actor, code: &str, allowed: bool) -> ServiceResult<TokenPolicy> {
        let org_id = self.policy_org(actor, code).await?;
        self.set_long_lived_tokens(Some(actor), org_id, allowed).await?;
        Ok(TokenPolicy { organisation: code.trim().to_ascii_uppercase(), long_lived_tokens: allowed })
    }

    /// Turns an organisation's long-lived API tokens off or on (audited).
    pub async fn set_long_lived_tokens(&self, by: Option<&Actor>, org_id: i64, allowed: bool) -> ServiceResult<()> {
        self.store.set_long_lived_tokens(org_id, allowed).await?;
        let mut event = NewEvent::new(EventType::TokenPolicyChanged)
            .concerning([org_id])
            .details(json!({"long_lived_tokens": allowed}));
        if let Some(actor) = by {
            event = event.by(actor);
        }
        self.audit.record(event).await?;
        Ok(())
    }

    async fn policy_org(&self, actor: &Actor, code: &str) -> ServiceResult<i64> {
        match actor.role {
            Role::Operator => Ok(self.store.organisation_by_code(code).await?.id),
            Role::OrgAdmin if code.trim().eq_ignore_ascii_case(&actor.org_code) => Ok(actor.org_id),
            Role::OrgAdmin => Err(crate::store::StoreError::NotFound.into()),
            _ => Err(ServiceError::Refused("your role does not allow this action".into())),
        }
    }
}

/// What the client is told: which rule the assertion broke, never its content.
fn describe(e: AssertionError) -> &'static str {
    match e {
        AssertionError::Malformed => "client_assertion is not a well-formed signed JWT",
        AssertionError::Algorithm => "the assertion is not signed with the algorithm registered for this client",
        AssertionError::Signature => "the assertion's signature does not verify with the client's registered key",
        AssertionError::Issuer => "the assertion's iss and sub must both be the client_id",
        AssertionError::Audience => "the assertion's aud must be this service's token endpoint URL",
        AssertionError::Expired => "the assertion has expired or has no exp",
        AssertionError::TooLong => "the assertion's exp is more than 5 minutes ahead",
        AssertionError::NotYetValid => "the assertion is not valid yet (nbf or iat in the future)",
        AssertionError::Jti => "the assertion needs a jti (a unique id, at most 256 characters)",
        AssertionError::Replayed => "this assertion (its jti) has been used before; sign a new one",
    }
}

impl From<FieldError> for ServiceError {
    fn from(e: FieldError) -> Self {
        ServiceError::Invalid(vec![e])
    }
}
