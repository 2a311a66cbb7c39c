//! `wanka bench sched`: the scheduler core at 10,000-accelerator scale.
//!
//! Prints: one full cycle from an empty cluster with a long queue, one arrival into a busy cluster with a
//! long queue, a full re-cycle of the busy cluster, placements per second under churn, and peak memory.

use crate::latency::{ms, quantile, us};
use crate::memory;
use crate::setup::Common;
use crate::workload::{Generator, Source};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wanka_model::{JobId, ModelId, Tenant, TenantId, Time};
use wanka_sched::{Config, Scheduler};
use wanka_sim::cluster_spec::{self, Layout};

/// Options of `wanka bench sched`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The cluster, as COUNTxDEVICES:MODEL items.
    #[arg(
        long,
        default_value = "384x8:H800,384x8:A100-80G,256x8:910B3,256x8:MLU370-X8"
    )]
    cluster: String,
    /// Nodes per leaf switch.
    #[arg(long, default_value_t = 32)]
    nodes_per_leaf: u32,
    /// Leaf switches per spine.
    #[arg(long, default_value_t = 8)]
    leaves_per_spine: u32,
    /// Pending jobs in the queue.
    #[arg(long, default_value_t = 10_000)]
    jobs: u64,
    /// Tenants.
    #[arg(long, default_value_t = 15)]
    tenants: u32,
    /// Philly trace (philly_jobs_pollux.csv) to draw gang sizes and runtimes from; without it the
    /// built-in histogram of its gang sizes is used.
    #[arg(
        long,
        default_value = "../shared/traces/philly-derived/philly_jobs_pollux.csv"
    )]
    trace: PathBuf,
    /// Scheduling policy (fifo, backfill, best-fit, gavel, wanka).
    #[arg(long, default_value = "wanka")]
    policy: String,
    /// Repetitions of the empty-cluster cycle.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Arrivals timed one by one in the busy cluster.
    #[arg(long, default_value_t = 2000)]
    arrivals: u64,
    /// Random seed of the workload.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// Runs the benchmark and prints its table.
