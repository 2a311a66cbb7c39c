//! Preemption stage: when a job of a higher class cannot start, checkpoint and preempt preemptible work to
//! make room. Victims are chosen youngest first (least progress since start at stake) and only those whose
//! devices the placement actually needs; the room is *claimed* for the preemptor until the victims are gone.

use crate::backfill::Hold;
use crate::placement::Part;
use wanka_model::{JobId, ModelId, Time};

/// Room being freed for a preemptor.
#[derive(Clone, Debug)]
pub struct Claim {
    /// Model of the claimed devices.
    pub model: ModelId,
    /// The placement the preemptor will take.
    pub parts: Vec<Part>,
    /// Jobs asked to checkpoint and leave.
    pub victims: Vec<JobId>,
    /// Devices of the placement already free and held for the preemptor.
    pub holds: Vec<Hold>,
}

/// A running preemptible job that could make room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Candidate {
    /// When it started (younger goes first).
    pub started: Time,
    /// The job.
    pub job: JobId,
}

/// Orders candidates youngest first, ties by the higher id (the later submission).
pub fn order(candidates: &mut [Candidate]) {
    candidates.sort_by(|a, b| b.cmp(a));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn youngest_victims_first() {
        let mut c = [
            Candidate {
                started: Time(5),
                job: JobId(1),
            },
            Candidate {
                started: Time(9),
                job: JobId(2),
            },
            Candidate {
                started: Time(9),
                job: JobId(3),
            },
        ];
        order(&mut c);
        assert_eq!(c.iter().map(|x| x.job.0).collect::<Vec<_>>(), vec![3, 2, 1]);
    }
}
