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

/// The lab hosts with an Exchange 2000 role (the ones the guide's baselines concern).
fn exchange2000_lab_hosts() -> Vec<Host> {
    lab_hosts()
        .into_iter()
        .filter(|h| h.roles.iter().any(|r| r.starts_with("exchange2000")))
        .collect()
}

fn config(timeout_secs: u64) -> ScanConfig {
    ScanConfig {
        concurrency: 8,
        host_timeout: Duration::from_secs(timeout_secs),
        connect_timeout: Duration::from_secs(5),
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

/// Runs one of the Python oracles (impacket, pefile; scripts/setup installs them): `script`
/// relative to the repository with `args`, `request` as JSON on its standard input when given.
/// Its standard output; a failure fails the test.
fn python_oracle(script: &str, args: &[&std::ffi::OsStr], request: Option<&Json>) -> String {
    let mut child = Command::new("python3")
        .arg(repo().join(script))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with impacket and pefile (scripts/setup installs them)");
    let stdin = child.stdin.take().unwrap();
    if let Some(request) = request {
        serde_json::to_writer(stdin, request).unwrap();
    } else {
        drop(stdin);
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asks impacket for the same values and subkeys.
fn oracle(address: &str, request: &Json) -> Json {
    let credentials = lab_credentials_file();
    let args = [
        "--address".as_ref(),
        address.as_ref(),
        "--credentials".as_ref(),
        credentials.as_os_str(),
    ];
    let out = python_oracle("tests/lab/oracle/rrp_read.py", &args, Some(request));
    serde_json::from_str(&out).expect("oracle JSON")
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
            (
                f.source.path.clone(),
                f.source.value.clone().unwrap(),
                as_oracle_terms(&f.value),
            )
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
        assert!(
            result.facts.host_failure.is_none(),
            "{}: {:?}",
            host.name,
            result.facts.host_failure
        );
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
            assert_eq!(
                *exists,
                item.get("error").is_none(),
                "{}: key {path}: {item}",
                host.name
            );
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
        let mut our_products: Vec<String> = indicators
            .iter()
            .map(|i| i.split('\\').next().unwrap().to_owned())
            .collect();
        our_products.dedup();
        // A product key with no SP level below it has no indicator: compare the products that do.
        let mut their_products = products.clone();
        their_products.retain(|p| {
            let levels = oracle(
                &host.address,
                &json!({"subkeys": [format!("HKLM\\SOFTWARE\\Microsoft\\Updates\\{p}")]}),
            );
            levels["subkeys"][0]["subkeys"]
                .as_array()
                .is_some_and(|l| !l.is_empty())
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
    assert_eq!(
        results[i].facts.get("smb.signing_required").unwrap().value,
        Value::Bool(true)
    );
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
            connect_timeout: Duration::from_secs(5),
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
                let value = data.map_or(Value::Absent, |d| {
                    Value::Registry(exsweep::facts::RegistryValue::from_reg(&d))
                });
                ours.push((key.to_string(), v, as_oracle_terms(&value)));
            }
        }
        s.close().await;
        (ours, names)
    });
    let types: std::collections::BTreeSet<String> = ours
        .iter()
        .map(|(_, _, j)| j["type"].as_str().unwrap_or("").to_owned())
        .collect();
    for t in [
        "REG_SZ",
        "REG_EXPAND_SZ",
        "REG_MULTI_SZ",
        "REG_DWORD",
        "REG_DWORD_BIG_ENDIAN",
        "REG_QWORD",
        "REG_BINARY",
        "REG_NONE",
    ] {
        assert!(types.contains(t), "no {t} value in the lab fixture: {types:?}");
    }
    assert!(
        names[keys[0]].iter().any(|n| n.is_empty()),
        "default value not enumerated"
    );
    assert!(
        ours.iter()
            .any(|(_, _, j)| j["data"].as_str().is_some_and(|s| s.len() >= 2 * 20_000)),
        "no 20 KB value"
    );

    let request = json!({
        "values": ours.iter().map(|(p, v, _)| json!({"path": p, "value": v})).collect::<Vec<_>>(),
        "enum_values": keys,
    });
    let theirs = oracle(address, &request);
    assert_eq!(theirs["enum_values"].as_array().unwrap().len(), keys.len());
    assert_eq!(theirs["values"].as_array().unwrap().len(), ours.len());
    for (key, item) in keys.iter().zip(theirs["enum_values"].as_array().unwrap()) {
        let theirs: Vec<&str> = item["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(names[key], theirs, "value names of {key}");
    }
    for ((path, value, mine), item) in ours.iter().zip(theirs["values"].as_array().unwrap()) {
        assert_eq!(mine, &oracle_terms(item), "{path}\\{value}");
    }
}

fn credential(user: &str, password: &str) -> Credential {
    toml::from_str(&format!("domain = 'EXLAB'\nuser = '{user}'\npassword = '{password}'\n"))
        .map(|c: Credential| {
            assert_eq!(c.password.expose(), password);
            c
        })
        .unwrap()
}

#[test]
fn wrong_password_trips_the_lockout_breaker_after_three_refusals() {
    let mut creds = Credentials::default();
    creds.insert(DEFAULT_ENTRY, credential("exscan", "not-the-password"));
    let hosts = lab_hosts();
    assert!(hosts.len() >= 4);
    let results = scan(hosts, creds, &config(30));
    let kinds: Vec<FailureKind> = results
        .iter()
        .map(|r| r.facts.host_failure.as_ref().unwrap().kind)
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == FailureKind::AuthFailed).count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == FailureKind::Skipped).count(),
        results.len() - 3,
        "{kinds:?}"
    );
    for r in &results {
        let reason = &r.facts.host_failure.as_ref().unwrap().reason;
        assert!(!reason.contains("not-the-password"), "password leaked into {reason}");
        assert!(r.findings.iter().all(|f| f.status == Status::Unknown));
    }
    let _ = Secret::new(String::new());
}

