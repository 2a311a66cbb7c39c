//! `wanka sim`: replay a real trace on a real or synthetic cluster under several policies side by side, or run
//! the FGD packing protocol on Alibaba openb.

use crate::memory;
use crate::setup::Common;
use anyhow::{Context, Result, bail};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};
use wanka_model::{Catalog, ModelId, NodeSpec, Performance, Span, ThroughputMatrix};
use wanka_sched::Config;
use wanka_sim::cluster_spec::{self, Layout};
use wanka_sim::engine::{self, SimConfig};
use wanka_sim::inventory::{self, Network};
use wanka_sim::report::{self, Inputs, Report};
use wanka_sim::trace;
use wanka_sim::workload::{self, Speed, Workload};

/// Trace formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    /// Microsoft Philly jobs (philly_jobs_pollux.csv).
    Philly,
    /// Alibaba openb pods (openb_pod_list_*.csv).
    Openb,
    /// Gavel job traces: one file, or a directory of per-tenant files.
    Gavel,
    /// wanka's own job file (JSON Lines).
    Jobs,
}

/// Node-list formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum NodesFormat {
    /// Alibaba openb node list.
    Openb,
    /// Alibaba spot-GPU node_info_df.csv.
    AlibabaSpot,
    /// Alibaba PAI pai_machine_spec.csv.
    Pai,
    /// Microsoft Philly cluster_machine_list.csv.
    Philly,
}

/// Run-time models.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum SpeedArg {
    /// Run time follows the model a job gets (throughput matrix, else peak × stack efficiency).
    Normalized,
    /// Every model runs a job in its trace duration.
    Uniform,
}

/// Protocols.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Discrete-event replay: arrivals, starts, completions, preemptions.
    Replay,
    /// The FGD paper's packing protocol (openb pods, no departures, tuned to --tune × capacity).
    Fgd,
}

