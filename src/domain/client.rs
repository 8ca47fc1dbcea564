//! Systems as clients: OAuth 2.0 client credentials with a signed JWT client assertion (RFC 7523
//! `private_key_jwt`). A client registers a public key (a JWK); it proves itself by signing a
//! short-lived assertion, and gets a short-lived opaque access token. Signatures are checked by
//! the `jsonwebtoken` crate; the claims against this service's clock and rules here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::FieldError;
use super::role::Role;
use crate::clock::Millis;

/// The only `client_assertion_type` accepted (RFC 7523 s2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A registered client as its organisation's admin sees it. No secret: only the public key's
/// thumbprint (RFC 7638), so a person can tell keys apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiClient {
    /// The `client_id`: the assertion's `iss` and `sub`.
    pub client_id: String,
    pub name: String,
    pub role: Role,
    pub organisation: String,
    /// The signing algorithm the client's assertions must use.
    pub alg: String,
    pub key_thumbprint: String,
    /// The users row the client acts through: the audit trail's `user_id` for its actions.
    pub user_id: i64,
    #[serde(serialize_with = "crate::clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Millis,
    #[serde(serialize_with = "crate::clock::as_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Millis>,
}

/// A live client's key, as the token endpoint needs it.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// The `api_clients` row.
    pub row: i64,
    pub client_id: String,
    pub alg: String,
    pub public_jwk: String,
}

/// The roles a client may act as: never operator (the index's own staff are people).
pub fn client_role(role: Role) -> Result<Role, FieldError> {
    match role {
        Role::Practitioner | Role::OrgAdmin | Role::IgOfficer => Ok(role),
        Role::Operator => Err(FieldError::new("role", "invalid_role", "a client may not act as an operator")),
    }
}

pub fn new_client_id() -> String {
    format!("clc_{}", uuid::Uuid::new_v4().simple())
}

/// A client's public key, parsed and checked: public members only, an asymmetric algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub alg: Algorithm,
    /// The JWK with public members only (what is stored).
    pub jwk: String,
    pub thumbprint: String,
}

const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const RSA_ALGS: [Algorithm; 6] =
    [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS384, Algorithm::PS512];

fn bad(code: &'static str, message: &str) -> FieldError {
    FieldError::new("jwk", code, message)
}

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, FieldError> {
    jwk.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| {
        FieldError::new(format!("jwk.{name}"), "required", format!("the key's `{name}` member is required"))
    })
}

fn decoded_len(value: &str, name: &str) -> Result<usize, FieldError> {
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map(|b| b.len())
        .map_err(|_| FieldError::new(format!("jwk.{name}"), "invalid_key", format!("`{name}` must be base64url")))
}

fn alg_name(alg: Algorithm) -> String {
    format!("{alg:?}")
}

/// Parses a posted JWK and the optional separately given `alg`. Symmetric keys, `none`, HMAC
/// algorithms and private keys are refused; the error never repeats the key.
pub fn parse_public_key(jwk: &Value, alg: Option<&str>) -> Result<PublicKey, FieldError> {
    let Some(obj) = jwk.as_object() else { return Err(bad("invalid_key", "jwk must be a JSON Web Key object")) };
    if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
        return Err(bad(
            "private_key",
            "this is a private key or a shared secret: it was not stored; treat it as exposed, make a new key \
             pair and post only the public key",
        ));
    }
    let named = [obj.get("alg").and_then(Value::as_str), alg].into_iter().flatten().collect::<Vec<_>>();
    if named.iter().any(|a| a.eq_ignore_ascii_case("none") || a.to_ascii_uppercase().starts_with("HS")) {
        return Err(bad("invalid_alg", "alg must be an asymmetric signature algorithm (RS256, PS256, ES256, …)"));
    }
    if let [a, b] = named.as_slice()
        && a != b
    {
        return Err(bad("invalid_alg", "the key's alg and the alg given beside it differ"));
    }
    if obj.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
        return Err(bad("invalid_key", "the key's `use` must be `sig`"));
    }
    let named: Option<Algorithm> =
        match named.first() {
            Some(a) => Some(a.parse::<Algorithm>().map_err(|_| {
                bad("invalid_alg", "alg must be RS256, RS384, RS512, PS256, PS384, PS512, ES256 or ES384")
            })?),
            None => None,
        };
    let kty = obj.get("kty").and_then(Value::as_str).unwrap_or_default();
    let (alg, required, decoding) = match kty {
        "RSA" => {
            let (n, e) = (member(obj, "n")?, member(obj, "e")?);
            let bits = decoded_len(n, "n")? * 8;
            decoded_len(e, "e")?;
            if bits < 2048 {
                return Err(bad("weak_key", "an RSA key must be at least 2048 bits"));
            }
            let Some(alg) = named else {
                return Err(FieldError::new(
                    "alg",
                    "required",
                    "alg is required for an RSA key: RS256, RS384, RS512, PS256, PS384 or PS512",
                ));
            };
            if !RSA_ALGS.contains(&alg) {
                return Err(bad("invalid_alg", "an RSA key signs with RS256, RS384, RS512, PS256, PS384 or PS512"));
            }
            (alg, json!({"e": e, "kty": "RSA", "n": n}), DecodingKey::from_rsa_components(n, e))
        }
        "EC" => {
            let (crv, x, y) = (member(obj, "crv")?, member(obj, "x")?, member(obj, "y")?);
            let (alg, size) = match crv {
                "P-256" => (Algorithm::ES256, 32),
                "P-384" => (Algorithm::ES384, 48),
                _ => return Err(bad("invalid_key", "an EC key must be on curve P-256 or P-384")),
            };
            if named.is_some_and(|n| n != alg) {
                return Err(bad("invalid_alg", "the curve and alg disagree (P-256 signs ES256, P-384 ES384)"));
            }
            if decoded_len(x, "x")? != size || decoded_len(y, "y")? != size {
                return Err(bad("invalid_key", "the key's x and y do not fit its curve"));
            }
            (alg, json!({"crv": crv, "kty": "EC", "x": x, "y": y}), DecodingKey::from_ec_components(x, y))
        }
        "oct" => return Err(bad("symmetric_key", "a shared secret (kty oct) is refused: register a public key")),
        _ => return Err(bad("invalid_key", "kty must be RSA or EC")),
    };
    decoding.map_err(|_| bad("invalid_key", "the key could not be read"))?;
    // RFC 7638: the required members, lexicographic order, no whitespace (serde_json sorts keys).
    let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(required.to_string().as_bytes()));
    let mut stored = required;
    stored["alg"] = json!(alg_name(alg));
    stored["use"] = json!("sig");
    if let Some(kid) = obj.get("kid").and_then(Value::as_str).filter(|k| k.len() <= 200) {
        stored["kid"] = json!(kid);
    }
    Ok(PublicKey { alg, jwk: stored.to_string(), thumbprint })
}

