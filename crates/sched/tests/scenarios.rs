//! Each pipeline stage seen working on small clusters.

mod common;

use common::{job, model, nodes, scheduler};
use wanka_model::{JobId, NodeId, PriorityClass, Span, Tenant, TenantId, Time};
use wanka_sched::{Config, Decision, JobStatus, PendingReason, Plan, PreemptCause};

fn started(plan: &Plan) -> Vec<u64> {
    plan.decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Start { job, .. } => Some(job.0),
            _ => None,
        })
        .collect()
}

fn reason(s: &wanka_sched::Scheduler, id: u64) -> PendingReason {
    match s.status(JobId(id)) {
        Some(JobStatus::Pending { reason }) => reason,
        other => panic!("job {id} is not pending: {other:?}"),
    }
}

fn nodes_of(s: &wanka_sched::Scheduler, id: u64) -> Vec<NodeId> {
    match s.status(JobId(id)) {
        Some(JobStatus::Running { allocation }) => {
            allocation.replicas.iter().map(|r| r.node).collect()
        }
        other => panic!("job {id} is not running: {other:?}"),
    }
}

#[test]
fn a_gang_starts_whole_or_not_at_all() {
    let mut s = scheduler(Config::wanka(), nodes("H100", 1, 2, 8, 0, 0));
    s.submit(job(1, 3, 8)).unwrap();
    s.submit(job(2, 2, 8)).unwrap();
    let plan = s.schedule(Time(0));
    // Job 1 can never fit (3 nodes needed, 2 exist): it must not block job 2 or hold anything.
    assert_eq!(started(&plan), vec![2]);
    assert!(matches!(
        reason(&s, 1),
        PendingReason::ConstraintUnsatisfiable { .. }
    ));
}

#[test]
fn gangs_stay_inside_one_leaf_when_one_fits() {
    let mut s = scheduler(Config::wanka(), nodes("H100", 4, 4, 8, 0, 0));
    s.submit(job(1, 1, 8)).unwrap();
    s.schedule(Time(0));
    s.submit(job(2, 3, 8)).unwrap();
    let plan = s.schedule_full(Time(1));
    assert_eq!(started(&plan), vec![2]);
    let leaves: std::collections::BTreeSet<u32> = nodes_of(&s, 2).iter().map(|n| n.0 / 4).collect();
    assert_eq!(leaves.len(), 1, "gang spread over leaves {leaves:?}");
    // Best fit: the leaf already used by job 1 has exactly 3 whole nodes left.
    assert_eq!(leaves.into_iter().next(), Some(nodes_of(&s, 1)[0].0 / 4));
}

#[test]
fn heterogeneous_jobs_go_to_the_fastest_accepted_model_that_fits() {
    let mut all = nodes("T4", 1, 2, 4, 0, 0);
    all.extend(nodes("H100", 1, 1, 8, 10, 1));
    let mut s = scheduler(Config::wanka(), all);
    let mut j = job(1, 1, 4);
    j.models = vec![model("T4"), model("H100")];
    s.submit(j).unwrap();
    let mut t4_only = job(2, 1, 4);
    t4_only.models = vec![model("T4")];
    s.submit(t4_only).unwrap();
    s.schedule(Time(0));
    assert_eq!(nodes_of(&s, 1), vec![NodeId(10)]);
    // When the H100 node is full the same kind of job falls back to the T4s.
    let mut j = job(3, 1, 4);
    j.models = vec![model("H100")];
    s.submit(j).unwrap();
    let mut j = job(4, 1, 4);
    j.models = vec![model("T4"), model("H100")];
    j.submitted = Time(1);
    s.submit(j).unwrap();
    s.schedule_full(Time(1));
    assert_eq!(nodes_of(&s, 3), vec![NodeId(10)]);
    assert!(nodes_of(&s, 4)[0].0 < 10);
}

