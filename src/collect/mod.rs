//! Collection: which facts a host's checks need (the plan), and reading them over a
//! transport into [`HostFacts`]. A value that cannot be read becomes a fact that says why;
//! it never aborts the host.
//!
//! Order over one SMB session: registry values and keys, the hotfix inventory, the files
//! (whose paths come from registry facts), the service states; then the derived identity.

pub mod files;
pub mod hotfix;
pub mod identity;
pub mod owa;
pub mod services;
pub mod winrm;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use exsweep_wire::{lsa, secdesc};
use tracing::debug;

use crate::facts::{
    registry_acl_fact_name, registry_fact_name, registry_key_fact_name, Fact, Failure, FailureKind, HostFacts,
    RegistryValue, Source, Transport, Value,
};
use crate::rules::bulletins;
use crate::rules::{Catalog, Probe};
use crate::timefmt::Timestamp;
use crate::transport::probe::{self, Smb1Probe};
use crate::transport::smb::SmbSession;
use crate::transport::TransportError;

pub use identity::{derive_exchange_setup, CONTROL_WINDOWS, WINDOWS_NT_CURRENT_VERSION};

/// Exchange 2000/2003 setup key ([MS] KB 158530; Exchange Server Analyzer reads it).
pub const EXCHANGE_SETUP: &str = r"HKLM\SOFTWARE\Microsoft\Exchange\Setup";
/// Exchange 2013 and later.
pub const EXCHANGE_V15_SETUP: &str = r"HKLM\SOFTWARE\Microsoft\ExchangeServer\v15\Setup";
/// Exchange 2010.
pub const EXCHANGE_V14_SETUP: &str = r"HKLM\SOFTWARE\Microsoft\ExchangeServer\v14\Setup";
/// Where MBSA looked for update indicators: `Updates\<product>\<SPn>\<KB or Q id>`.
pub const UPDATES: &str = r"HKLM\SOFTWARE\Microsoft\Updates";

/// Values read on every host, whatever the checks: they identify Exchange and Windows and
/// resolve the path variables of file checks.
const IDENTITY_VALUES: [(&str, &str); 24] = [
    (EXCHANGE_SETUP, "Services"),
    (EXCHANGE_SETUP, "NewestBuild"),
    // Exchange 2007 keeps MSI-style values in the old key; 2010 and 2013+ in keys of their own.
    (EXCHANGE_SETUP, "MsiInstallPath"),
    (EXCHANGE_SETUP, "MsiProductMajor"),
    (EXCHANGE_SETUP, "MsiProductMinor"),
    (EXCHANGE_SETUP, "MsiBuildMajor"),
    (EXCHANGE_SETUP, "MsiBuildMinor"),
    (EXCHANGE_V14_SETUP, "MsiInstallPath"),
    (EXCHANGE_V14_SETUP, "MsiProductMajor"),
    (EXCHANGE_V14_SETUP, "MsiProductMinor"),
    (EXCHANGE_V14_SETUP, "MsiBuildMajor"),
    (EXCHANGE_V14_SETUP, "MsiBuildMinor"),
    (EXCHANGE_V15_SETUP, "MsiInstallPath"),
    (EXCHANGE_V15_SETUP, "MsiProductMajor"),
    (EXCHANGE_V15_SETUP, "MsiProductMinor"),
    (EXCHANGE_V15_SETUP, "MsiBuildMajor"),
    (EXCHANGE_V15_SETUP, "MsiBuildMinor"),
    (WINDOWS_NT_CURRENT_VERSION, "CurrentVersion"),
    (WINDOWS_NT_CURRENT_VERSION, "CurrentBuildNumber"),
    (WINDOWS_NT_CURRENT_VERSION, "CSDVersion"),
    (WINDOWS_NT_CURRENT_VERSION, "ProductName"),
    (WINDOWS_NT_CURRENT_VERSION, "SystemRoot"),
    (CONTROL_WINDOWS, "CSDVersion"),
    (files::WINDOWS_CURRENT_VERSION, "ProgramFilesDir"),
];

