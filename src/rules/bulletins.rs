//! The MBSA-style bulletin catalog: bulletins with the products and levels they affect, their
//! fixed files and registry indicators, and (for Exchange 2013 and later) CVEs with the
//! security updates that fix them; and the verdict on each for one host, judged as the
//! Microsoft Baseline Security Analyzer judged it. Loading is strict; judging is pure.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::condition::{compare, judge_condition, Condition, ConditionDef, Scalar, Truth};
use super::Severity;
use crate::builds::{self, Build, BuildRow};
use crate::facts::{normalize_key_path, HostFacts, Value};

/// Where MBSA's update indicator keys live; `updates.indicators` lists them relative to it.
const UPDATES_PREFIX: &str = r"HKLM\SOFTWARE\Microsoft\Updates\";

/// A product line a bulletin concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    Exchange,
    Windows,
}

/// A fixed file and the lowest version that carries the fix.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedFile {
    pub path: String,
    pub version: String,
}

/// A prerequisite: without it the update cannot be installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub name: String,
    pub condition: Condition,
}

/// One product line a bulletin affects, with how its fix is detected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affects {
    pub product: Product,
    pub generation: String,
    pub levels: Vec<String>,
    pub condition: Option<Condition>,
    pub requires: Option<Requirement>,
    /// Normalized `HKLM\SOFTWARE\Microsoft\Updates\...` key.
    pub indicator: Option<String>,
    pub files: Vec<FixedFile>,
}

/// A product line a bulletin says it does not affect (so it is shown as not applicable).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotAffected {
    pub product: Product,
    pub generation: String,
}

/// A security bulletin.
#[derive(Debug, Clone)]
pub struct Bulletin {
    pub id: String,
    pub kb: String,
    pub title: String,
    pub severity: Severity,
    pub published: String,
    pub cves: Vec<String>,
    pub source: String,
    pub supersedes: Vec<String>,
    pub notes: String,
    pub affects: Vec<Affects>,
    pub not_affected: Vec<NotAffected>,
    pub file: PathBuf,
    pub line: usize,
}

/// A CVE of Exchange 2013 and later, fixed by named security updates.
#[derive(Debug, Clone)]
pub struct Cve {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub source: String,
    pub fixed_by: Vec<String>,
    pub generations: Vec<String>,
    pub config: Option<String>,
    pub file: PathBuf,
    pub line: usize,
}

/// The verdict on one bulletin or CVE for one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    NotApplicable,
    Installed,
    Superseded,
    Missing,
    Mismatch,
    ConfigRequired,
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NotApplicable => "not-applicable",
            Verdict::Installed => "installed",
            Verdict::Superseded => "superseded",
            Verdict::Missing => "missing",
            Verdict::Mismatch => "mismatch",
            Verdict::ConfigRequired => "config-required",
            Verdict::Unknown => "unknown",
        }
    }
}

/// A verdict with what it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub verdict: Verdict,
    pub expected: String,
    pub observed: String,
    pub evidence: String,
}

impl Judged {
    fn new(verdict: Verdict, expected: String, observed: String, evidence: impl Into<String>) -> Judged {
        Judged {
            verdict,
            expected,
            observed,
            evidence: evidence.into(),
        }
    }
}

