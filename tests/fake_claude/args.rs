//! Command line, as the real CLI takes it:
//! `--output-format stream-json --verbose --input-format stream-json
//!  --permission-mode bypassPermissions [--resume SESSION_ID] [--model MODEL]`
//! and the settings an agent adds: `--tools`, `--allowedTools`,
//! `--disallowedTools`, `--max-turns`, `--append-system-prompt`,
//! `--system-prompt`, `--mcp-config`, `--json-schema`,
//! `--permission-prompt-tool` (one value each).

#[derive(Debug, Default, PartialEq)]
pub struct Args {
    pub version: bool,
    pub resume: Option<String>,
    pub model: Option<String>,
    pub permission_mode: Option<String>,
    pub max_turns: Option<u32>,
    pub mcp_config: Option<String>,
    pub json_schema: Option<String>,
    /// `--include-partial-messages`: stream events around each text.
    pub partial_messages: bool,
    /// `--permission-prompt-tool`: `stdio` sends `can_use_tool` requests to
    /// the driver instead of denying what needs approval.
    pub permission_prompt_tool: Option<String>,
    /// `--help`: print the flags (as the release imitated has them).
    pub help: bool,
    /// `--max-budget-usd`: end the run once its spend passes this.
    pub max_budget_usd: Option<f64>,
    /// `--fork-session` (with `--resume`): continue a copy under a new id.
    pub fork_session: bool,
}

/// Whether the release imitated has `--fork-session` and
/// `--max-budget-usd` (1.0.100 has neither; 2.1.329 both).
pub fn has_fork_and_budget() -> bool {
    super::ledger::release_at_least((2, 0, 0))
}

const PERMISSION_MODES: [&str; 6] = [
    "acceptEdits",
    "auto",
    "bypassPermissions",
    "default",
    "dontAsk",
    "plan",
];

