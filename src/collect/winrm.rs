//! Collection over WinRM: the same facts as over SMB, with the same names and shapes, read
//! through WMI: registry values and keys through `StdRegProv`, the Updates keys likewise,
//! installed updates from `Win32_QuickFixEngineering`, services from `Win32_Service`, file
//! versions from `CIM_DataFile`, Windows from `Win32_OperatingSystem`. Each fact says it came
//! over WinRM.
//!
//! `only_missing`: when another transport ran first, only the facts it could not give are
//! asked for (a fact absent from the facts, or unavailable).

use std::collections::HashMap;

use exsweep_wire::regvalue::RegData;
use exsweep_wire::wsman::{Item, Prop};

use super::files::{self, file_fact_name, FILE_ASPECTS};
use super::hotfix::normalize_update_id;
use super::services::{service_fact_name, start_mode_name};
use super::{failure, Plan, UPDATES};
use crate::facts::{
    registry_fact_name, registry_key_fact_name, Fact, Failure, HostFacts, RegistryValue, Source, Transport, Value,
};
use crate::rules::{bulletins, Catalog};
use crate::timefmt::Timestamp;
use crate::transport::winrm::WinrmSession;
use crate::transport::TransportError;

fn source(path: &str, value: Option<&str>) -> Source {
    Source {
        transport: Transport::Winrm,
        path: path.to_owned(),
        value: value.map(str::to_owned),
        read_at: Timestamp::now(),
    }
}

/// Whether `name` still needs reading.
fn wanted(facts: &HostFacts, name: &str, only_missing: bool) -> bool {
    !only_missing || !matches!(facts.get(name).map(|f| &f.value), Some(v) if !matches!(v, Value::Unavailable(_)))
}

/// `HKLM\A\B` → `A\B` (StdRegProv takes the hive apart).
fn subkey(path: &str) -> &str {
    path.split_once('\\').map_or("", |(_, rest)| rest)
}

/// StdRegProv's `ReturnValue`: `Ok(true)` success, `Ok(false)` not found (2, or 1 for a value
/// of another type), an error for access denied (5) and anything else.
fn return_value(item: &Item, what: &str) -> Result<bool, TransportError> {
    match item.text("ReturnValue").and_then(|v| v.trim().parse::<u32>().ok()) {
        Some(0) => Ok(true),
        Some(1 | 2) => Ok(false),
        Some(5) => Err(TransportError::AccessDenied {
            what: format!("StdRegProv {what}"),
        }),
        other => Err(protocol_error(format!("StdRegProv {what} returned {other:?}"))),
    }
}

fn protocol_error(detail: String) -> TransportError {
    TransportError::Winrm {
        kind: crate::facts::FailureKind::Protocol,
        detail,
    }
}

fn list(item: &Item, name: &str) -> Vec<String> {
    match item.get(name) {
        Some(Prop::List(v)) => v.clone(),
        Some(Prop::Text(t)) => vec![t.clone()],
        _ => Vec::new(),
    }
}

/// Value names and types of one key (EnumValues), `None` when the key does not exist.
async fn value_types(session: &mut WinrmSession, key: &str) -> Result<Option<HashMap<String, u32>>, TransportError> {
    let item = session.registry("EnumValues", subkey(key), None).await?;
    if !return_value(&item, &format!("EnumValues {key}"))? {
        return Ok(None);
    }
    let names = list(&item, "sNames");
    let types: Option<Vec<u32>> = list(&item, "Types").iter().map(|t| t.trim().parse().ok()).collect();
    match types {
        Some(types) if types.len() == names.len() => Ok(Some(
            names.into_iter().map(|n| n.to_ascii_lowercase()).zip(types).collect(),
        )),
        _ => Err(protocol_error(format!(
            "StdRegProv EnumValues {key}: names and types do not match"
        ))),
    }
}