/// An account that may not read the registry still gets a row per fact, each saying access
/// denied, and whatever else it may read (Samba lets any user list services).
#[test]
fn non_admin_account_is_access_denied_and_says_so() {
    let mut creds = Credentials::default();
    creds.insert(DEFAULT_ENTRY, credential("exuser", "Lab-Passw0rd!"));
    let results = scan(lab_hosts()[..1].to_vec(), creds, &config(30));
    let facts = &results[0].facts;
    assert!(facts.host_failure.is_none(), "{:?}", facts.host_failure);
    let registry: Vec<_> = facts.iter().filter(|f| f.name.starts_with("registry:")).collect();
    assert!(!registry.is_empty());
    for f in registry {
        match &f.value {
            Value::Unavailable(failure) => {
                assert_eq!(failure.kind, FailureKind::AccessDenied, "{}: {failure:?}", f.name)
            }
            other => panic!("{} read by a non-admin: {other:?}", f.name),
        }
    }
    match &facts
        .get("file.%SystemRoot%\\System32\\ntoskrnl.exe.version")
        .unwrap()
        .value
    {
        Value::Unavailable(failure) => assert_eq!(failure.kind, FailureKind::AccessDenied),
        other => panic!("kernel read by a non-admin: {other:?}"),
    }
    assert!(matches!(
        facts.get("service.MSExchangeIS.state").unwrap().value,
        Value::Absent
    ));
    // The audit-policy checks aside: Samba lets any account view the audit policy over lsarpc,
    // where Windows grants POLICY_VIEW_AUDIT_INFORMATION to administrators only.
    let registry_checks = results[0].findings.iter().filter(|f| {
        (f.check_id.starts_with("E2K-") || f.check_id.starts_with("W2K-")) && !f.check_id.starts_with("W2K-AUDIT-")
    });
    for finding in registry_checks {
        assert_eq!(finding.status, Status::Unknown, "{}", finding.check_id);
    }
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
    // At the most verbose level, so that the logs can be searched for the password too.
    let run = Command::new(env!("CARGO_BIN_EXE_exsweep"))
        .args(["scan", "-vv", "--inventory"])
        .arg(repo().join("inventory/lab.toml"))
        .arg("--credentials")
        .arg(lab_credentials_file())
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(run.status.success());
    let logs = String::from_utf8_lossy(&run.stderr);
    assert!(logs.contains("phase done"), "no debug logs at -vv");
    assert!(!logs.contains("Lab-Passw0rd!") && !String::from_utf8_lossy(&run.stdout).contains("Lab-Passw0rd!"));
    let csv = std::fs::read_to_string(out.path().join("findings.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert_eq!(header, exsweep::report::CSV_COLUMNS.join(","));
    for h in lab_hosts() {
        assert!(
            csv.lines().any(|l| l.split(',').nth(1) == Some(h.name.as_str())),
            "{} missing from\n{csv}",
            h.name
        );
    }
    let jsonl = std::fs::read_to_string(out.path().join("results.jsonl")).unwrap();
    let records: Vec<Json> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.first().unwrap()["type"], "run");
    // The catalog's version and date travel with every report.
    let catalog = Catalog::builtin().unwrap().info.expect("catalog.toml");
    assert_eq!(records[0]["catalog_version"], catalog.version.as_str());
    assert_eq!(records[0]["catalog_date"], catalog.date.as_str());
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "finding" && r["verdict"] == "mismatch"),
        "no bulletin verdict in the JSON Lines"
    );
    assert_eq!(records.last().unwrap()["type"], "summary");
    for t in ["host", "fact", "finding"] {
        assert!(records.iter().any(|r| r["type"] == t), "no {t} record");
    }
    assert!(!jsonl.contains("Lab-Passw0rd!") && !csv.contains("Lab-Passw0rd!"));
    assert!(!Path::new(&out.path().join("findings.csv.partial")).exists());
}

/// The winreg key's DACL (E2K-BE-ACL-WINREG) as exsweep reads it, against impacket's reading
/// of the same key on every Exchange 2000 lab host (tests/data/winreg/record_key_security.py).
#[test]
fn winreg_key_acl_matches_impacket() {
    const KEY: &str = r"SYSTEM\CurrentControlSet\Control\SecurePipeServers\winreg";
    let hosts = exchange2000_lab_hosts();
    assert_eq!(hosts.len(), 4);
    let results = scan(hosts.clone(), lab_credentials(), &config(30));
    for (h, r) in hosts.iter().zip(&results) {
        let fact = r
            .facts
            .get(&format!(r"registry-acl:HKLM\{KEY}"))
            .expect("registry-acl fact");
        let Value::List(ours) = &fact.value else {
            panic!("{}: {:?}", h.name, fact.value)
        };
        let credentials = lab_credentials_file();
        let out = python_oracle(
            "crates/exsweep-wire/tests/data/winreg/record_key_security.py",
            &[credentials.as_os_str(), h.address.as_ref(), KEY.as_ref()],
            None,
        );
        // ace TYPE FLAGS MASK SID: every allow entry, CREATOR OWNER/GROUP aside.
        let mut theirs: Vec<String> = out
            .lines()
            .filter_map(|l| l.strip_prefix("ace "))
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .filter(|f| f[0] == "0" && f[2] != "0x00000000" && !f[3].starts_with("S-1-3-"))
            .map(|f| f[3].to_owned())
            .collect();
        theirs.sort();
        theirs.dedup();
        assert_eq!(ours, &theirs, "{}", h.name);
        let everyone = ours.iter().any(|s| s == "S-1-1-0");
        assert_eq!(
            everyone,
            matches!(h.name.as_str(), "exbe-rtm" | "exfe-sp2"),
            "{}",
            h.name
        );
    }
}