// --- loading -------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulletinFileDef {
    #[serde(default)]
    pub bulletin: Vec<toml::Spanned<BulletinDef>>,
    #[serde(default)]
    pub cve: Vec<toml::Spanned<CveDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulletinDef {
    id: String,
    #[serde(default)]
    kb: String,
    title: String,
    severity: Severity,
    #[serde(default)]
    published: String,
    #[serde(default)]
    cves: Vec<String>,
    #[serde(default)]
    source: String,
    #[serde(default)]
    supersedes: Vec<String>,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    affects: Vec<AffectsDef>,
    #[serde(default)]
    not_affected: Vec<NotAffected>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AffectsDef {
    product: Product,
    generation: String,
    #[serde(default)]
    levels: Vec<String>,
    condition: Option<ConditionDef>,
    requires: Option<ConditionDef>,
    indicator: Option<String>,
    #[serde(default)]
    files: Vec<FixedFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CveDef {
    id: String,
    title: String,
    severity: Severity,
    #[serde(default)]
    source: String,
    fixed_by: Vec<String>,
    generations: Vec<String>,
    config: Option<String>,
}

/// Configuration a CVE's fix may need, and the fact that says it is in place.
pub const CONFIG_FACTS: [(&str, &str); 1] = [("extended-protection", "exchange.extended_protection")];

impl BulletinDef {
    pub(crate) fn build(self, file: &Path, line: usize) -> Result<Bulletin, String> {
        if self.id.trim().is_empty() {
            return Err("bulletin with an empty id".into());
        }
        let mut affects = Vec::with_capacity(self.affects.len());
        for a in self.affects {
            let condition = a
                .condition
                .map(ConditionDef::build)
                .transpose()
                .map_err(|e| format!("condition: {e}"))?;
            let requires = match a.requires {
                Some(def) => {
                    let name = def.name.clone().ok_or("`requires` needs a `name`")?;
                    Some(Requirement {
                        name,
                        condition: def.build().map_err(|e| format!("requires: {e}"))?,
                    })
                }
                None => None,
            };
            let indicator = match a.indicator {
                Some(path) => {
                    let normalized = normalize_key_path(&path);
                    if !normalized
                        .to_ascii_uppercase()
                        .starts_with(&UPDATES_PREFIX.to_ascii_uppercase())
                    {
                        return Err(format!("indicator {path:?} is not under {UPDATES_PREFIX}"));
                    }
                    Some(normalized)
                }
                None => None,
            };
            for f in &a.files {
                if Build::parse(&f.version).is_none() {
                    return Err(format!("file {:?}: version {:?} is not a.b.c.d", f.path, f.version));
                }
            }
            affects.push(Affects {
                product: a.product,
                generation: a.generation,
                levels: a.levels,
                condition,
                requires,
                indicator,
                files: a.files,
            });
        }
        Ok(Bulletin {
            id: self.id,
            kb: self.kb,
            title: self.title,
            severity: self.severity,
            published: self.published,
            cves: self.cves,
            source: self.source,
            supersedes: self.supersedes,
            notes: self.notes,
            affects,
            not_affected: self.not_affected,
            file: file.to_owned(),
            line,
        })
    }
}

impl CveDef {
    pub(crate) fn build(self, file: &Path, line: usize) -> Result<Cve, String> {
        if self.fixed_by.is_empty() {
            return Err("`fixed_by` names no update".into());
        }
        if let Some(c) = &self.config {
            if !CONFIG_FACTS.iter().any(|(name, _)| name == c) {
                return Err(format!("config {c:?} is not one of {:?}", CONFIG_FACTS.map(|(n, _)| n)));
            }
        }
        Ok(Cve {
            id: self.id,
            title: self.title,
            severity: self.severity,
            source: self.source,
            fixed_by: self.fixed_by,
            generations: self.generations,
            config: self.config,
            file: file.to_owned(),
            line,
        })
    }
}

// --- judging -------------------------------------------------------------------------------

fn text_fact<'a>(facts: &'a HostFacts, name: &str) -> Result<Option<&'a str>, String> {
    match facts.get(name).map(|f| &f.value) {
        None | Some(Value::Absent) => Ok(None),
        Some(Value::Text(t)) => Ok(Some(t)),
        Some(Value::Unavailable(f)) => Err(format!("{name}: {f}")),
        Some(other) => Err(format!("{name}: unexpected {other:?}")),
    }
}

/// The host's generation and level in a product line, or why they are not known.
fn product_line(product: Product, facts: &HostFacts) -> Result<Option<(String, String)>, String> {
    match product {
        Product::Exchange => {
            match facts.get("exchange.installed").map(|f| &f.value) {
                Some(Value::Bool(true)) => {}
                Some(Value::Bool(false)) => return Ok(None),
                Some(Value::Unavailable(f)) => return Err(format!("exchange.installed: {f}")),
                _ => return Err("exchange.installed was not collected".into()),
            }
            let generation = text_fact(facts, "exchange.generation")?.ok_or("Exchange generation not known")?;
            let level = text_fact(facts, "exchange.level")?.unwrap_or("");
            Ok(Some((generation.to_owned(), level.to_owned())))
        }
        Product::Windows => {
            let Some(product) = text_fact(facts, "os.product")? else {
                return Err("os.product was not collected".into());
            };
            let level = match facts.get("os.service_pack").map(|f| &f.value) {
                Some(Value::Number(0)) => "RTM".to_owned(),
                Some(Value::Number(n)) => format!("SP{n}"),
                Some(Value::Unavailable(f)) => return Err(format!("os.service_pack: {f}")),
                _ => String::new(),
            };
            Ok(Some((product.to_owned(), level)))
        }
    }
}

fn product_name(product: Product, generation: &str) -> String {
    match product {
        Product::Exchange => format!("Exchange {generation}"),
        Product::Windows => generation.to_owned(),
    }
}

/// Whether the host runs a product line the bulletin mentions at all (affected or explicitly
/// not): only such bulletins get a row for the host.
pub fn concerns_host(bulletin: &Bulletin, facts: &HostFacts) -> bool {
    let lines = bulletin
        .affects
        .iter()
        .map(|a| (a.product, a.generation.as_str()))
        .chain(bulletin.not_affected.iter().map(|n| (n.product, n.generation.as_str())));
    let mut unknown = false;
    for (product, generation) in lines {
        match product_line(product, facts) {
            Ok(Some((g, _))) if g.eq_ignore_ascii_case(generation) => return true,
            Ok(_) => {}
            Err(_) => unknown = true,
        }
    }
    // When the host's products are unknown the row is kept, so the reason shows.
    unknown
}

