//! Scenario specs such as `tools:3,slow:50`.
//!
//! A spec is a comma-separated list of items; each item is `name` or `name:arg`.
//! It comes from `FAKE_CLAUDE_SCENARIO`, or else from a `SCENARIO=<spec>` token in
//! the prompt, or else it is `plain`.

/// How the run ends, after init, garbage, tool calls and control requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Final assistant text, a successful `result`, wait for stdin EOF, exit 0.
    Answer,
    /// Synthetic API error assistant line, `result` with `is_error: true`, exit 1.
    Error,
    /// One assistant text line, a message on stderr, exit 2 at once.
    Crash,
    /// SIGKILL on itself.
    Sigkill,
    /// Sleep until SIGTERM/SIGINT.
    Hang,
    /// No init line: one `error_during_execution` result, exit 1 at once.
    NoInit,
}

impl Ending {
    fn name(self) -> &'static str {
        match self {
            Ending::Answer => "plain",
            Ending::Error => "error",
            Ending::Crash => "crash",
            Ending::Sigkill => "sigkill",
            Ending::Hang => "hang",
            Ending::NoInit => "noinit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub ending: Ending,
    /// Number of Bash tool calls (each with a PostToolUse hook callback).
    pub tools: u32,
    /// Send a `can_use_tool` and a `mystery_request` control request.
    pub control: bool,
    /// Print a non-JSON line right after init.
    pub garbage: bool,
    /// Milliseconds to sleep before every stdout line after the init line.
    pub slow_ms: u64,
    /// Length in bytes of the final answer text.
    pub bigline: Option<usize>,
    /// Written to stderr before anything else.
    pub stderr: Option<String>,
    /// Exit code after the result and stdin EOF.
    pub exit_code: Option<i32>,
    /// Ignore `interrupt` control requests (no answer, no effect).
    pub deaf: bool,
    /// Ignore SIGTERM (SIGINT and SIGKILL still end it).
    pub noterm: bool,
    /// Append the prompt to this file (relative to the working directory),
    /// as an edit by the agent would.
    pub edit: Option<String>,
    /// Each tool call starts long-lived processes, as a Bash command may,
    /// and appends their pids to this file (relative to the working directory).
    pub children: Option<String>,
    /// Say what it is about to do before each tool call.
    pub narrate: bool,
    /// A Bash call that writes this file (relative to the working
    /// directory), which asks for permission as the mode says.
    pub permission: Option<String>,
    /// An `AskUserQuestion` call.
    pub question: bool,
    /// The permission request and the question are both sent before either
    /// is answered (as parallel tool calls are).
    pub together: bool,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            ending: Ending::Answer,
            tools: 0,
            control: false,
            garbage: false,
            slow_ms: 0,
            bigline: None,
            stderr: None,
            exit_code: None,
            deaf: false,
            noterm: false,
            edit: None,
            children: None,
            narrate: false,
            permission: None,
            question: false,
            together: false,
        }
    }
}

const MAX_TOOLS: u32 = 100_000;
const MAX_BIGLINE: usize = 256 * 1024 * 1024;

/// Parses a spec such as `tools:3,slow:50`. Empty items (`a,,b`) are skipped;
/// an empty spec is an error.
pub fn parse(spec: &str) -> Result<Scenario, String> {
    let mut sc = Scenario::default();
    let mut seen: Vec<&str> = Vec::new();
    let mut ending_set = false;
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, arg) = match item.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (item, None),
        };
        if seen.contains(&name) {
            return Err(format!("scenario {name:?} given twice in {spec:?}"));
        }
        seen.push(name);
        let ending = match name {
            "plain" => None,
            "error" => Some(Ending::Error),
            "crash" => Some(Ending::Crash),
            "sigkill" => Some(Ending::Sigkill),
            "hang" => Some(Ending::Hang),
            "noinit" => Some(Ending::NoInit),
            "garbage" => {
                sc.garbage = true;
                None
            }
            "control" => {
                sc.control = true;
                None
            }
            "question" => {
                sc.question = true;
                None
            }
            "together" => {
                sc.together = true;
                None
            }
            "permission" => match arg {
                Some(file) if !file.is_empty() => {
                    sc.permission = Some(file.to_string());
                    None
                }
                _ => {
                    return Err("scenario \"permission\" needs a file: permission:FILE".to_string());
                }
            },
            "deaf" => {
                sc.deaf = true;
                None
            }
            "noterm" => {
                sc.noterm = true;
                None
            }
            "narrate" => {
                sc.narrate = true;
                None
            }
            "tools" => {
                sc.tools = number(name, arg, 0, u64::from(MAX_TOOLS))? as u32;
                None
            }
            "slow" => {
                sc.slow_ms = number(name, arg, 0, 3_600_000)?;
                None
            }
            "bigline" => {
                sc.bigline = Some(number(name, arg, 1, MAX_BIGLINE as u64)? as usize);
                None
            }
            "exit" => {
                sc.exit_code = Some(number(name, arg, 0, 255)? as i32);
                None
            }
            "edit" => match arg {
                Some(file) if !file.is_empty() => {
                    sc.edit = Some(file.to_string());
                    None
                }
                _ => return Err("scenario \"edit\" needs a file: edit:FILE".to_string()),
            },
            "children" => match arg {
                Some(file) if !file.is_empty() => {
                    sc.children = Some(file.to_string());
                    None
                }
                _ => return Err("scenario \"children\" needs a file: children:FILE".to_string()),
            },
            "stderr" => match arg {
                Some(text) if !text.is_empty() => {
                    sc.stderr = Some(text.to_string());
                    None
                }
                _ => return Err("scenario \"stderr\" needs a text: stderr:TEXT".to_string()),
            },
            _ => return Err(format!("unknown scenario {name:?} in {spec:?}")),
        };
        let takes_arg = matches!(
            name,
            "tools" | "slow" | "bigline" | "exit" | "stderr" | "edit" | "children" | "permission"
        );
        if !takes_arg && arg.is_some() {
            return Err(format!(
                "scenario {name:?} takes no argument (got {item:?})"
            ));
        }
        if let Some(e) = ending {
            if ending_set {
                return Err(format!(
                    "scenarios {:?} and {:?} cannot be combined",
                    sc.ending.name(),
                    e.name()
                ));
            }
            ending_set = true;
            sc.ending = e;
        }
    }
    if seen.is_empty() {
        return Err(format!("empty scenario spec {spec:?}"));
    }
    if sc.together && !(sc.question && sc.permission.is_some()) {
        return Err("scenario \"together\" needs both permission:FILE and question".to_string());
    }
    if sc.exit_code.is_some() && !matches!(sc.ending, Ending::Answer | Ending::Error) {
        return Err(format!(
            "scenario \"exit\" cannot be combined with {:?}",
            sc.ending.name()
        ));
    }
    Ok(sc)
}

