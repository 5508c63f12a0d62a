//! Judging one host's facts against the checks that apply to its roles. Pure: no I/O.

use exsweep_wire::regvalue::RegData;

use crate::facts::{HostFacts, Value};
use crate::rules::{Catalog, Check, Expect, Probe, Scalar, Severity};

/// The row every host gets, so that a host with no applicable check, or one that could not
/// be reached, still appears in every report.
pub const COLLECT_CHECK_ID: &str = "EXSWEEP-COLLECT";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Pass,
    Fail,
    NotApplicable,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NotApplicable => "not-applicable",
            Status::Unknown => "unknown",
        }
    }
}

/// One check's verdict on one host, before run and host details are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub check_id: String,
    pub title: String,
    pub severity: Severity,
    pub role: String,
    pub status: Status,
    pub expected: String,
    pub observed: String,
    pub evidence: String,
}

/// All findings for one host: the collection row first, then each applicable check in
/// catalog order.
pub fn evaluate_host(roles: &[String], facts: &HostFacts, catalog: &Catalog) -> Vec<Finding> {
    let mut out = Vec::new();
    out.push(match &facts.host_failure {
        None => Finding {
            check_id: COLLECT_CHECK_ID.into(),
            title: "Host facts collected".into(),
            severity: Severity::Info,
            role: roles.first().cloned().unwrap_or_default(),
            status: Status::Pass,
            expected: "host reachable, logon accepted".into(),
            observed: format!("{} facts", facts.len()),
            evidence: String::new(),
        },
        Some(f) => Finding {
            check_id: COLLECT_CHECK_ID.into(),
            title: "Host facts collected".into(),
            severity: Severity::Info,
            role: roles.first().cloned().unwrap_or_default(),
            status: Status::Unknown,
            expected: "host reachable, logon accepted".into(),
            observed: f.kind.as_str().into(),
            evidence: f.reason.clone(),
        },
    });
    for (check, role) in catalog.checks_for(roles) {
        out.push(evaluate_check(check, role, facts));
    }
    out
}

fn evaluate_check(check: &Check, role: &str, facts: &HostFacts) -> Finding {
    let mut finding = Finding {
        check_id: check.id.clone(),
        title: check.title.clone(),
        severity: check.severity,
        role: role.to_owned(),
        status: Status::Unknown,
        expected: check.expect.to_string(),
        observed: String::new(),
        evidence: String::new(),
    };
    if let Some(f) = &facts.host_failure {
        finding.evidence = f.to_string();
        return finding;
    }
    let (path, value) = match &check.probe {
        Probe::Registry { path, value } => (path, value),
        Probe::RegistryKey { path } => return judge_key(finding, path, facts, &check.expect),
    };
    let Some(fact) = facts.registry(path, value) else {
        finding.evidence = format!("{path}\\{value} was not collected");
        return finding;
    };
    let place = provenance(fact, &format!("{path}\\{value}"));
    match (&fact.value, &fact.reg) {
        (Value::Unavailable(f), _) => {
            finding.evidence = format!("{place}: {f}");
        }
        (Value::Absent, _) => {
            finding.observed = "(absent)".into();
            finding.status = match check.expect {
                Expect::Absent => Status::Pass,
                _ => Status::Fail,
            };
            finding.evidence = format!("{place}: value or key does not exist");
        }
        (_, Some(data)) => {
            finding.observed = display(data);
            let (status, note) = judge(&check.expect, data);
            finding.status = status;
            finding.evidence = match note {
                Some(n) => format!("{place} ({}): {n}", data.type_name()),
                None => format!("{place} ({})", data.type_name()),
            };
        }
        (other, None) => {
            finding.evidence = format!("{place}: unexpected fact {other:?}");
        }
    }
    finding
}

