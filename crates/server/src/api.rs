//! The HTTP/JSON API, version 1: routes, authentication, and errors as JSON that say what was wrong.

use crate::auth::Caller;
use crate::lifecycle::JobFilter;
use crate::metrics::ApiLabels;
use crate::state::Refused;
use crate::{App, Failure};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wanka_api::lease::{Invoice, LeaseRequest, LeaseView, PriceTable, Prices, UsageReport};
use wanka_api::{
    ApiError, Assignments, CancelJob, CreateToken, Heartbeat, InjectFault, JobEvent, JobState,
    LogAck, LogChunk, LogInfo, LogStream, LogText, NodeEvent, NodeState, ProgressReport, PutTenant,
    RegisterNode, Role, SubmitJob, Submitted, TaskReport, Token,
};

/// The OpenAPI document the server serves at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Longest an agent's assignment poll waits.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// An error answer.
#[derive(Debug)]
pub struct Error(StatusCode, String);

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        (self.0, Json(ApiError { error: self.1 })).into_response()
    }
}

impl From<Refused> for Error {
    fn from(r: Refused) -> Error {
        match r {
            Refused::Invalid(m) => Error(StatusCode::BAD_REQUEST, m),
            Refused::Forbidden(m) => Error(StatusCode::FORBIDDEN, m),
            Refused::NotFound(m) => Error(StatusCode::NOT_FOUND, m),
            Refused::Conflict(m) => Error(StatusCode::CONFLICT, m),
        }
    }
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        match f {
            Failure::Refused(r) => r.into(),
            Failure::Store(e) => Error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not stored, so not accepted: {e}"),
            ),
        }
    }
}

impl From<JsonRejection> for Error {
    fn from(r: JsonRejection) -> Error {
        Error(
            StatusCode::BAD_REQUEST,
            format!("request body: {}", r.body_text()),
        )
    }
}

impl From<QueryRejection> for Error {
    fn from(r: QueryRejection) -> Error {
        Error(
            StatusCode::BAD_REQUEST,
            format!("query string: {}", r.body_text()),
        )
    }
}

type Result<T> = std::result::Result<T, Error>;

/// The caller, from the `Authorization: Bearer` header.
pub struct Auth(pub Caller);

impl FromRequestParts<Arc<App>> for Auth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Auth> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error(
                    StatusCode::UNAUTHORIZED,
                    "missing token: send `Authorization: Bearer <token>`".into(),
                )
            })?;
        let token = header.strip_prefix("Bearer ").ok_or_else(|| {
            Error(
                StatusCode::UNAUTHORIZED,
                "the Authorization header must be `Bearer <token>`".into(),
            )
        })?;
        let hash = crate::auth::hash(token.trim());
        app.core()
            .caller(&hash)
            .map(Auth)
            .ok_or_else(|| Error(StatusCode::UNAUTHORIZED, "unknown token".into()))
    }
}

impl Auth {
    fn require(&self, roles: &[Role], what: &str) -> Result<()> {
        if roles.contains(&self.0.role) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| crate::auth::role_name(*r)).collect();
            Err(Error(
                StatusCode::FORBIDDEN,
                format!(
                    "{what} needs a token of role {}; this one is {}",
                    names.join(" or "),
                    crate::auth::role_name(self.0.role)
                ),
            ))
        }
    }
}

