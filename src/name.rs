//! Session names become file names (`<name>.jsonl`), so they are checked
//! before anything touches the disk or the API.

use std::fmt;
use std::str::FromStr;

/// The longest session name accepted.
pub const MAX_NAME_LEN: usize = 60;

/// A session name known to be 1-60 characters of `[A-Za-z0-9_-]`: safe as a
/// file name on every file system, and unable to leave its folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionName(String);

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("session name must not be empty")]
    Empty,
    #[error("session name is {0} characters long; the limit is {MAX_NAME_LEN}")]
    TooLong(usize),
    #[error(
        "session name {0:?} may only contain letters, digits, '-' and '_' (it becomes a file name)"
    )]
    BadCharacter(String),
}

impl SessionName {
    /// Validates a name.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        let len = text.chars().count();
        if len > MAX_NAME_LEN {
            return Err(NameError::TooLong(len));
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(NameError::BadCharacter(text.to_owned()));
        }
        Ok(SessionName(text.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SessionName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionName::parse(s)
    }
}

impl fmt::Display for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SessionName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for ok in ["a", "worker-1", "Architect_2", &"x".repeat(60)] {
            assert_eq!(SessionName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_names_that_could_escape_or_break_a_file_system() {
        assert_eq!(SessionName::parse(""), Err(NameError::Empty));
        assert_eq!(
            SessionName::parse(&"x".repeat(61)),
            Err(NameError::TooLong(61))
        );
        for bad in [
            "../x", "a/b", "a\\b", "a\0b", ".", "..", "a b", "a.jsonl", "é", "a\nb", "~",
        ] {
            assert!(
                matches!(SessionName::parse(bad), Err(NameError::BadCharacter(_))),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert!(matches!(
            SessionName::parse(&"é".repeat(61)),
            Err(NameError::TooLong(61))
        ));
    }
}
