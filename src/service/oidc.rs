//! People signing in through their organisation's OpenID Connect provider: the authorization
//! code flow with PKCE, `state` and `nonce`; the `openidconnect` crate discovers the provider and
//! validates the ID token (signature against the provider's JWKS, fetched again when a key is not
//! found, so a key rotation needs nothing; issuer, audience, expiry with a small skew; never
//! `alg: none`, never a shared-secret algorithm). Users appear on first sign-in, known by issuer
//! and subject; their role comes from the organisation's claim mapping each time they sign in.
//! Every sign-in, refusal and role change is an audit event. Guide: docs/operator-guide.md.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet,
    CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AdditionalClaims, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, SubjectIdentifier, TokenResponse,
    UserInfoClaims,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Service, ServiceError, ServiceResult, sealing};
use crate::audit::{EventType, NewEvent};
use crate::clock::Millis;
use crate::domain::identity_provider::{
    self, ClaimRefusal, ClientAuth, ProviderInput, RoleMapping, SecretRef, check_tenant_and_domain, claim_values,
};
use crate::domain::role::Role;
use crate::domain::user::Actor;
use crate::store::StoreError;
use crate::store::identity_providers::StoredProvider;

/// How long a sign-in may take between the redirect to the provider and the callback.
pub const SIGN_IN_WINDOW_MS: Millis = 10 * 60 * 1000;
/// Clock difference tolerated between the provider and this service for `exp` and `iat`.
pub const CLOCK_SKEW_MS: Millis = 60 * 1000;
/// How long a provider's discovery document and keys are used before being fetched again
/// (sooner when an ID token names a key they lack).
const DISCOVERY_TTL_MS: Millis = 60 * 60 * 1000;

/// Providers' discovery documents with their keys, by issuer, and the HTTP client that fetches
/// them (redirects not followed: a redirect is a way to make this service fetch elsewhere).
#[derive(Default)]
pub struct ProviderCache {
    http: std::sync::OnceLock<reqwest::Client>,
    documents: Mutex<HashMap<String, (Millis, CoreProviderMetadata)>>,
}

impl ProviderCache {
    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new())
        })
    }
}

/// Every claim of a verified ID token or userinfo answer, for the role and tenant rules.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AllClaims {
    #[serde(flatten)]
    pub claims: Map<String, Value>,
}
impl AdditionalClaims for AllClaims {}

/// An organisation's provider as the operator and its org-admin see it: never the secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderView {
    pub organisation: String,
    pub label: String,
    pub issuer: String,
    pub client_id: String,
    /// `sealed` (stored encrypted), `reference` or `private_key`.
    pub client_authentication: &'static str,
    /// The reference (`env:NAME`, `file:/path`) when the secret or key is read from one.
    pub reference: Option<String>,
    pub allowed_tenant: Option<String>,
    pub allowed_domain: Option<String>,
    pub scopes: String,
    pub role_claim: String,
    pub roles: RoleMapping,
    pub session_max_minutes: Option<i64>,
}

impl From<&StoredProvider> for ProviderView {
    fn from(p: &StoredProvider) -> Self {
        let (client_authentication, reference) =
            match (&p.client_secret_sealed, &p.client_secret_ref, &p.private_key_ref) {
                (Some(_), _, _) => ("sealed", None),
                (_, Some(r), _) => ("reference", Some(r.clone())),
                (_, _, r) => ("private_key", r.clone()),
            };
        ProviderView {
            organisation: p.org_code.clone(),
            label: p.label.clone(),
            issuer: p.issuer.clone(),
            client_id: p.client_id.clone(),
            client_authentication,
            reference,
            allowed_tenant: p.allowed_tenant.clone(),
            allowed_domain: p.allowed_domain.clone(),
            scopes: p.scopes.clone(),
            role_claim: p.role_claim.clone(),
            roles: p.roles.clone(),
            session_max_minutes: p.session_max_minutes,
        }
    }
}

/// An organisation offered on the sign-in page.
pub struct ProviderChoice {
    pub org_code: String,
    pub org_name: String,
    pub label: String,
}

/// Where to send the browser, and the `state` the browser must bring back (the pages keep it in
/// a cookie too, so a callback in another browser is refused).
pub struct SignInStart {
    pub authorize_url: String,
    pub state: String,
}

/// What the provider's redirect back brought.
#[derive(Default)]
pub struct Callback<'a> {
    pub state: Option<&'a str>,
    pub code: Option<&'a str>,
    /// The provider's `error` parameter (the person cancelled, or the provider refused).
    pub error: Option<&'a str>,
    /// The `state` this browser's cookie holds.
    pub browser_state: Option<&'a str>,
}

/// A person signed in: who, and when their session must end at the latest.
pub struct SignedIn {
    pub actor: Actor,
    pub session_ends_at: Millis,
}