/// Whether the update the indicator names is recorded in `updates.indicators`.
fn indicator_present(indicator: &str, facts: &HostFacts) -> Result<bool, String> {
    let relative = &indicator[UPDATES_PREFIX.len().min(indicator.len())..];
    match facts.get("updates.indicators").map(|f| &f.value) {
        Some(Value::List(entries)) => Ok(entries.iter().any(|e| {
            e.eq_ignore_ascii_case(relative)
                || (e.len() > relative.len()
                    && e.as_bytes()[relative.len()] == b'\\'
                    && e[..relative.len()].eq_ignore_ascii_case(relative))
        })),
        Some(Value::Unavailable(f)) => Err(format!("updates.indicators: {f}")),
        _ => Err("updates.indicators was not collected".into()),
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('\\').next().unwrap_or(path)
}

/// A fixed file on the host: `Some(version)`, `None` when absent, or why it is not known.
fn file_version(file: &FixedFile, facts: &HostFacts) -> Result<Option<String>, String> {
    let name = format!("file.{}.version", file.path);
    match facts.get(&name).map(|f| &f.value) {
        Some(Value::Text(v)) => Ok(Some(v.clone())),
        Some(Value::Absent) => match facts.get(&format!("file.{}.exists", file.path)).map(|f| &f.value) {
            Some(Value::Bool(true)) => Err(format!("{} has no version resource", file.path)),
            _ => Ok(None),
        },
        Some(Value::Unavailable(f)) => Err(format!("{}: {f}", file.path)),
        _ => Err(format!("{} was not collected", file.path)),
    }
}

/// How bad a verdict is, for combining the product lines of one bulletin: a line where the
/// fix is missing makes the bulletin missing, whatever the other lines say.
fn badness(v: Verdict) -> u8 {
    match v {
        Verdict::NotApplicable => 0,
        Verdict::Installed | Verdict::Superseded => 1,
        Verdict::Unknown => 2,
        Verdict::ConfigRequired => 3,
        Verdict::Missing | Verdict::Mismatch => 4,
    }
}

/// The verdict on one bulletin, before supersedence is taken into account. Every product
/// line of the host the bulletin affects is judged; the worst verdict wins.
pub fn judge_bulletin(bulletin: &Bulletin, facts: &HostFacts) -> Judged {
    let mut unknown: Vec<String> = Vec::new();
    let mut not_matching: Vec<String> = Vec::new();
    let mut judged: Vec<Judged> = Vec::new();
    for affects in &bulletin.affects {
        let (generation, level) = match product_line(affects.product, facts) {
            Ok(Some(line)) => line,
            Ok(None) => {
                not_matching.push(format!(
                    "{} not installed",
                    product_name(affects.product, &affects.generation)
                ));
                continue;
            }
            Err(reason) => {
                unknown.push(reason);
                continue;
            }
        };
        let product = product_name(affects.product, &affects.generation);
        if !generation.eq_ignore_ascii_case(&affects.generation) {
            not_matching.push(format!("not {product}"));
            continue;
        }
        if !affects.levels.is_empty() && !affects.levels.iter().any(|l| l.eq_ignore_ascii_case(&level)) {
            not_matching.push(format!(
                "{product} {level} is not affected (affected: {})",
                affects.levels.join(", ")
            ));
            continue;
        }
        if let Some(condition) = &affects.condition {
            let outcome = judge_condition(condition, facts);
            match outcome.truth {
                Truth::Pass => {}
                Truth::Fail => {
                    not_matching.push(format!("condition not met: {}", condition.expected()));
                    continue;
                }
                Truth::Unknown => {
                    unknown.push(outcome.evidence.join("; "));
                    continue;
                }
            }
        }
        judged.push(judge_fix(affects, &format!("{product} {level}"), facts));
    }
    if let Some(worst) = judged.iter().map(|j| j.verdict).max_by_key(|v| badness(*v)) {
        // Unknown product lines still count: they could hide a missing fix.
        let verdict = if badness(worst) < badness(Verdict::Unknown) && !unknown.is_empty() {
            Verdict::Unknown
        } else {
            worst
        };
        let join = |f: fn(&Judged) -> &str| {
            judged
                .iter()
                .map(f)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" | ")
        };
        let mut evidence = join(|j| j.evidence.as_str());
        if !unknown.is_empty() {
            evidence.push_str(&format!(" | {}", unknown.join("; ")));
        }
        return Judged::new(
            verdict,
            join(|j| j.expected.as_str()),
            join(|j| j.observed.as_str()),
            evidence,
        );
    }
    let expected = "applies to the host".to_owned();
    if !unknown.is_empty() {
        return Judged::new(Verdict::Unknown, expected, String::new(), unknown.join("; "));
    }
    if bulletin.affects.is_empty() {
        let named: Vec<String> = bulletin
            .not_affected
            .iter()
            .map(|n| product_name(n.product, &n.generation))
            .collect();
        let why = if named.is_empty() {
            "the bulletin affects none of the catalogued products".to_owned()
        } else {
            format!("the bulletin lists {} as not affected", named.join(", "))
        };
        return Judged::new(Verdict::NotApplicable, expected, String::new(), why);
    }
    Judged::new(Verdict::NotApplicable, expected, String::new(), not_matching.join("; "))
}

