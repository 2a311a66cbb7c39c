//! The API on loopback, against a real SQLite file and, when `WANKA_TEST_POSTGRES` names a PostgreSQL server
//! (CI starts one), the same suite against PostgreSQL, each test in a database of its own.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use wanka_api::lease::{LeaseRequest, Prices};
use wanka_api::{
    Assignment, CreateToken, DeviceTelemetry, Heartbeat, JobState, NodeState, PutTenant,
    RegisterNode, Role, SubmitJob, TaskReport, TaskState,
};
use wanka_model::{Catalog, Performance, ThroughputMatrix};
use wanka_server::client::Client;
use wanka_server::state::Settings;
use wanka_server::{Config, Running};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Where a test's state lives.
#[derive(Clone)]
struct Backend {
    data_dir: PathBuf,
    database: Option<String>,
}

impl Backend {
    fn sqlite(test: &str) -> Backend {
        let dir = std::env::temp_dir().join(format!(
            "wanka-api-{}-{test}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Backend {
            data_dir: dir,
            database: None,
        }
    }

    /// A fresh database on the PostgreSQL server named by WANKA_TEST_POSTGRES, or None when unset.
    async fn postgres(test: &str) -> Option<Backend> {
        let Ok(url) = std::env::var("WANKA_TEST_POSTGRES") else {
            eprintln!("WANKA_TEST_POSTGRES is not set: skipping the PostgreSQL run of {test}");
            return None;
        };
        let db = format!("wanka_test_{}_{test}", std::process::id());
        let url = wanka_server::store::fresh_postgres_database(&url, &db)
            .await
            .unwrap_or_else(|e| panic!("WANKA_TEST_POSTGRES: {e}"));
        let mut b = Backend::sqlite(test);
        b.database = Some(url);
        Some(b)
    }
}

struct Server {
    running: Running,
    admin: Client,
    backend: Backend,
}

fn config(backend: &Backend) -> Config {
    let catalog = Catalog::builtin();
    let performance = Performance::new(&catalog, ThroughputMatrix::new()).unwrap();
    Config {
        data_dir: backend.data_dir.clone(),
        database: backend.database.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        policy: wanka_sched::Config::wanka(),
        catalog,
        performance,
        settings: Settings {
            node_timeout_us: 1_500_000,
            kill_grace_s: 5,
            replace_stragglers: true,
            ..Settings::default()
        },
        tick: Duration::from_millis(50),
    }
}

impl Server {
    async fn start(backend: Backend) -> Server {
        Server::start_with(backend, |_| {}).await
    }

    /// Starts with settings changed from the tests' defaults.
    async fn start_with(backend: Backend, change: impl FnOnce(&mut Settings)) -> Server {
        let mut config = config(&backend);
        change(&mut config.settings);
        let running = wanka_server::start(config).await.unwrap();
        let token = match &running.first_admin {
            Some((token, path)) => {
                assert_eq!(std::fs::read_to_string(path).unwrap().trim(), token);
                token.clone()
            }
            None => std::fs::read_to_string(backend.data_dir.join("admin.token"))
                .unwrap()
                .trim()
                .to_string(),
        };
        let admin = Client::new(&format!("http://{}", running.addr), Some(token));
        Server {
            running,
            admin,
            backend,
        }
    }

    fn client(&self, token: Option<String>) -> Client {
        Client::new(self.admin.base(), token)
    }

    async fn token(&self, role: Role, tenant: Option<&str>) -> Client {
        let t = self
            .admin
            .create_token(&CreateToken {
                role,
                tenant: tenant.map(str::to_string),
                label: None,
            })
            .await
            .unwrap();
        self.client(Some(t.token))
    }