/// Why a provider sign-in did not happen.
#[derive(Debug)]
pub enum SignInError {
    /// No such organisation, or it has no provider.
    NoProvider,
    /// The provider could not be reached or answered nonsense (nothing was signed in).
    ProviderUnavailable,
    /// Refused, for the reason named (already audited).
    Refused(&'static str),
    /// Too many sign-ins started from this address; try again after this many seconds.
    TooManyStarts(u64),
    Service(ServiceError),
}

impl From<ServiceError> for SignInError {
    fn from(e: ServiceError) -> Self {
        SignInError::Service(e)
    }
}

impl From<StoreError> for SignInError {
    fn from(e: StoreError) -> Self {
        SignInError::Service(e.into())
    }
}

impl From<crate::audit::AuditError> for SignInError {
    fn from(e: crate::audit::AuditError) -> Self {
        SignInError::Service(e.into())
    }
}

/// What a sealed client secret and a sealed sign-in in flight are bound to (`sealing`).
const SECRET_CONTEXT: &[u8] = b"identity provider client secret";
const SIGN_IN_CONTEXT: &[u8] = b"sign-in in flight";

/// The sealed part of a sign-in in flight.
#[derive(Serialize, Deserialize)]
struct Pending {
    nonce: String,
    verifier: String,
}

/// Signature algorithms accepted on ID tokens: public-key ones only (no `none`, no HMAC).
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Why an ID token was refused (the audit event names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenProblem {
    /// Signed by a key the provider does not publish, or not verifiable.
    Signature,
    Expired,
    Issuer,
    Audience,
    Nonce,
    /// Anything else (malformed, issued in the future, an algorithm not allowed).
    Invalid,
}

impl IdTokenProblem {
    pub fn reason(self) -> &'static str {
        match self {
            IdTokenProblem::Signature => "id_token_signature",
            IdTokenProblem::Expired => "id_token_expired",
            IdTokenProblem::Issuer => "id_token_issuer",
            IdTokenProblem::Audience => "id_token_audience",
            IdTokenProblem::Nonce => "id_token_nonce",
            IdTokenProblem::Invalid => "id_token_invalid",
        }
    }
}

/// A verified ID token's subject, expiry and every claim.
#[derive(Debug)]
pub struct VerifiedIdToken {
    pub subject: String,
    pub expires_at: Millis,
    pub claims: Map<String, Value>,
}

/// Checks an ID token for this client of this issuer, at `now` (the service's clock), with the
/// provider's keys: the openidconnect crate verifies signature, issuer, audience, expiry and
/// nonce; here only the time it is asked at, the skew and the allowed algorithms are chosen.
pub fn verify_id_token(
    id_token: &CoreIdToken,
    issuer: &str,
    client_id: &str,
    jwks: &CoreJsonWebKeySet,
    nonce: &Nonce,
    now: Millis,
) -> Result<VerifiedIdToken, IdTokenProblem> {
    use openidconnect::{ClaimsVerificationError as E, SignatureVerificationError as S};
    let issuer_url = IssuerUrl::new(issuer.to_string()).map_err(|_| IdTokenProblem::Issuer)?;
    let verifier =
        CoreIdTokenVerifier::new_public_client(ClientId::new(client_id.to_string()), issuer_url, jwks.clone())
            .set_allowed_algs(ALLOWED_ALGS)
            .set_time_fn(move || chrono::DateTime::from_timestamp_millis(now - CLOCK_SKEW_MS).unwrap_or_default())
            .set_issue_time_verifier_fn(move |iat| {
                if iat.timestamp_millis() > now + CLOCK_SKEW_MS { Err("issued in the future".into()) } else { Ok(()) }
            });
    let claims = id_token.claims(&verifier, nonce).map_err(|e| match e {
        E::Expired(_) => IdTokenProblem::Expired,
        E::InvalidIssuer(_) => IdTokenProblem::Issuer,
        E::InvalidAudience(_) => IdTokenProblem::Audience,
        E::InvalidNonce(_) => IdTokenProblem::Nonce,
        E::SignatureVerification(S::NoSignature | S::DisallowedAlg(_) | S::UnsupportedAlg(_)) => {
            IdTokenProblem::Invalid
        }
        E::SignatureVerification(_) => IdTokenProblem::Signature,
        _ => IdTokenProblem::Invalid,
    })?;
    let subject = claims.subject().as_str().to_string();
    let expires_at = claims.expiration().timestamp_millis();
    // The payload of the token just verified, for the claims the crate does not model (groups,
    // roles, tid, upn).
    let raw = id_token.to_string();
    let payload = raw.split('.').nth(1).and_then(|p| URL_SAFE_NO_PAD.decode(p).ok());
    let all: Map<String, Value> = payload.and_then(|p| serde_json::from_slice(&p).ok()).unwrap_or_default();
    Ok(VerifiedIdToken { subject, expires_at, claims: all })
}

/// The key a client assertion is signed with: RSA (PKCS#1 or PKCS#8 PEM, RS256) or P-256
/// (PKCS#8 PEM, ES256).
fn assertion_key(pem: &str) -> Option<(jsonwebtoken::Algorithm, jsonwebtoken::EncodingKey)> {
    use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
    use rsa::pkcs8::DecodePrivateKey;
    let rsa_key = rsa::RsaPrivateKey::from_pkcs1_pem(pem).ok().or_else(|| rsa::RsaPrivateKey::from_pkcs8_pem(pem).ok());
    if let Some(key) = rsa_key {
        let der = key.to_pkcs1_der().ok()?;
        return Some((jsonwebtoken::Algorithm::RS256, jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes())));
    }
    let (label, doc) = rsa::pkcs8::der::SecretDocument::from_pem(pem).ok()?;
    (label == "PRIVATE KEY")
        .then(|| (jsonwebtoken::Algorithm::ES256, jsonwebtoken::EncodingKey::from_ec_der(doc.as_bytes())))
}

