//! What was learned about one host: every value with where and when it was read, and every
//! value that could not be read with why.

use std::collections::BTreeMap;

use exsweep_wire::regvalue::RegData;
use serde::Serialize;

use crate::timefmt::Timestamp;

/// How a fact reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Smb,
    Winrm,
    /// Seen from the network without logging on (OWA's answer over plain HTTP).
    Http,
    /// Worked out from other facts.
    Derived,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Smb => "smb",
            Transport::Winrm => "winrm",
            Transport::Http => "http",
            Transport::Derived => "derived",
        }
    }
}

/// Provenance of one fact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    pub transport: Transport,
    /// What was read: `HKLM\...\Key` plus `value`, or the names of the facts derived from.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub read_at: Timestamp,
}

/// A coarse cause, for grouping failures in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    Unreachable,
    AuthFailed,
    AccessDenied,
    Timeout,
    Protocol,
    /// Skipped on purpose (e.g. the lockout breaker tripped for this credential).
    Skipped,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Unreachable => "unreachable",
            FailureKind::AuthFailed => "auth-failed",
            FailureKind::AccessDenied => "access-denied",
            FailureKind::Timeout => "timeout",
            FailureKind::Protocol => "protocol",
            FailureKind::Skipped => "skipped",
        }
    }
}

/// Why a fact or a whole host could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub reason: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.reason)
    }
}

/// A fact's value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "data", rename_all = "kebab-case")]
pub enum Value {
    /// A registry value that was read; `data` in the JSON form of [`RegData`].
    Registry(RegistryValue),
    /// The registry key or value does not exist: a definite answer, not a failure.
    Absent,
    Text(String),
    Number(u64),
    Bool(bool),
    List(Vec<String>),
    /// Could not be read.
    Unavailable(Failure),
}

/// A registry value in report form: its type name and its data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegistryValue {
    #[serde(rename = "type")]
    pub value_type: String,
    pub data: serde_json::Value,
}

impl RegistryValue {
    pub fn from_reg(data: &RegData) -> Self {
        let json = match data {
            RegData::Sz(s) | RegData::ExpandSz(s) => serde_json::Value::from(s.as_str()),
            RegData::MultiSz(v) => serde_json::Value::from(v.clone()),
            RegData::Dword(n) | RegData::DwordBigEndian(n) => serde_json::Value::from(*n),
            RegData::Qword(n) => serde_json::Value::from(*n),
            RegData::None(b) | RegData::Binary(b) | RegData::Raw { bytes: b, .. } => serde_json::Value::from(hex(b)),
        };
        RegistryValue {
            value_type: data.type_name(),
            data: json,
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// One named fact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fact {
    pub name: String,
    pub value: Value,
    /// The typed registry data, kept for evaluation; reports use `value`.
    #[serde(skip)]
    pub reg: Option<RegData>,
    pub source: Source,
}

impl Fact {
    /// A fact that is not a registry value.
    pub fn new(name: &str, value: Value, source: Source) -> Fact {
        Fact {
            name: name.to_owned(),
            value,
            reg: None,
            source,
        }
    }
}

/// The name under which a registry value is kept: `registry:<KEY PATH>:<value name>`.
pub fn registry_fact_name(path: &str, value: &str) -> String {
    format!("registry:{}:{}", normalize_key_path(path), value)
}

/// The name under which a key's existence is kept: `registry-key:<KEY PATH>`.
pub fn registry_key_fact_name(path: &str) -> String {
    format!("registry-key:{}", normalize_key_path(path))
}

/// The name under which the accounts a key's DACL grants access are kept:
/// `registry-acl:<KEY PATH>` (a list of SIDs), the path exactly as the check that asks for it
/// wrote it, so that the check finds it.
pub fn registry_acl_fact_name(path: &str) -> String {
    format!("registry-acl:{path}")
}

/// Canonical key path: `HKEY_LOCAL_MACHINE` spelled `HKLM`, single backslashes, no trailing
/// backslash. Case is kept as written (registry names compare case-insensitively).
pub fn normalize_key_path(path: &str) -> String {
    let trimmed = path.trim().trim_matches('\\');
    let mut parts = trimmed.split('\\').filter(|p| !p.is_empty());
    let hive = parts.next().unwrap_or("");
    let hive = if hive.eq_ignore_ascii_case("HKEY_LOCAL_MACHINE") || hive.eq_ignore_ascii_case("HKLM") {
        "HKLM"
    } else {
        hive
    };
    std::iter::once(hive).chain(parts).collect::<Vec<_>>().join("\\")
}

/// Everything learned about one host in one run.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    facts: BTreeMap<String, Fact>,
    /// Set when the host could not be reached or logged on to at all.
    pub host_failure: Option<Failure>,
    /// On a host that was reached: the transports of its order that could not be used, and
    /// why (`smb`: a filtered 445, say, where WinRM answered).
    pub transport_failures: Vec<(String, Failure)>,
    /// The same facts as read over another transport, where they disagree with the ones kept
    /// (the transport first in the host's order wins); each has a `disagreement.<name>` fact.
    pub alternatives: Vec<Fact>,
}

impl HostFacts {
    pub fn insert(&mut self, fact: Fact) {
        self.facts.insert(fact.name.clone(), fact);
    }

    pub fn get(&self, name: &str) -> Option<&Fact> {
        self.facts.get(name)
    }

    pub fn registry(&self, path: &str, value: &str) -> Option<&Fact> {
        self.facts.get(&registry_fact_name(path, value))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Fact> {
        self.facts.values()
    }

    pub fn len(&self) -> usize {
        self.facts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_normalize() {
        assert_eq!(
            normalize_key_path("HKEY_LOCAL_MACHINE\\SOFTWARE\\\\Microsoft\\"),
            "HKLM\\SOFTWARE\\Microsoft"
        );
        assert_eq!(
            registry_fact_name("hklm\\SYSTEM", "Start"),
            "registry:HKLM\\SYSTEM:Start"
        );
    }

    #[test]
    fn registry_values_render_for_reports() {
        let v = RegistryValue::from_reg(&RegData::Binary(vec![0xde, 0xad]));
        assert_eq!(v.value_type, "REG_BINARY");
        assert_eq!(v.data, serde_json::json!("dead"));
        let v = RegistryValue::from_reg(&RegData::MultiSz(vec!["a".into(), "b".into()]));
        assert_eq!(v.data, serde_json::json!(["a", "b"]));
    }
}