/// Every route.
pub fn router(app: Arc<App>) -> Router {
    let v1 = |path: &str| format!("{}{path}", wanka_api::PREFIX);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(&v1("/openapi.json"), get(openapi))
        .route(&v1("/jobs"), post(submit).get(list_jobs))
        .route(&v1("/jobs/batch"), post(submit_batch))
        .route(&v1("/jobs/{id}"), get(get_job))
        .route(&v1("/jobs/{id}/cancel"), post(cancel_job))
        .route(&v1("/jobs/{id}/events"), get(job_events))
        .route(&v1("/jobs/{id}/explain"), get(explain_job))
        .route(&v1("/jobs/{id}/logs"), get(list_logs))
        .route(
            &v1("/jobs/{id}/logs/{attempt}/{rank}/{task}/{stream}"),
            get(read_log),
        )
        .route(&v1("/nodes"), get(list_nodes))
        .route(&v1("/nodes/{name}"), get(get_node))
        .route(&v1("/nodes/{name}/faults"), post(inject_fault))
        .route(&v1("/nodes/{name}/events"), get(node_events))
        .route(&v1("/nodes/{name}/{action}"), post(node_action))
        .route(&v1("/tenants"), get(list_tenants))
        .route(&v1("/tenants/{name}"), axum::routing::put(put_tenant))
        .route(&v1("/tokens"), post(create_token))
        .route(&v1("/leases"), post(create_lease).get(list_leases))
        .route(&v1("/leases/{id}"), axum::routing::delete(remove_lease))
        .route(&v1("/prices"), get(list_prices))
        .route(&v1("/prices/{model}"), axum::routing::put(put_prices))
        .route(&v1("/usage"), get(usage))
        .route(&v1("/invoice"), get(invoice))
        .route(&v1("/agent/register"), post(register))
        .route(&v1("/agent/heartbeat"), post(heartbeat))
        .route(&v1("/agent/assignments"), get(assignments))
        .route(&v1("/agent/report"), post(report))
        .route(&v1("/agent/logs"), post(ship_log))
        .route(&v1("/agent/progress"), post(progress))
        .fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(app.clone(), timed))
        .with_state(app)
}

async fn timed(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let t = Instant::now();
    let resp = next.run(req).await;
    app.metrics()
        .api
        .get_or_create(&ApiLabels {
            method,
            route,
            status: resp.status().as_u16(),
        })
        .observe(t.elapsed().as_secs_f64());
    resp
}

