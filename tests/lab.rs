//! Lab tests: real scans of the Samba lab (`scripts/lab up`), every fact read cross-checked
//! against impacket (tests/lab/oracle/rrp_read.py), which shares no code with exsweep.
//!
//! Compiled only with `--features lab`; `scripts/test` starts the lab and runs them. When the
//! lab is not running they fail, never skip.
#![cfg(feature = "lab")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use exsweep::credentials::{Credential, Credentials, DEFAULT_ENTRY};
use exsweep::facts::{FailureKind, HostFacts, Transport, Value};
use exsweep::inventory::{self, Host};
use exsweep::rules::{Catalog, Status, COLLECT_CHECK_ID};
use exsweep::scan::{scan_hosts, HostResult, ScanConfig};
use exsweep::secret::Secret;
use exsweep::transport::smb::{SmbSession, SmbTarget};
use serde_json::{json, Value as Json};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn lab_dir() -> PathBuf {
    std::env::var_os("EXSWEEP_LAB_DIR").map_or_else(|| repo().join("target/lab"), PathBuf::from)
}

fn lab_credentials_file() -> PathBuf {
    let f = lab_dir().join("credentials.toml");
    assert!(
        f.exists(),
        "the Samba lab is not running ({} missing): start it with `scripts/lab up`, or run `scripts/test`",
        f.display()
    );
    f
}

fn lab_credentials() -> Credentials {
    Credentials::from_file(&lab_credentials_file()).expect("lab credentials")
}

fn lab_hosts() -> Vec<Host> {
    inventory::load(&repo().join("inventory/lab.csv")).expect("inventory/lab.csv")
}

fn config(timeout_secs: u64) -> ScanConfig {
    ScanConfig {
        concurrency: 8,
        host_timeout: Duration::from_secs(timeout_secs),
        lockout_threshold: 3,
    }
}

fn scan(hosts: Vec<Host>, creds: Credentials, cfg: &ScanConfig) -> Vec<HostResult> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut results = Vec::new();
    rt.block_on(scan_hosts(
        Arc::new(hosts),
        Arc::new(creds),
        Arc::new(Catalog::builtin().unwrap()),
        cfg,
        |r| results.push(r),
    ));
    results.sort_by_key(|r| r.index);
    results
}

/// Asks impacket for the same values and subkeys.
fn oracle(address: &str, request: &Json) -> Json {
    let mut child = Command::new("python3")
        .arg(repo().join("tests/lab/oracle/rrp_read.py"))
        .args(["--address", address, "--credentials"])
        .arg(lab_credentials_file())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with impacket (scripts/setup installs it)");
    serde_json::to_writer(child.stdin.take().unwrap(), request).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "oracle failed for {address}: {}", String::from_utf8_lossy(&out.stdout));
    serde_json::from_slice(&out.stdout).expect("oracle JSON")
}

/// What a registry fact says, in the oracle's terms: `(type, data)` or `not-found`.
fn as_oracle_terms(value: &Value) -> Json {
    match value {
        Value::Registry(r) => json!({"type": r.value_type, "data": r.data}),
        Value::Absent => json!({"error": "not-found"}),
        other => json!({"unexpected": format!("{other:?}")}),
    }
}

fn registry_facts(facts: &HostFacts) -> Vec<(String, String, Json)> {
    facts
        .iter()
        .filter(|f| f.name.starts_with("registry:"))
        .map(|f| {
            assert_eq!(f.source.transport, Transport::Smb);
            (f.source.path.clone(), f.source.value.clone().unwrap(), as_oracle_terms(&f.value))
        })
        .collect()
}

fn oracle_terms(item: &Json) -> Json {
    match item.get("error") {
        Some(e) => json!({"error": e}),
        None => json!({"type": item["type"], "data": item["data"]}),
    }
}