/// Options of `wanka sim`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Synthetic cluster as COUNTxDEVICES:MODEL items, e.g. 640x8:H800,320x8:910B3.
    #[arg(long, conflicts_with = "nodes")]
    cluster: Option<String>,
    /// A real node list.
    #[arg(long)]
    nodes: Option<PathBuf>,
    /// Format of --nodes.
    #[arg(long, value_enum, default_value = "openb")]
    nodes_format: NodesFormat,
    /// A real 3-layer Clos topology (Crux topo.csv) to place nodes in; else a generated leaf/spine layout.
    #[arg(long)]
    topology: Option<PathBuf>,
    /// Nodes per leaf switch in a generated layout.
    #[arg(long, default_value_t = 32)]
    nodes_per_leaf: u32,
    /// Leaf switches per spine in a generated layout.
    #[arg(long, default_value_t = 8)]
    leaves_per_spine: u32,
    /// The trace: a file, or for Gavel a directory of per-tenant .trace files.
    #[arg(long)]
    trace: PathBuf,
    /// Format of --trace.
    #[arg(long, value_enum)]
    trace_format: TraceFormat,
    /// Policies to compare, comma-separated (fifo, backfill, best-fit, fgd, gavel, wanka).
    #[arg(
        long,
        default_value = "fifo,backfill,best-fit,fgd,gavel,wanka",
        value_delimiter = ','
    )]
    policies: Vec<String>,
    /// How run time depends on the model.
    #[arg(long, value_enum, default_value = "normalized")]
    speed: SpeedArg,
    /// The model trace durations were measured on (default: the reference model, A100-SXM4-80GB).
    #[arg(long)]
    base_model: Option<String>,
    /// Scheduling cadence in seconds (0: a cycle after every batch of simultaneous events).
    #[arg(long, default_value_t = 0.0)]
    cycle: f64,
    /// Seconds a preempted job takes to checkpoint and exit.
    #[arg(long, default_value_t = 30.0)]
    checkpoint: f64,
    /// Seconds a restarted job takes to load its checkpoint.
    #[arg(long, default_value_t = 60.0)]
    restart: f64,
    /// Philly: runtime estimates are the real duration times this (0: no estimates).
    #[arg(long, default_value_t = 1.0)]
    estimate_factor: f64,
    /// Divide every arrival time by this (a load-scaled variant of the trace: 2 doubles the arrival rate).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Tenant quotas as a CSV of (tenant, nodes) such as Philly's VC sizes (philly_vc_from_HeliosArtifact.csv):
    /// each tenant may hold at most nodes × --quota-node-devices devices (static partitions).
    #[arg(long)]
    tenant_quotas: Option<PathBuf>,
    /// Devices per node in --tenant-quotas.
    #[arg(long, default_value_t = 8)]
    quota_node_devices: u32,
    /// Tenant leases from a CSV of (tenant, nodes) such as Philly's VC sizes: each tenant leases its share of
    /// every model's devices for the whole run, and each policy runs twice, as strict partitions (no lending)
    /// and with lending of idle leased capacity.
    #[arg(long, conflicts_with = "tenant_quotas")]
    tenant_leases: Option<PathBuf>,
    /// Seconds a borrower has to checkpoint and leave when a lessee reclaims its devices.
    #[arg(long, default_value_t = 300.0)]
    reclaim_grace: f64,
    /// Seconds after which a borrowed run may be moved so that a blocked job finds its devices together (0:
    /// never).
    #[arg(long, default_value_t = 600.0)]
    repack_after: f64,
    /// Repack by moving borrowed runs only, never runs within their tenant's lease.
    #[arg(long)]
    no_repack_leased: bool,
    /// Only the first N jobs of the trace (in arrival order).
    #[arg(long)]
    limit: Option<usize>,
    /// Where report.json, report.md, timing.json and the SVG plots go.
    #[arg(long, default_value = "sim-out")]
    out: PathBuf,
    /// Replay, or the FGD packing protocol.
    #[arg(long, value_enum, default_value = "replay")]
    protocol: Protocol,
    /// FGD protocol: arrived demand to reach, as a multiple of GPU capacity.
    #[arg(long, default_value_t = 1.3)]
    tune: f64,
    /// FGD protocol: seeds of the tuning and shuffling, e.g. 42-51 or 42,43.
    #[arg(long, default_value = "42-51")]
    seeds: String,
    /// FGD protocol: the published allocation table (analysis_allo_discrete.csv) to compare with.
    #[arg(long)]
    published: Option<PathBuf>,
}

fn open(path: &Path) -> Result<std::io::BufReader<std::fs::File>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(std::io::BufReader::new(f))
}

fn name(path: &Path) -> String {
    path.display().to_string()
}

/// The cluster the arguments describe, with a one-line description.
fn cluster(args: &Args, catalog: &Catalog) -> Result<(Vec<NodeSpec>, String)> {
    let layout = Layout {
        nodes_per_leaf: args.nodes_per_leaf,
        leaves_per_spine: args.leaves_per_spine,
    };
    if let Some(spec) = &args.cluster {
        if args.topology.is_some() {
            bail!(
                "--topology places the nodes of a --nodes list; a --cluster spec gets a generated layout"
            );
        }
        return Ok((cluster_spec::parse(spec, catalog, layout)?, spec.clone()));
    }
    let Some(path) = &args.nodes else {
        bail!("give the cluster: --cluster SPEC or --nodes FILE")
    };
    let format = match args.nodes_format {
        NodesFormat::Openb => inventory::Format::Openb,
        NodesFormat::AlibabaSpot => inventory::Format::AlibabaSpot,
        NodesFormat::Pai => inventory::Format::Pai,
        NodesFormat::Philly => inventory::Format::Philly,
    };
    let rows = inventory::read(format, open(path)?, &name(path))?;
    let network = match &args.topology {
        Some(t) => Network::Hosts(inventory::read_clos(open(t)?, &name(t))?),
        None => Network::Layout(layout),
    };
    let (nodes, left_out) = inventory::build(&rows, catalog, &network)?;
    let mut desc = format!("{} ({:?} node list", name(path), args.nodes_format);
    if left_out > 0 {
        desc.push_str(&format!(", {left_out} nodes without accelerators left out"));
    }
    if let Some(t) = &args.topology {
        desc.push_str(&format!(", topology {}", name(t)));
    }
    desc.push(')');
    Ok((nodes, desc))
}

