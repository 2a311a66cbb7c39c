//! `wanka leases`, `wanka prices`, `wanka usage` and `wanka invoice`: leases, the price table and the
//! accounting a center's tenants and finance team read. Dates are UTC (`2026-11-01`, `2026-11-01T08:00Z`).

use crate::cli::{block_on, table};
use crate::remote::Connection;
use anyhow::{Context, Result};
use wanka_api::date;
use wanka_api::lease::{LeaseRequest, LeaseView, Prices, UsageReport};

/// What `wanka leases` does.
#[derive(clap::Subcommand, Debug)]
pub enum LeaseAction {
    /// Lease devices of a model or class to a tenant for a window (admin); refused with what is short and when.
    Add {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// Accelerator model (name or alias, e.g. H100), or a class: a class of the catalog (`wanka catalog`
        /// lists them, e.g. hopper-80g) or models separated by commas; admission pins the lease to one of them.
        #[arg(long)]
        model: String,
        /// Devices guaranteed.
        #[arg(long)]
        devices: u32,
        /// First day (UTC), e.g. 2026-12-01.
        #[arg(long)]
        from: String,
        /// Day after the last, e.g. 2027-12-01.
        #[arg(long)]
        to: String,
        /// Keep the devices under one `leaf` or `spine` switch (default anywhere).
        #[arg(long, default_value = "anywhere")]
        within: String,
    },
    /// Withdraw a lease (admin); it stays on record and is billed until now.
    Remove {
        /// Lease id.
        id: u64,
    },
}

/// What `wanka prices` does.
#[derive(clap::Subcommand, Debug)]
pub enum PriceAction {
    /// Set a model's prices per device-hour (admin).
    Set {
        /// Accelerator model.
        model: String,
        /// A leased device-hour.
        #[arg(long)]
        leased: f64,
        /// A device-hour of unleased capacity.
        #[arg(long)]
        on_demand: f64,
        /// A device-hour borrowed from idle leases (preemptible).
        #[arg(long)]
        preemptible: f64,
    },
}

/// Output of `wanka usage`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    /// Aligned columns with totals.
    Table,
    /// One line per record, for spreadsheets.
    Csv,
    /// The API's report.
    Json,
}

/// The window of a report.
#[derive(clap::Args, Debug)]
pub struct Window {
    /// The tenant (required for a tenant token and for an invoice).
    #[arg(long)]
    tenant: Option<String>,
    /// Window start (UTC date; default: the beginning of records).
    #[arg(long)]
    from: Option<String>,
    /// Window end (UTC date; default: now).
    #[arg(long)]
    to: Option<String>,
}

impl Window {
    fn seconds(&self) -> Result<(Option<f64>, Option<f64>)> {
        let parse = |d: &Option<String>, flag: &str| -> Result<Option<f64>> {
            d.as_deref()
                .map(|d| date::parse(d).map(|s| s as f64))
                .transpose()
                .with_context(|| format!("--{flag}"))
        };
        Ok((parse(&self.from, "from")?, parse(&self.to, "to")?))
    }
}

