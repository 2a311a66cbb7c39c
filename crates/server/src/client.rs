//! A client of the API, for the CLI, the benchmarks and the tests.

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;
use wanka_api::lease::{Invoice, LeaseRequest, LeaseView, PriceTable, Prices, UsageReport};
use wanka_api::{
    Assignments, CancelJob, CreateToken, Heartbeat, InjectFault, JobEvent, JobView, LogAck,
    LogChunk, LogInfo, LogStream, LogText, NodeEvent, NodeView, ProgressReport, PutTenant,
    RegisterNode, Registered, SubmitJob, Submitted, TaskReport, TenantView, Token,
};

/// A failed call.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error(
        "cannot reach the wanka server at {url}: {message} (is `wanka server` running? set --server or WANKA_SERVER)"
    )]
    Unreachable {
        /// The URL called.
        url: String,
        /// Why.
        message: String,
    },
    /// The server answered with an error.
    #[error("{message} (HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The answer did not decode.
    #[error("unexpected answer from {url}: {message}")]
    Decode {
        /// The URL called.
        url: String,
        /// What did not decode.
        message: String,
    },
}

impl ClientError {
    /// The HTTP status, for an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A connection to one server with one token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

type Result<T> = std::result::Result<T, ClientError>;

impl Client {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:7070`).
    pub fn new(base: &str, token: Option<String>) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_string(),
            token,
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Calls `method path` with an optional JSON body and decodes the JSON answer (`()` for no content).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            message: error_chain(&e),
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            message: error_chain(&e),
        })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<wanka_api::ApiError>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_string());
            return Err(ClientError::Api {
                status: status.as_u16(),
                message,
            });
        }
        let bytes: &[u8] = if status == StatusCode::NO_CONTENT || bytes.is_empty() {
            b"null"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes).map_err(|e| ClientError::Decode {
            url,
            message: e.to_string(),
        })
    }

    fn v1(path: &str) -> String {
        format!("{}{path}", wanka_api::PREFIX)
    }

    /// Submits a job.
    pub async fn submit(&self, job: &SubmitJob) -> Result<Submitted> {
        self.call(Method::POST, &Self::v1("/jobs"), Some(job)).await
    }

    /// Submits several jobs at once (all or none).
    pub async fn submit_batch(&self, jobs: &[SubmitJob]) -> Result<Vec<Submitted>> {
        self.call(Method::POST, &Self::v1("/jobs/batch"), Some(jobs))
            .await
    }

    /// Lists jobs; `query` is the query string without `?` (e.g. `state=pending,running`).
    pub async fn jobs(&self, query: &str) -> Result<Vec<JobView>> {
        let path = if query.is_empty() {
            Self::v1("/jobs")
        } else {
            Self::v1(&format!("/jobs?{query}"))
        };
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// One job.
    pub async fn job(&self, id: u64) -> Result<JobView> {
        self.call(Method::GET, &Self::v1(&format!("/jobs/{id}")), None::<&()>)
            .await
    }

    /// A job's events.
    pub async fn events(&self, id: u64) -> Result<Vec<JobEvent>> {
        self.call(
            Method::GET,
            &Self::v1(&format!("/jobs/{id}/events")),
            None::<&()>,
        )
        .await
    }

    /// Why a pending job waits, node by node.
    pub async fn explain(&self, id: u64) -> Result<serde_json::Value> {
        self.call(
            Method::GET,
            &Self::v1(&format!("/jobs/{id}/explain")),
            None::<&()>,
        )
        .await
    }

    /// Cancels a job.
    pub async fn cancel(&self, id: u64, reason: Option<String>) -> Result<JobView> {
        self.call(
            Method::POST,
            &Self::v1(&format!("/jobs/{id}/cancel")),
            Some(&CancelJob { reason }),
        )
        .await
    }

    /// Every node.
    pub async fn nodes(&self) -> Result<Vec<NodeView>> {
        self.call(Method::GET, &Self::v1("/nodes"), None::<&()>)
            .await
    }

    /// Cordons, drains or resumes a node.
    pub async fn node_action(&self, node: &str, action: &str) -> Result<NodeView> {
        self.call(
            Method::POST,
            &Self::v1(&format!("/nodes/{node}/{action}")),
            None::<&()>,
        )
        .await
    }

    /// Every tenant.
    pub async fn tenants(&self) -> Result<Vec<TenantView>> {
        self.call(Method::GET, &Self::v1("/tenants"), None::<&()>)
            .await
    }

    /// Injects a fault into a simulated device of a node.
    pub async fn inject_fault(&self, node: &str, fault: &InjectFault) -> Result<()> {
        self.call(
            Method::POST,
            &Self::v1(&format!("/nodes/{node}/faults")),
            Some(fault),
        )
        .await
    }

    /// Creates or changes a tenant.
    pub async fn put_tenant(&self, name: &str, put: &PutTenant) -> Result<TenantView> {
        self.call(
            Method::PUT,
            &Self::v1(&format!("/tenants/{name}")),
            Some(put),
        )
        .await
    }

    /// Asks for a lease (admin).
    pub async fn create_lease(&self, req: &LeaseRequest) -> Result<LeaseView> {
        self.call(Method::POST, &Self::v1("/leases"), Some(req))
            .await
    }

    /// The leases the token may see.
    pub async fn leases(&self) -> Result<Vec<LeaseView>> {
        self.call(Method::GET, &Self::v1("/leases"), None::<&()>)
            .await
    }

    /// Withdraws a lease (admin).
    pub async fn remove_lease(&self, id: u64) -> Result<LeaseView> {
        self.call(
            Method::DELETE,
            &Self::v1(&format!("/leases/{id}")),
            None::<&()>,
        )
        .await
    }

    /// The price table.
    pub async fn prices(&self) -> Result<PriceTable> {
        self.call(Method::GET, &Self::v1("/prices"), None::<&()>)
            .await
    }

    /// Sets a model's prices (admin).
    pub async fn put_prices(&self, model: &str, prices: &Prices) -> Result<PriceTable> {
        self.call(
            Method::PUT,
            &Self::v1(&format!("/prices/{model}")),
            Some(prices),
        )
        .await
    }

    fn window(tenant: Option<&str>, from: Option<f64>, to: Option<f64>) -> String {
        let mut q = Vec::new();
        if let Some(t) = tenant {
            q.push(format!("tenant={t}"));
        }
        if let Some(f) = from {
            q.push(format!("from={f}"));
        }
        if let Some(t) = to {
            q.push(format!("to={t}"));
        }
        if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        }
    }

    /// Usage of a tenant (or all, for an admin) over a window of Unix seconds.
    pub async fn usage(
        &self,
        tenant: Option<&str>,
        from: Option<f64>,
        to: Option<f64>,
    ) -> Result<UsageReport> {
        let q = Self::window(tenant, from, to);
        self.call(Method::GET, &Self::v1(&format!("/usage{q}")), None::<&()>)
            .await
    }

    /// A tenant's invoice over a window of Unix seconds.
    pub async fn invoice(
        &self,
        tenant: &str,
        from: Option<f64>,
        to: Option<f64>,
    ) -> Result<Invoice> {
        let q = Self::window(Some(tenant), from, to);
        self.call(Method::GET, &Self::v1(&format!("/invoice{q}")), None::<&()>)
            .await
    }

    /// Creates a token.
    pub async fn create_token(&self, req: &CreateToken) -> Result<Token> {
        self.call(Method::POST, &Self::v1("/tokens"), Some(req))
            .await
    }

    /// Registers a node (agent protocol).
    pub async fn register(&self, reg: &RegisterNode) -> Result<Registered> {
        self.call(Method::POST, &Self::v1("/agent/register"), Some(reg))
            .await
    }

    /// Sends a heartbeat (agent protocol).
    pub async fn heartbeat(&self, hb: &Heartbeat) -> Result<()> {
        self.call(Method::POST, &Self::v1("/agent/heartbeat"), Some(hb))
            .await
    }

    /// Fetches assignments after `after`, waiting up to `wait_s` for some (agent protocol).
    pub async fn poll(
        &self,
        node: &str,
        epoch: Option<u64>,
        after: u64,
        wait_s: u64,
    ) -> Result<Assignments> {
        let epoch = epoch.map(|e| format!("&epoch={e}")).unwrap_or_default();
        self.call(
            Method::GET,
            &Self::v1(&format!(
                "/agent/assignments?node={node}&after={after}&wait_s={wait_s}{epoch}"
            )),
            None::<&()>,
        )
        .await
    }

    /// Ships a piece of a task's output (agent protocol).
    pub async fn ship_log(&self, chunk: &LogChunk) -> Result<LogAck> {
        self.call(Method::POST, &Self::v1("/agent/logs"), Some(chunk))
            .await
    }

    /// The output streams the server holds for a job.
    pub async fn logs(&self, job: u64) -> Result<Vec<LogInfo>> {
        self.call(
            Method::GET,
            &Self::v1(&format!("/jobs/{job}/logs")),
            None::<&()>,
        )
        .await
    }

    /// One stream's text from `offset`, waiting up to `wait_s` for some when there is none yet.
    pub async fn read_log(&self, s: &LogStream, offset: u64, wait_s: u64) -> Result<LogText> {
        self.call(
            Method::GET,
            &Self::v1(&format!(
                "/jobs/{}/logs/{}/{}/{}/{}?offset={offset}&wait_s={wait_s}",
                s.job, s.attempt, s.rank, s.task, s.stream
            )),
            None::<&()>,
        )
        .await
    }

    /// Forwards progress lines of a job's process (agent protocol).
    pub async fn progress(&self, rep: &ProgressReport) -> Result<()> {
        self.call(Method::POST, &Self::v1("/agent/progress"), Some(rep))
            .await
    }

    /// What the server did to a node, and why.
    pub async fn node_events(&self, node: &str) -> Result<Vec<NodeEvent>> {
        self.call(
            Method::GET,
            &Self::v1(&format!("/nodes/{node}/events")),
            None::<&()>,
        )
        .await
    }

    /// Reports a replica's state (agent protocol).
    pub async fn report(&self, rep: &TaskReport) -> Result<()> {
        self.call(Method::POST, &Self::v1("/agent/report"), Some(rep))
            .await
    }
}

/// An error with its sources, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
