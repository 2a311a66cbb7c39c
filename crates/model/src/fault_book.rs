//! Fault knowledge as versioned data (`faults.toml`, overridable by operators): what each fault a node can
//! report means — an NVIDIA XID, a health level, an Ascend error code and its handling level, ECC and
//! temperature thresholds — as an action class and whether it is a precursor of a failure.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;

/// The built-in fault book.
pub const BUILTIN_FAULTS: &str = include_str!("../faults.toml");

/// What a fault calls for, from least to most severe.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Nothing.
    #[default]
    None,
    /// The job's own error; the device is fine.
    Application,
    /// Restart the job (from its checkpoint); the device stays in service.
    RestartJob,
    /// Restart the job elsewhere; the device needs a reset first.
    ResetDevice,
    /// The device is out of service until repaired.
    DrainDevice,
    /// The node is out of service until repaired.
    DrainNode,
}

impl Action {
    /// Whether the device leaves service.
    pub fn takes_device(self) -> bool {
        self >= Action::ResetDevice
    }

    /// Whether the jobs on the device must restart.
    pub fn restarts_jobs(self) -> bool {
        self >= Action::RestartJob
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::None => "none",
            Action::Application => "application error",
            Action::RestartJob => "restart the job",
            Action::ResetDevice => "reset the device",
            Action::DrainDevice => "drain the device",
            Action::DrainNode => "drain the node",
        })
    }
}

/// One entry: the action and whether the fault announces a failure.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// What to do.
    pub action: Action,
    /// A sign of a coming failure.
    #[serde(default)]
    pub precursor: bool,
    /// What the fault is.
    #[serde(default)]
    pub name: Option<String>,
}

/// Correctable/uncorrectable ECC thresholds.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EccRules {
    /// Correctable errors gained within the window that make a precursor.
    pub corrected_rise: u64,
    /// The window, seconds.
    pub window_s: u64,
    /// The action for any uncorrectable error.
    pub uncorrected: Action,
}

/// Temperature thresholds.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThermalRules {
    /// Above this: a precursor.
    pub watch_c: f64,
    /// Above this: the device is drained.
    pub critical_c: f64,
    /// A rise of this much within the window: a precursor.
    pub rise_c: f64,
    /// The window, seconds.
    pub window_s: u64,
}

/// When a node with repeated faults is quarantined.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuarantineRules {
    /// Faults (reset-device or worse) within the window.
    pub faults: u32,
    /// The window, seconds.
    pub window_s: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ascend {
    #[serde(default)]
    levels: BTreeMap<String, Rule>,
    #[serde(default)]
    codes: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    version: Option<String>,
    #[serde(default)]
    xid: BTreeMap<String, Rule>,
    #[serde(default)]
    health: BTreeMap<String, Rule>,
    #[serde(default)]
    ascend: Ascend,
    #[serde(default)]
    other: BTreeMap<String, Rule>,
    ecc: Option<EccRules>,
    thermal: Option<ThermalRules>,
    quarantine: Option<QuarantineRules>,
}

/// A fault book that cannot be read.
#[derive(Debug, Error)]
pub enum FaultBookError {
    /// Not valid TOML, or a wrong field.
    #[error("{origin}: {message}")]
    Syntax {
        /// The file.
        origin: String,
        /// What and where.
        message: String,
    },
    /// A reference that does not resolve.
    #[error("{origin}: {message}")]
    Invalid {
        /// The file.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// What the book says of one fault.
#[derive(Clone, Debug, PartialEq)]
pub struct Meaning {
    /// The rule that applies.
    pub rule: Rule,
    /// The fault as a person reads it (`XID 79 (GPU has fallen off the bus)`, `Ascend 8C03A000
    /// (RestartNPU)`).
    pub what: String,
}

/// The fault knowledge in force.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultBook {
    /// Version of the built-in data (and of the operator's file, when it sets one).
    pub version: String,
    xid: BTreeMap<u64, Rule>,
    health: BTreeMap<String, Rule>,
    levels: BTreeMap<String, Rule>,
    /// Ascend error code → handling level.
    codes: BTreeMap<String, String>,
    other: BTreeMap<String, Rule>,
    /// ECC thresholds.
    pub ecc: EccRules,
    /// Temperature thresholds.
    pub thermal: ThermalRules,
    /// Quarantine rule.
    pub quarantine: QuarantineRules,
}

impl FaultBook {
    /// The built-in book.
    pub fn builtin() -> FaultBook {
        FaultBook::from_toml(BUILTIN_FAULTS, "built-in faults.toml")
            .expect("the built-in fault book is checked by the test suite")
    }

