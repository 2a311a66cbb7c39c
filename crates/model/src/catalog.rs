//! The accelerator catalog: every model wanka knows, its datasheet figures and the names traces use for it.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use thiserror::Error;

/// The catalog shipped with wanka, compiled in so that a fresh binary needs no data files.
pub const BUILTIN_CATALOG: &str = include_str!("../catalog.toml");

/// Index of a model in its [`Catalog`]; stable for the catalog's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ModelId(pub u16);

/// Accelerator vendors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Vendor {
    Nvidia,
    Huawei,
    Cambricon,
    Hygon,
    MooreThreads,
    Metax,
    Iluvatar,
    Kunlunxin,
    Amd,
    /// A model a public trace anonymizes (openb's G2/G3, ...).
    Undisclosed,
}

/// The software stack a model's jobs are built against; a job may accept models by stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stack {
    /// NVIDIA CUDA.
    Cuda,
    /// Huawei CANN.
    Cann,
    /// Cambricon Neuware.
    Neuware,
    /// Hygon DTK (ROCm-derived).
    Dtk,
    /// AMD ROCm.
    Rocm,
    /// Moore Threads MUSA.
    Musa,
    /// MetaX MACA.
    Maca,
    /// Iluvatar CoreX.
    Corex,
    /// Kunlunxin XPU runtime.
    Xpu,
}

impl Stack {
    /// Every stack, for parsing and listings.
    pub const ALL: [Stack; 9] = [
        Stack::Cuda,
        Stack::Cann,
        Stack::Neuware,
        Stack::Dtk,
        Stack::Rocm,
        Stack::Musa,
        Stack::Maca,
        Stack::Corex,
        Stack::Xpu,
    ];

    /// The stack's name as written in catalog files and job specs.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Cuda => "cuda",
            Stack::Cann => "cann",
            Stack::Neuware => "neuware",
            Stack::Dtk => "dtk",
            Stack::Rocm => "rocm",
            Stack::Musa => "musa",
            Stack::Maca => "maca",
            Stack::Corex => "corex",
            Stack::Xpu => "xpu",
        }
    }

    /// Parses a stack name (case-insensitive).
    pub fn parse(name: &str) -> Option<Stack> {
        Stack::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Parses a stack name, or says which names are known.
    pub fn resolve(name: &str) -> Result<Stack, UnknownStack> {
        Stack::parse(name).ok_or_else(|| UnknownStack(name.to_string()))
    }
}

/// A software stack name that is none of [`Stack::ALL`].
#[derive(Debug, Error, Clone, PartialEq)]
#[error("unknown software stack '{0}' (known: {known})", known = Stack::ALL.map(Stack::name).join(", "))]
pub struct UnknownStack(pub String);

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How far a catalog entry's figures can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confidence {
    /// From the vendor's datasheet or product page.
    Datasheet,
    /// Commonly reported, not published by the vendor.
    Reported,
    /// Copied from `assumed_equivalent` because nothing is public.
    Assumed,
}

/// The intra-node link between devices of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interconnect {
    /// Link technology, e.g. "NVLink 4" or "PCIe 4.0 x16".
    pub kind: String,
    /// Per-device bandwidth in GB/s.
    pub bandwidth_gbs: f64,
}

/// One accelerator model with its datasheet figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AcceleratorModel {
    /// Canonical name, unique in the catalog.
    pub name: String,
    /// Who makes it.
    pub vendor: Vendor,
    /// Device memory in GiB.
    pub memory_gib: f64,
    /// Dense BF16 peak in TFLOPS, if the model supports BF16.
    pub bf16_tflops: Option<f64>,
    /// Dense FP16 peak in TFLOPS, if the model has a fast FP16 path.
    pub fp16_tflops: Option<f64>,
    /// FP32 peak in TFLOPS.
    pub fp32_tflops: Option<f64>,
    /// Intra-node interconnect.
    pub interconnect: Interconnect,
    /// Software stack.
    pub stack: Stack,
    /// Environment variables the runtime reads to restrict visible devices (all are set by the agent).
    pub visible_devices_env: Vec<String>,
    /// Other names for the model (trace and tool spellings).
    pub aliases: Vec<String>,
    /// Where the figures come from.
    pub source: String,
    /// How far to trust the figures.
    pub confidence: Confidence,
    /// For assumed entries: the model whose figures were copied.
    pub assumed_equivalent: Option<String>,
}

