//! `wanka bench server`: the control plane under load, over real HTTP on loopback, with a real store.
//!
//! 1. Durable submissions per second from concurrent clients (SQLite, and PostgreSQL when a server is given);
//!    every acknowledged job is counted back afterwards.
//! 2. 1,280 simulated agents heartbeating every second with per-device telemetry: latency p50/p99.
//! 3. The scheduling cycle inside the server with 10,000 pending jobs on a full 1,280-node cluster: jobs end
//!    one at a time (agent reports over HTTP) and the freed devices are rescheduled.

use crate::latency::summary;
use anyhow::{Context, Result, bail, ensure};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wanka_api::{
    CreateToken, DeviceTelemetry, Heartbeat, JobState, RegisterNode, Role, SubmitJob, TaskReport,
    TaskState,
};
use wanka_server::client::Client;
use wanka_server::state::Settings;

/// Options of `wanka bench server`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Submissions in the durability benchmark.
    #[arg(long, default_value_t = 20_000)]
    pub submissions: usize,
    /// Concurrent submitting clients.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// A PostgreSQL server (an admin URL, e.g. from scripts/postgres.sh) to run the submissions on too.
    #[arg(long, env = "WANKA_TEST_POSTGRES")]
    pub postgres: Option<String>,
    /// Simulated agents (nodes of 8 devices).
    #[arg(long, default_value_t = 1280)]
    pub agents: usize,
    /// Seconds of heartbeating at 1 Hz per agent.
    #[arg(long, default_value_t = 20)]
    pub heartbeat_secs: u64,
    /// Pending jobs during the scheduling benchmark.
    #[arg(long, default_value_t = 10_000)]
    pub pending: usize,
    /// Jobs ended one at a time during the scheduling benchmark.
    #[arg(long, default_value_t = 100)]
    pub churn: usize,
}

