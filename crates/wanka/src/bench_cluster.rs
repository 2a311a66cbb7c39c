//! `wanka bench cluster`: the whole path under load, in one process on this machine: a server on SQLite and
//! simulated nodes whose agents start every job as real processes (the task shim, then the command). Jobs are
//! submitted in bulk and each one's submit → start → end is taken from the server's own timestamps.

use crate::dev::{Options, start_cluster};
use crate::latency::summary;
use crate::setup::Common;
use anyhow::{Context, Result, ensure};
use std::time::{Duration, Instant};
use wanka_api::{JobState, SubmitJob};
use wanka_server::client::Client;

/// Options of `wanka bench cluster`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Nodes as MODEL:NODESxDEVICES (repeatable).
    #[arg(long = "node", default_value = "H100:32x8")]
    pub nodes: Vec<String>,
    /// Jobs to run.
    #[arg(long, default_value_t = 2000)]
    pub jobs: usize,
    /// The command every job runs.
    #[arg(long, default_value = "true")]
    pub command: String,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Runs the benchmark and prints its figures.
pub fn run(common: &Common, args: &Args) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("wanka-bench-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = Options {
        data_dir: dir.clone(),
        listen: "127.0.0.1:0".parse().expect("valid"),
        nodes: args.nodes.clone(),
        heartbeat: Duration::from_secs(5),
        node_timeout: 60,
        kill_grace: 5,
        quiet: true,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = runtime.block_on(async {
        let cluster = start_cluster(common, &options).await?;
        let admin = Client::new(&cluster.url, Some(cluster.token.clone()));
        println!(
            "cluster: {} nodes, {} simulated devices, one agent each, in this process; {} jobs of 1 device running `{}`",
            cluster.size.0, cluster.size.1, args.jobs, args.command
        );
        let r = measure(&admin, args).await;
        cluster.stop_jobs(Duration::from_secs(1)).await;
        r
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(admin: &Client, args: &Args) -> Result<()> {
    let job = SubmitJob {
        command: vec!["/bin/sh".into(), "-c".into(), args.command.clone()],
        ..SubmitJob::default()
    };
    let t0 = Instant::now();
    for chunk in (0..args.jobs).collect::<Vec<_>>().chunks(500) {
        admin
            .submit_batch(&vec![job.clone(); chunk.len()])
            .await
            .context("submitting")?;
    }
    let submitted = t0.elapsed();
    loop {
        let active = admin.jobs("state=pending,starting,running&limit=1").await?;
        if active.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wall = t0.elapsed();
    let done = admin.jobs(&format!("limit={}", args.jobs + 10)).await?;
    ensure!(
        done.len() == args.jobs,
        "{} jobs listed of {}",
        done.len(),
        args.jobs
    );
    let failed: Vec<u64> = done
        .iter()
        .filter(|j| j.state != JobState::Completed)
        .map(|j| j.id)
        .collect();
    ensure!(failed.is_empty(), "jobs that did not complete: {failed:?}");
    let first = done.iter().map(|j| j.submitted_at).fold(f64::MAX, f64::min);
    let last = done
        .iter()
        .filter_map(|j| j.ended_at)
        .fold(f64::MIN, f64::max);
    let wait: Vec<Duration> = done
        .iter()
        .map(|j| secs(j.started_at.unwrap_or(0.0) - j.submitted_at))
        .collect();
    let run: Vec<Duration> = done
        .iter()
        .map(|j| secs(j.ended_at.unwrap_or(0.0) - j.started_at.unwrap_or(0.0)))
        .collect();
    println!(
        "submitted {} jobs in {:.2} s; all completed {:.2} s after the first submission",
        args.jobs,
        submitted.as_secs_f64(),
        last - first
    );
    println!(
        "end to end: {:.0} jobs/s started, ran as processes and reported (wall {:.2} s)",
        args.jobs as f64 / (last - first),
        wall.as_secs_f64()
    );
    println!(
        "allocation → exit reported (dispatch, shim + command, output shipped, report): {}",
        summary(run)
    );
    println!(
        "submission → allocation (queueing behind busy devices included): {}",
        summary(wait)
    );
    if let Some(rss) = crate::memory::peak_rss() {
        println!(
            "peak RSS of server + agents: {:.1} MiB",
            rss as f64 / (1 << 20) as f64
        );
    }
    Ok(())
}