fn number(name: &str, arg: Option<&str>, min: u64, max: u64) -> Result<u64, String> {
    let Some(arg) = arg else {
        return Err(format!("scenario {name:?} needs a number: {name}:N"));
    };
    match arg.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "scenario {name:?}: {arg:?} is not a number in {min}..={max}"
        )),
    }
}

/// The spec from a `SCENARIO=<spec>` token in the prompt: everything after
/// the first `SCENARIO=` up to the next whitespace.
pub fn from_prompt(prompt: &str) -> Option<&str> {
    let start = prompt.find("SCENARIO=")? + "SCENARIO=".len();
    let rest = &prompt[start..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_is_default() {
        assert_eq!(parse("plain").unwrap(), Scenario::default());
        assert_eq!(Scenario::default().ending, Ending::Answer);
    }

    #[test]
    fn combined_items() {
        let sc = parse("tools:3, slow:50,garbage,control,bigline:1048576,exit:7").unwrap();
        assert_eq!(sc.tools, 3);
        assert_eq!(sc.slow_ms, 50);
        assert!(sc.garbage);
        assert!(sc.control);
        assert_eq!(sc.bigline, Some(1_048_576));
        assert_eq!(sc.exit_code, Some(7));
        assert_eq!(sc.ending, Ending::Answer);
    }

    #[test]
    fn endings() {
        for (spec, ending) in [
            ("error", Ending::Error),
            ("crash", Ending::Crash),
            ("sigkill", Ending::Sigkill),
            ("hang", Ending::Hang),
            ("noinit", Ending::NoInit),
            ("tools:2,crash", Ending::Crash),
            ("plain,error", Ending::Error),
        ] {
            assert_eq!(parse(spec).unwrap().ending, ending, "{spec}");
        }
    }

    #[test]
    fn requests() {
        let sc = parse("permission:out.txt,question,together").unwrap();
        assert_eq!(sc.permission.as_deref(), Some("out.txt"));
        assert!(sc.question && sc.together);
        assert!(parse("permission").is_err());
        assert!(parse("together,question").is_err());
    }

    #[test]
    fn stderr_text_keeps_colons() {
        let sc = parse("stderr:warning: a:b,tools:1").unwrap();
        assert_eq!(sc.stderr.as_deref(), Some("warning: a:b"));
        assert_eq!(sc.tools, 1);
    }

    #[test]
    fn empty_items_are_skipped() {
        assert_eq!(parse("tools:1,,").unwrap().tools, 1);
    }

    #[test]
    fn errors() {
        for spec in [
            "",
            " , ",
            "bogus",
            "tools",
            "tools:x",
            "tools:-1",
            "slow:",
            "bigline:0",
            "exit:256",
            "exit:1,crash",
            "stderr:",
            "stderr",
            "error:1",
            "garbage:yes",
            "crash,hang",
            "error,noinit",
            "tools:1,tools:2",
        ] {
            assert!(parse(spec).is_err(), "{spec:?} should be rejected");
        }
    }

    #[test]
    fn unknown_name_is_named_in_error() {
        let err = parse("tools:1,frobnicate").unwrap_err();
        assert!(err.contains("frobnicate"), "{err}");
    }

    #[test]
    fn prompt_token() {
        assert_eq!(
            from_prompt("please SCENARIO=tools:2,slow:5 now"),
            Some("tools:2,slow:5")
        );
        assert_eq!(from_prompt("SCENARIO=crash"), Some("crash"));
        assert_eq!(from_prompt("x\nSCENARIO=error\ny"), Some("error"));
        assert_eq!(from_prompt("no token here"), None);
        assert_eq!(from_prompt("SCENARIO= x"), Some(""));
    }
}
