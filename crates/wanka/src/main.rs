//! `wanka`: one binary for the control plane of a heterogeneous AI compute center.

mod agent_cmd;
mod bench_cluster;
mod bench_sched;
mod bench_server;
mod catalog_cmd;
mod cli;
mod dev;
mod latency;
mod lease_cmd;
mod logs_cmd;
mod memory;
mod remote;
mod resilience_cmd;
mod server_cmd;
mod setup;
mod sim_cmd;
mod slurm;
mod workload;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOC: memory::Counting = memory::Counting;

/// wanka (万卡): makes thousands of accelerators from several vendors run like one computer.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    common: setup::Common,
    #[command(flatten)]
    conn: remote::Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A local cluster in one command: the server on SQLite and simulated nodes of several vendors.
    Dev(Box<dev::Args>),
    /// Run the control plane: API, scheduling loop, durable state (SQLite by default, or PostgreSQL).
    Server(Box<server_cmd::Args>),
    /// Run the node agent: register this node's accelerators, heartbeat, run the jobs placed here.
    Agent(Box<agent_cmd::Args>),
    /// Submit a job: sbatch options and a batch script (its #SBATCH lines are honored), or `-- command`.
    Submit(cli::SubmitArgs),
    /// The queue: jobs with their state and the reason a job waits (like squeue).
    Jobs(cli::JobsArgs),
    /// A job's output (stdout and stderr of every process), from any machine.
    Logs(logs_cmd::Args),
    /// One job.
    Job {
        #[command(subcommand)]
        what: JobCommand,
    },
    /// Cancel jobs.
    Cancel {
        /// Job ids.
        #[arg(required = true)]
        ids: Vec<u64>,
        /// Why (kept in the job's events).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Nodes, or cordon/drain/resume one (admin).
    Nodes {
        #[command(subcommand)]
        action: Option<NodeAction>,
        /// JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Tenants, or create/change one (admin).
    Tenants {
        #[command(subcommand)]
        action: Option<TenantAction>,
        /// JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Leases, or add (admin) / withdraw (admin) one.
    Leases {
        #[command(subcommand)]
        action: Option<lease_cmd::LeaseAction>,
        /// JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
    },
    /// The price table, or set a model's prices (admin).
    Prices {
        #[command(subcommand)]
        action: Option<lease_cmd::PriceAction>,
        /// JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Usage records of a tenant (or all, for an admin) over a window, by kind.
    Usage(lease_cmd::UsageArgs),
    /// A tenant's invoice over a window, from the price table.
    Invoice(lease_cmd::InvoiceArgs),
    /// API tokens (admin).
    Token {
        #[command(subcommand)]
        what: TokenCommand,
    },
    /// List the accelerator models wanka knows, with datasheet figures and normalized rates.
    Catalog {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: catalog_cmd::Format,
    },
    /// Replay real traces on real or synthetic clusters under several policies, side by side.
    Sim(Box<sim_cmd::Args>),
    /// A large training job under node failures for weeks: reactive requeue vs wanka, ETTR vs the model.
    SimFailures(resilience_cmd::Args),
    /// Benchmarks that print their figures.
    Bench {
        #[command(subcommand)]
        what: Bench,
    },
}

#[derive(Subcommand, Debug)]
enum JobCommand {
    /// A job's details, its history of state changes with reasons, and why it waits.
    Show {
        /// Job id.
        id: u64,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum NodeAction {
    /// No new work lands on the node; running work stays.
    Cordon {
        /// Node name.
        node: String,
    },
    /// No new work; running work is left to finish (drained once nothing is allocated).
    Drain {
        /// Node name.
        node: String,
    },
    /// The node takes work again.
    Resume {
        /// Node name.
        node: String,
    },
    /// What the server did to a node and why (device holds, cordons, quarantines, operators' actions).
    Events {
        /// Node name.
        node: String,
    },
    /// A hot spare: no ordinary work; jobs restarted after a fault elsewhere take it at once.
    Spare {
        /// Node name.
        node: String,
    },
    /// Inject a fault into a simulated device (nodes of `wanka dev`, agents with --backend simulated).
    Fault {
        /// Node name.
        node: String,
        /// Device index.
        #[arg(long)]
        device: u32,
        /// An NVIDIA XID to raise (repeatable), e.g. 79 (fallen off the bus), 63 (row remapping pending).
        #[arg(long)]
        xid: Vec<u64>,
        /// Health level: OK, Warning, Alarm or Critical.
        #[arg(long)]
        health: Option<String>,
        /// Correctable ECC errors to report.
        #[arg(long)]
        ecc_corrected: Option<u64>,
        /// Uncorrectable ECC errors to report.
        #[arg(long)]
        ecc_uncorrected: Option<u64>,
        /// A vendor error code to report (repeatable), e.g. an Ascend code.
        #[arg(long)]
        code: Vec<String>,
        /// Remove the device's faults instead.
        #[arg(long)]
        clear: bool,
    },
}

impl NodeAction {
    /// The operator state change this action asks for, with its node (`None` for a fault injection).
    fn admin_state(&self) -> Option<(&'static str, &str)> {
        match self {
            NodeAction::Cordon { node } => Some(("cordon", node)),
            NodeAction::Drain { node } => Some(("drain", node)),
            NodeAction::Resume { node } => Some(("resume", node)),
            NodeAction::Spare { node } => Some(("spare", node)),
            NodeAction::Fault { .. } | NodeAction::Events { .. } => None,
        }
    }
}

#[derive(Subcommand, Debug)]
enum TenantAction {
    /// Create or change a tenant.
    Put {
        /// Tenant name.
        name: String,
        /// Fair-share weight (default 1).
        #[arg(long)]
        weight: Option<f64>,
        /// Most devices it may hold at once.
        #[arg(long)]
        quota: Option<u32>,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a token; it is printed once (the server keeps only its hash).
    Create {
        /// admin, tenant or agent.
        #[arg(long, value_parser = parse_role)]
        role: wanka_api::Role,
        /// The tenant of a tenant token.
        #[arg(long)]
        tenant: Option<String>,
        /// A label to recognize it by.
        #[arg(long)]
        label: Option<String>,
    },
}

fn parse_role(s: &str) -> Result<wanka_api::Role, String> {
    wanka_server::auth::parse_role(s)
        .ok_or_else(|| format!("'{s}': expected admin, tenant or agent"))
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// The scheduler core at 10,000-accelerator scale.
    Sched(bench_sched::Args),
    /// The control plane: durable submissions/s, 1,280 agents heartbeating, the cycle with 10,000 pending.
    Server(bench_server::Args),
    /// The whole path: a local cluster whose agents run every job as real processes.
    Cluster(bench_cluster::Args),
}

fn main() -> Result<()> {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The shim under every task process: no option parsing, nothing between it and the command.
    if argv.get(1).is_some_and(|a| a == "task-shim") {
        return agent_cmd::task_shim(&argv[2..]);
    }
    let mut args = std::env::args();
    if let Some(command) = args.next().as_deref().and_then(slurm::command_of) {
        return slurm::run(command, &args.collect::<Vec<_>>());
    }
    let cli = Cli::parse();
    let conn = &cli.conn;
    match &cli.command {
        Command::Dev(args) => dev::run(&cli.common, args),
        Command::Server(args) => server_cmd::run(&cli.common, args),
        Command::Agent(args) => agent_cmd::run(&cli.common, conn, args),
        Command::Logs(args) => logs_cmd::run(conn, args),
        Command::Submit(args) => cli::submit(conn, args),
        Command::Jobs(args) => cli::jobs(conn, args),
        Command::Job {
            what: JobCommand::Show { id, json },
        } => cli::show(conn, *id, *json),
        Command::Cancel { ids, reason } => cli::cancel(conn, ids, reason.clone()),
        Command::Nodes {
            action:
                Some(NodeAction::Fault {
                    node,
                    device,
                    xid,
                    health,
                    ecc_corrected,
                    ecc_uncorrected,
                    code,
                    clear,
                }),
            ..
        } => cli::inject_fault(
            conn,
            node,
            &wanka_api::InjectFault {
                device: *device,
                xid: xid.clone(),
                health: health.clone(),
                ecc_corrected: *ecc_corrected,
                ecc_uncorrected: *ecc_uncorrected,
                codes: code.clone(),
                clear: *clear,
            },
        ),
        Command::Nodes {
            action: Some(NodeAction::Events { node }),
            json,
        } => cli::node_events(conn, node, *json),
        Command::Nodes { action, json } => cli::nodes(
            conn,
            action.as_ref().and_then(NodeAction::admin_state),
            *json,
        ),
        Command::Tenants { action, json } => {
            let put = action.as_ref().map(
                |TenantAction::Put {
                     name,
                     weight,
                     quota,
                 }| {
                    (
                        name.as_str(),
                        wanka_api::PutTenant {
                            weight: *weight,
                            quota_devices: *quota,
                        },
                    )
                },
            );
            cli::tenants(conn, put, *json)
        }
        Command::Leases { action, json } => lease_cmd::leases(conn, action.as_ref(), *json),
        Command::Prices { action, json } => lease_cmd::prices(conn, action.as_ref(), *json),
        Command::Usage(args) => lease_cmd::usage(conn, args),
        Command::Invoice(args) => lease_cmd::invoice(conn, args),
        Command::Token {
            what:
                TokenCommand::Create {
                    role,
                    tenant,
                    label,
                },
        } => cli::create_token(conn, *role, tenant.clone(), label.clone()),
        Command::Catalog { format } => catalog_cmd::run(&cli.common, *format),
        Command::Bench {
            what: Bench::Sched(args),
        } => bench_sched::run(&cli.common, args),
        Command::Bench {
            what: Bench::Server(args),
        } => bench_server::run(&cli.common, args),
        Command::Bench {
            what: Bench::Cluster(args),
        } => bench_cluster::run(&cli.common, args),
        Command::Sim(args) => sim_cmd::run(&cli.common, args),
        Command::SimFailures(args) => resilience_cmd::run(args),
    }
}