/// A check on a key's existence.
fn judge_key(mut finding: Finding, path: &str, facts: &HostFacts, expect: &Expect) -> Finding {
    let Some(fact) = facts.get(&crate::facts::registry_key_fact_name(path)) else {
        finding.evidence = format!("{path} was not collected");
        return finding;
    };
    let place = provenance(fact, &format!("key {path}"));
    let exists = match &fact.value {
        Value::Bool(true) => true,
        Value::Absent => false,
        Value::Unavailable(f) => {
            finding.evidence = format!("{place}: {f}");
            return finding;
        }
        other => {
            finding.evidence = format!("{place}: unexpected fact {other:?}");
            return finding;
        }
    };
    finding.observed = if exists { "key exists" } else { "(absent)" }.into();
    finding.status = pass_if(exists == matches!(expect, Expect::Exists));
    finding.evidence = place;
    finding
}

/// `smb: <what> read at <time>`, the start of every piece of evidence.
fn provenance(fact: &crate::facts::Fact, what: &str) -> String {
    format!("{}: {what} read at {}", transport_name(fact.source.transport), fact.source.read_at)
}

fn transport_name(t: crate::facts::Transport) -> &'static str {
    match t {
        crate::facts::Transport::Smb => "smb",
        crate::facts::Transport::Winrm => "winrm",
        crate::facts::Transport::Derived => "derived",
    }
}

/// Longest observed value shown in a report cell; the rest is summarized.
const MAX_OBSERVED_CHARS: usize = 512;

/// How an observed value is shown in reports (cut at [`MAX_OBSERVED_CHARS`]).
pub fn display(data: &RegData) -> String {
    let full = display_full(data);
    if full.chars().count() <= MAX_OBSERVED_CHARS {
        return full;
    }
    let head: String = full.chars().take(MAX_OBSERVED_CHARS).collect();
    format!("{head}… ({} chars in all)", full.chars().count())
}

fn display_full(data: &RegData) -> String {
    match data {
        RegData::Sz(s) | RegData::ExpandSz(s) => s.clone(),
        RegData::MultiSz(v) => v.join("; "),
        RegData::Dword(n) | RegData::DwordBigEndian(n) => n.to_string(),
        RegData::Qword(n) => n.to_string(),
        RegData::None(b) | RegData::Binary(b) | RegData::Raw { bytes: b, .. } => {
            crate::facts::hex(b)
        }
    }
}

/// The observed value as a comparable scalar: a number for numeric types (and for strings
/// that hold a decimal number), text otherwise. `None` for binary data.
fn observed_scalar(data: &RegData) -> Option<Scalar> {
    match data {
        RegData::Dword(n) | RegData::DwordBigEndian(n) => Some(Scalar::Int(i64::from(*n))),
        RegData::Qword(n) => i64::try_from(*n).ok().map(Scalar::Int),
        RegData::Sz(s) | RegData::ExpandSz(s) => Some(
            s.trim()
                .parse::<i64>()
                .map_or_else(|_| Scalar::Text(s.clone()), Scalar::Int),
        ),
        _ => None,
    }
}

/// Compares two scalars: numbers numerically, dotted versions field by field. Other text is
/// only equal or not (case-insensitively, as Windows compares paths and names): it has no
/// order a baseline could mean, so `ge`/`le` on it cannot be judged.
fn compare(observed: &Scalar, expected: &Scalar) -> Option<std::cmp::Ordering> {
    match (observed, expected) {
        (Scalar::Int(a), Scalar::Int(b)) => Some(a.cmp(b)),
        (Scalar::Text(a), Scalar::Text(b)) => match (parse_version(a), parse_version(b)) {
            (Some(va), Some(vb)) => Some(va.cmp(&vb)),
            _ if a.to_lowercase() == b.to_lowercase() => Some(std::cmp::Ordering::Equal),
            _ => None,
        },
        (Scalar::Int(a), Scalar::Text(b)) => b.trim().parse::<i64>().ok().map(|b| a.cmp(&b)),
        (Scalar::Text(_), Scalar::Int(_)) => None,
    }
}

fn parse_version(s: &str) -> Option<Vec<u64>> {
    let parts: Option<Vec<u64>> = s.trim().split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| p.len() >= 2)
}

