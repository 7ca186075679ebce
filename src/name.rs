//! Session names become file names (`<name>.jsonl`) and agent names become
//! folder and file names, so both are checked before anything touches the
//! disk or the API.

use std::fmt;
use std::str::FromStr;

/// The longest session name accepted.
pub const MAX_NAME_LEN: usize = 60;

/// A session name known to be 1-60 characters of `[A-Za-z0-9_-]`: safe as a
/// file name on every file system, and unable to leave its folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionName(String);

/// Why a name was refused; `kind` says whose name ("session", "agent").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{kind} name must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} name is {len} characters long; the limit is {MAX_NAME_LEN}")]
    TooLong { kind: &'static str, len: usize },
    #[error(
        "{kind} name {text:?} may only contain letters, digits, '-' and '_' (it becomes a file name)"
    )]
    BadCharacter { kind: &'static str, text: String },
}

/// Checks `text` against the rules every name follows.
fn check(kind: &'static str, text: &str) -> Result<(), NameError> {
    if text.is_empty() {
        return Err(NameError::Empty { kind });
    }
    let len = text.chars().count();
    if len > MAX_NAME_LEN {
        return Err(NameError::TooLong { kind, len });
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(NameError::BadCharacter {
            kind,
            text: text.to_owned(),
        });
    }
    Ok(())
}

/// An agent name, held to the same rules as a session name (it names a
/// folder or a `.md` file).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentName(String);

impl AgentName {
    /// Validates a name.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        check("agent", text)?;
        Ok(AgentName(text.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl SessionName {
    /// Validates a name.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        check("session", text)?;
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
        assert_eq!(
            SessionName::parse(""),
            Err(NameError::Empty { kind: "session" })
        );
        assert_eq!(
            SessionName::parse(&"x".repeat(61)),
            Err(NameError::TooLong {
                kind: "session",
                len: 61
            })
        );
        for bad in [
            "../x", "a/b", "a\\b", "a\0b", ".", "..", "a b", "a.jsonl", "é", "a\nb", "~",
        ] {
            assert!(
                matches!(SessionName::parse(bad), Err(NameError::BadCharacter { .. })),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert!(matches!(
            SessionName::parse(&"é".repeat(61)),
            Err(NameError::TooLong { len: 61, .. })
        ));
    }

    #[test]
    fn agent_names_follow_the_same_rules_and_say_whose_they_are() {
        assert_eq!(
            AgentName::parse("web-researcher").unwrap().as_str(),
            "web-researcher"
        );
        let err = AgentName::parse("../x").unwrap_err().to_string();
        assert!(err.starts_with("agent name"), "{err}");
    }
}