/// The fix on an affected product line: files, indicator, prerequisite.
fn judge_fix(affects: &Affects, on: &str, facts: &HostFacts) -> Judged {
    let expected = if affects.files.is_empty() {
        match &affects.indicator {
            Some(i) => format!("indicator {i}"),
            None => "a fix detectable remotely".to_owned(),
        }
    } else {
        let files: Vec<String> = affects
            .files
            .iter()
            .map(|f| format!("{} >= {}", file_name(&f.path), f.version))
            .collect();
        files.join(", ")
    };
    let indicator = affects.indicator.as_deref().map(|i| indicator_present(i, facts));
    let requirement = affects
        .requires
        .as_ref()
        .map(|r| (r, judge_condition(&r.condition, facts)));

    let mut observed = Vec::new();
    let mut evidence = vec![format!("applies: {on}")];
    let mut unknown = Vec::new();
    let mut older = Vec::new();
    let mut present = 0;
    for f in &affects.files {
        match file_version(f, facts) {
            Ok(Some(v)) => {
                present += 1;
                observed.push(format!("{} {v}", file_name(&f.path)));
                let ok = compare(&Scalar::Text(v.clone()), &Scalar::Text(f.version.clone()));
                match ok {
                    Some(std::cmp::Ordering::Less) => older.push(format!("{} {v} < {}", file_name(&f.path), f.version)),
                    Some(_) => {}
                    None => unknown.push(format!("{} version {v:?} cannot be compared", f.path)),
                }
            }
            Ok(None) => observed.push(format!("{} absent", file_name(&f.path))),
            Err(reason) => unknown.push(reason),
        }
    }
    match &indicator {
        Some(Ok(true)) => observed.push("indicator present".into()),
        Some(Ok(false)) => observed.push("indicator absent".into()),
        Some(Err(_)) | None => {}
    }
    let observed = observed.join("; ");
    // A file that could not be read makes the verdict unknown, unless another is shown older.
    if !unknown.is_empty() && older.is_empty() {
        evidence.extend(unknown);
        return Judged::new(Verdict::Unknown, expected, observed, evidence.join("; "));
    }
    evidence.extend(unknown);
    let prerequisite_missing = match &requirement {
        Some((r, outcome)) if outcome.truth == Truth::Fail => Some(format!("prerequisite {} missing", r.name)),
        _ => None,
    };
    if !affects.files.is_empty() {
        if present == 0 {
            evidence.push("no fixed file is present: the component is not installed".into());
            return Judged::new(Verdict::NotApplicable, expected, observed, evidence.join("; "));
        }
        if older.is_empty() {
            evidence.push("every fixed file present is at or above its version".into());
            return Judged::new(Verdict::Installed, expected, observed, evidence.join("; "));
        }
        evidence.push(format!("older: {}", older.join(", ")));
        if let Some(p) = prerequisite_missing {
            evidence.push(p);
            return Judged::new(Verdict::Missing, expected, observed, evidence.join("; "));
        }
        return match indicator {
            Some(Ok(true)) => {
                evidence.push("the update is recorded but its files were not replaced".into());
                Judged::new(Verdict::Mismatch, expected, observed, evidence.join("; "))
            }
            _ => Judged::new(Verdict::Missing, expected, observed, evidence.join("; ")),
        };
    }
    match indicator {
        Some(Ok(true)) => {
            evidence.push("the update's indicator key exists".into());
            Judged::new(Verdict::Installed, expected, observed, evidence.join("; "))
        }
        Some(Ok(false)) => {
            evidence.extend(prerequisite_missing);
            evidence.push("no indicator key".into());
            Judged::new(Verdict::Missing, expected, observed, evidence.join("; "))
        }
        Some(Err(reason)) => {
            evidence.push(reason);
            Judged::new(Verdict::Unknown, expected, observed, evidence.join("; "))
        }
        None => {
            evidence.push("the fix leaves neither files nor a registry indicator to check (manual steps)".into());
            Judged::new(Verdict::Unknown, expected, observed, evidence.join("; "))
        }
    }
}

