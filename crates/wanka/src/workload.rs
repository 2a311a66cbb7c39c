//! Synthetic job streams shaped like real traces, for benchmarks.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wanka_model::{JobId, JobSpec, ModelId, PriorityClass, Span, Stack, TenantId, Time};
use wanka_sim::trace::philly::PhillyJob;
use wanka_sim::workload::gang_shape;

/// Gang sizes of the 82,247 jobs of philly_jobs_pollux.csv (Microsoft Philly, CC BY 4.0), counted from the
/// trace: (GPUs, jobs).
pub const PHILLY_GANG_SIZES: [(u32, u32); 10] = [
    (1, 76_627),
    (2, 1_818),
    (4, 1_870),
    (8, 1_643),
    (12, 7),
    (16, 199),
    (24, 7),
    (32, 67),
    (64, 6),
    (128, 3),
];

/// Where gang sizes (and runtimes) come from.
pub enum Source<'a> {
    /// The histogram above; no runtimes.
    Histogram,
    /// Records of the real trace, drawn uniformly: size and duration together.
    Trace(&'a [PhillyJob]),
}

/// A deterministic generator of benchmark jobs.
pub struct Generator<'a> {
    rng: ChaCha8Rng,
    source: Source<'a>,
    models: Vec<ModelId>,
    tenants: u32,
    per_node: u32,
    total: u64,
}

impl<'a> Generator<'a> {
    /// A generator over the cluster's models, seeded.
    pub fn new(
        seed: u64,
        source: Source<'a>,
        models: Vec<ModelId>,
        tenants: u32,
        per_node: u32,
    ) -> Self {
        let total = PHILLY_GANG_SIZES.iter().map(|(_, n)| *n as u64).sum();
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            source,
            models,
            tenants,
            per_node,
            total,
        }
    }

    fn size_and_duration(&mut self) -> (u32, Option<f64>) {
        match self.source {
            Source::Trace(jobs) => {
                let j = &jobs[self.rng.random_range(0..jobs.len())];
                (j.gpus, Some(j.duration.max(1.0)))
            }
            Source::Histogram => {
                let mut x = self.rng.random_range(0..self.total);
                for (size, n) in PHILLY_GANG_SIZES {
                    if x < n as u64 {
                        return (size, None);
                    }
                    x -= n as u64;
                }
                unreachable!("x < total")
            }
        }
    }

    /// The next job: Philly gang size, a mix of model constraints, classes and tenants.
    pub fn job(&mut self, id: u64, submitted: Time) -> JobSpec {
        let (gpus, duration) = self.size_and_duration();
        let (replicas, per_replica) = gang_shape(gpus, self.per_node);
        let mut j = JobSpec::gang(
            JobId(id),
            TenantId(self.rng.random_range(0..self.tenants)),
            replicas,
            per_replica,
        );
        j.submitted = submitted;
        let r: f64 = self.rng.random();
        if r < 0.35 {
            j.stacks = vec![Stack::Cuda];
        } else if r < 0.55 {
            // any model
        } else if r < 0.8 {
            j.models = vec![self.models[self.rng.random_range(0..self.models.len())]];
        } else {
            let a = self.rng.random_range(0..self.models.len());
            let b = (a + 1 + self.rng.random_range(0..self.models.len() - 1)) % self.models.len();
            j.models = vec![self.models[a], self.models[b]];
        }
        let c: f64 = self.rng.random();
        j.class = if c < 0.1 {
            PriorityClass::Guaranteed
        } else if c < 0.8 {
            PriorityClass::Standard
        } else {
            PriorityClass::Preemptible
        };
        j.estimated_runtime = Some(Span::from_secs_f64(duration.unwrap_or_else(|| {
            // Without the trace: log-uniform between a minute and four days.
            (60f64.ln() + self.rng.random::<f64>() * (345_600f64.ln() - 60f64.ln())).exp()
        })));
        j
    }

    /// A uniform draw in [0, n), for callers that pick things (jobs to finish, ...).
    pub fn pick(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_follows_philly() {
        let models = vec![ModelId(0), ModelId(1)];
        let mut a = Generator::new(3, Source::Histogram, models.clone(), 4, 8);
        let mut b = Generator::new(3, Source::Histogram, models, 4, 8);
        let ja: Vec<JobSpec> = (0..2000).map(|i| a.job(i, Time(0))).collect();
        let jb: Vec<JobSpec> = (0..2000).map(|i| b.job(i, Time(0))).collect();
        assert_eq!(ja, jb);
        let single = ja.iter().filter(|j| j.total_devices() == 1).count();
        // Philly: 93.2% of jobs use one GPU.
        assert!((1750..1980).contains(&single), "{single}");
    }
}
