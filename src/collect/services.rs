//! Services: start mode, display name and image path from each service's registry key, and
//! the running state from the service control manager (`svcctl`). Facts:
//! `service.<Name>.start_mode`, `.display_name`, `.image_path`, `.state`.

use std::collections::HashMap;

use exsweep_wire::regvalue::RegData;

use super::{failure, smb_source};
use crate::facts::{Fact, Failure, FailureKind, HostFacts, Source, Transport, Value};
use crate::timefmt::Timestamp;
use crate::transport::smb::SmbSession;

/// Where every service's configuration lives.
pub const SERVICES_KEY: &str = r"HKLM\SYSTEM\CurrentControlSet\Services";
/// The registry values read for each planned service.
pub const SERVICE_VALUES: [&str; 3] = ["Start", "DisplayName", "ImagePath"];

/// The service's registry key.
pub fn service_key(name: &str) -> String {
    format!(r"{SERVICES_KEY}\{name}")
}

/// `service.<Name>.<aspect>`.
pub fn service_fact_name(name: &str, aspect: &str) -> String {
    format!("service.{name}.{aspect}")
}

/// The service a registry check is about, when it checks `Services\<Name>\Start`.
pub fn service_of_registry_check(path: &str, value: &str) -> Option<String> {
    let prefix = format!("{SERVICES_KEY}\\");
    let name = path
        .get(prefix.len()..)
        .filter(|_| path[..prefix.len()].eq_ignore_ascii_case(&prefix))?;
    (value.eq_ignore_ascii_case("Start") && !name.is_empty() && !name.contains('\\')).then(|| name.to_owned())
}

/// `Start` as a word ([MS-SCMR] 2.2.15 dwStartType).
pub fn start_mode_name(start: u32) -> &'static str {
    match start {
        0 => "boot",
        1 => "system",
        2 => "automatic",
        3 => "manual",
        4 => "disabled",
        _ => "unknown",
    }
}

/// Turns the registry values already read into start-mode, display-name and image-path facts,
/// where no transport gave them directly (Win32_Service over WinRM does).
pub fn derive_from_registry(services: &[String], facts: &mut HostFacts) {
    for name in services {
        let key = service_key(name);
        for (value, aspect) in [
            ("Start", "start_mode"),
            ("DisplayName", "display_name"),
            ("ImagePath", "image_path"),
        ] {
            let Some(read) = facts.registry(&key, value).cloned() else {
                continue;
            };
            let existing = facts.get(&service_fact_name(name, aspect));
            if existing
                .is_some_and(|f| f.source.transport == Transport::Winrm && !matches!(f.value, Value::Unavailable(_)))
            {
                continue;
            }
            let derived = match (&read.value, &read.reg) {
                (Value::Unavailable(f), _) => Value::Unavailable(f.clone()),
                (_, Some(RegData::Dword(n))) if aspect == "start_mode" => Value::Text(start_mode_name(*n).to_owned()),
                (_, Some(RegData::Sz(s) | RegData::ExpandSz(s))) if aspect != "start_mode" => Value::Text(s.clone()),
                (Value::Absent, _) => Value::Absent,
                // A value of the wrong type: the registry fact keeps it; here it is unknown.
                (_, reg) => Value::Unavailable(Failure {
                    kind: FailureKind::Protocol,
                    reason: format!(
                        "{key}\\{value} is {}, not the {} Windows writes",
                        reg.as_ref()
                            .map_or_else(|| "not a registry value".to_owned(), |d| d.type_name()),
                        if aspect == "start_mode" { "REG_DWORD" } else { "REG_SZ" }
                    ),
                }),
            };
            facts.insert(Fact::new(
                &service_fact_name(name, aspect),
                derived,
                Source {
                    transport: read.source.transport,
                    path: key.clone(),
                    value: Some(value.to_owned()),
                    read_at: read.source.read_at,
                },
            ));
        }
    }
}

/// Lists services over svcctl and records `service.<Name>.state` for each planned service:
/// the state, `absent` when the manager does not list it, or why the list could not be read.
pub async fn collect_states(session: &mut SmbSession, services: &[String], facts: &mut HostFacts) {
    if services.is_empty() {
        return;
    }
    const FROM: &str = r"svcctl REnumServicesStatusW";
    let listed = session.services().await;
    let read_at = Timestamp::now();
    let by_name: Result<HashMap<String, &'static str>, _> = listed.as_ref().map(|list| {
        list.iter()
            .map(|s| (s.name.to_ascii_lowercase(), s.status.state_name()))
            .collect()
    });
    for name in services {
        let value = match &by_name {
            Ok(map) => map
                .get(&name.to_ascii_lowercase())
                .map_or(Value::Absent, |state| Value::Text((*state).to_owned())),
            Err(e) => Value::Unavailable(failure(e)),
        };
        let mut source = smb_source(FROM);
        source.read_at = read_at;
        facts.insert(Fact::new(&service_fact_name(name, "state"), value, source));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_checks_name_their_service() {
        let key = service_key("MSExchangeIS");
        assert_eq!(
            service_of_registry_check(&key, "Start").as_deref(),
            Some("MSExchangeIS")
        );
        assert_eq!(
            service_of_registry_check(&key.to_lowercase(), "start").as_deref(),
            Some("msexchangeis")
        );
        assert_eq!(service_of_registry_check(&key, "ImagePath"), None);
        assert_eq!(service_of_registry_check(&format!("{key}\\Parameters"), "Start"), None);
        assert_eq!(service_of_registry_check(r"HKLM\SOFTWARE\X", "Start"), None);
        assert_eq!(start_mode_name(4), "disabled");
    }

    #[test]
    fn start_modes_come_from_the_registry_and_odd_types_are_unknown() {
        use crate::facts::{registry_fact_name, RegistryValue};
        use crate::timefmt::Timestamp;
        let key = service_key("IMAP4Svc");
        let mut facts = HostFacts::default();
        let mut put = |value: &str, data: Option<RegData>| {
            facts.insert(Fact {
                name: registry_fact_name(&key, value),
                value: data
                    .as_ref()
                    .map_or(Value::Absent, |d| Value::Registry(RegistryValue::from_reg(d))),
                reg: data,
                source: smb_source(&key),
            });
        };
        put("Start", Some(RegData::Sz("4".into())));
        put("DisplayName", Some(RegData::Sz("Microsoft Exchange IMAP4".into())));
        put("ImagePath", None);
        let _ = Timestamp::now();
        derive_from_registry(&["IMAP4Svc".to_owned()], &mut facts);
        match &facts.get("service.IMAP4Svc.start_mode").unwrap().value {
            Value::Unavailable(f) => assert!(f.reason.contains("REG_SZ"), "{f:?}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            facts.get("service.IMAP4Svc.display_name").unwrap().value,
            Value::Text("Microsoft Exchange IMAP4".into())
        );
        assert_eq!(facts.get("service.IMAP4Svc.image_path").unwrap().value, Value::Absent);
    }
}
