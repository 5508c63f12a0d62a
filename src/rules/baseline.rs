//! Baseline files: one TOML file per role baseline, `[baseline]` then `[[check]]` tables.
//! Strict: an unknown field, a wrong type or a duplicate id names the file and the line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::credentials::line_of;
use crate::facts::normalize_key_path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
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
            other => Err(format!("unknown severity {other:?} (info, low, medium, high, critical)")),
        }
    }
}

/// A comparison ([`Expect`]'s operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Eq,
    Ne,
    Ge,
    Le,
    In,
    Exists,
    Absent,
}

/// A value a check compares with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Text(String),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Int(n) => write!(f, "{n}"),
            Scalar::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// What a check expects of the value it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Eq(Scalar),
    Ne(Scalar),
    Ge(Scalar),
    Le(Scalar),
    In(Vec<Scalar>),
    Exists,
    Absent,
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Eq(v) => write!(f, "= {v}"),
            Expect::Ne(v) => write!(f, "!= {v}"),
            Expect::Ge(v) => write!(f, ">= {v}"),
            Expect::Le(v) => write!(f, "<= {v}"),
            Expect::In(vs) => {
                let items: Vec<String> = vs.iter().map(Scalar::to_string).collect();
                write!(f, "one of [{}]", items.join(", "))
            }
            Expect::Exists => f.write_str("exists"),
            Expect::Absent => f.write_str("absent"),
        }
    }
}

/// What a check reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A registry value: `path` is `HKLM\...` (normalized), `value` the value's name.
    Registry { path: String, value: String },
    /// Whether a registry key exists (e.g. Windows 2000's `Lsa\NoLMHash`, a key with no value).
    RegistryKey { path: String },
}

/// One check, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Check {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub roles: Vec<String>,
    pub rationale: String,
    pub source: String,
    pub remediation: String,
    pub probe: Probe,
    pub expect: Expect,
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
    pub source: String,
    pub roles: Vec<String>,
    pub file: PathBuf,
    pub checks: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}: check id {id:?} is already defined at {first}")]
    DuplicateId {
        path: PathBuf,
        line: usize,
        id: String,
        first: String,
    },
    #[error("{path}: no baseline files")]
    Empty { path: PathBuf },
}