/// Reads a Gavel trace file or directory as (tenant, job) pairs.
fn gavel_jobs(path: &Path) -> Result<Vec<(String, trace::gavel::GavelJob)>> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut f: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "trace"))
            .collect();
        f.sort();
        f
    } else {
        vec![path.to_path_buf()]
    };
    if files.is_empty() {
        bail!("{}: no .trace files", path.display());
    }
    let mut out = Vec::new();
    for f in files {
        let tenant = f
            .file_stem()
            .map_or("gavel".into(), |s| s.to_string_lossy().to_string());
        for j in trace::gavel::read(open(&f)?, &name(&f))? {
            out.push((tenant.clone(), j));
        }
    }
    Ok(out)
}

/// Reads a (tenant, nodes) CSV with a header line.
fn tenant_nodes(path: &Path) -> Result<std::collections::BTreeMap<String, u32>> {
    let mut rdr = csv::Reader::from_reader(open(path)?);
    let mut out = std::collections::BTreeMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: line {}", path.display(), i + 2))?;
        let nodes: u32 = rec
            .get(1)
            .and_then(|n| n.trim().parse().ok())
            .with_context(|| {
                format!(
                    "{}:{}: the second column must be a whole number of nodes",
                    path.display(),
                    i + 2
                )
            })?;
        out.insert(rec.get(0).unwrap_or("").trim().to_string(), nodes);
    }
    Ok(out)
}

/// Tenants of the workload a (tenant, nodes) file does not list, with their job count.
fn unlisted(w: &Workload, listed: &std::collections::BTreeMap<String, u32>) -> Option<String> {
    let names: Vec<&str> = w
        .tenants
        .iter()
        .filter(|t| !listed.contains_key(&t.name))
        .map(|t| t.name.as_str())
        .collect();
    if names.is_empty() {
        return None;
    }
    let jobs = w
        .jobs
        .iter()
        .filter(|j| names.contains(&w.tenants[j.spec.tenant.0 as usize].name.as_str()))
        .count();
    Some(format!(
        "{} tenants absent from it ({}, {jobs} jobs)",
        names.len(),
        names.join(", ")
    ))
}

/// Sets tenant quotas from a (tenant, nodes) CSV; returns a note of what was set.
fn apply_quotas(w: &mut Workload, path: &Path, per_node: u32) -> Result<String> {
    let quotas: std::collections::BTreeMap<String, u32> = tenant_nodes(path)?
        .into_iter()
        .map(|(t, n)| (t, n * per_node))
        .collect();
    for t in &mut w.tenants {
        if let Some(q) = quotas.get(&t.name) {
            t.quota_devices = Some(*q);
        }
    }
    let mut note = format!(
        "tenant quotas from {} ({} tenants, {per_node} devices per node)",
        path.display(),
        quotas.len()
    );
    if let Some(u) = unlisted(w, &quotas) {
        note.push_str(&format!("; {u} run without a quota"));
    }
    Ok(note)
}

