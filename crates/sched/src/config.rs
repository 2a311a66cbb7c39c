//! Scheduler configuration: which stages run and how. Named presets are the policies the simulator compares.

use crate::score::{self, Chain, Weighted};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use wanka_model::Span;

/// How the queue is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueOrder {
    /// Submission time only.
    Fifo,
    /// Priority class, then submission time.
    Priority,
    /// Priority class, then the tenant's weighted dominant share (lowest first), then submission time.
    PriorityFairShare,
}

/// Which of the models a job accepts to try first (see README, "Heterogeneity-aware model choice").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelChoice {
    /// Comparative advantage: the model where the job's normalized rate is highest relative to the model's
    /// peak-based rate, i.e. where this job gains most compared with a typical job; then the fastest.
    Comparative,
    /// The model with the highest normalized rate for the job.
    Fastest,
    /// The model with the most free devices (spreads load); then the fastest.
    MostFree,
}

/// How a multi-node gang chooses among domains (leaves, spines) that fit it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DomainFit {
    /// The domain with the least spare capacity that still fits (keeps big domains whole).
    BestFit,
    /// The first domain in topology order.
    FirstFit,
}

/// Placement stage settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementConfig {
    /// Keep a gang inside the smallest domain that fits (node, leaf, spine, center).
    pub topology_aware: bool,
    /// Domain choice for multi-node gangs.
    pub domain_fit: DomainFit,
    /// Scorers for single-node placement; none means first fit.
    pub scorers: Vec<Weighted>,
    /// When requests are scored node by node (fractions, host needs), let every accepted model's nodes
    /// compete instead of trying the models one by one in model-choice order.
    pub across_models: bool,
}

/// Backfill stage settings (EASY backfill generalized to several reservations).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillConfig {
    /// How many blocked jobs, in queue order, get a reservation each full cycle (1 is EASY backfill).
    pub reservations: usize,
}

/// Preemption stage settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreemptionConfig {
    /// Time a victim has to checkpoint and exit before it is killed.
    pub grace: Span,
}

/// Lease stage settings: what happens to leased capacity its owner leaves idle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeaseConfig {
    /// Lend idle leased capacity to other tenants as reclaimable work (false: strict partitions).
    pub lending: bool,
    /// Time a borrower has to checkpoint and leave when the owner needs its devices back.
    pub reclaim_grace: Span,
    /// Borrowed runs that have run at least this long may be moved (checkpoint, restart on devices held for
    /// them elsewhere) when that lets a blocked job start; `None`: never.
    pub repack_after: Option<Span>,
    /// Repacking may also move runs within their tenant's lease (to other devices of its own pools, so that
    /// they stay leased), not only borrowed ones.
    pub repack_leased: bool,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            lending: true,
            reclaim_grace: Span::from_secs(300),
            repack_after: Some(Span::from_secs(600)),
            repack_leased: true,
        }
    }
}

/// The whole pipeline's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Queue order stage.
    pub queue_order: QueueOrder,
    /// Strict FIFO: nothing behind the first blocked job may start.
    pub stop_at_first_blocked: bool,
    /// Model choice stage.
    pub model_choice: ModelChoice,
    /// Placement stage.
    pub placement: PlacementConfig,
    /// Backfill stage; `None` disables reservations (later jobs may then start freely).
    pub backfill: Option<BackfillConfig>,
    /// Preemption stage; `None` disables preemption.
    pub preemption: Option<PreemptionConfig>,
    /// Longest time between full cycles; between them only arrivals are placed (against standing reservations).
    pub full_cycle_interval: Span,
    /// Lease stage.
    #[serde(default)]
    pub leases: LeaseConfig,
}

/// A configuration that cannot be built.
#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    /// A scorer name that does not exist.
    #[error("unknown scorer '{0}' (known: {known})", known = score::scorer_names().join(", "))]
    UnknownScorer(String),
    /// A negative or non-finite weight.
    #[error("scorer '{0}' has weight {1}; weights must be finite and >= 0")]
    Weight(String, f64),
    /// An unknown preset name.
    #[error("unknown policy '{0}' (known: {known})", known = Config::PRESETS.join(", "))]
    UnknownPreset(String),
}

fn weighted(pairs: &[(&str, f64)]) -> Vec<Weighted> {
    pairs
        .iter()
        .map(|(n, w)| Weighted {
            name: n.to_string(),
            weight: *w,
        })
        .collect()
}

impl Default for Config {
    fn default() -> Self {
        Config::wanka()
    }
}