fn reference_value(text: &str) -> Option<String> {
    match SecretRef::parse(text, "reference").ok()? {
        SecretRef::Env(name) => std::env::var(name).ok().map(|v| v.trim().to_string()),
        SecretRef::File(path) => std::fs::read_to_string(path).ok().map(|v| v.trim().to_string()),
    }
}

impl Service {
    fn secret_seal_key(&self) -> [u8; 32] {
        self.derive_key("child-locator 2026-12 identity provider client secret v1")
    }

    fn state_hash(&self, state: &str) -> Vec<u8> {
        let key = self.derive_key("child-locator 2026-12 oidc state v1");
        blake3::keyed_hash(&key, state.as_bytes()).as_bytes().to_vec()
    }

    /// An operator sets (or replaces) an organisation's provider; `by` is `None` from the
    /// command line. A secret is sealed before it is stored and never shown again.
    pub async fn set_identity_provider(
        &self,
        by: Option<&Actor>,
        org_code: &str,
        input: ProviderInput,
    ) -> ServiceResult<ProviderView> {
        let org = self.store.organisation_by_code(org_code).await?;
        let settings = input.into_settings()?;
        let (sealed, secret_ref, key_ref) = match &settings.auth {
            ClientAuth::Secret(secret) => {
                (Some(sealing::seal(&self.secret_seal_key(), SECRET_CONTEXT, secret.as_bytes()).to_bytes()), None, None)
            }
            ClientAuth::SecretRef(r) => (None, Some(r.as_text()), None),
            ClientAuth::PrivateKey(r) => (None, None, Some(r.as_text())),
        };
        let stored = StoredProvider {
            org_id: org.id,
            org_code: org.code.clone(),
            org_name: org.name.clone(),
            label: settings.label,
            issuer: settings.issuer,
            client_id: settings.client_id,
            client_secret_sealed: sealed,
            client_secret_ref: secret_ref,
            private_key_ref: key_ref,
            allowed_tenant: settings.allowed_tenant,
            allowed_domain: settings.allowed_domain,
            scopes: settings.scopes.join(" "),
            role_claim: settings.role_claim,
            roles: settings.roles,
            session_max_minutes: settings.session_max_minutes.map(i64::from),
            updated_at: self.clock.now_ms(),
        };
        self.store.put_provider(&stored, self.clock.now_ms()).await.map_err(|e| match e {
            StoreError::Conflict(_) => ServiceError::Conflict(
                "another organisation already uses this issuer and client_id: a provider belongs to one organisation"
                    .into(),
            ),
            other => other.into(),
        })?;
        self.oidc.documents.lock().unwrap_or_else(|p| p.into_inner()).remove(&stored.issuer);
        let view = ProviderView::from(&stored);
        let mut event = NewEvent::new(EventType::IdentityProviderChanged).concerning([org.id]).details(json!({
            "organisation": org.code, "issuer": view.issuer, "client_id": view.client_id,
            "client_authentication": view.client_authentication, "role_claim": view.role_claim, "roles": view.roles,
        }));
        if let Some(actor) = by {
            event = event.by(actor);
        }
        self.audit.record(event).await?;
        Ok(view)
    }

    /// An org-admin reads its own organisation's provider (another organisation's is not found);
    /// an operator any.
    pub async fn identity_provider_as(&self, actor: &Actor, org_code: &str) -> ServiceResult<ProviderView> {
        match actor.role {
            Role::Operator => self.identity_provider(org_code).await,
            Role::OrgAdmin if org_code.trim().eq_ignore_ascii_case(&actor.org_code) => {
                self.identity_provider(org_code).await
            }
            Role::OrgAdmin => Err(StoreError::NotFound.into()),
            _ => Err(ServiceError::Refused("your role does not allow this action".into())),
        }
    }

    pub async fn identity_provider(&self, org_code: &str) -> ServiceResult<ProviderView> {
        let org = self.store.organisation_by_code(org_code).await?;
        let provider = self.store.provider_of(org.id).await?.ok_or(StoreError::NotFound)?;
        Ok(ProviderView::from(&provider))
    }

