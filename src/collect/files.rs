//! File versions over SMB: path templates (`%SystemRoot%`, `%ProgramFiles%`,
//! `%ExchangeInstallPath%`) resolved from facts already read, then the version resource read
//! in part. Facts: `file.<template>.exists`, `.version` (VS_FIXEDFILEINFO FileVersion),
//! `.product_version`, `.version_text` (StringFileInfo FileVersion), `.machine`, `.size`.

use exsweep_wire::pe::PeVersion;
use exsweep_wire::regvalue::RegData;
use tracing::debug;

use super::{failure, session_lost, EXCHANGE_SETUP};
use crate::facts::{Fact, Failure, FailureKind, HostFacts, Source, Transport, Value};
use crate::timefmt::Timestamp;
use crate::transport::smb::{FileVersionRead, SmbSession, WindowsPath};
use crate::transport::TransportError;

/// The kernel: its version is the OS build, whatever the registry says.
pub const KERNEL: &str = r"%SystemRoot%\System32\ntoskrnl.exe";
/// Exchange 2000/2003's store: its version moves with every rollup (Exchange Server Analyzer
/// read it for the same reason).
pub const EXCHANGE_STORE: &str = r"%ExchangeInstallPath%\bin\store.exe";
/// Exchange 2013 and later: ExSetup.exe carries the CU and SU build (as HealthChecker reads it).
pub const EXCHANGE_SETUP_EXE: &str = r"%ExchangeInstallPath%\Bin\ExSetup.exe";
/// Where `%ProgramFiles%` is recorded.
pub const WINDOWS_CURRENT_VERSION: &str = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion";

/// The facts every file read records, whatever its outcome.
pub const FILE_ASPECTS: [&str; 6] = [
    "exists",
    "version",
    "product_version",
    "version_text",
    "machine",
    "size",
];

/// `file.<template>.<aspect>`.
pub fn file_fact_name(template: &str, aspect: &str) -> String {
    format!("file.{template}.{aspect}")
}

/// The identity files a host needs read, given what its setup keys said.
pub fn identity_files(facts: &HostFacts) -> Vec<&'static str> {
    let has = |path, value| {
        matches!(
            facts.registry(path, value).and_then(|f| f.reg.as_ref()),
            Some(RegData::Sz(_) | RegData::ExpandSz(_))
        )
    };
    let mut files = vec![KERNEL];
    if super::identity::MSI_SETUP_KEYS.iter().any(|k| has(k, "MsiInstallPath")) {
        files.push(EXCHANGE_SETUP_EXE);
    } else if has(EXCHANGE_SETUP, "Services") {
        files.push(EXCHANGE_STORE);
    }
    files
}

/// Where a template points: a path under `ADMIN$` (which is the system root by definition,
/// whatever the registry claims) or a drive path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    AdminShare(String),
    Drive(WindowsPath),
}

