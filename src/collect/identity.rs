//! Who the host is: Exchange (installed, generation, build, service pack or CU and SU) and
//! Windows (version, build, service pack), each fact with what it was worked out from.
//! Binaries win over the registry: setup keys record the last setup run, not the hotfixes
//! and rollups installed after it, while the store binary's version moves with each of them.

use exsweep_wire::regvalue::RegData;

use super::files::{file_fact_name, EXCHANGE_SETUP_EXE, EXCHANGE_STORE, KERNEL};
use super::{derived_text, EXCHANGE_SETUP, EXCHANGE_V14_SETUP, EXCHANGE_V15_SETUP};

/// Keys with MSI-style setup values (`MsiInstallPath`, `MsiProductMajor`…), newest first:
/// 2013 and later, 2010, 2007 (which kept them in the old key).
pub const MSI_SETUP_KEYS: [&str; 3] = [EXCHANGE_V15_SETUP, EXCHANGE_V14_SETUP, EXCHANGE_SETUP];
use crate::builds::{self, Build};
use crate::facts::{Fact, HostFacts, Source, Transport, Value};
use crate::timefmt::Timestamp;

/// Windows version values (`CurrentVersion` 5.0, `CurrentBuildNumber` 2195, `CSDVersion`
/// "Service Pack 4", `ProductName`).
pub const WINDOWS_NT_CURRENT_VERSION: &str = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion";
/// `CSDVersion` as a DWORD, 0x100 per service pack: Windows 2000 keeps it here too.
pub const CONTROL_WINDOWS: &str = r"HKLM\SYSTEM\CurrentControlSet\Control\Windows";

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

fn fact_text<'a>(facts: &'a HostFacts, name: &str) -> Option<&'a str> {
    match &facts.get(name)?.value {
        Value::Text(t) => Some(t),
        _ => None,
    }
}

fn derived(name: &str, value: Value, from: &str, read_at: Timestamp) -> Fact {
    Fact::new(
        name,
        value,
        Source {
            transport: Transport::Derived,
            path: from.into(),
            value: None,
            read_at,
        },
    )
}

/// `exchange.installed`, `exchange.install_path`, `exchange.setup_build` from the setup keys.
pub fn derive_exchange_setup(facts: &mut HostFacts) {
    let read_at = Timestamp::now();
    let legacy_path = text(reg(facts, EXCHANGE_SETUP, "Services"));
    let legacy_build = number(reg(facts, EXCHANGE_SETUP, "NewestBuild"));
    let msi = MSI_SETUP_KEYS.iter().find_map(|key| {
        let path = text(reg(facts, key, "MsiInstallPath"))?;
        let part = |v| number(reg(facts, key, v));
        Some((
            key,
            path,
            (
                part("MsiProductMajor"),
                part("MsiProductMinor"),
                part("MsiBuildMajor"),
                part("MsiBuildMinor"),
            ),
        ))
    });
    // If the setup keys themselves could not be read, say so rather than "not installed".
    let unreadable = [(EXCHANGE_SETUP, "Services"), (EXCHANGE_V15_SETUP, "MsiInstallPath")]
        .iter()
        .find_map(|(p, v)| match facts.registry(p, v) {
            Some(Fact {
                value: Value::Unavailable(f),
                ..
            }) => Some(f.clone()),
            _ => None,
        });

    let (installed, path, build, from) = if let Some((key, p, parts)) = msi {
        let build = match parts {
            (Some(a), Some(b), Some(c), Some(d)) => Some(format!("{a}.{b}.{c}.{d}")),
            _ => None,
        };
        (true, Some(p), build, *key)
    } else if let Some(p) = legacy_path {
        // Exchange 5.5, 2000 and 2003 record only the build number: 2000 starts at 6.0.4417
        // and 2003 at 6.5.6944, so the build tells the version.
        let build = legacy_build.map(|b| match b {
            b if b >= 6944 => format!("6.5.{b}"),
            b if b >= 4417 => format!("6.0.{b}"),
            b => format!("5.5.{b}"),
        });
        (true, Some(p), build, EXCHANGE_SETUP)
    } else {
        (false, None, None, EXCHANGE_SETUP)
    };

    let installed_value = match (&unreadable, installed) {
        (Some(f), false) => Value::Unavailable(f.clone()),
        _ => Value::Bool(installed),
    };
    facts.insert(derived("exchange.installed", installed_value, from, read_at));
    if let Some(p) = path {
        facts.insert(derived_text("exchange.install_path", &p, from, read_at));
    }
    if let Some(b) = build {
        facts.insert(derived_text("exchange.setup_build", &b, from, read_at));
    }
}