impl Config {
    /// Names accepted by [`Config::preset`].
    pub const PRESETS: [&'static str; 6] =
        ["fifo", "backfill", "best-fit", "fgd", "gavel", "wanka"];

    /// wanka's default: priority + fair share, fastest accepted model first, topology- and
    /// fragmentation-aware placement, backfill with several reservations, preemption with a 5-minute grace.
    pub fn wanka() -> Config {
        Config {
            queue_order: QueueOrder::PriorityFairShare,
            stop_at_first_blocked: false,
            model_choice: ModelChoice::Fastest,
            placement: PlacementConfig {
                topology_aware: true,
                domain_fit: DomainFit::BestFit,
                scorers: weighted(&[
                    ("stranded-capacity", 1.0),
                    ("binpack", 4.0),
                    ("keep-whole-nodes", 2.0),
                    ("leaf-packing", 2.0),
                    ("spine-packing", 1.0),
                ]),
                across_models: true,
            },
            backfill: Some(BackfillConfig { reservations: 8 }),
            preemption: Some(PreemptionConfig {
                grace: Span::from_secs(300),
            }),
            full_cycle_interval: Span::from_secs(10),
            leases: LeaseConfig::default(),
        }
    }

    /// Strict FIFO with first-fit placement: nothing overtakes a blocked job.
    pub fn fifo() -> Config {
        Config {
            queue_order: QueueOrder::Fifo,
            stop_at_first_blocked: true,
            model_choice: ModelChoice::MostFree,
            placement: PlacementConfig {
                topology_aware: false,
                domain_fit: DomainFit::FirstFit,
                scorers: Vec::new(),
                across_models: false,
            },
            backfill: None,
            preemption: None,
            full_cycle_interval: Span::from_secs(10),
            leases: LeaseConfig::default(),
        }
    }

    /// Slurm-like EASY backfill: FIFO order, one reservation for the head job, first-fit placement.
    pub fn easy_backfill() -> Config {
        Config {
            backfill: Some(BackfillConfig { reservations: 1 }),
            stop_at_first_blocked: false,
            ..Config::fifo()
        }
    }

    /// Greedy best-fit packing in FIFO order, no reservations.
    pub fn best_fit() -> Config {
        Config {
            stop_at_first_blocked: false,
            placement: PlacementConfig {
                topology_aware: false,
                domain_fit: DomainFit::BestFit,
                scorers: weighted(&[("binpack", 1.0)]),
                across_models: false,
            },
            ..Config::fifo()
        }
    }

    /// Fragmentation gradient descent (Weng et al., ATC'23): FIFO order, each job where it increases the
    /// expected unusable capacity least.
    pub fn fgd() -> Config {
        Config {
            placement: PlacementConfig {
                topology_aware: false,
                domain_fit: DomainFit::BestFit,
                scorers: weighted(&[("fragmentation-gradient", 1.0)]),
                across_models: true,
            },
            ..Config::best_fit()
        }
    }

    /// Heterogeneity-aware baseline in Gavel's spirit: every job on the model where it runs fastest
    /// (maximizing total normalized throughput greedily), FIFO order, best-fit packing.
    pub fn gavel() -> Config {
        Config {
            model_choice: ModelChoice::Fastest,
            ..Config::best_fit()
        }
    }

    /// A preset by name (see [`Config::PRESETS`]).
    pub fn preset(name: &str) -> Result<Config, ConfigError> {
        match name {
            "fifo" => Ok(Config::fifo()),
            "backfill" => Ok(Config::easy_backfill()),
            "best-fit" => Ok(Config::best_fit()),
            "fgd" => Ok(Config::fgd()),
            "gavel" => Ok(Config::gavel()),
            "wanka" => Ok(Config::wanka()),
            other => Err(ConfigError::UnknownPreset(other.to_string())),
        }
    }

    /// Builds the scorer chain, rejecting unknown names and bad weights.
    pub fn scorers(&self) -> Result<Chain, ConfigError> {
        self.placement
            .scorers
            .iter()
            .map(|w| {
                if !(w.weight.is_finite() && w.weight >= 0.0) {
                    return Err(ConfigError::Weight(w.name.clone(), w.weight));
                }
                let s = score::scorer(&w.name)
                    .ok_or_else(|| ConfigError::UnknownScorer(w.name.clone()))?;
                Ok((s, w.weight))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_builds() {
        for name in Config::PRESETS {
            let c = Config::preset(name).unwrap();
            c.scorers().unwrap();
        }
        assert!(
            Config::preset("lottery")
                .unwrap_err()
                .to_string()
                .contains("known: fifo")
        );
    }

    #[test]
    fn bad_scorers_are_rejected_by_name() {
        let mut c = Config::wanka();
        c.placement.scorers.push(Weighted {
            name: "random".into(),
            weight: 1.0,
        });
        assert_eq!(
            c.scorers().unwrap_err(),
            ConfigError::UnknownScorer("random".into())
        );
    }
}