    /// Stops serving (as a crash would: no shutdown step) and starts again on the same store.
    async fn restart(self) -> Server {
        self.running.done.abort();
        let _ = self.running.done.await;
        drop(self.running.app);
        Server::start(self.backend).await
    }
}

fn h100_node(name: &str) -> RegisterNode {
    RegisterNode {
        name: name.into(),
        model: "H100".into(),
        devices: 8,
        cpu_milli: 128_000,
        memory_mib: 1_048_576,
        leaf: Some("leaf-a".into()),
        spine: None,
        address: Some(format!("{name}.example")),
        domains: Vec::new(),
        tasks: Vec::new(),
    }
}

fn job(replicas: u32, devices: u32) -> SubmitJob {
    SubmitJob {
        replicas,
        devices_per_replica: devices,
        command: vec!["python".into(), "train.py".into()],
        ..SubmitJob::default()
    }
}

/// Waits until the job is in `state` (the scheduler runs asynchronously).
async fn wait_state(c: &Client, id: u64, state: JobState) -> wanka_api::JobView {
    for _ in 0..200 {
        let j = c.job(id).await.unwrap();
        if j.state == state {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "job {id} never reached {state:?}: {:?}",
        c.job(id).await.unwrap()
    );
}

/// Waits until the node has assignments after `after`.
async fn starts(agent: &Client, node: &str, after: u64) -> Vec<wanka_api::Numbered> {
    agent.poll(node, None, after, 5).await.unwrap().assignments
}

async fn lifecycle_and_events(backend: Backend) {
    let s = Server::start(backend).await;
    let agent = s.token(Role::Agent, None).await;
    agent.register(&h100_node("n1")).await.unwrap();
    agent.register(&h100_node("n2")).await.unwrap();
    let id = s.admin.submit(&job(2, 8)).await.unwrap().id;
    let j = wait_state(&s.admin, id, JobState::Starting).await;
    assert_eq!(j.model.as_deref(), Some("H100-SXM5-80GB"));
    let mut ranks = Vec::new();
    for node in ["n1", "n2"] {
        let a = starts(&agent, node, 0).await;
        assert_eq!(a.len(), 1, "{a:?}");
        let Assignment::Start {
            job,
            attempt,
            rank,
            env,
            devices,
            tasks,
            ..
        } = &a[0].assignment
        else {
            panic!("{a:?}")
        };
        assert_eq!((*job, *attempt, devices.len(), *tasks), (id, 1, 8, 1));
        assert_eq!(env["NNODES"], "2");
        // Each process's own rank and the world size are the agent's to add (wanka_api::process_env).
        assert!(!env.contains_key("WORLD_SIZE"));
        assert_eq!(env["MASTER_ADDR"], "n1.example");
        assert_eq!(env["CUDA_VISIBLE_DEVICES"], "0,1,2,3,4,5,6,7");
        ranks.push((node, *rank));
    }
    for (node, rank) in &ranks {
        let r = |state, exit_code| TaskReport {
            node: node.to_string(),
            job: id,
            attempt: 1,
            rank: *rank,
            state,
            exit_code,
        };
        agent.report(&r(TaskState::Running, None)).await.unwrap();
        agent.report(&r(TaskState::Exited, Some(0))).await.unwrap();
    }
    let done = s.admin.job(id).await.unwrap();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.exit_code, Some(0));
    let events = s.admin.events(id).await.unwrap();
    let states: Vec<JobState> = events.iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        [
            JobState::Pending,
            JobState::Starting,
            JobState::Running,
            JobState::Completed
        ]
    );
    assert!(
        events[1].reason.contains("16 device(s) of H100"),
        "{events:?}"
    );

    // A failing rank fails the job and stops the others.
    let id = s.admin.submit(&job(2, 8)).await.unwrap().id;
    wait_state(&s.admin, id, JobState::Starting).await;
    let n1 = starts(&agent, "n1", 1).await;
    let n2 = starts(&agent, "n2", 1).await;
    let rank_of = |a: &[wanka_api::Numbered]| match &a[0].assignment {
        Assignment::Start { rank, .. } => *rank,
        other => panic!("{other:?}"),
    };
    agent
        .report(&TaskReport {
            node: "n1".into(),
            job: id,
            attempt: 1,
            rank: rank_of(&n1),
            state: TaskState::Exited,
            exit_code: Some(3),
        })
        .await
        .unwrap();
    let failed = s.admin.job(id).await.unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert!(failed.reason.unwrap().contains("exited with code 3"));
    let stop = starts(&agent, "n2", n2[0].seq).await;
    assert!(
        matches!(stop[0].assignment, Assignment::Stop { job, .. } if job == id),
        "{stop:?}"
    );
}

async fn auth_roles_and_errors(backend: Backend) {
    let s = Server::start(backend).await;
    let nobody = s.client(None);
    let e = nobody.jobs("").await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert!(e.to_string().contains("Authorization: Bearer"), "{e}");
    let e = s
        .client(Some("wk_forged".into()))
        .jobs("")
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401));

    for t in ["vision", "nlp"] {
        s.admin.put_tenant(t, &PutTenant::default()).await.unwrap();
    }
    let vision = s.token(Role::Tenant, Some("vision")).await;
    let nlp = s.token(Role::Tenant, Some("nlp")).await;
    let agent = s.token(Role::Agent, None).await;
    let id = vision.submit(&job(1, 1)).await.unwrap().id;
    assert_eq!(vision.job(id).await.unwrap().tenant, "vision");
    assert_eq!(nlp.job(id).await.unwrap_err().status(), Some(404));
    assert_eq!(nlp.cancel(id, None).await.unwrap_err().status(), Some(404));
    assert!(nlp.jobs("").await.unwrap().is_empty());
    assert_eq!(s.admin.jobs("").await.unwrap().len(), 1);
    let mut other = job(1, 1);
    other.tenant = Some("nlp".into());
    assert_eq!(vision.submit(&other).await.unwrap_err().status(), Some(403));
    let e = agent.submit(&job(1, 1)).await.unwrap_err();
    assert_eq!(e.status(), Some(403));
    assert!(e.to_string().contains("role admin or tenant"), "{e}");
    let e = vision
        .create_token(&CreateToken {
            role: Role::Admin,
            tenant: None,
            label: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403));
    assert_eq!(
        vision.register(&h100_node("x")).await.unwrap_err().status(),
        Some(403)
    );

    // Bad input says what was wrong.
    let mut bad = job(1, 1);
    bad.models = vec!["H1000".into()];
    let e = s.admin.submit(&bad).await.unwrap_err().to_string();
    assert!(
        e.contains("unknown accelerator model 'H1000'") && e.contains("did you mean"),
        "{e}"
    );
    let raw = s
        .admin
        .call::<serde_json::Value>(
            reqwest::Method::POST,
            "/api/v1/jobs",
            Some(&serde_json::json!({"replicas": "two", "command": ["x"]})),
        )
        .await
        .unwrap_err();
    assert_eq!(raw.status(), Some(400));
    assert!(raw.to_string().contains("replicas"), "{raw}");
    let e = s
        .admin
        .call::<serde_json::Value>(
            reqwest::Method::POST,
            "/api/v1/jobs",
            Some(&serde_json::json!({"replicas": 1, "gpus": 2, "command": ["x"]})),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown field `gpus`"), "{e}");
    let e = s.admin.jobs("state=sleeping").await.unwrap_err();
    assert!(e.to_string().contains("'sleeping' is not one of"), "{e}");
    let e = s
        .admin
        .call::<serde_json::Value>(reqwest::Method::GET, "/api/v1/nope", None::<&()>)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert!(e.to_string().contains("openapi.json"), "{e}");
    let mut none = job(1, 1);
    none.tenant = Some("ghost".into());
    let e = s.admin.submit(&none).await.unwrap_err().to_string();
    assert!(e.contains("tenant 'ghost' does not exist"), "{e}");
    // Nothing was recorded for the refused submissions.
    assert_eq!(s.admin.jobs("").await.unwrap().len(), 1);
}