/// What to read from one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// `(key path, value name)`, sorted by key so that each key is opened once.
    pub registry_values: Vec<(String, String)>,
    /// Keys whose existence a check asks about.
    pub registry_keys: Vec<String>,
    /// Keys whose DACL a check asks about (facts `registry-acl:<KEY>`).
    pub key_acls: Vec<String>,
    /// Files and folders (path templates) whose DACL a check asks about (`file-acl:<path>`).
    pub file_acls: Vec<String>,
    pub update_indicators: bool,
    /// Services whose start mode a check names: their state is read over svcctl too.
    pub services: Vec<String>,
    /// File templates whose versions checks name; the identity files (kernel, store or
    /// ExSetup) are added per host once its setup keys are known.
    pub files: Vec<String>,
    /// The unauthenticated SMB1 and NTLM probes.
    pub probes: bool,
    /// A check names an `owa.*` fact: OWA is asked over plain HTTP for what the configuration
    /// reads did not give.
    pub owa: bool,
    /// A check names an `audit.*` fact: the audit policy is read over `\PIPE\lsarpc`.
    pub audit: bool,
}

impl Plan {
    /// The identity reads plus every registry value, key, service and file named by a check
    /// for these roles or by a bulletin's conditions. The bulletins' fixed files are added per
    /// host once its products are known ([`collect_smb`]).
    pub fn for_roles(roles: &[String], catalog: &Catalog) -> Plan {
        let mut values: BTreeSet<(String, String)> = IDENTITY_VALUES
            .iter()
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect();
        let mut keys = BTreeSet::new();
        let mut services = BTreeSet::new();
        let mut files: Vec<String> = Vec::new();
        let mut owa = false;
        let mut audit = false;
        let mut key_acls = BTreeSet::new();
        let mut file_acls = BTreeSet::new();
        let check_probes = catalog
            .checks_for(roles)
            .flat_map(|(check, _)| check.condition.probes());
        for probe in check_probes.chain(bulletins::probes(&catalog.bulletins)) {
            match probe {
                Probe::Registry { path, value } => {
                    if let Some(name) = services::service_of_registry_check(path, value) {
                        services.insert(name);
                    }
                    values.insert((path.clone(), value.clone()));
                }
                Probe::RegistryKey { path } => {
                    keys.insert(path.clone());
                }
                Probe::Service { name, .. } => {
                    services.insert(name.clone());
                }
                Probe::File { path, .. } => {
                    if !files.iter().any(|f| f.eq_ignore_ascii_case(path)) {
                        files.push(path.clone());
                    }
                }
                Probe::Fact(name) => {
                    owa |= name.starts_with("owa.");
                    audit |= name.starts_with("audit.");
                    if let Some(path) = name.strip_prefix("registry-acl:") {
                        key_acls.insert(path.to_owned());
                    }
                    if let Some(template) = name.strip_prefix("file-acl:") {
                        file_acls.insert(template.to_owned());
                    }
                }
            }
        }
        for name in &services {
            for value in services::SERVICE_VALUES {
                values.insert((services::service_key(name), value.to_owned()));
            }
        }
        Plan {
            registry_values: values.into_iter().collect(),
            registry_keys: keys.into_iter().collect(),
            key_acls: key_acls.into_iter().collect(),
            file_acls: file_acls.into_iter().collect(),
            update_indicators: true,
            services: services.into_iter().collect(),
            files,
            probes: true,
            owa,
            audit,
        }
    }

    /// Every fact this plan reads directly, with the place each comes from (for marking what
    /// a deadline cut off).
    /// The identity files depend on the host (store.exe or ExSetup.exe), so `facts` is asked.
    pub fn planned_facts(&self, facts: &HostFacts) -> Vec<(String, String, Option<String>)> {
        let values = self
            .registry_values
            .iter()
            .map(|(p, v)| (registry_fact_name(p, v), p.clone(), Some(v.clone())));
        let keys = self
            .registry_keys
            .iter()
            .map(|p| (registry_key_fact_name(p), p.clone(), None))
            .chain(
                self.key_acls
                    .iter()
                    .map(|p| (registry_acl_fact_name(p), p.clone(), None)),
            )
            .chain(
                self.file_acls
                    .iter()
                    .map(|t| (files::file_acl_fact_name(t), t.clone(), None)),
            );
        let updates = self
            .update_indicators
            .then(|| ["updates.indicators", "hotfix.installed"].map(|n| (n.to_owned(), UPDATES.to_owned(), None)))
            .into_iter()
            .flatten();
        let states = self
            .services
            .iter()
            .map(|s| (services::service_fact_name(s, "state"), "svcctl".to_owned(), None));
        let identity: Vec<String> = files::identity_files(facts).into_iter().map(str::to_owned).collect();
        let files = identity
            .iter()
            .chain(self.files.iter())
            .flat_map(|t| files::FILE_ASPECTS.map(|aspect| (files::file_fact_name(t, aspect), t.clone(), None)))
            .collect::<Vec<_>>();
        let probes = self
            .probes
            .then_some(PROBE_FACTS)
            .into_iter()
            .flatten()
            .map(|n| (n.to_owned(), "probe".to_owned(), None));
        let audit = self
            .audit
            .then_some(lsa::AUDIT_CATEGORIES)
            .into_iter()
            .flatten()
            .map(|c| (format!("audit.{c}"), AUDIT_POLICY.to_owned(), None));
        values
            .chain(keys)
            .chain(updates)
            .chain(states)
            .chain(files)
            .chain(probes)
            .chain(audit)
            .collect()
    }
}