    /// Removes an organisation's provider: its people can no longer sign in through it.
    pub async fn remove_identity_provider(&self, by: Option<&Actor>, org_code: &str) -> ServiceResult<()> {
        let org = self.store.organisation_by_code(org_code).await?;
        if !self.store.delete_provider(org.id).await? {
            return Err(StoreError::NotFound.into());
        }
        let mut event = NewEvent::new(EventType::IdentityProviderChanged)
            .concerning([org.id])
            .details(json!({"organisation": org.code, "removed": true}));
        if let Some(actor) = by {
            event = event.by(actor);
        }
        self.audit.record(event).await?;
        Ok(())
    }

    /// The organisations whose people can sign in through a provider.
    pub async fn provider_choices(&self) -> ServiceResult<Vec<ProviderChoice>> {
        Ok(self
            .store
            .providers()
            .await?
            .into_iter()
            .map(|p| ProviderChoice { org_code: p.org_code, org_name: p.org_name, label: p.label })
            .collect())
    }

    /// The provider's discovery document with its keys, from the cache unless `fresh`.
    async fn provider_document(&self, issuer: &str, fresh: bool) -> Result<CoreProviderMetadata, SignInError> {
        let now = self.clock.now_ms();
        if !fresh
            && let Some((at, doc)) = self.oidc.documents.lock().unwrap_or_else(|p| p.into_inner()).get(issuer)
            && now - at < DISCOVERY_TTL_MS
            && *at <= now
        {
            return Ok(doc.clone());
        }
        let issuer_url = IssuerUrl::new(issuer.to_string()).map_err(|_| SignInError::ProviderUnavailable)?;
        let doc = CoreProviderMetadata::discover_async(issuer_url, self.oidc.http()).await.map_err(|e| {
            tracing::warn!(error = %e, "an identity provider's discovery document or keys could not be fetched");
            SignInError::ProviderUnavailable
        })?;
        self.oidc.documents.lock().unwrap_or_else(|p| p.into_inner()).insert(issuer.to_string(), (now, doc.clone()));
        Ok(doc)
    }

    /// The secret this service authenticates to the provider with, when it uses one.
    fn client_secret(&self, provider: &StoredProvider) -> Result<Option<ClientSecret>, SignInError> {
        if let Some(sealed) = &provider.client_secret_sealed {
            let plain = sealing::open_bytes(&self.secret_seal_key(), SECRET_CONTEXT, sealed).and_then(|p| String::from_utf8(p).ok()).ok_or_else(|| {
                tracing::error!(org = %provider.org_code, "the identity provider's sealed client secret cannot be opened (was the index key rotated? set it again)");
                SignInError::ProviderUnavailable
            })?;
            return Ok(Some(ClientSecret::new(plain)));
        }
        if let Some(reference) = &provider.client_secret_ref {
            let value = reference_value(reference).ok_or_else(|| {
                tracing::error!(org = %provider.org_code, "the identity provider's client secret reference cannot be read");
                SignInError::ProviderUnavailable
            })?;
            return Ok(Some(ClientSecret::new(value)));
        }
        Ok(None)
    }

