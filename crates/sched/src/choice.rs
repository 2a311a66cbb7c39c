//! Model-choice stage: among the accelerator models a job accepts, which to try first.

use crate::config::ModelChoice;
use wanka_model::ModelId;

/// One accepted model with what the choice needs to know.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelOption {
    /// The model.
    pub model: ModelId,
    /// The job's normalized rate there (normalized device-seconds per device-second).
    pub rate: f64,
    /// The rate a job of unknown class gets there (effective peak relative to the reference).
    pub peak_rate: f64,
    /// Free devices of the model now.
    pub free: u32,
}

/// Orders the options by the rule; ties go to the lower model id so that the order is deterministic.
pub fn order(rule: ModelChoice, options: &mut [ModelOption]) {
    let advantage = |o: &ModelOption| {
        if o.peak_rate > 0.0 {
            o.rate / o.peak_rate
        } else {
            0.0
        }
    };
    options.sort_by(|a, b| {
        let by = match rule {
            ModelChoice::Comparative => advantage(b)
                .total_cmp(&advantage(a))
                .then(b.rate.total_cmp(&a.rate))
                .then(b.free.cmp(&a.free)),
            ModelChoice::Fastest => b.rate.total_cmp(&a.rate).then(b.free.cmp(&a.free)),
            ModelChoice::MostFree => b.free.cmp(&a.free).then(b.rate.total_cmp(&a.rate)),
        };
        by.then(a.model.cmp(&b.model))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(model: u16, rate: f64, peak_rate: f64, free: u32) -> ModelOption {
        ModelOption {
            model: ModelId(model),
            rate,
            peak_rate,
            free,
        }
    }

    #[test]
    fn comparative_advantage_sends_a_job_where_it_gains_most() {
        // Model 0 is a big chip (peak 3.0) on which this job only reaches 1.5; model 1 is small (peak 0.5)
        // and this job does unusually well there (0.9): its comparative advantage is on model 1.
        let mut o = [opt(0, 1.5, 3.0, 10), opt(1, 0.9, 0.5, 10)];
        order(ModelChoice::Comparative, &mut o);
        assert_eq!(o[0].model, ModelId(1));
        order(ModelChoice::Fastest, &mut o);
        assert_eq!(o[0].model, ModelId(0));
    }

    #[test]
    fn unknown_class_jobs_go_to_the_fastest_then_the_freest() {
        let mut o = [
            opt(0, 0.2, 0.2, 100),
            opt(1, 1.0, 1.0, 3),
            opt(2, 1.0, 1.0, 9),
        ];
        order(ModelChoice::Comparative, &mut o);
        assert_eq!(
            o.iter().map(|x| x.model.0).collect::<Vec<_>>(),
            vec![2, 1, 0]
        );
        order(ModelChoice::MostFree, &mut o);
        assert_eq!(o[0].model, ModelId(0));
    }
}