async fn restart_keeps_state(backend: Backend) {
    let s = Server::start(backend).await;
    let agent = s.token(Role::Agent, None).await;
    agent.register(&h100_node("n1")).await.unwrap();
    let running = s.admin.submit(&job(1, 8)).await.unwrap().id;
    wait_state(&s.admin, running, JobState::Starting).await;
    let waiting = s.admin.submit(&job(1, 8)).await.unwrap().id;
    let cancelled = s.admin.submit(&job(1, 8)).await.unwrap().id;
    s.admin
        .cancel(cancelled, Some("typo".into()))
        .await
        .unwrap();
    let array: Vec<SubmitJob> = (0..50).map(|_| job(1, 1)).collect();
    let ids = s.admin.submit_batch(&array).await.unwrap();
    assert_eq!(ids.len(), 50);

    let s = s.restart().await;
    let agent = s.token(Role::Agent, None).await;
    assert_eq!(
        s.admin.job(running).await.unwrap().state,
        JobState::Starting
    );
    assert_eq!(s.admin.job(waiting).await.unwrap().state, JobState::Pending);
    let c = s.admin.job(cancelled).await.unwrap();
    assert_eq!(c.state, JobState::Cancelled);
    assert!(
        s.admin.events(cancelled).await.unwrap()[1]
            .reason
            .contains("typo")
    );
    assert_eq!(s.admin.jobs("").await.unwrap().len(), 53);
    // The start is handed out again in the new epoch; new ids continue after the old ones.
    agent.register(&h100_node("n1")).await.unwrap();
    let a = starts(&agent, "n1", 0).await;
    assert!(
        matches!(a[0].assignment, Assignment::Start { job, .. } if job == running),
        "{a:?}"
    );
    let next = s.admin.submit(&job(1, 1)).await.unwrap().id;
    assert!(next > ids.last().unwrap().id);
}

