//! The `.jsonl` log: append-only; a line's position in the file is its
//! identity (event ids derive from it), so positions never change.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::BackupError;

/// Appends lines to one `.jsonl` file and knows the position of the next.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    next_index: u64,
}

impl LogWriter {
    /// Opens (creating) the log for appending. A last line cut short by a
    /// crash is ended with a newline first, so it stays one line of its own.
    pub fn open(path: &Path) -> Result<LogWriter, BackupError> {
        let err = |e| BackupError::new(path, e);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(err)?;
        let (mut lines, ends_with_newline) = count_lines(&mut file).map_err(err)?;
        if !ends_with_newline {
            file.write_all(b"\n").map_err(err)?;
            lines += 1;
        }
        Ok(LogWriter {
            path: path.to_owned(),
            file,
            next_index: lines,
        })
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

/// Counts lines, and tells whether the file is empty or ends with a newline.
fn count_lines(file: &mut File) -> std::io::Result<(u64, bool)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut lines = 0u64;
    let mut last = b'\n';
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((lines, last == b'\n'));
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        last = buf[n - 1];
    }
}

/// Every line of a log with its position; a missing file has none. A last
/// line without its newline (cut short) still counts.
pub fn read_log(path: &Path) -> Result<Vec<(u64, Vec<u8>)>, BackupError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BackupError::new(path, e)),
    };
    let mut lines: Vec<(u64, Vec<u8>)> = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| (i as u64, line.to_vec()))
        .collect();
    // `split` yields an empty piece after a final newline; it is not a line.
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        lines.pop();
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_continue_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let mut w = LogWriter::open(&path).unwrap();
        assert_eq!(w.append(b"a").unwrap(), 0);
        assert_eq!(w.append(b"b").unwrap(), 1);
        drop(w);
        let mut w = LogWriter::open(&path).unwrap();
        assert_eq!(w.next_index(), 2);
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
        let mut w = LogWriter::open(&path).unwrap();
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
