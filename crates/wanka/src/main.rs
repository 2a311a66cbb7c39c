//! `wanka`: one binary for the control plane of a heterogeneous AI compute center.

mod bench_sched;
mod catalog_cmd;
mod memory;
mod setup;
mod sim_cmd;
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the accelerator models wanka knows, with datasheet figures and normalized rates.
    Catalog {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: catalog_cmd::Format,
    },
    /// Replay real traces on real or synthetic clusters under several policies, side by side.
    Sim(Box<sim_cmd::Args>),
    /// Benchmarks that print their figures.
    Bench {
        #[command(subcommand)]
        what: Bench,
    },
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// The scheduler core at 10,000-accelerator scale.
    Sched(bench_sched::Args),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Catalog { format } => catalog_cmd::run(&cli.common, *format),
        Command::Bench {
            what: Bench::Sched(args),
        } => bench_sched::run(&cli.common, args),
        Command::Sim(args) => sim_cmd::run(&cli.common, args),
    }
}