async fn lost_nodes_and_preemption(backend: Backend) {
    let s = Server::start(backend).await;
    let agent = s.token(Role::Agent, None).await;
    agent.register(&h100_node("n1")).await.unwrap();
    let mut low = job(1, 8);
    low.class = Some("preemptible".into());
    low.signal = Some("B:USR1@90".into());
    let low = s.admin.submit(&low).await.unwrap().id;
    wait_state(&s.admin, low, JobState::Starting).await;
    let mut high = job(1, 8);
    high.class = Some("guaranteed".into());
    let high = s.admin.submit(&high).await.unwrap().id;
    wait_state(&s.admin, low, JobState::Preempting).await;
    let a = starts(&agent, "n1", 1).await;
    let Assignment::Stop { signal, .. } = &a[0].assignment else {
        panic!("{a:?}")
    };
    assert_eq!(signal, "SIGUSR1");
    agent
        .report(&TaskReport {
            node: "n1".into(),
            job: low,
            attempt: 1,
            rank: 0,
            state: TaskState::Exited,
            exit_code: Some(0),
        })
        .await
        .unwrap();
    wait_state(&s.admin, high, JobState::Starting).await;
    let l = s.admin.job(low).await.unwrap();
    assert_eq!(l.state, JobState::Pending);
    let reasons: Vec<String> = s
        .admin
        .events(low)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.reason)
        .collect();
    assert!(
        reasons[2].contains(&format!("preempted for job {high}")),
        "{reasons:?}"
    );
    assert!(reasons[3].contains("requeued"), "{reasons:?}");

    // A heartbeat reporting a sick device takes it out; silence loses the node and requeues its work.
    agent
        .heartbeat(&Heartbeat {
            node: "n1".into(),
            devices: vec![DeviceTelemetry {
                index: 3,
                healthy: false,
                ..DeviceTelemetry::default()
            }],
        })
        .await
        .unwrap();
    let nodes = s.admin.nodes().await.unwrap();
    assert_eq!(nodes[0].unhealthy, vec![3]);
    let e = agent
        .heartbeat(&Heartbeat {
            node: "n9".into(),
            devices: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    let mut waited = 0;
    while s.admin.nodes().await.unwrap()[0].state != NodeState::Lost {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
        assert!(waited < 100, "the node was never declared lost");
    }
    wait_state(&s.admin, high, JobState::Pending).await;
    let last = s.admin.events(high).await.unwrap().pop().unwrap();
    assert!(
        last.reason.contains("node n1 lost: no heartbeat for"),
        "{last:?}"
    );
    assert!(
        last.reason.ends_with("requeued to restart (restart 1)"),
        "{last:?}"
    );

    // Operators cordon and resume.
    let v = s.admin.node_action("n1", "cordon").await.unwrap();
    assert_eq!(v.state, NodeState::Lost);
    agent
        .heartbeat(&Heartbeat {
            node: "n1".into(),
            devices: vec![],
        })
        .await
        .unwrap();
    assert_eq!(s.admin.nodes().await.unwrap()[0].state, NodeState::Cordoned);
    let e = s.admin.node_action("n1", "reboot").await.unwrap_err();
    assert!(
        e.to_string().contains("cordon, drain, resume or spare"),
        "{e}"
    );
    s.admin.node_action("n1", "resume").await.unwrap();
    assert_eq!(s.admin.nodes().await.unwrap()[0].state, NodeState::Ready);
}

/// An agent that restarts lists the replicas it still runs: those the server moved on from are stale, and
/// the runs it no longer has were lost with it. Output shipped by agents is read back by tenants.
async fn agent_restart_and_output(backend: Backend) {
    let s = Server::start(backend).await;
    let agent = s.token(Role::Agent, None).await;
    agent.register(&h100_node("n1")).await.unwrap();
    let kept = s.admin.submit(&job(1, 4)).await.unwrap().id;
    let lost = s.admin.submit(&job(1, 4)).await.unwrap().id;
    wait_state(&s.admin, lost, JobState::Starting).await;
    let mut a = starts(&agent, "n1", 0).await;
    while a.len() < 2 {
        a = starts(&agent, "n1", 0).await;
    }
    let after = a.last().unwrap().seq;
    // Acknowledged: the agent has taken both starts.
    agent.poll("n1", None, after, 0).await.unwrap();
    for id in [kept, lost] {
        agent
            .report(&TaskReport {
                node: "n1".into(),
                job: id,
                attempt: 1,
                rank: 0,
                state: TaskState::Running,
                exit_code: None,
            })
            .await
            .unwrap();
    }
    // The agent comes back with `kept` (re-adopted) and a replica of an attempt the server never made.
    let current = wanka_api::TaskRef {
        job: kept,
        attempt: 1,
        rank: 0,
    };
    let stale = wanka_api::TaskRef {
        job: kept,
        attempt: 7,
        rank: 0,
    };
    let mut reg = h100_node("n1");
    reg.tasks = vec![current, stale];
    let r = agent.register(&reg).await.unwrap();
    assert_eq!(r.stale, vec![stale]);
    assert_eq!(s.admin.job(kept).await.unwrap().state, JobState::Running);
    // Requeued at once (it may run again, here or after this silent test node is declared lost).
    let events = s.admin.events(lost).await.unwrap();
    assert!(
        events[3]
            .reason
            .contains("rank 0 on n1 was lost: the node's agent restarted"),
        "{events:?}"
    );
    assert_eq!(events[3].state, JobState::Pending);

    // Output: chunks by offset, a retry stored once, then read back from any offset.
    let stream = wanka_api::LogStream {
        job: kept,
        attempt: 1,
        rank: 0,
        task: 0,
        stream: "stdout".into(),
    };
    let chunk = |offset: u64, data: &str, eof: bool| wanka_api::LogChunk {
        node: "n1".into(),
        stream: stream.clone(),
        offset,
        data: data.into(),
        eof,
    };
    for (offset, data, eof, held) in [
        (0, "step 1\n", false, 7),
        (0, "step 1\n", false, 7),
        (7, "done\n", true, 12),
    ] {
        let ack = agent.ship_log(&chunk(offset, data, eof)).await.unwrap();
        assert_eq!(ack.size, held, "chunk at {offset}");
    }
    let listed = s.admin.logs(kept).await.unwrap();
    assert_eq!(
        (listed.len(), listed[0].size, listed[0].complete),
        (1, 12, true)
    );
    let t = s.admin.read_log(&stream, 0, 0).await.unwrap();
    assert_eq!(
        (t.data.as_str(), t.next, t.complete),
        ("step 1\ndone\n", 12, true)
    );
    let tenant = s.token(Role::Tenant, Some("default")).await;
    assert_eq!(tenant.read_log(&stream, 7, 0).await.unwrap().data, "done\n");
    s.admin
        .put_tenant(
            "other",
            &wanka_api::PutTenant {
                weight: None,
                quota_devices: None,
            },
        )
        .await
        .unwrap();
    let other = s.token(Role::Tenant, Some("other")).await;
    let denied = other.logs(kept).await.unwrap_err();
    assert!(matches!(denied.status(), Some(403 | 404)), "{denied}");
    let bad = wanka_api::LogStream {
        stream: "stdin".into(),
        ..stream.clone()
    };
    assert_eq!(
        s.admin.read_log(&bad, 0, 0).await.unwrap_err().status(),
        Some(400)
    );
    let unknown = agent
        .ship_log(&wanka_api::LogChunk {
            stream: wanka_api::LogStream {
                job: 999,
                ..stream.clone()
            },
            ..chunk(0, "x", false)
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.status(), Some(404));

    // Progress: productive time counts only steps beyond the previous maximum; a checkpoint is kept.
    let rec = |step: Option<u64>, checkpoint: Option<u64>| wanka_api::ProgressRecord {
        at: 0.0,
        step,
        step_time_s: step.map(|_| 1.5),
        checkpoint,
    };
    let report = |records: Vec<wanka_api::ProgressRecord>| wanka_api::ProgressReport {
        node: "n1".into(),
        job: kept,
        attempt: 1,
        rank: 0,
        task: 0,
        records,
    };
    agent
        .progress(&report(vec![
            rec(Some(1), None),
            rec(Some(2), None),
            rec(None, Some(2)),
        ]))
        .await
        .unwrap();
    agent
        .progress(&report(vec![rec(Some(2), None), rec(Some(3), None)]))
        .await
        .unwrap();
    let p = s.admin.job(kept).await.unwrap().progress.unwrap();
    assert_eq!(
        (p.step, p.checkpoint_step, p.productive_s),
        (3, Some(2), 4.5)
    );
    // A process stepping at twice its gang's pace is flagged, once.
    for (task, t) in [(0, 1.0), (1, 1.0), (2, 2.0)] {
        let times: Vec<wanka_api::ProgressRecord> = (0..3)
            .map(|_| wanka_api::ProgressRecord {
                step_time_s: Some(t),
                ..Default::default()
            })
            .collect();
        for _ in 0..2 {
            agent
                .progress(&wanka_api::ProgressReport {
                    task,
                    ..report(times.clone())
                })
                .await
                .unwrap();
        }
    }
    let stragglers: Vec<String> = s
        .admin
        .events(kept)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.reason.starts_with("straggler"))
        .map(|e| e.reason)
        .collect();
    assert_eq!(
        stragglers,
        ["straggler: rank 0 process 2 on n1 takes 2.00 s per step, the gang's median is 1.00 s"]
    );
    let e = agent
        .progress(&wanka_api::ProgressReport {
            job: 999,
            ..report(vec![])
        })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    // With --replace-stragglers, the job is moved off the straggler's node (checkpoint first), and the node is
    // cordoned.
    let j = s.admin.job(kept).await.unwrap();
    assert_eq!(j.state, JobState::Preempting);
    assert!(
        j.reason.as_deref().unwrap_or("").starts_with(
            "moving off n1: straggler: rank 0 process 2 on n1 takes 2.00 s per step, the gang's median is 1.00 s: sent SIGUSR1 to checkpoint"
        ),
        "{j:?}"
    );
    let a = agent.poll("n1", None, 0, 0).await.unwrap().assignments;
    assert!(
        a.iter().any(|n| matches!(&n.assignment, Assignment::Signal { job, signal, .. } if *job == kept && signal == "SIGUSR1")),
        "{a:?}"
    );
    assert!(
        j.reason.as_deref().unwrap_or("").contains("(at step 3)"),
        "{j:?}"
    );
    // A checkpoint of an earlier step (a write begun before the request) does not end the wait; one of the step
    // reached does, and the job is stopped to move.
    let written = |step: u64| {
        let (admin, agent) = (&s.admin, &agent);
        async move {
            agent
                .progress(&report(vec![rec(None, Some(step))]))
                .await
                .unwrap();
            admin
                .events(kept)
                .await
                .unwrap()
                .into_iter()
                .any(|e| e.reason.contains("written; stopping with SIGTERM to move"))
        }
    };
    assert!(!written(2).await);
    assert!(written(3).await);
    let events = s.admin.node_events("n1").await.unwrap();
    assert_eq!(events[0].action, "cordon");
    assert!(
        events[0]
            .reason
            .starts_with(&format!("job {kept}: straggler: rank 0")),
        "{events:?}"
    );
    s.admin.node_action("n1", "resume").await.unwrap();
    let events = s.admin.node_events("n1").await.unwrap();
    assert_eq!(
        (events[1].action.as_str(), events[1].reason.as_str()),
        ("ready", "returned to service by an operator")
    );

    // Three devices failing within a day quarantine the node until an operator resumes it.
    for device in 0..3 {
        agent
            .heartbeat(&Heartbeat {
                node: "n1".into(),
                devices: vec![DeviceTelemetry {
                    index: device,
                    healthy: true,
                    faults: vec!["xid-48".into()],
                    ..DeviceTelemetry::default()
                }],
            })
            .await
            .unwrap();
    }
    let n1 = s.admin.nodes().await.unwrap().remove(0);
    assert_eq!(
        (n1.state, n1.quarantined, n1.held.len()),
        (NodeState::Cordoned, true, 3)
    );
    let events = s.admin.node_events("n1").await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.action, "quarantine");
    assert!(last.reason.starts_with("3 faults within 24 h, the last: device 2: XID 48 (Double Bit ECC Error): reset the device"), "{last:?}");
    let n1 = s.admin.node_action("n1", "resume").await.unwrap();
    assert_eq!((n1.state, n1.quarantined), (NodeState::Ready, false));

    // Faults go to simulated devices that exist, and only admins send them.
    let fault = wanka_api::InjectFault {
        device: 8,
        xid: vec![79],
        ..Default::default()
    };
    let e = s.admin.inject_fault("n1", &fault).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("node 'n1' has 8 devices; there is no device 8"),
        "{e}"
    );
    let fault = wanka_api::InjectFault { device: 3, ..fault };
    assert_eq!(
        tenant
            .inject_fault("n1", &fault)
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );
    s.admin.inject_fault("n1", &fault).await.unwrap();
    let a = starts(&agent, "n1", 0).await;
    assert!(
        a.iter()
            .any(|n| n.assignment == Assignment::Fault(fault.clone())),
        "{a:?}"
    );
}