/// Where the audit policy comes from, as the facts' source says.
const AUDIT_POLICY: &str = "LSA PolicyAuditEventsInformation";

/// The facts the unauthenticated probes give.
const PROBE_FACTS: [&str; 8] = [
    "smb.smb1_accepted",
    "ntlm.target_name",
    "ntlm.nb_computer_name",
    "ntlm.nb_domain_name",
    "ntlm.dns_computer_name",
    "ntlm.dns_domain_name",
    "ntlm.dns_tree_name",
    "ntlm.os_version",
];

/// Ends a host's collection: every planned fact not read says why (when `failure` is given:
/// the session was lost, or the deadline came), and every derived fact is worked out from
/// what was read. Safe to call more than once.
pub fn finish(plan: &Plan, facts: &mut HostFacts, failure: Option<&Failure>) {
    services::derive_from_registry(&plan.services, facts);
    derive_identity(facts);
    if let Some(f) = failure {
        for (name, path, value) in plan.planned_facts(facts) {
            if facts.get(&name).is_none() {
                let mut source = smb_source(&path);
                source.value = value;
                facts.insert(Fact::new(&name, Value::Unavailable(f.clone()), source));
            }
        }
        derive_identity(facts);
    }
}

fn failure(e: &TransportError) -> Failure {
    Failure {
        kind: e.kind(),
        reason: e.to_string(),
    }
}

/// The fact value of a security descriptor read: the accounts its DACL grants access,
/// `absent` when the object does not exist, or why it could not be read (a lost session is
/// remembered in `lost`).
fn dacl_value(read: Result<Option<Vec<u8>>, TransportError>, lost: &mut Option<Failure>) -> Value {
    match read {
        Ok(None) => Value::Absent,
        Ok(Some(bytes)) => match secdesc::decode(&bytes) {
            Ok(sd) => Value::List(sd.allowed_sids()),
            Err(source) => Value::Unavailable(failure(&TransportError::Decode {
                what: "security descriptor",
                source,
            })),
        },
        Err(e) => {
            let f = failure(&e);
            if session_lost(&e) {
                *lost = Some(f.clone());
            }
            Value::Unavailable(f)
        }
    }
}

/// Whether the session itself is gone or out of step (a response that could not be decoded
/// may leave fragments in the pipe), so later reads need not be tried.
fn session_lost(e: &TransportError) -> bool {
    matches!(e.kind(), FailureKind::Unreachable | FailureKind::Timeout)
        || matches!(e, TransportError::Decode { .. } | TransportError::Smb { .. })
}

fn smb_source(path: &str) -> Source {
    Source {
        transport: Transport::Smb,
        path: path.to_owned(),
        value: None,
        read_at: Timestamp::now(),
    }
}

fn derived_text(name: &str, text: &str, from: &str, read_at: Timestamp) -> Fact {
    Fact::new(
        name,
        Value::Text(text.into()),
        Source {
            transport: Transport::Derived,
            path: from.into(),
            value: None,
            read_at,
        },
    )
}

