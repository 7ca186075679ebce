//! The `.jsonl` log: append-only; a line's position in the file is its
//! identity (event ids derive from it), so positions never change.

use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use super::BackupError;
use crate::bounded;

/// A log's lines, each with its position.
pub type LogLines = Vec<(u64, Vec<u8>)>;

/// Appends lines to one `.jsonl` file and knows the position of the next.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    next_index: u64,
}

impl LogWriter {
    /// Opens (creating) the log for appending, and answers the lines it
    /// already holds, read in the same pass. A last line cut short by a
    /// crash is ended with a newline first, so it stays one line of its own.
    pub fn open(path: &Path) -> Result<(LogWriter, LogLines), BackupError> {
        let err = |e| BackupError::new(path, e);
        let mut file = crate::private::open_options()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(err)?;
        let (lines, cut) = read_lines(std::io::BufReader::new(&mut file)).map_err(err)?;
        if cut {
            file.write_all(b"\n").map_err(err)?;
        }
        let writer = LogWriter {
            path: path.to_owned(),
            file,
            next_index: lines.len() as u64,
        };
        Ok((writer, lines))
    }

    /// Appends one line (a newline is added) in a single write; answers its
    /// position. The position is used up even when the write fails, so that
    /// two lines can never share one.
    pub fn append(&mut self, line: &[u8]) -> Result<u64, BackupError> {
        let index = self.next_index;
        self.next_index += 1;
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        self.file
            .write_all(&buf)
            .map_err(|e| BackupError::new(&self.path, e))?;
        Ok(index)
    }

    /// The position the next appended line will have.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }
}

/// Every line of a log with its position; a missing file has none.
pub fn read_log(path: &Path) -> Result<LogLines, BackupError> {
    match std::fs::File::open(path) {
        Ok(file) => read_lines(std::io::BufReader::new(file))
            .map(|(lines, _)| lines)
            .map_err(|e| BackupError::new(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(BackupError::new(path, e)),
    }
}

/// The lines of a log with their positions, and whether the last one was
/// cut short (no newline), which still counts. A line longer than
/// [`bounded::LINE`] is refused: no line the runner writes is that long.
fn read_lines(mut reader: impl BufRead) -> std::io::Result<(LogLines, bool)> {
    let mut lines = LogLines::new();
    loop {
        let mut line = Vec::new();
        let read = (&mut reader)
            .take(bounded::LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok((lines, false));
        }
        let ended = line.last() == Some(&b'\n');
        if ended {
            line.pop();
        }
        if line.len() > bounded::LINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                format!(
                    "line {} is longer than {}, the most agent-orchestrator reads",
                    lines.len() + 1,
                    bounded::size(bounded::LINE as u64)
                ),
            ));
        }
        lines.push((lines.len() as u64, line));
        if !ended {
            return Ok((lines, true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_continue_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let (mut w, lines) = LogWriter::open(&path).unwrap();
        assert!(lines.is_empty());
        assert_eq!(w.append(b"a").unwrap(), 0);
        assert_eq!(w.append(b"b").unwrap(), 1);
        drop(w);
        let (mut w, lines) = LogWriter::open(&path).unwrap();
        assert_eq!(w.next_index(), 2);
        assert_eq!(
            lines,
            [(0, b"a".to_vec()), (1, b"b".to_vec())],
            "read in the same pass"
        );
        assert_eq!(w.append(b"").unwrap(), 2);
        assert_eq!(w.append(b"c").unwrap(), 3);
        let lines = read_log(&path).unwrap();
        let texts: Vec<&[u8]> = lines.iter().map(|(_, l)| l.as_slice()).collect();
        assert_eq!(texts, [b"a".as_slice(), b"b", b"", b"c"]);
        assert_eq!(lines[3].0, 3);
    }

    #[test]
    fn a_line_cut_short_stays_a_line_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, b"one\ntwo-cut-sh").unwrap();
        let before = read_log(&path).unwrap();
        assert_eq!(before.len(), 2);
        let (mut w, opened) = LogWriter::open(&path).unwrap();
        assert_eq!(opened, before, "the cut line counts");
        assert_eq!(w.append(b"three").unwrap(), 2);
        let after = read_log(&path).unwrap();
        assert_eq!(after[..2], before[..]);
        assert_eq!(after[2], (2, b"three".to_vec()));
    }

    #[test]
    fn a_missing_log_has_no_lines() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_log(&dir.path().join("none.jsonl")).unwrap().is_empty());
    }
}