    /// A signed client assertion for the provider's token endpoint (RFC 7523), when the
    /// organisation authenticates with a private key.
    fn client_assertion(&self, provider: &StoredProvider, token_endpoint: &str) -> Result<Option<String>, SignInError> {
        let Some(reference) = &provider.private_key_ref else { return Ok(None) };
        let unreadable = || {
            tracing::error!(org = %provider.org_code, "the identity provider's private key cannot be read or used");
            SignInError::ProviderUnavailable
        };
        let pem = reference_value(reference).ok_or_else(unreadable)?;
        let (alg, key) = assertion_key(&pem).ok_or_else(unreadable)?;
        let now = self.clock.now_ms() / 1000;
        let mut jti = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut jti);
        let claims = json!({
            "iss": provider.client_id, "sub": provider.client_id, "aud": token_endpoint,
            "iat": now, "exp": now + 60, "jti": URL_SAFE_NO_PAD.encode(jti),
        });
        jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, &key).map(Some).map_err(|_| unreadable())
    }

    /// Starts a sign-in for an organisation's people: a sign-in in flight is stored (its `state`
    /// hashed; nonce and PKCE verifier sealed under `state`), and the provider's authorization
    /// URL returned.
    pub async fn begin_provider_sign_in(
        &self,
        ip: IpAddr,
        org_code: &str,
        redirect_uri: &str,
    ) -> Result<SignInStart, SignInError> {
        // Before anything is looked up: an address past its quota learns nothing, not even
        // which organisations have a provider.
        if let Some(retry_after) = self.sign_in_starts.blocked_for(ip) {
            return Err(SignInError::TooManyStarts(retry_after));
        }
        if self.sign_in_starts.record(ip) {
            return Err(SignInError::TooManyStarts(60));
        }
        let org = match self.store.organisation_by_code(org_code).await {
            Ok(org) => org,
            Err(StoreError::NotFound) => return Err(SignInError::NoProvider),
            Err(e) => return Err(e.into()),
        };
        let provider = self.store.provider_of(org.id).await?.ok_or(SignInError::NoProvider)?;
        let doc = self.provider_document(&provider.issuer, false).await?;
        let redirect = RedirectUrl::new(redirect_uri.to_string()).map_err(|_| SignInError::Refused("redirect_uri"))?;
        let client = CoreClient::from_provider_metadata(doc, ClientId::new(provider.client_id.clone()), None)
            .set_redirect_uri(redirect);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .set_pkce_challenge(challenge);
        for scope in provider.scopes.split_whitespace() {
            request = request.add_scope(Scope::new(scope.to_string()));
        }
        let (url, state, nonce) = request.url();
        let state = state.secret().clone();
        let pending = Pending { nonce: nonce.secret().clone(), verifier: verifier.secret().clone() };
        let plain = serde_json::to_vec(&pending).map_err(|_| SignInError::ProviderUnavailable)?;
        let sealed = sealing::seal(
            &blake3::derive_key("child-locator 2026-12 oidc sign-in v1", state.as_bytes()),
            SIGN_IN_CONTEXT,
            &plain,
        )
        .to_bytes();
        let now = self.clock.now_ms();
        self.store
            .add_sign_in(&self.state_hash(&state), org.id, &sealed, redirect_uri, now, now + SIGN_IN_WINDOW_MS)
            .await?;
        Ok(SignInStart { authorize_url: url.to_string(), state })
    }

    /// Records a refusal (the organisation's IG officers see it) and returns it.
    async fn refuse(&self, org_id: Option<i64>, actor: Option<&Actor>, reason: &'static str) -> SignInError {
        let mut event = NewEvent::new(EventType::SignInRefused).details(json!({"reason": reason}));
        if let Some(org) = org_id {
            event = event.concerning([org]);
        }
        if let Some(actor) = actor {
            event = event.by(actor);
        }
        tracing::info!(reason, "a sign-in through an identity provider was refused");
        match self.audit.record(event).await {
            Ok(_) => SignInError::Refused(reason),
            Err(e) => e.into(),
        }
    }

    /// Finishes a sign-in at the callback: the sign-in in flight is taken (single use), the code
    /// exchanged with PKCE, the ID token verified for the organisation that began it, the role
    /// decided from claims, the user found or created; the caller then starts the session.
    pub async fn finish_provider_sign_in(&self, ip: IpAddr, callback: Callback<'_>) -> Result<SignedIn, SignInError> {
        if let Some(retry) = self.failed_auth.blocked_for(ip) {
            tracing::warn!(retry_after_secs = retry, "provider sign-in refused: too many failures from this address");
            return Err(SignInError::Refused("too_many_failures"));
        }
        let result = self.finish_inner(callback).await;
        if matches!(result, Err(SignInError::Refused(_))) {
            self.failed_auth.record(ip);
        }
        result
    }

    async fn finish_inner(&self, callback: Callback<'_>) -> Result<SignedIn, SignInError> {
        let Some(state) = callback.state.filter(|s| !s.is_empty() && s.len() <= 512) else {
            return Err(self.refuse(None, None, "missing_state").await);
        };
        // The state is taken first, whatever else is wrong: it can never be used twice.
        let pending = self.store.take_sign_in(&self.state_hash(state)).await?;
        let Some(pending) = pending else { return Err(self.refuse(None, None, "unknown_or_used_state").await) };
        let org_id = pending.org_id;
        let same_browser =
            callback.browser_state.is_some_and(|b| blake3::hash(b.as_bytes()) == blake3::hash(state.as_bytes()));
        if !same_browser {
            return Err(self.refuse(Some(org_id), None, "state_not_from_this_browser").await);
        }
        if pending.expires_at <= self.clock.now_ms() {
            return Err(self.refuse(Some(org_id), None, "sign_in_expired").await);
        }
        if callback.error.is_some() {
            return Err(self.refuse(Some(org_id), None, "provider_error").await);
        }
        let Some(code) = callback.code.filter(|c| !c.is_empty() && c.len() <= 4096) else {
            return Err(self.refuse(Some(org_id), None, "missing_code").await);
        };
        let opened = sealing::open_bytes(
            &blake3::derive_key("child-locator 2026-12 oidc sign-in v1", state.as_bytes()),
            SIGN_IN_CONTEXT,
            &pending.sealed,
        )
        .and_then(|p| serde_json::from_slice::<Pending>(&p).ok());
        let Some(opened) = opened else { return Err(self.refuse(Some(org_id), None, "sign_in_unreadable").await) };
        // The organisation's provider, as it is now: the one the sign-in began with.
        let Some(provider) = self.store.provider_of(org_id).await? else {
            return Err(self.refuse(Some(org_id), None, "no_provider").await);
        };
        let doc = self.provider_document(&provider.issuer, false).await?;
        let secret = self.client_secret(&provider)?;
        let token_endpoint = doc.token_endpoint().map(|u| u.as_str().to_string()).unwrap_or_default();
        let assertion = self.client_assertion(&provider, &token_endpoint)?;
        let redirect = RedirectUrl::new(pending.redirect_uri.clone()).map_err(|_| SignInError::ProviderUnavailable)?;
        let mut client =
            CoreClient::from_provider_metadata(doc.clone(), ClientId::new(provider.client_id.clone()), secret)
                .set_redirect_uri(redirect);
        if assertion.is_some() {
            client = client.set_auth_type(AuthType::RequestBody);
        }
        let mut exchange = match client.exchange_code(AuthorizationCode::new(code.to_string())) {
            Ok(exchange) => exchange.set_pkce_verifier(PkceCodeVerifier::new(opened.verifier)),
            Err(_) => return Err(SignInError::ProviderUnavailable),
        };
        if let Some(assertion) = &assertion {
            exchange = exchange
                .add_extra_param("client_assertion_type", crate::domain::client::ASSERTION_TYPE)
                .add_extra_param("client_assertion", assertion.clone());
        }
        let tokens = match exchange.request_async(self.oidc.http()).await {
            Ok(tokens) => tokens,
            Err(openidconnect::RequestTokenError::ServerResponse(_)) => {
                return Err(self.refuse(Some(org_id), None, "code_refused_by_provider").await);
            }
            Err(e) => {
                tracing::warn!(error = %DescribeTokenError(&e), "the identity provider's token endpoint failed");
                return Err(SignInError::ProviderUnavailable);
            }
        };
        let Some(id_token) = tokens.id_token() else {
            return Err(self.refuse(Some(org_id), None, "no_id_token").await);
        };
        let nonce = Nonce::new(opened.nonce);
        let now = self.clock.now_ms();
        let mut verified = verify_id_token(id_token, &provider.issuer, &provider.client_id, doc.jwks(), &nonce, now);
        if verified.as_ref().err() == Some(&IdTokenProblem::Signature) {
            // A key the cached set lacks: the provider may have rotated its keys. Fetch them again, once.
            let fresh = self.provider_document(&provider.issuer, true).await?;
            verified = verify_id_token(id_token, &provider.issuer, &provider.client_id, fresh.jwks(), &nonce, now);
        }
        let verified = match verified {
            Ok(v) => v,
            Err(problem) => return Err(self.refuse(Some(org_id), None, problem.reason()).await),
        };
        let mut claims = verified.claims;
        if claims.get(&provider.role_claim).is_none()
            && let Ok(request) =
                client.user_info(tokens.access_token().clone(), Some(SubjectIdentifier::new(verified.subject.clone())))
        {
            // Some providers (NHS CIS2's roles) answer the role claim only at userinfo.
            match request.request_async::<AllClaims, _, CoreGenderClaim>(self.oidc.http()).await {
                Ok(info) => {
                    let info: UserInfoClaims<AllClaims, CoreGenderClaim> = info;
                    for (k, v) in &info.additional_claims().claims {
                        claims.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                Err(e) => tracing::warn!(error = %DescribeUserInfoError(&e), "the identity provider's userinfo failed"),
            }
        }
        self.admit(&provider, &verified.subject, verified.expires_at, &claims).await
    }

    /// The person is who the provider says; may they sign in here, and as what?
    async fn admit(
        &self,
        provider: &StoredProvider,
        subject: &str,
        id_token_expires_at: Millis,
        claims: &Map<String, Value>,
    ) -> Result<SignedIn, SignInError> {
        let org_id = provider.org_id;
        let known = self.store.provider_user(&provider.issuer, subject).await?;
        if let Some(user) = &known
            && user.org_id != org_id
        {
            return Err(self.refuse(Some(org_id), None, "subject_of_another_organisation").await);
        }
        let org = self.store.organisation_by_id(org_id).await?;
        let actor_of = |user_id: i64, name: &str, role: Role| Actor {
            user_id,
            user_name: name.to_string(),
            role,
            org_id,
            org_code: org.code.clone(),
            org_name: org.name.clone(),
            org_kind: org.kind,
            reported_lost_at: None,
            client_id: None,
        };
        if let Err(refusal) =
            check_tenant_and_domain(claims, provider.allowed_tenant.as_deref(), provider.allowed_domain.as_deref())
        {
            let actor = known.as_ref().map(|u| actor_of(u.user_id, &u.name, u.role));
            return Err(self.refuse(Some(org_id), actor.as_ref(), refusal.as_str()).await);
        }
        let role = provider.roles.role_for(&claim_values(claims, &provider.role_claim));
        let name = identity_provider::display_name(claims).unwrap_or_else(|| format!("A person at {}", org.name));
        let now = self.clock.now_ms();
        let actor = match (known, role) {
            (Some(user), None) => {
                let actor = actor_of(user.user_id, &user.name, user.role);
                if !user.revoked {
                    self.store.disable_provider_user(user.user_id, now).await?;
                    let event = NewEvent::new(EventType::RoleChanged).by(&actor).details(
                        json!({"user_id": user.user_id, "from": user.role.as_str(), "to": null, "disabled": true}),
                    );
                    self.audit.record(event).await?;
                }
                return Err(self.refuse(Some(org_id), Some(&actor), ClaimRefusal::NoRole.as_str()).await);
            }
            (None, None) => return Err(self.refuse(Some(org_id), None, ClaimRefusal::NoRole.as_str()).await),
            (Some(user), Some(role)) => {
                if user.revoked && !user.disabled_by_provider {
                    let actor = actor_of(user.user_id, &user.name, user.role);
                    return Err(self.refuse(Some(org_id), Some(&actor), "revoked_here").await);
                }
                self.store.refresh_provider_user(user.user_id, role, &name).await?;
                let actor = actor_of(user.user_id, &name, role);
                if user.role != role || user.revoked {
                    let event = NewEvent::new(EventType::RoleChanged).by(&actor).details(json!({
                        "user_id": user.user_id, "from": user.role.as_str(), "to": role.as_str(),
                        "enabled": user.revoked,
                    }));
                    self.audit.record(event).await?;
                }
                actor
            }
            (None, Some(role)) => {
                let mut unusable = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut unusable);
                let user_id = self
                    .store
                    .add_provider_user(org_id, &name, role, &provider.issuer, subject, &unusable, now)
                    .await?;
                let actor = actor_of(user_id, &name, role);
                let event = NewEvent::new(EventType::UserProvisioned)
                    .by(&actor)
                    .details(json!({"user_id": user_id, "role": role.as_str(), "issuer": provider.issuer}));
                self.audit.record(event).await?;
                actor
            }
        };
        let service_max = i64::try_from(self.settings.web.session_max.as_millis()).unwrap_or(i64::MAX);
        let mut ends = now.saturating_add(service_max).min(id_token_expires_at);
        if let Some(minutes) = provider.session_max_minutes {
            ends = ends.min(now + minutes * 60_000);
        }
        let event = NewEvent::new(EventType::SignedIn).by(&actor).details(json!({
            "via": "identity_provider", "issuer": provider.issuer, "session_ends_at": crate::clock::rfc3339(ends),
        }));
        self.audit.record(event).await?;
        Ok(SignedIn { actor, session_ends_at: ends })
    }

    /// Starts the session of a person who signed in through their provider.
    pub async fn start_provider_session(&self, id_hash: &[u8], user_id: i64, ends_at: Millis) -> ServiceResult<()> {
        let now = self.clock.now_ms();
        let idle_ms = i64::try_from(self.settings.web.session_idle.as_millis()).unwrap_or(i64::MAX);
        self.store.delete_expired_sessions(now, idle_ms).await?;
        Ok(self.store.create_provider_session(id_hash, user_id, now, ends_at).await?)
    }

    /// Whether this session began at a provider (sign-out then offers the provider's own).
    pub async fn session_via_provider(&self, id_hash: &[u8]) -> ServiceResult<bool> {
        Ok(self.store.session_provider_org(id_hash).await?.is_some())
    }

    /// The provider's end-session URL for an organisation (RP-initiated logout), if it has one.
    pub async fn provider_sign_out_url(&self, org_code: &str, back_to: &str) -> Option<(String, String)> {
        let org = self.store.organisation_by_code(org_code).await.ok()?;
        let provider = self.store.provider_of(org.id).await.ok()??;
        // The crate's metadata type does not keep `end_session_endpoint` (RP-Initiated Logout):
        // read it from the discovery document itself.
        let discovery = format!("{}/.well-known/openid-configuration", provider.issuer.trim_end_matches('/'));
        let response = self.oidc.http().get(discovery).send().await.ok()?.error_for_status().ok()?;
        let raw: Value = response.json().await.ok()?;
        let endpoint = raw.get("end_session_endpoint")?.as_str()?;
        // Only where the issuer itself may be (https, or http on loopback).
        identity_provider::parse_issuer(endpoint).ok()?;
        let mut url = url::Url::parse(endpoint).ok()?;
        url.query_pairs_mut()
            .append_pair("client_id", &provider.client_id)
            .append_pair("post_logout_redirect_uri", back_to);
        Some((provider.label, url.to_string()))
    }
}