    /// A complete book from TOML.
    pub fn from_toml(text: &str, origin: &str) -> Result<FaultBook, FaultBookError> {
        let raw = parse(text, origin)?;
        let missing = |what: &str| FaultBookError::Invalid {
            origin: origin.into(),
            message: format!("[{what}] is missing"),
        };
        let mut book = FaultBook {
            version: raw.version.clone().unwrap_or_default(),
            xid: BTreeMap::new(),
            health: BTreeMap::new(),
            levels: BTreeMap::new(),
            codes: BTreeMap::new(),
            other: BTreeMap::new(),
            ecc: raw.ecc.clone().ok_or_else(|| missing("ecc"))?,
            thermal: raw.thermal.clone().ok_or_else(|| missing("thermal"))?,
            quarantine: raw
                .quarantine
                .clone()
                .ok_or_else(|| missing("quarantine"))?,
        };
        book.merge(raw, origin)?;
        Ok(book)
    }

    /// Applies an operator's file over this book: its entries replace the ones with the same key.
    pub fn extend_toml(&mut self, text: &str, origin: &str) -> Result<(), FaultBookError> {
        let raw = parse(text, origin)?;
        self.merge(raw, origin)
    }

    fn merge(&mut self, raw: Raw, origin: &str) -> Result<(), FaultBookError> {
        let invalid = |message: String| FaultBookError::Invalid {
            origin: origin.into(),
            message,
        };
        if let Some(v) = raw.version {
            self.version = v;
        }
        for (k, rule) in raw.xid {
            let code = k
                .parse::<u64>()
                .map_err(|_| invalid(format!("[xid] key '{k}' is not an XID number")))?;
            self.xid.insert(code, rule);
        }
        self.health.extend(raw.health);
        self.levels.extend(raw.ascend.levels);
        for (level, list) in raw.ascend.codes {
            let Some(rule) = self.levels.get(&level) else {
                return Err(invalid(format!(
                    "[ascend.codes] {level}: no such level in [ascend.levels]"
                )));
            };
            for code in list {
                let code = code.to_ascii_uppercase();
                let worse = self
                    .codes
                    .get(&code)
                    .and_then(|l| self.levels.get(l))
                    .is_some_and(|old| old.action > rule.action);
                if !worse {
                    self.codes.insert(code, level.clone());
                }
            }
        }
        self.other.extend(raw.other);
        if let Some(e) = raw.ecc {
            self.ecc = e;
        }
        if let Some(t) = raw.thermal {
            self.thermal = t;
        }
        if let Some(q) = raw.quarantine {
            self.quarantine = q;
        }
        Ok(())
    }

    /// What a health word means (`None` for a word the book does not know).
    pub fn health(&self, word: &str) -> Option<Meaning> {
        let (k, rule) = self
            .health
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(word))?;
        Some(Meaning {
            rule: rule.clone(),
            what: format!("health {k}"),
        })
    }

    /// What a fault word an agent reports means: `xid-79`, `ascend-8C03A000`, or one of `[other]`.
    pub fn fault(&self, fault: &str) -> Option<Meaning> {
        if let Some(n) = fault
            .strip_prefix("xid-")
            .and_then(|n| n.parse::<u64>().ok())
        {
            let rule = self.xid.get(&n).cloned().unwrap_or(Rule {
                // An XID the book does not know: worth a look, not worth a job.
                action: Action::None,
                precursor: true,
                name: None,
            });
            let what = match &rule.name {
                Some(name) => format!("XID {n} ({name})"),
                None => format!("XID {n} (not in the fault book)"),
            };
            return Some(Meaning { rule, what });
        }
        if let Some(code) = fault.strip_prefix("ascend-") {
            let code = code.to_ascii_uppercase();
            let level = self.codes.get(&code)?;
            return Some(Meaning {
                rule: self.levels.get(level)?.clone(),
                what: format!("Ascend {code} ({level})"),
            });
        }
        let key = fault.split(':').next().unwrap_or(fault).trim();
        self.other.get(key).map(|rule| Meaning {
            rule: rule.clone(),
            what: fault.to_string(),
        })
    }
}

