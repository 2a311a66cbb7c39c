//! wanka's control plane: the authoritative state in memory, every change persisted (SQLite or PostgreSQL)
//! before it is acknowledged, the HTTP/JSON API for tenants, operators and node agents, and the scheduling loop
//! that drives the same scheduler core as the simulator.

pub mod accounting;
pub mod api;
pub mod auth;
pub mod client;
pub mod lifecycle;
pub mod logs;
pub mod metrics;
pub mod nodes;
pub mod progress;
pub mod recovery;
pub mod spec;
pub mod state;
pub mod store;

use crate::state::{Core, DEFAULT_TENANT, Refused, Settings};
use crate::store::{Location, Store, StoreError};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::Notify;
use wanka_api::Role;
use wanka_model::{Catalog, Performance};
use wanka_sched::{Config as SchedConfig, Scheduler};

/// How to run the server.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the SQLite file, the first admin token and job output live.
    pub data_dir: PathBuf,
    /// `--database`: empty for SQLite in the data directory, or a `postgres://` URL.
    pub database: Option<String>,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The scheduling policy.
    pub policy: SchedConfig,
    /// The accelerator catalog.
    pub catalog: Catalog,
    /// The normalizer.
    pub performance: Performance,
    /// Behaviour knobs.
    pub settings: Settings,
    /// Scheduling cycle period when nothing changes.
    pub tick: Duration,
}

/// Why the server cannot start or had to stop.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The scheduler rejected its configuration.
    #[error("scheduler: {0}")]
    Scheduler(#[from] wanka_sched::CoreError),
    /// A file or socket could not be used.
    #[error("{what}: {source}")]
    Io {
        /// What the server was doing.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The running server's shared parts.
pub struct App {
    core: Mutex<Core>,
    store: Store,
    kick: Notify,
    metrics: metrics::Metrics,
    logs: logs::Logs,
}

/// Unix microseconds now: the one clock the server reads.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// A change that failed: refused, or not durable.
#[derive(Debug)]
pub enum Failure {
    /// Turned down.
    Refused(Refused),
    /// The store did not take it.
    Store(StoreError),
}

impl From<Refused> for Failure {
    fn from(r: Refused) -> Failure {
        Failure::Refused(r)
    }
}

impl App {
    /// The state, locked. Never held across an await.
    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a change under the lock, queues its rows in the same critical section (so that commit order is
    /// memory order), waits until they are durable, then hands out its assignments and wakes the scheduler.
    pub async fn change<T>(
        &self,
        f: impl FnOnce(&mut Core, i64) -> Result<T, Refused>,
    ) -> Result<T, Failure> {
        let (out, ack, dispatch, kick) = {
            let mut core = self.core();
            let out = f(&mut core, now_us());
            let fx = core.take_effects();
            (out, self.store.enqueue(fx.writes), fx.dispatch, fx.kick)
        };
        ack.wait().await.map_err(Failure::Store)?;
        if !dispatch.is_empty() {
            self.core().deliver(dispatch);
        }
        if kick {
            self.kick.notify_one();
        }
        Ok(out?)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The metrics.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// Job output.
    pub fn logs(&self) -> &logs::Logs {
        &self.logs
    }
}

/// A started server.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The admin token created by this start (first start only), and the file it was written to.
    pub first_admin: Option<(String, PathBuf)>,
    /// The shared state (for in-process tools and tests).
    pub app: Arc<App>,
    /// Ends when the server stops: an error if the store failed.
    pub done: tokio::task::JoinHandle<Result<(), ServerError>>,
}

/// Opens the store, rebuilds the state, creates the first admin token if there is none, binds and starts
/// serving and scheduling.
pub async fn start(config: Config) -> Result<Running, ServerError> {
    let location = Location::parse(config.database.as_deref(), &config.data_dir)?;
    let (store, loaded) = Store::open(&location).await?;
    let sched = Scheduler::new(config.policy, config.catalog, config.performance)?;
    let epoch = now_us() as u64;
    let mut settings = config.settings;
    if settings.checkpoint_root.is_none() {
        let root = config.data_dir.join("checkpoints");
        settings.checkpoint_root =
            Some(
                std::path::absolute(&root).map_err(|source| ServerError::Io {
                    what: format!("resolving {}", root.display()),
                    source,
                })?,
            );
    }
    let mut core = Core::new(sched, settings, epoch);
    core.restore(loaded, now_us())?;
    let first_admin = if core.has_admin() {
        None
    } else {
        let token = auth::mint().map_err(|source| ServerError::Io {
            what: "reading /dev/urandom for the admin token".into(),
            source,
        })?;
        if core.tenants.is_empty() {
            core.put_tenant(DEFAULT_TENANT, None, None)
                .expect("the default tenant is valid");
        }
        core.add_token(
            &token,
            Role::Admin,
            None,
            Some("first start".into()),
            now_us(),
        )
        .expect("an admin token is valid");
        let path = config.data_dir.join("admin.token");
        write_secret(&path, &token).map_err(|source| ServerError::Io {
            what: format!("writing the admin token to {}", path.display()),
            source,
        })?;
        Some((token, path))
    };
    let fx = core.take_effects();
    store.enqueue(fx.writes).wait().await?;
    core.deliver(fx.dispatch);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Io {
            what: format!("listening on {}", config.listen),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Io {
        what: "reading the bound address".into(),
        source,
    })?;
    let app = Arc::new(App {
        core: Mutex::new(core),
        store,
        kick: Notify::new(),
        metrics: metrics::Metrics::default(),
        logs: logs::Logs::new(config.data_dir.join("logs")),
    });
    app.kick.notify_one();
    let router = api::router(app.clone());
    let scheduling = tokio::spawn(scheduling_loop(app.clone(), config.tick));
    let failed = app.store.clone();
    let done = tokio::spawn(async move {
        let serve = axum::serve(listener, router);
        let result = tokio::select! {
            r = serve => r.map_err(|source| ServerError::Io { what: "serving HTTP".into(), source }),
            e = failed.failure() => Err(ServerError::Store(e)),
        };
        scheduling.abort();
        result
    });
    Ok(Running {
        addr,
        first_admin,
        app,
        done,
    })
}

fn write_secret(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{secret}")?;
    f.sync_all()
}

/// Runs the scheduler whenever something changed, and on every tick; the tick also declares silent nodes lost
/// and stops runs past their time limit (clock-driven checks that changes need not repeat). The tick is an
/// interval, not a sleep renewed per wake-up, so that a steady stream of changes cannot postpone it.
async fn scheduling_loop(app: Arc<App>, tick: Duration) {
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let on_tick = tokio::select! {
            _ = app.kick.notified() => false,
            _ = ticks.tick() => true,
        };
        let metrics = &app.metrics;
        let result = app
            .change(|core, now| {
                if on_tick {
                    core.check_lost(now);
                    core.enforce_time_limits(now);
                    core.check_migrations(now);
                    core.release_held(now);
                    core.keep_spares(now);
                    core.refresh_progress(now);
                }
                let t = Instant::now();
                let stats = core.schedule(now);
                metrics.record_cycle(t.elapsed());
                metrics.started.inc_by(u64::from(stats.started));
                Ok(())
            })
            .await;
        if result.is_err() {
            // The store failed; the server is stopping (see `start`).
            return;
        }
    }
}