/// Whether the CVE concerns the host at all (an Exchange of one of its generations).
pub fn cve_concerns_host(cve: &Cve, facts: &HostFacts) -> bool {
    match product_line(Product::Exchange, facts) {
        Ok(Some((generation, _))) => cve.generations.iter().any(|g| g.eq_ignore_ascii_case(&generation)),
        Ok(None) => false,
        // Not known whether or which Exchange runs: the row stays, saying why.
        Err(_) => true,
    }
}

/// The verdict on one CVE: the host's build against the fixed build for its CU.
pub fn judge_cve(cve: &Cve, facts: &HostFacts, table: &[BuildRow]) -> Judged {
    let expected_generic = format!("build with {}", cve.fixed_by.join(" or "));
    let (generation, level) = match product_line(Product::Exchange, facts) {
        Ok(Some(line)) => line,
        Ok(None) => {
            return Judged::new(
                Verdict::NotApplicable,
                expected_generic,
                String::new(),
                "Exchange not installed",
            )
        }
        Err(reason) => return Judged::new(Verdict::Unknown, expected_generic, String::new(), reason),
    };
    if !cve.generations.iter().any(|g| g.eq_ignore_ascii_case(&generation)) {
        return Judged::new(
            Verdict::NotApplicable,
            expected_generic,
            String::new(),
            format!("Exchange {generation} is not affected"),
        );
    }
    let build = match text_fact(facts, "exchange.build") {
        Ok(Some(b)) => match Build::parse(b) {
            Some(b) => b,
            None => {
                return Judged::new(
                    Verdict::Unknown,
                    expected_generic,
                    b.to_owned(),
                    "exchange.build is not a version",
                )
            }
        },
        Ok(None) => {
            return Judged::new(
                Verdict::Unknown,
                expected_generic,
                String::new(),
                "exchange.build was not collected",
            )
        }
        Err(reason) => return Judged::new(Verdict::Unknown, expected_generic, String::new(), reason),
    };
    let observed = format!("{build} ({level})");
    let build_source = facts
        .get("exchange.build")
        .map_or(String::new(), |f| f.source.path.clone());
    let same_cu =
        |r: &&BuildRow| r.generation.eq_ignore_ascii_case(&generation) && r.level.eq_ignore_ascii_case(&level);
    // The first update of `fixed_by`, in the catalog's order, that this CU received.
    let fixed = cve
        .fixed_by
        .iter()
        .find_map(|u| table.iter().filter(same_cu).find(|r| u.eq_ignore_ascii_case(&r.update)));
    let (verdict, expected, mut why) = match fixed {
        Some(row) => {
            let expected = format!(">= {} ({} {})", row.build, row.level, row.update);
            if build >= row.build {
                (
                    Verdict::Installed,
                    expected,
                    format!("{build} is at or above the {} build for {level}", row.update),
                )
            } else {
                (
                    Verdict::Missing,
                    expected,
                    format!("{build} is below the {} build {} for {level}", row.update, row.build),
                )
            }
        }
        None => {
            // The CU never got the update: a CU newer than every build that carries it
            // contains the fix; an older one was out of support by then.
            let carriers = table
                .iter()
                .filter(|r| r.generation.eq_ignore_ascii_case(&generation))
                .filter(|r| cve.fixed_by.iter().any(|u| u.eq_ignore_ascii_case(&r.update)))
                .map(|r| r.build)
                .max();
            match carriers {
                // A fix that also needs configuration is judged on that even here.
                Some(newest) if build > newest && cve.config.is_some() => (
                    Verdict::Installed,
                    expected_generic.clone(),
                    format!(
                        "{level} is newer than every build of {} ({newest}) and contains the fix",
                        cve.fixed_by.join("/")
                    ),
                ),
                Some(newest) if build > newest => {
                    return Judged::new(
                        Verdict::NotApplicable,
                        expected_generic,
                        observed,
                        format!(
                            "{level} is newer than every build of {} ({newest}) and contains the fix ({build_source})",
                            cve.fixed_by.join("/")
                        ),
                    )
                }
                Some(_) => (
                    Verdict::Missing,
                    expected_generic.clone(),
                    format!(
                        "{level} never received {}: move to a supported CU and its latest SU",
                        cve.fixed_by.join("/")
                    ),
                ),
                None => {
                    return Judged::new(
                        Verdict::Unknown,
                        expected_generic,
                        observed,
                        format!(
                            "no build of {} for Exchange {generation} in builds/exchange.csv",
                            cve.fixed_by.join("/")
                        ),
                    )
                }
            }
        }
    };
    if verdict == Verdict::Installed {
        if let Some(config) = &cve.config {
            let fact = CONFIG_FACTS.iter().find(|(n, _)| n == config).map_or("", |(_, f)| *f);
            let configured = matches!(facts.get(fact).map(|f| &f.value), Some(Value::Bool(true)));
            if !configured {
                let state = match facts.get(fact).map(|f| &f.value) {
                    Some(Value::Bool(false)) => "is off".to_owned(),
                    Some(Value::Unavailable(f)) => format!("could not be read ({f})"),
                    _ => "was not collected".to_owned(),
                };
                why.push_str(&format!("; the fix also needs {config}, and {fact} {state}"));
                return Judged::new(
                    Verdict::ConfigRequired,
                    expected,
                    observed,
                    format!("{why} ({build_source})"),
                );
            }
        }
    }
    Judged::new(verdict, expected, observed, format!("{why} ({build_source})"))
}