/// Reads the plan over an SMB session into `facts`. Each fact is inserted as soon as it is
/// read, so a caller that cuts this short at a deadline keeps what was collected.
pub async fn collect_smb(session: &mut SmbSession, plan: &Plan, catalog: &Catalog, facts: &mut HostFacts) {
    let now = Timestamp::now();
    facts.insert(derived_text("smb.dialect", &session.info.dialect, "negotiate", now));
    facts.insert(Fact::new(
        "smb.signing_required",
        Value::Bool(session.info.signing_required),
        smb_source("negotiate"),
    ));

    let started = Instant::now();
    let mut lost: Option<Failure> = None;
    for (path, value) in &plan.registry_values {
        let source = Source {
            transport: Transport::Smb,
            path: path.clone(),
            value: Some(value.clone()),
            read_at: Timestamp::now(),
        };
        let (fact_value, reg) = match &lost {
            Some(f) => (Value::Unavailable(f.clone()), None),
            None => match session.query_value(path, value).await {
                Ok(Some(data)) => (Value::Registry(RegistryValue::from_reg(&data)), Some(data)),
                Ok(None) => (Value::Absent, None),
                Err(e) => {
                    let f = failure(&e);
                    if session_lost(&e) {
                        lost = Some(f.clone());
                    }
                    (Value::Unavailable(f), None)
                }
            },
        };
        facts.insert(Fact {
            name: registry_fact_name(path, value),
            value: fact_value,
            reg,
            source,
        });
    }

    for path in &plan.registry_keys {
        let value = match &lost {
            Some(f) => Value::Unavailable(f.clone()),
            None => match session.key_exists(path).await {
                Ok(true) => Value::Bool(true),
                Ok(false) => Value::Absent,
                Err(e) => {
                    let f = failure(&e);
                    if session_lost(&e) {
                        lost = Some(f.clone());
                    }
                    Value::Unavailable(f)
                }
            },
        };
        facts.insert(Fact::new(&registry_key_fact_name(path), value, smb_source(path)));
    }
    for path in &plan.key_acls {
        let value = match &lost {
            Some(f) => Value::Unavailable(f.clone()),
            None => dacl_value(session.key_security(path).await, &mut lost),
        };
        let mut source = smb_source(path);
        source.value = Some("DACL: accounts granted access (BaseRegGetKeySecurity)".into());
        facts.insert(Fact::new(&registry_acl_fact_name(path), value, source));
    }
    derive_exchange_setup(facts);
    services::derive_from_registry(&plan.services, facts);
    debug!(
        phase = "registry",
        ms = started.elapsed().as_millis() as u64,
        "phase done"
    );
    if lost.is_some() {
        // Nothing more can be read over this session; say so for the rest of the plan.
        return finish(plan, facts, lost.as_ref());
    }

    let phase = Instant::now();
    if plan.update_indicators {
        if let Some(f) = hotfix::collect(session, facts).await {
            return finish(plan, facts, Some(&f));
        }
    }
    debug!(
        phase = "hotfixes",
        ms = phase.elapsed().as_millis() as u64,
        "phase done"
    );
    let phase = Instant::now();
    // Identity files first: the Exchange level they give decides which bulletins' fixed
    // files are needed.
    let identity: Vec<String> = files::identity_files(facts).into_iter().map(str::to_owned).collect();
    let mut lost = files::collect(session, &identity, facts).await;
    derive_identity(facts);
    if lost.is_none() {
        let mut rest: Vec<String> = Vec::new();
        for t in plan
            .files
            .iter()
            .cloned()
            .chain(bulletins::files_for_host(&catalog.bulletins, facts))
        {
            let known = |list: &[String]| list.iter().any(|k| k.eq_ignore_ascii_case(&t));
            if !known(&identity) && !known(&rest) {
                rest.push(t);
            }
        }
        lost = files::collect(session, &rest, facts).await;
    }
    if lost.is_none() && !plan.file_acls.is_empty() {
        lost = files::collect_acls(session, &plan.file_acls, facts).await;
    }
    debug!(phase = "files", ms = phase.elapsed().as_millis() as u64, "phase done");
    if lost.is_some() {
        return finish(plan, facts, lost.as_ref());
    }
    let phase = Instant::now();
    services::collect_states(session, &plan.services, facts).await;
    debug!(
        phase = "services",
        ms = phase.elapsed().as_millis() as u64,
        "phase done"
    );
    if plan.audit {
        audit_policy(session, facts).await;
    }
    finish(plan, facts, None);
}

