//! Collection: which facts a host's checks need (the plan), and reading them over a
//! transport into [`HostFacts`]. A value that cannot be read becomes a fact that says why;
//! it never aborts the host.

use std::collections::BTreeSet;

use exsweep_wire::regvalue::RegData;

use crate::facts::{
    registry_fact_name, registry_key_fact_name, Failure, FailureKind, Fact, HostFacts, RegistryValue, Source, Transport,
    Value,
};
use crate::rules::{Catalog, Probe};
use crate::timefmt::Timestamp;
use crate::transport::smb::SmbRegistry;
use crate::transport::TransportError;

/// Exchange 2000/2003 setup key ([MS] KB 158530; Exchange Server Analyzer reads it).
pub const EXCHANGE_SETUP: &str = r"HKLM\SOFTWARE\Microsoft\Exchange\Setup";
/// Exchange 2013 and later.
pub const EXCHANGE_V15_SETUP: &str = r"HKLM\SOFTWARE\Microsoft\ExchangeServer\v15\Setup";
/// Where MBSA looked for update indicators: `Updates\<product>\<SPn>\<KB or Q id>`.
pub const UPDATES: &str = r"HKLM\SOFTWARE\Microsoft\Updates";

/// Values read on every host, whatever the checks: they identify Exchange.
const IDENTITY_VALUES: [(&str, &str); 7] = [
    (EXCHANGE_SETUP, "Services"),
    (EXCHANGE_SETUP, "NewestBuild"),
    (EXCHANGE_V15_SETUP, "MsiInstallPath"),
    (EXCHANGE_V15_SETUP, "MsiProductMajor"),
    (EXCHANGE_V15_SETUP, "MsiProductMinor"),
    (EXCHANGE_V15_SETUP, "MsiBuildMajor"),
    (EXCHANGE_V15_SETUP, "MsiBuildMinor"),
];

/// What to read from one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// `(key path, value name)`, sorted by key so that each key is opened once.
    pub registry_values: Vec<(String, String)>,
    /// Keys whose existence a check asks about.
    pub registry_keys: Vec<String>,
    pub update_indicators: bool,
}

impl Plan {
    /// The identity reads plus every registry value named by a check for these roles.
    pub fn for_roles(roles: &[String], catalog: &Catalog) -> Plan {
        let mut values: BTreeSet<(String, String)> = IDENTITY_VALUES
            .iter()
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect();
        let mut keys = BTreeSet::new();
        for (check, _) in catalog.checks_for(roles) {
            match &check.probe {
                Probe::Registry { path, value } => {
                    values.insert((path.clone(), value.clone()));
                }
                Probe::RegistryKey { path } => {
                    keys.insert(path.clone());
                }
            }
        }
        Plan {
            registry_values: values.into_iter().collect(),
            registry_keys: keys.into_iter().collect(),
            update_indicators: true,
        }
    }

    /// The registry facts this plan produces, with the key and value each reads (for marking
    /// what a deadline cut off).
    pub fn registry_facts(&self) -> Vec<(String, &str, Option<&str>)> {
        let values = self
            .registry_values
            .iter()
            .map(|(p, v)| (registry_fact_name(p, v), p.as_str(), Some(v.as_str())));
        let keys = self
            .registry_keys
            .iter()
            .map(|p| (registry_key_fact_name(p), p.as_str(), None));
        values.chain(keys).collect()
    }
}

fn failure(e: &TransportError) -> Failure {
    Failure {
        kind: e.kind(),
        reason: e.to_string(),
    }
}

/// Whether the session itself is gone or out of step (a response that could not be decoded
/// may leave fragments in the pipe), so later reads need not be tried.
fn session_lost(e: &TransportError) -> bool {
    matches!(e.kind(), FailureKind::Unreachable | FailureKind::Timeout)
        || matches!(e, TransportError::Decode { .. } | TransportError::Smb { .. })
}

