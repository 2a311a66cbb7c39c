//! Shipping a task's output files to the server as they grow, so that `wanka logs` works from anywhere and
//! the output survives the node. Each chunk carries its offset; the server's answer says how much it holds,
//! which is where the next chunk starts (a restarted agent thus resumes where the server is).

use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;
use wanka_api::{LogChunk, LogStream};
use wanka_server::client::Client;

/// Largest chunk sent at once.
const CHUNK: usize = 256 * 1024;
/// How often a growing file is read.
const PERIOD: Duration = Duration::from_millis(300);

/// The text to send for `bytes` and how many bytes it covers. Text must be UTF-8: a character cut at the
/// end waits for its remaining bytes (unless the stream ended), and an invalid byte is sent as `?`, so that
/// offsets in the file and at the server stay the same.
pub fn text_of(bytes: &[u8], at_end: bool) -> (String, usize) {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return (out, bytes.len());
            }
            Err(e) => {
                let valid = e.valid_up_to();
                out.push_str(std::str::from_utf8(&rest[..valid]).expect("valid prefix"));
                match e.error_len() {
                    // Cut inside a character at the end of what was read.
                    None if !at_end => return (out, bytes.len() - (rest.len() - valid)),
                    None => {
                        out.extend(std::iter::repeat_n('?', rest.len() - valid));
                        return (out, bytes.len());
                    }
                    Some(n) => {
                        out.extend(std::iter::repeat_n('?', n));
                        rest = &rest[valid + n..];
                    }
                }
            }
        }
    }
}

/// Ships `path` as `stream` until `ended` turns true and everything is sent, then sends the end marker.
pub async fn ship(
    client: Client,
    node: String,
    stream: LogStream,
    path: PathBuf,
    mut ended: watch::Receiver<bool>,
) {
    let mut offset: u64 = 0;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let finished = *ended.borrow();
        let read = read_at(&path, offset, &mut buf).await;
        let (data, used) = text_of(&buf[..read], finished && read < CHUNK);
        let last = finished && read < CHUNK && used == read;
        if !data.is_empty() || last {
            let chunk = LogChunk {
                node: node.clone(),
                stream: stream.clone(),
                offset,
                data,
                eof: last,
            };
            match client.ship_log(&chunk).await {
                Ok(ack) => {
                    offset = ack.size.max(offset);
                    if ack.size == chunk.offset + chunk.data.len() as u64 && last {
                        return;
                    }
                }
                // The job may be gone from the server (never there, or its data wiped): nothing to keep.
                Err(e) if e.status() == Some(404) || e.status() == Some(400) => return,
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
            if read == CHUNK {
                continue;
            }
        }
        if !finished {
            let _ = tokio::time::timeout(PERIOD, ended.changed()).await;
        }
    }
}

/// Reads up to `buf.len()` bytes of `path` from `offset` (0 when the file is not there yet).
pub(crate) async fn read_at(path: &PathBuf, offset: u64, buf: &mut [u8]) -> usize {
    let Ok(mut f) = tokio::fs::File::open(path).await else {
        return 0;
    };
    if f.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
        return 0;
    }
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::text_of;

    #[test]
    fn text_keeps_offsets_and_waits_for_cut_characters() {
        assert_eq!(text_of(b"abc", false), ("abc".into(), 3));
        let e = "é".as_bytes();
        assert_eq!(text_of(&[b'a', e[0]], false), ("a".into(), 1));
        assert_eq!(text_of(&[b'a', e[0]], true), ("a?".into(), 2));
        assert_eq!(text_of(&[b'a', 0xff, b'b'], false), ("a?b".into(), 3));
    }
}