/// Every loaded baseline and its checks.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub baselines: Vec<Baseline>,
    pub checks: Vec<Check>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    baseline: Option<HeaderDef>,
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
}

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
    registry: RegistryDef,
    expect: ExpectDef,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryDef {
    path: String,
    /// Omitted: the check is about the key itself (`exists` / `absent`).
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectDef {
    op: Op,
    value: Option<ExpectValue>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ExpectValue {
    One(Scalar),
    Many(Vec<Scalar>),
}

impl Catalog {
    /// Loads every `*.toml` file in `dir`, in name order.
    pub fn load_dir(dir: &Path) -> Result<Catalog, CatalogError> {
        let io = |source| CatalogError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(CatalogError::Empty { path: dir.to_owned() });
        }
        let mut sources = Vec::with_capacity(files.len());
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|source| CatalogError::Io {
                path: f.clone(),
                source,
            })?;
            sources.push((f, text));
        }
        Catalog::from_sources(sources.iter().map(|(p, t)| (p.as_path(), t.as_str())))
    }

    /// Builds a catalog from `(file name, text)` pairs, e.g. the copies compiled into the binary.
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a Path, &'a str)>,
    ) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::default();
        let mut seen: HashMap<String, String> = HashMap::new();
        for (path, text) in sources {
            let before = catalog.checks.len();
            catalog.add_file(path, text)?;
            for c in &catalog.checks[before..] {
                let here = format!("{}:{}", c.file.display(), c.line);
                if let Some(first) = seen.insert(c.id.to_ascii_uppercase(), here.clone()) {
                    return Err(CatalogError::DuplicateId {
                        path: c.file.clone(),
                        line: c.line,
                        id: c.id.clone(),
                        first,
                    });
                }
            }
        }
        Ok(catalog)
    }

    fn add_file(&mut self, path: &Path, text: &str) -> Result<(), CatalogError> {
        let invalid = |line: usize, message: String| CatalogError::Invalid {
            path: path.to_owned(),
            line,
            message,
        };
        let def: FileDef = toml::from_str(text).map_err(|e| {
            invalid(
                e.span().map_or(1, |s| line_of(text, s.start)),
                e.message().to_owned(),
            )
        })?;
        let stem = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let header = def.baseline.unwrap_or(HeaderDef {
            id: stem,
            title: String::new(),
            version: String::new(),
            date: None,
            source: String::new(),
            roles: Vec::new(),
        });
        let version = match &header.date {
            Some(d) if header.version.is_empty() => d.clone(),
            _ => header.version.clone(),
        };
        let n_checks = def.check.len();
        for spanned in def.check {
            let line = line_of(text, spanned.span().start);
            let c = spanned.into_inner();
            let at = |m: String| invalid(line, format!("check {:?}: {m}", c.id));
            if c.id.trim().is_empty() {
                return Err(invalid(line, "check with an empty id".into()));
            }
            let roles = c.roles.clone().unwrap_or_else(|| header.roles.clone());
            if roles.is_empty() {
                return Err(at("no roles (give `roles` on the check or in [baseline])".into()));
            }
            if !c.registry.path.to_ascii_uppercase().starts_with("HKLM\\")
                && !c.registry.path.to_ascii_uppercase().starts_with("HKEY_LOCAL_MACHINE\\")
            {
                return Err(at(format!(
                    "registry path {:?} must start with HKLM\\",
                    c.registry.path
                )));
            }
            let expect = build_expect(c.expect).map_err(at)?;
            let too_long = |s: &str| s.encode_utf16().count() >= exsweep_wire::winreg::MAX_NAME_UNITS;
            if too_long(&c.registry.path) || c.registry.value.as_deref().is_some_and(too_long) {
                return Err(at("registry names are at most 16383 characters".into()));
            }
            let key_path = normalize_key_path(&c.registry.path);
            let probe = match c.registry.value {
                Some(value) => Probe::Registry {
                    path: key_path,
                    value,
                },
                None if matches!(expect, Expect::Exists | Expect::Absent) => {
                    Probe::RegistryKey { path: key_path }
                }
                None => {
                    return Err(at(
                        "a check on a key (no `value`) takes `exists` or `absent`".into(),
                    ))
                }
            };
            self.checks.push(Check {
                id: c.id,
                title: c.title,
                severity: c.severity,
                roles,
                rationale: c.rationale,
                source: c.source,
                remediation: c.remediation,
                probe,
                expect,
                baseline: header.id.clone(),
                file: path.to_owned(),
                line,
            });
        }
        self.baselines.push(Baseline {
            id: header.id,
            title: header.title,
            version,
            source: header.source,
            roles: header.roles,
            file: path.to_owned(),
            checks: n_checks,
        });
        Ok(())
    }

    /// The checks that apply to a host with these roles, with the role that brought each in.
    pub fn checks_for<'a>(
        &'a self,
        host_roles: &'a [String],
    ) -> impl Iterator<Item = (&'a Check, &'a str)> + 'a {
        self.checks
            .iter()
            .filter_map(move |c| c.matching_role(host_roles).map(|r| (c, r)))
    }
}