/// Gives every listed tenant a lease of its share (its nodes / all listed nodes) of each model's devices,
/// rounded down, for the whole run; returns a note and each tenant's leased devices.
fn apply_leases(w: &mut Workload, path: &Path, nodes: &[NodeSpec]) -> Result<(String, Vec<u32>)> {
    let listed = tenant_nodes(path)?;
    let all: u32 = listed.values().sum();
    if all == 0 {
        bail!("{}: no nodes listed", path.display());
    }
    let mut per_model: std::collections::BTreeMap<ModelId, u32> = Default::default();
    for n in nodes {
        *per_model.entry(n.model).or_default() += n.devices;
    }
    // A tenant the trace never mentions still holds its lease (idle capacity to lend).
    for name in listed.keys() {
        if !w.tenants.iter().any(|t| t.name == *name) {
            let id = wanka_model::TenantId(w.tenants.len() as u32);
            w.tenants.push(wanka_model::Tenant::new(id, name.clone()));
        }
    }
    let mut leased = vec![0; w.tenants.len()];
    for t in &w.tenants {
        let Some(&n) = listed.get(&t.name) else {
            continue;
        };
        for (&model, &devices) in &per_model {
            let share = (devices as u64 * n as u64 / all as u64) as u32;
            if share == 0 {
                continue;
            }
            leased[t.id.0 as usize] += share;
            w.leases.push(wanka_model::Lease {
                id: wanka_model::LeaseId(w.leases.len() as u64 + 1),
                tenant: t.id,
                model,
                devices: share,
                start: wanka_model::Time(0),
                end: wanka_model::Time::NEVER,
                within: wanka_model::Within::Anywhere,
                domain: None,
            });
        }
    }
    let total: u32 = leased.iter().sum();
    let capacity: u32 = per_model.values().sum();
    let mut note = format!(
        "tenant leases from {}: {} tenants lease their share of every model, {total} of {capacity} devices",
        path.display(),
        listed.len()
    );
    if let Some(u) = unlisted(w, &listed) {
        note.push_str(&format!("; {u} have no lease (on-demand or borrowed only)"));
    }
    Ok((note, leased))
}

fn parse_seeds(s: &str) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (a.trim().parse()?, b.trim().parse()?);
                if b < a {
                    bail!("seed range '{part}' runs backwards");
                }
                out.extend(a..=b);
            }
            None => out.push(
                part.trim()
                    .parse()
                    .with_context(|| format!("seed '{part}' is not a number"))?,
            ),
        }
    }
    Ok(out)
}