#[test]
fn lab_scan_reads_what_impacket_reads() {
    let hosts = lab_hosts();
    assert!(hosts.len() >= 3);
    let results = scan(hosts.clone(), lab_credentials(), &config(30));
    assert_eq!(results.len(), hosts.len());
    let mut compared = 0;
    for (host, result) in hosts.iter().zip(&results) {
        assert!(result.facts.host_failure.is_none(), "{}: {:?}", host.name, result.facts.host_failure);
        let ours = registry_facts(&result.facts);
        let keys: Vec<(String, bool)> = result
            .facts
            .iter()
            .filter(|f| f.name.starts_with("registry-key:"))
            .map(|f| (f.source.path.clone(), f.value == Value::Bool(true)))
            .collect();
        let request = json!({
            "values": ours.iter().map(|(p, v, _)| json!({"path": p, "value": v})).collect::<Vec<_>>(),
            "subkeys": std::iter::once("HKLM\\SOFTWARE\\Microsoft\\Updates".to_string())
                .chain(keys.iter().map(|(p, _)| p.clone()))
                .collect::<Vec<_>>(),
        });
        let theirs = oracle(&host.address, &request);
        let theirs_values = theirs["values"].as_array().unwrap();
        assert_eq!(theirs_values.len(), ours.len());
        assert_eq!(theirs["subkeys"].as_array().unwrap().len(), keys.len() + 1);
        for ((path, value, mine), item) in ours.iter().zip(theirs_values) {
            assert_eq!(item["path"], json!(path));
            assert_eq!(item["value"], json!(value));
            assert_eq!(mine, &oracle_terms(item), "{}: {path}\\{value}", host.name);
            compared += 1;
        }
        // Key checks: a key exists for us exactly when impacket can open it.
        for ((path, exists), item) in keys.iter().zip(&theirs["subkeys"].as_array().unwrap()[1..]) {
            assert_eq!(item["path"], json!(path));
            assert_eq!(*exists, item.get("error").is_none(), "{}: key {path}: {item}", host.name);
            compared += 1;
        }
        // The update indicators: the products impacket lists are the ones we enumerated.
        let products: Vec<String> = theirs["subkeys"][0]["subkeys"]
            .as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        let Value::List(indicators) = &result.facts.get("updates.indicators").unwrap().value else {
            panic!("updates.indicators not read on {}", host.name)
        };
        let mut our_products: Vec<String> =
            indicators.iter().map(|i| i.split('\\').next().unwrap().to_owned()).collect();
        our_products.dedup();
        // A product key with no SP level below it has no indicator: compare the products that do.
        let mut their_products = products.clone();
        their_products.retain(|p| {
            let levels = oracle(&host.address, &json!({"subkeys": [format!("HKLM\\SOFTWARE\\Microsoft\\Updates\\{p}")]}));
            levels["subkeys"][0]["subkeys"].as_array().is_some_and(|l| !l.is_empty())
        });
        assert_eq!(our_products, their_products, "{}", host.name);
    }
    assert!(compared > 100, "only {compared} values compared");
}

#[test]
fn lab_hosts_are_told_apart_by_their_exchange_setup() {
    let results = scan(lab_hosts(), lab_credentials(), &config(30));
    let hosts = lab_hosts();
    let build = |name: &str| -> Option<String> {
        let i = hosts.iter().position(|h| h.name == name).unwrap();
        match &results[i].facts.get("exchange.setup_build")?.value {
            Value::Text(t) => Some(t.clone()),
            _ => None,
        }
    };
    assert_eq!(build("exfe-sp2").as_deref(), Some("6.0.5762"));
    assert_eq!(build("ex2019-old").as_deref(), Some("15.2.792.3"));
    let sp3ru = build("exbe-sp3ru").unwrap();
    assert!(sp3ru.starts_with("6.0.6"), "{sp3ru}");
    // The signing-mandatory host was read too, over a signed session.
    let i = hosts.iter().position(|h| h.name == "exbe-sp3ru").unwrap();
    assert_eq!(results[i].facts.get("smb.signing_required").unwrap().value, Value::Bool(true));
}