fn build_expect(def: ExpectDef) -> Result<Expect, String> {
    let scalar = |v: Option<ExpectValue>| match v {
        Some(ExpectValue::One(s)) => Ok(s),
        Some(ExpectValue::Many(_)) => Err(format!("`{:?}` takes one value, not a list", def.op)),
        None => Err(format!("`{:?}` needs a value", def.op).to_lowercase()),
    };
    match def.op {
        Op::Eq => scalar(def.value).map(Expect::Eq),
        Op::Ne => scalar(def.value).map(Expect::Ne),
        Op::Ge => scalar(def.value).map(Expect::Ge),
        Op::Le => scalar(def.value).map(Expect::Le),
        Op::In => match def.value {
            Some(ExpectValue::Many(v)) if !v.is_empty() => Ok(Expect::In(v)),
            _ => Err("`in` needs a non-empty list".into()),
        },
        Op::Exists | Op::Absent if def.value.is_some() => {
            Err("`exists` and `absent` take no value".into())
        }
        Op::Exists => Ok(Expect::Exists),
        Op::Absent => Ok(Expect::Absent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[baseline]
id = "w2k"
title = "Windows 2000 member"
version = "1"
roles = ["windows2000-member"]

[[check]]
id = "W2K-LMCOMPAT"
title = "NTLMv2 only"
severity = "high"
registry = { path = 'HKLM\SYSTEM\CurrentControlSet\Control\Lsa', value = 'LmCompatibilityLevel' }
expect = { op = "ge", value = 3 }

[[check]]
id = "W2K-IMAP"
title = "IMAP4 disabled"
severity = "medium"
roles = ["exchange2000-backend"]
registry = { path = 'HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\IMAP4Svc', value = 'Start' }
expect = { op = "in", value = [4, 3] }
"#;

    fn load(files: &[(&str, &str)]) -> Result<Catalog, CatalogError> {
        Catalog::from_sources(files.iter().map(|(p, t)| (Path::new(*p), *t)))
    }

    #[test]
    fn checks_load_with_roles_and_lines() {
        let cat = load(&[("w2k.toml", GOOD)]).unwrap();
        assert_eq!(cat.checks.len(), 2);
        assert_eq!(cat.checks[0].roles, ["windows2000-member"]);
        assert_eq!(cat.checks[0].line, 8, "the line of the [[check]] header");
        assert_eq!(cat.checks[1].expect, Expect::In(vec![Scalar::Int(4), Scalar::Int(3)]));
        assert_eq!(
            cat.checks[1].probe,
            Probe::Registry {
                path: "HKLM\\SYSTEM\\CurrentControlSet\\Services\\IMAP4Svc".into(),
                value: "Start".into()
            }
        );
        let roles = vec!["exchange2000-backend".to_string()];
        let ids: Vec<&str> = cat.checks_for(&roles).map(|(c, _)| c.id.as_str()).collect();
        assert_eq!(ids, ["W2K-IMAP"]);
    }

    #[test]
    fn a_check_without_a_value_is_about_the_key() {
        let text = "[[check]]\nid='K'\ntitle='k'\nseverity='low'\nroles=['r']\nregistry={path='HKLM\\A\\NoLMHash'}\nexpect={op='exists'}\n";
        let cat = load(&[("k.toml", text)]).unwrap();
        assert_eq!(cat.checks[0].probe, Probe::RegistryKey { path: "HKLM\\A\\NoLMHash".into() });
        let bad = text.replace("op='exists'", "op='eq', value=1");
        let err = load(&[("k.toml", &bad)]).unwrap_err();
        assert!(err.to_string().contains("takes `exists` or `absent`"), "{err}");
    }

    #[test]
    fn duplicate_id_names_both_places() {
        let err = load(&[("a.toml", GOOD), ("b.toml", GOOD)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "b.toml:8: check id \"W2K-LMCOMPAT\" is already defined at a.toml:8"
        );
    }

    #[test]
    fn unknown_field_and_bad_expect_name_file_and_line() {
        let bad = GOOD.replace("severity = \"medium\"", "severity = \"medium\"\ncolour = 1");
        let err = load(&[("w2k.toml", &bad)]).unwrap_err();
        assert!(err.to_string().starts_with("w2k.toml:19: unknown field `colour`"), "{err}");

        let bad = GOOD.replace("{ op = \"ge\", value = 3 }", "{ op = \"exists\", value = 3 }");
        let err = load(&[("w2k.toml", &bad)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "w2k.toml:8: check \"W2K-LMCOMPAT\": `exists` and `absent` take no value"
        );

        let bad = GOOD.replace("severity = \"high\"", "severity = \"severe\"");
        assert!(load(&[("w2k.toml", &bad)]).unwrap_err().to_string().starts_with("w2k.toml:"));
    }
}