pub fn run(common: &Common, args: &Args) -> Result<()> {
    let (catalog, perf) = common.performance()?;
    let config = Config::preset(&args.policy)?;
    let layout = Layout {
        nodes_per_leaf: args.nodes_per_leaf,
        leaves_per_spine: args.leaves_per_spine,
    };
    let nodes = cluster_spec::parse(&args.cluster, &catalog, layout)?;
    if nodes.is_empty() {
        bail!("the cluster spec has no nodes");
    }
    let per_node = nodes.iter().map(|n| n.devices).max().unwrap_or(8);
    let mut models: Vec<ModelId> = nodes.iter().map(|n| n.model).collect();
    models.sort();
    models.dedup();
    let trace = if args.trace.exists() {
        let file = std::fs::File::open(&args.trace)
            .with_context(|| format!("cannot open {}", args.trace.display()))?;
        Some(wanka_sim::trace::philly::read(
            std::io::BufReader::new(file),
            &args.trace.display().to_string(),
        )?)
    } else {
        None
    };
    let source_note = match &trace {
        Some(t) => format!(
            "{} ({} jobs: gang sizes and runtimes)",
            args.trace.display(),
            t.len()
        ),
        None => "built-in Philly gang-size histogram (trace not found); log-uniform runtimes"
            .to_string(),
    };
    let source = || match &trace {
        Some(t) => Source::Trace(t),
        None => Source::Histogram,
    };
    let devices: u32 = nodes.iter().map(|n| n.devices).sum();
    println!(
        "wanka bench sched: {} nodes, {} devices of {} models, {} leaves; {} pending jobs of {} tenants; policy {}",
        nodes.len(),
        devices,
        models.len(),
        nodes.len().div_ceil(args.nodes_per_leaf as usize),
        args.jobs,
        args.tenants,
        args.policy
    );
    println!("workload: {source_note}; seed {}\n", args.seed);

    let build = |generator: &mut Generator| -> Result<(Scheduler, Duration)> {
        let mut s = Scheduler::new(config.clone(), catalog.clone(), perf.clone())?;
        for t in 0..args.tenants {
            s.upsert_tenant(Tenant {
                weight: 1.0 + (t % 3) as f64,
                ..Tenant::new(TenantId(t), format!("tenant-{t}"))
            });
        }
        for n in &nodes {
            s.add_node(n.clone())?;
        }
        let jobs: Vec<_> = (0..args.jobs)
            .map(|i| generator.job(i, Time(i as i64)))
            .collect();
        let t = Instant::now();
        for j in jobs {
            s.submit(j)?;
        }
        Ok((s, t.elapsed()))
    };

    // 1. Full cycle from an empty cluster.
    memory::reset_peak();
    let base = memory::live();
    let mut cycles = Vec::new();
    let mut submits = Vec::new();
    let mut last = None;
    let mut started = 0;
    let now = Time::from_secs(1);
    for _ in 0..args.rounds.max(1) {
        let mut generator =
            Generator::new(args.seed, source(), models.clone(), args.tenants, per_node);
        let (mut s, submit) = build(&mut generator)?;
        let t = Instant::now();
        let plan = s.schedule_full(now);
        cycles.push(t.elapsed());
        submits.push(submit);
        started = plan.stats.started;
        last = Some((s, generator));
    }
    let peak_sched = memory::peak() - base;
    cycles.sort();
    submits.sort();
    let (mut s, mut generator) = last.expect("at least one round");
    let cycle = quantile(&cycles, 0.5);
    let counts = s.device_counts();
    let (usable, used) = counts.values().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));

    // 2. Full re-cycle of the busy cluster with the long queue (what a periodic tick costs).
    let mut ticks = Vec::new();
    for k in 0..3 {
        let t = Instant::now();
        s.schedule_full(now + wanka_model::Span(1 + k));
        ticks.push(t.elapsed());
    }
    ticks.sort();
    let pending_at_tick = s.pending_len();

    // 3. One arrival at a time into the busy cluster.
    let mut arrivals = Vec::new();
    let mut arrival_full = 0;
    let mut arrival_started = 0;
    let base_id = args.jobs + 1_000;
    for i in 0..args.arrivals {
        let at = now + wanka_model::Span(10 + i as i64);
        let job = generator.job(base_id + i, at);
        let t = Instant::now();
        s.submit(job)?;
        let plan = s.schedule(at);
        arrivals.push(t.elapsed());
        arrival_full += u64::from(plan.stats.full);
        arrival_started += plan.stats.started as u64;
    }
    arrivals.sort();

    // 4. Churn: finish 1% of the running jobs, then a full cycle places what fits.
    let mut churn_time = Duration::ZERO;
    let mut churn_starts = 0u64;
    let mut churn_cycles = 0;
    let mut clock = now + wanka_model::Span::from_secs(60);
    for _ in 0..20 {
        let mut running: Vec<JobId> = s
            .snapshot(clock)
            .running
            .iter()
            .map(|r| r.spec.id)
            .collect();
        running.sort();
        for _ in 0..(running.len() / 100).max(1) {
            if running.is_empty() {
                break;
            }
            let id = running.swap_remove(generator.pick(running.len()));
            s.finished(id)?;
        }
        clock = clock + wanka_model::Span::from_secs(1);
        let t = Instant::now();
        let plan = s.schedule(clock);
        churn_time += t.elapsed();
        churn_starts += plan.stats.started as u64;
        churn_cycles += 1;
    }
    let peak_all = memory::peak() - base;

    let rows: Vec<(String, String, String)> = vec![
        (
            "full cycle, empty cluster, 10k queue".into(),
            format!(
                "{} (min {}, max {})",
                ms(cycle),
                ms(cycles[0]),
                ms(*cycles.last().unwrap())
            ),
            "< 100 ms".into(),
        ),
        (
            "  jobs started in that cycle".into(),
            format!("{started} ({used} of {usable} devices busy)"),
            String::new(),
        ),
        (
            "  placements per second".into(),
            format!("{:.0}", started as f64 / cycle.as_secs_f64()),
            "Slurm ~500/s".into(),
        ),
        (
            "submit 10k jobs into the core".into(),
            ms(quantile(&submits, 0.5)),
            String::new(),
        ),
        (
            "one arrival, busy cluster, long queue".into(),
            format!(
                "p50 {}, p99 {}, max {}",
                us(quantile(&arrivals, 0.5)),
                us(quantile(&arrivals, 0.99)),
                us(*arrivals.last().unwrap())
            ),
            "< 1 ms".into(),
        ),
        (
            "  arrivals timed / started / full cycles".into(),
            format!("{} / {arrival_started} / {arrival_full}", arrivals.len()),
            String::new(),
        ),
        (
            format!("full re-cycle, busy cluster, {pending_at_tick} pending"),
            ms(quantile(&ticks, 0.5)),
            String::new(),
        ),
        (
            "churn: finish 1% then cycle (20 rounds)".into(),
            format!(
                "{} per cycle, {churn_starts} starts, {:.0} placements/s",
                ms(churn_time / churn_cycles),
                churn_starts as f64 / churn_time.as_secs_f64()
            ),
            String::new(),
        ),
        (
            "peak heap: scheduler with 10k jobs".into(),
            mib(peak_sched as u64),
            "< 200 MB".into(),
        ),
        (
            "peak heap: whole benchmark".into(),
            mib(peak_all as u64),
            String::new(),
        ),
        (
            "peak RSS of the process (VmHWM)".into(),
            memory::peak_rss().map_or("n/a".into(), mib),
            String::new(),
        ),
    ];
    println!("| measure | result | target |\n|---|---|---|");
    for (a, b, c) in rows {
        println!("| {a} | {b} | {c} |");
    }
    Ok(())
}
