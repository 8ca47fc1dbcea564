//! Webhooks: where an organisation's notifications go, how each delivery is signed, and when a
//! failed delivery is tried again. Pure: the outbox worker does the I/O.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::FieldError;
use crate::clock::Millis;

/// The header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "x-locator-signature";
/// The header carrying the send time (unix seconds), also inside the signed body as `sent_at`.
pub const TIMESTAMP_HEADER: &str = "x-locator-timestamp";

/// A webhook URL: http(s), no credentials, bounded. Plain http only where the operator allows it
/// (local receivers in tests and demos): notifications travel over TLS in production.
pub fn parse_url(text: &str, allow_http: bool) -> Result<String, FieldError> {
    let url = text.trim();
    if url.is_empty() {
        return Err(FieldError::required("url"));
    }
    let invalid = |message: &str| FieldError::new("url", "invalid_url", message);
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        if !allow_http {
            return Err(invalid("url must start with https:// (plain http is refused by this server)"));
        }
        rest
    } else {
        return Err(invalid("url must be an https:// address"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if url.len() > 2000 || authority.is_empty() || authority.contains('@') {
        return Err(invalid("url must name a host, without user name or password, in at most 2000 characters"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("url cannot contain spaces or control characters"));
    }
    Ok(url.to_string())
}

/// The signing secret of an organisation's webhook, derived rather than stored: the database
/// never holds it, and setting the webhook again (a new version) rotates it.
pub fn derive_secret(index_secret: &[u8; 32], org_id: i64, version: i64) -> [u8; 32] {
    let mut material = Vec::with_capacity(48);
    material.extend_from_slice(index_secret);
    material.extend_from_slice(&org_id.to_le_bytes());
    material.extend_from_slice(&version.to_le_bytes());
    blake3::derive_key("child-locator webhook v1", &material)
}

/// The secret as the organisation sees it (and keys its HMAC with): `whsec_` and hex.
pub fn secret_text(secret: &[u8; 32]) -> String {
    format!("whsec_{}", hex::encode(secret))
}

/// `sha256=<hex>`: HMAC-SHA256 of the body, keyed by the secret's text form (what the receiver
/// was shown), so a receiver needs nothing but the string it stored.
pub fn signature(secret_text: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret_text.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delays before each retry: 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, then 8 h.
const SCHEDULE_MS: [Millis; 8] = [30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000, 28_800_000];

/// When to try again after `attempts` failed attempts; `jitter` in [0, 1) adds up to 20% so
/// many failed messages do not all return in the same second.
pub fn retry_delay(attempts: i64, jitter: f64) -> Millis {
    let index = usize::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(SCHEDULE_MS.len() - 1);
    let base = SCHEDULE_MS[index];
    base + (base as f64 * 0.2 * jitter.clamp(0.0, 1.0)) as Millis
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_required_unless_http_is_allowed() {
        assert!(parse_url("https://hooks.example.org/locator", false).is_ok());
        assert_eq!(parse_url("http://hooks.example.org/", false).unwrap_err().code, "invalid_url");
        assert!(parse_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert_eq!(parse_url("", false).unwrap_err().code, "required");
        for bad in ["ftp://x.org", "https://user:pw@x.org/", "https:///path", "https://x.org/a b"] {
            assert!(parse_url(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_differ_by_organisation_and_version_and_never_repeat_the_index_secret() {
        let index = [7u8; 32];
        let a = derive_secret(&index, 1, 1);
        assert_ne!(a, derive_secret(&index, 2, 1));
        assert_ne!(a, derive_secret(&index, 1, 2));
        assert_eq!(a, derive_secret(&index, 1, 1));
        assert_ne!(a, index);
        assert!(secret_text(&a).starts_with("whsec_"));
    }

    #[test]
    fn the_signature_is_the_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn retries_back_off_and_stay_bounded() {
        assert_eq!(retry_delay(1, 0.0), 30_000);
        assert_eq!(retry_delay(2, 0.0), 120_000);
        assert_eq!(retry_delay(3, 0.0), 600_000);
        assert_eq!(retry_delay(50, 0.0), 28_800_000);
        assert_eq!(retry_delay(1, 0.999), 30_000 + 5_994);
        for n in 1..20 {
            assert!(retry_delay(n + 1, 0.0) >= retry_delay(n, 0.0));
        }
    }
}