/// What a token request must satisfy beyond the signature.
#[derive(Debug, Clone)]
pub struct AssertionRules {
    /// This service's token endpoint URL: the assertion's `aud`.
    pub audience: String,
    /// How far ahead `exp` may be.
    pub max_lifetime_ms: Millis,
    /// Clock skew tolerated between the client and this service.
    pub skew_ms: Millis,
}

/// Why an assertion was refused: said to the client in general terms, kept in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error("the assertion is not a well-formed signed JWT")]
    Malformed,
    #[error("the assertion is not signed with the algorithm registered for this client")]
    Algorithm,
    #[error("the assertion's signature does not verify with the client's registered key")]
    Signature,
    #[error("the assertion's iss and sub must both be the client_id")]
    Issuer,
    #[error("the assertion's aud must be this service's token endpoint")]
    Audience,
    #[error("the assertion has expired (or has no exp)")]
    Expired,
    #[error("the assertion's exp is too far ahead")]
    TooLong,
    #[error("the assertion is not valid yet (nbf or iat is in the future)")]
    NotYetValid,
    #[error("the assertion needs a jti")]
    Jti,
    #[error("the assertion has been used before")]
    Replayed,
}

impl AssertionError {
    /// A stable name for the audit trail.
    pub fn code(self) -> &'static str {
        match self {
            AssertionError::Malformed => "malformed",
            AssertionError::Algorithm => "algorithm",
            AssertionError::Signature => "signature",
            AssertionError::Issuer => "issuer",
            AssertionError::Audience => "audience",
            AssertionError::Expired => "expired",
            AssertionError::TooLong => "too_long",
            AssertionError::NotYetValid => "not_yet_valid",
            AssertionError::Jti => "jti",
            AssertionError::Replayed => "replayed",
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Value>,
    exp: Option<f64>,
    nbf: Option<f64>,
    iat: Option<f64>,
    jti: Option<String>,
}

/// An assertion that passed: its `jti` (to refuse a replay) and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedAssertion {
    pub jti: String,
    pub expires_at: Millis,
}

/// The client an assertion claims to come from (its `iss`), read before any check, only to find
/// which key to check it with.
pub fn claimed_client(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    claims.iss.filter(|s| !s.is_empty() && s.len() <= 200)
}

