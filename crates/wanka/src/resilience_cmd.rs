//! `wanka sim-failures`: a large training job under node failures for weeks, reactive requeue next to wanka's
//! recovery (precursors acted on first, hot spares), each next to the analytic ETTR model; and the same job
//! replayed over a real fault log.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use wanka_sim::resilience::{self, FailureModel, Policy, Scenario};

/// Options of `wanka sim-failures`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Failure rates to try, per 1000 node-days.
    #[arg(long, value_delimiter = ',', default_value = "2.3,3.8,6.5")]
    pub rates: Vec<f64>,
    /// Checkpoint write times to try, seconds.
    #[arg(long, value_delimiter = ',', default_value = "10,60")]
    pub writes: Vec<f64>,
    /// Besides blocking writes, try asynchronous ones: training stops for this share of the write time (a copy
    /// of the state to host memory) while the write goes on in the background; 0 tries blocking writes only.
    #[arg(long, default_value_t = 0.1)]
    pub snapshot: f64,
    /// Nodes of 8 accelerators the job spans.
    #[arg(long, default_value_t = 1280)]
    pub nodes: u32,
    /// Simulated days.
    #[arg(long, default_value_t = 30.0)]
    pub days: f64,
    /// Seeds averaged per cell.
    #[arg(long, default_value_t = 10)]
    pub seeds: u64,
    /// Hot spares (wanka).
    #[arg(long, default_value_t = 16)]
    pub spares: u32,
    /// The StepFun InfiniteHBD fault trace to replay (fault_trace.json); skipped when absent.
    #[arg(
        long,
        default_value = "../shared/traces/stepfun-infinitehbd-faults-first-half/fault_trace.json"
    )]
    pub stepfun: PathBuf,
    /// The Titan GPU history to replay (gc_full.csv: DBE and OTB removals); skipped when absent.
    #[arg(
        long,
        default_value = "../shared/traces/olcf-titan-gpu-failures/gc_full.csv"
    )]
    pub titan: PathBuf,
}

fn row(cells: &[String]) -> String {
    format!("| {} |", cells.join(" | "))
}

/// Each write time, blocking and (unless `--snapshot 0`) asynchronous: (write, snapshot stop).
fn writes(args: &Args) -> Vec<(f64, Option<f64>)> {
    args.writes
        .iter()
        .flat_map(|&w| {
            let snapshot = (args.snapshot > 0.0).then_some(w * args.snapshot);
            std::iter::once((w, None)).chain(snapshot.map(|s| (w, Some(s))))
        })
        .collect()
}

/// The "stop s" cell: how long training stops per checkpoint, and whether the write is asynchronous.
fn stop(write: f64, snapshot: Option<f64>) -> String {
    match snapshot {
        Some(s) => format!("{s} (async)"),
        None => format!("{write}"),
    }
}