/// Runs the simulation and writes its outputs.
pub fn run(common: &Common, args: &Args) -> Result<()> {
    let catalog = common.catalog()?;
    let mut matrix = match &common.throughput {
        Some(p) => ThroughputMatrix::from_gavel_json(
            &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
            &name(p),
            &catalog,
        )?,
        None => ThroughputMatrix::new(),
    };
    let reference = catalog.lookup(wanka_model::throughput::REFERENCE_MODEL)?;
    let base = match &args.base_model {
        Some(m) => catalog.lookup(m)?,
        None => reference,
    };
    let configs: Vec<(String, Config)> = args
        .policies
        .iter()
        .map(|p| Ok((p.clone(), Config::preset(p)?)))
        .collect::<Result<_>>()?;
    let (nodes, cluster_desc) = cluster(args, &catalog)?;
    if nodes.is_empty() {
        bail!("the cluster has no accelerator nodes");
    }
    let per_node = nodes.iter().map(|n| n.devices).max().unwrap_or(8);
    let trace_name = name(&args.trace);
    let gavel = if args.trace_format == TraceFormat::Gavel {
        Some(gavel_jobs(&args.trace)?)
    } else {
        None
    };
    let mut notes = Vec::new();
    if let Some(g) = &gavel {
        let jobs: Vec<_> = g.iter().map(|(_, j)| j.clone()).collect();
        notes.extend(workload::extend_gavel_scales(&mut matrix, &jobs));
    }
    let perf = Performance::new(&catalog, matrix)?;
    let mut w: Workload = match args.trace_format {
        TraceFormat::Philly => {
            let jobs = trace::philly::read(open(&args.trace)?, &trace_name)?;
            workload::philly(&jobs, base, per_node, args.estimate_factor)
        }
        TraceFormat::Openb => {
            let pods = trace::openb::read(open(&args.trace)?, &trace_name)?;
            if args.protocol == Protocol::Fgd {
                return fgd(args, &catalog, &perf, &nodes, &pods, &cluster_desc);
            }
            workload::openb(&pods, &trace_name, &catalog, base)?
        }
        TraceFormat::Gavel => {
            // Gavel jobs run on any GPU type the matrix measures.
            let mut models: Vec<ModelId> = perf
                .matrix()
                .classes()
                .filter_map(|c| perf.matrix().class(c))
                .flat_map(|m| m.keys().copied())
                .collect();
            models.sort();
            models.dedup();
            workload::gavel(
                gavel.as_deref().unwrap_or_default(),
                &perf,
                &models,
                per_node,
            )
            .map_err(anyhow::Error::msg)?
        }
        TraceFormat::Jobs => {
            let records = trace::jobfile::read(open(&args.trace)?, &trace_name)?;
            workload::jobfile(&records, &catalog, reference)?
        }
    };
    if args.protocol == Protocol::Fgd {
        bail!("--protocol fgd needs an openb pod list (--trace-format openb)");
    }
    if let Some(n) = args.limit {
        w.jobs.truncate(n);
    }
    if args.time_scale != 1.0 {
        if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
            bail!(
                "--time-scale must be a positive number, not {}",
                args.time_scale
            );
        }
        for j in &mut w.jobs {
            j.spec.submitted =
                wanka_model::Time((j.spec.submitted.0 as f64 / args.time_scale).round() as i64);
        }
        notes.push(format!(
            "arrival times divided by {} (load-scaled variant of the trace)",
            args.time_scale
        ));
    }
    if let Some(path) = &args.tenant_quotas {
        notes.push(apply_quotas(&mut w, path, args.quota_node_devices)?);
    }
    let mut leased = Vec::new();
    if let Some(path) = &args.tenant_leases {
        let (note, l) = apply_leases(&mut w, path, &nodes)?;
        notes.push(note);
        leased = l;
    }
    notes.extend(w.notes.iter().cloned());
    let speed = match args.speed {
        SpeedArg::Normalized => Speed::Normalized,
        SpeedArg::Uniform => Speed::Uniform,
    };
    let grace = Span::from_secs_f64(args.reclaim_grace);
    // With leases, every policy runs as strict partitions and with lending, side by side.
    let configs: Vec<(String, Config)> = if args.tenant_leases.is_some() {
        configs
            .into_iter()
            .flat_map(|(name, config)| {
                [("strict", false), ("lending", true)].map(|(mode, lending)| {
                    let mut c = config.clone();
                    c.leases = wanka_sched::LeaseConfig {
                        lending,
                        reclaim_grace: grace,
                        repack_after: (args.repack_after > 0.0)
                            .then(|| Span::from_secs_f64(args.repack_after)),
                        repack_leased: !args.no_repack_leased,
                    };
                    (format!("{name} {mode}"), c)
                })
            })
            .collect()
    } else {
        configs
    };
    let sims: Vec<SimConfig> = configs
        .into_iter()
        .map(|(name, config)| SimConfig {
            name,
            config,
            cycle: Span::from_secs_f64(args.cycle),
            checkpoint: Span::from_secs_f64(args.checkpoint),
            restart: Span::from_secs_f64(args.restart),
            speed,
        })
        .collect();
    let devices: u64 = nodes.iter().map(|n| n.devices as u64).sum();
    let mut models: Vec<(String, u64)> = Vec::new();
    for n in &nodes {
        let m = catalog.model(n.model).name.clone();
        match models.iter_mut().find(|(x, _)| *x == m) {
            Some(e) => e.1 += n.devices as u64,
            None => models.push((m, n.devices as u64)),
        }
    }
    eprintln!(
        "wanka sim: {} jobs of {} on {} nodes / {devices} devices ({}); policies {}",
        w.jobs.len(),
        trace_name,
        nodes.len(),
        models
            .iter()
            .map(|(m, n)| format!("{n} {m}"))
            .collect::<Vec<_>>()
            .join(", "),
        args.policies.join(", ")
    );

    // Every policy runs in its own thread over the same inputs; each run is deterministic on its own.
    memory::reset_peak();
    let started = Instant::now();
    let done: Vec<AtomicUsize> = sims.iter().map(|_| AtomicUsize::new(0)).collect();
    let total = w.jobs.len();
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = sims
            .iter()
            .zip(&done)
            .map(|(cfg, counter)| {
                let (nodes, w, catalog, perf) = (&nodes, &w, &catalog, &perf);
                scope.spawn(move || {
                    let t = Instant::now();
                    let outcome = engine::run(nodes, w, catalog, perf, cfg, &mut |d, _| {
                        counter.store(d, Relaxed)
                    });
                    (outcome, t.elapsed())
                })
            })
            .collect();
        let tty = std::io::stderr().is_terminal();
        while tty && handles.iter().any(|h| !h.is_finished()) {
            let status: Vec<String> = sims
                .iter()
                .zip(&done)
                .map(|(c, d)| format!("{} {:>3}%", c.name, d.load(Relaxed) * 100 / total.max(1)))
                .collect();
            eprint!(
                "\r  {}  ({:.0} s)",
                status.join("  "),
                started.elapsed().as_secs_f64()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        if tty {
            eprintln!();
        }
        handles
            .into_iter()
            .map(|h| h.join().expect("simulation thread panicked"))
            .collect::<Vec<_>>()
    });
    let wall_total = started.elapsed();
    let peak = memory::peak();
    let mut policies = Vec::new();
    let mut walls = Vec::new();
    for (outcome, wall) in results {
        policies.push(report::summarize(&outcome?, &w.tenants));
        walls.push(wall.as_secs_f64());
    }
    let report = Report {
        schema: report::SCHEMA,
        inputs: Inputs {
            cluster: cluster_desc,
            nodes: nodes.len(),
            devices,
            models,
            workload: format!("{trace_name} ({:?})", args.trace_format),
            jobs: w.jobs.len(),
            settings: vec![
                ("speed".into(), format!("{:?}", args.speed).to_lowercase()),
                ("base_model".into(), catalog.model(base).name.clone()),
                ("cycle_s".into(), args.cycle.to_string()),
                ("checkpoint_s".into(), args.checkpoint.to_string()),
                ("restart_s".into(), args.restart.to_string()),
                ("estimate_factor".into(), args.estimate_factor.to_string()),
                ("time_scale".into(), args.time_scale.to_string()),
            ],
            notes,
        },
        policies,
    };
    write_outputs(&args.out, &report, &walls, wall_total, peak)?;
    if let Some(table) = report::lease_markdown(&report, &leased) {
        let p = args.out.join("leases.md");
        std::fs::write(&p, &table).with_context(|| format!("cannot write {}", p.display()))?;
        println!("{table}");
        println!("wrote {}", p.display());
    }
    Ok(())
}

