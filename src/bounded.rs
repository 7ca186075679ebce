//! Reads that stop at a ceiling. Whatever a user or a program hands us (a
//! prompt on stdin, a system prompt file, a schema, an MCP config, an agent
//! file, a line of a backup) is refused in one line once it is larger than
//! any sensible input, instead of filling the machine's memory (a path such
//! as `/dev/zero` never ends).

use std::io::Read;
use std::path::Path;

/// A prompt or a system prompt: far more than any model's context.
pub const PROMPT: u64 = 8 << 20;
/// A settings file (an output schema, an MCP config, an agent's JSON, a
/// `.meta.json`, a settings file of Claude Code's).
pub const SETTINGS: u64 = 4 << 20;
/// One line of the CLI's output, and so of a backup.
pub const LINE: usize = 64 << 20;

/// Says how large a ceiling is, for a message (`8 MiB`).
pub fn size(limit: u64) -> String {
    if limit >= 1 << 20 && limit.is_multiple_of(1 << 20) {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{limit} bytes")
    }
}

/// The error of an input past its ceiling.
fn too_large(limit: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::FileTooLarge,
        format!(
            "larger than {}, the most agent-orchestrator reads",
            size(limit)
        ),
    )
}

/// Whether an error is a ceiling's: bad input, not a failure to read.
pub fn is_too_large(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::FileTooLarge
}

/// Reads all of `reader`, refusing more than `limit` bytes.
pub fn read_all(reader: impl Read, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

/// Reads the file at `path`, refusing more than `limit` bytes.
pub fn read(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    read_all(std::fs::File::open(path)?, limit)
}

/// Reads the text file at `path`, refusing more than `limit` bytes.
pub fn read_to_string(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read(path, limit)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not valid UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_file_is_refused_at_its_ceiling() {
        let err = read(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(is_too_large(&err));
        assert_eq!(
            err.to_string(),
            "larger than 1 MiB, the most agent-orchestrator reads"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "exactly").unwrap();
        assert_eq!(read_to_string(&file, 7).unwrap(), "exactly");
        assert!(is_too_large(&read_to_string(&file, 6).unwrap_err()));
        assert_eq!(size(100), "100 bytes");
    }
}
