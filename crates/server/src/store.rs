//! Durable state: one storage interface over SQLite (the embedded default) and PostgreSQL.
//!
//! The server keeps its authoritative state in memory and writes every change here before it answers. One
//! writer task owns one connection and commits whatever has queued up while the previous commit was syncing,
//! in one transaction (group commit): a burst of submissions costs one fsync per batch, not per job, and the
//! order of commits is the order in which the server queued the changes. Reads that memory does not answer
//! (a job's event history) go through a small pool. Every write is idempotent (upserts, inserts that ignore
//! an existing row), so retrying a batch whose commit outcome is unknown is safe.

use serde::Serialize;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Row};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};

/// Migrations, in order: (version, name, SQL). Applied ones are recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (
        2,
        "node events",
        include_str!("../migrations/0002_node_events.sql"),
    ),
    (
        3,
        "leases, prices and usage",
        include_str!("../migrations/0003_leases_usage.sql"),
    ),
    (
        4,
        "lease classes",
        include_str!("../migrations/0004_lease_class.sql"),
    ),
];

/// Most changes committed in one transaction.
const MAX_BATCH: usize = 4096;

/// Attempts at one batch before the store is declared failed.
const ATTEMPTS: u32 = 6;

/// Where the state lives.
#[derive(Clone, Debug, PartialEq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server (a `postgres://` URL).
    Postgres(String),
}

impl Location {
    /// Reads `--database`: empty means `wanka.db` in the data directory; `sqlite:PATH` or `postgres://...`.
    pub fn parse(database: Option<&str>, data_dir: &Path) -> Result<Location, StoreError> {
        match database {
            None | Some("") | Some("sqlite") => Ok(Location::Sqlite(data_dir.join("wanka.db"))),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Location::Postgres(url.to_string()))
            }
            Some(url) => match url
                .strip_prefix("sqlite://")
                .or(url.strip_prefix("sqlite:"))
            {
                Some(path) if !path.is_empty() => Ok(Location::Sqlite(PathBuf::from(path))),
                _ => Err(StoreError::Location(url.to_string())),
            },
        }
    }

    /// The backend's name, for logs and metrics.
    pub fn backend(&self) -> &'static str {
        match self {
            Location::Sqlite(_) => "sqlite",
            Location::Postgres(_) => "postgres",
        }
    }

    fn url(&self) -> String {
        match self {
            Location::Sqlite(path) => format!("sqlite://{}?mode=rwc", path.display()),
            Location::Postgres(url) => url.clone(),
        }
    }
}

/// A storage failure.
#[derive(Debug, Error, Clone)]
pub enum StoreError {
    /// The `--database` value is not understood.
    #[error(
        "--database {0:?}: expected `sqlite`, `sqlite:PATH` or a `postgres://user:password@host/db` URL"
    )]
    Location(String),
    /// The database refused or failed.
    #[error("{backend} store: {action}: {message}")]
    Database {
        /// sqlite or postgres.
        backend: &'static str,
        /// What the server was doing.
        action: String,
        /// The driver's message.
        message: String,
    },
    /// A row that does not read back (edited by hand, or written by a newer version).
    #[error("{backend} store: {table} row {key}: {problem}")]
    Corrupt {
        /// sqlite or postgres.
        backend: &'static str,
        /// The table.
        table: &'static str,
        /// The row's key.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// The writer gave up earlier; nothing more is accepted until the server restarts.
    #[error("the store failed earlier ({0}); restart the server once the database is reachable")]
    Failed(String),
}

/// A tenant row.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantRow {
    /// Name.
    pub name: String,
    /// Fair-share weight.
    pub weight: f64,
    /// Device quota.
    pub quota: Option<u32>,
}

/// A token row (only the hash of the token is stored).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenRow {
    /// SHA-256 of the token, hex.
    pub hash: String,
    /// admin, tenant or agent.
    pub role: String,
    /// The tenant of a tenant token.
    pub tenant: Option<String>,
    /// A label.
    pub label: Option<String>,
    /// Creation time, Unix microseconds.
    pub created_us: i64,
}

/// A node row.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRow {
    /// Host name.
    pub name: String,
    /// The agent's registration, JSON.
    pub registration: String,
    /// ready, cordoned or draining (lost is not persisted: a restarted server waits for heartbeats afresh).
    pub admin_state: String,
    /// Unhealthy device indices, JSON.
    pub unhealthy: String,
}

