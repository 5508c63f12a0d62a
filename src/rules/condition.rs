//! Conditions, shared by checks and bulletins: a probe of one fact and what is expected of
//! it, `all` / `any` / `not` of conditions, or a fact exsweep does not collect yet. Built from
//! TOML (strictly) and judged over a host's facts with three values: pass, fail, unknown.
//! Pure: no I/O.

use std::cmp::Ordering;

use exsweep_wire::regvalue::RegData;
use serde::Deserialize;

use crate::facts::{normalize_key_path, registry_fact_name, registry_key_fact_name, Fact, HostFacts, Transport, Value};

/// A value a check compares with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Bool(bool),
    Text(String),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Int(n) => write!(f, "{n}"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// A comparison ([`Expect`]'s operator), as written in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Eq,
    Ne,
    Ge,
    Gt,
    Le,
    Lt,
    In,
    Between,
    Exists,
    Absent,
    Only,
}

/// What a condition expects of the value it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Eq(Scalar),
    Ne(Scalar),
    Ge(Scalar),
    Gt(Scalar),
    Le(Scalar),
    Lt(Scalar),
    In(Vec<Scalar>),
    /// Both ends included.
    Between(Scalar, Scalar),
    Exists,
    Absent,
    /// Every item (of a list; a scalar is one item) matches one of these; `*` in a pattern
    /// stands for any run of characters (`S-1-5-21-*-512`: Domain Admins of any domain).
    Only(Vec<Scalar>),
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Eq(v) => write!(f, "= {v}"),
            Expect::Ne(v) => write!(f, "!= {v}"),
            Expect::Ge(v) => write!(f, ">= {v}"),
            Expect::Gt(v) => write!(f, "> {v}"),
            Expect::Le(v) => write!(f, "<= {v}"),
            Expect::Lt(v) => write!(f, "< {v}"),
            Expect::In(vs) => {
                let items: Vec<String> = vs.iter().map(Scalar::to_string).collect();
                write!(f, "one of [{}]", items.join(", "))
            }
            Expect::Between(a, b) => write!(f, "between {a} and {b}"),
            Expect::Only(vs) => {
                let items: Vec<String> = vs.iter().map(Scalar::to_string).collect();
                write!(f, "only [{}]", items.join(", "))
            }
            Expect::Exists => f.write_str("exists"),
            Expect::Absent => f.write_str("absent"),
        }
    }
}

/// The fact a condition reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A registry value: `path` is `HKLM\...` (normalized), `value` the value's name.
    Registry { path: String, value: String },
    /// Whether a registry key exists (e.g. Windows 2000's `Lsa\NoLMHash`, a key with no value).
    RegistryKey { path: String },
    /// `service.<name>.<property>`.
    Service { name: String, property: String },
    /// `file.<path template>.<property>`.
    File { path: String, property: String },
    /// Any named fact.
    Fact(String),
}

/// Properties a service probe may read (the facts `collect::services` records).
pub const SERVICE_PROPERTIES: [&str; 4] = ["start_mode", "state", "display_name", "image_path"];
/// Properties a file probe may read (the facts `collect::files` records).
pub const FILE_PROPERTIES: [&str; 6] = [
    "version",
    "product_version",
    "version_text",
    "exists",
    "machine",
    "size",
];

impl Probe {
    /// The name of the fact this probe reads.
    pub fn fact_name(&self) -> String {
        match self {
            Probe::Registry { path, value } => registry_fact_name(path, value),
            Probe::RegistryKey { path } => registry_key_fact_name(path),
            Probe::Service { name, property } => format!("service.{name}.{property}"),
            Probe::File { path, property } => format!("file.{path}.{property}"),
            Probe::Fact(name) => name.clone(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Probe::Registry { path, value } => format!("{path}\\{value}"),
            Probe::RegistryKey { path } => format!("key {path}"),
            Probe::Service { name, property } => format!("service {name} {property}"),
            Probe::File { path, property } => format!("{path} {property}"),
            Probe::Fact(name) => name.clone(),
        }
    }
}

/// A condition of a check or bulletin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Leaf {
        probe: Probe,
        expect: Expect,
    },
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    /// Needs facts exsweep does not collect yet: always unknown, with this text.
    Needs(String),
}