struct Bench {
    running: wanka_server::Running,
    admin: Client,
    _dir: TempDir,
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start(
    common: &crate::setup::Common,
    database: Option<String>,
    tag: &str,
) -> Result<Bench> {
    let dir = std::env::temp_dir().join(format!("wanka-bench-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (catalog, performance) = common.performance()?;
    let config = wanka_server::Config {
        data_dir: dir.clone(),
        database,
        listen: "127.0.0.1:0".parse().expect("valid"),
        policy: wanka_sched::Config::wanka(),
        catalog,
        performance,
        settings: Settings {
            node_timeout_us: 30_000_000,
            kill_grace_s: 30,
            ..Settings::default()
        },
        tick: Duration::from_secs(1),
    };
    let running = wanka_server::start(config).await?;
    let (token, _) = running
        .first_admin
        .clone()
        .context("a fresh store creates an admin token")?;
    let admin = Client::new(&format!("http://{}", running.addr), Some(token));
    Ok(Bench {
        running,
        admin,
        _dir: TempDir(dir),
    })
}

/// Runs the benchmark and prints its figures.
pub fn run(common: &crate::setup::Common, args: &Args) -> Result<()> {
    ensure!(
        args.clients > 0 && args.agents > 0,
        "--clients and --agents must be positive"
    );
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        println!(
            "wanka bench server: {} CPUs, loopback HTTP, wanka policy",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        let b = start(common, None, "sqlite").await?;
        submissions(&b, args, "sqlite").await?;
        stop(b).await;
        if let Some(url) = &args.postgres {
            let db = format!("wanka_bench_{}", std::process::id());
            let url = wanka_server::store::fresh_postgres_database(url, &db).await?;
            let b = start(common, Some(url), "postgres").await?;
            submissions(&b, args, "postgres").await?;
            stop(b).await;
        } else {
            println!("submissions/postgres: skipped (give --postgres URL or WANKA_TEST_POSTGRES)");
        }
        let b = start(common, None, "agents").await?;
        let agent = agent_client(&b).await?;
        register(&agent, args.agents).await?;
        heartbeats(&agent, args).await?;
        scheduling(&b, &agent, args).await?;
        stop(b).await;
        Ok(())
    })
}

async fn stop(b: Bench) {
    b.running.done.abort();
    let _ = b.running.done.await;
}

async fn submissions(b: &Bench, args: &Args, store: &str) -> Result<()> {
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let client = b.admin.clone();
        let latencies = latencies.clone();
        let n = args.submissions / args.clients + usize::from(c < args.submissions % args.clients);
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::with_capacity(n);
            for i in 0..n {
                let job = SubmitJob {
                    name: Some(format!("bench-{c}-{i}")),
                    command: vec!["true".into()],
                    ..SubmitJob::default()
                };
                let t = Instant::now();
                client.submit(&job).await?;
                mine.push(t.elapsed());
            }
            latencies.lock().expect("not poisoned").extend(mine);
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let wall = t.elapsed();
    let stored = b.admin.jobs("").await?.len();
    ensure!(
        stored == args.submissions,
        "{stored} jobs stored, {} acknowledged",
        args.submissions
    );
    let lat = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
    println!(
        "submissions/{store}: {} durable submissions from {} clients in {:.2} s = {:.0}/s; latency {}; {} stored",
        args.submissions,
        args.clients,
        wall.as_secs_f64(),
        args.submissions as f64 / wall.as_secs_f64(),
        summary(lat),
        stored
    );
    Ok(())
}

async fn agent_client(b: &Bench) -> Result<Client> {
    let t = b
        .admin
        .create_token(&CreateToken {
            role: Role::Agent,
            tenant: None,
            label: Some("bench".into()),
        })
        .await?;
    Ok(Client::new(b.admin.base(), Some(t.token)))
}

const MODELS: [&str; 4] = ["H100", "A800", "A100-80G", "Ascend-910B3"];

fn node_name(i: usize) -> String {
    format!("node-{i:05}")
}

async fn register(agent: &Client, agents: usize) -> Result<()> {
    let t = Instant::now();
    for i in 0..agents {
        agent
            .register(&RegisterNode {
                name: node_name(i),
                model: MODELS[i * MODELS.len() / agents].into(),
                devices: 8,
                cpu_milli: 128_000,
                memory_mib: 1_048_576,
                leaf: Some(format!("leaf-{}", i / 32)),
                spine: Some(format!("spine-{}", i / 256)),
                address: Some(format!("10.0.{}.{}", i / 250, i % 250 + 1)),
                domains: Vec::new(),
                tasks: Vec::new(),
            })
            .await?;
    }
    println!(
        "register: {agents} nodes of 8 devices ({}) in {:.2} s",
        MODELS.join(", "),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn heartbeats(agent: &Client, args: &Args) -> Result<()> {
    let period = Duration::from_secs(1);
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut tasks = Vec::new();
    for i in 0..args.agents {
        let agent = agent.clone();
        let latencies = latencies.clone();
        let beats = args.heartbeat_secs;
        // Agents spread over the second, as independent machines would be.
        let first = start + period.mul_f64(i as f64 / args.agents as f64);
        tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(first, period);
            let mut mine = Vec::with_capacity(beats as usize);
            for beat in 0..beats {
                ticker.tick().await;
                let hb = Heartbeat {
                    node: node_name(i),
                    devices: (0..8)
                        .map(|d| DeviceTelemetry {
                            index: d,
                            healthy: true,
                            utilization: Some(
                                ((i as u64 * 7 + beat * 13 + u64::from(d)) % 100) as f64,
                            ),
                            memory_used_mib: Some(40_000 + u64::from(d) * 100),
                            temperature_c: Some(55.0 + f64::from(d)),
                            memory_total_mib: Some(81_920),
                            power_w: Some(400.0 + f64::from(d)),
                            health: Some("OK".into()),
                            faults: Vec::new(),
                            ecc_corrected: Some(0),
                            ecc_uncorrected: Some(0),
                        })
                        .collect(),
                };
                let t = Instant::now();
                agent.heartbeat(&hb).await?;
                mine.push(t.elapsed());
            }
            latencies.lock().expect("not poisoned").extend(mine);
            Ok::<_, anyhow::Error>(())
        }));
    }
    let t = Instant::now();
    for task in tasks {
        task.await??;
    }
    let lat = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
    println!(
        "heartbeats: {} agents at 1 Hz for {} s: {} heartbeats ({:.0}/s), 8 devices of telemetry each; latency {}",
        args.agents,
        args.heartbeat_secs,
        lat.len(),
        lat.len() as f64 / t.elapsed().as_secs_f64(),
        summary(lat)
    );
    Ok(())
}

/// A Philly-like mix of job sizes (devices per job), cycling deterministically.
fn shape(i: usize) -> (u32, u32) {
    match i % 20 {
        0..=11 => (1, 1),
        12..=14 => (1, 2),
        15..=16 => (1, 4),
        17..=18 => (1, 8),
        _ => (2, 8),
    }
}

async fn scheduling(b: &Bench, agent: &Client, args: &Args) -> Result<()> {
    let app = &b.running.app;
    let mut submitted = 0;
    let t = Instant::now();
    // Fill the cluster, then keep submitting until `pending` jobs wait.
    while app.core().sched.pending_len() < args.pending {
        let batch: Vec<SubmitJob> = (submitted..submitted + 1000)
            .map(|i| {
                let (replicas, devices) = shape(i);
                SubmitJob {
                    name: Some(format!("train-{i}")),
                    replicas,
                    devices_per_replica: devices,
                    models: if i % 5 == 0 {
                        vec![MODELS[i / 5 % MODELS.len()].to_string()]
                    } else {
                        Vec::new()
                    },
                    time_limit_s: Some(3600 * (1 + (i % 24) as u64)),
                    command: vec!["true".into()],
                    ..SubmitJob::default()
                }
            })
            .collect();
        b.admin.submit_batch(&batch).await?;
        submitted += batch.len();
        // Let the scheduling loop take what fits before deciding whether more are needed.
        tokio::time::sleep(Duration::from_millis(200)).await;
        if t.elapsed() > Duration::from_secs(300) {
            bail!("the cluster never filled up");
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (running, pending) = {
        let core = app.core();
        (core.sched.running_len(), core.sched.pending_len())
    };
    println!(
        "scheduling: {submitted} jobs submitted in batches of 1000 in {:.2} s: {running} running on {} devices, {pending} pending",
        t.elapsed().as_secs_f64(),
        args.agents * 8
    );
    let metrics = app.metrics();
    let mut cycles = Vec::new();
    let mut reactions = Vec::new();
    let mut started = 0usize;
    for k in 0..args.churn {
        let victim = {
            let core = app.core();
            core.jobs
                .values()
                .filter(|r| r.state == JobState::Starting)
                .nth(k * 7 % running.max(1))
                .map(|r| (r.id, r.attempt, r.replicas.clone()))
        };
        let Some((id, attempt, replicas)) = victim else {
            bail!("no running job left to end");
        };
        let (count, sum) = metrics.cycle_totals();
        let before = app.metrics().started.get();
        let t = Instant::now();
        for (rank, r) in replicas.iter().enumerate() {
            agent
                .report(&TaskReport {
                    node: r.node.clone(),
                    job: id,
                    attempt,
                    rank: rank as u32,
                    state: TaskState::Exited,
                    exit_code: Some(0),
                })
                .await?;
        }
        while metrics.cycle_totals().0 == count {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        // The cycle's decisions are persisted and dispatched after it is timed; wait for the next quiet
        // moment so that iterations do not overlap.
        reactions.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (count_after, sum_after) = metrics.cycle_totals();
        cycles.push((sum_after - sum) / (count_after - count) as u32);
        started += (app.metrics().started.get() - before) as usize;
    }
    println!(
        "scheduling: {} jobs ended one at a time with ~{} pending: full cycle {}; report-to-decision {}; {started} jobs started in their place",
        args.churn,
        app.core().sched.pending_len(),
        summary(cycles),
        summary(reactions),
    );
    Ok(())
}