#[test]
fn higher_classes_go_first_and_shares_even_out_tenants() {
    let mut s = scheduler(Config::wanka(), nodes("A100-80G", 1, 1, 8, 0, 0));
    for (id, tenant) in [(1, 0), (2, 0), (3, 0), (4, 1), (5, 1)] {
        let mut j = job(id, 1, 2);
        j.tenant = TenantId(tenant);
        j.submitted = Time(id as i64);
        s.submit(j).unwrap();
    }
    let mut g = job(6, 1, 2);
    g.class = PriorityClass::Guaranteed;
    g.submitted = Time(100);
    s.submit(g).unwrap();
    let plan = s.schedule(Time(200));
    // Guaranteed first (tenant 0); then tenant 1, whose share is now lower; then the tie goes to the
    // older job (1 of tenant 0), after which tenant 1 is behind again.
    assert_eq!(started(&plan), vec![6, 4, 1, 5]);
    assert_eq!(
        reason(&s, 2),
        PendingReason::Resources {
            estimated_start: None
        }
    );
}

#[test]
fn backfill_lets_short_jobs_through_without_delaying_the_reserved_job() {
    let mut s = scheduler(Config::easy_backfill(), nodes("A100-80G", 1, 2, 8, 0, 0));
    let mut a = job(1, 1, 8);
    a.estimated_runtime = Some(Span::from_secs(100));
    s.submit(a).unwrap();
    let mut b = job(2, 1, 4);
    b.estimated_runtime = Some(Span::from_secs(1000));
    s.submit(b).unwrap();
    assert_eq!(started(&s.schedule(Time(0))), vec![1, 2]);
    // The head job needs both nodes: it waits for job 1 (t=100) and job 2 (t=1000).
    let mut head = job(3, 2, 8);
    head.submitted = Time(1);
    s.submit(head).unwrap();
    let mut short = job(4, 1, 4);
    short.submitted = Time(3);
    short.estimated_runtime = Some(Span::from_secs(500));
    s.submit(short).unwrap();
    let mut long = job(5, 1, 4);
    long.submitted = Time(2);
    long.estimated_runtime = Some(Span::from_secs(5000));
    s.submit(long).unwrap();
    let plan = s.schedule_full(Time::from_secs(10));
    let r = s.reservations();
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].job, r[0].start), (JobId(3), Time::from_secs(1000)));
    assert_eq!(
        started(&plan),
        vec![4],
        "the short job fits before t=1000; the long one would delay job 3"
    );
    assert!(matches!(
        plan.decisions[0],
        Decision::Start {
            backfilled: true,
            ..
        }
    ));
    assert_eq!(reason(&s, 5), PendingReason::Priority);
    assert_eq!(
        reason(&s, 3),
        PendingReason::Resources {
            estimated_start: Some(Time::from_secs(1000))
        }
    );
}

#[test]
fn strict_fifo_holds_everything_behind_a_blocked_job() {
    let mut s = scheduler(Config::fifo(), nodes("A100-80G", 1, 1, 8, 0, 0));
    s.submit(job(1, 1, 6)).unwrap();
    let mut big = job(2, 1, 4);
    big.submitted = Time(1);
    s.submit(big).unwrap();
    let mut small = job(3, 1, 1);
    small.submitted = Time(2);
    s.submit(small).unwrap();
    assert_eq!(started(&s.schedule(Time(5))), vec![1]);
    assert_eq!(reason(&s, 3), PendingReason::Priority);
}