fn write_outputs(
    out: &Path,
    report: &Report,
    walls: &[f64],
    wall_total: Duration,
    peak: usize,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let table = report::markdown(report, walls);
    let write = |file: &str, text: &str| {
        let p = out.join(file);
        std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))
    };
    write("report.json", &serde_json::to_string_pretty(report)?)?;
    write("report.md", &table)?;
    for (file, svg) in report::plots(report) {
        write(file, &svg)?;
    }
    let rss = memory::peak_rss().unwrap_or(0);
    let timing = serde_json::json!({
        "wall_s_per_policy": report.policies.iter().map(|p| p.policy.clone()).zip(walls.iter().copied()).collect::<Vec<_>>(),
        "wall_s_total": wall_total.as_secs_f64(),
        "peak_heap_bytes": peak,
        "peak_rss_bytes": rss,
    });
    write("timing.json", &serde_json::to_string_pretty(&timing)?)?;
    println!("{table}");
    println!(
        "wall time {:.2} s for all policies (in parallel), peak heap {:.1} MiB, peak RSS {:.1} MiB",
        wall_total.as_secs_f64(),
        peak as f64 / (1 << 20) as f64,
        rss as f64 / (1 << 20) as f64
    );
    println!(
        "wrote {}/report.json, report.md, timing.json, allocation.svg, jct_cdf.svg",
        out.display()
    );
    Ok(())
}