/// Every value type, non-ASCII names, 20 KB and 8 KB values (multi-fragment responses), the
/// default value and malformed data, read through our transport and compared with impacket.
#[test]
fn every_registry_type_decodes_as_impacket_decodes_it() {
    let address = "127.0.0.11";
    let creds = lab_credentials();
    let credential = creds.get(DEFAULT_ENTRY).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let keys = [
        "HKLM\\SOFTWARE\\ExsweepLab\\Decoding",
        "HKLM\\SOFTWARE\\ExsweepLab\\Decoding\\Schlüssel",
        "HKLM\\SOFTWARE\\ExsweepLab\\Decoding\\Malformed",
    ];
    let (ours, names) = rt.block_on(async {
        let mut s = SmbSession::connect(SmbTarget {
            host: address,
            port: 445,
            credential,
            timeout: Duration::from_secs(10),
        })
        .await
        .expect("connect to the lab");
        let mut ours = Vec::new();
        let mut names = BTreeMap::new();
        for key in keys {
            let values = s.value_names(key).await.unwrap().expect(key);
            names.insert(key, values.clone());
            for v in values {
                let data = s.query_value(key, &v).await.unwrap();
                let value = data.map_or(Value::Absent, |d| Value::Registry(exsweep::facts::RegistryValue::from_reg(&d)));
                ours.push((key.to_string(), v, as_oracle_terms(&value)));
            }
        }
        s.close().await;
        (ours, names)
    });
    let types: std::collections::BTreeSet<String> =
        ours.iter().map(|(_, _, j)| j["type"].as_str().unwrap_or("").to_owned()).collect();
    for t in ["REG_SZ", "REG_EXPAND_SZ", "REG_MULTI_SZ", "REG_DWORD", "REG_DWORD_BIG_ENDIAN", "REG_QWORD", "REG_BINARY", "REG_NONE"] {
        assert!(types.contains(t), "no {t} value in the lab fixture: {types:?}");
    }
    assert!(names[keys[0]].iter().any(|n| n.is_empty()), "default value not enumerated");
    assert!(ours.iter().any(|(_, _, j)| j["data"].as_str().is_some_and(|s| s.len() >= 2 * 20_000)), "no 20 KB value");

    let request = json!({
        "values": ours.iter().map(|(p, v, _)| json!({"path": p, "value": v})).collect::<Vec<_>>(),
        "enum_values": keys,
    });
    let theirs = oracle(address, &request);
    assert_eq!(theirs["enum_values"].as_array().unwrap().len(), keys.len());
    assert_eq!(theirs["values"].as_array().unwrap().len(), ours.len());
    for (key, item) in keys.iter().zip(theirs["enum_values"].as_array().unwrap()) {
        let theirs: Vec<&str> = item["values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(names[key], theirs, "value names of {key}");
    }
    for ((path, value, mine), item) in ours.iter().zip(theirs["values"].as_array().unwrap()) {
        assert_eq!(mine, &oracle_terms(item), "{path}\\{value}");
    }
}

fn credential(user: &str, password: &str) -> Credential {
    toml::from_str(&format!("domain = 'EXLAB'\nuser = '{user}'\npassword = '{password}'\n")).map(|c: Credential| {
        assert_eq!(c.password.expose(), password);
        c
    }).unwrap()
}

#[test]
fn wrong_password_trips_the_lockout_breaker_after_three_refusals() {
    let mut creds = Credentials::default();
    creds.insert(DEFAULT_ENTRY, credential("exscan", "not-the-password"));
    let hosts = lab_hosts();
    assert!(hosts.len() >= 4);
    let results = scan(hosts, creds, &config(30));
    let kinds: Vec<FailureKind> = results.iter().map(|r| r.facts.host_failure.as_ref().unwrap().kind).collect();
    assert_eq!(kinds.iter().filter(|k| **k == FailureKind::AuthFailed).count(), 3, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == FailureKind::Skipped).count(), results.len() - 3, "{kinds:?}");
    for r in &results {
        let reason = &r.facts.host_failure.as_ref().unwrap().reason;
        assert!(!reason.contains("not-the-password"), "password leaked into {reason}");
        assert!(r.findings.iter().all(|f| f.status == Status::Unknown));
    }
    let _ = Secret::new(String::new());
}