/// The verdicts of every bulletin that concerns the host, supersedence applied: a bulletin
/// not installed whose fix a superseding bulletin (directly or through others) brings is
/// `superseded`.
pub fn judge_bulletins<'a>(bulletins: &'a [Bulletin], facts: &HostFacts) -> Vec<(&'a Bulletin, Judged)> {
    let mut judged: Vec<(&Bulletin, Judged)> = bulletins
        .iter()
        .filter(|b| concerns_host(b, facts))
        .map(|b| (b, judge_bulletin(b, facts)))
        .collect();
    let installed: Vec<&str> = judged
        .iter()
        .filter(|(_, j)| j.verdict == Verdict::Installed)
        .map(|(b, _)| b.id.as_str())
        .collect();
    for i in 0..judged.len() {
        if !matches!(judged[i].1.verdict, Verdict::Missing | Verdict::Mismatch) {
            continue;
        }
        let id = judged[i].0.id.clone();
        if let Some(by) = superseded_by_installed(bulletins, &id, &installed) {
            let j = &mut judged[i].1;
            j.evidence = format!("{}; superseded by {by}, which is installed", j.evidence);
            j.verdict = Verdict::Superseded;
        }
    }
    judged
}

/// An installed bulletin that supersedes `id`, directly or through a chain.
fn superseded_by_installed(bulletins: &[Bulletin], id: &str, installed: &[&str]) -> Option<String> {
    let mut frontier = vec![id.to_owned()];
    let mut seen = vec![id.to_owned()];
    while let Some(current) = frontier.pop() {
        for b in bulletins
            .iter()
            .filter(|b| b.supersedes.iter().any(|s| s.eq_ignore_ascii_case(&current)))
        {
            if installed.contains(&b.id.as_str()) {
                return Some(b.id.clone());
            }
            if !seen.contains(&b.id) {
                seen.push(b.id.clone());
                frontier.push(b.id.clone());
            }
        }
    }
    None
}

/// The fixed files of every bulletin whose product line and level match the host (the files
/// a scan must read for the verdicts), in catalog order, once each.
pub fn files_for_host(bulletins: &[Bulletin], facts: &HostFacts) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    for affects in bulletins.iter().flat_map(|b| b.affects.iter()) {
        let Ok(Some((generation, level))) = product_line(affects.product, facts) else {
            continue;
        };
        let level_matches = affects.levels.is_empty() || affects.levels.iter().any(|l| l.eq_ignore_ascii_case(&level));
        if !generation.eq_ignore_ascii_case(&affects.generation) || !level_matches {
            continue;
        }
        for f in &affects.files {
            if !files.iter().any(|known| known.eq_ignore_ascii_case(&f.path)) {
                files.push(f.path.clone());
            }
        }
    }
    files
}

/// Every probe of the bulletins' applicability conditions and prerequisites.
pub fn probes(bulletins: &[Bulletin]) -> Vec<&super::condition::Probe> {
    bulletins
        .iter()
        .flat_map(|b| b.affects.iter())
        .flat_map(|a| a.condition.iter().chain(a.requires.iter().map(|r| &r.condition)))
        .flat_map(Condition::probes)
        .collect()
}

/// The build table the CVE verdicts use.
pub fn build_table() -> &'static [BuildRow] {
    builds::exchange_builds()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Fact, Failure, FailureKind, Source, Transport};
    use crate::rules::Catalog;
    use crate::timefmt::Timestamp;

    /// Real bulletins, cut to what the verdicts need (MS05-021, MS03-046 and MS06-019 as in
    /// their bulletins; MS04-036 with its NNTP condition).
    const BULLETINS: &str = r#"
[[bulletin]]
id = "MS03-046"
kb = "KB829436"
title = "SMTP extended verb"
severity = "critical"
source = "MS03-046"
[[bulletin.affects]]
product = "exchange"
generation = "2000"
levels = ["SP3"]
indicator = 'HKLM\SOFTWARE\Microsoft\Updates\Exchange Server 2000\SP4\829436'

[[bulletin]]
id = "MS05-021"
kb = "KB894549"
title = "SMTP link state"
severity = "critical"
source = "MS05-021"
[[bulletin.affects]]
product = "exchange"
generation = "2000"
levels = ["SP3"]
requires = { name = "post-SP3 rollup KB870540", fact = "exchange.build", expect = { op = "ge", value = "6.0.6603.1" } }
indicator = 'HKLM\SOFTWARE\Microsoft\Updates\Exchange Server 2000\SP4\KB894549'
files = [
  { path = '%ExchangeInstallPath%\bin\reapi.dll', version = "6.0.6617.52" },
  { path = '%ExchangeInstallPath%\bin\resvc.dll', version = "6.0.6617.52" },
]

