//! Claude Code's subagent files: `<dir>/<name>.md` with YAML front matter
//! (`name`, `description`, `tools`, `model`, ...) between `---` lines, and
//! the body as the system prompt.

use std::path::Path;

use serde::Deserialize;

use super::fields::Fields;
use super::settings::strip_position;
use super::{Agent, AgentFormat, Level};

#[derive(Deserialize)]
struct FrontMatter {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(flatten)]
    fields: Fields,
}

/// Reads one subagent file.
pub(super) fn read(file: &Path, level: Level) -> Result<Agent, String> {
    let text = crate::bounded::read_to_string(file, crate::bounded::PROMPT)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let (yaml, body) = split(&text).ok_or_else(|| {
        format!(
            "{}:1: no front matter (the file must start with a '---' line, then name: and description:, then '---')",
            file.display()
        )
    })?;
    let front: FrontMatter = serde_norway::from_str(yaml).map_err(|e| {
        // Line 1 is the opening '---'.
        let line = e.location().map_or(1, |l| l.line() + 1);
        format!(
            "{}:{line}: malformed front matter: {}",
            file.display(),
            strip_position(&e.to_string())
        )
    })?;
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = front.name.unwrap_or(stem);
    let mut checked = front.fields.check(file, &text)?;
    checked.settings.system_prompt = Some(body.trim().to_owned()).filter(|b| !b.is_empty());
    Ok(Agent {
        name,
        description: front.description.unwrap_or_default().trim().to_owned(),
        format: AgentFormat::Subagent,
        file: file.to_owned(),
        level,
        active: checked.active,
        settings: checked.settings,
    })
}

/// The front matter's YAML and the body, or `None` without front matter.
fn split(text: &str) -> Option<(&str, &str)> {
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Some((&rest[..offset], &rest[offset + line.len()..]));
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let file = dir.join(format!("{name}.md"));
        std::fs::write(&file, text).unwrap();
        file
    }

    #[test]
    fn reads_front_matter_and_body() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "reviewer",
            "---\nname: reviewer\ndescription: Reviews code\ntools: Read, Grep\nmodel: sonnet\n---\nYou review code.\n",
        );
        let agent = read(&file, Level::Project).unwrap();
        assert_eq!(agent.name, "reviewer");
        assert_eq!(agent.description, "Reviews code");
        assert_eq!(agent.settings.tools.unwrap(), ["Read", "Grep"]);
        assert_eq!(agent.settings.model.as_deref(), Some("sonnet"));
        assert_eq!(
            agent.settings.system_prompt.as_deref(),
            Some("You review code.")
        );
    }

    #[test]
    fn malformed_front_matter_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "bad",
            "---\nname: bad\ndescription: x\ntools: [Read\n---\nbody\n",
        );
        let err = read(&file, Level::Project).unwrap_err();
        assert!(
            err.contains("bad.md:") && err.contains("malformed front matter"),
            "{err}"
        );
        let file = write(dir.path(), "none", "just text\n");
        let err = read(&file, Level::Project).unwrap_err();
        assert!(err.contains("none.md:1: no front matter"), "{err}");
        let file = write(
            dir.path(),
            "turns",
            "---\nname: turns\ndescription: x\nmaxTurns: 0\n---\n",
        );
        let err = read(&file, Level::Project).unwrap_err();
        assert!(
            err.contains("turns.md:4: max_turns must be a positive integer"),
            "{err}"
        );
    }
}