/// A token endpoint failure without the response body (which could hold a code or token).
struct DescribeTokenError<'a, E: std::error::Error + 'static>(
    &'a openidconnect::RequestTokenError<
        E,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
);

impl<E: std::error::Error + 'static> std::fmt::Display for DescribeTokenError<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            openidconnect::RequestTokenError::ServerResponse(r) => write!(f, "refused: {:?}", r.error()),
            openidconnect::RequestTokenError::Request(_) => f.write_str("the request failed"),
            openidconnect::RequestTokenError::Parse(_, _) => f.write_str("the answer could not be read"),
            openidconnect::RequestTokenError::Other(_) => f.write_str("unexpected answer"),
        }
    }
}

/// A userinfo failure, without the body.
struct DescribeUserInfoError<'a, E: std::error::Error + 'static>(&'a openidconnect::UserInfoError<E>);

impl<E: std::error::Error + 'static> std::fmt::Display for DescribeUserInfoError<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            openidconnect::UserInfoError::ClaimsVerification(_) => f.write_str("its claims did not verify"),
            openidconnect::UserInfoError::Parse(_) => f.write_str("the answer could not be read"),
            openidconnect::UserInfoError::Request(_) => f.write_str("the request failed"),
            openidconnect::UserInfoError::Response(status, _, _) => write!(f, "status {status}"),
            _ => f.write_str("unexpected answer"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use openidconnect::core::{CoreEdDsaPrivateSigningKey, CoreIdTokenClaims};
    use openidconnect::{Audience, EmptyAdditionalClaims, PrivateSigningKey, StandardClaims};

    const ISSUER: &str = "https://idp.example";
    const NOW: Millis = 1_795_510_800_000;

    /// A test-only signer: an Ed25519 key the provider "publishes" (or not).
    fn key(kid: &str) -> CoreEdDsaPrivateSigningKey {
        let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let pem = signing.to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF).expect("pem");
        CoreEdDsaPrivateSigningKey::from_ed25519_pem(&pem, Some(openidconnect::JsonWebKeyId::new(kid.into())))
            .expect("key")
    }

    fn token(signer: &CoreEdDsaPrivateSigningKey, iss: &str, aud: &str, exp: Millis, nonce: &str) -> CoreIdToken {
        let at = |ms: Millis| chrono::DateTime::from_timestamp_millis(ms).expect("time");
        let claims = CoreIdTokenClaims::new(
            IssuerUrl::new(iss.into()).expect("issuer"),
            vec![Audience::new(aud.into())],
            at(exp),
            at(NOW - 1000),
            StandardClaims::new(SubjectIdentifier::new("person-1".into())),
            EmptyAdditionalClaims {},
        )
        .set_nonce(Some(Nonce::new(nonce.into())));
        CoreIdToken::new(claims, signer, CoreJwsSigningAlgorithm::EdDsa, None, None).expect("signed")
    }

    fn jwks(keys: &[&CoreEdDsaPrivateSigningKey]) -> CoreJsonWebKeySet {
        CoreJsonWebKeySet::new(keys.iter().map(|k| k.as_verification_key()).collect())
    }

    fn check(
        t: &CoreIdToken,
        set: &CoreJsonWebKeySet,
        client: &str,
        nonce: &str,
    ) -> Result<VerifiedIdToken, IdTokenProblem> {
        verify_id_token(t, ISSUER, client, set, &Nonce::new(nonce.into()), NOW)
    }

    #[test]
    fn a_good_id_token_verifies_and_yields_its_subject_and_expiry() {
        let k = key("k1");
        let v = check(&token(&k, ISSUER, "client-a", NOW + 60_000, "n1"), &jwks(&[&k]), "client-a", "n1").expect("ok");
        assert_eq!(v.subject, "person-1");
        assert_eq!(v.expires_at, NOW + 60_000);
    }

    #[test]
    fn an_id_token_signed_by_a_key_the_provider_does_not_publish_is_refused() {
        let (published, rogue) = (key("k1"), key("k1"));
        let t = token(&rogue, ISSUER, "client-a", NOW + 60_000, "n1");
        assert_eq!(check(&t, &jwks(&[&published]), "client-a", "n1").unwrap_err(), IdTokenProblem::Signature);
        let other_kid = key("k2");
        let t = token(&other_kid, ISSUER, "client-a", NOW + 60_000, "n1");
        assert_eq!(check(&t, &jwks(&[&published]), "client-a", "n1").unwrap_err(), IdTokenProblem::Signature);
    }

    #[test]
    fn an_expired_id_token_is_refused_beyond_the_skew_and_accepted_within_it() {
        let k = key("k1");
        let t = token(&k, ISSUER, "client-a", NOW - CLOCK_SKEW_MS - 1000, "n1");
        assert_eq!(check(&t, &jwks(&[&k]), "client-a", "n1").unwrap_err(), IdTokenProblem::Expired);
        let t = token(&k, ISSUER, "client-a", NOW - CLOCK_SKEW_MS / 2, "n1");
        assert!(check(&t, &jwks(&[&k]), "client-a", "n1").is_ok());
    }

    #[test]
    fn another_organisations_client_another_issuer_or_another_nonce_is_refused() {
        let k = key("k1");
        let t = token(&k, ISSUER, "client-a", NOW + 60_000, "n1");
        assert_eq!(check(&t, &jwks(&[&k]), "client-b", "n1").unwrap_err(), IdTokenProblem::Audience);
        assert_eq!(check(&t, &jwks(&[&k]), "client-a", "n2").unwrap_err(), IdTokenProblem::Nonce);
        let t = token(&k, "https://other.example", "client-a", NOW + 60_000, "n1");
        assert_eq!(check(&t, &jwks(&[&k]), "client-a", "n1").unwrap_err(), IdTokenProblem::Issuer);
    }

    #[test]
    fn an_unsigned_id_token_is_refused() {
        let k = key("k1");
        let good = token(&k, ISSUER, "client-a", NOW + 60_000, "n1").to_string();
        let payload = good.split('.').nth(1).expect("payload");
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let unsigned: CoreIdToken =
            serde_json::from_value(Value::String(format!("{header}.{payload}."))).expect("parses");
        assert!(check(&unsigned, &jwks(&[&k]), "client-a", "n1").is_err());
    }
}
