//! Judging one host's facts: the checks of its roles and the bulletins and CVEs that concern
//! its products, each a finding. Pure (facts + catalog → findings); a fleet is judged in
//! parallel with rayon.

use rayon::prelude::*;

use super::bulletins::{self, Verdict};
use super::condition::{judge_condition, Truth};
use crate::facts::HostFacts;
use crate::rules::{Catalog, Check, Severity};

/// The row every host gets, so that a host with no applicable check, or one that could not
/// be reached, still appears in every report.
pub const COLLECT_CHECK_ID: &str = "EXSWEEP-COLLECT";
/// The row of a host whose transports disagree on a fact.
pub const TRANSPORTS_CHECK_ID: &str = "EXSWEEP-TRANSPORTS";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

impl From<Verdict> for Status {
    fn from(v: Verdict) -> Status {
        match v {
            Verdict::Installed | Verdict::Superseded => Status::Pass,
            Verdict::Missing | Verdict::Mismatch | Verdict::ConfigRequired => Status::Fail,
            Verdict::NotApplicable => Status::NotApplicable,
            Verdict::Unknown => Status::Unknown,
        }
    }
}

/// One check's or bulletin's verdict on one host, before run and host details are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The check id, the bulletin id (`MS05-021`) or the CVE id.
    pub check_id: String,
    pub title: String,
    pub severity: Severity,
    pub role: String,
    pub status: Status,
    /// For bulletins and CVEs: `installed`, `superseded`, `missing`, `mismatch`,
    /// `config-required`, `not-applicable`, `unknown`. Empty for checks.
    pub verdict: String,
    pub expected: String,
    pub observed: String,
    pub evidence: String,
}