/// One registry value as `RegData`, read with the getter of its type.
async fn read_value(
    session: &mut WinrmSession,
    key: &str,
    value: &str,
    value_type: u32,
) -> Result<Option<RegData>, TransportError> {
    let method = match value_type {
        1 => "GetStringValue",
        2 => "GetExpandedStringValue",
        3 => "GetBinaryValue",
        4 => "GetDWORDValue",
        7 => "GetMultiStringValue",
        11 => "GetQWORDValue",
        other => {
            return Err(TransportError::Winrm {
                kind: crate::facts::FailureKind::Protocol,
                detail: format!("{key}\\{value}: registry type {other} has no StdRegProv getter"),
            })
        }
    };
    let item = session.registry(method, subkey(key), Some(value)).await?;
    if !return_value(&item, &format!("{method} {key}\\{value}"))? {
        return Ok(None);
    }
    // A value the answer lacks or cannot hold is an error, never a default that could pass a check.
    let missing = || {
        protocol_error(format!(
            "StdRegProv {method} {key}\\{value}: no usable value in the answer"
        ))
    };
    let text = |n: &str| item.text(n).map(str::to_owned);
    let number = |n: &str| item.text(n).and_then(|v| v.trim().parse::<u64>().ok());
    Ok(Some(match value_type {
        1 => RegData::Sz(text("sValue").unwrap_or_default()),
        2 => RegData::ExpandSz(text("sValue").unwrap_or_default()),
        3 => RegData::Binary(
            list(&item, "uValue")
                .iter()
                .map(|b| b.trim().parse::<u8>().ok())
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(missing)?,
        ),
        4 => RegData::Dword(
            number("uValue")
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(missing)?,
        ),
        7 => RegData::MultiSz(list(&item, "sValue")),
        _ => RegData::Qword(number("uValue").ok_or_else(missing)?),
    }))
}

/// Subkey names of a key (EnumKey); `None` when it does not exist.
async fn subkeys(session: &mut WinrmSession, key: &str) -> Result<Option<Vec<String>>, TransportError> {
    let item = session.registry("EnumKey", subkey(key), None).await?;
    Ok(return_value(&item, &format!("EnumKey {key}"))?.then(|| list(&item, "sNames")))
}

/// Reads over WinRM what `plan` asks for (all of it, or only what is missing).
pub async fn collect(
    session: &mut WinrmSession,
    plan: &Plan,
    catalog: &Catalog,
    facts: &mut HostFacts,
    only_missing: bool,
) {
    registry(session, plan, facts, only_missing).await;
    keys(session, plan, facts, only_missing).await;
    super::derive_exchange_setup(facts);
    let os = operating_system(session, facts).await;
    updates(session, plan, facts, only_missing).await;
    services(session, plan, facts, only_missing).await;
    // Identity files first: they decide which bulletins' files are needed.
    let identity: Vec<String> = files::identity_files(facts).into_iter().map(str::to_owned).collect();
    file_versions(session, &identity, facts, only_missing).await;
    super::derive_identity(facts);
    let rest: Vec<String> = plan
        .files
        .iter()
        .cloned()
        .chain(bulletins::files_for_host(&catalog.bulletins, facts))
        .filter(|t| !identity.iter().any(|i| i.eq_ignore_ascii_case(t)))
        .collect();
    file_versions(session, &rest, facts, only_missing).await;
    super::finish(plan, facts, None);
    exchange_settings(session, facts).await;
    if only_missing {
        cross_check(session, plan, facts, &identity, os.as_ref()).await;
    }
    // Windows as WMI names it, where no other transport said it first.
    if let (Some(os), false) = (os, only_missing) {
        os_facts(&os, facts);
    }
}

/// `os.version`, `os.build`, `os.service_pack`, `os.product` from Win32_OperatingSystem.
fn os_facts(os: &Item, facts: &mut HostFacts) {
    const FROM: &str = "Win32_OperatingSystem";
    if let Some(version) = os.text("Version") {
        facts.insert(Fact::new(
            "os.version",
            Value::Text(version.to_owned()),
            source(FROM, Some("Version")),
        ));
        if let Some(product) = crate::builds::Build::parse(version).and_then(crate::builds::windows_product) {
            facts.insert(Fact::new(
                "os.product",
                Value::Text(product.to_owned()),
                source(FROM, Some("Version")),
            ));
        }
    }
    if let Some(build) = os.text("BuildNumber").and_then(|b| b.trim().parse::<u64>().ok()) {
        facts.insert(Fact::new(
            "os.build",
            Value::Number(build),
            source(FROM, Some("BuildNumber")),
        ));
    }
    if let Some(sp) = os
        .text("ServicePackMajorVersion")
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        facts.insert(Fact::new(
            "os.service_pack",
            Value::Number(sp),
            source(FROM, Some("ServicePackMajorVersion")),
        ));
    }
}

