//! `wanka dev`: a whole cluster on one machine: the server on its SQLite store and several agents with
//! simulated accelerators of different vendors; jobs run as real processes.

use crate::agent_cmd;
use crate::setup::Common;
use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wanka_agent::agent::AgentConfig;
use wanka_server::state::Settings;

/// Options of `wanka dev`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Directory for the store, the admin token and the nodes' work directories.
    #[arg(long, default_value = "wanka-dev")]
    pub data_dir: PathBuf,
    /// Address the server listens on.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// Nodes as MODEL:NODESxDEVICES (catalog name or alias), repeatable; default: 2 x 8 H100,
    /// 2 x 8 Ascend 910B3, 1 x 8 MLU370-X8.
    #[arg(long = "node", value_name = "MODEL:NODESxDEVICES")]
    pub nodes: Vec<String>,
    /// Start from an empty data directory (deletes the previous one).
    #[arg(long)]
    pub fresh: bool,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 2.0)]
    pub heartbeat_s: f64,
    /// Seconds without a heartbeat before a node is lost.
    #[arg(long, default_value_t = 10)]
    pub node_timeout: u64,
    /// Seconds between the stop signal and the kill when a job is cancelled.
    #[arg(long, default_value_t = 10)]
    pub kill_grace: u64,
}

const DEFAULT_NODES: &[&str] = &["H100:2x8", "Ascend-910B3:2x8", "MLU370-X8:1x8"];

/// One group of identical nodes.
struct Group {
    model: String,
    prefix: String,
    nodes: u32,
    devices: u32,
}

fn parse_group(spec: &str) -> Result<Group> {
    let bad = || anyhow::anyhow!("--node {spec}: expected MODEL:NODESxDEVICES, e.g. H100:2x8");
    let (model, shape) = spec.rsplit_once(':').ok_or_else(bad)?;
    let (nodes, devices) = shape.split_once('x').ok_or_else(bad)?;
    let (nodes, devices): (u32, u32) = (
        nodes.trim().parse().map_err(|_| bad())?,
        devices.trim().parse().map_err(|_| bad())?,
    );
    if nodes == 0 || devices == 0 || model.trim().is_empty() {
        return Err(bad());
    }
    Ok(Group {
        model: model.trim().to_string(),
        prefix: model.trim().to_ascii_lowercase().replace([' ', '_'], "-"),
        nodes,
        devices,
    })
}