impl Condition {
    /// Every probe in the condition, for planning what to collect.
    pub fn probes(&self) -> Vec<&Probe> {
        match self {
            Condition::Leaf { probe, .. } => vec![probe],
            Condition::All(cs) | Condition::Any(cs) => cs.iter().flat_map(Condition::probes).collect(),
            Condition::Not(c) => c.probes(),
            Condition::Needs(_) => Vec::new(),
        }
    }

    /// What the condition expects, for the report's `expected` column.
    pub fn expected(&self) -> String {
        match self {
            Condition::Leaf { probe, expect } => match probe {
                Probe::Registry { .. } | Probe::RegistryKey { .. } => expect.to_string(),
                other => format!("{} {expect}", other.describe()),
            },
            Condition::All(cs) => format!(
                "all of [{}]",
                cs.iter().map(Condition::expected).collect::<Vec<_>>().join("; ")
            ),
            Condition::Any(cs) => format!(
                "any of [{}]",
                cs.iter().map(Condition::expected).collect::<Vec<_>>().join("; ")
            ),
            Condition::Not(c) => format!("not ({})", c.expected()),
            Condition::Needs(what) => format!("(needs {what})"),
        }
    }
}

/// A verdict of a condition: pass, fail or unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    Pass,
    Fail,
    Unknown,
}

/// What judging a condition found: the verdict, what was seen and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub truth: Truth,
    pub observed: Vec<String>,
    pub evidence: Vec<String>,
}

impl Outcome {
    fn new(truth: Truth, observed: Option<String>, evidence: String) -> Outcome {
        Outcome {
            truth,
            observed: observed.into_iter().collect(),
            evidence: vec![evidence],
        }
    }
}

/// Judges `condition` over `facts`.
pub fn judge_condition(condition: &Condition, facts: &HostFacts) -> Outcome {
    match condition {
        Condition::Leaf { probe, expect } => judge_leaf(probe, expect, facts),
        Condition::Needs(what) => Outcome::new(
            Truth::Unknown,
            None,
            format!("needs {what}, which exsweep does not collect yet"),
        ),
        Condition::Not(c) => {
            let mut o = judge_condition(c, facts);
            o.truth = match o.truth {
                Truth::Pass => Truth::Fail,
                Truth::Fail => Truth::Pass,
                Truth::Unknown => Truth::Unknown,
            };
            o
        }
        Condition::All(cs) | Condition::Any(cs) => {
            let all = matches!(condition, Condition::All(_));
            let outcomes: Vec<Outcome> = cs.iter().map(|c| judge_condition(c, facts)).collect();
            let has = |t: Truth| outcomes.iter().any(|o| o.truth == t);
            let truth = match (all, has(Truth::Fail), has(Truth::Pass), has(Truth::Unknown)) {
                (true, true, _, _) => Truth::Fail,
                (true, false, _, true) => Truth::Unknown,
                (true, false, _, false) => Truth::Pass,
                (false, _, true, _) => Truth::Pass,
                (false, _, false, true) => Truth::Unknown,
                (false, _, false, false) => Truth::Fail,
            };
            Outcome {
                truth,
                observed: outcomes.iter().flat_map(|o| o.observed.clone()).collect(),
                evidence: outcomes.into_iter().flat_map(|o| o.evidence).collect(),
            }
        }
    }
}

fn judge_leaf(probe: &Probe, expect: &Expect, facts: &HostFacts) -> Outcome {
    let what = probe.describe();
    let Some(fact) = facts.get(&probe.fact_name()) else {
        return Outcome::new(Truth::Unknown, None, format!("{what} was not collected"));
    };
    let place = provenance(fact, &what);
    let truth_of = |(s, note): (Truth, Option<String>), observed: String, type_name: Option<String>| {
        let evidence = match (type_name, note) {
            (Some(t), Some(n)) => format!("{place} ({t}): {n}"),
            (Some(t), None) => format!("{place} ({t})"),
            (None, Some(n)) => format!("{place}: {n}"),
            (None, None) => place.clone(),
        };
        Outcome::new(s, Some(observed), evidence)
    };
    match (&fact.value, &fact.reg) {
        (Value::Unavailable(f), _) => Outcome::new(Truth::Unknown, None, format!("{place}: {f}")),
        (Value::Absent, _) => Outcome::new(
            pass_if(matches!(expect, Expect::Absent)),
            Some("(absent)".into()),
            format!("{place}: does not exist"),
        ),
        (_, Some(data)) => truth_of(judge_registry(expect, data), display(data), Some(data.type_name())),
        (Value::Bool(true), None) if matches!(probe, Probe::RegistryKey { .. }) => truth_of(
            (pass_if(!matches!(expect, Expect::Absent)), None),
            "key exists".into(),
            None,
        ),
        (Value::Bool(b), None) => truth_of(judge_scalar(expect, &Scalar::Bool(*b), "value"), b.to_string(), None),
        (Value::Number(n), None) => {
            let scalar = i64::try_from(*n).map_or_else(|_| Scalar::Text(n.to_string()), Scalar::Int);
            truth_of(judge_scalar(expect, &scalar, "number"), n.to_string(), None)
        }
        (Value::Text(t), None) => truth_of(judge_scalar(expect, &text_scalar(t), "text"), cut(t), None),
        (Value::List(items), None) => truth_of(judge_list(expect, items), cut(&items.join("; ")), None),
        (other, None) => Outcome::new(Truth::Unknown, None, format!("{place}: unexpected fact {other:?}")),
    }
}

