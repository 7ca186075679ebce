//! stdin and stdout for the MCP server, with a line filter in front of
//! rmcp's transport. rmcp drops a line that is not JSON without a word, so
//! a client would wait for ever: here such a line (or one that is not
//! UTF-8, or too long) gets JSON-RPC's parse error, `id` null. The filter
//! also tells the tools when stdin ends, so that a clean shutdown is not
//! taken for a cancellation.

use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The longest line read (rmcp's own limit).
const MAX_LINE: usize = rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH;
/// How much each pipe between the filter and rmcp buffers.
const PIPE: usize = 64 * 1024;
/// What a line that cannot be a message gets.
const PARSE_ERROR: &str = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: the line is not a JSON value in UTF-8"}}"#;
const TOO_LONG: &str = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: the line is longer than 16 MiB"}}"#;

/// The pipes rmcp reads and writes, and the writer that must finish
/// before the process exits (it holds rmcp's last answers).
pub struct Stdio {
    pub read: DuplexStream,
    pub write: DuplexStream,
    pub flushed: JoinHandle<()>,
}

/// Starts the filter between `input`/`output` (stdin, stdout) and rmcp;
/// `closed` is cancelled when `input` ends.
pub fn filter(
    input: impl AsyncRead + Unpin + Send + 'static,
    output: impl AsyncWrite + Unpin + Send + 'static,
    closed: CancellationToken,
) -> Stdio {
    let (to_rmcp, read) = tokio::io::duplex(PIPE);
    let (write, from_rmcp) = tokio::io::duplex(PIPE);
    let (lines, out) = mpsc::channel::<Vec<u8>>(16);
    tokio::spawn(read_input(input, to_rmcp, lines.clone(), closed));
    tokio::spawn(pass_answers(from_rmcp, lines));
    let flushed = tokio::spawn(write_output(out, output));
    Stdio {
        read,
        write,
        flushed,
    }
}

/// Passes each line of `input` that is JSON on to rmcp and answers the
/// others; at the end of `input`, says so and closes rmcp's side.
async fn read_input(
    input: impl AsyncRead + Unpin,
    mut to_rmcp: DuplexStream,
    answers: mpsc::Sender<Vec<u8>>,
    closed: CancellationToken,
) {
    let mut input = BufReader::new(input);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await;
        let complete = line.last() == Some(&b'\n');
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) if !complete && line.len() > MAX_LINE => {
                skip_line(&mut input).await;
                if answers.send(TOO_LONG.as_bytes().to_vec()).await.is_err() {
                    break;
                }
                continue;
            }
            Ok(_) => {}
        }
        if is_message(&line) {
            if !complete {
                line.push(b'\n');
            }
            if to_rmcp.write_all(&line).await.is_err() {
                break;
            }
        } else if answers.send(PARSE_ERROR.as_bytes().to_vec()).await.is_err() {
            break;
        }
    }
    closed.cancel();
}

/// Reads and drops the rest of a line that was too long.
async fn skip_line(input: &mut BufReader<impl AsyncRead + Unpin>) {
    loop {
        let Ok(buf) = input.fill_buf().await else {
            return;
        };
        if buf.is_empty() {
            return;
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(end) => {
                input.consume(end + 1);
                return;
            }
            None => {
                let len = buf.len();
                input.consume(len);
            }
        }
    }
}

/// Whether rmcp should see `line`: JSON in UTF-8 (a blank line too, which
/// it skips). Whether it is a message of the protocol is rmcp's to say.
fn is_message(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
    // Skipping a value does not check its strings' UTF-8: check it first.
    std::str::from_utf8(line).is_ok_and(|text| {
        text.trim().is_empty() || serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
    })
}

/// Passes rmcp's answers on, a whole line at a time.
async fn pass_answers(from_rmcp: DuplexStream, answers: mpsc::Sender<Vec<u8>>) {
    let mut from_rmcp = BufReader::new(from_rmcp);
    loop {
        let mut line = Vec::new();
        match from_rmcp.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if answers.send(line).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Writes every answer line to `output`, until both senders are done.
async fn write_output(mut lines: mpsc::Receiver<Vec<u8>>, mut output: impl AsyncWrite + Unpin) {
    while let Some(mut line) = lines.recv().await {
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_passes_and_anything_else_does_not() {
        for good in [
            &b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n"[..],
            b"{\"a\":1}\r\n",
            b"\xef\xbb\xbf[1]\n",
            b"\n",
            b"  \r\n",
        ] {
            assert!(is_message(good), "{good:?}");
        }
        for bad in [
            &b"not json\n"[..],
            b"{\"a\":\n",
            b"\xff\xfe\n",
            b"{\"a\":\"\xc3\x28\"}\n",
            b"{} {}\n",
        ] {
            assert!(!is_message(bad), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn bad_lines_are_answered_and_good_ones_reach_rmcp() {
        let (mut client, server_in) = tokio::io::duplex(1024);
        let (server_out, client_out) = tokio::io::duplex(1024 * 1024);
        let closed = CancellationToken::new();
        let stdio = filter(server_in, server_out, closed.clone());
        client.write_all(b"oops\n{\"id\":1}\n").await.unwrap();
        client.write_all(&vec![b'x'; MAX_LINE + 10]).await.unwrap();
        client.write_all(b"\n{\"id\":2}").await.unwrap();
        drop(client);
        let mut rmcp_in = String::new();
        let mut read = stdio.read;
        tokio::io::AsyncReadExt::read_to_string(&mut read, &mut rmcp_in)
            .await
            .unwrap();
        assert_eq!(rmcp_in, "{\"id\":1}\n{\"id\":2}\n");
        closed.cancelled().await;
        drop(stdio.write);
        stdio.flushed.await.unwrap();
        let mut answers = String::new();
        let mut client_out = client_out;
        tokio::io::AsyncReadExt::read_to_string(&mut client_out, &mut answers)
            .await
            .unwrap();
        assert_eq!(answers, format!("{PARSE_ERROR}\n{TOO_LONG}\n"));
    }
}
