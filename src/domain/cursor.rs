//! Page cursors for every list served newest first: an opaque token naming the last row of a
//! page by its time *and* an id no two rows share, so the next page starts exactly after that
//! row. A time alone skips (or repeats) the rows that share the boundary millisecond.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::FieldError;

/// Where the next page starts: strictly after the row (`at`, `id`) in (time, id) descending order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    pub at: i64,
    pub id: String,
}

/// The first characters of every cursor, so a cursor is never mistaken for a time or a number.
const PREFIX: &str = "c1.";

impl PageCursor {
    pub fn new(at: i64, id: impl Into<String>) -> PageCursor {
        PageCursor { at, id: id.into() }
    }

    /// The token handed to clients: URL-safe, no characters that need escaping.
    pub fn encode(&self) -> String {
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(format!("{}/{}", self.at, self.id)))
    }

    /// A token from [`encode`](Self::encode); `None` for anything else.
    pub fn parse(text: &str) -> Option<PageCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim().strip_prefix(PREFIX)?).ok()?;
        let (at, id) = std::str::from_utf8(&bytes).ok()?.split_once('/')?;
        Some(PageCursor { at: at.parse().ok()?, id: id.to_string() })
    }

    /// A list's `before` parameter when it takes only cursors: absent, or a cursor (else 422).
    pub fn param(field: &'static str, text: Option<&str>) -> Result<Option<PageCursor>, FieldError> {
        match text.map(str::trim).filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(text) => PageCursor::parse(text).map(Some).ok_or_else(|| {
                FieldError::new(
                    field,
                    "invalid_cursor",
                    format!("{field} must be the next_cursor of the previous page"),
                )
            }),
        }
    }

    /// The id as a number, for lists whose rows are numbered.
    pub fn numeric_id(&self) -> Option<i64> {
        self.id.parse().ok()
    }

    /// The cursor after a full page's last row; `None` when the page was not full (no more rows).
    pub fn after_page<T>(rows: &[T], limit: i64, key: impl Fn(&T) -> PageCursor) -> Option<PageCursor> {
        if i64::try_from(rows.len()).ok()? < limit {
            return None;
        }
        rows.last().map(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_round_trip_and_nothing_else_parses() {
        for cursor in
            [PageCursor::new(1_795_510_800_123, "m_abc/def"), PageCursor::new(-1, ""), PageCursor::new(0, "42")]
        {
            let token = cursor.encode();
            assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)), "{token}");
            assert_eq!(PageCursor::parse(&token), Some(cursor));
        }
        for text in ["", "2026-11-24", "2026-11-24T09:00:00Z", "12345", "c1.", "c1.!!!", "c2.MTIzLzQ"] {
            assert_eq!(PageCursor::parse(text), None, "{text}");
        }
        assert_eq!(PageCursor::new(5, "17").numeric_id(), Some(17));
    }

    #[test]
    fn only_a_full_page_has_a_next_cursor() {
        let rows = [(3, "b"), (3, "a")];
        let key = |r: &(i64, &str)| PageCursor::new(r.0, r.1);
        assert_eq!(PageCursor::after_page(&rows, 2, key), Some(PageCursor::new(3, "a")));
        assert_eq!(PageCursor::after_page(&rows, 3, key), None);
    }
}
