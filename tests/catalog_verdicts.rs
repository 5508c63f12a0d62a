//! The shipped catalog judging hand-written facts (`tests/data/facts/*.toml`): every verdict a
//! bulletin or CVE can get, and check results, against what a person reading the bulletins,
//! the baselines and the build table expects. Hermetic: no host is contacted.

use std::path::Path;

use exsweep::facts::{Fact, Failure, FailureKind, HostFacts, Source, Transport, Value};
use exsweep::rules::{evaluate_host, Catalog};
use exsweep::timefmt::Timestamp;

fn value(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::Text(s.clone()),
        toml::Value::Integer(n) => Value::Number(u64::try_from(*n).expect("a non-negative number")),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Array(items) => Value::List(
            items
                .iter()
                .map(|i| i.as_str().expect("a list of text").to_owned())
                .collect(),
        ),
        toml::Value::Table(t) if t.contains_key("absent") => Value::Absent,
        toml::Value::Table(t) => {
            let reason = t["unavailable"].as_str().expect("{ unavailable = \"reason\" }");
            Value::Unavailable(Failure {
                kind: FailureKind::AccessDenied,
                reason: reason.to_owned(),
            })
        }
        other => panic!("unsupported fixture value {other:?}"),
    }
}

fn check_fixture(path: &Path, catalog: &Catalog) -> usize {
    let doc: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let roles: Vec<String> = doc["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let mut facts = HostFacts::default();
    for (name, v) in doc["facts"].as_table().unwrap() {
        let source = Source {
            transport: Transport::Derived,
            path: path.display().to_string(),
            value: None,
            read_at: Timestamp(std::time::Duration::ZERO),
        };
        facts.insert(Fact::new(name, value(v), source));
    }
    let findings = evaluate_host(&roles, &facts, catalog);
    let expected = doc["expected"].as_table().unwrap();
    let mut wrong = Vec::new();
    for (id, want) in expected {
        let want = want.as_str().unwrap();
        match findings.iter().find(|f| &f.check_id == id) {
            None => wrong.push(format!("{id}: no finding, expected {want}")),
            Some(f) => {
                let got = if f.verdict.is_empty() {
                    f.status.as_str()
                } else {
                    f.verdict.as_str()
                };
                if got != want {
                    wrong.push(format!("{id}: {got} ({}), expected {want}", f.evidence));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}:\n{}", path.display(), wrong.join("\n"));
    expected.len()
}

#[test]
fn shipped_catalog_gives_the_verdicts_a_reader_of_the_bulletins_gives() {
    let catalog = Catalog::builtin().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/facts");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    assert!(files.len() >= 2);
    let compared: usize = files.iter().map(|f| check_fixture(f, &catalog)).sum();
    assert!(compared >= 15, "{compared}");
}

/// Every verdict the catalog can give appears in the fixtures, so none goes untested.
#[test]
fn fixtures_cover_every_verdict() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/facts");
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let doc: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            seen.extend(
                doc["expected"]
                    .as_table()
                    .unwrap()
                    .values()
                    .map(|v| v.as_str().unwrap().to_owned()),
            );
        }
    }
    for verdict in [
        "installed",
        "superseded",
        "missing",
        "mismatch",
        "config-required",
        "not-applicable",
        "unknown",
    ] {
        assert!(seen.contains(verdict), "no fixture expects {verdict}");
    }
}