/// The folder ACLs of E2K-BE-ACL-MAILROOT and -NNTPFILE as exsweep reads them (QUERY_INFO
/// security), against Samba's own client (`smbcacls --numeric`) on every Exchange 2000 host.
#[test]
fn folder_acls_match_smbcacls() {
    let hosts = exchange2000_lab_hosts();
    let results = scan(hosts.clone(), lab_credentials(), &config(30));
    let auth = lab_dir().join("smbclient-default.auth");
    let mut everyone_on_mailroot = Vec::new();
    for (h, r) in hosts.iter().zip(&results) {
        for folder in [r"Inetpub\mailroot", r"Inetpub\nntpfile"] {
            let fact = r
                .facts
                .get(&format!(r"file-acl:%SystemDrive%\{folder}"))
                .expect("file-acl fact");
            let Value::List(ours) = &fact.value else {
                panic!("{} {folder}: {:?}", h.name, fact.value)
            };
            let out = Command::new("smbcacls")
                .arg(format!("//{}/C$", h.address))
                .arg(folder)
                .arg("-A")
                .arg(&auth)
                .arg("--numeric")
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            // ACL:SID:TYPE/FLAGS/MASK: every allow entry, CREATOR OWNER/GROUP aside.
            let mut theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.strip_prefix("ACL:"))
                .filter_map(|l| {
                    let (sid, rest) = l.split_once(':')?;
                    let f: Vec<&str> = rest.split('/').collect();
                    (f[0] == "0" && *f.get(2)? != "0x00000000" && !sid.starts_with("S-1-3-")).then(|| sid.to_owned())
                })
                .collect();
            theirs.sort();
            theirs.dedup();
            assert_eq!(ours, &theirs, "{} {folder}", h.name);
            if folder.ends_with("mailroot") && ours.iter().any(|s| s == "S-1-1-0") {
                everyone_on_mailroot.push(h.name.clone());
            }
        }
    }
    everyone_on_mailroot.sort();
    assert_eq!(everyone_on_mailroot, ["exbe-rtm", "exfe-sp2"]);
}

/// The audit policy as exsweep reads it over `\PIPE\lsarpc`, against impacket's reading on
/// every Exchange 2000 lab host (tests/data/lsa/record_audit_policy.py).
#[test]
fn audit_policy_matches_impacket() {
    // Written out here, not taken from exsweep-wire: the order ([MS-LSAD] 2.2.4.20) is part of
    // what is checked.
    const CATEGORIES: [&str; 9] = [
        "system",
        "logon",
        "object_access",
        "privilege_use",
        "process_tracking",
        "policy_change",
        "account_management",
        "directory_service_access",
        "account_logon",
    ];
    let hosts = exchange2000_lab_hosts();
    let results = scan(hosts.clone(), lab_credentials(), &config(30));
    for (h, r) in hosts.iter().zip(&results) {
        let credentials = lab_credentials_file();
        let text = python_oracle(
            "crates/exsweep-wire/tests/data/lsa/record_audit_policy.py",
            &[credentials.as_os_str(), h.address.as_ref()],
            None,
        );
        let line = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap()
                .trim()
                .to_owned()
        };
        let mode = line("auditing_mode ") == "1";
        let options: Vec<u32> = line("options ").split(' ').map(|o| o.parse().unwrap()).collect();
        for (i, category) in CATEGORIES.iter().enumerate() {
            let fact = r.facts.get(&format!("audit.{category}")).expect("audit fact");
            // [MS-LSAD] 2.2.4.4: a read gives 1 success, 2 failure, 0 neither; other bits are
            // not an answer.
            let want = options
                .get(i)
                .filter(|o| **o & !3 == 0)
                .map(|o| match (mode, o & 1 != 0, o & 2 != 0) {
                    (false, _, _) | (true, false, false) => "none",
                    (true, true, true) => "success-and-failure",
                    (true, true, false) => "success",
                    (true, false, true) => "failure",
                });
            match (want, &fact.value) {
                (Some(w), Value::Text(t)) => assert_eq!(t, w, "{} {category}", h.name),
                (None, Value::Unavailable(_)) => {}
                (w, v) => panic!("{} {category}: impacket {w:?}, exsweep {v:?}", h.name),
            }
        }
    }
}