/// Options of `wanka usage`.
#[derive(clap::Args, Debug)]
pub struct UsageArgs {
    #[command(flatten)]
    window: Window,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// Options of `wanka invoice`.
#[derive(clap::Args, Debug)]
pub struct InvoiceArgs {
    #[command(flatten)]
    window: Window,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `wanka leases [add ... | remove ID]`.
pub fn leases(conn: &Connection, action: Option<&LeaseAction>, json: bool) -> Result<()> {
    let client = conn.client()?;
    let list: Vec<LeaseView> = match action {
        Some(LeaseAction::Add {
            tenant,
            model,
            devices,
            from,
            to,
            within,
        }) => {
            let req = LeaseRequest {
                tenant: tenant.clone(),
                model: model.clone(),
                devices: *devices,
                start: date::parse(from).context("--from")? as f64,
                end: date::parse(to).context("--to")? as f64,
                within: Some(within.clone()),
            };
            vec![block_on(async { Ok(client.create_lease(&req).await?) })?]
        }
        Some(LeaseAction::Remove { id }) => {
            vec![block_on(async { Ok(client.remove_lease(*id).await?) })?]
        }
        None => block_on(async { Ok(client.leases().await?) })?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let day = |s: f64| date::format(s);
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|l| {
            vec![
                l.id.to_string(),
                l.tenant.clone(),
                match &l.class {
                    Some(c) => format!("{} (class {c})", l.model),
                    None => l.model.clone(),
                },
                l.devices.to_string(),
                l.in_use.to_string(),
                l.pool.len().to_string(),
                day(l.start),
                day(l.end),
                match &l.domain {
                    Some(d) => format!("{} {d}", l.within),
                    None => l.within.clone(),
                },
                l.removed.map_or_else(|| "-".into(), day),
            ]
        })
        .collect();
    let head = [
        "ID", "TENANT", "MODEL", "DEVICES", "IN-USE", "NODES", "FROM", "TO", "WITHIN", "REMOVED",
    ];
    print!("{}", table(Some(&head), &rows));
    Ok(())
}

/// `wanka prices [set MODEL ...]`.
pub fn prices(conn: &Connection, action: Option<&PriceAction>, json: bool) -> Result<()> {
    let client = conn.client()?;
    let table_of = block_on(async {
        Ok(match action {
            Some(PriceAction::Set {
                model,
                leased,
                on_demand,
                preemptible,
            }) => {
                let p = Prices {
                    leased: *leased,
                    on_demand: *on_demand,
                    preemptible: *preemptible,
                };
                client.put_prices(model, &p).await?
            }
            None => client.prices().await?,
        })
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&table_of)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = table_of
        .iter()
        .map(|(m, p)| {
            vec![
                m.clone(),
                format!("{:.4}", p.leased),
                format!("{:.4}", p.on_demand),
                format!("{:.4}", p.preemptible),
            ]
        })
        .collect();
    let head = ["MODEL", "LEASED/H", "ON-DEMAND/H", "PREEMPTIBLE/H"];
    print!("{}", table(Some(&head), &rows));
    Ok(())
}

/// The usage report as CSV.
fn usage_csv(report: &UsageReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "job",
        "attempt",
        "tenant",
        "model",
        "kind",
        "devices",
        "start",
        "end",
        "device_hours",
        "normalized_units",
        "open",
    ])?;
    for r in &report.records {
        w.write_record([
            r.job.to_string(),
            r.attempt.to_string(),
            r.tenant.clone(),
            r.model.clone(),
            r.kind.clone(),
            r.devices.to_string(),
            date::format(r.start),
            date::format(r.end),
            format!("{:.6}", r.device_hours),
            format!("{:.6}", r.normalized_units),
            r.open.to_string(),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// `wanka usage --tenant T --from D1 --to D2 --format table|csv|json`.
pub fn usage(conn: &Connection, args: &UsageArgs) -> Result<()> {
    let client = conn.client()?;
    let (from, to) = args.window.seconds()?;
    let tenant = args.window.tenant.as_deref();
    let report = block_on(async { Ok(client.usage(tenant, from, to).await?) })?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Csv => print!("{}", usage_csv(&report)?),
        Format::Table => {
            let rows: Vec<Vec<String>> = report
                .records
                .iter()
                .map(|r| {
                    vec![
                        r.job.to_string(),
                        r.attempt.to_string(),
                        r.tenant.clone(),
                        r.model.clone(),
                        r.kind.clone(),
                        format!("{}", r.devices),
                        date::format(r.start),
                        if r.open {
                            "(running)".into()
                        } else {
                            date::format(r.end)
                        },
                        format!("{:.3}", r.device_hours),
                        format!("{:.3}", r.normalized_units),
                    ]
                })
                .collect();
            let head = [
                "JOB", "RUN", "TENANT", "MODEL", "KIND", "DEVICES", "START", "END", "DEV-H",
                "NORM-U",
            ];
            print!("{}", table(Some(&head), &rows));
            println!(
                "window {} .. {}",
                date::format(report.from),
                date::format(report.to)
            );
            for (kind, h) in &report.totals.device_hours {
                let units = report.totals.normalized_units.get(kind).unwrap_or(&0.0);
                println!("total {kind}: {h:.3} device-hours, {units:.3} normalized units");
            }
        }
    }
    Ok(())
}

/// `wanka invoice --tenant T --from D1 --to D2`.
pub fn invoice(conn: &Connection, args: &InvoiceArgs) -> Result<()> {
    let client = conn.client()?;
    let (from, to) = args.window.seconds()?;
    let tenant = args
        .window
        .tenant
        .as_deref()
        .context("an invoice is for one tenant: give --tenant")?;
    let inv = block_on(async { Ok(client.invoice(tenant, from, to).await?) })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&inv)?);
        return Ok(());
    }
    println!(
        "invoice of '{}' for {} .. {}",
        inv.tenant,
        date::format(inv.from),
        date::format(inv.to)
    );
    let rows: Vec<Vec<String>> = inv
        .lines
        .iter()
        .map(|l| {
            vec![
                l.item.clone(),
                l.model.clone(),
                format!("{:.3}", l.device_hours),
                format!("{:.4}", l.price),
                format!("{:.2}", l.amount),
            ]
        })
        .collect();
    print!(
        "{}",
        table(Some(&["ITEM", "MODEL", "DEV-H", "PRICE", "AMOUNT"]), &rows)
    );
    println!("total {:.2}", inv.total);
    if !inv.unpriced.is_empty() {
        println!(
            "no price set for {} (billed at 0; set with `wanka prices set`)",
            inv.unpriced.join(", ")
        );
    }
    Ok(())
}