/// The verdict on one registry value, and a note when it could not be judged cleanly.
fn judge(expect: &Expect, data: &RegData) -> (Status, Option<String>) {
    use std::cmp::Ordering::*;
    if let RegData::MultiSz(items) = data {
        // A list value: `eq`/`in` ask whether the list holds the value, `ne` whether it lacks it.
        let item = |i: &String| i.trim().parse::<i64>().map_or_else(|_| Scalar::Text(i.clone()), Scalar::Int);
        let holds = |want: &Scalar| items.iter().any(|i| compare(&item(i), want) == Some(Equal));
        return match expect {
            Expect::Exists => (Status::Pass, None),
            Expect::Absent => (Status::Fail, None),
            Expect::Eq(v) => (pass_if(holds(v)), None),
            Expect::Ne(v) => (pass_if(!holds(v)), None),
            Expect::In(vs) => (pass_if(vs.iter().any(holds)), None),
            Expect::Ge(_) | Expect::Le(_) => (
                Status::Unknown,
                Some("a REG_MULTI_SZ value cannot be ordered".into()),
            ),
        };
    }
    let Some(observed) = observed_scalar(data) else {
        return match expect {
            Expect::Exists => (Status::Pass, None),
            Expect::Absent => (Status::Fail, None),
            _ => (
                Status::Fail,
                Some(format!("{} data cannot be compared with {expect}", data.type_name())),
            ),
        };
    };
    let cmp = |v: &Scalar| compare(&observed, v);
    let mismatch = || {
        (
            Status::Fail,
            Some(format!("{} {observed} is not comparable with {expect}", data.type_name())),
        )
    };
    match expect {
        Expect::Exists => (Status::Pass, None),
        Expect::Absent => (Status::Fail, None),
        // Text that is neither equal nor orderable is simply not equal.
        Expect::Eq(v) => (pass_if(cmp(v) == Some(Equal)), None),
        Expect::Ne(v) => (pass_if(cmp(v) != Some(Equal)), None),
        Expect::Ge(v) => cmp(v).map_or_else(mismatch, |o| (pass_if(o != Less), None)),
        Expect::Le(v) => cmp(v).map_or_else(mismatch, |o| (pass_if(o != Greater), None)),
        Expect::In(vs) => (pass_if(vs.iter().any(|v| cmp(v) == Some(Equal))), None),
    }
}

