//! The shared secret between the session manager and its clients. The
//! server takes it from `--token-file` or `AGENT_ORCHESTRATOR_TOKEN`; every
//! client of ours sends the same variable, so one `export` sets up both.

use std::fmt;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

/// The variable the server and every client read.
pub const ENV_TOKEN: &str = "AGENT_ORCHESTRATOR_TOKEN";

/// A token. Its `Debug` never shows the value, so it cannot leak into a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

/// A token that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token {0} is empty")]
    Empty(String),
    #[error(
        "the token {0} may hold only letters, digits and - . _ ~ + / = (try: openssl rand -hex 32)"
    )]
    BadCharacters(String),
}

impl Token {
    /// A token from its text, trimmed; `from` names where it came from, for
    /// the error.
    pub fn new(text: &str, from: &str) -> Result<Token, TokenError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(TokenError::Empty(from.to_owned()));
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
        {
            return Err(TokenError::BadCharacters(from.to_owned()));
        }
        Ok(Token(text.to_owned()))
    }

    /// `AGENT_ORCHESTRATOR_TOKEN`, when set and not empty.
    pub fn from_env() -> Option<Result<Token, TokenError>> {
        let value = std::env::var(ENV_TOKEN).ok()?;
        if value.trim().is_empty() {
            return None;
        }
        Some(Token::new(&value, &format!("in {ENV_TOKEN}")))
    }

    /// The first line of a file.
    pub fn read_file(path: &Path) -> Result<Token, TokenError> {
        let text =
            crate::bounded::read_to_string(path, crate::bounded::SETTINGS).map_err(|source| {
                TokenError::Read {
                    path: path.to_owned(),
                    source,
                }
            })?;
        let first = text.lines().next().unwrap_or("");
        Token::new(first, &format!("file {}", path.display()))
    }

    /// True when `given` is this token, in time that depends only on the
    /// lengths.
    pub fn matches(&self, given: &str) -> bool {
        given.len() == self.0.len() && bool::from(given.as_bytes().ct_eq(self.0.as_bytes()))
    }

    /// The value, for a header or a cookie.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<hidden>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_trimmed_checked_and_hidden() {
        let token = Token::new(" s3cret\n", "test").unwrap();
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cre") && !token.matches("s3creT"));
        assert_eq!(format!("{token:?}"), "Token(<hidden>)");
        assert!(matches!(Token::new("  ", "x"), Err(TokenError::Empty(_))));
        assert!(matches!(
            Token::new("a;b", "x"),
            Err(TokenError::BadCharacters(_))
        ));
    }

    #[test]
    fn a_token_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc123\nignored\n").unwrap();
        assert!(Token::read_file(&path).unwrap().matches("abc123"));
        assert!(matches!(
            Token::read_file(&dir.path().join("missing")),
            Err(TokenError::Read { .. })
        ));
    }
}