#[test]
fn guaranteed_work_preempts_preemptible_work_checkpoint_first() {
    let mut s = scheduler(Config::wanka(), nodes("H800", 1, 2, 8, 0, 0));
    for id in 1..=4 {
        let mut j = job(id, 1, 4);
        j.class = PriorityClass::Preemptible;
        j.submitted = Time(id as i64);
        s.submit(j).unwrap();
    }
    assert_eq!(started(&s.schedule(Time(0))).len(), 4);
    let mut g = job(10, 1, 8);
    g.class = PriorityClass::Guaranteed;
    s.submit(g).unwrap();
    let plan = s.schedule(Time::from_secs(60));
    let victims: Vec<(u64, bool, Time)> = plan
        .decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Preempt {
                job,
                by,
                checkpoint,
                deadline,
                cause,
            } => {
                assert_eq!((*by, *cause), (JobId(10), PreemptCause::Priority));
                Some((job.0, *checkpoint, *deadline))
            }
            _ => None,
        })
        .collect();
    // Two 4-device victims on one node, youngest first, with the default 5-minute grace.
    assert_eq!(victims.len(), 2);
    assert!(victims.iter().all(|v| v.1 && v.2 == Time::from_secs(360)));
    assert_eq!(reason(&s, 10), PendingReason::Preempting { victims: 2 });
    // Nothing else may take the devices while the victims checkpoint.
    let mut sneaky = job(11, 1, 4);
    sneaky.submitted = Time(50);
    s.submit(sneaky).unwrap();
    for (v, _, _) in &victims {
        s.requeue(JobId(*v)).unwrap();
    }
    let plan = s.schedule(Time::from_secs(70));
    assert_eq!(started(&plan)[0], 10);
    assert!(!started(&plan).contains(&11));
    assert!(matches!(
        s.status(JobId(victims[0].0)),
        Some(JobStatus::Pending { .. })
    ));
}

#[test]
fn quota_and_impossible_requests_get_their_own_reasons() {
    let mut s = scheduler(Config::wanka(), nodes("L40S", 1, 2, 8, 0, 0));
    s.upsert_tenant(Tenant {
        quota_devices: Some(8),
        ..Tenant::new(TenantId(2), "capped")
    });
    let mut a = job(1, 1, 8);
    a.tenant = TenantId(2);
    let mut b = job(2, 1, 1);
    b.tenant = TenantId(2);
    let mut c = job(3, 1, 1);
    c.device_memory_gib = 80.0;
    let mut d = job(4, 1, 1);
    d.models = vec![model("910B3")];
    for j in [a, b, c, d] {
        s.submit(j).unwrap();
    }
    s.schedule(Time(0));
    assert_eq!(
        reason(&s, 2),
        PendingReason::QuotaExceeded { used: 8, quota: 8 }
    );
    let PendingReason::ConstraintUnsatisfiable { detail } = reason(&s, 3) else {
        panic!()
    };
    assert!(
        detail.contains("80 GiB") && detail.contains("H100-SXM5-80GB"),
        "{detail}"
    );
    let PendingReason::ConstraintUnsatisfiable { detail } = reason(&s, 4) else {
        panic!()
    };
    assert!(detail.contains("Ascend-910B3"), "{detail}");
}

#[test]
fn unhealthy_devices_and_cordoned_nodes_take_no_work() {
    let mut s = scheduler(Config::wanka(), nodes("H100", 1, 2, 8, 0, 0));
    s.set_device_health(NodeId(0), 3, false).unwrap();
    s.set_schedulable(NodeId(1), false).unwrap();
    s.submit(job(1, 1, 8)).unwrap();
    s.submit(job(2, 1, 7)).unwrap();
    let plan = s.schedule(Time(0));
    assert_eq!(started(&plan), vec![2]);
    let Some(JobStatus::Running { allocation }) = s.status(JobId(2)) else {
        panic!()
    };
    assert!(!allocation.replicas[0].devices.contains(&3));
    let why = s.explain(JobId(1)).unwrap();
    assert_eq!(why.feasible, 0);
    let names: Vec<&str> = why.rejected.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec!["node cordoned or lost", "too few healthy devices"]
    );
    s.set_schedulable(NodeId(1), true).unwrap();
    assert_eq!(started(&s.schedule(Time(1))), vec![1]);
}

#[test]
fn fractional_jobs_share_a_device() {
    let mut s = scheduler(Config::wanka(), nodes("T4", 1, 1, 2, 0, 0));
    for (id, milli) in [(1, 500), (2, 300), (3, 200), (4, 600)] {
        let mut j = job(id, 1, 1);
        j.fraction_milli = Some(milli);
        j.submitted = Time(id as i64);
        s.submit(j).unwrap();
    }
    s.schedule(Time(0));
    let dev = |id| match s.status(JobId(id)) {
        Some(JobStatus::Running { allocation }) => allocation.replicas[0].devices[0],
        other => panic!("{other:?}"),
    };
    assert_eq!(dev(1), dev(2));
    assert_eq!(dev(1), dev(3));
    assert_ne!(dev(1), dev(4));
    assert_eq!(s.device_counts()[&model("T4")], (2, 2));
}