/// `smb: <what> read at <time>`, the start of every piece of evidence.
pub fn provenance(fact: &Fact, what: &str) -> String {
    let transport = fact.source.transport.as_str();
    match fact.source.transport {
        // A derived fact says what it was worked out from (`file.…store.exe.version`), an
        // observed one what was asked (`GET http://…/exchange/ … HTTP 401`).
        Transport::Derived | Transport::Http => format!(
            "{transport}: {what} from {} at {}",
            fact.source.path, fact.source.read_at
        ),
        _ => format!("{transport}: {what} read at {}", fact.source.read_at),
    }
}

/// Longest observed value shown in a report cell; the rest is summarized.
const MAX_OBSERVED_CHARS: usize = 512;

fn cut(full: &str) -> String {
    if full.chars().count() <= MAX_OBSERVED_CHARS {
        return full.to_owned();
    }
    let head: String = full.chars().take(MAX_OBSERVED_CHARS).collect();
    format!("{head}… ({} chars in all)", full.chars().count())
}

/// How an observed registry value is shown in reports (cut at 512 characters).
pub fn display(data: &RegData) -> String {
    cut(&match data {
        RegData::Sz(s) | RegData::ExpandSz(s) => s.clone(),
        RegData::MultiSz(v) => v.join("; "),
        RegData::Dword(n) | RegData::DwordBigEndian(n) => n.to_string(),
        RegData::Qword(n) => n.to_string(),
        RegData::None(b) | RegData::Binary(b) | RegData::Raw { bytes: b, .. } => crate::facts::hex(b),
    })
}

/// Text as a scalar: a decimal number compares as a number.
fn text_scalar(s: &str) -> Scalar {
    s.trim()
        .parse::<i64>()
        .map_or_else(|_| Scalar::Text(s.to_owned()), Scalar::Int)
}

/// The observed registry value as a comparable scalar. `None` for binary data.
fn observed_scalar(data: &RegData) -> Option<Scalar> {
    match data {
        RegData::Dword(n) | RegData::DwordBigEndian(n) => Some(Scalar::Int(i64::from(*n))),
        RegData::Qword(n) => i64::try_from(*n).ok().map(Scalar::Int),
        RegData::Sz(s) | RegData::ExpandSz(s) => Some(text_scalar(s)),
        _ => None,
    }
}

/// Compares two scalars: numbers numerically, dotted versions part by part, booleans with
/// booleans or `"true"`/`"false"`. Other text is only equal or not (case-insensitively, as
/// Windows compares names): it has no order a baseline could mean.
pub fn compare(observed: &Scalar, expected: &Scalar) -> Option<Ordering> {
    match (observed, expected) {
        (Scalar::Int(a), Scalar::Int(b)) => Some(a.cmp(b)),
        (Scalar::Text(a), Scalar::Text(b)) => match (parse_version(a), parse_version(b)) {
            (Some(va), Some(vb)) => Some(va.cmp(&vb)),
            _ if a.to_lowercase() == b.to_lowercase() => Some(Ordering::Equal),
            _ => None,
        },
        (Scalar::Int(a), Scalar::Text(b)) => b.trim().parse::<i64>().ok().map(|b| a.cmp(&b)),
        (Scalar::Text(a), Scalar::Int(b)) => a.trim().parse::<i64>().ok().map(|a| a.cmp(b)),
        (Scalar::Bool(a), Scalar::Bool(b)) => (a == b).then_some(Ordering::Equal),
        (Scalar::Bool(a), Scalar::Text(t)) | (Scalar::Text(t), Scalar::Bool(a)) => t
            .trim()
            .parse::<bool>()
            .ok()
            .and_then(|b| (*a == b).then_some(Ordering::Equal)),
        (Scalar::Bool(_), Scalar::Int(_)) | (Scalar::Int(_), Scalar::Bool(_)) => None,
    }
}