impl AcceleratorModel {
    /// The peak used for normalization: dense half precision (BF16 or FP16, whichever is higher), else FP32.
    pub fn peak_tflops(&self) -> f64 {
        match (self.bf16_tflops, self.fp16_tflops) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => self.fp32_tflops.unwrap_or(0.0),
        }
    }
}

/// A catalog file as written (built-in or operator's).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    stacks: BTreeMap<Stack, f64>,
    #[serde(default, rename = "model")]
    models: Vec<RawModel>,
    #[serde(default)]
    classes: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: String,
    vendor: Vendor,
    memory_gib: Option<f64>,
    bf16_tflops: Option<f64>,
    fp16_tflops: Option<f64>,
    fp32_tflops: Option<f64>,
    interconnect: Option<Interconnect>,
    stack: Stack,
    visible_devices_env: Vec<String>,
    #[serde(default)]
    aliases: Vec<String>,
    source: String,
    confidence: Confidence,
    assumed_equivalent: Option<String>,
}

/// A problem with a catalog file.
#[derive(Debug, Error)]
pub enum CatalogError {
    /// The file is not valid TOML or has unknown or missing fields.
    #[error("{origin}: {source}")]
    Parse {
        /// File the text came from.
        origin: String,
        /// The TOML error, with its line and column.
        source: toml::de::Error,
    },
    /// An entry is well-formed TOML but makes no sense.
    #[error("{origin}: model '{model}': {problem}")]
    Invalid {
        /// File the text came from.
        origin: String,
        /// The entry's name.
        model: String,
        /// What is wrong.
        problem: String,
    },
    /// A class names no model, a model the catalog does not know, or a name a model already has.
    #[error("{origin}: class '{class}': {problem}")]
    Class {
        /// File the text came from.
        origin: String,
        /// The class.
        class: String,
        /// What is wrong.
        problem: String,
    },
    /// Two models claim the same name or alias.
    #[error("{origin}: the name '{name}' is claimed by both '{first}' and '{second}'")]
    DuplicateName {
        /// File the text came from.
        origin: String,
        /// The contested name.
        name: String,
        /// The model that had it first.
        first: String,
        /// The model that claims it again.
        second: String,
    },
    /// A stack efficiency outside (0, 1].
    #[error("{origin}: efficiency of stack '{stack}' is {value}; it must be in (0, 1]")]
    Efficiency {
        /// File the text came from.
        origin: String,
        /// The stack.
        stack: Stack,
        /// The rejected value.
        value: f64,
    },
}

/// A model name the catalog does not know.
#[derive(Debug, Error, Clone, PartialEq)]
#[error("unknown accelerator model '{name}'{}", hint(.suggestions))]
pub struct UnknownModel {
    /// The name as given.
    pub name: String,
    /// Known names that look close.
    pub suggestions: Vec<String>,
}

fn hint(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        " (run `wanka catalog` to list known models, or add it with --catalog FILE)".to_string()
    } else {
        format!(" (did you mean {}?)", suggestions.join(", "))
    }
}

/// All known accelerator models, looked up by name or alias.
#[derive(Clone, Debug)]
pub struct Catalog {
    models: Vec<AcceleratorModel>,
    by_name: HashMap<String, ModelId>,
    efficiency: BTreeMap<Stack, f64>,
    /// Classes by lookup key: (name as written, its models).
    classes: BTreeMap<String, (String, Vec<ModelId>)>,
}

/// The lookup key of a name: case, spaces and underscores do not matter.
fn key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.trim().chars() {
        let c = if c == ' ' || c == '_' { '-' } else { c };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.extend(c.to_lowercase());
    }
    out
}

impl Catalog {
    /// The built-in catalog.
    pub fn builtin() -> Catalog {
        Catalog::from_toml(BUILTIN_CATALOG, "built-in catalog")
            .expect("the built-in catalog is checked by the test suite")
    }