async fn metrics_and_openapi(backend: Backend) {
    let s = Server::start(backend).await;
    let agent = s.token(Role::Agent, None).await;
    agent.register(&h100_node("n1")).await.unwrap();
    let id = s.admin.submit(&job(1, 2)).await.unwrap().id;
    wait_state(&s.admin, id, JobState::Starting).await;
    s.admin.submit(&job(1, 16)).await.unwrap();
    let base = s.admin.base().to_string();
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "wanka_jobs{state=\"starting\"} 1",
        "wanka_jobs{state=\"pending\"} 1",
        "wanka_devices{model=\"H100-SXM5-80GB\",state=\"allocated\"} 2",
        "wanka_devices{model=\"H100-SXM5-80GB\",state=\"free\"} 6",
        "wanka_scheduling_cycle_seconds_count",
        "wanka_api_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/jobs\",status=\"201\"} 2",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);

    // Every documented route exists: without a token it answers 401, never "no route" or 405.
    let doc: serde_json::Value = reqwest::get(format!("{base}/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", &id.to_string())
            .replace("{name}", "n1")
            .replace("{action}", "cordon")
            .replace("{attempt}", "1")
            .replace("{rank}", "0")
            .replace("{task}", "0")
            .replace("{stream}", "stdout")
            .replace("{model}", "H100");
        for method in ops.as_object().unwrap().keys() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let resp = http
                .request(m, format!("{base}{concrete}"))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap();
            assert!(
                !body.contains("no route") && status != 405,
                "{method} {path}: {status} {body}"
            );
            let public = ops[method]["security"]
                .as_array()
                .is_some_and(|s| s.is_empty());
            assert_eq!(status == 401, !public, "{method} {path}: {status}");
            checked += 1;
        }
    }
    // As many as `api::router` declares: an undocumented route shows up as a mismatch here.
    assert_eq!(checked, 33);
}

