//! One-line messages on stderr, prefixed with the program's name. stdout is
//! for answers only.

use std::fmt::Display;

/// Writes this program's messages.
#[derive(Debug, Clone, Copy)]
pub struct Diag {
    program: &'static str,
}

impl Diag {
    /// Messages prefixed with `program`.
    pub fn new(program: &'static str) -> Self {
        Diag { program }
    }

    /// The program's name.
    pub fn program(&self) -> &'static str {
        self.program
    }

    /// `<program>: error: <message>`
    pub fn error(&self, message: impl Display) {
        self.line(&format!("error: {}", one_line(&message.to_string())));
    }

    /// `<program>: warning: <message>`
    pub fn warn(&self, message: impl Display) {
        self.line(&format!("warning: {}", one_line(&message.to_string())));
    }

    /// `<program>: <message>`
    pub fn note(&self, message: impl Display) {
        self.line(&one_line(&message.to_string()));
    }

    /// Writes `<program>: <text>`. A stderr nobody reads any more (the
    /// caller went away) is no reason to stop: unlike `eprintln!`, this
    /// never panics.
    fn line(&self, text: &str) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "{}: {text}", self.program);
    }
}

/// Sends a long-running program's log (`tracing`) to stderr: `level` and
/// above unless `RUST_LOG` says otherwise, in colour on a terminal.
pub fn log_to_stderr(level: &str) {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()),
        )
        .init();
}

/// Parses the command line; a usage error is one line on stderr and exit
/// 2, while `--help` and `--version` print as usual.
pub fn parse_args<T: clap::FromArgMatches>(
    command: clap::Command,
    diag: Diag,
) -> Result<T, std::process::ExitCode> {
    let matches = command
        .try_get_matches()
        .and_then(|m| T::from_arg_matches(&m));
    matches.map_err(|err| {
        if !err.use_stderr() {
            err.exit();
        }
        // The first paragraph of clap's message, on one line.
        let rendered = err.render().to_string();
        let paragraph: Vec<&str> = rendered
            .lines()
            .skip_while(|l| l.trim().is_empty())
            .take_while(|l| !l.trim().is_empty())
            .map(str::trim)
            .collect();
        let text = paragraph.join(" ");
        let text = text.strip_prefix("error: ").unwrap_or(&text);
        let near = did_you_mean(&err).unwrap_or_default();
        diag.error(format!("{text}{near} (see {} --help)", diag.program()));
        std::process::ExitCode::from(exit::USAGE)
    })
}

/// `text` as one word of a shell command line: as it is when it needs no
/// quoting, else in single quotes, so advice with a path can be pasted.
pub fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,@".contains(&b));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// `; did you mean '--json'?` for a mistyped flag, value or subcommand,
/// from clap's suggestions (which its usage paragraph would show apart).
fn did_you_mean(err: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let near = [
        ContextKind::SuggestedArg,
        ContextKind::SuggestedValue,
        ContextKind::SuggestedSubcommand,
    ]
    .into_iter()
    .find_map(|kind| match err.get(kind)? {
        ContextValue::String(one) => Some(vec![one.clone()]),
        ContextValue::Strings(some) if !some.is_empty() => Some(some.clone()),
        _ => None,
    })?;
    let quoted: Vec<String> = near.iter().map(|n| format!("'{n}'")).collect();
    Some(format!("; did you mean {}?", quoted.join(" or ")))
}

/// Folds a message onto one line, so each failure is exactly one line.
fn one_line(text: &str) -> String {
    text.trim()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Exit codes shared by every command.
pub mod exit {
    /// The command did what was asked.
    pub const OK: u8 = 0;
    /// It could not: the reason is on stderr.
    pub const FAILED: u8 = 1;
    /// Bad usage or input (unknown flag, invalid name, empty prompt).
    pub const USAGE: u8 = 2;
    /// `ao-wait`: a run waits for someone to answer a request.
    pub const NEEDS_INPUT: u8 = 3;
    /// `ao-wait` gave up at its `--timeout`, as timeout(1) does.
    pub const TIMEOUT: u8 = 124;
    /// Stopped by SIGINT.
    pub const SIGINT: u8 = 130;
    /// Stopped by SIGTERM.
    pub const SIGTERM: u8 = 143;
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn shell_words_are_quoted_only_when_they_need_it() {
        assert_eq!(shell_word("/home/me/proj-1"), "/home/me/proj-1");
        assert_eq!(shell_word("/home/me/my proj"), "'/home/me/my proj'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
    }
}