fn collect_row(roles: &[String], facts: &HostFacts) -> Finding {
    let (status, observed, evidence) = match &facts.host_failure {
        None => (
            Status::Pass,
            format!("{} facts", facts.len()),
            facts
                .transport_failures
                .iter()
                .map(|(transport, f)| format!("{transport} not used: {}: {}", f.kind.as_str(), f.reason))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Some(f) => (Status::Unknown, f.kind.as_str().to_owned(), f.reason.clone()),
    };
    Finding {
        check_id: COLLECT_CHECK_ID.into(),
        title: "Host facts collected".into(),
        severity: Severity::Info,
        role: roles.first().cloned().unwrap_or_default(),
        status,
        verdict: String::new(),
        expected: "host reachable, logon accepted".into(),
        observed,
        evidence,
    }
}

/// All findings for one host: the collection row first, then each applicable check in
/// catalog order, then the bulletins and CVEs that concern the host's products.
pub fn evaluate_host(roles: &[String], facts: &HostFacts, catalog: &Catalog) -> Vec<Finding> {
    let mut out = vec![collect_row(roles, facts)];
    let disagreements: Vec<String> = facts
        .iter()
        .filter_map(|f| match (&f.value, f.name.strip_prefix("disagreement.")) {
            (crate::facts::Value::Text(t), Some(name)) => Some(format!("{name} ({t})")),
            _ => None,
        })
        .collect();
    if !disagreements.is_empty() {
        out.push(Finding {
            check_id: TRANSPORTS_CHECK_ID.into(),
            title: "Facts read over two transports agree".into(),
            severity: Severity::Info,
            role: roles.first().cloned().unwrap_or_default(),
            status: Status::Fail,
            verdict: String::new(),
            expected: "the same value over SMB and over WinRM".into(),
            observed: disagreements.join("; "),
            evidence: "the first transport's value is judged; both are in the facts".into(),
        });
    }
    for (check, role) in catalog.checks_for(roles) {
        out.push(evaluate_check(check, role, facts));
    }
    if facts.host_failure.is_some() {
        // Nothing is known of the host's products: no bulletin rows, the collection row says why.
        return out;
    }
    let role = roles.first().cloned().unwrap_or_default();
    let verdict_row = |check_id: &str, title: String, severity: Severity, judged: bulletins::Judged| Finding {
        check_id: check_id.to_owned(),
        title,
        severity,
        role: role.clone(),
        status: judged.verdict.into(),
        verdict: judged.verdict.as_str().into(),
        expected: judged.expected,
        observed: judged.observed,
        evidence: judged.evidence,
    };
    for (bulletin, judged) in bulletins::judge_bulletins(&catalog.bulletins, facts) {
        let title = if bulletin.kb.is_empty() {
            bulletin.title.clone()
        } else {
            format!("{} ({})", bulletin.title, bulletin.kb)
        };
        out.push(verdict_row(&bulletin.id, title, bulletin.severity, judged));
    }
    let table = bulletins::build_table();
    for cve in catalog.cves.iter().filter(|c| bulletins::cve_concerns_host(c, facts)) {
        out.push(verdict_row(
            &cve.id,
            cve.title.clone(),
            cve.severity,
            bulletins::judge_cve(cve, facts, table),
        ));
    }
    out
}

/// Judges many hosts at once, in parallel; the result is in the order of `hosts`.
pub fn evaluate_fleet(hosts: &[(Vec<String>, HostFacts)], catalog: &Catalog) -> Vec<Vec<Finding>> {
    hosts
        .par_iter()
        .map(|(roles, facts)| evaluate_host(roles, facts, catalog))
        .collect()
}

fn evaluate_check(check: &Check, role: &str, facts: &HostFacts) -> Finding {
    let mut finding = Finding {
        check_id: check.id.clone(),
        title: check.title.clone(),
        severity: check.severity,
        role: role.to_owned(),
        status: Status::Unknown,
        verdict: String::new(),
        expected: check.condition.expected(),
        observed: String::new(),
        evidence: String::new(),
    };
    if let Some(f) = &facts.host_failure {
        finding.evidence = f.to_string();
        return finding;
    }
    let outcome = judge_condition(&check.condition, facts);
    finding.status = match outcome.truth {
        Truth::Pass => Status::Pass,
        Truth::Fail => Status::Fail,
        Truth::Unknown => Status::Unknown,
    };
    finding.observed = outcome.observed.join("; ");
    finding.evidence = outcome.evidence.join("; ");
    finding
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{registry_fact_name, Fact, Failure, FailureKind, RegistryValue, Source, Transport, Value};
    use crate::timefmt::Timestamp;
    use exsweep_wire::regvalue::RegData;
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
            value: data
                .as_ref()
                .map_or(Value::Absent, |d| Value::Registry(RegistryValue::from_reg(d))),
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
        assert!(
            findings[1].evidence.starts_with("smb: HKLM\\L\\Lm read at 1970-"),
            "{}",
            findings[1].evidence
        );
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
            value: Value::Unavailable(Failure {
                kind: FailureKind::AccessDenied,
                reason: "ERROR_ACCESS_DENIED".into(),
            }),
            reg: None,
            ..fact("Build", None)
        });
        let findings = evaluate_host(&["r".into()], &facts, &catalog());
        assert_eq!(
            statuses(&findings)[1..],
            [
                ("LM", Status::Fail),
                ("NAME", Status::Fail),
                ("GONE", Status::Fail),
                ("BUILD", Status::Unknown)
            ]
        );
        assert_eq!(findings[1].observed, "(absent)");
        assert!(findings[2].evidence.contains("cannot be compared"));
        assert!(findings[4].evidence.contains("access-denied"));
    }

    #[test]
    fn a_disagreement_between_transports_gets_its_row() {
        let mut facts = HostFacts::default();
        facts.insert(Fact::new(
            "disagreement.os.build",
            Value::Text("smb: 2195; winrm: 3790".into()),
            Source {
                transport: Transport::Derived,
                path: "transports".into(),
                value: None,
                read_at: Timestamp(std::time::Duration::ZERO),
            },
        ));
        let findings = evaluate_host(&["r".into()], &facts, &catalog());
        let row = findings
            .iter()
            .find(|f| f.check_id == TRANSPORTS_CHECK_ID)
            .expect("a row");
        assert_eq!(row.status, Status::Fail);
        assert_eq!(row.observed, "os.build (smb: 2195; winrm: 3790)");
        let clean = evaluate_host(&["r".into()], &HostFacts::default(), &catalog());
        assert!(!clean.iter().any(|f| f.check_id == TRANSPORTS_CHECK_ID));
    }
}