/// Reads the plan over an SMB registry session into `facts`. Each fact is inserted as soon
/// as it is read, so a caller that cuts this short at a deadline keeps what was collected.
pub async fn collect_smb(session: &mut SmbRegistry, plan: &Plan, facts: &mut HostFacts) {
    let now = Timestamp::now();
    facts.insert(derived_text("smb.dialect", &session.info.dialect, "negotiate", now));
    facts.insert(Fact {
        name: "smb.signing_required".into(),
        value: Value::Bool(session.info.signing_required),
        reg: None,
        source: Source {
            transport: Transport::Smb,
            path: "negotiate".into(),
            value: None,
            read_at: now,
        },
    });

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
        let read_at = Timestamp::now();
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
        facts.insert(Fact {
            name: registry_key_fact_name(path),
            value,
            reg: None,
            source: Source {
                transport: Transport::Smb,
                path: path.clone(),
                value: None,
                read_at,
            },
        });
    }

    if plan.update_indicators {
        let read_at = Timestamp::now();
        let value = match &lost {
            Some(f) => Value::Unavailable(f.clone()),
            None => match update_indicators(session).await {
                Ok(list) => Value::List(list),
                Err(e) => Value::Unavailable(failure(&e)),
            },
        };
        facts.insert(Fact {
            name: "updates.indicators".into(),
            value,
            reg: None,
            source: Source {
                transport: Transport::Smb,
                path: UPDATES.into(),
                value: None,
                read_at,
            },
        });
    }
    derive_exchange(facts);
}

/// Every `<product>\<SPn>\<id>` under the Updates key, as MBSA enumerated them, and
/// `<product>\<id>` where an update registered without a service-pack level.
async fn update_indicators(session: &mut SmbRegistry) -> Result<Vec<String>, TransportError> {
    let mut out = Vec::new();
    let Some(products) = session.subkeys(UPDATES).await? else {
        return Ok(out);
    };
    for product in products {
        let product_path = format!("{UPDATES}\\{product}");
        for level in session.subkeys(&product_path).await?.unwrap_or_default() {
            let level_path = format!("{product_path}\\{level}");
            let ids = session.subkeys(&level_path).await?.unwrap_or_default();
            // Some updates register without a service-pack level (`<product>\<KB id>`):
            // a level with nothing below it is an indicator itself.
            if ids.is_empty() {
                out.push(format!("{product}\\{level}"));
            }
            for id in ids {
                out.push(format!("{product}\\{level}\\{id}"));
            }
        }
    }
    Ok(out)
}

fn derived_text(name: &str, text: &str, from: &str, read_at: Timestamp) -> Fact {
    Fact {
        name: name.into(),
        value: Value::Text(text.into()),
        reg: None,
        source: Source {
            transport: Transport::Derived,
            path: from.into(),
            value: None,
            read_at,
        },
    }
}

fn reg<'a>(facts: &'a HostFacts, path: &str, value: &str) -> Option<&'a RegData> {
    facts.registry(path, value).and_then(|f| f.reg.as_ref())
}