#[test]
fn an_arrival_between_full_cycles_is_placed_alone() {
    let mut s = scheduler(Config::wanka(), nodes("H100", 2, 2, 8, 0, 0));
    s.submit(job(1, 1, 4)).unwrap();
    assert!(s.schedule(Time(0)).stats.full);
    s.submit(job(2, 1, 2)).unwrap();
    let plan = s.schedule(Time(1));
    assert!(!plan.stats.full);
    assert_eq!(plan.stats.considered, 1);
    assert_eq!(started(&plan), vec![2]);
    assert_eq!(nodes_of(&s, 1), nodes_of(&s, 2), "packed next to job 1");
    // A finish frees capacity, which calls for a full cycle.
    s.finished(JobId(1)).unwrap();
    assert!(s.schedule(Time(2)).stats.full);
}

#[test]
fn a_snapshot_rebuilds_the_same_scheduler() {
    let mut s = scheduler(Config::wanka(), nodes("A800", 2, 2, 8, 0, 0));
    for id in 1..=6 {
        let mut j = job(id, id as u32 % 3 + 1, 4);
        j.submitted = Time(id as i64);
        j.estimated_runtime = Some(Span::from_secs(100 * id as i64));
        s.submit(j).unwrap();
    }
    s.schedule(Time(0));
    s.set_device_health(NodeId(2), 1, false).unwrap();
    let snap = s.snapshot(Time(10));
    let (c, p) = common::catalog();
    let mut t = wanka_sched::Scheduler::from_snapshot(Config::wanka(), c, p, &snap).unwrap();
    assert_eq!(t.snapshot(Time(10)), snap);
    for sched in [&mut s, &mut t] {
        sched.submit(job(99, 1, 2)).unwrap();
    }
    let (a, b) = (s.schedule_full(Time(20)), t.schedule_full(Time(20)));
    assert_eq!((a.decisions, a.stats), (b.decisions, b.stats));
    assert_eq!(s.reservations(), t.reservations());
    for id in [1, 2, 3, 4, 5, 6, 99] {
        assert_eq!(s.status(JobId(id)), t.status(JobId(id)), "job {id}");
    }
}

#[test]
fn bad_events_are_rejected_without_changing_anything() {
    let mut s = scheduler(Config::wanka(), nodes("H100", 1, 1, 8, 0, 0));
    s.submit(job(1, 1, 1)).unwrap();
    assert_eq!(
        s.submit(job(1, 1, 1)).unwrap_err().to_string(),
        "job 1 already exists"
    );
    let mut j = job(2, 1, 1);
    j.tenant = TenantId(77);
    assert!(
        s.submit(j)
            .unwrap_err()
            .to_string()
            .contains("tenant TenantId(77) is not registered")
    );
    assert!(
        s.finished(JobId(1))
            .unwrap_err()
            .to_string()
            .contains("not running")
    );
    assert!(s.set_device_health(NodeId(0), 8, false).is_err());
    assert_eq!(s.pending_len(), 1);
}

#[test]
fn host_only_jobs_take_cpu_where_accelerators_are_busy() {
    let mut s = scheduler(Config::wanka(), nodes("T4", 1, 2, 2, 0, 0));
    s.submit(job(1, 1, 2)).unwrap();
    s.schedule(Time(0));
    let busy = nodes_of(&s, 1)[0];
    let mut cpu = job(2, 2, 0);
    cpu.cpu_milli = 8000;
    cpu.submitted = Time(1);
    s.submit(cpu).unwrap();
    s.schedule(Time(1));
    assert_eq!(
        nodes_of(&s, 2),
        vec![busy, busy],
        "CPU work goes where no accelerator is free"
    );
    let mut huge = job(3, 1, 0);
    huge.cpu_milli = 1_000_000;
    s.submit(huge).unwrap();
    s.schedule(Time(2));
    assert!(matches!(
        reason(&s, 3),
        PendingReason::ConstraintUnsatisfiable { .. }
    ));
}
