//! Forwarding a job's progress: each process may append JSON lines to its $WANKA_PROGRESS_FILE
//! (`{"step": N, "step_time_s": x}` after a step, `{"checkpoint": N}` once a checkpoint is written); the
//! agent reads them as they come, stamps them with the time it read them, and sends them to the server. A
//! line that is not such a record is reported with its file and line number and skipped.

use crate::ship::read_at;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;
use wanka_api::{ProgressRecord, ProgressReport, TaskRef};
use wanka_server::client::Client;

/// How often the file is read.
const PERIOD: Duration = Duration::from_millis(200);

/// One line of the file, or what is wrong with it.
pub fn parse_line(line: &str, at: f64) -> Result<ProgressRecord, String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("expected an object like {\"step\": 12, \"step_time_s\": 0.8}")?;
    let count = |k: &str| match obj.get(k) {
        None => Ok(None),
        Some(x) => x
            .as_u64()
            .map(Some)
            .ok_or(format!("\"{k}\" must be a whole number, not {x}")),
    };
    let rec = ProgressRecord {
        at,
        step: count("step")?,
        checkpoint: count("checkpoint")?,
        step_time_s: match obj.get("step_time_s") {
            None => None,
            Some(x) => Some(x.as_f64().filter(|t| *t >= 0.0).ok_or(format!(
                "\"step_time_s\" must be a number of seconds, not {x}"
            ))?),
        },
    };
    if rec.step.is_none() && rec.checkpoint.is_none() {
        return Err("neither \"step\" nor \"checkpoint\"".into());
    }
    Ok(rec)
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Follows one process's progress file until `ended` turns true and the file is read to its end.
pub async fn follow(
    client: Client,
    node: String,
    task: TaskRef,
    local: u32,
    path: PathBuf,
    mut ended: watch::Receiver<bool>,
    warn: impl Fn(String) + Send,
) {
    let mut offset = 0u64;
    let mut partial: Vec<u8> = Vec::new();
    let mut line_no = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let finished = *ended.borrow();
        let read = read_at(&path, offset, &mut buf).await;
        offset += read as u64;
        partial.extend_from_slice(&buf[..read]);
        let mut records = Vec::new();
        let at = now_s();
        while let Some(i) = partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = partial.drain(..=i).collect();
            line_no += 1;
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            match parse_line(text, at) {
                Ok(r) => records.push(r),
                Err(e) => warn(format!("{}:{line_no}: {e}; line skipped", path.display())),
            }
        }
        if !records.is_empty() {
            let rep = ProgressReport {
                node: node.clone(),
                job: task.job,
                attempt: task.attempt,
                rank: task.rank,
                task: local,
                records,
            };
            for _ in 0..5 {
                match client.progress(&rep).await {
                    Ok(()) => break,
                    Err(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => {
                        warn(format!("progress of job {} refused: {e}", task.job));
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        }
        if finished && read < buf.len() {
            return;
        }
        if read < buf.len() && !finished {
            let _ = tokio::time::timeout(PERIOD, ended.changed()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_line;

    #[test]
    fn progress_lines_are_records_or_say_what_is_wrong() {
        let r = parse_line(r#"{"step": 12, "step_time_s": 0.5}"#, 7.0).unwrap();
        assert_eq!(
            (r.step, r.step_time_s, r.checkpoint, r.at),
            (Some(12), Some(0.5), None, 7.0)
        );
        assert_eq!(
            parse_line(r#"{"checkpoint": 10}"#, 0.0).unwrap().checkpoint,
            Some(10)
        );
        assert!(
            parse_line("step 12", 0.0)
                .unwrap_err()
                .starts_with("not JSON")
        );
        assert!(
            parse_line(r#"{"step": -1}"#, 0.0)
                .unwrap_err()
                .contains("whole number")
        );
        assert!(
            parse_line(r#"{"loss": 2.1}"#, 0.0)
                .unwrap_err()
                .contains("neither")
        );
    }
}