fn parse(text: &str, origin: &str) -> Result<Raw, FaultBookError> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        FaultBookError::Syntax {
            origin: origin.into(),
            message: match line {
                Some(l) => format!("line {l}: {}", e.message()),
                None => e.message().to_string(),
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_book_classifies_what_agents_report() {
        let b = FaultBook::builtin();
        let m = b.fault("xid-79").unwrap();
        assert_eq!(
            (m.rule.action, m.rule.precursor),
            (Action::DrainNode, false)
        );
        assert_eq!(m.what, "XID 79 (GPU has fallen off the bus)");
        assert_eq!(b.fault("xid-13").unwrap().rule.action, Action::Application);
        assert!(b.fault("xid-92").unwrap().rule.precursor);
        assert!(
            b.fault("xid-9999").unwrap().rule.precursor,
            "unknown XIDs are watched"
        );
        // The three codes of the real npu-smi Alarm capture: not handled, free-restart, restart the NPU.
        assert_eq!(
            b.fault("ascend-A4025021").unwrap().rule.action,
            Action::None
        );
        assert_eq!(
            b.fault("ascend-8C084E00").unwrap().rule.action,
            Action::ResetDevice
        );
        let m = b.fault("ascend-8c03a000").unwrap();
        assert_eq!(
            (m.rule.action, m.what.as_str()),
            (Action::ResetDevice, "Ascend 8C03A000 (RestartNPU)")
        );
        assert!(
            b.fault("ascend-81A3880C").unwrap().rule.precursor,
            "SubHealth"
        );
        // Listed at RestartBusiness and SeparateNPU in the source data: the worse level wins.
        assert_eq!(
            b.fault("ascend-A2301001").unwrap().rule.action,
            Action::DrainDevice
        );
        assert!(
            b.fault("memory-accounting: 44302 MiB used of 32768")
                .unwrap()
                .rule
                .precursor
        );
        assert_eq!(
            b.health("critical").unwrap().rule.action,
            Action::DrainDevice
        );
        assert!(b.health("Warning").unwrap().rule.precursor);
        assert_eq!(b.fault("something else"), None);
        assert!(b.ecc.corrected_rise > 0 && b.quarantine.faults > 0);
    }

    #[test]
    fn operators_override_entries_and_bad_files_say_where() {
        let mut b = FaultBook::builtin();
        b.extend_toml(
            "version = \"site-7\"\n[xid]\n13 = { action = \"reset-device\" }\n[ascend.codes]\nSeparateNPU = [\"80E21007\"]\n[ecc]\ncorrected_rise = 10\nwindow_s = 60\nuncorrected = \"drain-device\"\n",
            "site.toml",
        )
        .unwrap();
        assert_eq!(b.version, "site-7");
        assert_eq!(b.fault("xid-13").unwrap().rule.action, Action::ResetDevice);
        assert_eq!(
            b.fault("ascend-80E21007").unwrap().rule.action,
            Action::DrainDevice
        );
        assert_eq!(b.ecc.corrected_rise, 10);
        let e = b
            .extend_toml("[xid]\n79 = { action = \"explode\" }\n", "bad.toml")
            .unwrap_err();
        assert!(e.to_string().starts_with("bad.toml: line 2"), "{e}");
        assert!(e.to_string().contains("explode"), "{e}");
        let e = b
            .extend_toml("[ascend.codes]\nReboot = [\"X\"]\n", "bad.toml")
            .unwrap_err();
        assert!(e.to_string().contains("Reboot: no such level"), "{e}");
        let e = b
            .extend_toml("[xid]\nabc = { action = \"none\" }\n", "bad.toml")
            .unwrap_err();
        assert!(e.to_string().contains("'abc' is not an XID number"), "{e}");
    }
}