/// A sweep killed outright (SIGKILL, no chance to clean up) keeps every host it had finished:
/// each host's rows are flushed to the `.partial` files as soon as the host is done.
#[test]
fn a_sweep_killed_mid_run_keeps_the_hosts_already_collected() {
    // One more host whose SMB port accepts and then says nothing: it holds the sweep open.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for sock in listener.incoming().take(4).flatten() {
            held.push(sock);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.toml");
    let mut text = std::fs::read_to_string(repo().join("inventory/lab.toml")).unwrap();
    text.push_str(&format!(
        "\n[[host]]\nname = \"silent\"\naddress = \"127.0.0.1:{port}\"\ntransports = [\"smb\"]\n"
    ));
    std::fs::write(&inventory, text).unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_exsweep"))
        .args(["scan", "--timeout", "120", "--inventory"])
        .arg(&inventory)
        .arg("--credentials")
        .arg(lab_credentials_file())
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let partial = out.join("results.jsonl.partial");
    let lab_names: Vec<String> = lab_hosts().into_iter().map(|h| h.name).collect();
    let t0 = std::time::Instant::now();
    let hosts_in = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| serde_json::from_str::<Json>(l).ok())
            .filter(|r| r["type"] == "host")
            .map(|r| r["host"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    loop {
        let text = std::fs::read_to_string(&partial).unwrap_or_default();
        if hosts_in(&text).len() == lab_names.len() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the lab hosts were not reported: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Every finished host is there, whole; the silent one is not; nothing looks complete.
    let jsonl = std::fs::read_to_string(&partial).unwrap();
    let mut reported = hosts_in(&jsonl);
    reported.sort();
    let mut expected = lab_names.clone();
    expected.sort();
    assert_eq!(reported, expected);
    assert!(
        jsonl.lines().all(|l| serde_json::from_str::<Json>(l).is_ok()),
        "a torn line"
    );
    let csv = std::fs::read_to_string(out.join("findings.csv.partial")).unwrap();
    for name in &lab_names {
        assert!(
            csv.lines().any(|l| l.split(',').nth(1) == Some(name.as_str())),
            "{name} not in the CSV"
        );
    }
    assert!(!csv.lines().any(|l| l.split(',').nth(1) == Some("silent")));
    assert!(!out.join("results.jsonl").exists() && !out.join("findings.csv").exists());
    drop(holder);
}

fn text(facts: &HostFacts, name: &str) -> Option<String> {
    match &facts.get(name)?.value {
        Value::Text(t) => Some(t.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Asks the impacket + pefile oracle (tests/lab/oracle/host_read.py).
fn host_oracle(address: &str, entry: &str, request: &Json) -> Json {
    let credentials = lab_credentials_file();
    let args = [
        "--address".as_ref(),
        address.as_ref(),
        "--entry".as_ref(),
        entry.as_ref(),
        "--credentials".as_ref(),
        credentials.as_os_str(),
    ];
    let out = python_oracle("tests/lab/oracle/host_read.py", &args, Some(request));
    serde_json::from_str(&out).expect("oracle JSON")
}

/// Every lab host is told apart by its binaries: the Exchange build from store.exe or
/// ExSetup.exe named through the build table, Windows from the kernel, and every file fact
/// equal to what pefile reads from the whole file fetched by impacket.
#[test]
fn lab_hosts_are_identified_from_their_files() {
    let hosts = lab_hosts();
    let results = scan(hosts.clone(), lab_credentials(), &config(30));
    // (host, generation, build, level, update, OS product, service pack): the states the
    // profiles' NOTES.md describe.
    let expected = [
        ("exbe-rtm", "2000", "6.0.4417.0", "RTM", None, "Windows 2000", "1"),
        ("exfe-sp2", "2000", "6.0.5762.4", "SP2", None, "Windows 2000", "2"),
        (
            "exbe-sp3ru",
            "2000",
            "6.0.6603.1",
            "SP3",
            Some("post-SP3 rollup KB870540 (August 2004)"),
            "Windows 2000",
            "4",
        ),
        (
            "exbe-full",
            "2000",
            "6.0.6620.15",
            "SP3",
            Some("post-SP3 KB976703 (MS10-024)"),
            "Windows 2000",
            "4",
        ),
        (
            "ex2019-old",
            "2019",
            "15.2.792.5",
            "CU8",
            Some("Feb21SU"),
            "Windows Server 2019",
            "0",
        ),
    ];
    for (name, generation, build, level, update, os, sp) in expected {
        let i = hosts
            .iter()
            .position(|h| h.name == name)
            .unwrap_or_else(|| panic!("{name} not in inventory/lab.csv"));
        let facts = &results[i].facts;
        assert_eq!(
            text(facts, "exchange.generation").as_deref(),
            Some(generation),
            "{name}"
        );
        assert_eq!(text(facts, "exchange.build").as_deref(), Some(build), "{name}");
        assert_eq!(text(facts, "exchange.level").as_deref(), Some(level), "{name}");
        assert_eq!(text(facts, "exchange.update").as_deref(), update, "{name}");
        assert_eq!(text(facts, "os.product").as_deref(), Some(os), "{name}");
        assert_eq!(text(facts, "os.service_pack").as_deref(), Some(sp), "{name}");
        assert!(
            facts.get("exchange.build").unwrap().source.path.starts_with("file."),
            "{name}: build not from a file"
        );
        assert_eq!(text(facts, "exchange.build_disagreement"), None, "{name}");

        // Every file read, against pefile's reading of the whole file.
        let files: Vec<(String, String, String)> = facts
            .iter()
            .filter_map(|f| {
                let template = f.name.strip_prefix("file.")?.strip_suffix(".version")?;
                let path = &f.source.path;
                let (share, rest) = match path.strip_prefix("ADMIN$\\") {
                    Some(rest) => ("ADMIN$".to_owned(), rest.to_owned()),
                    None => (format!("{}$", &path[..1]), path[3..].to_owned()),
                };
                Some((template.to_owned(), share, rest))
            })
            .collect();
        assert!(files.len() >= 2, "{name}: {files:?}");
        let request =
            json!({"files": files.iter().map(|(_, s, p)| json!({"share": s, "path": p})).collect::<Vec<_>>()});
        let theirs = host_oracle(&hosts[i].address, "default", &request);
        for ((template, _, _), item) in files.iter().zip(theirs["files"].as_array().unwrap()) {
            let fact = |aspect: &str| text(facts, &format!("file.{template}.{aspect}"));
            assert_eq!(
                fact("version").as_deref(),
                item["file_version"].as_str(),
                "{name} {template}"
            );
            assert_eq!(
                fact("product_version").as_deref(),
                item["product_version"].as_str(),
                "{name} {template}"
            );
            assert_eq!(
                fact("version_text").as_deref(),
                item["version_text"].as_str(),
                "{name} {template}"
            );
            assert_eq!(
                fact("machine").as_deref(),
                item["machine"].as_str(),
                "{name} {template}"
            );
            assert_eq!(
                fact("size"),
                item["size"].as_u64().map(|n| n.to_string()),
                "{name} {template}"
            );
        }
    }
}

async fn session(address: &str, credential: &Credential) -> SmbSession {
    SmbSession::connect(SmbTarget {
        host: address,
        port: 445,
        credential,
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
    })
    .await
    .unwrap_or_else(|e| panic!("connect to {address}: {e}"))
}

/// The svcctl service list with states, ours and impacket's, for an admin and a non-admin.
#[test]
fn service_states_over_svcctl_match_impacket() {
    let creds = lab_credentials();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for host in lab_hosts() {
        for entry in [DEFAULT_ENTRY, "nonadmin"] {
            let ours = rt.block_on(async {
                let mut s = session(&host.address, creds.get(entry).unwrap()).await;
                let listed = s
                    .services()
                    .await
                    .unwrap_or_else(|e| panic!("{} as {entry}: {e}", host.name));
                s.close().await;
                listed
            });
            let ours: Vec<Json> = ours
                .iter()
                .map(|s| json!({"name": s.name, "display_name": s.display_name, "state": s.status.state_name()}))
                .collect();
            // impacket asks for more rights than a non-admin has: compare with the admin's list.
            let theirs = host_oracle(&host.address, DEFAULT_ENTRY, &json!({"services": true}));
            assert_eq!(
                Json::Array(ours.clone()),
                theirs["services"],
                "{} as {entry}",
                host.name
            );
            assert!(
                ours.iter()
                    .any(|s| s["name"] == "RemoteRegistry" && s["state"] == "running"),
                "{ours:?}"
            );
        }
    }
}

/// SMB1 acceptance and the NTLM CHALLENGE's names, against the profiles and impacket.
#[test]
fn smb1_and_ntlm_probes_match_the_profiles_and_impacket() {
    let hosts = lab_hosts();
    let results = scan(hosts.clone(), lab_credentials(), &config(30));
    let mut smb1_hosts = 0;
    for (host, result) in hosts.iter().zip(&results) {
        let profile: toml::Table = toml::from_str(
            &std::fs::read_to_string(repo().join("tests/lab/hosts").join(&host.name).join("host.toml")).unwrap(),
        )
        .unwrap();
        let smb1 = profile.get("smb1").and_then(|v| v.as_bool()).unwrap_or(false);
        smb1_hosts += usize::from(smb1);
        let netbios = profile["netbios_name"].as_str().unwrap();
        let theirs = host_oracle(&host.address, DEFAULT_ENTRY, &json!({"identity": true}))["identity"].clone();
        let facts = &result.facts;
        assert_eq!(
            facts.get("smb.smb1_accepted").unwrap().value,
            Value::Bool(smb1),
            "{}",
            host.name
        );
        assert_eq!(
            theirs["smb1_accepted"],
            json!(smb1),
            "{}: impacket disagrees with the profile",
            host.name
        );
        assert_eq!(
            text(facts, "ntlm.nb_computer_name").as_deref(),
            Some(netbios),
            "{}",
            host.name
        );
        assert_eq!(
            text(facts, "ntlm.nb_computer_name").as_deref(),
            theirs["server_name"].as_str(),
            "{}",
            host.name
        );
        assert_eq!(
            text(facts, "ntlm.dns_computer_name").as_deref(),
            theirs["server_dns_host"].as_str(),
            "{}",
            host.name
        );
        assert_eq!(
            text(facts, "ntlm.dns_domain_name").as_deref(),
            theirs["server_dns_domain"].as_str(),
            "{}",
            host.name
        );
        // impacket keeps the NetBIOS domain only when it differs from the computer name.
        let domain = theirs["server_domain"]
            .as_str()
            .filter(|d| !d.is_empty())
            .unwrap_or(netbios);
        assert_eq!(
            text(facts, "ntlm.nb_domain_name").as_deref(),
            Some(domain),
            "{}",
            host.name
        );
        let version = format!("{}.{}.{}", theirs["os_major"], theirs["os_minor"], theirs["os_build"]);
        assert_eq!(text(facts, "ntlm.os_version"), Some(version), "{}", host.name);
    }
    assert!(smb1_hosts >= 1, "no lab host accepts SMB1: the probe's yes is untested");
}

/// The version of a 100 MiB file whose version resource is at its end costs a few reads;
/// a file with no version resource and a missing file are answers, not errors.
#[test]
fn large_file_version_costs_a_few_kilobytes() {
    let creds = lab_credentials();
    let credential = creds.get(DEFAULT_ENTRY).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut s = session("127.0.0.13", credential).await;
        let read = s
            .file_version("C$", r"ExsweepLab\large-100mib.dll")
            .await
            .unwrap()
            .expect("large file");
        assert!(read.size > 100 * 1024 * 1024, "{}", read.size);
        let version = read.pe.version.as_ref().and_then(|v| v.fixed).expect("a version");
        assert_eq!(version.file_version.to_string(), "6.0.6620.15");
        let resource = read.pe.resource.expect("resource location");
        assert!(
            resource.offset > 100 * 1024 * 1024,
            "version resource not at the end: {resource:?}"
        );
        assert!(read.bytes_read <= 16 * 1024, "{} bytes read", read.bytes_read);
        assert!(read.reads <= 4, "{} reads", read.reads);
        eprintln!(
            "large file: {} bytes, version at offset {}, {} bytes read in {} reads",
            read.size, resource.offset, read.bytes_read, read.reads
        );
        // Case-insensitive on the share, as on Windows.
        let store = s
            .file_version("c$", r"program files\exchsrvr\BIN\STORE.EXE")
            .await
            .unwrap()
            .expect("store.exe");
        assert_eq!(
            store.pe.version.and_then(|v| v.fixed).unwrap().file_version.to_string(),
            "6.0.6620.15"
        );
        assert!(s.file_version("C$", r"ExsweepLab\missing.dll").await.unwrap().is_none());
        s.close().await;

        let mut s = session("127.0.0.11", credential).await;
        let none = s
            .file_version("C$", r"ExsweepLab\noversion.exe")
            .await
            .unwrap()
            .expect("noversion.exe");
        assert_eq!(none.pe.version, None);
        assert!(matches!(
            s.file_version("Z$", r"x.dll").await,
            Err(exsweep::transport::TransportError::NoShare(_))
        ));
        s.close().await;
    });
}

/// A file named by a `%ProgramFiles%` template is found through the registry's
/// `ProgramFilesDir`, and the hotfix inventory carries each update's `Filelist`.
#[test]
fn path_templates_and_hotfix_filelists_on_a_real_host() {
    use exsweep::collect::{collect_smb, Plan};
    let creds = lab_credentials();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let facts = rt.block_on(async {
        let mut s = session("127.0.0.13", creds.get(DEFAULT_ENTRY).unwrap()).await;
        let mut plan = Plan::for_roles(&[], &Catalog::default());
        plan.files = vec![r"%ProgramFiles%\Exchsrvr\bin\cdoex.dll".into(), r"%Bogus%\x.dll".into()];
        let mut facts = HostFacts::default();
        collect_smb(&mut s, &plan, &Catalog::default(), &mut facts).await;
        s.close().await;
        facts
    });
    let cdoex = facts
        .get(r"file.%ProgramFiles%\Exchsrvr\bin\cdoex.dll.version")
        .expect("cdoex fact");
    assert_eq!(cdoex.value, Value::Text("6.0.6619.12".into()));
    assert_eq!(cdoex.source.path, r"C:\Program Files\Exchsrvr\bin\cdoex.dll");
    match &facts.get(r"file.%Bogus%\x.dll.version").unwrap().value {
        Value::Unavailable(f) => assert!(f.reason.contains("%Bogus%"), "{f:?}"),
        other => panic!("{other:?}"),
    }
    // exbe-full's MS07-026 update lists its files (registry.reg, Updates\...\KB931832\Filelist).
    match &facts.get("hotfix.KB931832.files").expect("filelist").value {
        Value::List(files) => assert!(
            files
                .iter()
                .any(|f| f == r"C:\Program Files\Exchsrvr\bin\cdoex.dll 6.0.6619.12"),
            "{files:?}"
        ),
        other => panic!("{other:?}"),
    }
    match &facts.get("hotfix.installed").unwrap().value {
        Value::List(ids) => {
            assert!(
                ids.contains(&"KB870540".to_owned()) && ids.contains(&"KB976703".to_owned()),
                "{ids:?}"
            );
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "not sorted and unique: {ids:?}");
        }
        other => panic!("{other:?}"),
    }
}

/// The expected baseline results a person worked out by hand from each profile (the
/// "Expected baseline findings" tables of its NOTES.md): `(check id, pass|fail|unknown)`.
fn expected_baseline_results(host: &str) -> BTreeMap<String, String> {
    let notes = std::fs::read_to_string(repo().join("tests/lab/hosts").join(host).join("NOTES.md")).unwrap();
    let section = notes
        .split("## Expected baseline findings")
        .nth(1)
        .unwrap_or_else(|| panic!("{host}: no expected findings"));
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut out = BTreeMap::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
        let id = cells.first().copied().unwrap_or("");
        let is_id = id.contains('-')
            && id
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
        if !is_id || cells.len() < 3 {
            continue;
        }
        let last = cells.last().unwrap().to_lowercase();
        let result = ["unknown", "fail", "pass"].into_iter().find(|w| last.contains(w));
        if let Some(r) = result {
            out.insert(id.to_owned(), r.to_owned());
        }
    }
    out
}

/// A real scan of every lab host gives the findings a person reading the baselines and the
/// bulletins gave by hand: every check against the profile's NOTES.md, every bulletin and CVE
/// verdict against its `expected-verdicts.toml`.
#[test]
fn lab_findings_match_what_a_person_reading_the_sources_expects() {
    let hosts = lab_hosts();
    let results = scan(hosts.clone(), lab_credentials(), &config(30));
    let mut compared = 0;
    let mut verdicts_seen = std::collections::BTreeSet::new();
    for (host, result) in hosts.iter().zip(&results) {
        let checks: BTreeMap<&str, &str> = result
            .findings
            .iter()
            .filter(|f| f.verdict.is_empty() && f.check_id != COLLECT_CHECK_ID)
            .map(|f| (f.check_id.as_str(), f.status.as_str()))
            .collect();
        let expected = expected_baseline_results(&host.name);
        let mut wrong = Vec::new();
        for (id, want) in &expected {
            match checks.get(id.as_str()) {
                Some(got) if got == want => compared += 1,
                Some(got) => wrong.push(format!("{id}: scan {got}, by hand {want}")),
                None => wrong.push(format!("{id}: no finding, by hand {want}")),
            }
        }
        for id in checks.keys().filter(|id| !expected.contains_key(**id)) {
            wrong.push(format!("{id}: a finding the NOTES do not expect"));
        }

        let by_hand: toml::Table = toml::from_str(
            &std::fs::read_to_string(
                repo()
                    .join("tests/lab/hosts")
                    .join(&host.name)
                    .join("expected-verdicts.toml"),
            )
            .unwrap(),
        )
        .unwrap();
        let scanned: BTreeMap<&str, (&str, &str)> = result
            .findings
            .iter()
            .filter(|f| !f.verdict.is_empty())
            .map(|f| (f.check_id.as_str(), (f.verdict.as_str(), f.evidence.as_str())))
            .collect();
        for (id, entry) in &by_hand {
            let want = entry["verdict"].as_str().unwrap();
            match scanned.get(id.as_str()) {
                Some((got, _)) if *got == want => {
                    compared += 1;
                    verdicts_seen.insert(want.to_owned());
                }
                Some((got, evidence)) => wrong.push(format!("{id}: scan {got} ({evidence}), by hand {want}")),
                // Bulletins of product lines the host does not run get no row.
                None if want == "not-applicable" => compared += 1,
                None => wrong.push(format!("{id}: no finding, by hand {want}")),
            }
        }
        for id in scanned.keys().filter(|id| !by_hand.contains_key(**id)) {
            wrong.push(format!("{id}: a verdict expected-verdicts.toml does not list"));
        }
        assert!(
            wrong.is_empty(),
            "{}: {} differences:\n{}",
            host.name,
            wrong.len(),
            wrong.join("\n")
        );
    }
    for v in ["installed", "missing", "mismatch", "not-applicable"] {
        assert!(
            verdicts_seen.contains(v),
            "no lab host shows the verdict {v}: {verdicts_seen:?}"
        );
    }
    eprintln!("lab findings compared with the hand-made expectations: {compared}");
}

/// exsweep's WinRM client (NTLMv2, MIC, sealing both ways) against pyspnego's NTLM acceptor
/// behind a small stub (tests/lab/winrm/pyspnego_stub.py): logon, a sealed Enumerate and its
/// sealed answer, a sealed fault, and a wrong password refused.
#[test]
fn winrm_client_logs_on_and_seals_against_pyspnego() {
    use exsweep::transport::winrm::{WinrmSession, WinrmTarget};
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "EXLAB:exscan:Lab-Passw0rd!\n").unwrap();
    let ready = dir.path().join("ready");
    let mut stub = Command::new("python3")
        .arg(repo().join("tests/lab/winrm/pyspnego_stub.py"))
        .args(["--address", "127.0.0.1", "--port", "0", "--ready"])
        .arg(&ready)
        .env("NTLM_USER_FILE", &users)
        .spawn()
        .expect("python3 with pyspnego (scripts/setup installs it)");
    let port: u16 = (0..200)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(25));
            std::fs::read_to_string(&ready).ok().and_then(|p| p.trim().parse().ok())
        })
        .expect("the stub did not start");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcome = rt.block_on(async {
        let good = credential("exscan", "Lab-Passw0rd!");
        let target = |c| WinrmTarget {
            host: "127.0.0.1",
            port,
            credential: c,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            tls: None,
        };
        let mut session = WinrmSession::connect(target(&good))
            .await
            .expect("logon accepted by pyspnego");
        let items = session
            .enumerate("Win32_OperatingSystem", None)
            .await
            .expect("sealed enumerate");
        let fault = session.run_command("hostname", &[]).await;
        let second = session.enumerate("Win32_OperatingSystem", None).await;
        let bad = credential("exscan", "wrong");
        let refused = WinrmSession::connect(target(&bad)).await.err();
        (items, fault.err(), second.map(|i| i.len()), refused, session.stats)
    });
    let _ = stub.kill();
    let (items, fault, second, refused, stats) = outcome;
    assert_eq!(items.len(), 1);
    assert!(
        items[0]
            .text("Caption")
            .unwrap()
            .ends_with("/cimv2/Win32_OperatingSystem"),
        "{items:?}"
    );
    assert_eq!(items[0].text("BuildNumber"), Some("17763"));
    assert!(fault.unwrap().to_string().contains("ActionNotSupported"));
    // Sequence numbers and RC4 state stayed in step across messages.
    assert_eq!(second.unwrap(), 1);
    let refused = refused.expect("a wrong password is refused");
    assert_eq!(refused.kind(), FailureKind::AuthFailed, "{refused}");
    assert!(stats.round_trips >= 5 && stats.bytes_sent > 0, "{stats:?}");
}