/// `exchange.build` from the binary (store.exe for 2000/2003, ExSetup.exe for 2013 and
/// later), else from setup; `exchange.generation`, `exchange.version`, `exchange.level`,
/// `exchange.update` from the build table; `exchange.build_disagreement` when the binary
/// and setup disagree on more than the hotfixes setup never records.
pub fn derive_exchange_build(facts: &mut HostFacts) {
    let read_at = Timestamp::now();
    let from_binary = [EXCHANGE_STORE, EXCHANGE_SETUP_EXE].iter().find_map(|t| {
        let name = file_fact_name(t, "version");
        fact_text(facts, &name).and_then(Build::parse).map(|b| (b, name))
    });
    let setup = fact_text(facts, "exchange.setup_build").and_then(Build::parse);
    let (build, from) = match (&from_binary, setup) {
        (Some((b, name)), _) => (*b, name.clone()),
        (None, Some(b)) => (b, "exchange.setup_build".to_owned()),
        (None, None) => return,
    };
    facts.insert(derived_text("exchange.build", &build.to_string(), &from, read_at));
    if let (Some((binary, _)), Some(setup)) = (from_binary, setup) {
        // A later hotfix leaves setup's build behind (Exchange 2000 rollups, SUs on 2013+);
        // only a different product line or a binary older than setup is a disagreement.
        if binary.major_minor() != setup.major_minor() || binary.0[2] < setup.0[2] {
            let text = format!("binary {binary}, setup {setup}");
            facts.insert(derived_text(
                "exchange.build_disagreement",
                &text,
                "exchange.build, exchange.setup_build",
                read_at,
            ));
        }
    }
    let Some(found) = builds::identify(builds::exchange_builds(), build) else {
        if let Some(generation) = builds::exchange_generation(build) {
            facts.insert(derived_text(
                "exchange.generation",
                generation,
                "exchange.build",
                read_at,
            ));
        }
        return;
    };
    let product = if found.generation == "SE" {
        "Exchange Server Subscription Edition".to_owned()
    } else {
        format!("Exchange Server {}", found.generation)
    };
    facts.insert(derived_text(
        "exchange.generation",
        &found.generation,
        "exchange.build",
        read_at,
    ));
    facts.insert(derived_text(
        "exchange.level",
        &found.level,
        "exchange.build, builds/exchange.csv",
        read_at,
    ));
    if let Some(update) = &found.update {
        facts.insert(derived_text(
            "exchange.update",
            update,
            "exchange.build, builds/exchange.csv",
            read_at,
        ));
    }
    let version = format!("{product} {}", found.level_name());
    facts.insert(derived_text(
        "exchange.version",
        &version,
        "exchange.build, builds/exchange.csv",
        read_at,
    ));
}

