//! The risk engine: from what a node reports of each device (health word, fault codes, ECC counters,
//! temperature) to an assessment — the action the fault book calls for, whether a failure is coming, a risk
//! score — and from repeated faults to a node's quarantine. Pure: readings and times in, changes out; the
//! server and the simulator act on the changes.

use std::collections::{BTreeMap, VecDeque};
use wanka_model::{Action, FaultBook, Time};

/// One reading of one device.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reading<'a> {
    /// The vendor's health word.
    pub health: Option<&'a str>,
    /// Fault words (`xid-79`, `ascend-8C03A000`, ...).
    pub faults: &'a [String],
    /// Correctable ECC errors so far.
    pub ecc_corrected: Option<u64>,
    /// Uncorrectable ECC errors so far.
    pub ecc_uncorrected: Option<u64>,
    /// Temperature, Celsius.
    pub temperature_c: Option<f64>,
}

/// What the engine makes of a device now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assessment {
    /// The most severe action called for.
    pub action: Action,
    /// A failure is coming: move the work first.
    pub precursor: bool,
    /// Why, one entry per finding.
    pub reasons: Vec<String>,
    /// 0 (nothing seen) to 1 (failed).
    pub score: f64,
}

impl Assessment {
    /// Whether anything calls for a response (an application error does not).
    pub fn is_concern(&self) -> bool {
        self.precursor || self.action.restarts_jobs()
    }

    fn add(&mut self, action: Action, precursor: bool, reason: String) {
        self.action = self.action.max(action);
        self.precursor |= precursor;
        let s = match action {
            Action::None | Action::Application => 0.0,
            Action::RestartJob => 0.5,
            Action::ResetDevice => 0.8,
            Action::DrainDevice | Action::DrainNode => 1.0,
        };
        self.score = self.score.max(s).max(if precursor { 0.6 } else { 0.0 });
        self.reasons.push(reason);
    }

    /// The reasons on one line.
    pub fn why(&self) -> String {
        self.reasons.join("; ")
    }
}

/// An assessment that changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Change<K> {
    /// The node.
    pub node: K,
    /// The device.
    pub device: u32,
    /// The assessment before.
    pub before: Assessment,
    /// The assessment now.
    pub after: Assessment,
}

#[derive(Debug, Default)]
struct DeviceState {
    ecc: VecDeque<(Time, f64)>,
    temperature: VecDeque<(Time, f64)>,
    current: Assessment,
}

/// The engine, keyed by node (a name in the server, an id in the simulator).
#[derive(Debug)]
pub struct RiskEngine<K: Ord + Clone> {
    book: FaultBook,
    /// Per node, per device (nested so that a reading finds its device without building a key).
    devices: BTreeMap<K, BTreeMap<u32, DeviceState>>,
    faults: BTreeMap<K, VecDeque<Time>>,
}

/// Adds a sample unless it says nothing new: the same value (within `tolerance`) as the last sample kept,
/// taken less than 1/64 of the window after it. A device heartbeating every second thus keeps about 64
/// samples per window, not thousands.
fn sample<T: Copy + Into<f64>>(
    q: &mut VecDeque<(Time, T)>,
    now: Time,
    value: T,
    window_s: u64,
    tolerance: f64,
) {
    let step = (window_s as i64).saturating_mul(1_000_000) / 64;
    let same = q.back().is_some_and(|(t, v)| {
        ((*v).into() - value.into()).abs() <= tolerance && now.0 - t.0 < step
    });
    if !same {
        q.push_back((now, value));
    }
}

/// Drops samples older than the window and returns the oldest kept.
fn window<T: Copy>(q: &mut VecDeque<(Time, T)>, now: Time, secs: u64) -> Option<(Time, T)> {
    let limit = now.0 - (secs as i64).saturating_mul(1_000_000);
    while q.front().is_some_and(|(t, _)| t.0 < limit) {
        q.pop_front();
    }
    q.front().copied()
}

impl<K: Ord + Clone> RiskEngine<K> {
    /// An engine applying `book`.
    pub fn new(book: FaultBook) -> RiskEngine<K> {
        RiskEngine {
            book,
            devices: BTreeMap::new(),
            faults: BTreeMap::new(),
        }
    }