/// `audit.<category>` for each Windows 2000 audit category: `success-and-failure`, `success`,
/// `failure` or `none`; a category the host does not report is unreadable, not `none`.
async fn audit_policy(session: &mut SmbSession, facts: &mut HostFacts) {
    let read = session.audit_policy().await;
    for (index, category) in lsa::AUDIT_CATEGORIES.iter().enumerate() {
        let value = match &read {
            Ok(events) => match events.options.get(index) {
                Some(option) => match lsa::audit_setting(events.auditing_mode, *option) {
                    Some(setting) => Value::Text(setting.to_owned()),
                    None => Value::Unavailable(Failure {
                        kind: FailureKind::Protocol,
                        reason: format!("option bits {option:#x} for {category}, which a read never returns"),
                    }),
                },
                None => Value::Unavailable(Failure {
                    kind: FailureKind::Protocol,
                    reason: format!(
                        "the host reports {} audit categories; {category} is not among them",
                        events.options.len()
                    ),
                }),
            },
            Err(e) => Value::Unavailable(failure(e)),
        };
        // The raw answer beside the reading: "none" because auditing is off altogether calls
        // for another remedy than "none" for this one category.
        let mut source = smb_source(AUDIT_POLICY);
        source.value = Some(match &read {
            Ok(events) => format!(
                "{category}: auditing {}, option {}",
                if events.auditing_mode { "on" } else { "off" },
                events.options.get(index).map_or("absent".into(), |o| format!("{o:#x}"))
            ),
            Err(_) => category.to_string(),
        });
        facts.insert(Fact::new(&format!("audit.{category}"), value, source));
    }
}

/// The identity facts worked out from what was read; safe to run again after more reads.
pub fn derive_identity(facts: &mut HostFacts) {
    derive_exchange_setup(facts);
    identity::derive_exchange_build(facts);
    identity::derive_os(facts);
}

/// The unauthenticated probes, on connections of their own: `smb.smb1_accepted` and the
/// NTLM CHALLENGE's `ntlm.*` facts.
pub async fn collect_probes(addr: &str, timeout: Duration, facts: &mut HostFacts) {
    let phase = Instant::now();
    let smb1 = match probe::probe_smb1(addr, timeout).await {
        Ok(Smb1Probe::Accepted { .. }) => (Value::Bool(true), "SMB1 NEGOTIATE answered with NT LM 0.12".to_owned()),
        Ok(Smb1Probe::Refused(how)) => (Value::Bool(false), how),
        Err(e) => (Value::Unavailable(failure(&e)), "SMB1 NEGOTIATE probe".to_owned()),
    };
    facts.insert(Fact::new("smb.smb1_accepted", smb1.0, smb_source(&smb1.1)));

    const FROM: &str = "NTLM CHALLENGE (SMB2 SESSION_SETUP, no credential sent)";
    match probe::probe_ntlm(addr, timeout).await {
        Ok(found) => {
            let info = &found.challenge.target_info;
            let text = |v: &Option<String>| v.clone().map_or(Value::Absent, Value::Text);
            let named = [
                ("ntlm.target_name", Value::Text(found.challenge.target_name.clone())),
                ("ntlm.nb_computer_name", text(&info.nb_computer_name)),
                ("ntlm.nb_domain_name", text(&info.nb_domain_name)),
                ("ntlm.dns_computer_name", text(&info.dns_computer_name)),
                ("ntlm.dns_domain_name", text(&info.dns_domain_name)),
                ("ntlm.dns_tree_name", text(&info.dns_tree_name)),
                (
                    "ntlm.os_version",
                    found
                        .challenge
                        .version
                        .map_or(Value::Absent, |v| Value::Text(v.to_string())),
                ),
            ];
            for (name, value) in named {
                facts.insert(Fact::new(name, value, smb_source(FROM)));
            }
        }
        Err(e) => {
            let f = failure(&e);
            for name in &PROBE_FACTS[1..] {
                facts.insert(Fact::new(name, Value::Unavailable(f.clone()), smb_source(FROM)));
            }
        }
    }
    debug!(phase = "probes", ms = phase.elapsed().as_millis() as u64, "phase done");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_reads_each_value_once() {
        let catalog = Catalog::from_sources([(
            std::path::Path::new("b.toml"),
            "[[check]]\nid='A'\ntitle='a'\nseverity='low'\nroles=['r']\nregistry={path='HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup',value='Services'}\nexpect={op='exists'}\n",
        )])
        .unwrap();
        let plan = Plan::for_roles(&["r".into()], &catalog);
        // The check's value is also an identity value: read once.
        assert_eq!(plan.registry_values.len(), IDENTITY_VALUES.len());
        assert!(Plan::for_roles(&["other".into()], &catalog).registry_keys.is_empty());
    }
}