/// Parses the arguments after argv[0]. Both `--flag value` and `--flag=value` work.
pub fn parse(argv: &[String]) -> Result<Args, String> {
    let mut args = Args::default();
    let mut output_format = None;
    let mut input_format = None;
    let mut verbose = false;
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let takes_value = matches!(
            flag,
            "--output-format"
                | "--input-format"
                | "--permission-mode"
                | "--resume"
                | "-r"
                | "--model"
                | "--tools"
                | "--allowedTools"
                | "--allowed-tools"
                | "--disallowedTools"
                | "--disallowed-tools"
                | "--max-turns"
                | "--append-system-prompt"
                | "--system-prompt"
                | "--mcp-config"
                | "--json-schema"
                | "--permission-prompt-tool"
                | "--max-budget-usd"
        );
        // `--tools ""` means no tools.
        let may_be_empty = flag == "--tools";
        let value = if takes_value {
            match inline.or_else(|| it.next().cloned()) {
                Some(v) if !v.is_empty() || may_be_empty => Some(v),
                _ => return Err(format!("error: option '{flag}' argument missing")),
            }
        } else if inline.is_some() {
            return Err(format!("error: option '{flag}' takes no argument"));
        } else {
            None
        };
        match (flag, value) {
            ("--version" | "-v", _) => args.version = true,
            ("--help" | "-h", _) => args.help = true,
            ("--max-budget-usd" | "--fork-session", _) if !has_fork_and_budget() => {
                return Err(format!("error: unknown option '{flag}'"));
            }
            ("--max-budget-usd", Some(v)) => match v.parse::<f64>() {
                Ok(x) if x > 0.0 => args.max_budget_usd = Some(x),
                _ => {
                    return Err(format!(
                        "error: --max-budget-usd '{v}' is not a positive number"
                    ));
                }
            },
            ("--fork-session", _) => args.fork_session = true,
            ("--verbose", _) => verbose = true,
            // Accepted like the real CLI; the prompt still has to come on stdin.
            ("--print" | "-p", _) => {}
            // Refused, as 1.0.100 refuses it, with FAKE_CLAUDE_NO_PARTIAL_MESSAGES=1.
            ("--include-partial-messages", _)
                if std::env::var("FAKE_CLAUDE_NO_PARTIAL_MESSAGES").as_deref() != Ok("1") =>
            {
                args.partial_messages = true
            }
            ("--output-format", v) => output_format = v,
            ("--input-format", v) => input_format = v,
            ("--permission-mode", Some(v)) => {
                if !PERMISSION_MODES.contains(&v.as_str()) {
                    return Err(format!(
                        "error: option '--permission-mode' argument '{v}' is invalid. Allowed choices are {}.",
                        PERMISSION_MODES.join(", ")
                    ));
                }
                args.permission_mode = Some(v);
            }
            ("--resume" | "-r", v) => args.resume = v,
            ("--model", v) => args.model = v,
            ("--max-turns", Some(v)) => match v.parse() {
                Ok(n) => args.max_turns = Some(n),
                Err(_) => return Err(format!("error: --max-turns '{v}' is not a number")),
            },
            ("--mcp-config", v) => args.mcp_config = v,
            ("--json-schema", v) => args.json_schema = v,
            ("--permission-prompt-tool", v) => args.permission_prompt_tool = v,
            (
                "--tools"
                | "--allowedTools"
                | "--allowed-tools"
                | "--disallowedTools"
                | "--disallowed-tools"
                | "--append-system-prompt"
                | "--system-prompt",
                _,
            ) => {}
            (f, _) if f.starts_with('-') => return Err(format!("error: unknown option '{f}'")),
            (other, _) => {
                return Err(format!(
                    "error: unexpected argument '{other}' (the fake takes the prompt on stdin only)"
                ));
            }
        }
    }
    if args.version || args.help {
        return Ok(args);
    }
    if output_format.as_deref() != Some("stream-json") {
        return Err("error: ao-fake-claude needs --output-format stream-json".to_string());
    }
    if input_format.as_deref() != Some("stream-json") {
        return Err("error: ao-fake-claude needs --input-format stream-json".to_string());
    }
    if !verbose {
        return Err(
            "Error: When using --print, --output-format=stream-json requires --verbose".to_string(),
        );
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    const BASE: &str = "--output-format stream-json --verbose --input-format stream-json --permission-mode bypassPermissions";

    #[test]
    fn real_command_line() {
        let a = parse(&argv(BASE)).unwrap();
        assert_eq!(a.permission_mode.as_deref(), Some("bypassPermissions"));
        assert_eq!(a.resume, None);
        let a = parse(&argv(&format!("{BASE} --resume abc --model m1"))).unwrap();
        assert_eq!(a.resume.as_deref(), Some("abc"));
        assert_eq!(a.model.as_deref(), Some("m1"));
        let a = parse(&argv(&format!(
            "{BASE} --max-turns 2 --tools Read --json-schema {{}} --include-partial-messages"
        )))
        .unwrap();
        assert_eq!(
            (a.max_turns, a.json_schema.as_deref(), a.partial_messages),
            (Some(2), Some("{}"), true)
        );
        let a = parse(&argv(&format!("{BASE} --permission-prompt-tool stdio"))).unwrap();
        assert_eq!(a.permission_prompt_tool.as_deref(), Some("stdio"));
    }

    #[test]
    fn equals_form() {
        let a = parse(&argv(
            "--output-format=stream-json --verbose --input-format=stream-json --resume=x",
        ))
        .unwrap();
        assert_eq!(a.resume.as_deref(), Some("x"));
    }

    #[test]
    fn version() {
        assert!(parse(&argv("--version")).unwrap().version);
    }

    #[test]
    fn rejected() {
        for line in [
            "",
            "--verbose --input-format stream-json",
            "--output-format stream-json --verbose",
            "--output-format json --verbose --input-format stream-json",
            "--output-format stream-json --input-format stream-json",
            &format!("{BASE} --frobnicate"),
            &format!("{BASE} hello prompt"),
            &format!("{BASE} --resume"),
            &format!("{BASE} --verbose=yes"),
            &format!("{BASE} --max-turns many"),
            &format!("{BASE} --mcp-config"),
            "--output-format stream-json --verbose --input-format stream-json --permission-mode yolo",
        ] {
            assert!(parse(&argv(line)).is_err(), "{line:?} should be rejected");
        }
    }
}