/// Runs the experiment and prints its tables.
pub fn run(args: &Args) -> Result<()> {
    if args.seeds == 0 || args.nodes == 0 || args.days <= 0.0 {
        bail!("--seeds, --nodes and --days must be positive");
    }
    if !(0.0..1.0).contains(&args.snapshot) {
        bail!(
            "--snapshot {} must be a share of the write time, at least 0 and below 1",
            args.snapshot
        );
    }
    let m0 = FailureModel::with_rate(3.8);
    println!(
        "{} nodes × 8 = {} accelerators, {} days, {} seeds per cell; precursor share {:.0}%, mean lead {:.0} min, \
         {} lemon nodes at {}× the rate, {} hot spares (wanka), mean repair {:.0} h",
        args.nodes,
        args.nodes * 8,
        args.days,
        args.seeds,
        m0.precursor_share() * 100.0,
        m0.lead_s / 60.0,
        m0.lemons,
        m0.lemon_factor,
        args.spares,
        m0.repair_s / 3600.0
    );
    let s0 = Scenario::default_job(10.0, 0);
    println!(
        "reactive: detect {:.0} s, restart {:.0} s, replacement from {} background nodes (jobs of {:.0} h); \
         wanka: detect {:.0} s, restart {:.0} s\n",
        s0.detect_s[0],
        s0.restart_s[0],
        s0.background_nodes,
        s0.background_job_s / 3600.0,
        s0.detect_s[1],
        s0.restart_s[1]
    );
    println!(
        "{}",
        row(&[
            "failures /1000 node-days",
            "write s",
            "stop s",
            "policy",
            "interval s",
            "failures",
            "moved first",
            "lost h",
            "waiting h",
            "ETTR",
            "model",
            "sim − model",
        ]
        .map(String::from))
    );
    println!("{}", row(&vec!["---".to_string(); 12]));
    for &rate in &args.rates {
        for (write, snapshot) in writes(args) {
            for policy in [Policy::Reactive, Policy::Wanka] {
                let m = FailureModel::with_rate(rate);
                let mut sum = resilience::Outcome::default();
                let mut model = 0.0;
                for seed in 0..args.seeds {
                    let mut s = Scenario::default_job(write, seed);
                    s.snapshot_s = snapshot;
                    s.nodes = args.nodes;
                    s.horizon_s = args.days * 86400.0;
                    s.spares = args.spares;
                    let o = resilience::run(&m, &s, policy);
                    model += resilience::model_for(&m, &s, policy, o.interval_s);
                    sum.ettr += o.ettr;
                    sum.failures += o.failures;
                    sum.proactive += o.proactive;
                    sum.lost_s += o.lost_s;
                    sum.waiting_s += o.waiting_s;
                    sum.interval_s += o.interval_s;
                }
                let n = args.seeds as f64;
                let (ettr, model) = (sum.ettr / n, model / n);
                println!(
                    "{}",
                    row(&[
                        format!("{rate}"),
                        format!("{write}"),
                        stop(write, snapshot),
                        policy.name().into(),
                        format!("{:.0}", sum.interval_s / n),
                        format!("{:.1}", f64::from(sum.failures) / n),
                        format!("{:.1}", f64::from(sum.proactive) / n),
                        format!("{:.1}", sum.lost_s / n / 3600.0),
                        format!("{:.2}", sum.waiting_s / n / 3600.0),
                        format!("{ettr:.4}"),
                        format!("{model:.4}"),
                        format!("{:+.4}", ettr - model),
                    ])
                );
            }
        }
    }
    replay_stepfun(args)?;
    replay_titan(args)
}

/// Seconds since 1970 of `YYYY-MM-DD HH:MM:SS` (UTC), or `None` when it is not that.
fn epoch_seconds(s: &str) -> Option<f64> {
    let (date, time) = s.trim().split_once(' ')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let (&[y, m, day], &[hh, mm, ss]) = (&d[..], &t[..]) else {
        return None;
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86400 + hh * 3600 + mm * 60 + ss) as f64)
}

/// The same job on Titan's nodes (one GPU each), over its GPU removals for double-bit ECC errors (GPU memory)
/// and GPUs fallen off the bus (GPU compute).
fn replay_titan(args: &Args) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(&args.titan) else {
        println!(
            "\n(Titan GPU history not found at {}: replay skipped)",
            args.titan.display()
        );
        return Ok(());
    };
    let shown = args.titan.display();
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, h)| h.split(',').collect())
        .unwrap_or_default();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .with_context(|| format!("{shown}: line 1: no '{name}' column"))
    };
    let (loc, remove, event) = (col("location")?, col("remove")?, col("event")?);
    let mut nodes = std::collections::BTreeSet::new();
    let mut faults = Vec::new();
    for (i, line) in lines {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() < header.len() {
            bail!(
                "{shown}: line {}: {} fields, the header has {}",
                i + 1,
                cells.len(),
                header.len()
            );
        }
        nodes.insert(cells[loc].to_string());
        let class = match cells[event] {
            "DBE" => 1,
            "OTB" => 0,
            _ => continue,
        };
        let at = epoch_seconds(cells[remove]).with_context(|| {
            format!(
                "{shown}: line {}: remove time '{}' is not YYYY-MM-DD HH:MM:SS",
                i + 1,
                cells[remove]
            )
        })?;
        faults.push((cells[loc].to_string(), at, class));
    }
    let Some(first) = faults.iter().map(|f| f.1).reduce(f64::min) else {
        println!("\n(no DBE or OTB failures in {shown})");
        return Ok(());
    };
    let last = faults.iter().map(|f| f.1).fold(first, f64::max);
    for f in &mut faults {
        f.1 -= first;
    }
    let n = nodes.len() as u32;
    let days = ((last - first) / 86400.0).ceil().max(1.0);
    let rate = faults.len() as f64 / (f64::from(n) * days) * 1000.0;
    println!(
        "\nTitan GPU history ({shown}): {} GPU failures (DBE, OTB) on {n} nodes of 1 GPU over {days:.0} days = {rate:.2} \
         per 1000 node-days; the job spans all {n} nodes\n",
        faults.len()
    );
    print_replay(args, rate, n, days, &faults);
    Ok(())
}