/// Checks an assertion against the client's registered key and algorithm, then its claims
/// against `now` (this service's clock, not the system's).
pub fn check_assertion(
    assertion: &str,
    client: &ClientCredentials,
    rules: &AssertionRules,
    now: Millis,
) -> Result<CheckedAssertion, AssertionError> {
    let alg: Algorithm = client.alg.parse().map_err(|_| AssertionError::Algorithm)?;
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| AssertionError::Malformed)?;
    if header.alg != alg {
        return Err(AssertionError::Algorithm);
    }
    let key = public_decoding_key(&client.public_jwk).ok_or(AssertionError::Signature)?;
    // The crate checks the signature and the algorithm; time-based claims are checked below
    // against this service's clock.
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Claims>(assertion, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => AssertionError::Signature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => AssertionError::Algorithm,
            _ => AssertionError::Malformed,
        }
    })?;
    let claims = data.claims;
    let is_client = |v: &Option<String>| v.as_deref() == Some(client.client_id.as_str());
    if !is_client(&claims.iss) || !is_client(&claims.sub) {
        return Err(AssertionError::Issuer);
    }
    let audience_ok = match &claims.aud {
        Some(Value::String(a)) => a == &rules.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(rules.audience.as_str())),
        _ => false,
    };
    if !audience_ok {
        return Err(AssertionError::Audience);
    }
    let ms = |secs: f64| (secs * 1000.0) as Millis;
    let Some(exp) = claims.exp.filter(|e| e.is_finite()).map(ms) else { return Err(AssertionError::Expired) };
    if exp + rules.skew_ms <= now {
        return Err(AssertionError::Expired);
    }
    if exp > now + rules.max_lifetime_ms + rules.skew_ms {
        return Err(AssertionError::TooLong);
    }
    let future = |t: Option<f64>| t.filter(|t| t.is_finite()).map(ms).is_some_and(|t| t > now + rules.skew_ms);
    if future(claims.nbf) || future(claims.iat) {
        return Err(AssertionError::NotYetValid);
    }
    let jti = claims.jti.filter(|j| !j.is_empty() && j.len() <= 256).ok_or(AssertionError::Jti)?;
    Ok(CheckedAssertion { jti, expires_at: exp + rules.skew_ms })
}

fn public_decoding_key(jwk: &str) -> Option<DecodingKey> {
    let jwk: Value = serde_json::from_str(jwk).ok()?;
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    match text("kty")? {
        "RSA" => DecodingKey::from_rsa_components(text("n")?, text("e")?).ok(),
        "EC" => DecodingKey::from_ec_components(text("x")?, text("y")?).ok(),
        _ => None,
    }
}

/// What is stored of a seen `jti`: a hash bound to the client, never the value.
pub fn jti_hash(client_id: &str, jti: &str) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(b"child-locator client assertion jti v1\0");
    hasher.update(client_id.as_bytes());
    hasher.update([0]);
    hasher.update(jti.as_bytes());
    hasher.finalize().to_vec()
}

/// The prefix of an access token issued at the token endpoint (a user's long-lived token has `clk_`).
pub const ACCESS_PREFIX: &str = "cla_";

/// A short-lived access token in plaintext: exists between issue and the response, or between
/// the request and its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn generate() -> AccessToken {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        AccessToken(format!("{ACCESS_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The shape only; `None` for anything that is not one.
    pub fn parse(text: &str) -> Option<AccessToken> {
        let body = text.strip_prefix(ACCESS_PREFIX)?;
        (body.len() == 43 && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            .then(|| AccessToken(text.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC: &str = r#"{"kty":"EC","crv":"P-256","x":"iRdSAhMD0v1AbWueqt_FSXByfYWi8KvGSOmsrRmF4-o","y":"obA0vuSik51vUSq9ssyz9YezMbfA-jud6gwAheM2YJY"}"#;

    #[test]
    fn an_ec_key_gets_es256_and_a_thumbprint() {
        let key = parse_public_key(&serde_json::from_str(EC).unwrap(), None).unwrap();
        assert_eq!(key.alg, Algorithm::ES256);
        assert_eq!(key.thumbprint.len(), 43);
    }

    #[test]
    fn private_and_symmetric_keys_and_hmac_are_refused_without_echo() {
        let mut private: Value = serde_json::from_str(EC).unwrap();
        private["d"] = json!("c2VjcmV0LXNjYWxhci12YWx1ZS10aGF0LWlzLXByaXZhdGU");
        let e = parse_public_key(&private, None).unwrap_err();
        assert_eq!(e.code, "private_key");
        assert!(!e.message.contains("c2VjcmV0"));
        let oct = json!({"kty": "oct", "k": "AAAA"});
        assert_eq!(parse_public_key(&oct, None).unwrap_err().code, "private_key");
        let oct = json!({"kty": "oct"});
        assert_eq!(parse_public_key(&oct, None).unwrap_err().code, "symmetric_key");
        let ec: Value = serde_json::from_str(EC).unwrap();
        assert_eq!(parse_public_key(&ec, Some("HS256")).unwrap_err().code, "invalid_alg");
        assert_eq!(parse_public_key(&ec, Some("none")).unwrap_err().code, "invalid_alg");
        assert_eq!(parse_public_key(&ec, Some("RS256")).unwrap_err().code, "invalid_alg");
    }

    #[test]
    fn an_access_token_parses_and_hides_in_debug() {
        let t = AccessToken::generate();
        assert_eq!(AccessToken::parse(t.expose()), Some(t.clone()));
        assert!(!format!("{t:?}").contains(t.expose()));
        assert!(AccessToken::parse("clk_abc").is_none());
    }
}