    /// Parses a catalog from TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog {
            models: Vec::new(),
            by_name: HashMap::new(),
            efficiency: BTreeMap::new(),
            classes: BTreeMap::new(),
        };
        catalog.extend_toml(text, origin)?;
        Ok(catalog)
    }

    /// Adds an operator's file: new names are added, a name that exists replaces that entry (keeping its id).
    /// On error the catalog is left as it was.
    pub fn extend_toml(&mut self, text: &str, origin: &str) -> Result<(), CatalogError> {
        let mut next = self.clone();
        next.merge(text, origin)?;
        *self = next;
        Ok(())
    }

    fn merge(&mut self, text: &str, origin: &str) -> Result<(), CatalogError> {
        let file: CatalogFile = toml::from_str(text).map_err(|source| CatalogError::Parse {
            origin: origin.to_string(),
            source,
        })?;
        for (stack, value) in file.stacks {
            if !(value > 0.0 && value <= 1.0) {
                return Err(CatalogError::Efficiency {
                    origin: origin.to_string(),
                    stack,
                    value,
                });
            }
            self.efficiency.insert(stack, value);
        }
        for raw in file.models {
            let model = self.resolve_raw(raw, origin)?;
            match self
                .models
                .iter()
                .position(|m| key(&m.name) == key(&model.name))
            {
                Some(i) => self.models[i] = model,
                None => {
                    if self.models.len() >= u16::MAX as usize {
                        return Err(CatalogError::Invalid {
                            origin: origin.to_string(),
                            model: model.name,
                            problem: "the catalog is full (65535 models)".to_string(),
                        });
                    }
                    self.models.push(model);
                }
            }
            // Later entries of the same file may name this one as their assumed equivalent.
            self.reindex(origin)?;
        }
        self.reindex(origin)?;
        for (name, members) in file.classes {
            let problem = |problem: String| CatalogError::Class {
                origin: origin.to_string(),
                class: name.clone(),
                problem,
            };
            if members.is_empty() {
                return Err(problem("it names no model".into()));
            }
            let mut ids = Vec::with_capacity(members.len());
            for m in &members {
                let id = self.lookup(m).map_err(|e| problem(e.to_string()))?;
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            self.classes.insert(key(&name), (name, ids));
        }
        // A class may not hide a model (an operator's file may add a model named like a built-in class).
        for (k, (name, _)) in &self.classes {
            if let Some(id) = self.by_name.get(k) {
                return Err(CatalogError::Class {
                    origin: origin.to_string(),
                    class: name.clone(),
                    problem: format!(
                        "'{name}' already names model '{}'; give the class another name",
                        self.model(*id).name
                    ),
                });
            }
        }
        Ok(())
    }

    fn resolve_raw(&self, raw: RawModel, origin: &str) -> Result<AcceleratorModel, CatalogError> {
        let invalid = |problem: String| CatalogError::Invalid {
            origin: origin.to_string(),
            model: raw.name.clone(),
            problem,
        };
        let base = match (&raw.assumed_equivalent, raw.confidence) {
            (Some(eq), Confidence::Assumed) => {
                let id = self
                    .lookup(eq)
                    .map_err(|e| invalid(format!("assumed_equivalent: {e}")))?;
                let base = self.model(id);
                if base.confidence == Confidence::Assumed {
                    return Err(invalid(format!(
                        "assumed_equivalent '{eq}' is itself assumed; name a model with published figures"
                    )));
                }
                Some(base.clone())
            }
            (None, Confidence::Assumed) => {
                return Err(invalid(
                    "confidence = \"assumed\" needs assumed_equivalent".into(),
                ));
            }
            (Some(_), _) => {
                return Err(invalid(
                    "assumed_equivalent is only allowed with confidence = \"assumed\"".into(),
                ));
            }
            (None, _) => None,
        };
        let pick = |own: Option<f64>, inherited: Option<f64>| own.or(inherited);
        let (bf16, fp16, fp32) = match (
            &base,
            raw.bf16_tflops.or(raw.fp16_tflops).or(raw.fp32_tflops),
        ) {
            (Some(b), None) => (b.bf16_tflops, b.fp16_tflops, b.fp32_tflops),
            _ => (raw.bf16_tflops, raw.fp16_tflops, raw.fp32_tflops),
        };
        let memory_gib = pick(raw.memory_gib, base.as_ref().map(|b| b.memory_gib))
            .ok_or_else(|| invalid("memory_gib is missing".into()))?;
        let interconnect = raw
            .interconnect
            .or_else(|| base.as_ref().map(|b| b.interconnect.clone()))
            .ok_or_else(|| invalid("interconnect is missing".into()))?;
        for (field, value) in [
            ("memory_gib", Some(memory_gib)),
            ("bf16_tflops", bf16),
            ("fp16_tflops", fp16),
            ("fp32_tflops", fp32),
            (
                "interconnect.bandwidth_gbs",
                Some(interconnect.bandwidth_gbs),
            ),
        ] {
            if let Some(v) = value
                && !(v.is_finite() && v > 0.0)
            {
                return Err(invalid(format!(
                    "{field} = {v}; it must be a positive number"
                )));
            }
        }
        if bf16.is_none() && fp16.is_none() && fp32.is_none() {
            return Err(invalid(
                "give at least one of bf16_tflops, fp16_tflops, fp32_tflops".into(),
            ));
        }
        if raw.visible_devices_env.is_empty() {
            return Err(invalid("visible_devices_env is empty".into()));
        }
        if raw.source.trim().is_empty() {
            return Err(invalid(
                "source is empty: say where the figures come from".into(),
            ));
        }
        Ok(AcceleratorModel {
            name: raw.name,
            vendor: raw.vendor,
            memory_gib,
            bf16_tflops: bf16,
            fp16_tflops: fp16,
            fp32_tflops: fp32,
            interconnect,
            stack: raw.stack,
            visible_devices_env: raw.visible_devices_env,
            aliases: raw.aliases,
            source: raw.source,
            confidence: raw.confidence,
            assumed_equivalent: raw.assumed_equivalent,
        })
    }

    fn reindex(&mut self, origin: &str) -> Result<(), CatalogError> {
        let mut by_name: HashMap<String, ModelId> = HashMap::new();
        for (i, m) in self.models.iter().enumerate() {
            let id = ModelId(i as u16);
            for name in std::iter::once(&m.name).chain(&m.aliases) {
                if let Some(prev) = by_name.insert(key(name), id)
                    && prev != id
                {
                    return Err(CatalogError::DuplicateName {
                        origin: origin.to_string(),
                        name: name.clone(),
                        first: self.models[prev.0 as usize].name.clone(),
                        second: m.name.clone(),
                    });
                }
            }
        }
        self.by_name = by_name;
        Ok(())
    }

    /// Finds a model by its name or any alias; case, spaces and underscores do not matter.
    pub fn lookup(&self, name: &str) -> Result<ModelId, UnknownModel> {
        let k = key(name);
        self.by_name.get(&k).copied().ok_or_else(|| UnknownModel {
            name: name.to_string(),
            suggestions: self.suggest(&k),
        })
    }

    /// The models a lease may name: a class of the catalog, models separated by commas (an ad-hoc class), or
    /// one model.
    pub fn lookup_models(&self, text: &str) -> Result<Vec<ModelId>, UnknownModel> {
        if let Some((_, ids)) = self.class(text) {
            return Ok(ids.to_vec());
        }
        let mut ids = Vec::new();
        for name in text.split(',') {
            let id = self.lookup(name)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// The class of this name (case, spaces and underscores do not matter): its name as written, its models.
    pub fn class(&self, name: &str) -> Option<(&str, &[ModelId])> {
        self.classes
            .get(&key(name))
            .map(|(n, ids)| (n.as_str(), ids.as_slice()))
    }

    /// The classes: (name, models), by name.
    pub fn classes(&self) -> impl Iterator<Item = (&str, &[ModelId])> {
        self.classes
            .values()
            .map(|(name, ids)| (name.as_str(), ids.as_slice()))
    }

    fn suggest(&self, k: &str) -> Vec<String> {
        let mut close: Vec<(usize, &str)> = self
            .by_name
            .iter()
            .filter_map(|(name, id)| {
                let d = edit_distance(k, name);
                let near =
                    d <= 2 || (k.len() >= 3 && (name.contains(k) || k.contains(name.as_str())));
                near.then(|| (d, self.models[id.0 as usize].name.as_str()))
            })
            .collect();
        close.sort();
        let mut names: Vec<String> = Vec::new();
        for (_, n) in close {
            if !names.iter().any(|x| x == n) {
                names.push(n.to_string());
            }
        }
        names.truncate(4);
        names
    }

    /// The model with this id.
    pub fn model(&self, id: ModelId) -> &AcceleratorModel {
        &self.models[id.0 as usize]
    }

    /// All models with their ids, in catalog order.
    pub fn models(&self) -> impl Iterator<Item = (ModelId, &AcceleratorModel)> {
        self.models
            .iter()
            .enumerate()
            .map(|(i, m)| (ModelId(i as u16), m))
    }

    /// Number of models.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// True when the catalog has no models.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Share of peak a job reaches on this stack when no measurement exists (1.0 unless configured).
    pub fn efficiency(&self, stack: Stack) -> f64 {
        self.efficiency.get(&stack).copied().unwrap_or(1.0)
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn builtin_catalog_meets_the_coverage_the_issue_asks_for() {
        let c = Catalog::builtin();
        assert!(c.len() >= 20, "only {} models", c.len());
        let vendors: BTreeSet<Vendor> = c
            .models()
            .map(|(_, m)| m.vendor)
            .filter(|v| *v != Vendor::Undisclosed)
            .collect();
        assert!(vendors.len() >= 7, "vendors: {vendors:?}");
        for (_, m) in c.models() {
            assert!(m.peak_tflops() > 0.0, "{} has no peak", m.name);
            assert!(m.memory_gib > 0.0);
            assert!(!m.source.is_empty());
        }
    }

    #[test]
    fn trace_spellings_resolve_to_catalog_models() {
        let c = Catalog::builtin();
        let cases = [
            // Alibaba openb
            ("G2", "openb-G2"),
            ("G3", "openb-G3"),
            ("T4", "T4"),
            ("P100", "P100-PCIE-16GB"),
            ("V100M16", "V100-SXM2-16GB"),
            ("V100M32", "V100-SXM2-32GB"),
            ("A10", "A10"),
            // Alibaba's 10k-GPU node list
            ("A100-SXM4-80GB", "A100-SXM4-80GB"),
            ("A800-SXM4-80GB", "A800-SXM4-80GB"),
            ("H800", "H800-SXM5-80GB"),
            ("GPU-series-1", "alibaba-GPU-series-1"),
            ("A100-80G", "A100-SXM4-80GB"),
            // Gavel
            ("k80", "K80"),
            ("p100", "P100-PCIE-16GB"),
            ("v100", "V100-SXM2-16GB"),
            // device tools
            ("910B3", "Ascend-910B3"),
            ("910B2C", "Ascend-910B2"),
            ("MetaX C500", "MetaX-C500"),
            ("Iluvatar BI-V150", "Iluvatar-BI-V150"),
            ("K100_AI", "DCU-K100-AI"),
            ("mlu370_x8", "MLU370-X8"),
            ("R300", "Kunlunxin-R300"),
            ("MTT S4000", "MTT-S4000"),
        ];
        for (alias, name) in cases {
            let id = c.lookup(alias).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.model(id).name, name, "alias {alias}");
        }
    }

    #[test]
    fn unknown_names_are_an_error_with_suggestions() {
        let c = Catalog::builtin();
        let err = c.lookup("H810").unwrap_err();
        assert!(
            err.suggestions.iter().any(|s| s == "H800-SXM5-80GB"),
            "{err}"
        );
        let msg = c.lookup("quantum-9000").unwrap_err().to_string();
        assert!(
            msg.contains("unknown accelerator model 'quantum-9000'"),
            "{msg}"
        );
    }

    #[test]
    fn assumed_entries_copy_figures_from_their_equivalent() {
        let c = Catalog::builtin();
        let g2 = c.model(c.lookup("G2").unwrap());
        let v100 = c.model(c.lookup("V100M32").unwrap());
        assert_eq!(g2.peak_tflops(), v100.peak_tflops());
        assert_eq!(g2.memory_gib, v100.memory_gib);
        // The C550's memory is known; only compute is copied.
        let c550 = c.model(c.lookup("C550").unwrap());
        assert_eq!(c550.memory_gib, 64.0);
    }

    #[test]
    fn operator_file_adds_and_overrides_models() {
        let mut c = Catalog::builtin();
        let before = c.len();
        let h100 = c.lookup("H100").unwrap();
        c.extend_toml(
            r#"
            [stacks]
            cann = 0.8
            [[model]]
            name = "B200"
            vendor = "nvidia"
            memory_gib = 180
            bf16_tflops = 2250
            interconnect = { kind = "NVLink 5", bandwidth_gbs = 1800 }
            stack = "cuda"
            visible_devices_env = ["CUDA_VISIBLE_DEVICES"]
            source = "operator test"
            confidence = "datasheet"
            [[model]]
            name = "h100-sxm5-80gb"
            vendor = "nvidia"
            memory_gib = 80
            bf16_tflops = 900
            interconnect = { kind = "NVLink 4", bandwidth_gbs = 900 }
            stack = "cuda"
            visible_devices_env = ["CUDA_VISIBLE_DEVICES"]
            source = "operator's own measurement"
            confidence = "datasheet"
            "#,
            "ops.toml",
        )
        .unwrap();
        assert_eq!(c.len(), before + 1);
        assert_eq!(c.lookup("b200").unwrap(), ModelId(before as u16));
        assert_eq!(c.lookup("h100-sxm5-80gb").unwrap(), h100);
        assert_eq!(c.model(h100).peak_tflops(), 900.0);
        assert_eq!(c.efficiency(Stack::Cann), 0.8);
    }

    #[test]
    fn classes_name_groups_of_models_and_bad_ones_say_what_is_wrong() {
        let mut c = Catalog::builtin();
        let (h100, h800) = (c.lookup("H100").unwrap(), c.lookup("H800").unwrap());
        assert_eq!(c.lookup_models("Hopper_80G").unwrap(), [h100, h800]);
        assert_eq!(c.lookup_models("H800, h100,H800").unwrap(), [h800, h100]);
        assert_eq!(c.lookup_models("H100").unwrap(), [h100]);
        assert!(
            c.lookup_models("H100,H900")
                .unwrap_err()
                .to_string()
                .contains("'H900'")
        );
        assert!(
            c.classes()
                .any(|(n, ids)| n == "ascend-910b" && ids.len() == 3)
        );
        c.extend_toml("[classes]\nmine = [\"T4\", \"A10\"]\n", "ops.toml")
            .unwrap();
        assert_eq!(c.lookup_models("mine").unwrap().len(), 2);
        for (text, says) in [
            (
                "[classes]\nx = []\n",
                "ops.toml: class 'x': it names no model",
            ),
            (
                "[classes]\nx = [\"T4\", \"T5\"]\n",
                "ops.toml: class 'x': unknown accelerator model 'T5'",
            ),
            (
                "[classes]\nt4 = [\"A10\"]\n",
                "ops.toml: class 't4': 't4' already names model 'T4'",
            ),
        ] {
            let msg = c
                .clone()
                .extend_toml(text, "ops.toml")
                .unwrap_err()
                .to_string();
            assert!(msg.starts_with(says), "{msg}");
        }
    }

    #[test]
    fn bad_files_say_what_and_where() {
        let err = Catalog::from_toml("[[model]]\nname = \"X\"\nvendr = \"nvidia\"\n", "bad.toml")
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("bad.toml:") && msg.contains("vendr"),
            "{msg}"
        );

        let text = r#"
            [[model]]
            name = "X"
            vendor = "nvidia"
            memory_gib = -1
            fp32_tflops = 1
            interconnect = { kind = "PCIe", bandwidth_gbs = 32 }
            stack = "cuda"
            visible_devices_env = ["CUDA_VISIBLE_DEVICES"]
            source = "s"
            confidence = "datasheet"
        "#;
        let msg = Catalog::from_toml(text, "neg.toml")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("neg.toml: model 'X': memory_gib = -1"),
            "{msg}"
        );

        let mut c = Catalog::builtin();
        let dup = text.replace("memory_gib = -1", "memory_gib = 1\naliases = [\"T4\"]");
        let msg = c.extend_toml(&dup, "dup.toml").unwrap_err().to_string();
        assert!(msg.contains("'T4' is claimed by both"), "{msg}");
    }
}
