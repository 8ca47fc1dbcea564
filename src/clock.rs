//! Time as a dependency: production reads the system clock, tests set it.
//! Deadlines, retention and anomaly rules read time only through `Clock`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, the one time representation stored anywhere.
pub type Millis = i64;

#[derive(Clone, Debug)]
pub enum Clock {
    System,
    /// A clock that tests move by hand, so deadlines are tested without sleeping.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn manual(start: Millis) -> Self {
        Clock::Manual(Arc::new(AtomicI64::new(start)))
    }

    pub fn now_ms(&self) -> Millis {
        match self {
            Clock::System => (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
            Clock::Manual(ms) => ms.load(Ordering::SeqCst),
        }
    }

    pub fn today(&self) -> time::Date {
        to_datetime(self.now_ms()).date()
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance_ms(&self, by: Millis) {
        if let Clock::Manual(ms) = self {
            ms.fetch_add(by, Ordering::SeqCst);
        }
    }
}

pub fn to_datetime(ms: Millis) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// RFC 3339 text for API responses and exports.
pub fn rfc3339(ms: Millis) -> String {
    to_datetime(ms).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Serialises a time as RFC 3339 (`#[serde(serialize_with = "crate::clock::as_rfc3339")]`): the
/// API's one time format, while `Millis` stays what is stored.
pub fn as_rfc3339<S: serde::Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ms))
}

/// As `as_rfc3339`, for a time that may be absent (`null`).
pub fn as_rfc3339_opt<S: serde::Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&rfc3339(*ms)),
        None => s.serialize_none(),
    }
}

/// Parses RFC 3339 or a bare date (midnight UTC), for query filters.
pub fn parse_instant(text: &str) -> Option<Millis> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some((at.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let date = time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}