fn registry_text(facts: &HostFacts, path: &str, value: &str) -> Option<String> {
    match facts.registry(path, value)?.reg.as_ref()? {
        RegData::Sz(s) | RegData::ExpandSz(s) => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn fact_text(facts: &HostFacts, name: &str) -> Option<String> {
    match &facts.get(name)?.value {
        Value::Text(t) => Some(t.clone()),
        _ => None,
    }
}

/// Resolves a template; the error says which variable is unknown.
fn skipped(reason: String) -> Failure {
    Failure {
        kind: FailureKind::Skipped,
        reason,
    }
}

fn resolve(template: &str, facts: &HostFacts) -> Result<Location, Failure> {
    let (head, rest) = template.split_once('\\').unwrap_or((template, ""));
    let rest = rest.trim_start_matches('\\');
    let base = match head.to_ascii_lowercase().as_str() {
        "%systemroot%" | "%windir%" => {
            if rest.is_empty() {
                return Err(skipped(format!("{template}: no file below {head}")));
            }
            return Ok(Location::AdminShare(rest.to_owned()));
        }
        // The drive Windows is on, from whichever of its folders is known.
        "%systemdrive%" => [
            registry_text(facts, super::identity::WINDOWS_NT_CURRENT_VERSION, "SystemRoot"),
            fact_text(facts, "os.windows_directory"),
            registry_text(facts, WINDOWS_CURRENT_VERSION, "ProgramFilesDir"),
        ]
        .into_iter()
        .flatten()
        .find_map(|dir| {
            let drive = dir.get(..2)?;
            (drive.ends_with(':') && drive.starts_with(|c: char| c.is_ascii_alphabetic())).then(|| drive.to_owned())
        })
        .ok_or_else(|| skipped("%SystemDrive% unknown: neither the system root nor Program Files was read".into()))?,
        "%programfiles%" => registry_text(facts, WINDOWS_CURRENT_VERSION, "ProgramFilesDir").ok_or_else(|| {
            skipped(format!(
                "%ProgramFiles% unknown: {WINDOWS_CURRENT_VERSION}\\ProgramFilesDir not read"
            ))
        })?,
        "%exchangeinstallpath%" => match fact_text(facts, "exchange.install_path") {
            Some(path) => path,
            // Say why: the setup key could not be read, or it names no install folder.
            None => {
                return Err(match facts.get("exchange.installed").map(|f| &f.value) {
                    Some(Value::Unavailable(f)) => Failure {
                        kind: f.kind,
                        reason: format!("%ExchangeInstallPath% unknown: {}", f.reason),
                    },
                    _ => skipped("%ExchangeInstallPath% unknown: Exchange's setup key names no install folder".into()),
                })
            }
        },
        _ if head.starts_with('%') => return Err(skipped(format!("unknown variable {head} in {template}"))),
        _ => String::new(),
    };
    let full = if base.is_empty() {
        template.to_owned()
    } else {
        format!("{}\\{rest}", base.trim_end_matches('\\'))
    };
    WindowsPath::parse(&full)
        .map(Location::Drive)
        .map_err(|e| skipped(e.to_string()))
}

fn source(path: &str, read_at: Timestamp) -> Source {
    Source {
        transport: Transport::Smb,
        path: path.to_owned(),
        value: None,
        read_at,
    }
}

/// A template that is not under `%SystemRoot%` as a full drive path (`C:\Program Files\…`),
/// for transports that take paths rather than shares.
pub fn resolve_drive_path(template: &str, facts: &HostFacts) -> Result<String, Failure> {
    match resolve(template, facts)? {
        Location::Drive(path) => Ok(path.to_string()),
        Location::AdminShare(_) => Err(skipped(format!("{template}: the system root is not known"))),
    }
}

/// Reads one file's version through the share that serves it. A drive path under the
/// system root falls back to `ADMIN$` when the drive's share is missing or denied.
async fn read(
    session: &mut SmbSession,
    location: &Location,
    facts: &HostFacts,
) -> (String, Result<Option<FileVersionRead>, TransportError>) {
    match location {
        Location::AdminShare(rest) => (format!(r"ADMIN$\{rest}"), session.file_version("ADMIN$", rest).await),
        Location::Drive(path) => {
            let first = session.file_version(&path.drive_share(), path.within_drive()).await;
            let denied = matches!(
                &first,
                Err(TransportError::NoShare(_) | TransportError::AccessDenied { .. })
            );
            let system_root = registry_text(facts, super::identity::WINDOWS_NT_CURRENT_VERSION, "SystemRoot");
            if let (true, Some(rest)) = (denied, system_root.and_then(|r| path.within_system_root(&r))) {
                return (format!(r"ADMIN$\{rest}"), session.file_version("ADMIN$", &rest).await);
            }
            (path.to_string(), first)
        }
    }
}

/// The facts of one file read.
fn file_facts(template: &str, read_from: &str, outcome: Result<Option<FileVersionRead>, Failure>) -> Vec<Fact> {
    let at = Timestamp::now();
    let fact = |aspect: &str, value: Value| Fact::new(&file_fact_name(template, aspect), value, source(read_from, at));
    match outcome {
        Err(f) => FILE_ASPECTS
            .iter()
            .map(|a| fact(a, Value::Unavailable(f.clone())))
            .collect(),
        Ok(None) => FILE_ASPECTS
            .iter()
            .map(|a| {
                fact(
                    a,
                    if *a == "exists" {
                        Value::Bool(false)
                    } else {
                        Value::Absent
                    },
                )
            })
            .collect(),
        Ok(Some(read)) => {
            let PeVersion { version, .. } = &read.pe;
            let fixed = version.as_ref().and_then(|v| v.fixed);
            let text = |t: Option<String>| t.map_or(Value::Absent, Value::Text);
            vec![
                fact("exists", Value::Bool(true)),
                fact("version", text(fixed.map(|f| f.file_version.to_string()))),
                fact("product_version", text(fixed.map(|f| f.product_version.to_string()))),
                fact(
                    "version_text",
                    text(
                        version
                            .as_ref()
                            .and_then(|v| v.string("FileVersion"))
                            .map(str::to_owned),
                    ),
                ),
                fact("machine", Value::Text(read.pe.machine_name().to_owned())),
                fact("size", Value::Number(read.size)),
            ]
        }
    }
}

/// Reads the version of every template in `templates` into `facts`. Returns the failure
/// that ended the session, if one did.
pub async fn collect(session: &mut SmbSession, templates: &[String], facts: &mut HostFacts) -> Option<Failure> {
    let mut lost: Option<Failure> = None;
    for template in templates {
        let location = match resolve(template, facts) {
            Ok(l) => l,
            Err(f) => {
                for fact in file_facts(template, template, Err(f)) {
                    facts.insert(fact);
                }
                continue;
            }
        };
        let (read_from, outcome) = match &lost {
            Some(f) => (template.clone(), Err(f.clone())),
            None => {
                let (from, result) = read(session, &location, facts).await;
                let outcome = result.map_err(|e| {
                    let f = failure(&e);
                    if session_lost(&e) {
                        lost = Some(f.clone());
                    }
                    f
                });
                if let Ok(Some(r)) = &outcome {
                    debug!(file = %from, bytes_read = r.bytes_read, reads = r.reads, size = r.size, "file version read");
                }
                (from, outcome)
            }
        };
        for fact in file_facts(template, &read_from, outcome) {
            facts.insert(fact);
        }
    }
    lost
}

/// The name under which the accounts a file's or folder's DACL grants access are kept:
/// `file-acl:<template>` (a list of SIDs).
pub fn file_acl_fact_name(template: &str) -> String {
    format!("file-acl:{template}")
}

/// Reads the DACL of each file or folder `templates` name, through its drive's share.
pub async fn collect_acls(session: &mut SmbSession, templates: &[String], facts: &mut HostFacts) -> Option<Failure> {
    let mut lost: Option<Failure> = None;
    for template in templates {
        let (read_from, value) = match (resolve(template, facts), &lost) {
            (Err(f), _) => (template.clone(), Value::Unavailable(f)),
            (Ok(_), Some(f)) => (template.clone(), Value::Unavailable(f.clone())),
            (Ok(Location::AdminShare(rest)), None) => {
                let from = format!(r"ADMIN$\{rest}");
                (
                    from,
                    super::dacl_value(session.file_security("ADMIN$", &rest).await, &mut lost),
                )
            }
            (Ok(Location::Drive(path)), None) => {
                let read = session.file_security(&path.drive_share(), path.within_drive()).await;
                (path.to_string(), super::dacl_value(read, &mut lost))
            }
        };
        // A folder that is not where the template says (Inetpub moved off the system drive, a
        // service never installed) proves nothing about its ACL: unknown, not a failure.
        let value = match value {
            Value::Absent => Value::Unavailable(skipped(format!(
                "{read_from} does not exist: moved elsewhere or never installed, so its ACL was not read"
            ))),
            other => other,
        };
        let mut source = source(&read_from, Timestamp::now());
        source.value = Some("DACL: accounts granted access (QUERY_INFO security)".into());
        facts.insert(Fact::new(&file_acl_fact_name(template), value, source));
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_resolve_from_facts() {
        let mut facts = HostFacts::default();
        assert_eq!(
            resolve(KERNEL, &facts),
            Ok(Location::AdminShare(r"System32\ntoskrnl.exe".into()))
        );
        assert!(resolve(EXCHANGE_STORE, &facts)
            .unwrap_err()
            .reason
            .contains("%ExchangeInstallPath%"));
        facts.insert(super::super::derived_text(
            "exchange.install_path",
            r"C:\Program Files\Exchsrvr\",
            "t",
            Timestamp::now(),
        ));
        assert_eq!(
            resolve(EXCHANGE_STORE, &facts),
            Ok(Location::Drive(
                WindowsPath::parse(r"C:\Program Files\Exchsrvr\bin\store.exe").unwrap()
            ))
        );
        assert_eq!(
            resolve(r"D:\Exchsrvr\bin\store.exe", &facts),
            Ok(Location::Drive(
                WindowsPath::parse(r"D:\Exchsrvr\bin\store.exe").unwrap()
            ))
        );
        assert!(resolve(r"%Bogus%\x.exe", &facts).is_err());
    }
}