/// `os.version`, `os.build`, `os.product` (kernel file first, registry second),
/// `os.registry_version`, `os.kernel_version`, `os.service_pack`.
pub fn derive_os(facts: &mut HostFacts) {
    let read_at = Timestamp::now();
    let kernel_name = file_fact_name(KERNEL, "version");
    let kernel = fact_text(facts, &kernel_name).and_then(Build::parse);
    let registry = match (
        text(reg(facts, WINDOWS_NT_CURRENT_VERSION, "CurrentVersion")),
        text(reg(facts, WINDOWS_NT_CURRENT_VERSION, "CurrentBuildNumber")),
    ) {
        (Some(v), Some(b)) => Build::parse(&format!("{v}.{b}")),
        (Some(v), None) => Build::parse(&v),
        _ => None,
    };
    if let Some(k) = kernel {
        facts.insert(derived_text("os.kernel_version", &k.to_string(), &kernel_name, read_at));
    }
    if let Some(r) = registry {
        let [a, b, c, _] = r.0;
        facts.insert(derived_text(
            "os.registry_version",
            &format!("{a}.{b}.{c}"),
            WINDOWS_NT_CURRENT_VERSION,
            read_at,
        ));
    }
    let best = kernel
        .map(|k| (k, kernel_name.as_str()))
        .or(registry.map(|r| (r, WINDOWS_NT_CURRENT_VERSION)));
    if let Some((b, from)) = best {
        let [major, minor, build, _] = b.0;
        facts.insert(derived_text(
            "os.version",
            &format!("{major}.{minor}.{build}"),
            from,
            read_at,
        ));
        facts.insert(derived("os.build", Value::Number(u64::from(build)), from, read_at));
        if let Some(product) = builds::windows_product(b) {
            facts.insert(derived_text("os.product", product, from, read_at));
        }
    }
    // "Service Pack 4" where Windows NT\CurrentVersion answers it, else Control\Windows's
    // CSDVersion DWORD (0x400 = SP4).
    let from_text = text(reg(facts, WINDOWS_NT_CURRENT_VERSION, "CSDVersion")).and_then(|t| {
        let n = t.trim().strip_prefix("Service Pack")?.trim().parse::<u64>().ok()?;
        Some((n, WINDOWS_NT_CURRENT_VERSION))
    });
    let from_dword = number(reg(facts, CONTROL_WINDOWS, "CSDVersion")).map(|n| (n >> 8, CONTROL_WINDOWS));
    // Both read and neither there: no service pack (Windows writes CSDVersion with the first).
    let both_absent = [
        (WINDOWS_NT_CURRENT_VERSION, "CSDVersion"),
        (CONTROL_WINDOWS, "CSDVersion"),
    ]
    .iter()
    .all(|(p, v)| matches!(facts.registry(p, v).map(|f| &f.value), Some(Value::Absent)));
    let none = both_absent.then_some((0, CONTROL_WINDOWS));
    if let Some((sp, from)) = from_text.or(from_dword).or(none) {
        facts.insert(derived("os.service_pack", Value::Number(sp), from, read_at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{registry_fact_name, RegistryValue};

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

    fn put_text(facts: &mut HostFacts, name: &str, text: &str) {
        facts.insert(derived_text(name, text, "test", Timestamp::now()));
    }

    fn text_of(facts: &HostFacts, name: &str) -> Option<String> {
        match &facts.get(name)?.value {
            Value::Text(t) => Some(t.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            other => Some(format!("{other:?}")),
        }
    }

    #[test]
    fn exchange_2000_and_modern_builds_are_derived_from_setup_keys() {
        let mut facts = HostFacts::default();
        put(
            &mut facts,
            EXCHANGE_SETUP,
            "Services",
            RegData::Sz(r"C:\Program Files\Exchsrvr".into()),
        );
        put(&mut facts, EXCHANGE_SETUP, "NewestBuild", RegData::Dword(6249));
        derive_exchange_setup(&mut facts);
        assert_eq!(text_of(&facts, "exchange.installed").as_deref(), Some("true"));
        assert_eq!(text_of(&facts, "exchange.setup_build").as_deref(), Some("6.0.6249"));

        let mut facts = HostFacts::default();
        put(
            &mut facts,
            EXCHANGE_V15_SETUP,
            "MsiInstallPath",
            RegData::Sz(r"C:\Program Files\Microsoft\Exchange Server\V15\".into()),
        );
        for (v, n) in [
            ("MsiProductMajor", 15),
            ("MsiProductMinor", 2),
            ("MsiBuildMajor", 1118),
            ("MsiBuildMinor", 7),
        ] {
            put(&mut facts, EXCHANGE_V15_SETUP, v, RegData::Dword(n));
        }
        derive_exchange_setup(&mut facts);
        assert_eq!(text_of(&facts, "exchange.setup_build").as_deref(), Some("15.2.1118.7"));

        let mut facts = HostFacts::default();
        derive_exchange_setup(&mut facts);
        assert_eq!(text_of(&facts, "exchange.installed").as_deref(), Some("false"));

        // Exchange 5.5 (build 2653) and 2003 (7638) by the same key; 2010 by its own.
        for (build, expected) in [(2653, "5.5.2653"), (7638, "6.5.7638")] {
            let mut facts = HostFacts::default();
            put(
                &mut facts,
                EXCHANGE_SETUP,
                "Services",
                RegData::Sz(r"C:\exchsrvr".into()),
            );
            put(&mut facts, EXCHANGE_SETUP, "NewestBuild", RegData::Dword(build));
            derive_exchange_setup(&mut facts);
            assert_eq!(text_of(&facts, "exchange.setup_build").as_deref(), Some(expected));
        }
        let mut facts = HostFacts::default();
        put(
            &mut facts,
            EXCHANGE_V14_SETUP,
            "MsiInstallPath",
            RegData::Sz(r"C:\Program Files\Microsoft\Exchange Server\V14\".into()),
        );
        for (v, n) in [
            ("MsiProductMajor", 14),
            ("MsiProductMinor", 3),
            ("MsiBuildMajor", 123),
            ("MsiBuildMinor", 4),
        ] {
            put(&mut facts, EXCHANGE_V14_SETUP, v, RegData::Dword(n));
        }
        derive_exchange_setup(&mut facts);
        assert_eq!(text_of(&facts, "exchange.setup_build").as_deref(), Some("14.3.123.4"));
    }

    #[test]
    fn the_store_binary_names_the_rollup_and_setup_stays_beside_it() {
        let mut facts = HostFacts::default();
        put_text(&mut facts, "exchange.setup_build", "6.0.6249");
        put_text(&mut facts, &file_fact_name(EXCHANGE_STORE, "version"), "6.0.6603.1");
        derive_exchange_build(&mut facts);
        assert_eq!(text_of(&facts, "exchange.build").as_deref(), Some("6.0.6603.1"));
        assert_eq!(text_of(&facts, "exchange.generation").as_deref(), Some("2000"));
        assert_eq!(text_of(&facts, "exchange.level").as_deref(), Some("SP3"));
        assert_eq!(
            text_of(&facts, "exchange.version").as_deref(),
            Some("Exchange Server 2000 SP3 post-SP3 rollup KB870540 (August 2004)")
        );
        // A rollup setup never records is not a disagreement.
        assert_eq!(text_of(&facts, "exchange.build_disagreement"), None);

        // Setup says SP3, the binary is SP2's: both reported.
        let mut facts = HostFacts::default();
        put_text(&mut facts, "exchange.setup_build", "6.0.6249");
        put_text(&mut facts, &file_fact_name(EXCHANGE_STORE, "version"), "6.0.5762.4");
        derive_exchange_build(&mut facts);
        assert_eq!(
            text_of(&facts, "exchange.build_disagreement").as_deref(),
            Some("binary 6.0.5762.4, setup 6.0.6249.0")
        );

        // No binary read: setup's build names the generation and level.
        let mut facts = HostFacts::default();
        put_text(&mut facts, "exchange.setup_build", "15.2.792.3");
        derive_exchange_build(&mut facts);
        assert_eq!(
            text_of(&facts, "exchange.version").as_deref(),
            Some("Exchange Server 2019 CU8")
        );
        assert_eq!(facts.get("exchange.build").unwrap().source.path, "exchange.setup_build");
    }

    #[test]
    fn os_identity_prefers_the_kernel_and_reads_the_service_pack_dword() {
        let mut facts = HostFacts::default();
        put(
            &mut facts,
            WINDOWS_NT_CURRENT_VERSION,
            "CurrentVersion",
            RegData::Sz("6.1".into()),
        );
        put(&mut facts, CONTROL_WINDOWS, "CSDVersion", RegData::Dword(0x400));
        put_text(&mut facts, &file_fact_name(KERNEL, "version"), "5.0.2195.6717");
        derive_os(&mut facts);
        assert_eq!(text_of(&facts, "os.version").as_deref(), Some("5.0.2195"));
        assert_eq!(text_of(&facts, "os.build").as_deref(), Some("2195"));
        assert_eq!(text_of(&facts, "os.product").as_deref(), Some("Windows 2000"));
        assert_eq!(text_of(&facts, "os.registry_version").as_deref(), Some("6.1.0"));
        assert_eq!(text_of(&facts, "os.service_pack").as_deref(), Some("4"));
    }
}