async fn no_route(req: Request) -> Error {
    Error(
        StatusCode::NOT_FOUND,
        format!(
            "no route {} {}; the API is described at {}/openapi.json",
            req.method(),
            req.uri().path(),
            wanka_api::PREFIX
        ),
    )
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    match app.store().failed() {
        Some(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store failed: {e}\n"),
        )
            .into_response(),
        None => "ok\n".into_response(),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let text = app.metrics().render(&app.core());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

const SUBMITTERS: &[Role] = &[Role::Admin, Role::Tenant];

async fn submit_jobs(app: &App, auth: &Auth, subs: Vec<SubmitJob>) -> Result<Vec<Submitted>> {
    auth.require(SUBMITTERS, "submitting jobs")?;
    let caller = auth.0.clone();
    let records = app
        .change(|core, now| core.prepare_submit(&caller, subs, now))
        .await?;
    let ids = records.iter().map(|r| Submitted { id: r.id }).collect();
    // Durable now: admit into memory and the queue (a crash before this line loses nothing; the restart
    // reads the rows back).
    app.change(|core, now| {
        core.admit(records, now);
        Ok(())
    })
    .await?;
    Ok(ids)
}

async fn submit(
    State(app): State<Arc<App>>,
    auth: Auth,
    body: std::result::Result<Json<SubmitJob>, JsonRejection>,
) -> Result<(StatusCode, Json<Submitted>)> {
    let Json(sub) = body?;
    let mut ids = submit_jobs(&app, &auth, vec![sub]).await?;
    Ok((StatusCode::CREATED, Json(ids.remove(0))))
}

async fn submit_batch(
    State(app): State<Arc<App>>,
    auth: Auth,
    body: std::result::Result<Json<Vec<SubmitJob>>, JsonRejection>,
) -> Result<(StatusCode, Json<Vec<Submitted>>)> {
    let Json(subs) = body?;
    if subs.is_empty() {
        return Err(Error(StatusCode::BAD_REQUEST, "an empty batch".into()));
    }
    let ids = submit_jobs(&app, &auth, subs).await?;
    Ok((StatusCode::CREATED, Json(ids)))
}

/// Filters of a job listing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Comma-separated states.
    pub state: Option<String>,
    /// A tenant.
    pub tenant: Option<String>,
    /// A job name.
    pub name: Option<String>,
    /// At most this many (newest first).
    pub limit: Option<usize>,
}

async fn list_jobs(
    State(app): State<Arc<App>>,
    auth: Auth,
    query: std::result::Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<wanka_api::JobView>>> {
    auth.require(SUBMITTERS, "listing jobs")?;
    let Query(q) = query?;
    let states = match q.state.as_deref() {
        None | Some("") => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|s| {
                JobState::parse(s.trim()).ok_or_else(|| {
                    let known: Vec<&str> = JobState::ALL.iter().map(|s| s.name()).collect();
                    Error(
                        StatusCode::BAD_REQUEST,
                        format!("state '{s}' is not one of {}", known.join(", ")),
                    )
                })
            })
            .collect::<Result<_>>()?,
    };
    let filter = JobFilter {
        states,
        tenant: q.tenant,
        name: q.name,
        limit: q.limit,
    };
    Ok(Json(app.core().list_jobs(&auth.0, &filter)))
}

async fn get_job(
    State(app): State<Arc<App>>,
    auth: Auth,
    Path(id): Path<u64>,
) -> Result<Json<wanka_api::JobView>> {
    auth.require(SUBMITTERS, "reading jobs")?;
    Ok(Json(app.core().visible_job(&auth.0, id)?.view()))
}

async fn cancel_job(
    State(app): State<Arc<App>>,
    auth: Auth,
    Path(id): Path<u64>,
    body: Option<Json<CancelJob>>,
) -> Result<Json<wanka_api::JobView>> {
    auth.require(SUBMITTERS, "cancelling jobs")?;
    let reason = body.and_then(|Json(b)| b.reason);
    let caller = auth.0.clone();
    Ok(Json(
        app.change(|core, now| core.cancel(&caller, id, reason, now))
            .await?,
    ))
}

async fn job_events(
    State(app): State<Arc<App>>,
    auth: Auth,
    Path(id): Path<u64>,
) -> Result<Json<Vec<JobEvent>>> {
    auth.require(SUBMITTERS, "reading jobs")?;
    app.core().visible_job(&auth.0, id)?;
    let rows = app.store().events(id).await.map_err(Failure::Store)?;
    Ok(Json(
        rows.into_iter()
            .map(|e| JobEvent {
                seq: e.seq,
                at: crate::state::secs(e.at_us),
                state: JobState::parse(&e.state).unwrap_or(JobState::Failed),
                reason: e.reason,
            })
            .collect(),
    ))
}

async fn explain_job(
    State(app): State<Arc<App>>,
    auth: Auth,
    Path(id): Path<u64>,
) -> Result<Json<wanka_sched::Explanation>> {
    auth.require(SUBMITTERS, "reading jobs")?;
    let core = app.core();
    core.visible_job(&auth.0, id)?;
    core.sched
        .explain(wanka_model::JobId(id))
        .map(Json)
        .ok_or_else(|| Error(StatusCode::CONFLICT, format!("job {id} is not pending")))
}

async fn list_nodes(
    State(app): State<Arc<App>>,
    auth: Auth,
) -> Result<Json<Vec<wanka_api::NodeView>>> {
    auth.require(SUBMITTERS, "listing nodes")?;
    Ok(Json(app.core().node_views()))
}

async fn get_node(
    State(app): State<Arc<App>>,
    auth: Auth,
    Path(name): Path<String>,
) -> Result<Json<wanka_api::NodeView>> {
    auth.require(SUBMITTERS, "reading nodes")?;
    let core = app.core();
    if !core.nodes.contains_key(&name) {
        return Err(Refused::NotFound(format!("node '{name}' is not registered")).into());
    }
    Ok(Json(core.node_view(&name, &core.allocated_devices())))
}

async fn node_action(
    State(app): State<Arc<App>>,
    auth: Auth,
    Path((name, action)): Path<(String, String)>,
) -> Result<Json<wanka_api::NodeView>> {
    auth.require(&[Role::Admin], "changing a node")?;
    let state = match action.as_str() {
        "cordon" => NodeState::Cordoned,
        "drain" => NodeState::Draining,
        "spare" => NodeState::Spare,
        "resume" => NodeState::Ready,
        other => {
            return Err(Error(
                StatusCode::NOT_FOUND,
                format!("no node action '{other}' (cordon, drain, resume or spare)"),
            ));
        }
    };
    Ok(Json(
        app.change(|core, now| core.operator_state(&name, state, now))
            .await?,
    ))
}

async fn node_events(
    State(app): State<Arc<App>>,
    auth: Auth,
    Path(name): Path<String>,
) -> Result<Json<Vec<NodeEvent>>> {
    auth.require(SUBMITTERS, "reading nodes")?;
    if !app.core().nodes.contains_key(&name) {
        return Err(Error(
            StatusCode::NOT_FOUND,
            format!("node '{name}' is not registered"),
        ));
    }
    let rows = app
        .store()
        .node_events(&name)
        .await
        .map_err(Failure::Store)?;
    Ok(Json(
        rows.into_iter()
            .map(|e| NodeEvent {
                at: crate::state::secs(e.at_us),
                action: e.action,
                reason: e.reason,
            })
            .collect(),
    ))
}

async fn progress(
    State(app): State<Arc<App>>,
    auth: Auth,
    body: std::result::Result<Json<ProgressReport>, JsonRejection>,
) -> Result<StatusCode> {
    auth.require(AGENTS, "the agent protocol")?;
    let Json(rep) = body?;
    app.change(|core, now| core.progress(&rep, now)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn inject_fault(
    State(app): State<Arc<App>>,
    auth: Auth,
    Path(name): Path<String>,
    body: std::result::Result<Json<InjectFault>, JsonRejection>,
) -> Result<StatusCode> {
    auth.require(&[Role::Admin], "injecting faults")?;
    let Json(fault) = body?;
    app.change(|core, _| core.inject_fault(&name, fault))
        .await?;
    Ok(StatusCode::ACCEPTED)
}

async fn list_tenants(
    State(app): State<Arc<App>>,
    auth: Auth,
) -> Result<Json<Vec<wanka_api::TenantView>>> {
    auth.require(SUBMITTERS, "listing tenants")?;
    let mut views = app.core().tenant_views();
    if auth.0.role == Role::Tenant {
        views.retain(|t| Some(&t.name) == auth.0.tenant.as_ref());
    }
    Ok(Json(views))
}

async fn put_tenant(
    State(app): State<Arc<App>>,
    auth: Auth,
    Path(name): Path<String>,
    body: std::result::Result<Json<PutTenant>, JsonRejection>,
) -> Result<Json<wanka_api::TenantView>> {
    auth.require(&[Role::Admin], "changing tenants")?;
    let Json(put) = body?;
    app.change(|core, _| core.put_tenant(&name, put.weight, put.quota_devices))
        .await?;
    let views = app.core().tenant_views();
    Ok(Json(
        views
            .into_iter()
            .find(|t| t.name == name)
            .expect("just stored"),
    ))
}

async fn create_lease(
    State(app): State<Arc<App>>,
    auth: Auth,
    body: std::result::Result<Json<LeaseRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<LeaseView>)> {
    auth.require(&[Role::Admin], "creating leases")?;
    let Json(req) = body?;
    let view = app.change(|core, now| core.put_lease(&req, now)).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn list_leases(State(app): State<Arc<App>>, auth: Auth) -> Result<Json<Vec<LeaseView>>> {
    auth.require(SUBMITTERS, "listing leases")?;
    Ok(Json(app.core().lease_views(&auth.0, crate::now_us())))
}

async fn remove_lease(
    State(app): State<Arc<App>>,
    auth: Auth,
    Path(id): Path<u64>,
) -> Result<Json<LeaseView>> {
    auth.require(&[Role::Admin], "withdrawing leases")?;
    Ok(Json(
        app.change(|core, now| core.remove_lease(id, now)).await?,
    ))
}

async fn list_prices(State(app): State<Arc<App>>, auth: Auth) -> Result<Json<PriceTable>> {
    auth.require(SUBMITTERS, "reading prices")?;
    Ok(Json(app.core().prices.clone()))
}

async fn put_prices(
    State(app): State<Arc<App>>,
    auth: Auth,
    Path(model): Path<String>,
    body: std::result::Result<Json<Prices>, JsonRejection>,
) -> Result<Json<PriceTable>> {
    auth.require(&[Role::Admin], "setting prices")?;
    let Json(prices) = body?;
    app.change(|core, _| core.set_prices(&model, prices))
        .await?;
    Ok(Json(app.core().prices.clone()))
}

/// The window and tenant of a usage report or invoice.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// One tenant (required for a tenant token and for an invoice).
    pub tenant: Option<String>,
    /// Window start, Unix seconds (default 0).
    pub from: Option<f64>,
    /// Window end, Unix seconds (default now).
    pub to: Option<f64>,
}

async fn usage_report(
    app: &App,
    caller: &Caller,
    query: std::result::Result<Query<UsageQuery>, QueryRejection>,
) -> Result<UsageReport> {
    let Query(q) = query?;
    let tenant = q.tenant.as_deref();
    crate::state::Core::may_read_usage(caller, tenant)?;
    let now = crate::now_us();
    let from = crate::accounting::micros(q.from.unwrap_or(0.0));
    let to = q.to.map_or(now, crate::accounting::micros);
    if from >= to {
        return Err(Error(
            StatusCode::BAD_REQUEST,
            format!("from ({from} µs) must come before to ({to} µs)"),
        ));
    }
    let open = app.core().open_usage(tenant, now);
    let mut finished = app
        .store()
        .usage(tenant, from, to)
        .await
        .map_err(Failure::Store)?;
    // A segment that closed after the open ones were read is in both: the stored one counts.
    let stored: std::collections::BTreeSet<(u64, u32)> =
        finished.iter().map(|r| (r.job, r.attempt)).collect();
    let open: Vec<_> = open
        .into_iter()
        .filter(|r| !stored.contains(&(r.job, r.attempt)))
        .collect();
    finished.sort_by_key(|r| (r.start_us, r.job));
    Ok(crate::accounting::report(tenant, from, to, finished, open))
}

async fn usage(
    State(app): State<Arc<App>>,
    auth: Auth,
    query: std::result::Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Json<UsageReport>> {
    auth.require(SUBMITTERS, "reading usage")?;
    Ok(Json(usage_report(&app, &auth.0, query).await?))
}

async fn invoice(
    State(app): State<Arc<App>>,
    auth: Auth,
    query: std::result::Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Json<Invoice>> {
    auth.require(SUBMITTERS, "reading invoices")?;
    let report = usage_report(&app, &auth.0, query).await?;
    let Some(tenant) = report.tenant.clone() else {
        return Err(Error(
            StatusCode::BAD_REQUEST,
            "an invoice is for one tenant: give tenant=NAME".into(),
        ));
    };
    let core = app.core();
    if !core.tenants.contains_key(&tenant) {
        return Err(Refused::NotFound(format!("tenant '{tenant}' does not exist")).into());
    }
    let leases = core.leases_of(&tenant);
    Ok(Json(crate::accounting::invoice(
        &tenant,
        &leases,
        &report,
        &core.prices,
    )))
}

async fn create_token(
    State(app): State<Arc<App>>,
    auth: Auth,
    body: std::result::Result<Json<CreateToken>, JsonRejection>,
) -> Result<(StatusCode, Json<Token>)> {
    auth.require(&[Role::Admin], "creating tokens")?;
    let Json(req) = body?;
    let token = crate::auth::mint().map_err(|e| {
        Error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading /dev/urandom: {e}"),
        )
    })?;
    let t = token.clone();
    app.change(move |core, now| core.add_token(&t, req.role, req.tenant, req.label, now))
        .await?;
    Ok((StatusCode::CREATED, Json(Token { token })))
}

const AGENTS: &[Role] = &[Role::Agent, Role::Admin];

async fn register(
    State(app): State<Arc<App>>,
    auth: Auth,
    body: std::result::Result<Json<RegisterNode>, JsonRejection>,
) -> Result<Json<wanka_api::Registered>> {
    auth.require(AGENTS, "the agent protocol")?;
    let Json(reg) = body?;
    Ok(Json(app.change(|core, now| core.register(reg, now)).await?))
}

async fn heartbeat(
    State(app): State<Arc<App>>,
    auth: Auth,
    body: std::result::Result<Json<Heartbeat>, JsonRejection>,
) -> Result<StatusCode> {
    auth.require(AGENTS, "the agent protocol")?;
    let Json(hb) = body?;
    app.change(|core, now| core.heartbeat(hb, now)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An agent's poll for work.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollQuery {
    /// The node.
    pub node: String,
    /// The server epoch the agent's `after` belongs to.
    pub epoch: Option<u64>,
    /// The last assignment the agent carried out.
    #[serde(default)]
    pub after: u64,
    /// Seconds to wait for work when there is none (long poll).
    #[serde(default)]
    pub wait_s: u64,
}

async fn assignments(
    State(app): State<Arc<App>>,
    auth: Auth,
    query: std::result::Result<Query<PollQuery>, QueryRejection>,
) -> Result<Json<Assignments>> {
    auth.require(AGENTS, "the agent protocol")?;
    let Query(q) = query?;
    let deadline = Instant::now() + Duration::from_secs(q.wait_s).min(MAX_WAIT);
    loop {
        let notify = {
            let mut core = app.core();
            let epoch = core.epoch;
            let (items, notify) = core.assignments(&q.node, q.epoch, q.after)?;
            if !items.is_empty() || Instant::now() >= deadline {
                return Ok(Json(Assignments {
                    epoch,
                    assignments: items,
                }));
            }
            notify
        };
        // Deliveries leave a permit when no poll is waiting, so work queued between the check above and
        // this wait is not missed.
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(left, notify.notified()).await;
    }
}

async fn report(
    State(app): State<Arc<App>>,
    auth: Auth,
    body: std::result::Result<Json<TaskReport>, JsonRejection>,
) -> Result<StatusCode> {
    auth.require(AGENTS, "the agent protocol")?;
    let Json(rep) = body?;
    app.change(|core, now| core.report(&rep, now)).await?;
    Ok(StatusCode::NO_CONTENT)
}

impl From<crate::logs::LogError> for Error {
    fn from(e: crate::logs::LogError) -> Error {
        match e {
            crate::logs::LogError::Invalid(m) => Error(StatusCode::BAD_REQUEST, m),
            e @ crate::logs::LogError::Io { .. } => {
                Error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}

async fn ship_log(
    State(app): State<Arc<App>>,
    auth: Auth,
    body: std::result::Result<Json<LogChunk>, JsonRejection>,
) -> Result<Json<LogAck>> {
    auth.require(AGENTS, "the agent protocol")?;
    let Json(chunk) = body?;
    if !app.core().jobs.contains_key(&chunk.stream.job) {
        return Err(Error(
            StatusCode::NOT_FOUND,
            format!("job {} does not exist", chunk.stream.job),
        ));
    }
    Ok(Json(app.logs().append(&chunk)?))
}

async fn list_logs(
    State(app): State<Arc<App>>,
    auth: Auth,
    Path(id): Path<u64>,
) -> Result<Json<Vec<LogInfo>>> {
    auth.require(SUBMITTERS, "reading job output")?;
    app.core().visible_job(&auth.0, id)?;
    Ok(Json(app.logs().list(id)?))
}

/// Where to read a stream from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Byte offset (from the previous answer's `next`).
    #[serde(default)]
    pub offset: u64,
    /// Seconds to wait for output when there is none yet (follow).
    #[serde(default)]
    pub wait_s: u64,
}

async fn read_log(
    State(app): State<Arc<App>>,
    auth: Auth,
    Path((id, attempt, rank, task, stream)): Path<(u64, u32, u32, u32, String)>,
    query: std::result::Result<Query<LogQuery>, QueryRejection>,
) -> Result<Json<LogText>> {
    auth.require(SUBMITTERS, "reading job output")?;
    let Query(q) = query?;
    app.core().visible_job(&auth.0, id)?;
    let s = LogStream {
        job: id,
        attempt,
        rank,
        task,
        stream,
    };
    let deadline = Instant::now() + Duration::from_secs(q.wait_s).min(MAX_WAIT);
    let mut changed = app.logs().subscribe();
    loop {
        changed.mark_unchanged();
        let text = app.logs().read(&s, q.offset)?;
        let left = deadline.saturating_duration_since(Instant::now());
        if !text.data.is_empty() || text.complete || left.is_zero() {
            return Ok(Json(text));
        }
        if tokio::time::timeout(left, changed.changed()).await.is_err() {
            return Ok(Json(app.logs().read(&s, q.offset)?));
        }
    }
}