async fn registry(session: &mut WinrmSession, plan: &Plan, facts: &mut HostFacts, only_missing: bool) {
    let mut types: HashMap<String, Result<Option<HashMap<String, u32>>, Failure>> = HashMap::new();
    for (key, value) in &plan.registry_values {
        let name = registry_fact_name(key, value);
        if !wanted(facts, &name, only_missing) {
            continue;
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = types.entry(key.to_ascii_lowercase()) {
            slot.insert(value_types(session, key).await.map_err(|e| failure(&e)));
        }
        let (fact_value, reg) = match &types[&key.to_ascii_lowercase()] {
            Err(f) => (Value::Unavailable(f.clone()), None),
            Ok(None) => (Value::Absent, None),
            Ok(Some(map)) => match map.get(&value.to_ascii_lowercase()) {
                None => (Value::Absent, None),
                Some(t) => match read_value(session, key, value, *t).await {
                    Ok(Some(data)) => (Value::Registry(RegistryValue::from_reg(&data)), Some(data)),
                    Ok(None) => (Value::Absent, None),
                    Err(e) => (Value::Unavailable(failure(&e)), None),
                },
            },
        };
        facts.insert(Fact {
            name,
            value: fact_value,
            reg,
            source: source(key, Some(value)),
        });
    }
}

async fn keys(session: &mut WinrmSession, plan: &Plan, facts: &mut HostFacts, only_missing: bool) {
    for key in &plan.registry_keys {
        let name = registry_key_fact_name(key);
        if !wanted(facts, &name, only_missing) {
            continue;
        }
        let value = match subkeys(session, key).await {
            Ok(Some(_)) => Value::Bool(true),
            Ok(None) => Value::Absent,
            Err(e) => Value::Unavailable(failure(&e)),
        };
        facts.insert(Fact::new(&name, value, source(key, None)));
    }
}

/// Win32_OperatingSystem, read once: `os.windows_directory` (for `%SystemRoot%` paths) now,
/// the rest after the derived facts.
async fn operating_system(session: &mut WinrmSession, facts: &mut HostFacts) -> Option<Item> {
    const FROM: &str = "Win32_OperatingSystem";
    match session.enumerate(FROM, None).await {
        Ok(items) => {
            let os = items.into_iter().next()?;
            if let Some(dir) = os.text("WindowsDirectory") {
                facts.insert(Fact::new(
                    "os.windows_directory",
                    Value::Text(dir.to_owned()),
                    source(FROM, Some("WindowsDirectory")),
                ));
            }
            Some(os)
        }
        Err(e) => {
            facts.insert(Fact::new(
                "os.windows_directory",
                Value::Unavailable(failure(&e)),
                source(FROM, None),
            ));
            None
        }
    }
}

async fn updates(session: &mut WinrmSession, plan: &Plan, facts: &mut HostFacts, only_missing: bool) {
    if !plan.update_indicators {
        return;
    }
    if wanted(facts, "updates.indicators", only_missing) {
        let value = match update_tree(session).await {
            Ok(mut entries) => {
                entries.sort_by_key(|e| e.to_ascii_lowercase());
                Value::List(entries)
            }
            Err(e) => Value::Unavailable(failure(&e)),
        };
        facts.insert(Fact::new("updates.indicators", value, source(UPDATES, None)));
    }
    if wanted(facts, "hotfix.installed", only_missing) {
        const FROM: &str = "Win32_QuickFixEngineering";
        let value = match session.enumerate(FROM, None).await {
            Ok(items) => Value::List(hotfix_ids(&items)),
            Err(e) => Value::Unavailable(failure(&e)),
        };
        facts.insert(Fact::new("hotfix.installed", value, source(FROM, Some("HotFixID"))));
    }
}

/// Win32_QuickFixEngineering's HotFixIDs, normalised, sorted, once each; Windows 2000's
/// placeholder rows (`File 1`, empty ids) left out.
fn hotfix_ids(items: &[Item]) -> Vec<String> {
    let mut ids: Vec<String> = items
        .iter()
        .filter_map(|i| i.text("HotFixID"))
        .filter(|id| !id.is_empty() && *id != "File 1")
        .map(normalize_update_id)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// `<product>\<SPn>\<id>` under the Updates key, as the SMB collector lists them.
async fn update_tree(session: &mut WinrmSession) -> Result<Vec<String>, TransportError> {
    let mut out = Vec::new();
    let Some(products) = subkeys(session, UPDATES).await? else {
        return Ok(out);
    };
    for product in products {
        let product_path = format!("{UPDATES}\\{product}");
        for level in subkeys(session, &product_path).await?.unwrap_or_default() {
            if !super::hotfix::is_level(&level) {
                out.push(format!("{product}\\{level}"));
                continue;
            }
            for id in subkeys(session, &format!("{product_path}\\{level}"))
                .await?
                .unwrap_or_default()
            {
                out.push(format!("{product}\\{level}\\{id}"));
            }
        }
    }
    Ok(out)
}

/// `Auto` → `automatic`, as the registry's `Start` values are named.
fn wmi_start_mode(mode: &str) -> String {
    match mode.to_ascii_lowercase().as_str() {
        "auto" => start_mode_name(2),
        "manual" => start_mode_name(3),
        "disabled" => start_mode_name(4),
        "boot" => start_mode_name(0),
        "system" => start_mode_name(1),
        other => return other.to_owned(),
    }
    .to_owned()
}

async fn services(session: &mut WinrmSession, plan: &Plan, facts: &mut HostFacts, only_missing: bool) {
    if plan.services.is_empty() {
        return;
    }
    const FROM: &str = "Win32_Service";
    let aspects = ["start_mode", "state", "display_name", "image_path"];
    let needed = plan.services.iter().any(|s| {
        aspects
            .iter()
            .any(|a| wanted(facts, &service_fact_name(s, a), only_missing))
    });
    if !needed {
        return;
    }
    let listed = session.enumerate(FROM, None).await;
    for name in &plan.services {
        for aspect in aspects {
            let fact_name = service_fact_name(name, aspect);
            if !wanted(facts, &fact_name, only_missing) {
                continue;
            }
            let value = match &listed {
                Err(e) => Value::Unavailable(failure(e)),
                Ok(items) => match items
                    .iter()
                    .find(|i| i.text("Name").is_some_and(|n| n.eq_ignore_ascii_case(name)))
                {
                    None => Value::Absent,
                    Some(item) => {
                        let property = match aspect {
                            "start_mode" => "StartMode",
                            "state" => "State",
                            "display_name" => "DisplayName",
                            _ => "PathName",
                        };
                        match item.text(property) {
                            None => Value::Absent,
                            Some(v) if aspect == "start_mode" => Value::Text(wmi_start_mode(v)),
                            Some(v) if aspect == "state" => Value::Text(v.to_ascii_lowercase().replace(' ', "-")),
                            Some(v) => Value::Text(v.to_owned()),
                        }
                    }
                },
            };
            facts.insert(Fact::new(&fact_name, value, source(FROM, Some(name))));
        }
    }
}

/// A template as a full path on the host: `%SystemRoot%` from Win32_OperatingSystem's
/// WindowsDirectory, the others as the SMB collector resolves them.
fn full_path(template: &str, facts: &HostFacts) -> Result<String, Failure> {
    let (head, rest) = template.split_once('\\').unwrap_or((template, ""));
    if head.eq_ignore_ascii_case("%SystemRoot%") || head.eq_ignore_ascii_case("%windir%") {
        return match facts.get("os.windows_directory").map(|f| &f.value) {
            Some(Value::Text(dir)) => Ok(format!("{}\\{rest}", dir.trim_end_matches('\\'))),
            Some(Value::Unavailable(f)) => Err(f.clone()),
            _ => Err(Failure {
                kind: crate::facts::FailureKind::Skipped,
                reason: "%SystemRoot% unknown: Win32_OperatingSystem gave no WindowsDirectory".into(),
            }),
        };
    }
    files::resolve_drive_path(template, facts)
}

async fn file_versions(session: &mut WinrmSession, templates: &[String], facts: &mut HostFacts, only_missing: bool) {
    const FROM: &str = "CIM_DataFile";
    for template in templates {
        if !wanted(facts, &file_fact_name(template, "version"), only_missing) {
            continue;
        }
        let put = |facts: &mut HostFacts, aspect: &str, value: Value, path: &str| {
            facts.insert(Fact::new(
                &file_fact_name(template, aspect),
                value,
                source(path, Some(FROM)),
            ));
        };
        let path = match full_path(template, facts) {
            Ok(p) => p,
            Err(f) => {
                for aspect in FILE_ASPECTS {
                    put(facts, aspect, Value::Unavailable(f.clone()), template);
                }
                continue;
            }
        };
        let wql = format!(
            "SELECT Name,Version FROM CIM_DataFile WHERE Name='{}'",
            path.replace('\\', "\\\\").replace('\'', "\\'")
        );
        match session.enumerate(FROM, Some(&wql)).await {
            Err(e) => {
                for aspect in FILE_ASPECTS {
                    put(facts, aspect, Value::Unavailable(failure(&e)), &path);
                }
            }
            Ok(items) => match items.first() {
                None => {
                    put(facts, "exists", Value::Bool(false), &path);
                    put(facts, "version", Value::Absent, &path);
                }
                Some(item) => {
                    put(facts, "exists", Value::Bool(true), &path);
                    let version = item.text("Version").filter(|v| !v.is_empty());
                    put(
                        facts,
                        "version",
                        version.map_or(Value::Absent, |v| Value::Text(v.to_owned())),
                        &path,
                    );
                }
            },
        }
    }
}

/// Runs a PowerShell script (`-EncodedCommand`, UTF-16LE base64, as Windows expects) and
/// parses what `ConvertTo-Json` printed: an object, an array, or nothing.
async fn powershell_json(session: &mut WinrmSession, script: &str) -> Result<Vec<serde_json::Value>, TransportError> {
    let utf16: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let encoded = exsweep_wire::base64::encode(&utf16);
    let (stdout, stderr, code) = session
        .run_command(
            "powershell.exe",
            &["-NoProfile", "-NonInteractive", "-EncodedCommand", &encoded],
        )
        .await?;
    if code != 0 {
        let text = String::from_utf8_lossy(&stderr);
        let first = text
            .lines()
            .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .unwrap_or("")
            .trim();
        return Err(TransportError::Winrm {
            kind: crate::facts::FailureKind::Protocol,
            detail: format!(
                "PowerShell exited {code}: {}",
                first.chars().take(200).collect::<String>()
            ),
        });
    }
    let text = String::from_utf8_lossy(&stdout);
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    match serde_json::from_str::<serde_json::Value>(text.trim()) {
        Ok(serde_json::Value::Array(items)) => Ok(items),
        Ok(one) => Ok(vec![one]),
        Err(e) => Err(TransportError::Winrm {
            kind: crate::facts::FailureKind::Protocol,
            detail: format!("PowerShell output is not JSON: {e}"),
        }),
    }
}

const SNAPIN: &str = "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.SnapIn -ErrorAction SilentlyContinue";

/// Exchange 2013 and later, through its PowerShell: Extended Protection on the OWA and ECP
/// virtual directories, OWA's authentication and IIS SSL settings, and whether AMSI scanning
/// is on. `exchange.extended_protection`, `exchange.amsi_enabled`, `owa.*`.
async fn exchange_settings(session: &mut WinrmSession, facts: &mut HostFacts) {
    let modern = matches!(
        facts.get("exchange.generation").map(|f| &f.value),
        Some(Value::Text(g)) if ["2013", "2016", "2019", "SE"].contains(&g.as_str())
    );
    if !modern {
        return;
    }
    const FROM: &str = "Exchange PowerShell over WinRM";
    // The server's own view of itself: role, edition and the version it reports.
    let me = format!(
        "{SNAPIN}; Get-ExchangeServer -Identity $env:COMPUTERNAME | Select-Object Name,ServerRole,Edition,AdminDisplayVersion | ConvertTo-Json"
    );
    match powershell_json(session, &me).await {
        Ok(servers) => {
            let first = servers.first();
            // ConvertTo-Json writes enums as numbers and versions as objects: shown as text.
            let field = |name: &str| {
                first.and_then(|v| v.get(name)).map_or(Value::Absent, |v| match v {
                    serde_json::Value::String(s) => Value::Text(s.clone()),
                    serde_json::Value::Object(o) if o.contains_key("Major") => {
                        let part = |k: &str| o.get(k).and_then(|x| x.as_i64()).unwrap_or(0);
                        Value::Text(format!(
                            "Version {}.{} (Build {}.{})",
                            part("Major"),
                            part("Minor"),
                            part("Build"),
                            part("Revision")
                        ))
                    }
                    other => Value::Text(other.to_string()),
                })
            };
            facts.insert(Fact::new(
                "exchange.server_role",
                field("ServerRole"),
                source(FROM, Some("Get-ExchangeServer")),
            ));
            facts.insert(Fact::new(
                "exchange.edition",
                field("Edition"),
                source(FROM, Some("Get-ExchangeServer")),
            ));
            facts.insert(Fact::new(
                "exchange.admin_display_version",
                field("AdminDisplayVersion"),
                source(FROM, Some("Get-ExchangeServer")),
            ));
        }
        Err(e) => {
            for n in [
                "exchange.server_role",
                "exchange.edition",
                "exchange.admin_display_version",
            ] {
                facts.insert(Fact::new(
                    n,
                    Value::Unavailable(failure(&e)),
                    source(FROM, Some("Get-ExchangeServer")),
                ));
            }
        }
    }
    let owa_script = format!(
        "{SNAPIN}; Get-OwaVirtualDirectory | Select-Object Name,ExtendedProtectionTokenChecking,BasicAuthentication | ConvertTo-Json"
    );
    let ecp_script = format!(
        "{SNAPIN}; Get-EcpVirtualDirectory | Select-Object Name,ExtendedProtectionTokenChecking | ConvertTo-Json"
    );
    let owa = powershell_json(session, &owa_script).await;
    let ecp = powershell_json(session, &ecp_script).await;
    // Windows PowerShell 5.1's ConvertTo-Json writes enums as numbers (None 0, Allow 1,
    // Require 2); the script also casts to text. Both are read.
    let token = |v: &serde_json::Value| match v.get("ExtendedProtectionTokenChecking") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => match n.as_u64() {
            Some(0) => Some("None".into()),
            Some(1) => Some("Allow".into()),
            Some(2) => Some("Require".into()),
            _ => None,
        },
        _ => None,
    };
    let ep = match (&owa, &ecp) {
        (Ok(o), Ok(e)) if !o.is_empty() || !e.is_empty() => {
            // On only where every OWA and ECP directory checks the token (Allow or Require);
            // a directory whose setting was not in the output makes it unknown.
            let tokens: Option<Vec<String>> = o.iter().chain(e.iter()).map(token).collect();
            match tokens {
                Some(t) => Value::Bool(t.iter().all(|x| !x.eq_ignore_ascii_case("None"))),
                None => Value::Unavailable(Failure {
                    kind: crate::facts::FailureKind::Protocol,
                    reason: "ExtendedProtectionTokenChecking missing from the cmdlet's output".into(),
                }),
            }
        }
        (Ok(_), Ok(_)) => Value::Absent,
        (Err(e), _) | (_, Err(e)) => Value::Unavailable(failure(e)),
    };
    facts.insert(Fact::new(
        "exchange.extended_protection",
        ep,
        source(FROM, Some("ExtendedProtectionTokenChecking")),
    ));
    let basic = match &owa {
        Ok(o) if !o.is_empty() => Value::Bool(
            o.iter()
                .any(|v| v.get("BasicAuthentication").and_then(|b| b.as_bool()).unwrap_or(false)),
        ),
        Ok(_) => Value::Absent,
        Err(e) => Value::Unavailable(failure(e)),
    };
    facts.insert(Fact::new(
        "owa.basic_auth_enabled",
        basic,
        source(FROM, Some("BasicAuthentication")),
    ));

    let ssl_script = "Get-WebConfigurationProperty -Filter //security/access -Name sslFlags -Location 'Default Web Site/owa' | ConvertTo-Json";
    let (required, strong) = match powershell_json(session, ssl_script).await {
        Ok(values) => {
            let flags: String = values
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .or_else(|| v.get("Value").and_then(|x| x.as_str()).map(str::to_owned))
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(",");
            let has = |f: &str| flags.split(',').any(|x| x.trim().eq_ignore_ascii_case(f));
            (Value::Bool(has("Ssl")), Value::Bool(has("Ssl128")))
        }
        Err(e) => (Value::Unavailable(failure(&e)), Value::Unavailable(failure(&e))),
    };
    facts.insert(Fact::new("owa.ssl_required", required, source(FROM, Some("sslFlags"))));
    facts.insert(Fact::new(
        "owa.ssl_128bit_required",
        strong,
        source(FROM, Some("sslFlags")),
    ));

    // AMSI scanning came with 2019 CU10 / 2016 CU21 (July 2021) and is on unless a setting
    // override turns the Cafe's HttpRequestFiltering off.
    let amsi_capable = match facts.get("exchange.build").map(|f| &f.value) {
        Some(Value::Text(b)) => crate::builds::Build::parse(b).is_some_and(|b| match b.major_minor() {
            (15, 2) => b.0[2] >= 922,
            (15, 1) => b.0[2] >= 2308,
            _ => false,
        }),
        _ => false,
    };
    let override_script = format!(
        "{SNAPIN}; Get-SettingOverride | Select-Object Name,ComponentName,SectionName,Parameters | ConvertTo-Json"
    );
    let amsi = match powershell_json(session, &override_script).await {
        Ok(overrides) => {
            let disabled = overrides.iter().any(|o| {
                let text = o.to_string().to_ascii_lowercase();
                text.contains("httprequestfiltering") && text.contains("enabled=false")
            });
            Value::Bool(amsi_capable && !disabled)
        }
        Err(e) => Value::Unavailable(failure(&e)),
    };
    facts.insert(Fact::new(
        "exchange.amsi_enabled",
        amsi,
        source(FROM, Some("Get-SettingOverride, exchange.build")),
    ));
}

/// When another transport read first: a few facts both can give (Windows, installed
/// updates, service start modes, the identity files' versions) are read again over WinRM; where
/// the two disagree, both values are kept (`HostFacts::alternatives`) and a
/// `disagreement.<name>` fact says so. A handful of round trips, not a second scan.
async fn cross_check(
    session: &mut WinrmSession,
    plan: &Plan,
    facts: &mut HostFacts,
    identity: &[String],
    os: Option<&Item>,
) {
    let mut again = facts.clone();
    if let Some(os) = os {
        os_facts(os, &mut again);
    }
    services(session, plan, &mut again, false).await;
    file_versions(session, identity, &mut again, false).await;
    const FROM: &str = "Win32_QuickFixEngineering";
    if let Ok(items) = session.enumerate(FROM, None).await {
        again.insert(Fact::new(
            "hotfix.installed",
            Value::List(hotfix_ids(&items)),
            source(FROM, Some("HotFixID")),
        ));
    }
    let names: Vec<String> = again
        .iter()
        .filter(|f| f.source.transport == Transport::Winrm)
        .map(|f| f.name.clone())
        .filter(|n| {
            ["os.build", "os.service_pack", "hotfix.installed"].contains(&n.as_str())
                || n.ends_with(".start_mode")
                || (n.starts_with("file.") && n.ends_with(".version"))
        })
        .collect();
    for name in names {
        let (Some(kept), Some(other)) = (facts.get(&name), again.get(&name)) else {
            continue;
        };
        let comparable = |v: &Value| !matches!(v, Value::Unavailable(_));
        if kept.source.transport == Transport::Winrm
            || !comparable(&kept.value)
            || !comparable(&other.value)
            || kept.value == other.value
        {
            continue;
        }
        let text = format!(
            "{}: {}; winrm: {}",
            kept.source.transport.as_str(),
            shown(&kept.value),
            shown(&other.value)
        );
        let alternative = other.clone();
        facts.insert(Fact::new(
            &format!("disagreement.{name}"),
            Value::Text(text),
            source("transports", Some(&name)),
        ));
        facts.alternatives.push(alternative);
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::Text(t) => t.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::List(l) => l.join(", "),
        Value::Absent => "(absent)".into(),
        other => format!("{other:?}"),
    }
}
