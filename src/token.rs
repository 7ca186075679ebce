//! The shared secrets between the session manager and its clients.
//!
//! - The configured token: the server takes it from `--token-file` or
//!   `AGENT_ORCHESTRATOR_TOKEN`; every client of ours sends the same
//!   variable, so one `export` sets up both. With it, every route needs it.
//! - The local token: made by the session manager on its first start in the
//!   user's data folder (0600 in a 0700 folder), and read there by the same
//!   user's commands, so nothing needs setting. What makes the user's
//!   machine act (answering a permission request, launching a run) needs it
//!   (or the configured token), because other users of the machine reach
//!   loopback too.

use std::fmt;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

/// The variable the server and every client read.
pub const ENV_TOKEN: &str = "AGENT_ORCHESTRATOR_TOKEN";
/// Where the local token is, when not in the data folder (the server's
/// `--local-token-file` reads it too).
pub const ENV_LOCAL_TOKEN_FILE: &str = "AGENT_ORCHESTRATOR_LOCAL_TOKEN_FILE";

/// The local token's file: `AGENT_ORCHESTRATOR_LOCAL_TOKEN_FILE`, else
/// `local-token` in the user's data folder.
pub fn local_token_path() -> Option<PathBuf> {
    match std::env::var_os(ENV_LOCAL_TOKEN_FILE).filter(|v| !v.is_empty()) {
        Some(path) => Some(PathBuf::from(path)),
        None => crate::paths::data_dir()
            .ok()
            .map(|dir| dir.join("local-token")),
    }
}

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
    #[error("cannot write the local token file {path}: {source}")]
    Write {
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

    /// The local token at `path`, made there (0600, its folder 0700) when
    /// there is none yet. Two servers starting at once make one token.
    pub fn local_or_create(path: &Path) -> Result<Token, TokenError> {
        let write = |source| TokenError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            crate::private::create_dir_all(dir).map_err(write)?;
        }
        let fresh = Token(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ));
        let created = crate::private::open_options()
            .write(true)
            .create_new(true)
            .open(path);
        match created {
            Ok(mut file) => {
                use std::io::Write;
                file.write_all(format!("{}\n", fresh.0).as_bytes())
                    .map_err(write)?;
                Ok(fresh)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Token::read_file(path),
            Err(e) => Err(write(e)),
        }
    }

    /// The local token of this user, when a session manager has made one.
    pub fn local() -> Option<Token> {
        Token::read_file(&local_token_path()?).ok()
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
    fn the_local_token_is_made_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/local-token");
        let made = Token::local_or_create(&path).unwrap();
        assert_eq!(made.expose().len(), 64);
        let again = Token::local_or_create(&path).unwrap();
        assert_eq!(made, again, "the same token on every start");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
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