/// Arrived demand (% of GPU capacity) at which the FGD protocol's allocation ratio is reported.
const FGD_POINTS: [usize; 6] = [80, 90, 95, 100, 110, 130];

/// The FGD packing protocol over several seeds, compared with the published table.
fn fgd(
    args: &Args,
    catalog: &Catalog,
    perf: &Performance,
    nodes: &[NodeSpec],
    pods: &[trace::openb::OpenbPod],
    cluster_desc: &str,
) -> Result<()> {
    let seeds = parse_seeds(&args.seeds)?;
    let w = workload::openb(pods, &name(&args.trace), catalog, perf.reference())?;
    let demand: Vec<u64> = w.jobs.iter().map(wanka_sim::fgd::demand).collect();
    let capacity: u64 = nodes.iter().map(|n| n.devices as u64).sum();
    eprintln!(
        "wanka sim (FGD protocol): {} pods of {} tuned to {:.0}% of {capacity} GPUs on {} nodes ({cluster_desc}); seeds {:?}",
        w.jobs.len(),
        name(&args.trace),
        args.tune * 100.0,
        nodes.len(),
        seeds
    );
    let started = Instant::now();
    let mut rows = Vec::new();
    for policy in &args.policies {
        let config = Config::preset(policy)?;
        let t = Instant::now();
        let runs: Vec<Vec<f64>> = std::thread::scope(|scope| {
            let handles: Vec<_> = seeds
                .iter()
                .map(|&seed| {
                    let (config, w, demand) = (config.clone(), &w, &demand);
                    scope.spawn(move || {
                        let cluster = wanka_sim::fgd::Cluster {
                            nodes,
                            catalog,
                            perf,
                        };
                        wanka_sim::fgd::run(&cluster, &w.jobs, demand, config, args.tune, seed)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("fgd thread panicked"))
                .collect::<Result<_, _>>()
        })?;
        let mean = |p: usize| {
            runs.iter().map(|r| r[p.min(r.len() - 1)]).sum::<f64>() / runs.len() as f64 * 100.0
        };
        let at: Vec<f64> = FGD_POINTS.iter().map(|&p| mean(p)).collect();
        rows.push((
            format!("wanka:{policy}"),
            at,
            runs.len(),
            format!("{:.2} s", t.elapsed().as_secs_f64()),
        ));
    }
    let mut table = String::from("| policy |");
    for p in FGD_POINTS {
        table.push_str(&format!(" {p}% arrived |"));
    }
    table.push_str(" seeds | wall |\n|---|");
    table.push_str(&"---|".repeat(FGD_POINTS.len() + 2));
    table.push('\n');
    let mut push_row = |name: &str, at: &[f64], n: usize, wall: &str| {
        table.push_str(&format!("| {name} |"));
        for a in at {
            table.push_str(&format!(" {a:.2}% |"));
        }
        table.push_str(&format!(" {n} | {wall} |\n"));
    };
    for (p, at, n, wall) in &rows {
        push_row(p, at, *n, wall);
    }
    if let Some(path) = &args.published {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let workload = args
            .trace
            .file_stem()
            .map_or(String::new(), |s| s.to_string_lossy().to_string());
        let columns = FGD_POINTS
            .iter()
            .map(|&p| wanka_sim::fgd::published(&text, &workload, p).map_err(anyhow::Error::msg))
            .collect::<Result<Vec<_>>>()?;
        for (i, (policy, _, n)) in columns[0].iter().enumerate() {
            let at: Vec<f64> = columns.iter().map(|c| c[i].1).collect();
            push_row(&format!("published {policy}"), &at, *n, "-");
        }
    }
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("fgd.md"), &table)?;
    println!("{table}");
    println!(
        "wall time {:.2} s, peak heap {:.1} MiB; wrote {}/fgd.md",
        started.elapsed().as_secs_f64(),
        memory::peak() as f64 / (1 << 20) as f64,
        args.out.display()
    );
    Ok(())
}