[[bulletin]]
id = "MS06-019"
kb = "KB916803"
title = "vCal"
severity = "critical"
source = "MS06-019"
supersedes = ["MS03-046"]
[[bulletin.affects]]
product = "exchange"
generation = "2000"
levels = ["SP3"]
indicator = 'HKLM\SOFTWARE\Microsoft\Updates\Exchange Server 2000\SP4\KB916803'

[[bulletin]]
id = "MS04-036"
kb = "KB883935"
title = "NNTP"
severity = "high"
source = "MS04-036"
[[bulletin.affects]]
product = "windows"
generation = "Windows 2000"
levels = ["SP4"]
condition = { service = { name = "NntpSvc" }, expect = { op = "ne", value = "disabled" } }
indicator = 'HKLM\SOFTWARE\Microsoft\Updates\Windows 2000\SP5\KB883935'

[[bulletin]]
id = "MS04-002"
title = "Exchange 2003 only"
severity = "high"
source = "MS04-002"
not_affected = [{ product = "exchange", generation = "2000" }]

[[cve]]
id = "CVE-2021-26855"
title = "ProxyLogon"
severity = "critical"
source = "t"
fixed_by = ["Mar21SU"]
generations = ["2019"]

[[cve]]
id = "CVE-2022-24516"
title = "needs Extended Protection"
severity = "critical"
source = "t"
fixed_by = ["Aug22SU"]
generations = ["2019"]
config = "extended-protection"
"#;

    fn catalog() -> Catalog {
        Catalog::assemble(std::iter::empty(), [(Path::new("b.toml"), BULLETINS)]).unwrap()
    }

    fn put(facts: &mut HostFacts, name: &str, value: Value) {
        let source = Source {
            transport: Transport::Derived,
            path: "fixture".into(),
            value: None,
            read_at: Timestamp(std::time::Duration::ZERO),
        };
        facts.insert(Fact::new(name, value, source));
    }

    fn e2k(level: &str, build: &str, files: &str, indicators: &[&str]) -> HostFacts {
        let mut facts = HostFacts::default();
        put(&mut facts, "exchange.installed", Value::Bool(true));
        put(&mut facts, "exchange.generation", Value::Text("2000".into()));
        put(&mut facts, "exchange.level", Value::Text(level.into()));
        put(&mut facts, "exchange.build", Value::Text(build.into()));
        put(&mut facts, "os.product", Value::Text("Windows 2000".into()));
        put(&mut facts, "os.service_pack", Value::Number(4));
        put(
            &mut facts,
            "service.NntpSvc.start_mode",
            Value::Text("automatic".into()),
        );
        for f in [
            r"%ExchangeInstallPath%\bin\reapi.dll",
            r"%ExchangeInstallPath%\bin\resvc.dll",
        ] {
            put(&mut facts, &format!("file.{f}.exists"), Value::Bool(true));
            put(&mut facts, &format!("file.{f}.version"), Value::Text(files.into()));
        }
        let entries = indicators.iter().map(|s| s.to_string()).collect();
        put(&mut facts, "updates.indicators", Value::List(entries));
        facts
    }

    fn verdicts(facts: &HostFacts) -> Vec<(String, Verdict)> {
        let cat = catalog();
        let mut out: Vec<(String, Verdict)> = judge_bulletins(&cat.bulletins, facts)
            .into_iter()
            .map(|(b, j)| (b.id.clone(), j.verdict))
            .collect();
        out.extend(
            cat.cves
                .iter()
                .filter(|c| cve_concerns_host(c, facts))
                .map(|c| (c.id.clone(), judge_cve(c, facts, build_table()).verdict)),
        );
        out
    }

    fn verdict(facts: &HostFacts, id: &str) -> Verdict {
        verdicts(facts)
            .into_iter()
            .find(|(i, _)| i == id)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no row for {id}"))
    }

    #[test]
    fn files_and_indicators_give_mbsas_verdicts() {
        // SP3 + rollup, fixed files, indicator present: installed.
        let patched = e2k(
            "SP3",
            "6.0.6617.52",
            "6.0.6617.52",
            &[r"Exchange Server 2000\SP4\KB894549"],
        );
        assert_eq!(verdict(&patched, "MS05-021"), Verdict::Installed);
        // Old files, no indicator: missing.
        let old = e2k("SP3", "6.0.6603.1", "6.0.6603.1", &[]);
        assert_eq!(verdict(&old, "MS05-021"), Verdict::Missing);
        // Old files, indicator present: the update was recorded, its files not replaced.
        let recorded = e2k(
            "SP3",
            "6.0.6603.1",
            "6.0.6603.1",
            &[r"Exchange Server 2000\SP4\KB894549\Filelist"],
        );
        assert_eq!(verdict(&recorded, "MS05-021"), Verdict::Mismatch);
        // Below the rollup: missing, and the evidence names the prerequisite.
        let no_rollup = e2k("SP3", "6.0.6249.0", "6.0.6249.0", &[]);
        let cat = catalog();
        let judged = judge_bulletin(cat.bulletins.iter().find(|b| b.id == "MS05-021").unwrap(), &no_rollup);
        assert_eq!(judged.verdict, Verdict::Missing);
        assert!(
            judged
                .evidence
                .contains("prerequisite post-SP3 rollup KB870540 missing"),
            "{}",
            judged.evidence
        );
        // SP2 is not an affected level.
        assert_eq!(
            verdict(&e2k("SP2", "6.0.5762.4", "6.0.5762.4", &[]), "MS05-021"),
            Verdict::NotApplicable
        );
        // A bulletin that lists Exchange 2000 as not affected shows as such.
        assert_eq!(verdict(&old, "MS04-002"), Verdict::NotApplicable);
    }

    #[test]
    fn supersedence_conditions_and_unknowns() {
        // MS03-046's key is absent but MS06-019, which supersedes it, is installed.
        let facts = e2k(
            "SP3",
            "6.0.6618.4",
            "6.0.6618.4",
            &[r"Exchange Server 2000\SP4\KB916803"],
        );
        assert_eq!(verdict(&facts, "MS06-019"), Verdict::Installed);
        assert_eq!(verdict(&facts, "MS03-046"), Verdict::Superseded);
        // NNTP enabled: MS04-036 applies and is missing; disabled: not applicable.
        assert_eq!(verdict(&facts, "MS04-036"), Verdict::Missing);
        let mut off = facts.clone();
        put(&mut off, "service.NntpSvc.start_mode", Value::Text("disabled".into()));
        assert_eq!(verdict(&off, "MS04-036"), Verdict::NotApplicable);
        // A fixed file that could not be read: unknown, with the reason.
        let mut denied = facts.clone();
        let failure = Failure {
            kind: FailureKind::AccessDenied,
            reason: "share C$".into(),
        };
        put(
            &mut denied,
            r"file.%ExchangeInstallPath%\bin\reapi.dll.version",
            Value::Unavailable(failure),
        );
        let cat = catalog();
        let judged = judge_bulletin(cat.bulletins.iter().find(|b| b.id == "MS05-021").unwrap(), &denied);
        assert_eq!(judged.verdict, Verdict::Unknown);
        assert!(judged.evidence.contains("share C$"), "{}", judged.evidence);
        // Modern CVEs do not concern an Exchange 2000 host.
        assert!(!verdicts(&facts).iter().any(|(id, _)| id.starts_with("CVE-")));
    }

    #[test]
    fn modern_cves_against_the_build_for_the_hosts_cu() {
        let host = |build: &str, level: &str| {
            let mut facts = HostFacts::default();
            put(&mut facts, "exchange.installed", Value::Bool(true));
            put(&mut facts, "exchange.generation", Value::Text("2019".into()));
            put(&mut facts, "exchange.level", Value::Text(level.into()));
            put(&mut facts, "exchange.build", Value::Text(build.into()));
            facts
        };
        // CU8 Feb21SU: ProxyLogon (Mar21SU, 15.2.792.10 on CU8) missing.
        assert_eq!(verdict(&host("15.2.792.5", "CU8"), "CVE-2021-26855"), Verdict::Missing);
        assert_eq!(
            verdict(&host("15.2.792.10", "CU8"), "CVE-2021-26855"),
            Verdict::Installed
        );
        // CU12 was released after March 2021: it contains the fix.
        assert_eq!(
            verdict(&host("15.2.1118.7", "CU12"), "CVE-2021-26855"),
            Verdict::NotApplicable
        );
        // CU8 never got Aug22SU: missing, move to a supported CU.
        assert_eq!(verdict(&host("15.2.792.15", "CU8"), "CVE-2022-24516"), Verdict::Missing);
        // CU14 came after Aug22SU: the build has the fix, the configuration is still asked for.
        assert_eq!(
            verdict(&host("15.2.1544.4", "CU14"), "CVE-2022-24516"),
            Verdict::ConfigRequired
        );
        // CU12 with Aug22SU but Extended Protection unknown: build patched, configuration required.
        let patched = host("15.2.1118.12", "CU12");
        assert_eq!(verdict(&patched, "CVE-2022-24516"), Verdict::ConfigRequired);
        let mut configured = patched.clone();
        put(&mut configured, "exchange.extended_protection", Value::Bool(true));
        assert_eq!(verdict(&configured, "CVE-2022-24516"), Verdict::Installed);
    }
}
