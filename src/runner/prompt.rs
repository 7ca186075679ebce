//! The prompt: from `-p`, from stdin, or both (joined). Never empty.

use std::io::IsTerminal;
use std::os::fd::AsFd;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// How long stdin may stay silent, when `-p` is given, before it is taken
/// to carry nothing (a caller that keeps stdin open without writing).
const STDIN_GRACE_MS: u16 = 100;

/// Why there is no usable prompt.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("the prompt is empty: pass it with -p TEXT or on stdin (echo \"task\" | ao-new NAME)")]
    Empty,
    #[error("cannot read the prompt from stdin: {0}")]
    Read(std::io::Error),
    #[error("the prompt on stdin is not valid UTF-8")]
    NotUtf8,
}

/// Reads the prompt. stdin is read when it is not a terminal; with `-p`
/// also given, only if it has data (or is closed) within a moment.
pub fn read_prompt(flag: Option<String>) -> Result<String, PromptError> {
    let stdin = std::io::stdin();
    let read_stdin = !stdin.is_terminal() && (flag.is_none() || stdin_ready(&stdin));
    let piped = if read_stdin {
        let bytes = crate::bounded::read_all(stdin.lock(), crate::bounded::PROMPT)
            .map_err(PromptError::Read)?;
        Some(String::from_utf8(bytes).map_err(|_| PromptError::NotUtf8)?)
    } else {
        None
    };
    join(flag, piped)
}

fn stdin_ready(stdin: &std::io::Stdin) -> bool {
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(STDIN_GRACE_MS)), Ok(n) if n > 0)
}

/// Joins the parts given, each trimmed, with a blank line between.
fn join(flag: Option<String>, piped: Option<String>) -> Result<String, PromptError> {
    let parts: Vec<String> = [flag, piped]
        .into_iter()
        .flatten()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return Err(PromptError::Empty);
    }
    Ok(parts.join("\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_refuses_empty() {
        assert_eq!(join(Some("a".into()), None).unwrap(), "a");
        assert_eq!(join(None, Some("b\n".into())).unwrap(), "b");
        assert_eq!(
            join(Some(" a ".into()), Some("b".into())).unwrap(),
            "a\n\nb"
        );
        assert!(matches!(
            join(Some("  ".into()), Some("\n".into())),
            Err(PromptError::Empty)
        ));
        assert!(matches!(join(None, None), Err(PromptError::Empty)));
    }
}