/// Keeps the nodes alive while a test runs longer than the node timeout.
fn heartbeats(agent: &Client, nodes: &[&str]) -> tokio::task::JoinHandle<()> {
    let (agent, nodes): (Client, Vec<String>) =
        (agent.clone(), nodes.iter().map(|n| n.to_string()).collect());
    tokio::spawn(async move {
        loop {
            for n in &nodes {
                let _ = agent
                    .heartbeat(&Heartbeat {
                        node: n.clone(),
                        devices: vec![],
                    })
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// The job's first `n` events: they are read from the store, which the scheduler's writes reach a moment
/// after memory (a state seen in `GET /jobs/{id}` may not have its event yet).
async fn events_at_least(c: &Client, id: u64, n: usize) -> Vec<wanka_api::JobEvent> {
    for _ in 0..200 {
        let ev = c.events(id).await.unwrap();
        if ev.len() >= n {
            return ev;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {id} never had {n} events: {:?}", c.events(id).await);
}

/// The agent's report that a job's only replica exited.
async fn exited(agent: &Client, c: &Client, id: u64, code: i32) {
    let j = c.job(id).await.unwrap();
    let runs = c.events(id).await.unwrap();
    let attempt = runs
        .iter()
        .filter(|e| e.state == JobState::Starting)
        .count() as u32;
    let r = TaskReport {
        node: j.replicas[0].node.clone(),
        job: id,
        attempt,
        rank: 0,
        state: TaskState::Exited,
        exit_code: Some(code),
    };
    agent.report(&r).await.unwrap();
}

/// Leases: admission with what is short, guarantees, lending idle leased capacity as borrowed work and
/// reclaiming it, usage records that add up to the allocated device-time, invoices, persistence.
async fn leases_lending_and_usage(backend: Backend) {
    let s = Server::start(backend).await;
    let agent = s.token(Role::Agent, None).await;
    for n in ["n1", "n2"] {
        agent.register(&h100_node(n)).await.unwrap();
    }
    let beat = heartbeats(&agent, &["n1", "n2"]);
    for t in ["a", "b"] {
        s.admin.put_tenant(t, &PutTenant::default()).await.unwrap();
    }
    let prices = Prices {
        leased: 2.0,
        on_demand: 3.0,
        preemptible: 1.0,
    };
    s.admin.put_prices("H100", &prices).await.unwrap();
    let now = wanka_server::now_us() as f64 / 1e6;
    let lease = |tenant: &str, devices: u32| LeaseRequest {
        tenant: tenant.into(),
        model: "H100".into(),
        devices,
        start: now - 60.0,
        end: now + 3600.0,
        within: None,
    };
    let la = s.admin.create_lease(&lease("a", 8)).await.unwrap();
    let mut leaf = lease("b", 8);
    leaf.within = Some("leaf".into());
    let lb = s.admin.create_lease(&leaf).await.unwrap();
    assert_eq!(lb.domain.as_deref(), Some("spine-0/leaf-a"));
    let e = s.admin.create_lease(&lease("b", 1)).await.unwrap_err();
    assert_eq!(e.status(), Some(409));
    let msg = e.to_string();
    assert!(
        msg.contains("16 installed and 16 already promised")
            && msg.contains(&format!("lease {} of 'a': 8", la.id))
            && msg.contains("short by 1"),
        "{msg}"
    );
    for (bad, why) in [
        (lease("a", 0), "at least one device"),
        (lease("nobody", 1), "tenant 'nobody' does not exist"),
        (
            LeaseRequest {
                model: "Z9000".into(),
                ..lease("a", 1)
            },
            "Z9000",
        ),
        (
            LeaseRequest {
                within: Some("rack".into()),
                ..lease("a", 1)
            },
            "anywhere, leaf or spine",
        ),
    ] {
        let e = s.admin.create_lease(&bad).await.unwrap_err();
        assert_eq!(e.status(), Some(400), "{e}");
        assert!(e.to_string().contains(why), "{e}");
    }

    // b wants 16: its own 8 leased, a's idle 8 borrowed.
    let b_token = s.token(Role::Tenant, Some("b")).await;
    let b1 = b_token.submit(&job(1, 8)).await.unwrap().id;
    let b2 = b_token.submit(&job(1, 8)).await.unwrap().id;
    for (id, kind) in [(b1, "leased"), (b2, "borrowed")] {
        let j = wait_state(&s.admin, id, JobState::Starting).await;
        assert_eq!(j.usage.as_deref(), Some(kind));
        let ev = events_at_least(&s.admin, id, 2).await;
        assert!(
            ev[1].reason.contains(&format!("8 {kind} device(s)")),
            "{ev:?}"
        );
    }
    // a needs its lease back: the borrower is asked to checkpoint and leave, then a starts.
    let mut a_job = job(1, 8);
    a_job.tenant = Some("a".into());
    let a1 = s.admin.submit(&a_job).await.unwrap().id;
    wait_state(&s.admin, b2, JobState::Preempting).await;
    let ev = events_at_least(&s.admin, b2, 3).await;
    assert!(
        ev[2]
            .reason
            .contains("tenant 'a' reclaims its leased devices"),
        "{ev:?}"
    );
    exited(&agent, &s.admin, b2, 0).await;
    wait_state(&s.admin, a1, JobState::Starting).await;
    let text = reqwest::get(format!("{}/metrics", s.admin.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("wanka_lease_reclaim_seconds{kind=\"count\"} 1"),
        "{text}"
    );
    let views = s.admin.leases().await.unwrap();
    assert_eq!(
        views.iter().map(|l| l.in_use).collect::<Vec<_>>(),
        vec![8, 8]
    );
    // Each lease stands on a whole node of its own.
    let pools: Vec<usize> = views
        .iter()
        .map(|l| l.pool.values().flatten().count())
        .collect();
    assert_eq!(pools, vec![8, 8]);
    assert_ne!(views[0].pool.keys().next(), views[1].pool.keys().next());
    // A tenant sees its own leases and usage only.
    let mine = b_token.leases().await.unwrap();
    assert_eq!(mine.iter().map(|l| l.id).collect::<Vec<_>>(), vec![lb.id]);
    let e = b_token.usage(Some("a"), None, None).await.unwrap_err();
    assert_eq!(e.status(), Some(403));
    // While running, usage shows the open segments.
    let open = s.admin.usage(None, None, None).await.unwrap();
    assert_eq!(open.records.iter().filter(|r| r.open).count(), 2);

    exited(&agent, &s.admin, a1, 0).await;
    exited(&agent, &s.admin, b1, 0).await;
    wait_state(&s.admin, b2, JobState::Starting).await;
    exited(&agent, &s.admin, b2, 0).await;
    for id in [a1, b1, b2] {
        wait_state(&s.admin, id, JobState::Completed).await;
    }

    // The usage records add up to the device-time of every run, as the job events record it.
    let report = s.admin.usage(None, None, None).await.unwrap();
    let mut from_events = 0.0;
    for id in [a1, b1, b2] {
        from_events += wanka_api::held_seconds(&s.admin.events(id).await.unwrap()) * 8.0 / 3600.0;
    }
    let recorded: f64 = report.records.iter().map(|r| r.device_hours).sum();
    assert_eq!(report.records.len(), 4, "{report:?}");
    assert!(report.records.iter().all(|r| !r.open));
    assert!(
        (recorded - from_events).abs() < 1e-9,
        "records {recorded} vs events {from_events}"
    );
    let kinds: Vec<(u64, &str)> = report
        .records
        .iter()
        .map(|r| (r.job, r.kind.as_str()))
        .collect();
    assert!(
        kinds.contains(&(b2, "borrowed")) && kinds.contains(&(a1, "leased")),
        "{kinds:?}"
    );

    // b's invoice: its lease over the window at the leased price, borrowed hours at the preemptible one.
    let to = wanka_server::now_us() as f64 / 1e6;
    let inv = s
        .admin
        .invoice("b", Some(now - 60.0), Some(to))
        .await
        .unwrap();
    assert_eq!(inv.lines[0].item, format!("lease {} (8 devices)", lb.id));
    assert!((inv.lines[0].device_hours - (to - now + 60.0) * 8.0 / 3600.0).abs() < 1e-6);
    let borrowed: f64 = report
        .records
        .iter()
        .filter(|r| r.kind == "borrowed")
        .map(|r| r.device_hours)
        .sum();
    assert_eq!(inv.lines[1].item, "borrowed");
    assert!((inv.lines[1].amount - borrowed * prices.preemptible).abs() < 1e-9);
    assert!((inv.total - inv.lines.iter().map(|l| l.amount).sum::<f64>()).abs() < 1e-9);

    // Withdrawn leases stay on record; everything survives a restart.
    s.admin.remove_lease(la.id).await.unwrap();
    beat.abort();
    let s = s.restart().await;
    let views = s.admin.leases().await.unwrap();
    assert!(views[0].removed.is_some() && views[1].removed.is_none());
    assert_eq!(s.admin.prices().await.unwrap()["H100-SXM5-80GB"], prices);
    let after = s.admin.usage(None, None, None).await.unwrap();
    assert_eq!(after.records.len(), 4);
    // a's 8 are free again to lease, here as a class (pinned to the H100s, the only Hopper installed); b's
    // are still promised.
    let class = |tenant: &str, devices: u32, model: &str| LeaseRequest {
        model: model.into(),
        ..lease(tenant, devices)
    };
    let lc = s
        .admin
        .create_lease(&class("a", 8, "Hopper_80G"))
        .await
        .unwrap();
    assert_eq!(
        (lc.model.as_str(), lc.class.as_deref()),
        ("H100-SXM5-80GB", Some("hopper-80g"))
    );
    let e = s
        .admin
        .create_lease(&class("a", 1, "H800,H100"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409));
    let msg = e.to_string();
    assert!(
        msg.contains("cannot lease 1 of class H800-SXM5-80GB,H100-SXM5-80GB to 'a'")
            && msg.contains("no model of the class can hold them; the closest, H100-SXM5-80GB: the cluster has 16 installed and 16 already promised"),
        "{msg}"
    );
    let s = s.restart().await;
    let views = s.admin.leases().await.unwrap();
    let kept = views.iter().find(|v| v.id == lc.id).unwrap();
    assert_eq!(kept.class.as_deref(), Some("hopper-80g"));
    assert_eq!(kept.in_use, 0);
}

/// Waits until `want` is the only hot spare.
async fn spares_become(c: &Client, want: &str) {
    for _ in 0..200 {
        let nodes = c.nodes().await.unwrap();
        let spares: Vec<&str> = nodes
            .iter()
            .filter(|n| n.state == NodeState::Spare)
            .map(|n| n.name.as_str())
            .collect();
        if spares == [want] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the spares never became [{want}]");
}

/// With `hot_spares` set, an idle node of each model is set aside, and set aside again when a spare takes a
/// failed node's place.
async fn hot_spares_are_kept_per_model(backend: Backend) {
    let s = Server::start_with(backend, |settings| settings.hot_spares = 1).await;
    let agent = s.token(Role::Agent, None).await;
    for n in ["n1", "n2", "n3"] {
        agent.register(&h100_node(n)).await.unwrap();
    }
    let beat = heartbeats(&agent, &["n1", "n2", "n3"]);
    spares_become(&s.admin, "n1").await;
    let events = s.admin.node_events("n1").await.unwrap();
    assert_eq!(
        (events[0].action.as_str(), events[0].reason.as_str()),
        (
            "spare",
            "set aside as a hot spare, to keep 1 of H100-SXM5-80GB (--hot-spares)"
        )
    );
    // The job takes an ordinary node; an XID 79 there restarts it on the spare, and the idle n3 takes its role.
    let id = s.admin.submit(&job(1, 8)).await.unwrap().id;
    let j = wait_state(&s.admin, id, JobState::Starting).await;
    assert_eq!(j.replicas[0].node, "n2");
    agent
        .heartbeat(&Heartbeat {
            node: "n2".into(),
            devices: vec![DeviceTelemetry {
                index: 0,
                healthy: true,
                faults: vec!["xid-79".into()],
                ..DeviceTelemetry::default()
            }],
        })
        .await
        .unwrap();
    spares_become(&s.admin, "n3").await;
    assert_eq!(s.admin.job(id).await.unwrap().replicas[0].node, "n1");
    beat.abort();
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Backend::sqlite(stringify!($test))).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(b) = super::Backend::postgres(stringify!($test)).await {
                        super::$test(b).await;
                    }
                }
            )*
        }
    };
}

suite!(
    agent_restart_and_output,
    leases_lending_and_usage,
    lifecycle_and_events,
    auth_roles_and_errors,
    restart_keeps_state,
    hot_spares_are_kept_per_model,
    lost_nodes_and_preemption,
    metrics_and_openapi,
);
