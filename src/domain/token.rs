//! Bearer tokens: 256 random bits behind a recognisable prefix, shown once.
//! Only a keyed hash is ever stored (see `keys::TokenHasher`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// Recognisable in logs, chat and secret scanners, without revealing anything.
pub const PREFIX: &str = "clk_";
const RANDOM_BYTES: usize = 32;
const ENCODED_LEN: usize = 43; // base64url of 32 bytes, no padding

/// A token in plaintext. Exists only between issue and display, or parse and hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token does not start with the expected prefix")]
    Prefix,
    #[error("the token has the wrong length")]
    Length,
    #[error("the token contains characters that a token never has")]
    Charset,
}

impl Token {
    pub fn generate() -> Token {
        let mut bytes = [0u8; RANDOM_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Token(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Checks the shape before any hashing or database work, so junk is refused cheaply.
    pub fn parse(text: &str) -> Result<Token, TokenError> {
        let body = text.strip_prefix(PREFIX).ok_or(TokenError::Prefix)?;
        if body.len() != ENCODED_LEN {
            return Err(TokenError::Length);
        }
        if !body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(TokenError::Charset);
        }
        Ok(Token(text.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The first characters, safe to show in user lists so a person can tell tokens apart.
    pub fn hint(&self) -> String {
        self.0.chars().take(PREFIX.len() + 6).collect()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({}…)", self.hint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_and_is_unique() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a, b);
        assert_eq!(Token::parse(a.expose()).unwrap(), a);
        assert!(a.expose().starts_with("clk_"));
    }

    #[test]
    fn malformed_tokens_are_refused_before_hashing() {
        assert_eq!(Token::parse("Bearer x"), Err(TokenError::Prefix));
        assert_eq!(Token::parse("clk_short"), Err(TokenError::Length));
        let bad = format!("clk_{}", "!".repeat(43));
        assert_eq!(Token::parse(&bad), Err(TokenError::Charset));
    }

    #[test]
    fn debug_never_prints_the_whole_token() {
        let t = Token::generate();
        assert!(!format!("{t:?}").contains(t.expose()));
    }
}