/// Keys whose values Samba computes itself: the SMB side reads Samba's, the WinRM side the
/// profile's, so they cannot agree in the lab (tests/lab/README.md).
const SAMBA_OWN_KEYS: [&str; 5] = [
    r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion",
    r"HKLM\SYSTEM\CurrentControlSet\Control\ProductOptions",
    r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters",
    r"HKLM\SYSTEM\CurrentControlSet\Services\Netlogon\Parameters",
    r"HKLM\SYSTEM\CurrentControlSet\Services\LanmanServer\Shares",
];

/// Facts both transports give, compared: registry values and keys, the Updates keys and
/// installed updates, service start modes, file versions and existence, and what is derived
/// from them (Exchange and Windows identity).
fn comparable(name: &str) -> bool {
    if SAMBA_OWN_KEYS
        .iter()
        .any(|k| name.to_ascii_lowercase().contains(&k.to_ascii_lowercase()))
    {
        return false;
    }
    name.starts_with("registry:")
        || name.starts_with("registry-key:")
        || (name.starts_with("file.") && (name.ends_with(".version") || name.ends_with(".exists")))
        || (name.starts_with("service.") && name.ends_with(".start_mode"))
        || name.starts_with("exchange.")
        || [
            "os.build",
            "os.service_pack",
            "os.product",
            "updates.indicators",
            "hotfix.installed",
        ]
        .contains(&name)
}

