//! `wanka logs JOB [--follow]`: a job's output, read through the server from whichever nodes ran it.

use crate::cli::block_on;
use crate::remote::Connection;
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};
use wanka_api::{LogInfo, LogStream};
use wanka_server::client::Client;

/// Options of `wanka logs`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Job id.
    pub job: u64,
    /// Keep printing output as it comes, until the job has ended and all its output arrived.
    #[arg(short, long)]
    pub follow: bool,
    /// Only this replica (node rank).
    #[arg(long)]
    pub rank: Option<u32>,
    /// Which run of the job (default: the latest).
    #[arg(long)]
    pub attempt: Option<u32>,
    /// Only stdout, or only stderr.
    #[arg(long, value_parser = ["stdout", "stderr"])]
    pub stream: Option<String>,
}

/// How long a follow waits for the last output of an ended job whose agent went quiet.
const SETTLE: Duration = Duration::from_secs(10);

fn wanted(args: &Args, attempt: u32, s: &LogStream) -> bool {
    s.attempt == attempt
        && args.rank.is_none_or(|r| r == s.rank)
        && args.stream.as_deref().is_none_or(|x| x == s.stream)
}

/// Prints text with a `[rank.task]` prefix on each line when several processes write.
struct Printer {
    prefixed: bool,
    partial: BTreeMap<LogStream, bool>,
}

impl Printer {
    fn print(&mut self, s: &LogStream, text: &str) -> Result<()> {
        let mut out: Box<dyn Write> = if s.stream == "stderr" {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        };
        if !self.prefixed {
            out.write_all(text.as_bytes())?;
            return Ok(out.flush()?);
        }
        let mid_line = self.partial.entry(s.clone()).or_default();
        for piece in text.split_inclusive('\n') {
            if !*mid_line {
                write!(out, "[{}.{}] ", s.rank, s.task)?;
            }
            out.write_all(piece.as_bytes())?;
            *mid_line = !piece.ends_with('\n');
        }
        Ok(out.flush()?)
    }
}

/// Prints the job's output; with `--follow`, until it has ended and all output arrived.
pub fn run(conn: &Connection, args: &Args) -> Result<()> {
    let client = conn.client()?;
    block_on(follow(client, args))
}

async fn follow(client: Client, args: &Args) -> Result<()> {
    let mut offsets: BTreeMap<LogStream, u64> = BTreeMap::new();
    let mut printer = Printer {
        prefixed: false,
        partial: BTreeMap::new(),
    };
    let mut ended_at: Option<Instant> = None;
    loop {
        let job = client.job(args.job).await?;
        let listed: Vec<LogInfo> = client.logs(args.job).await?;
        let attempt = args
            .attempt
            .or_else(|| listed.iter().map(|l| l.stream.attempt).max());
        let streams: Vec<&LogInfo> = match attempt {
            Some(a) => listed
                .iter()
                .filter(|l| wanted(args, a, &l.stream))
                .collect(),
            None => Vec::new(),
        };
        let processes: std::collections::BTreeSet<(u32, u32)> = streams
            .iter()
            .map(|l| (l.stream.rank, l.stream.task))
            .collect();
        printer.prefixed = processes.len() > 1;
        let mut got = false;
        for info in &streams {
            let offset = offsets.entry(info.stream.clone()).or_default();
            if *offset >= info.size {
                continue;
            }
            let text = client.read_log(&info.stream, *offset, 0).await?;
            printer.print(&info.stream, &text.data)?;
            got |= !text.data.is_empty();
            *offset = text.next;
        }
        if !args.follow {
            if streams.is_empty() && !got {
                let when = if job.state.is_final() { "" } else { " yet" };
                bail!(
                    "job {} has no output{when} ({})",
                    args.job,
                    job.state.name()
                );
            }
            return Ok(());
        }
        let all_read = streams
            .iter()
            .all(|l| l.complete && offsets.get(&l.stream).copied().unwrap_or(0) >= l.size);
        if job.state.is_final() {
            let since = *ended_at.get_or_insert_with(Instant::now);
            if (all_read && !streams.is_empty()) || since.elapsed() > SETTLE {
                return Ok(());
            }
        }
        if !got {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}