    /// The fault book in force.
    pub fn book(&self) -> &FaultBook {
        &self.book
    }

    /// Takes a reading; returns the change when the device's action or precursor flag moved.
    pub fn observe(
        &mut self,
        node: &K,
        device: u32,
        r: &Reading<'_>,
        now: Time,
    ) -> Option<Change<K>> {
        let book = &self.book;
        if !self.devices.contains_key(node) {
            self.devices.insert(node.clone(), BTreeMap::new());
        }
        let st = self
            .devices
            .get_mut(node)
            .expect("inserted above")
            .entry(device)
            .or_default();
        let mut a = Assessment::default();
        if let Some(m) = r.health.and_then(|h| book.health(h))
            && (m.rule.action > Action::None || m.rule.precursor)
        {
            a.add(m.rule.action, m.rule.precursor, m.what.clone());
        }
        for f in r.faults {
            if let Some(m) = book.fault(f) {
                let what = if m.rule.action > Action::None {
                    format!("{}: {}", m.what, m.rule.action)
                } else {
                    m.what.clone()
                };
                a.add(m.rule.action, m.rule.precursor, what);
            }
        }
        if let Some(n) = r.ecc_uncorrected.filter(|n| *n > 0) {
            a.add(
                book.ecc.uncorrected,
                false,
                format!("{n} uncorrectable ECC errors: {}", book.ecc.uncorrected),
            );
        }
        if let Some(c) = r.ecc_corrected {
            // A counter that went down was reset (driver reload): its history no longer applies.
            if st.ecc.back().is_some_and(|(_, last)| *last > c as f64) {
                st.ecc.clear();
            }
            sample(&mut st.ecc, now, c as f64, book.ecc.window_s, 0.0);
            if let Some((t0, c0)) = window(&mut st.ecc, now, book.ecc.window_s) {
                let rise = (c as f64 - c0).max(0.0) as u64;
                if rise >= book.ecc.corrected_rise {
                    a.add(
                        Action::None,
                        true,
                        format!(
                            "correctable ECC errors rose by {rise} in {:.0} s",
                            (now.0 - t0.0) as f64 / 1e6
                        ),
                    );
                }
                a.score = a
                    .score
                    .max(0.5 * (rise as f64 / book.ecc.corrected_rise.max(1) as f64).min(1.0));
            }
        }
        if let Some(t) = r.temperature_c {
            let th = &book.thermal;
            sample(&mut st.temperature, now, t, th.window_s, 1.0);
            let rise = window(&mut st.temperature, now, th.window_s).map_or(0.0, |(_, t0)| t - t0);
            if t >= th.critical_c {
                a.add(Action::DrainDevice, false, format!("temperature {t:.0} °C"));
            } else if t >= th.watch_c {
                a.add(Action::None, true, format!("temperature {t:.0} °C"));
            } else if rise >= th.rise_c {
                a.add(
                    Action::None,
                    true,
                    format!("temperature rose {rise:.0} °C within {} s", th.window_s),
                );
            }
        }
        let before = std::mem::replace(&mut st.current, a);
        let after = &st.current;
        (before.action != after.action || before.precursor != after.precursor).then(|| Change {
            node: node.clone(),
            device,
            before,
            after: after.clone(),
        })
    }

    /// Counts a fault that took a device or the node out of service; true when the node has now had as many
    /// within the window as the quarantine rule allows.
    pub fn record_fault(&mut self, node: &K, now: Time) -> bool {
        let q = &self.book.quarantine;
        let list = self.faults.entry(node.clone()).or_default();
        list.push_back(now);
        let limit = now.0 - (q.window_s as i64).saturating_mul(1_000_000);
        while list.front().is_some_and(|t| t.0 < limit) {
            list.pop_front();
        }
        list.len() as u32 >= q.faults
    }