/// A job row.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRow {
    /// Id.
    pub id: u64,
    /// Owner.
    pub tenant: String,
    /// State name.
    pub state: String,
    /// The server's record of the job, JSON.
    pub record: String,
}

/// A job event row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventRow {
    /// The job.
    pub job: u64,
    /// Sequence number within the job.
    pub seq: u32,
    /// Unix microseconds.
    pub at_us: i64,
    /// State entered.
    pub state: String,
    /// Why.
    pub reason: String,
}

/// One change to persist.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Create or replace a tenant.
    Tenant(TenantRow),
    /// Add a token.
    Token(TokenRow),
    /// Create or replace a node.
    Node(NodeRow),
    /// Create or replace a job.
    Job(JobRow),
    /// Record a job event.
    Event(EventRow),
    /// Record a node event.
    NodeEvent(NodeEventRow),
    /// Create or replace a lease.
    Lease(LeaseRow),
    /// Create or replace a model's prices.
    Price(PriceRow),
    /// Record a finished segment of a run.
    Usage(UsageRow),
}

/// A lease row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeaseRow {
    /// Id.
    pub id: u64,
    /// Owner.
    pub tenant: String,
    /// Model name (for a lease of a class, the model admission pinned it to).
    pub model: String,
    /// The class asked for, when it was one: a class name or models separated by commas.
    pub class: Option<String>,
    /// Devices.
    pub devices: u32,
    /// Window, Unix microseconds.
    pub start_us: i64,
    /// Window end.
    pub end_us: i64,
    /// `anywhere`, `leaf` or `spine`.
    pub within: String,
    /// The switch chosen at admission.
    pub domain: Option<String>,
    /// Admission time.
    pub created_us: i64,
    /// Withdrawal time.
    pub removed_us: Option<i64>,
}

/// A price row (per device-hour).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PriceRow {
    /// Model name.
    pub model: String,
    /// Leased, on-demand and preemptible prices.
    pub prices: wanka_api::lease::Prices,
}

/// A usage row: one segment of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UsageRow {
    /// The job.
    pub job: u64,
    /// Its run number.
    pub attempt: u32,
    /// Owner.
    pub tenant: String,
    /// Model name.
    pub model: String,
    /// `leased`, `on-demand` or `borrowed`.
    pub kind: String,
    /// Devices held, thousandths.
    pub device_milli: u64,
    /// Normalized throughput per device.
    pub rate: f64,
    /// Segment start, Unix microseconds.
    pub start_us: i64,
    /// Segment end.
    pub end_us: i64,
}

/// A node event row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeEventRow {
    /// The node.
    pub node: String,
    /// Unix microseconds (strictly increasing per node).
    pub at_us: i64,
    /// What was done (`hold-device`, `cordon`, `quarantine`, `release-device`, ...).
    pub action: String,
    /// Why.
    pub reason: String,
}

/// Everything read back at start-up.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Tenants.
    pub tenants: Vec<TenantRow>,
    /// Tokens.
    pub tokens: Vec<TokenRow>,
    /// Nodes.
    pub nodes: Vec<NodeRow>,
    /// Jobs, by id.
    pub jobs: Vec<JobRow>,
    /// Leases, by id.
    pub leases: Vec<LeaseRow>,
    /// The price table.
    pub prices: Vec<PriceRow>,
}

