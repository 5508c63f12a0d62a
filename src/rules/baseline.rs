//! Baseline files: one TOML file per role baseline, `[baseline]` then `[[check]]` tables.
//! Strict: an unknown field, a wrong type or a malformed condition names the file and line.
//! Assembly across files (`extends`, `replaces`, unique ids) is in `catalog.rs`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::condition::{Condition, ConditionDef, ExpectDef, FileDef, RegistryDef, ServiceDef};
use crate::credentials::line_of;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity {other:?} (info, low, medium, high, critical)"
            )),
        }
    }
}

/// One check, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Check {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    /// The roles it applies to: its own (or its baseline's) and those of every baseline that
    /// extends its baseline without replacing it.
    pub roles: Vec<String>,
    pub rationale: String,
    pub source: String,
    pub remediation: String,
    pub condition: Condition,
    /// Checks of extended baselines this one takes the place of.
    pub replaces: Vec<String>,
    pub baseline: String,
    pub file: PathBuf,
    pub line: usize,
}

impl Check {
    /// The first of the host's roles this check applies to, if any (`*` applies to every host).
    pub fn matching_role<'a>(&self, host_roles: &'a [String]) -> Option<&'a str> {
        if self.roles.iter().any(|r| r == "*") {
            return Some(host_roles.first().map_or("*", String::as_str));
        }
        host_roles
            .iter()
            .find(|hr| self.roles.iter().any(|r| r.eq_ignore_ascii_case(hr)))
            .map(String::as_str)
    }
}

/// A baseline's header.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub id: String,
    pub title: String,
    pub version: String,
    pub date: String,
    pub source: String,
    pub roles: Vec<String>,
    pub extends: Vec<String>,
    pub file: PathBuf,
    pub line: usize,
    pub checks: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineFileDef {
    baseline: Option<toml::Spanned<HeaderDef>>,
    #[serde(default)]
    check: Vec<toml::Spanned<CheckDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderDef {
    id: String,
    title: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    source: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    extends: Vec<String>,
}

/// A check as written: its own fields plus the keys of one condition (serde cannot flatten
/// with `deny_unknown_fields`, so they are listed here and handed to [`ConditionDef`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckDef {
    id: String,
    title: String,
    severity: Severity,
    roles: Option<Vec<String>>,
    #[serde(default)]
    rationale: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    remediation: String,
    #[serde(default)]
    replaces: Vec<String>,
    registry: Option<RegistryDef>,
    service: Option<ServiceDef>,
    file: Option<FileDef>,
    fact: Option<String>,
    all: Option<Vec<ConditionDef>>,
    any: Option<Vec<ConditionDef>>,
    not: Option<Box<ConditionDef>>,
    needs: Option<String>,
    expect: Option<ExpectDef>,
}

/// Why a data file could not be loaded: always with the file, the line and, where there is
/// one, the id.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}: id {id:?} is already defined at {first}")]
    DuplicateId {
        path: PathBuf,
        line: usize,
        id: String,
        first: String,
    },
    #[error("{path}: no baseline files")]
    Empty { path: PathBuf },
}

/// One baseline file, parsed but not yet assembled with the others.
pub(crate) struct ParsedBaseline {
    pub header: Baseline,
    pub checks: Vec<Check>,
}

/// Parses one baseline file. Roles are the check's or the baseline's own; `extends` is
/// resolved when the catalog is assembled.
pub(crate) fn parse_baseline(path: &Path, text: &str) -> Result<ParsedBaseline, CatalogError> {
    let invalid = |line: usize, message: String| CatalogError::Invalid {
        path: path.to_owned(),
        line,
        message,
    };
    let def: BaselineFileDef = toml::from_str(text)
        .map_err(|e| invalid(e.span().map_or(1, |s| line_of(text, s.start)), e.message().to_owned()))?;
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let (header, header_line) = match def.baseline {
        Some(spanned) => {
            let line = line_of(text, spanned.span().start);
            (spanned.into_inner(), line)
        }
        None => (
            HeaderDef {
                id: stem,
                title: String::new(),
                version: String::new(),
                date: None,
                source: String::new(),
                roles: Vec::new(),
                extends: Vec::new(),
            },
            1,
        ),
    };
    let mut checks = Vec::with_capacity(def.check.len());
    for spanned in def.check {
        let line = line_of(text, spanned.span().start);
        let c = spanned.into_inner();
        let at = |m: String| invalid(line, format!("check {:?}: {m}", c.id));
        if c.id.trim().is_empty() {
            return Err(invalid(line, "check with an empty id".into()));
        }
        // A baseline without roles of its own is fine as something others extend; a check
        // that applies to no role at all is refused once every file is known.
        let roles = c.roles.clone().unwrap_or_else(|| header.roles.clone());
        let condition = ConditionDef {
            registry: c.registry,
            service: c.service,
            file: c.file,
            fact: c.fact,
            all: c.all,
            any: c.any,
            not: c.not,
            needs: c.needs,
            expect: c.expect,
            name: None,
        }
        .build()
        .map_err(at)?;
        checks.push(Check {
            id: c.id,
            title: c.title,
            severity: c.severity,
            roles,
            rationale: c.rationale,
            source: c.source,
            remediation: c.remediation,
            condition,
            replaces: c.replaces,
            baseline: header.id.clone(),
            file: path.to_owned(),
            line,
        });
    }
    let version = match &header.date {
        Some(d) if header.version.is_empty() => d.clone(),
        _ => header.version.clone(),
    };
    Ok(ParsedBaseline {
        header: Baseline {
            id: header.id,
            title: header.title,
            version,
            date: header.date.unwrap_or_default(),
            source: header.source,
            roles: header.roles,
            extends: header.extends,
            file: path.to_owned(),
            line: header_line,
            checks: checks.len(),
        },
        checks,
    })
}
