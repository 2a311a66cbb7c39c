//! `wanka catalog`: the accelerator models wanka knows.

use crate::setup::Common;
use anyhow::Result;

/// Output formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    /// An aligned table.
    Table,
    /// JSON, one object per model.
    Json,
}

/// Prints the catalog.
pub fn run(common: &Common, format: Format) -> Result<()> {
    let (catalog, perf) = common.performance()?;
    match format {
        Format::Json => {
            let models: Vec<_> = catalog.models().map(|(_, m)| m).collect();
            println!("{}", serde_json::to_string_pretty(&models)?);
        }
        Format::Table => {
            println!(
                "{:<22} {:<13} {:>5} {:>8} {:>7} {:>6}  {:<8} {:<26} {:<10} aliases",
                "model",
                "vendor",
                "GiB",
                "BF16/FP16",
                "FP32",
                "nds/s",
                "stack",
                "interconnect",
                "trust"
            );
            for (id, m) in catalog.models() {
                let half = m
                    .bf16_tflops
                    .or(m.fp16_tflops)
                    .map_or("-".into(), |t| format!("{t:.0}"));
                let fp32 = m.fp32_tflops.map_or("-".into(), |t| format!("{t:.1}"));
                println!(
                    "{:<22} {:<13} {:>5.0} {:>8} {:>7} {:>6.3}  {:<8} {:<26} {:<10} {}",
                    m.name,
                    format!("{:?}", m.vendor).to_lowercase(),
                    m.memory_gib,
                    half,
                    fp32,
                    perf.peak_rate(id),
                    m.stack,
                    format!(
                        "{} {:.0} GB/s",
                        m.interconnect.kind, m.interconnect.bandwidth_gbs
                    ),
                    format!("{:?}", m.confidence).to_lowercase(),
                    m.aliases.join(", ")
                );
            }
            println!(
                "\n{} models. nds/s: normalized device-seconds per second for a job of unknown class (1.0 = {}).",
                catalog.len(),
                wanka_model::throughput::REFERENCE_MODEL
            );
            println!("\nclasses (a lease may name one: `wanka leases add --model CLASS`):");
            for (name, ids) in catalog.classes() {
                let names: Vec<&str> = ids
                    .iter()
                    .map(|id| catalog.model(*id).name.as_str())
                    .collect();
                println!("  {name:<20} {}", names.join(", "));
            }
        }
    }
    Ok(())
}