/// A dotted version of at least two numeric parts; missing parts count as 0.
pub fn parse_version(s: &str) -> Option<Vec<u64>> {
    let parts: Option<Vec<u64>> = s.trim().split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| p.len() >= 2).map(|mut p| {
        p.resize(p.len().max(4), 0);
        p
    })
}

/// The verdict on one scalar, and a note when it could not be judged cleanly.
pub fn judge_scalar(expect: &Expect, observed: &Scalar, kind: &str) -> (Truth, Option<String>) {
    use Ordering::*;
    let cmp = |v: &Scalar| compare(observed, v);
    let unordered = || {
        (
            Truth::Fail,
            Some(format!("{kind} {observed} is not comparable with {expect}")),
        )
    };
    let ordered = |v: &Scalar, ok: fn(Ordering) -> bool| cmp(v).map_or_else(unordered, |o| (pass_if(ok(o)), None));
    match expect {
        Expect::Exists => (Truth::Pass, None),
        Expect::Absent => (Truth::Fail, None),
        // Text that is neither equal nor orderable is simply not equal.
        Expect::Eq(v) => (pass_if(cmp(v) == Some(Equal)), None),
        Expect::Ne(v) => (pass_if(cmp(v) != Some(Equal)), None),
        Expect::Ge(v) => ordered(v, |o| o != Less),
        Expect::Gt(v) => ordered(v, |o| o == Greater),
        Expect::Le(v) => ordered(v, |o| o != Greater),
        Expect::Lt(v) => ordered(v, |o| o == Less),
        Expect::In(vs) => (pass_if(vs.iter().any(|v| cmp(v) == Some(Equal))), None),
        Expect::Only(patterns) => {
            let text = match observed {
                Scalar::Text(t) => t.clone(),
                other => other.to_string(),
            };
            (pass_if(matches_any(&text, patterns)), None)
        }
        Expect::Between(low, high) => match (cmp(low), cmp(high)) {
            (Some(a), Some(b)) => (pass_if(a != Less && b != Greater), None),
            _ => unordered(),
        },
    }
}

/// A list: `eq`/`in` ask whether it holds the value, `ne` whether it lacks it.
fn judge_list(expect: &Expect, items: &[String]) -> (Truth, Option<String>) {
    let holds = |want: &Scalar| {
        items
            .iter()
            .any(|i| compare(&text_scalar(i), want) == Some(Ordering::Equal))
    };
    match expect {
        Expect::Exists => (Truth::Pass, None),
        Expect::Absent => (Truth::Fail, None),
        Expect::Eq(v) => (pass_if(holds(v)), None),
        Expect::Ne(v) => (pass_if(!holds(v)), None),
        Expect::In(vs) => (pass_if(vs.iter().any(holds)), None),
        Expect::Only(patterns) => (pass_if(items.iter().all(|i| matches_any(i, patterns))), None),
        _ => (Truth::Unknown, Some("a list cannot be ordered".into())),
    }
}

/// Whether `text` matches one of `patterns` (ASCII case ignored; `*` any run of characters).
fn matches_any(text: &str, patterns: &[Scalar]) -> bool {
    patterns.iter().any(|p| {
        let pattern = match p {
            Scalar::Text(t) => t.clone(),
            other => other.to_string(),
        };
        glob(&pattern.to_ascii_lowercase(), &text.to_ascii_lowercase())
    })
}

/// Wildcard match in O(pattern × text): on a mismatch, only the last `*` is tried again one
/// character further, so no pattern can make it blow up.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            last_star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((star, matched)) = last_star {
            pi = star + 1;
            ti = matched + 1;
            last_star = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The verdict on one registry value.
pub fn judge_registry(expect: &Expect, data: &RegData) -> (Truth, Option<String>) {
    if let RegData::MultiSz(items) = data {
        return judge_list(expect, items);
    }
    match observed_scalar(data) {
        Some(observed) => judge_scalar(expect, &observed, &data.type_name()),
        None => match expect {
            Expect::Exists => (Truth::Pass, None),
            Expect::Absent => (Truth::Fail, None),
            _ => (
                Truth::Fail,
                Some(format!("{} data cannot be compared with {expect}", data.type_name())),
            ),
        },
    }
}