#[test]
fn non_admin_account_is_access_denied_and_says_so() {
    let mut creds = Credentials::default();
    creds.insert(DEFAULT_ENTRY, credential("exuser", "Lab-Passw0rd!"));
    let results = scan(lab_hosts()[..1].to_vec(), creds, &config(30));
    let failure = results[0].facts.host_failure.as_ref().expect("a non-admin cannot read HKLM");
    assert_eq!(failure.kind, FailureKind::AccessDenied, "{failure:?}");
}

/// A dead address and a host that accepts TCP but never answers, scanned with the lab: both
/// get their rows with the reason, and neither holds up the real hosts.
#[test]
fn dead_and_hanging_hosts_do_not_hold_up_the_sweep() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds connections without a byte in reply, like a hung SMB server.
    rt.spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let extra = format!("name,address\nhung,127.0.0.1:{port}\ndead,127.0.0.1:9\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("extra.csv");
    std::fs::write(&path, extra).unwrap();
    let mut hosts = inventory::load(&path).unwrap();
    hosts.extend(lab_hosts());
    let started = std::time::Instant::now();
    let mut results = Vec::new();
    rt.block_on(scan_hosts(
        Arc::new(hosts.clone()),
        Arc::new(lab_credentials()),
        Arc::new(Catalog::builtin().unwrap()),
        &config(3),
        |r| results.push(r),
    ));
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(20), "sweep took {elapsed:?}");
    results.sort_by_key(|r| r.index);
    assert_eq!(results.len(), hosts.len());
    // The real hosts finished first: the hung one is cut at its deadline.
    let hung = &results[0];
    let dead = &results[1];
    assert_eq!(hung.facts.host_failure.as_ref().unwrap().kind, FailureKind::Timeout);
    assert_eq!(dead.facts.host_failure.as_ref().unwrap().kind, FailureKind::Unreachable);
    for r in [hung, dead] {
        let collect = r.findings.iter().find(|f| f.check_id == COLLECT_CHECK_ID).unwrap();
        assert_eq!(collect.status, Status::Unknown);
        assert!(!collect.evidence.is_empty());
    }
    assert!(results[2..].iter().all(|r| r.facts.host_failure.is_none()));
}

/// The binary end to end: the README's demo writes both reports, every host appears, and the
/// JSON Lines records parse with their types.
#[test]
fn binary_scans_the_lab_and_writes_both_reports() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_exsweep"))
        .args(["scan", "--inventory"])
        .arg(repo().join("inventory/lab.toml"))
        .arg("--credentials")
        .arg(lab_credentials_file())
        .arg("--out")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let csv = std::fs::read_to_string(out.path().join("findings.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert_eq!(header, exsweep::report::CSV_COLUMNS.join(","));
    for h in lab_hosts() {
        assert!(csv.lines().any(|l| l.split(',').nth(1) == Some(h.name.as_str())), "{} missing from\n{csv}", h.name);
    }
    let jsonl = std::fs::read_to_string(out.path().join("results.jsonl")).unwrap();
    let records: Vec<Json> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.first().unwrap()["type"], "run");
    assert_eq!(records.last().unwrap()["type"], "summary");
    for t in ["host", "fact", "finding"] {
        assert!(records.iter().any(|r| r["type"] == t), "no {t} record");
    }
    assert!(!jsonl.contains("Lab-Passw0rd!") && !csv.contains("Lab-Passw0rd!"));
    assert!(!Path::new(&out.path().join("findings.csv.partial")).exists());
}
