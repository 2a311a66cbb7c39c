//! Job output held by the server: agents ship each process's stdout and stderr here in numbered chunks, and
//! `wanka logs` reads (and follows) them from any machine, whichever node the job ran on.
//!
//! One file per stream under `<data-dir>/logs/<job>/`, plus an empty `.eof` marker once the process ended
//! and everything it wrote arrived. Chunks carry their byte offset, so a chunk sent twice (an agent retrying
//! after a lost answer) is stored once, and a gap is answered with the offset the agent must resend from.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use thiserror::Error;
use tokio::sync::watch;
use wanka_api::{LogAck, LogChunk, LogInfo, LogStream, LogText};

/// Most bytes one read returns.
const MAX_READ: usize = 1 << 20;

/// A log operation that failed.
#[derive(Debug, Error)]
pub enum LogError {
    /// The request names something that cannot be a stream.
    #[error("{0}")]
    Invalid(String),
    /// The file system refused.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The server's copy of every job's output.
pub struct Logs {
    dir: PathBuf,
    /// Serializes appends (they are small and rare next to reads).
    write: Mutex<()>,
    /// Bumped on every append, so followers wake up.
    changed: watch::Sender<u64>,
    /// Streams whose sizes are known, to answer a retried chunk without touching the disk.
    sizes: Mutex<HashMap<LogStream, u64>>,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LogError + 'a {
    move |source| LogError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

impl Logs {
    /// Logs kept under `dir`.
    pub fn new(dir: PathBuf) -> Logs {
        Logs {
            dir,
            write: Mutex::new(()),
            changed: watch::channel(0).0,
            sizes: Mutex::new(HashMap::new()),
        }
    }

    fn job_dir(&self, job: u64) -> PathBuf {
        self.dir.join(job.to_string())
    }

    fn path(&self, s: &LogStream) -> Result<PathBuf, LogError> {
        if s.stream != "stdout" && s.stream != "stderr" {
            return Err(LogError::Invalid(format!(
                "stream '{}' is not stdout or stderr",
                s.stream
            )));
        }
        Ok(self
            .job_dir(s.job)
            .join(format!("{}.{}.{}.{}", s.attempt, s.rank, s.task, s.stream)))
    }

    fn eof_path(path: &Path) -> PathBuf {
        path.with_extension(format!(
            "{}.eof",
            path.extension().and_then(|e| e.to_str()).unwrap_or("")
        ))
    }

    /// Stores a chunk (the part of it not already held) and says how much of the stream is held.
    pub fn append(&self, chunk: &LogChunk) -> Result<LogAck, LogError> {
        let path = self.path(&chunk.stream)?;
        let _guard = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let known = self
            .sizes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&chunk.stream)
            .copied();
        let size = match known {
            Some(s) => s,
            None => fs::metadata(&path).map_or(0, |m| m.len()),
        };
        let data = chunk.data.as_bytes();
        let end = chunk.offset + data.len() as u64;
        if chunk.offset > size {
            // A gap: the agent resends from what is held.
            return Ok(LogAck { size });
        }
        let mut size = size;
        if end > size {
            let skip = (size - chunk.offset) as usize;
            if !chunk.data.is_char_boundary(skip) {
                return Err(LogError::Invalid(format!(
                    "chunk at offset {} overlaps the held {size} bytes inside a character",
                    chunk.offset
                )));
            }
            fs::create_dir_all(self.job_dir(chunk.stream.job))
                .map_err(io("creating", &self.job_dir(chunk.stream.job)))?;
            let mut f = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io("opening", &path))?;
            f.write_all(&data[skip..]).map_err(io("writing", &path))?;
            size = end;
        }
        if chunk.eof && end >= size {
            fs::create_dir_all(self.job_dir(chunk.stream.job))
                .map_err(io("creating", &self.job_dir(chunk.stream.job)))?;
            let marker = Self::eof_path(&path);
            fs::write(&marker, b"").map_err(io("writing", &marker))?;
        }
        self.sizes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(chunk.stream.clone(), size);
        self.changed.send_modify(|v| *v += 1);
        Ok(LogAck { size })
    }

