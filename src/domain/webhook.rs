//! Webhooks: where an organisation's notifications go, how each delivery is signed, and when a
//! failed delivery is tried again. Pure: the outbox worker does the I/O.

use std::net::{IpAddr, Ipv4Addr};

use hmac::{Hmac, Mac};
use serde_json::Value;
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

/// The host a webhook URL names, as a connection would see it: an IP literal in any spelling
/// (`0x7f.1`, `2130706433`, `[::ffff:127.0.0.1]`) normalised to its address; a name lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookHost {
    Address(IpAddr),
    Name(String),
}

impl WebhookHost {
    pub fn of(url: &str) -> Option<WebhookHost> {
        let parsed = url::Url::parse(url).ok()?;
        Some(match parsed.host()? {
            url::Host::Ipv4(ip) => WebhookHost::Address(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => WebhookHost::Address(IpAddr::V6(ip)),
            url::Host::Domain(name) => WebhookHost::Name(name.trim_end_matches('.').to_ascii_lowercase()),
        })
    }

    /// Whether the operator allowed this host by name (an address is allowed by its text).
    pub fn is_allowed(&self, allowed: &[String]) -> bool {
        let text = match self {
            WebhookHost::Address(ip) => ip.to_string(),
            WebhookHost::Name(name) => name.clone(),
        };
        allowed.iter().any(|a| a.trim().trim_start_matches('[').trim_end_matches(']').eq_ignore_ascii_case(&text))
    }
}

/// Addresses a webhook must never reach unless the operator allows the host by name: the node
/// itself, the private network it sits on, link-local (cloud metadata at 169.254.169.254),
/// shared, multicast and reserved ranges. An IPv4 address inside IPv6 is judged as IPv4.
pub fn is_internal_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return is_internal_v4(Ipv4Addr::new(a, b, c, d));
            }
            v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated, still private)
                || s[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible ::a.b.c.d
        }
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// Registration's check on where a webhook points: a name of the machine itself (`localhost`)
/// or an internal address is refused unless the operator allowed that host by name. (A name is
/// checked again, by address, each time a delivery connects: see the outbox's resolver.)
pub fn check_destination(url: &str, allowed: &[String]) -> Result<(), FieldError> {
    let Some(host) = WebhookHost::of(url) else {
        return Err(FieldError::new("url", "invalid_url", "url must name a host"));
    };
    if host.is_allowed(allowed) {
        return Ok(());
    }
    let internal = match &host {
        WebhookHost::Address(ip) => is_internal_address(*ip),
        WebhookHost::Name(name) => name == "localhost" || name.ends_with(".localhost"),
    };
    if internal {
        return Err(FieldError::new("url", "internal_address", INTERNAL_ADDRESS));
    }
    Ok(())
}

pub const INTERNAL_ADDRESS: &str = "url must not point at a loopback, private, link-local or other internal address; \
     the operator can allow a named host (outbox.allowed_hosts)";

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

/// A message as its organisation's admin sees it.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub org_id: i64,
    pub kind: String,
    pub payload: Value,
    pub created_at: Millis,
    pub attempts: i64,
    pub next_attempt_at: Millis,
    pub delivered_at: Option<Millis>,
    pub last_error: Option<String>,
    pub dead_at: Option<Millis>,
}

/// Which messages to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    Pending,
    Delivered,
    Dead,
}

impl OutboxState {
    pub fn parse(text: &str) -> Option<OutboxState> {
        match text.trim() {
            "pending" => Some(OutboxState::Pending),
            "delivered" => Some(OutboxState::Delivered),
            "dead" => Some(OutboxState::Dead),
            _ => None,
        }
    }
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
    fn internal_destinations_are_refused_in_every_spelling_unless_allowed() {
        for bad in [
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://10.1.2.3/x",
            "https://172.16.0.1/x",
            "https://192.168.1.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost:8443/x",
            "https://api.localhost/x",
            "https://0x7f.1/x",
            "https://2130706433/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://0.0.0.0/x",
            "https://100.64.0.1/x",
            "https://[64:ff9b::a9fe:a9fe]/x",
        ] {
            let err = check_destination(bad, &[]).unwrap_err();
            assert_eq!((err.field.as_str(), err.code), ("url", "internal_address"), "{bad}");
        }
        for good in ["https://hooks.example.org/x", "https://203.0.113.9/x", "https://[2001:db8::1]/x"] {
            assert!(check_destination(good, &[]).is_ok(), "{good}");
        }
        let allowed = vec!["127.0.0.1".to_string(), "Hooks.Internal".to_string(), "[::1]".to_string()];
        assert!(check_destination("http://127.0.0.1:9000/hook", &allowed).is_ok());
        assert!(check_destination("https://hooks.internal/x", &allowed).is_ok());
        assert!(check_destination("https://[::1]:9/x", &allowed).is_ok());
        assert!(check_destination("https://10.0.0.1/x", &allowed).is_err(), "only the named hosts");
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