    /// Forgets a node's fault history (an operator returned it to service after repair).
    pub fn forgive(&mut self, node: &K) {
        self.faults.remove(node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Time {
        Time::from_secs(s)
    }

    #[test]
    fn faults_become_actions_and_precursors_with_reasons() {
        let mut e: RiskEngine<&str> = RiskEngine::new(FaultBook::builtin());
        let ok = Reading {
            health: Some("OK"),
            ecc_corrected: Some(0),
            temperature_c: Some(40.0),
            ..Reading::default()
        };
        assert_eq!(e.observe(&"n1", 0, &ok, t(0)), None);
        let xid = ["xid-79".to_string()];
        let c = e
            .observe(&"n1", 0, &Reading { faults: &xid, ..ok }, t(5))
            .unwrap();
        assert_eq!(c.after.action, Action::DrainNode);
        assert_eq!(
            c.after.why(),
            "XID 79 (GPU has fallen off the bus): drain the node"
        );
        assert_eq!(c.after.score, 1.0);
        // Unchanged on the next heartbeat; back to normal when the fault clears.
        assert_eq!(
            e.observe(&"n1", 0, &Reading { faults: &xid, ..ok }, t(10)),
            None
        );
        let back = e.observe(&"n1", 0, &ok, t(15)).unwrap();
        assert!(!back.after.is_concern());
        // An application error is no concern of the node's.
        let app = ["xid-13".to_string()];
        let c = e
            .observe(&"n1", 1, &Reading { faults: &app, ..ok }, t(0))
            .unwrap();
        assert_eq!(c.after.action, Action::Application);
        assert!(!c.after.is_concern());
    }

    #[test]
    fn rising_correctable_ecc_and_heat_are_precursors() {
        let mut e: RiskEngine<&str> = RiskEngine::new(FaultBook::builtin());
        let at = |c: u64| Reading {
            ecc_corrected: Some(c),
            ..Reading::default()
        };
        assert_eq!(e.observe(&"n1", 2, &at(1000), t(0)), None);
        assert_eq!(e.observe(&"n1", 2, &at(1050), t(60)), None);
        let c = e.observe(&"n1", 2, &at(1120), t(120)).unwrap();
        assert!(c.after.precursor && c.after.action == Action::None);
        assert_eq!(c.after.why(), "correctable ECC errors rose by 120 in 120 s");
        // The same count an hour and more later: the rise has left the window.
        assert!(
            !e.observe(&"n1", 2, &at(1120), t(4000))
                .unwrap()
                .after
                .precursor
        );
        // A driver reload resets the counter: not a rise.
        assert_eq!(e.observe(&"n1", 2, &at(5), t(4100)), None);
        let heat = |c: f64| Reading {
            temperature_c: Some(c),
            ..Reading::default()
        };
        assert_eq!(e.observe(&"n2", 0, &heat(50.0), t(0)), None);
        let c = e.observe(&"n2", 0, &heat(72.0), t(120)).unwrap();
        assert!(
            c.after.why().contains("temperature rose 22 °C"),
            "{}",
            c.after.why()
        );
        let c = e.observe(&"n2", 0, &heat(110.0), t(130)).unwrap();
        assert_eq!(c.after.action, Action::DrainDevice);
    }

    #[test]
    fn a_steady_device_keeps_few_samples() {
        let mut e: RiskEngine<&str> = RiskEngine::new(FaultBook::builtin());
        for s in 0..7200 {
            let r = Reading {
                ecc_corrected: Some(3),
                temperature_c: Some(40.0 + (s % 2) as f64 * 0.5),
                ..Reading::default()
            };
            e.observe(&"n1", 0, &r, t(s));
        }
        let st = &e.devices[&"n1"][&0];
        assert!(
            st.ecc.len() <= 66 && st.temperature.len() <= 66,
            "{} {}",
            st.ecc.len(),
            st.temperature.len()
        );
    }

    #[test]
    fn repeated_faults_quarantine_a_node() {
        let mut e: RiskEngine<&str> = RiskEngine::new(FaultBook::builtin());
        assert!(!e.record_fault(&"n1", t(0)));
        assert!(!e.record_fault(&"n1", t(100)));
        assert!(!e.record_fault(&"n2", t(100)));
        assert!(e.record_fault(&"n1", t(200)));
        e.forgive(&"n1");
        assert!(!e.record_fault(&"n1", t(300)));
        // Faults a day apart do not add up.
        assert!(!e.record_fault(&"n3", t(0)));
        assert!(!e.record_fault(&"n3", t(90_000)));
        assert!(!e.record_fault(&"n3", t(180_000)));
    }
}