    /// Every stream held for a job, in (attempt, rank, task, stream) order.
    pub fn list(&self, job: u64) -> Result<Vec<LogInfo>, LogError> {
        let dir = self.job_dir(job);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("listing", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io("listing", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let parts: Vec<&str> = name.split('.').collect();
            let [attempt, rank, task, stream] = parts[..] else {
                continue;
            };
            let (Ok(attempt), Ok(rank), Ok(task)) = (attempt.parse(), rank.parse(), task.parse())
            else {
                continue;
            };
            let path = entry.path();
            out.push(LogInfo {
                stream: LogStream {
                    job,
                    attempt,
                    rank,
                    task,
                    stream: stream.to_string(),
                },
                size: entry.metadata().map_or(0, |m| m.len()),
                complete: Self::eof_path(&path).exists(),
            });
        }
        out.sort_by(|a, b| a.stream.cmp(&b.stream));
        Ok(out)
    }

    /// A stream's text from `offset` (at most 1 MiB, ending on a character boundary).
    pub fn read(&self, s: &LogStream, offset: u64) -> Result<LogText, LogError> {
        let path = self.path(s)?;
        let complete = Self::eof_path(&path).exists();
        let mut f = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LogText {
                    data: String::new(),
                    next: offset,
                    complete,
                });
            }
            Err(e) => return Err(io("opening", &path)(e)),
        };
        let len = f.metadata().map_err(io("reading", &path))?.len();
        let mut buf = Vec::new();
        if offset < len {
            f.seek(SeekFrom::Start(offset))
                .map_err(io("reading", &path))?;
            f.take(MAX_READ as u64)
                .read_to_end(&mut buf)
                .map_err(io("reading", &path))?;
        }
        let text = match String::from_utf8(buf) {
            Ok(t) => t,
            // Cut inside a character: return up to it; the rest comes with the next read.
            Err(e) if e.utf8_error().valid_up_to() > 0 => {
                let valid = e.utf8_error().valid_up_to();
                let mut bytes = e.into_bytes();
                bytes.truncate(valid);
                String::from_utf8(bytes).expect("valid prefix")
            }
            // An offset inside a character (not one this server handed out): show what is there.
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        let next = offset + text.len() as u64;
        Ok(LogText {
            complete: complete && next >= len,
            data: text,
            next,
        })
    }

    /// A receiver that changes whenever any stream grows.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(offset: u64, data: &str, eof: bool) -> LogChunk {
        LogChunk {
            node: "n1".into(),
            stream: LogStream {
                job: 7,
                attempt: 1,
                rank: 0,
                task: 0,
                stream: "stdout".into(),
            },
            offset,
            data: data.into(),
            eof,
        }
    }

    #[test]
    fn chunks_are_stored_once_in_order_and_gaps_are_refused() {
        let dir = std::env::temp_dir().join(format!("wanka-logs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let logs = Logs::new(dir.clone());
        assert_eq!(logs.append(&chunk(0, "hello ", false)).unwrap().size, 6);
        // A retry of the same chunk, then one overlapping it: only the new bytes are kept.
        assert_eq!(logs.append(&chunk(0, "hello ", false)).unwrap().size, 6);
        assert_eq!(logs.append(&chunk(3, "lo wörld", false)).unwrap().size, 12);
        // A gap: nothing stored, the answer says where to resume.
        assert_eq!(logs.append(&chunk(20, "late", false)).unwrap().size, 12);
        let s = chunk(0, "", false).stream;
        let t = logs.read(&s, 0).unwrap();
        assert_eq!(
            (t.data.as_str(), t.next, t.complete),
            ("hello wörld", 12, false)
        );
        assert_eq!(logs.read(&s, 7).unwrap().data, "örld");
        logs.append(&chunk(12, "\n", true)).unwrap();
        let t = logs.read(&s, 12).unwrap();
        assert_eq!((t.data.as_str(), t.complete), ("\n", true));
        let listed = logs.list(7).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].size, listed[0].complete), (13, true));
        let bad = LogStream {
            stream: "stdin".into(),
            ..s
        };
        assert!(
            logs.read(&bad, 0)
                .unwrap_err()
                .to_string()
                .contains("stdin")
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