struct Request {
    writes: Vec<Write>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The store: a queue into the writer task, and a pool for reads.
#[derive(Clone)]
pub struct Store {
    backend: &'static str,
    queue: mpsc::UnboundedSender<Request>,
    reads: AnyPool,
    failed: watch::Receiver<Option<StoreError>>,
}

/// A queued change set; [`Ack::wait`] returns once it is durable.
pub struct Ack(Result<oneshot::Receiver<Result<(), StoreError>>, StoreError>);

impl Ack {
    /// Waits until the changes are committed (or the store failed).
    pub async fn wait(self) -> Result<(), StoreError> {
        match self.0 {
            Ok(rx) => rx
                .await
                .unwrap_or_else(|_| Err(StoreError::Failed("the writer task stopped".to_string()))),
            Err(e) => Err(e),
        }
    }
}

fn db_error(
    backend: &'static str,
    action: impl Into<String>,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| StoreError::Database {
        backend,
        action: action.into(),
        message: e.to_string(),
    }
}

impl Store {
    /// Opens (creating if needed) the store, applies migrations, reads everything back and starts the writer.
    pub async fn open(location: &Location) -> Result<(Store, Loaded), StoreError> {
        sqlx::any::install_default_drivers();
        let backend = location.backend();
        if let Location::Sqlite(path) = location
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Database {
                backend,
                action: format!("creating {}", dir.display()),
                message: e.to_string(),
            })?;
        }
        let url = location.url();
        let options =
            AnyConnectOptions::from_str(&url).map_err(db_error(backend, "reading the URL"))?;
        let mut conn = connect(&options, backend)
            .await
            .map_err(db_error(backend, format!("connecting to {}", redact(&url))))?;
        migrate(&mut conn, backend).await?;
        let loaded = load(&mut conn, backend).await?;
        let reads = AnyPoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .map_err(db_error(backend, "opening the read pool"))?;
        let (queue, rx) = mpsc::unbounded_channel();
        let (fail_tx, failed) = watch::channel(None);
        tokio::spawn(writer(conn, options, backend, rx, fail_tx));
        Ok((
            Store {
                backend,
                queue,
                reads,
                failed,
            },
            loaded,
        ))
    }

    /// sqlite or postgres.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Queues changes; they commit in the order queued. Call this while holding the lock that orders the
    /// in-memory changes, and wait on the answer after releasing it.
    pub fn enqueue(&self, writes: Vec<Write>) -> Ack {
        if let Some(e) = self.failed() {
            return Ack(Err(StoreError::Failed(e.to_string())));
        }
        let (done, rx) = oneshot::channel();
        if writes.is_empty() {
            // Nothing to make durable (a heartbeat that changed no health, a read-only check): answer at once
            // instead of waiting behind other changes' fsync.
            let _ = done.send(Ok(()));
            return Ack(Ok(rx));
        }
        match self.queue.send(Request { writes, done }) {
            Ok(()) => Ack(Ok(rx)),
            Err(_) => Ack(Err(StoreError::Failed(
                "the writer task stopped".to_string(),
            ))),
        }
    }

    /// Why the store failed for good, if it has.
    pub fn failed(&self) -> Option<StoreError> {
        self.failed.borrow().clone()
    }

    /// Resolves once the store has failed for good, with the reason.
    pub async fn failure(&self) -> StoreError {
        let mut rx = self.failed.clone();
        loop {
            if let Some(e) = rx.borrow_and_update().clone() {
                return e;
            }
            if rx.changed().await.is_err() {
                return StoreError::Failed("the writer task stopped".to_string());
            }
        }
    }

    /// A node's events, oldest first.
    pub async fn node_events(&self, node: &str) -> Result<Vec<NodeEventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_us, action, reason FROM node_events WHERE node = $1 ORDER BY at_us",
        )
        .bind(node.to_string())
        .fetch_all(&self.reads)
        .await
        .map_err(db_error(
            self.backend,
            format!("reading events of node {node}"),
        ))?;
        let col = |c: &'static str| db_error(self.backend, c);
        rows.iter()
            .map(|r| {
                Ok(NodeEventRow {
                    node: node.to_string(),
                    at_us: r.try_get(0).map_err(col("node_events.at_us"))?,
                    action: r.try_get(1).map_err(col("node_events.action"))?,
                    reason: r.try_get(2).map_err(col("node_events.reason"))?,
                })
            })
            .collect()
    }

    /// Finished segments that overlap `[from_us, to_us)`, of one tenant or all, by start.
    pub async fn usage(
        &self,
        tenant: Option<&str>,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT job_id, attempt, tenant, model, kind, device_milli, rate, start_us, end_us \
             FROM usage_records WHERE ($1 = '' OR tenant = $1) AND end_us > $2 AND start_us < $3 \
             ORDER BY start_us, job_id",
        )
        .bind(tenant.unwrap_or("").to_string())
        .bind(from_us)
        .bind(to_us)
        .fetch_all(&self.reads)
        .await
        .map_err(db_error(self.backend, "reading usage records"))?;
        let col = |c: &'static str| db_error(self.backend, c);
        rows.iter()
            .map(|r| {
                Ok(UsageRow {
                    job: r.try_get::<i64, _>(0).map_err(col("usage.job_id"))? as u64,
                    attempt: r.try_get::<i64, _>(1).map_err(col("usage.attempt"))? as u32,
                    tenant: r.try_get(2).map_err(col("usage.tenant"))?,
                    model: r.try_get(3).map_err(col("usage.model"))?,
                    kind: r.try_get(4).map_err(col("usage.kind"))?,
                    device_milli: r.try_get::<i64, _>(5).map_err(col("usage.device_milli"))? as u64,
                    rate: r.try_get(6).map_err(col("usage.rate"))?,
                    start_us: r.try_get(7).map_err(col("usage.start_us"))?,
                    end_us: r.try_get(8).map_err(col("usage.end_us"))?,
                })
            })
            .collect()
    }

    /// A job's events, oldest first.
    pub async fn events(&self, job: u64) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at_us, state, reason FROM job_events WHERE job_id = $1 ORDER BY seq",
        )
        .bind(job as i64)
        .fetch_all(&self.reads)
        .await
        .map_err(db_error(
            self.backend,
            format!("reading events of job {job}"),
        ))?;
        rows.iter()
            .map(|r| {
                Ok(EventRow {
                    job,
                    seq: r
                        .try_get::<i64, _>(0)
                        .map_err(db_error(self.backend, "job_events.seq"))?
                        as u32,
                    at_us: r
                        .try_get(1)
                        .map_err(db_error(self.backend, "job_events.at_us"))?,
                    state: r
                        .try_get(2)
                        .map_err(db_error(self.backend, "job_events.state"))?,
                    reason: r
                        .try_get(3)
                        .map_err(db_error(self.backend, "job_events.reason"))?,
                })
            })
            .collect()
    }
}