fn number(data: Option<&RegData>) -> Option<u64> {
    match data? {
        RegData::Dword(n) | RegData::DwordBigEndian(n) => Some(u64::from(*n)),
        RegData::Qword(n) => Some(*n),
        RegData::Sz(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(data: Option<&RegData>) -> Option<String> {
    match data? {
        RegData::Sz(s) | RegData::ExpandSz(s) => Some(s.clone()),
        _ => None,
    }
}

/// `exchange.installed`, `exchange.install_path`, `exchange.setup_build` from the setup keys.
/// The build here is what setup recorded; later issues add the build of the binaries.
pub fn derive_exchange(facts: &mut HostFacts) {
    let read_at = Timestamp::now();
    let legacy_path = text(reg(facts, EXCHANGE_SETUP, "Services"));
    let legacy_build = number(reg(facts, EXCHANGE_SETUP, "NewestBuild"));
    let v15_path = text(reg(facts, EXCHANGE_V15_SETUP, "MsiInstallPath"));
    let v15_build = (
        number(reg(facts, EXCHANGE_V15_SETUP, "MsiProductMajor")),
        number(reg(facts, EXCHANGE_V15_SETUP, "MsiProductMinor")),
        number(reg(facts, EXCHANGE_V15_SETUP, "MsiBuildMajor")),
        number(reg(facts, EXCHANGE_V15_SETUP, "MsiBuildMinor")),
    );
    // If the setup keys themselves could not be read, say so rather than "not installed".
    let unreadable = [EXCHANGE_SETUP, EXCHANGE_V15_SETUP].iter().find_map(|p| {
        match facts.registry(p, if *p == EXCHANGE_SETUP { "Services" } else { "MsiInstallPath" })
        {
            Some(Fact { value: Value::Unavailable(f), .. }) => Some(f.clone()),
            _ => None,
        }
    });

    let (installed, path, build, from) = if let Some(p) = v15_path {
        let build = match v15_build {
            (Some(a), Some(b), Some(c), Some(d)) => Some(format!("{a}.{b}.{c}.{d}")),
            _ => None,
        };
        (true, Some(p), build, EXCHANGE_V15_SETUP)
    } else if let Some(p) = legacy_path {
        // Exchange 2000 and 2003 record only the build number; both are version 6.x, and
        // the minor version (6.0 vs 6.5) is told from the build: 2003 starts at 6.5.6944.
        let build = legacy_build.map(|b| if b >= 6944 { format!("6.5.{b}") } else { format!("6.0.{b}") });
        (true, Some(p), build, EXCHANGE_SETUP)
    } else {
        (false, None, None, EXCHANGE_SETUP)
    };

    let installed_value = match (&unreadable, installed) {
        (Some(f), false) => Value::Unavailable(f.clone()),
        _ => Value::Bool(installed),
    };
    facts.insert(Fact {
        name: "exchange.installed".into(),
        value: installed_value,
        reg: None,
        source: Source {
            transport: Transport::Derived,
            path: from.into(),
            value: None,
            read_at,
        },
    });
    if let Some(p) = path {
        facts.insert(derived_text("exchange.install_path", &p, from, read_at));
    }
    if let Some(b) = build {
        facts.insert(derived_text("exchange.setup_build", &b, from, read_at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(facts: &mut HostFacts, path: &str, value: &str, data: RegData) {
        facts.insert(Fact {
            name: registry_fact_name(path, value),
            value: Value::Registry(RegistryValue::from_reg(&data)),
            reg: Some(data),
            source: Source {
                transport: Transport::Smb,
                path: path.into(),
                value: Some(value.into()),
                read_at: Timestamp::now(),
            },
        });
    }

    fn text_of(facts: &HostFacts, name: &str) -> Option<String> {
        match &facts.get(name)?.value {
            Value::Text(t) => Some(t.clone()),
            Value::Bool(b) => Some(b.to_string()),
            other => Some(format!("{other:?}")),
        }
    }

    #[test]
    fn exchange_2000_and_modern_builds_are_derived_from_setup_keys() {
        let mut facts = HostFacts::default();
        put(&mut facts, EXCHANGE_SETUP, "Services", RegData::Sz(r"C:\Program Files\Exchsrvr".into()));
        put(&mut facts, EXCHANGE_SETUP, "NewestBuild", RegData::Dword(6249));
        derive_exchange(&mut facts);
        assert_eq!(text_of(&facts, "exchange.installed").as_deref(), Some("true"));
        assert_eq!(text_of(&facts, "exchange.setup_build").as_deref(), Some("6.0.6249"));

        let mut facts = HostFacts::default();
        put(&mut facts, EXCHANGE_V15_SETUP, "MsiInstallPath", RegData::Sz(r"C:\Program Files\Microsoft\Exchange Server\V15\".into()));
        for (v, n) in [("MsiProductMajor", 15), ("MsiProductMinor", 2), ("MsiBuildMajor", 1118), ("MsiBuildMinor", 7)] {
            put(&mut facts, EXCHANGE_V15_SETUP, v, RegData::Dword(n));
        }
        derive_exchange(&mut facts);
        assert_eq!(text_of(&facts, "exchange.setup_build").as_deref(), Some("15.2.1118.7"));

        let mut facts = HostFacts::default();
        derive_exchange(&mut facts);
        assert_eq!(text_of(&facts, "exchange.installed").as_deref(), Some("false"));
    }

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