fn write_devices(dir: &Path, model: &str, count: u32) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("devices.toml");
    let text = format!(
        "# Simulated devices of this dev node. Inject faults with `wanka nodes fault NODE --device 3 --xid 79`\n\
         # or in devices.toml.faults.toml:\n# [[fault]]\n# device = 3\n# xid = [79]\n\
         model = {model:?}\ncount = {count}\n"
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// How to build a local cluster.
pub struct Options {
    /// Directory for the store, the admin token and the nodes' work directories (created; must exist after).
    pub data_dir: PathBuf,
    /// Server address.
    pub listen: SocketAddr,
    /// Node groups, MODEL:NODESxDEVICES.
    pub nodes: Vec<String>,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// Node timeout, seconds.
    pub node_timeout: u64,
    /// Stop-to-kill grace, seconds.
    pub kill_grace: u64,
    /// Agents print only problems.
    pub quiet: bool,
}

/// A running local cluster: the server and its agents, in this process.
pub struct Cluster {
    /// Server base URL.
    pub url: String,
    /// Admin token.
    pub token: String,
    /// Where the admin token is.
    pub token_file: PathBuf,
    /// The server.
    pub server: wanka_server::Running,
    /// The agents.
    pub agents: Vec<wanka_agent::agent::Running>,
    /// Per group: "names (devices x model)".
    pub listing: Vec<String>,
    /// Nodes and devices.
    pub size: (u32, u32),
}

/// Starts the server on SQLite in the data directory and one agent with simulated devices per node.
pub async fn start_cluster(common: &Common, o: &Options) -> Result<Cluster> {
    let groups = o
        .nodes
        .iter()
        .map(|s| parse_group(s))
        .collect::<Result<Vec<_>>>()?;
    let (catalog, performance) = common.performance()?;
    for g in &groups {
        catalog
            .lookup(&g.model)
            .with_context(|| format!("--node {}:{}x{}", g.model, g.nodes, g.devices))?;
    }
    std::fs::create_dir_all(&o.data_dir)
        .with_context(|| format!("creating {}", o.data_dir.display()))?;
    let data_dir = o
        .data_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", o.data_dir.display()))?;
    let config = wanka_server::Config {
        data_dir: data_dir.clone(),
        database: None,
        listen: o.listen,
        policy: wanka_sched::Config::preset("wanka")?,
        catalog: catalog.clone(),
        performance,
        settings: Settings {
            node_timeout_us: (o.node_timeout as i64).saturating_mul(1_000_000),
            kill_grace_s: o.kill_grace,
            ..Settings::default()
        },
        tick: Duration::from_millis(250),
    };
    let shim = agent_cmd::shim()?;
    let server = wanka_server::start(config).await.context(
        "starting the server (another `wanka dev` or `wanka server` on this port? use --listen)",
    )?;
    let url = format!("http://{}", server.addr);
    let token_file = data_dir.join("admin.token");
    let token = std::fs::read_to_string(&token_file)
        .with_context(|| format!("reading {}", token_file.display()))?
        .trim()
        .to_string();
    let mut agents = Vec::new();
    let mut listing = Vec::new();
    for g in &groups {
        let mut names = Vec::new();
        for i in 1..=g.nodes {
            let name = format!("{}-{i}", g.prefix);
            let dir = data_dir.join("nodes").join(&name);
            let devices = write_devices(&dir, &g.model, g.devices)?;
            let cfg = AgentConfig {
                server: url.clone(),
                token: token.clone(),
                name: name.clone(),
                work_dir: dir,
                backend: "simulated".into(),
                devices_file: Some(devices),
                bin_dir: None,
                model: None,
                leaf: Some(format!("leaf-{}", g.prefix)),
                spine: Some("spine-0".into()),
                address: Some("127.0.0.1".into()),
                cpu_milli: Some(64_000),
                memory_mib: Some(512 * 1024),
                heartbeat: o.heartbeat,
                probe: o.heartbeat.min(Duration::from_secs(1)),
                kill_grace: Duration::from_secs(o.kill_grace),
                shim: shim.clone(),
                quiet: o.quiet,
            };
            let running = wanka_agent::agent::start(cfg, &catalog)
                .await
                .with_context(|| {
                    format!(
                        "starting the agent of {name} (an earlier dev cluster with other nodes in {}? add --fresh)",
                        data_dir.display()
                    )
                })?;
            agents.push(running);
            names.push(name);
        }
        let model = catalog.model(catalog.lookup(&g.model)?).name.clone();
        listing.push(format!("{} ({} x {model})", names.join(", "), g.devices));
    }
    let size = (
        groups.iter().map(|g| g.nodes).sum(),
        groups.iter().map(|g| g.nodes * g.devices).sum(),
    );
    Ok(Cluster {
        url,
        token,
        token_file,
        server,
        agents,
        listing,
        size,
    })
}

impl Cluster {
    /// Stops every job process of every agent (SIGTERM, then SIGKILL after `grace`).
    pub async fn stop_jobs(&self, grace: Duration) {
        for a in &self.agents {
            a.stop_all(grace).await;
        }
    }
}

/// Runs the dev cluster until Ctrl-C.
pub fn run(common: &Common, args: &Args) -> Result<()> {
    if args.fresh && args.data_dir.exists() {
        std::fs::remove_dir_all(&args.data_dir)
            .with_context(|| format!("removing {}", args.data_dir.display()))?;
    }
    let options = Options {
        data_dir: args.data_dir.clone(),
        listen: args.listen,
        nodes: if args.nodes.is_empty() {
            DEFAULT_NODES.iter().map(|s| s.to_string()).collect()
        } else {
            args.nodes.clone()
        },
        heartbeat: Duration::from_secs_f64(args.heartbeat_s.max(0.05)),
        node_timeout: args.node_timeout,
        kill_grace: args.kill_grace,
        quiet: false,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let mut c = start_cluster(common, &options).await?;
        eprintln!("wanka dev listening on {}", c.url);
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "wanka".into());
        println!(
            "wanka dev: {} nodes, {} simulated accelerators; jobs run as real processes\n\
             \n  server  {url}  (SQLite: {store})\n  token   {token}  (in {tf})\n  nodes   {nodes}\n\
             \nFrom another terminal:\n\
             \n  export WANKA_SERVER={url} WANKA_TOKEN_FILE={tf}\
             \n  {exe} submit -N 2 --gpus-per-node=2 --wrap 'echo rank $RANK of $WORLD_SIZE on $WANKA_ACCELERATOR devices $CUDA_VISIBLE_DEVICES$ASCEND_RT_VISIBLE_DEVICES$MLU_VISIBLE_DEVICES'\
             \n  {exe} jobs\
             \n  {exe} logs 1 --follow\
             \n  {exe} nodes\n\
             \nCtrl-C stops the cluster and the jobs running in it.",
            c.size.0,
            c.size.1,
            url = c.url,
            token = c.token,
            store = c.token_file.with_file_name("wanka.db").display(),
            tf = c.token_file.display(),
            nodes = c.listing.join("; "),
        );
        let failed = async {
            for a in &mut c.agents {
                if let Ok(Err(e)) = (&mut a.done).await {
                    return e.to_string();
                }
            }
            std::future::pending().await
        };
        tokio::select! {
            r = &mut c.server.done => {
                r.context("the server task panicked")?.context("the server stopped")?;
                bail!("the server stopped");
            }
            why = failed => bail!("an agent stopped: {why}"),
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated() => {}
        }
        eprintln!("stopping: jobs get SIGTERM, then SIGKILL after 5 s");
        c.stop_jobs(Duration::from_secs(5)).await;
        Ok(())
    })
}

/// Resolves on SIGTERM (a service manager or a test harness stopping the cluster).
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