/// One connection; a SQLite file is switched to WAL and to a sync at every commit.
async fn connect(
    options: &AnyConnectOptions,
    backend: &'static str,
) -> Result<AnyConnection, sqlx::Error> {
    let mut conn = AnyConnection::connect_with(options).await?;
    if backend == "sqlite" {
        // WAL lets readers run beside the writer; FULL syncs the WAL at every commit, so an acknowledged
        // change survives power loss, not just a process crash.
        for pragma in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = FULL",
            "PRAGMA busy_timeout = 5000",
        ] {
            sqlx::query(pragma).execute(&mut conn).await?;
        }
    }
    Ok(conn)
}

/// Creates an empty PostgreSQL database `name` (dropping one of that name) through the server `admin_url`
/// points at, and returns the new database's URL. For tests and benchmarks that need a store of their own.
pub async fn fresh_postgres_database(admin_url: &str, name: &str) -> Result<String, StoreError> {
    sqlx::any::install_default_drivers();
    let fail = |action: &str| {
        db_error(
            "postgres",
            format!("{action} {name} on {}", redact(admin_url)),
        )
    };
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Location(format!("database name '{name}'")));
    }
    let mut admin = AnyConnection::connect(admin_url)
        .await
        .map_err(fail("connecting to create"))?;
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .map_err(fail("creating"))?;
    }
    let base = admin_url.split('?').next().unwrap_or(admin_url);
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

/// A URL with its password hidden, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

async fn migrate(conn: &mut AnyConnection, backend: &'static str) -> Result<(), StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .map_err(db_error(backend, "creating schema_migrations"))?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error(backend, "reading schema_migrations"))?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()
        .map_err(db_error(backend, "reading schema_migrations"))?;
    let newest = MIGRATIONS.last().map_or(0, |m| m.0);
    if let Some(v) = applied.iter().find(|v| **v > newest) {
        return Err(StoreError::Corrupt {
            backend,
            table: "schema_migrations",
            key: v.to_string(),
            problem: format!(
                "the database was migrated by a newer wanka (schema {v}, this one knows up to {newest})"
            ),
        });
    }
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let action = format!("migration {version} ({name})");
        let mut tx = conn
            .begin()
            .await
            .map_err(db_error(backend, action.clone()))?;
        for statement in statements(sql) {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await
                .map_err(db_error(backend, action.clone()))?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
            .bind(*version)
            .bind(*name)
            .execute(&mut *tx)
            .await
            .map_err(db_error(backend, action.clone()))?;
        tx.commit().await.map_err(db_error(backend, action))?;
    }
    Ok(())
}