fn pass_if(ok: bool) -> Status {
    if ok {
        Status::Pass
    } else {
        Status::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{registry_fact_name, Fact, Failure, FailureKind, RegistryValue, Source, Transport};
    use crate::timefmt::Timestamp;
    use std::path::Path;

    const BASELINE: &str = r#"
[baseline]
id = "t"
title = "t"
roles = ["r"]

[[check]]
id = "LM"
title = "lm"
severity = "high"
registry = { path = 'HKLM\L', value = 'Lm' }
expect = { op = "ge", value = 3 }

[[check]]
id = "NAME"
title = "name"
severity = "low"
registry = { path = 'HKLM\L', value = 'Name' }
expect = { op = "eq", value = "exchsrvr" }

[[check]]
id = "GONE"
title = "gone"
severity = "low"
registry = { path = 'HKLM\L', value = 'Gone' }
expect = { op = "absent" }

[[check]]
id = "BUILD"
title = "build"
severity = "low"
registry = { path = 'HKLM\L', value = 'Build' }
expect = { op = "ge", value = "6.0.6249" }

[[check]]
id = "OTHER"
title = "other role"
severity = "low"
roles = ["x"]
registry = { path = 'HKLM\L', value = 'Lm' }
expect = { op = "exists" }
"#;

    fn catalog() -> Catalog {
        Catalog::from_sources([(Path::new("t.toml"), BASELINE)]).unwrap()
    }

    fn fact(value: &str, data: Option<RegData>) -> Fact {
        Fact {
            name: registry_fact_name("HKLM\\L", value),
            value: data.as_ref().map_or(Value::Absent, |d| Value::Registry(RegistryValue::from_reg(d))),
            reg: data,
            source: Source {
                transport: Transport::Smb,
                path: "HKLM\\L".into(),
                value: Some(value.into()),
                read_at: Timestamp(std::time::Duration::ZERO),
            },
        }
    }

    fn statuses(findings: &[Finding]) -> Vec<(&str, Status)> {
        findings.iter().map(|f| (f.check_id.as_str(), f.status)).collect()
    }

    #[test]
    fn registry_checks_pass_and_fail_as_a_person_would_judge() {
        let mut facts = HostFacts::default();
        facts.insert(fact("Lm", Some(RegData::Dword(2))));
        facts.insert(fact("Name", Some(RegData::Sz("ExchSrvr".into()))));
        facts.insert(fact("Gone", None));
        facts.insert(fact("Build", Some(RegData::Sz("6.0.6603.1".into()))));
        let findings = evaluate_host(&["r".into()], &facts, &catalog());
        assert_eq!(
            statuses(&findings),
            [
                (COLLECT_CHECK_ID, Status::Pass),
                ("LM", Status::Fail),
                ("NAME", Status::Pass),
                ("GONE", Status::Pass),
                ("BUILD", Status::Pass),
            ]
        );
        assert_eq!(findings[1].observed, "2");
        assert_eq!(findings[1].expected, ">= 3");
        assert!(findings[1].evidence.starts_with("smb: HKLM\\L\\Lm read at 1970-"), "{}", findings[1].evidence);
    }

    #[test]
    fn unreachable_host_gets_unknown_rows_with_the_reason() {
        let mut facts = HostFacts::default();
        facts.host_failure = Some(Failure {
            kind: FailureKind::Unreachable,
            reason: "connection refused".into(),
        });
        let findings = evaluate_host(&["r".into()], &facts, &catalog());
        assert_eq!(findings.len(), 5);
        assert!(findings.iter().all(|f| f.status == Status::Unknown));
        assert!(findings.iter().all(|f| f.evidence.contains("connection refused")));
    }

    #[test]
    fn absent_value_fails_a_comparison_and_type_mismatch_fails_with_a_note() {
        let mut facts = HostFacts::default();
        facts.insert(fact("Lm", None));
        facts.insert(fact("Name", Some(RegData::Binary(vec![1]))));
        facts.insert(fact("Gone", Some(RegData::Dword(0))));
        facts.insert(Fact {
            value: Value::Unavailable(Failure { kind: FailureKind::AccessDenied, reason: "ERROR_ACCESS_DENIED".into() }),
            reg: None,
            ..fact("Build", None)
        });
        let findings = evaluate_host(&["r".into()], &facts, &catalog());
        assert_eq!(
            statuses(&findings)[1..],
            [("LM", Status::Fail), ("NAME", Status::Fail), ("GONE", Status::Fail), ("BUILD", Status::Unknown)]
        );
        assert_eq!(findings[1].observed, "(absent)");
        assert!(findings[2].evidence.contains("cannot be compared"));
        assert!(findings[4].evidence.contains("access-denied"));
    }

    #[test]
    fn multi_string_values_are_membership_tests() {
        let list = RegData::MultiSz(vec!["IMAP4Svc".into(), "POP3Svc".into()]);
        assert_eq!(judge(&Expect::Eq(Scalar::Text("pop3svc".into())), &list).0, Status::Pass);
        assert_eq!(judge(&Expect::Ne(Scalar::Text("POP3Svc".into())), &list).0, Status::Fail);
        assert_eq!(judge(&Expect::Ge(Scalar::Int(1)), &list).0, Status::Unknown);
        let numbers = RegData::MultiSz(vec!["4".into()]);
        assert_eq!(judge(&Expect::In(vec![Scalar::Int(3), Scalar::Int(4)]), &numbers).0, Status::Pass);
    }

    #[test]
    fn text_that_is_not_a_version_has_no_order() {
        let text = RegData::Sz("6.0.6249 SP3".into());
        let (status, note) = judge(&Expect::Ge(Scalar::Text("6.0.6249".into())), &text);
        assert_eq!(status, Status::Fail);
        assert!(note.unwrap().contains("not comparable"));
        assert_eq!(judge(&Expect::Ne(Scalar::Text("x".into())), &text).0, Status::Pass);
        assert_eq!(judge(&Expect::Eq(Scalar::Text("6.0.6249 sp3".into())), &text).0, Status::Pass);
    }

    #[test]
    fn huge_values_are_cut_in_reports() {
        let shown = display(&RegData::Binary(vec![0xab; 10_000]));
        assert!(shown.starts_with("abab") && shown.ends_with("(20000 chars in all)"), "{}", &shown[shown.len() - 30..]);
    }
}