fn pass_if(ok: bool) -> Truth {
    if ok {
        Truth::Pass
    } else {
        Truth::Fail
    }
}

// --- TOML --------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistryDef {
    path: String,
    /// Omitted: the condition is about the key itself (`exists` / `absent`).
    value: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceDef {
    name: String,
    property: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileDef {
    path: String,
    property: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpectDef {
    op: Op,
    value: Option<ExpectValue>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum ExpectValue {
    One(Scalar),
    Many(Vec<Scalar>),
}

/// A condition as written: exactly one of the probe keys or combinators.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConditionDef {
    pub registry: Option<RegistryDef>,
    pub service: Option<ServiceDef>,
    pub file: Option<FileDef>,
    pub fact: Option<String>,
    pub all: Option<Vec<ConditionDef>>,
    pub any: Option<Vec<ConditionDef>>,
    pub not: Option<Box<ConditionDef>>,
    pub needs: Option<String>,
    pub expect: Option<ExpectDef>,
    /// A label, e.g. the name of a bulletin's prerequisite.
    pub name: Option<String>,
}

impl ConditionDef {
    pub fn build(self) -> Result<Condition, String> {
        let kinds = [
            self.registry.is_some(),
            self.service.is_some(),
            self.file.is_some(),
            self.fact.is_some(),
            self.all.is_some(),
            self.any.is_some(),
            self.not.is_some(),
            self.needs.is_some(),
        ];
        match kinds.iter().filter(|k| **k).count() {
            1 => {}
            0 => return Err("no condition (registry, service, file, fact, all, any, not or needs)".into()),
            _ => return Err("more than one of registry, service, file, fact, all, any, not, needs".into()),
        }
        let combinator = self.all.is_some() || self.any.is_some() || self.not.is_some() || self.needs.is_some();
        if combinator {
            if self.expect.is_some() {
                return Err("`all`, `any`, `not` and `needs` take no `expect`".into());
            }
            let list = |defs: Vec<ConditionDef>, what: &str| -> Result<Vec<Condition>, String> {
                if defs.is_empty() {
                    return Err(format!("`{what}` needs at least one condition"));
                }
                defs.into_iter().map(ConditionDef::build).collect()
            };
            return Ok(match (self.all, self.any, self.not, self.needs) {
                (Some(defs), ..) => Condition::All(list(defs, "all")?),
                (_, Some(defs), ..) => Condition::Any(list(defs, "any")?),
                (_, _, Some(def), _) => Condition::Not(Box::new(def.build()?)),
                (_, _, _, Some(what)) if !what.trim().is_empty() => Condition::Needs(what),
                _ => return Err("`needs` must say which facts".into()),
            });
        }
        let Some(expect) = self.expect else {
            return Err("a probe needs an `expect`".into());
        };
        let expect = build_expect(expect)?;
        let probe = if let Some(r) = self.registry {
            registry_probe(r, &expect)?
        } else if let Some(s) = self.service {
            let property = s.property.unwrap_or_else(|| "start_mode".into());
            if !SERVICE_PROPERTIES.contains(&property.as_str()) {
                return Err(format!(
                    "service property {property:?} is not one of {SERVICE_PROPERTIES:?}"
                ));
            }
            if s.name.trim().is_empty() || s.name.contains('\\') {
                return Err(format!("service name {:?} is not a service's short name", s.name));
            }
            Probe::Service { name: s.name, property }
        } else if let Some(f) = self.file {
            let property = f.property.unwrap_or_else(|| "version".into());
            if !FILE_PROPERTIES.contains(&property.as_str()) {
                return Err(format!("file property {property:?} is not one of {FILE_PROPERTIES:?}"));
            }
            file_template_ok(&f.path)?;
            Probe::File { path: f.path, property }
        } else if let Some(name) = self.fact {
            if name.trim().is_empty() {
                return Err("empty fact name".into());
            }
            Probe::Fact(name)
        } else {
            return Err("no probe".into());
        };
        Ok(Condition::Leaf { probe, expect })
    }
}

/// A file path template: a known variable or a drive letter first.
pub(crate) fn check_file_template(path: &str) -> Result<(), String> {
    file_template_ok(path)
}

fn file_template_ok(path: &str) -> Result<(), String> {
    let head = path.split('\\').next().unwrap_or("").to_ascii_lowercase();
    let ok = matches!(
        head.as_str(),
        "%systemroot%" | "%windir%" | "%programfiles%" | "%exchangeinstallpath%"
    ) || (head.len() == 2 && head.ends_with(':') && head.as_bytes()[0].is_ascii_alphabetic());
    if ok && path.split('\\').count() >= 2 {
        Ok(())
    } else {
        Err(format!(
            "file path {path:?} must start with %SystemRoot%, %ProgramFiles%, %ExchangeInstallPath% or a drive (C:\\)"
        ))
    }
}

fn registry_probe(r: RegistryDef, expect: &Expect) -> Result<Probe, String> {
    let upper = r.path.to_ascii_uppercase();
    if !upper.starts_with("HKLM\\") && !upper.starts_with("HKEY_LOCAL_MACHINE\\") {
        return Err(format!("registry path {:?} must start with HKLM\\", r.path));
    }
    let too_long = |s: &str| s.encode_utf16().count() >= exsweep_wire::winreg::MAX_NAME_UNITS;
    if too_long(&r.path) || r.value.as_deref().is_some_and(too_long) {
        return Err("registry names are at most 16383 characters".into());
    }
    let path = normalize_key_path(&r.path);
    match r.value {
        Some(value) => Ok(Probe::Registry { path, value }),
        None if matches!(expect, Expect::Exists | Expect::Absent) => Ok(Probe::RegistryKey { path }),
        None => Err("a check on a key (no `value`) takes `exists` or `absent`".into()),
    }
}

fn build_expect(def: ExpectDef) -> Result<Expect, String> {
    let name = format!("{:?}", def.op).to_lowercase();
    let one = |v: Option<ExpectValue>| match v {
        Some(ExpectValue::One(s)) => Ok(s),
        Some(ExpectValue::Many(_)) => Err(format!("`{name}` takes one value, not a list")),
        None => Err(format!("`{name}` needs a value")),
    };
    match def.op {
        Op::Eq => one(def.value).map(Expect::Eq),
        Op::Ne => one(def.value).map(Expect::Ne),
        Op::Ge => one(def.value).map(Expect::Ge),
        Op::Gt => one(def.value).map(Expect::Gt),
        Op::Le => one(def.value).map(Expect::Le),
        Op::Lt => one(def.value).map(Expect::Lt),
        Op::In => match def.value {
            Some(ExpectValue::Many(v)) if !v.is_empty() => Ok(Expect::In(v)),
            _ => Err("`in` needs a non-empty list".into()),
        },
        Op::Between => match def.value {
            Some(ExpectValue::Many(v)) if v.len() == 2 => Ok(Expect::Between(v[0].clone(), v[1].clone())),
            _ => Err("`between` needs a list of two values, [low, high]".into()),
        },
        Op::Only => match def.value {
            Some(ExpectValue::Many(v)) if !v.is_empty() => Ok(Expect::Only(v)),
            _ => Err("`only` needs a non-empty list".into()),
        },
        Op::Exists | Op::Absent if def.value.is_some() => Err("`exists` and `absent` take no value".into()),
        Op::Exists => Ok(Expect::Exists),
        Op::Absent => Ok(Expect::Absent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Failure, FailureKind, Source};
    use crate::timefmt::Timestamp;

    fn cond(toml_text: &str) -> Result<Condition, String> {
        let def: ConditionDef = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        def.build()
    }

    fn put(facts: &mut HostFacts, name: &str, value: Value) {
        facts.insert(Fact::new(
            name,
            value,
            Source {
                transport: Transport::Derived,
                path: "t".into(),
                value: None,
                read_at: Timestamp(std::time::Duration::ZERO),
            },
        ));
    }

    fn truth(c: &str, facts: &HostFacts) -> Truth {
        judge_condition(&cond(c).unwrap(), facts).truth
    }

    #[test]
    fn facts_of_every_kind_compare() {
        let mut facts = HostFacts::default();
        put(&mut facts, "exchange.build", Value::Text("6.0.6603.1".into()));
        put(&mut facts, "os.service_pack", Value::Number(4));
        put(&mut facts, "smb.smb1_accepted", Value::Bool(false));
        put(&mut facts, "hotfix.installed", Value::List(vec!["KB870540".into()]));
        put(
            &mut facts,
            "service.IMAP4Svc.start_mode",
            Value::Text("disabled".into()),
        );
        put(&mut facts, "service.Gone.start_mode", Value::Absent);
        assert_eq!(
            truth(
                "fact = 'exchange.build'\nexpect = { op = 'ge', value = '6.0.6603.1' }",
                &facts
            ),
            Truth::Pass
        );
        assert_eq!(
            truth(
                "fact = 'exchange.build'\nexpect = { op = 'gt', value = '6.0.6603.1' }",
                &facts
            ),
            Truth::Fail
        );
        assert_eq!(
            truth(
                "fact = 'exchange.build'\nexpect = { op = 'lt', value = '6.0.6603.2' }",
                &facts
            ),
            Truth::Pass
        );
        assert_eq!(
            truth(
                "fact = 'exchange.build'\nexpect = { op = 'between', value = ['6.0.6249', '6.0.6620.15'] }",
                &facts
            ),
            Truth::Pass
        );
        assert_eq!(
            truth("fact = 'os.service_pack'\nexpect = { op = 'ge', value = 4 }", &facts),
            Truth::Pass
        );
        assert_eq!(
            truth(
                "fact = 'smb.smb1_accepted'\nexpect = { op = 'eq', value = false }",
                &facts
            ),
            Truth::Pass
        );
        assert_eq!(
            truth(
                "fact = 'smb.smb1_accepted'\nexpect = { op = 'eq', value = 'false' }",
                &facts
            ),
            Truth::Pass
        );
        assert_eq!(
            truth(
                "fact = 'hotfix.installed'\nexpect = { op = 'eq', value = 'kb870540' }",
                &facts
            ),
            Truth::Pass
        );
        assert_eq!(
            truth(
                "service = { name = 'IMAP4Svc' }\nexpect = { op = 'eq', value = 'Disabled' }",
                &facts
            ),
            Truth::Pass
        );
        // Not installed: fails everything but `absent`, `ne` included.
        assert_eq!(
            truth(
                "service = { name = 'Gone' }\nexpect = { op = 'ne', value = 'disabled' }",
                &facts
            ),
            Truth::Fail
        );
        assert_eq!(
            truth("service = { name = 'Gone' }\nexpect = { op = 'absent' }", &facts),
            Truth::Pass
        );
        assert_eq!(
            truth("fact = 'never.collected'\nexpect = { op = 'eq', value = 1 }", &facts),
            Truth::Unknown
        );
    }

    #[test]
    fn combinations_are_three_valued() {
        let mut facts = HostFacts::default();
        put(&mut facts, "a", Value::Number(1));
        put(
            &mut facts,
            "u",
            Value::Unavailable(Failure {
                kind: FailureKind::AccessDenied,
                reason: "denied".into(),
            }),
        );
        let pass = "{ fact = 'a', expect = { op = 'eq', value = 1 } }";
        let fail = "{ fact = 'a', expect = { op = 'eq', value = 2 } }";
        let unknown = "{ fact = 'u', expect = { op = 'eq', value = 1 } }";
        let t = |text: String| truth(&text, &facts);
        assert_eq!(t(format!("all = [{pass}, {unknown}]")), Truth::Unknown);
        assert_eq!(t(format!("all = [{fail}, {unknown}]")), Truth::Fail);
        assert_eq!(t(format!("all = [{pass}, {pass}]")), Truth::Pass);
        assert_eq!(t(format!("any = [{fail}, {unknown}]")), Truth::Unknown);
        assert_eq!(t(format!("any = [{pass}, {unknown}]")), Truth::Pass);
        assert_eq!(t(format!("any = [{fail}, {fail}]")), Truth::Fail);
        assert_eq!(t(format!("not = {fail}")), Truth::Pass);
        assert_eq!(t(format!("not = {unknown}")), Truth::Unknown);
        let needs = judge_condition(&cond("needs = 'ACL facts'").unwrap(), &facts);
        assert_eq!(needs.truth, Truth::Unknown);
        assert!(needs.evidence[0].contains("ACL facts"));
        let denied = judge_condition(&cond(&format!("all = [{pass}, {unknown}]")).unwrap(), &facts);
        assert!(denied.evidence.iter().any(|e| e.contains("denied")), "{denied:?}");
    }

    #[test]
    fn only_asks_that_every_item_match_a_pattern() {
        let only = Expect::Only(vec![
            Scalar::Text("S-1-5-18".into()),
            Scalar::Text("S-1-5-21-*-512".into()),
        ]);
        let sids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            judge_list(&only, &sids(&["S-1-5-18", "S-1-5-21-1-2-3-512"])).0,
            Truth::Pass
        );
        assert_eq!(judge_list(&only, &sids(&["S-1-5-18", "S-1-1-0"])).0, Truth::Fail);
        assert_eq!(judge_list(&only, &sids(&["S-1-5-21-1-2-3-513"])).0, Truth::Fail);
        // An empty DACL grants nobody anything: limited, trivially.
        assert_eq!(judge_list(&only, &[]).0, Truth::Pass);
        assert_eq!(
            judge_scalar(&only, &Scalar::Text("s-1-5-18".into()), "text").0,
            Truth::Pass
        );
        assert!(glob("a*b*c", "axxbyyc") && !glob("a*b", "ab-") && glob("*", "") && glob("*-512", "x-512"));
        // Many stars against a long text: linear work, no blow-up.
        assert!(!glob(&"*1".repeat(20), &"1".repeat(19)));
        assert!(glob(&"*1".repeat(20), &"1".repeat(200)));
        assert!(cond("fact = 'a'\nexpect = { op = 'only', value = [] }")
            .unwrap_err()
            .contains("non-empty"));
    }

    #[test]
    fn malformed_conditions_say_what_is_wrong() {
        let err = |text: &str| cond(text).unwrap_err();
        assert!(err("expect = { op = 'eq', value = 1 }").contains("no condition"));
        assert!(
            err("fact = 'a'\nservice = { name = 'x' }\nexpect = { op = 'eq', value = 1 }").contains("more than one")
        );
        assert!(err("fact = 'a'").contains("needs an `expect`"));
        assert!(err("all = []").contains("at least one"));
        assert!(err("needs = 'x'\nexpect = { op = 'exists' }").contains("no `expect`"));
        assert!(err("service = { name = 'x', property = 'colour' }\nexpect = { op = 'exists' }").contains("colour"));
        assert!(err("file = { path = 'store.exe' }\nexpect = { op = 'exists' }").contains("must start with"));
        assert!(err("fact = 'a'\nexpect = { op = 'between', value = [1] }").contains("two values"));
        assert!(err("registry = { path = 'HKCU\\X', value = 'v' }\nexpect = { op = 'exists' }").contains("HKLM"));
        assert!(err("fact = 'a'\nexpect = { op = 'eq', value = 1, extra = 2 }").contains("unknown field"));
    }

    #[test]
    fn multi_string_values_are_membership_tests() {
        let list = RegData::MultiSz(vec!["IMAP4Svc".into(), "POP3Svc".into()]);
        assert_eq!(
            judge_registry(&Expect::Eq(Scalar::Text("pop3svc".into())), &list).0,
            Truth::Pass
        );
        assert_eq!(
            judge_registry(&Expect::Ne(Scalar::Text("POP3Svc".into())), &list).0,
            Truth::Fail
        );
        assert_eq!(judge_registry(&Expect::Ge(Scalar::Int(1)), &list).0, Truth::Unknown);
        let numbers = RegData::MultiSz(vec!["4".into()]);
        assert_eq!(
            judge_registry(&Expect::In(vec![Scalar::Int(3), Scalar::Int(4)]), &numbers).0,
            Truth::Pass
        );
    }

    #[test]
    fn text_that_is_not_a_version_has_no_order() {
        let text = RegData::Sz("6.0.6249 SP3".into());
        let (truth, note) = judge_registry(&Expect::Ge(Scalar::Text("6.0.6249".into())), &text);
        assert_eq!(truth, Truth::Fail);
        assert!(note.unwrap().contains("not comparable"));
        assert_eq!(
            judge_registry(&Expect::Ne(Scalar::Text("x".into())), &text).0,
            Truth::Pass
        );
        assert_eq!(
            judge_registry(&Expect::Eq(Scalar::Text("6.0.6249 sp3".into())), &text).0,
            Truth::Pass
        );
        assert_eq!(
            compare(&Scalar::Text("6.0.6249".into()), &Scalar::Text("6.0.6249.0".into())),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn huge_values_are_cut_in_reports() {
        let shown = display(&RegData::Binary(vec![0xab; 10_000]));
        assert!(
            shown.starts_with("abab") && shown.ends_with("(20000 chars in all)"),
            "{}",
            &shown[shown.len() - 30..]
        );
    }
}