/// The statements of a migration file: split at `;` ending a line, comment lines dropped.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if trimmed.ends_with(';') {
            out.push(
                std::mem::take(&mut cur)
                    .trim()
                    .trim_end_matches(';')
                    .to_string(),
            );
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

async fn load(conn: &mut AnyConnection, backend: &'static str) -> Result<Loaded, StoreError> {
    let get = |table: &'static str| db_error(backend, format!("reading {table}"));
    let mut loaded = Loaded::default();
    for r in sqlx::query("SELECT name, weight, quota FROM tenants ORDER BY name")
        .fetch_all(&mut *conn)
        .await
        .map_err(get("tenants"))?
    {
        let quota: Option<i64> = r.try_get(2).map_err(get("tenants"))?;
        loaded.tenants.push(TenantRow {
            name: r.try_get(0).map_err(get("tenants"))?,
            weight: r.try_get(1).map_err(get("tenants"))?,
            quota: quota.map(|q| q as u32),
        });
    }
    for r in sqlx::query("SELECT hash, role, tenant, label, created_us FROM tokens")
        .fetch_all(&mut *conn)
        .await
        .map_err(get("tokens"))?
    {
        loaded.tokens.push(TokenRow {
            hash: r.try_get(0).map_err(get("tokens"))?,
            role: r.try_get(1).map_err(get("tokens"))?,
            tenant: r.try_get(2).map_err(get("tokens"))?,
            label: r.try_get(3).map_err(get("tokens"))?,
            created_us: r.try_get(4).map_err(get("tokens"))?,
        });
    }
    for r in
        sqlx::query("SELECT name, registration, admin_state, unhealthy FROM nodes ORDER BY name")
            .fetch_all(&mut *conn)
            .await
            .map_err(get("nodes"))?
    {
        loaded.nodes.push(NodeRow {
            name: r.try_get(0).map_err(get("nodes"))?,
            registration: r.try_get(1).map_err(get("nodes"))?,
            admin_state: r.try_get(2).map_err(get("nodes"))?,
            unhealthy: r.try_get(3).map_err(get("nodes"))?,
        });
    }
    for r in sqlx::query("SELECT id, tenant, state, record FROM jobs ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .map_err(get("jobs"))?
    {
        let id: i64 = r.try_get(0).map_err(get("jobs"))?;
        loaded.jobs.push(JobRow {
            id: id as u64,
            tenant: r.try_get(1).map_err(get("jobs"))?,
            state: r.try_get(2).map_err(get("jobs"))?,
            record: r.try_get(3).map_err(get("jobs"))?,
        });
    }
    for r in sqlx::query(
        "SELECT id, tenant, model, devices, start_us, end_us, within, domain, created_us, removed_us, class \
         FROM leases ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(get("leases"))?
    {
        loaded.leases.push(LeaseRow {
            id: r.try_get::<i64, _>(0).map_err(get("leases"))? as u64,
            tenant: r.try_get(1).map_err(get("leases"))?,
            model: r.try_get(2).map_err(get("leases"))?,
            devices: r.try_get::<i64, _>(3).map_err(get("leases"))? as u32,
            start_us: r.try_get(4).map_err(get("leases"))?,
            end_us: r.try_get(5).map_err(get("leases"))?,
            within: r.try_get(6).map_err(get("leases"))?,
            domain: r.try_get(7).map_err(get("leases"))?,
            created_us: r.try_get(8).map_err(get("leases"))?,
            removed_us: r.try_get(9).map_err(get("leases"))?,
            class: r.try_get(10).map_err(get("leases"))?,
        });
    }
    for r in sqlx::query("SELECT model, leased, on_demand, preemptible FROM prices ORDER BY model")
        .fetch_all(&mut *conn)
        .await
        .map_err(get("prices"))?
    {
        loaded.prices.push(PriceRow {
            model: r.try_get(0).map_err(get("prices"))?,
            prices: wanka_api::lease::Prices {
                leased: r.try_get(1).map_err(get("prices"))?,
                on_demand: r.try_get(2).map_err(get("prices"))?,
                preemptible: r.try_get(3).map_err(get("prices"))?,
            },
        });
    }
    Ok(loaded)
}

async fn writer(
    mut conn: AnyConnection,
    options: AnyConnectOptions,
    backend: &'static str,
    mut rx: mpsc::UnboundedReceiver<Request>,
    failed: watch::Sender<Option<StoreError>>,
) {
    let mut batch: Vec<Request> = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let mut changes = batch[0].writes.len();
        while changes < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => {
                    changes += r.writes.len();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        let mut result = Ok(());
        for attempt in 0..ATTEMPTS {
            result = commit(&mut conn, backend, &batch).await;
            if result.is_ok() {
                break;
            }
            if attempt + 1 < ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                // A dropped connection (a restarted PostgreSQL) is replaced; anything else is retried as is.
                if conn.ping().await.is_err()
                    && let Ok(c) = connect(&options, backend).await
                {
                    conn = c;
                }
            }
        }
        let fatal = result.as_ref().err().cloned();
        for r in batch.drain(..) {
            let _ = r.done.send(result.clone());
        }
        if let Some(e) = fatal {
            // Memory may now be ahead of the store: refuse everything from here on, so that nothing more is
            // acknowledged, and let the server stop; a restart rebuilds the state from what was committed.
            let _ = failed.send(Some(e.clone()));
            while let Some(r) = rx.recv().await {
                let _ = r.done.send(Err(StoreError::Failed(e.to_string())));
            }
            return;
        }
    }
}

async fn commit(
    conn: &mut AnyConnection,
    backend: &'static str,
    batch: &[Request],
) -> Result<(), StoreError> {
    let mut tx = conn
        .begin()
        .await
        .map_err(db_error(backend, "beginning a transaction"))?;
    for write in batch.iter().flat_map(|r| &r.writes) {
        let (action, query) = match write {
            Write::Tenant(t) => (
                "writing a tenant",
                sqlx::query(
                    "INSERT INTO tenants (name, weight, quota) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET weight = excluded.weight, quota = excluded.quota",
                )
                .bind(t.name.clone())
                .bind(t.weight)
                .bind(t.quota.map(i64::from)),
            ),
            Write::Token(t) => (
                "writing a token",
                sqlx::query(
                    "INSERT INTO tokens (hash, role, tenant, label, created_us) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (hash) DO NOTHING",
                )
                .bind(t.hash.clone())
                .bind(t.role.clone())
                .bind(t.tenant.clone())
                .bind(t.label.clone())
                .bind(t.created_us),
            ),
            Write::Node(n) => (
                "writing a node",
                sqlx::query(
                    "INSERT INTO nodes (name, registration, admin_state, unhealthy) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (name) DO UPDATE SET registration = excluded.registration, \
                     admin_state = excluded.admin_state, unhealthy = excluded.unhealthy",
                )
                .bind(n.name.clone())
                .bind(n.registration.clone())
                .bind(n.admin_state.clone())
                .bind(n.unhealthy.clone()),
            ),
            Write::Job(j) => (
                "writing a job",
                sqlx::query(
                    "INSERT INTO jobs (id, tenant, state, record) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant, state = excluded.state, \
                     record = excluded.record",
                )
                .bind(j.id as i64)
                .bind(j.tenant.clone())
                .bind(j.state.clone())
                .bind(j.record.clone()),
            ),
            Write::NodeEvent(e) => (
                "writing a node event",
                sqlx::query(
                    "INSERT INTO node_events (node, at_us, action, reason) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (node, at_us) DO NOTHING",
                )
                .bind(e.node.clone())
                .bind(e.at_us)
                .bind(e.action.clone())
                .bind(e.reason.clone()),
            ),
            Write::Lease(l) => (
                "writing a lease",
                sqlx::query(
                    "INSERT INTO leases (id, tenant, model, devices, start_us, end_us, within, domain, \
                     created_us, removed_us, class) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (id) DO UPDATE SET removed_us = excluded.removed_us",
                )
                .bind(l.id as i64)
                .bind(l.tenant.clone())
                .bind(l.model.clone())
                .bind(i64::from(l.devices))
                .bind(l.start_us)
                .bind(l.end_us)
                .bind(l.within.clone())
                .bind(l.domain.clone())
                .bind(l.created_us)
                .bind(l.removed_us)
                .bind(l.class.clone()),
            ),
            Write::Price(p) => (
                "writing prices",
                sqlx::query(
                    "INSERT INTO prices (model, leased, on_demand, preemptible) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (model) DO UPDATE SET leased = excluded.leased, \
                     on_demand = excluded.on_demand, preemptible = excluded.preemptible",
                )
                .bind(p.model.clone())
                .bind(p.prices.leased)
                .bind(p.prices.on_demand)
                .bind(p.prices.preemptible),
            ),
            Write::Usage(u) => (
                "writing a usage record",
                sqlx::query(
                    "INSERT INTO usage_records (job_id, attempt, tenant, model, kind, device_milli, rate, \
                     start_us, end_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (job_id, attempt) DO NOTHING",
                )
                .bind(u.job as i64)
                .bind(i64::from(u.attempt))
                .bind(u.tenant.clone())
                .bind(u.model.clone())
                .bind(u.kind.clone())
                .bind(u.device_milli as i64)
                .bind(u.rate)
                .bind(u.start_us)
                .bind(u.end_us),
            ),
            Write::Event(e) => (
                "writing a job event",
                sqlx::query(
                    "INSERT INTO job_events (job_id, seq, at_us, state, reason) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (job_id, seq) DO NOTHING",
                )
                .bind(e.job as i64)
                .bind(i64::from(e.seq))
                .bind(e.at_us)
                .bind(e.state.clone())
                .bind(e.reason.clone()),
            ),
        };
        query
            .execute(&mut *tx)
            .await
            .map_err(db_error(backend, action))?;
    }
    tx.commit().await.map_err(db_error(backend, "committing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_or_say_what_is_expected() {
        let dir = Path::new("/var/lib/wanka");
        assert_eq!(
            Location::parse(None, dir).unwrap(),
            Location::Sqlite(dir.join("wanka.db"))
        );
        assert_eq!(
            Location::parse(Some("sqlite:/tmp/x.db"), dir).unwrap(),
            Location::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            Location::parse(Some("postgres://u:p@h/db"), dir)
                .unwrap()
                .backend(),
            "postgres"
        );
        let err = Location::parse(Some("mysql://h/db"), dir)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mysql://h/db") && err.contains("postgres://"),
            "{err}"
        );
    }

    #[test]
    fn passwords_are_hidden_in_messages() {
        assert_eq!(
            redact("postgres://wanka:secret@db/wanka"),
            "postgres://wanka:***@db/wanka"
        );
        assert_eq!(redact("postgres://db/wanka"), "postgres://db/wanka");
    }

    #[test]
    fn migration_statements_split_at_line_ends() {
        let s = statements("-- comment\nCREATE TABLE a (x INT);\nCREATE INDEX i\n ON a (x);\n");
        assert_eq!(
            s,
            vec!["CREATE TABLE a (x INT)", "CREATE INDEX i\n ON a (x)"]
        );
        assert_eq!(statements(MIGRATIONS[0].2).len(), 6);
    }

    #[tokio::test]
    async fn writes_survive_reopening_and_batches_keep_their_order() {
        let dir = std::env::temp_dir().join(format!("wanka-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let loc = Location::parse(None, &dir).unwrap();
        {
            let (store, loaded) = Store::open(&loc).await.unwrap();
            assert!(loaded.jobs.is_empty());
            let job = |state: &str| {
                Write::Job(JobRow {
                    id: 7,
                    tenant: "t".into(),
                    state: state.into(),
                    record: "{}".into(),
                })
            };
            let first = store.enqueue(vec![job("pending")]);
            let second = store.enqueue(vec![
                job("running"),
                Write::Event(EventRow {
                    job: 7,
                    seq: 1,
                    at_us: 5,
                    state: "running".into(),
                    reason: "started".into(),
                }),
            ]);
            first.wait().await.unwrap();
            second.wait().await.unwrap();
            assert_eq!(store.events(7).await.unwrap().len(), 1);
        }
        let (_store, loaded) = Store::open(&loc).await.unwrap();
        assert_eq!(loaded.jobs.len(), 1);
        assert_eq!(loaded.jobs[0].state, "running");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
