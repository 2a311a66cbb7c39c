//! `wanka server`: the control plane.

use crate::setup::Common;
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use wanka_server::state::Settings;

/// Options of `wanka server`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Directory for the SQLite store and the first admin token.
    #[arg(long, env = "WANKA_DATA_DIR", default_value = "wanka-data")]
    pub data_dir: PathBuf,
    /// Store: `sqlite` (default, `wanka.db` in --data-dir), `sqlite:PATH`, or `postgres://user:pass@host/db`.
    #[arg(long, env = "WANKA_DATABASE")]
    pub database: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "WANKA_LISTEN", default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// Scheduling policy preset (wanka, fifo, backfill, best-fit, fgd, gavel).
    #[arg(long, default_value = "wanka")]
    pub policy: String,
    /// Seconds without a heartbeat before a node is declared lost and its work requeued.
    #[arg(long, default_value_t = 30)]
    pub node_timeout: u64,
    /// Seconds between the stop signal and the kill when a job is cancelled.
    #[arg(long, default_value_t = 30)]
    pub kill_grace: u64,
    /// Fault knowledge overriding the built-in (TOML, the format of crates/model/faults.toml).
    #[arg(long, env = "WANKA_FAULTS")]
    pub faults: Option<PathBuf>,
    /// Where jobs' checkpoint directories go (WANKA_CHECKPOINT_DIR = DIR/<job>): storage every node mounts at
    /// the same path (default: <data-dir>/checkpoints, right for one machine only).
    #[arg(long)]
    pub checkpoint_root: Option<PathBuf>,
    /// Seconds a job gets to checkpoint before it is moved off a node about to fail.
    #[arg(long, default_value_t = 120)]
    pub checkpoint_grace: u64,
    /// Move a job off the node of a straggling member (a process stepping 1.5× slower than its gang's median)
    /// and cordon the node; without it stragglers are only reported.
    #[arg(long)]
    pub replace_stragglers: bool,
    /// Restarts after faults before a job is failed.
    #[arg(long, default_value_t = 5)]
    pub max_restarts: u32,
    /// Hot spares to keep per accelerator model: when a spare takes a failed node's place, an idle healthy node
    /// of the model is set aside in its stead (0: only the nodes set aside with `wanka nodes spare`).
    #[arg(long, default_value_t = 0)]
    pub hot_spares: u32,
    /// Seconds a borrower of idle leased capacity has to checkpoint and leave when the owner needs it back.
    #[arg(long, default_value_t = 300)]
    pub reclaim_grace: u64,
    /// Strict lease partitions: never lend a tenant's idle leased capacity to others.
    #[arg(long)]
    pub no_lending: bool,
    /// Borrowed runs that have run this many seconds may be moved (checkpoint, restart on devices held for
    /// them) so that a blocked job finds its devices together; 0: never.
    #[arg(long, default_value_t = 600)]
    pub repack_after: u64,
    /// Repack by moving borrowed runs only, never runs within their tenant's lease.
    #[arg(long)]
    pub no_repack_leased: bool,
    /// Milliseconds between scheduling cycles when nothing changes.
    #[arg(long, default_value_t = 1000)]
    pub tick_ms: u64,
}

impl Args {
    /// The server's configuration.
    pub fn config(&self, common: &Common) -> Result<wanka_server::Config> {
        let (catalog, performance) = common.performance()?;
        let mut policy = wanka_sched::Config::preset(&self.policy)?;
        policy.leases = wanka_sched::LeaseConfig {
            lending: !self.no_lending,
            reclaim_grace: wanka_model::Span::from_secs(self.reclaim_grace as i64),
            repack_after: (self.repack_after > 0)
                .then(|| wanka_model::Span::from_secs(self.repack_after as i64)),
            repack_leased: !self.no_repack_leased,
        };
        Ok(wanka_server::Config {
            data_dir: self.data_dir.clone(),
            database: self.database.clone(),
            listen: self.listen,
            policy,
            catalog,
            performance,
            settings: Settings {
                node_timeout_us: (self.node_timeout as i64).saturating_mul(1_000_000),
                kill_grace_s: self.kill_grace,
                checkpoint_root: self.checkpoint_root.clone(),
                checkpoint_grace_s: self.checkpoint_grace,
                max_fault_restarts: self.max_restarts,
                faults: common.fault_book(self.faults.as_deref())?,
                replace_stragglers: self.replace_stragglers,
                hot_spares: self.hot_spares,
            },
            tick: Duration::from_millis(self.tick_ms.max(1)),
        })
    }
}

/// Runs the server until it is stopped (Ctrl-C) or its store fails.
pub fn run(common: &Common, args: &Args) -> Result<()> {
    let config = args.config(common)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let running = wanka_server::start(config)
            .await
            .context("starting the server")?;
        let (nodes, jobs) = {
            let core = running.app.core();
            (core.nodes.len(), core.jobs.len())
        };
        eprintln!(
            "wanka server listening on http://{} ({} store; {nodes} nodes, {jobs} jobs restored)",
            running.addr,
            running.app.store().backend(),
        );
        if let Some((_, path)) = &running.first_admin {
            eprintln!(
                "first start: an admin token was written to {} (readable by you only); \
                 the CLI reads it from there when run in this directory",
                path.display()
            );
        }
        tokio::select! {
            r = running.done => r.context("the server task panicked")?.context("the server stopped")?,
            _ = tokio::signal::ctrl_c() => eprintln!("stopping (every acknowledged change is already stored)"),
        }
        Ok(())
    })
}