/// For every lab host, the facts read over SMB alone and over WinRM alone agree.
#[test]
fn facts_over_smb_and_over_winrm_agree() {
    use exsweep::inventory::TransportKind;
    let port: u16 = std::env::var("EXSWEEP_LAB_WINRM_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(5985);
    let with = |t: TransportKind| -> Vec<Host> {
        lab_hosts()
            .into_iter()
            .map(|mut h| {
                h.transports = vec![t];
                h.winrm_port = port;
                h
            })
            .collect()
    };
    let smb = scan(with(TransportKind::Smb), lab_credentials(), &config(30));
    let winrm = scan(with(TransportKind::Winrm), lab_credentials(), &config(30));
    let mut compared = 0;
    for (a, b) in smb.iter().zip(&winrm) {
        let host = &lab_hosts()[a.index].name;
        assert!(
            b.facts.host_failure.is_none(),
            "{host}: no WinRM session: {:?}",
            b.facts.host_failure
        );
        let mut wrong = Vec::new();
        for fact in a.facts.iter().filter(|f| comparable(&f.name)) {
            let Some(other) = b.facts.get(&fact.name) else {
                wrong.push(format!("{}: not read over WinRM", fact.name));
                continue;
            };
            if matches!(fact.value, Value::Unavailable(_)) || matches!(other.value, Value::Unavailable(_)) {
                wrong.push(format!("{}: smb {:?} / winrm {:?}", fact.name, fact.value, other.value));
                continue;
            }
            if fact.value != other.value {
                wrong.push(format!("{}: smb {:?} / winrm {:?}", fact.name, fact.value, other.value));
            }
            compared += 1;
        }
        assert!(
            b.facts.iter().any(|f| f.source.transport == Transport::Winrm),
            "{host}: no fact says it came over WinRM"
        );
        assert!(
            wrong.is_empty(),
            "{host}: {} disagreements:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }
    assert!(compared > 500, "only {compared} facts compared");
    eprintln!("facts compared between SMB and WinRM: {compared}");
}

/// WinRM over HTTPS: the lab's self-signed certificate is refused unless the host is named,
/// and then the host is read; a wrong password over WinRM counts toward the lockout breaker;
/// a WinRM port that accepts and never answers is cut at the host's deadline.
#[test]
fn winrm_wraps_ntlm_in_spnego_when_the_server_wants_it() {
    use exsweep::inventory::TransportKind;
    // The lab's port 5987 answers raw NTLMSSP with a bare challenge, as a server that wants
    // SPNEGO does; pyspnego's acceptor then checks the wrapped logon and both mechListMICs.
    let over = |port: u16| {
        let mut h = lab_hosts().into_iter().find(|h| h.name == "exbe-sp3ru").unwrap();
        h.transports = vec![TransportKind::Winrm];
        h.winrm_port = port;
        let results = scan(vec![h], lab_credentials(), &config(30));
        let facts = &results[0].facts;
        assert!(facts.host_failure.is_none(), "port {port}: {:?}", facts.host_failure);
        facts
            .iter()
            .map(|f| (f.name.clone(), f.value.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let raw = over(5985);
    let wrapped = over(5987);
    assert!(raw.len() > 50, "{}", raw.len());
    let differing: Vec<&String> = raw
        .keys()
        .chain(wrapped.keys())
        .filter(|k| raw.get(*k) != wrapped.get(*k))
        .collect();
    assert!(
        differing.is_empty(),
        "{} of {} facts differ: {differing:?}",
        differing.len(),
        raw.len()
    );
}

#[test]
fn a_filtered_smb_port_leaves_the_deadline_to_winrm() {
    use exsweep::inventory::TransportKind;
    // A listener with a backlog of one, filled by one connection it never accepts: Linux then
    // drops further SYNs, as a firewall that silently drops 445 does.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut ex2019 = lab_hosts().into_iter().find(|h| h.name == "ex2019-old").unwrap();
    let address: std::net::SocketAddr = format!("{}:0", ex2019.address).parse().unwrap();
    let (listener, filler) = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(address).unwrap();
        let listener = socket.listen(0).unwrap();
        let filler = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        (listener, filler)
    });
    ex2019.smb_port = listener.local_addr().unwrap().port();
    ex2019.transports = vec![TransportKind::Smb, TransportKind::Winrm];
    let mut cfg = config(20);
    cfg.connect_timeout = Duration::from_secs(1);
    let t0 = std::time::Instant::now();
    let results = scan(vec![ex2019], lab_credentials(), &cfg);
    let elapsed = t0.elapsed();
    drop((listener, filler, rt));

    let facts = &results[0].facts;
    assert!(facts.host_failure.is_none(), "{:?}", facts.host_failure);
    let build = facts.get("exchange.build").expect("exchange.build over WinRM");
    assert_eq!(build.value, Value::Text("15.2.792.5".into()));
    let over = |t: Transport| facts.iter().filter(|f| f.source.transport == t).count();
    assert!(
        over(Transport::Winrm) > 20 && over(Transport::Smb) == 0,
        "{}",
        over(Transport::Smb)
    );
    let [(transport, failure)] = facts.transport_failures.as_slice() else {
        panic!("one unused transport expected: {:?}", facts.transport_failures)
    };
    assert_eq!(
        (transport.as_str(), failure.kind),
        ("smb", FailureKind::Timeout),
        "{failure:?}"
    );
    let collect = results[0]
        .findings
        .iter()
        .find(|f| f.check_id == COLLECT_CHECK_ID)
        .unwrap();
    assert!(collect.evidence.starts_with("smb not used: timeout"), "{collect:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[test]
fn winrm_https_verification_lockout_and_deadline() {
    use exsweep::inventory::TransportKind;
    let ex2019 = |accept: bool| -> Vec<Host> {
        let mut h = lab_hosts().into_iter().find(|h| h.name == "ex2019-old").unwrap();
        h.transports = vec![TransportKind::WinrmHttps];
        h.winrm_accept_self_signed = accept;
        vec![h]
    };
    let refused = scan(ex2019(false), lab_credentials(), &config(30));
    let failure = refused[0]
        .facts
        .host_failure
        .as_ref()
        .expect("an unverifiable certificate is refused");
    assert!(failure.reason.contains("UnknownIssuer"), "{failure:?}");
    // ex2019-old refuses an HTTPS logon without channel bindings, and pyspnego checks the ones
    // sent against the certificate: a logon here proves exsweep's bindings are right.
    let accepted = scan(ex2019(true), lab_credentials(), &config(30));
    assert!(
        accepted[0].facts.host_failure.is_none(),
        "{:?}",
        accepted[0].facts.host_failure
    );
    assert_eq!(
        accepted[0].facts.get("exchange.build").map(|f| f.value.clone()),
        Some(Value::Text("15.2.792.5".into()))
    );

    // Wrong password, WinRM only: exactly three refusals, then the breaker.
    let mut creds = Credentials::default();
    creds.insert(DEFAULT_ENTRY, credential("exscan", "not-the-password"));
    let hosts: Vec<Host> = lab_hosts()
        .into_iter()
        .map(|mut h| {
            h.transports = vec![TransportKind::Winrm];
            h
        })
        .collect();
    let results = scan(hosts, creds, &config(30));
    let kinds: Vec<FailureKind> = results
        .iter()
        .map(|r| r.facts.host_failure.as_ref().unwrap().kind)
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == FailureKind::AuthFailed).count(),
        3,
        "{kinds:?}"
    );

    // A WinRM port that holds the connection without a byte: cut at the deadline.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let mut hanging = lab_hosts()[0].clone();
    hanging.name = "hanging".into();
    hanging.address = "127.0.0.1".into();
    hanging.transports = vec![TransportKind::Winrm];
    hanging.winrm_port = port;
    let t0 = std::time::Instant::now();
    let results = scan(vec![hanging], lab_credentials(), &config(2));
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(
        results[0].facts.host_failure.as_ref().unwrap().kind,
        FailureKind::Timeout
    );
    drop(rt);
}