/// The same job on the trace's servers, over the trace's faults.
fn replay_stepfun(args: &Args) -> Result<()> {
    let text = match std::fs::read_to_string(&args.stepfun) {
        Ok(t) => t,
        Err(_) => {
            println!(
                "\n(StepFun fault trace not found at {}: replay skipped)",
                args.stepfun.display()
            );
            return Ok(());
        }
    };
    let events: Vec<serde_json::Value> = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a JSON list of fault events",
            args.stepfun.display()
        )
    })?;
    let mut log = Vec::new();
    let mut servers = std::collections::BTreeSet::new();
    let mut last = 0.0f64;
    for (i, e) in events.iter().enumerate() {
        let field = |k: &str| {
            e.get(k)
                .with_context(|| format!("{} event {i}: no '{k}'", args.stepfun.display()))
        };
        let node = field("node_id")?.as_str().unwrap_or_default().to_string();
        let at = field("event_time")?.as_f64().with_context(|| {
            format!(
                "{} event {i}: event_time is not a number",
                args.stepfun.display()
            )
        })?;
        last = last.max(at);
        servers.insert(node.clone());
        if field("event_type")?.as_str() != Some("fault_start") {
            continue;
        }
        let t = field("fault_type")?;
        let class = resilience::stepfun_class(
            t.get("Level").and_then(|v| v.as_str()).unwrap_or(""),
            t.get("Class").and_then(|v| v.as_str()).unwrap_or(""),
        );
        log.push((node, at * 86400.0, class));
    }
    // The trace samples 400 servers (not all of which failed); the job spans them all.
    let nodes = 400u32.max(servers.len() as u32);
    let days = last.ceil();
    let rate = log.len() as f64 / (f64::from(nodes) * days) * 1000.0;
    println!(
        "\nStepFun InfiniteHBD fault trace ({}): {} faults on {} of {} servers over {:.0} days = {:.1} per 1000 node-days; \
         the job spans the {} servers ({} accelerators)\n",
        args.stepfun.display(),
        log.len(),
        servers.len(),
        nodes,
        days,
        rate,
        nodes,
        nodes * 8
    );
    print_replay(args, rate, nodes, days, &log);
    Ok(())
}

/// The replay table: both policies, each checkpoint write time, over a fault log.
fn print_replay(args: &Args, rate: f64, nodes: u32, days: f64, log: &[(String, f64, usize)]) {
    println!(
        "{}",
        row(&[
            "write s",
            "stop s",
            "policy",
            "failures",
            "moved first",
            "lost h",
            "waiting h",
            "ETTR",
            "model"
        ]
        .map(String::from))
    );
    println!("{}", row(&vec!["---".to_string(); 9]));
    let m = FailureModel {
        lemons: 0,
        ..FailureModel::with_rate(rate)
    };
    for (write, snapshot) in writes(args) {
        for policy in [Policy::Reactive, Policy::Wanka] {
            let mut s = Scenario::default_job(write, 0);
            s.snapshot_s = snapshot;
            s.nodes = nodes;
            s.horizon_s = days * 86400.0;
            s.spares = args.spares.min(nodes / 50).max(1);
            let o = resilience::replay(&m, &s, policy, log);
            let model = resilience::model_for(&m, &s, policy, o.interval_s);
            println!(
                "{}",
                row(&[
                    format!("{write}"),
                    stop(write, snapshot),
                    policy.name().into(),
                    o.failures.to_string(),
                    o.proactive.to_string(),
                    format!("{:.1}", o.lost_s / 3600.0),
                    format!("{:.2}", o.waiting_s / 3600.0),
                    format!("{:.4}", o.ettr),
                    format!("{model:.4}"),
                ])
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::epoch_seconds;

    #[test]
    fn trace_times_are_seconds_since_1970() {
        assert_eq!(epoch_seconds("1970-01-01 00:00:00"), Some(0.0));
        assert_eq!(epoch_seconds("2017-04-09 21:36:19"), Some(1_491_773_779.0));
        assert_eq!(epoch_seconds("2000-03-01 00:00:01"), Some(951_868_801.0));
        assert_eq!(epoch_seconds("yesterday"), None);
        assert_eq!(epoch_seconds("2017-04-09"), None);
    }
}
