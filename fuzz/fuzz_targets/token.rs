//! Bearer-token parsing on arbitrary text. Properties: no panic; an accepted token is exactly
//! the text given (round-trips through `expose`) and has the documented shape.

#![no_main]

use child_locator::domain::token::{PREFIX, Token};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(token) = Token::parse(text) {
        assert_eq!(token.expose(), text);
        assert_eq!(Token::parse(token.expose()).ok().as_ref(), Some(&token));
        let body = text.strip_prefix(PREFIX).expect("an accepted token has the prefix");
        assert_eq!(body.len(), 43);
        assert!(body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        // The hint shown in user lists is a strict prefix, never the whole secret.
        assert!(text.starts_with(&token.hint()) && token.hint().len() < text.len());
        assert!(!format!("{token:?}").contains(text));
    }
});
