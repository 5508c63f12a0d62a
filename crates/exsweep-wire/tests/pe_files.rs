//! The PE version locator against PE files nobody on the project wrote: files linked by GNU
//! binutils for mingw-w64 and launchers shipped in pip and setuptools wheels. Expected values
//! are pefile's (tests/data/pe/MANIFEST.md), corrected where the manifest shows pefile drops
//! data.

use exsweep_wire::pe::{self, PeVersion, ResourceLocation, Step, VersionLocator};

fn file(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/pe/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn version(name: &str) -> PeVersion {
    pe::version_of(&file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn strings(v: &PeVersion, table: &str) -> Vec<(String, String)> {
    let info = v.version.as_ref().expect("a version resource");
    info.string_tables
        .iter()
        .find(|t| t.key == table)
        .unwrap_or_else(|| panic!("no table {table}"))
        .strings
        .clone()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn full_32_bit_exe() {
    let v = version("v32-full.exe");
    assert_eq!((v.machine, v.pe32_plus, v.machine_name()), (0x14c, false, "i386"));
    assert_eq!(
        v.resource,
        Some(ResourceLocation {
            offset: 0x858,
            size: 904
        })
    );
    let info = v.version.as_ref().unwrap();
    let fixed = info.fixed.unwrap();
    assert_eq!(fixed.file_version.to_string(), "6.0.6603.1");
    assert_eq!(fixed.product_version.to_string(), "6.0.6603.1");
    assert_eq!(
        (fixed.file_flags_mask, fixed.file_flags, fixed.file_os, fixed.file_type),
        (0x3f, 0, 0x40004, 1)
    );
    assert_eq!(
        strings(&v, "040904B0"),
        pairs(&[
            ("CompanyName", "exsweep test data"),
            (
                "FileDescription",
                "exsweep test data: 32-bit EXE with a full version resource"
            ),
            ("FileVersion", "6.0.6603.1"),
            ("InternalName", "v32-full"),
            ("OriginalFilename", "v32-full.exe"),
            ("ProductName", "exsweep PE fixtures"),
            ("ProductVersion", "6.0.6603.1"),
            (
                "LegalCopyright",
                "No rights reserved; made with GNU binutils (mingw-w64)"
            ),
        ])
    );
    assert_eq!(info.translations, vec![(0x0409, 1200)]);
}

#[test]
fn sixty_four_bit_dll_whose_texts_differ_from_the_fixed_versions() {
    let v = version("v64-text-differs.dll");
    assert_eq!((v.machine, v.pe32_plus, v.machine_name()), (0x8664, true, "x64"));
    assert_eq!(
        v.resource,
        Some(ResourceLocation {
            offset: 0x858,
            size: 924
        })
    );
    let info = v.version.as_ref().unwrap();
    let fixed = info.fixed.unwrap();
    assert_eq!(fixed.file_version.to_string(), "15.2.792.5");
    assert_eq!(fixed.product_version.to_string(), "15.2.792.0");
    assert_eq!((fixed.file_flags, fixed.file_type), (0xA, 2));
    assert_eq!(info.string("FileVersion"), Some("15.02.0792.005"));
    assert_eq!(info.string("ProductVersion"), Some("15.02.0792.000 (build text)"));
    assert_eq!(info.string("SpecialBuild"), Some("pre-release"));
}

#[test]
fn files_without_a_version_resource_say_so() {
    for (name, machine) in [
        ("noversion.exe", 0x14c),
        ("noversion-rcdata.dll", 0x8664),
        ("cli-32.exe", 0x14c),
    ] {
        let v = version(name);
        assert_eq!(v.machine, machine, "{name}");
        assert_eq!(v.version, None, "{name}");
        assert_eq!(v.resource, None, "{name}");
    }
}

#[test]
fn partial_version_resources() {
    let v = version("varonly.exe");
    let info = v.version.as_ref().unwrap();
    assert_eq!(info.fixed.unwrap().file_version.to_string(), "1.2.3.4");
    assert_eq!(info.fixed.unwrap().product_version.to_string(), "5.6.7.8");
    assert!(info.string_tables.is_empty());
    assert_eq!(info.translations, vec![(0x0409, 1200)]);

    let v = version("fixedonly.dll");
    let info = v.version.as_ref().unwrap();
    assert_eq!(info.fixed.unwrap().file_version.to_string(), "65535.0.65535.1");
    assert!(info.string_tables.is_empty() && info.translations.is_empty());
}

#[test]
fn every_string_table_of_a_multilingual_file() {
    let v = version("multilang.exe");
    let info = v.version.as_ref().unwrap();
    let keys: Vec<&str> = info.string_tables.iter().map(|t| t.key.as_str()).collect();
    // pefile reports three; the file has four (MANIFEST.md, cross-check).
    assert_eq!(keys, ["040704E4", "040904B0", "041104B0", "0C0A04B0"]);
    assert_eq!(
        info.string("FileDescription"),
        Some("exsweep Testdaten: mehrere Sprachen – Größe")
    );
    assert_eq!(
        strings(&v, "041104B0")[1],
        ("FileDescription".into(), "exsweep テストデータ".into())
    );
    assert_eq!(strings(&v, "0C0A04B0"), pairs(&[("Comments", "es")]));
    assert_eq!(
        info.translations,
        vec![(0x0407, 1252), (0x0409, 1200), (0x0411, 1200), (0x0c0a, 1200)]
    );
}

#[test]
fn launchers_from_pip_wheels() {
    for (name, machine, offset) in [("t32.exe", 0x14c, 0x16990), ("t64.exe", 0x8664, 0x19d90)] {
        let v = version(name);
        assert_eq!(v.machine, machine);
        assert_eq!(v.resource, Some(ResourceLocation { offset, size: 776 }), "{name}");
        let info = v.version.as_ref().unwrap();
        assert_eq!(info.fixed.unwrap().file_version.to_string(), "1.1.0.14");
        assert_eq!(info.string_tables[0].key, "080904b0");
        assert_eq!(info.string("OriginalFilename"), Some(name));
        assert_eq!(info.string("ProductName"), Some("Simple Launcher"));
    }
}

/// The locator reads only headers, directories and the resource: a few windows, not the file.
#[test]
fn only_the_needed_ranges_are_read() {
    for name in ["v32-full.exe", "t32.exe", "t64.exe", "multilang.exe"] {
        let bytes = file(name);
        let mut locator = VersionLocator::new(bytes.len() as u64);
        let found = loop {
            match locator.step().unwrap() {
                Step::Done(v) => break v,
                Step::Read(r) => {
                    let start = r.offset as usize;
                    locator
                        .feed(bytes[start..(start + r.len as usize).min(bytes.len())].to_vec())
                        .unwrap();
                }
            }
        };
        assert!(found.version.is_some());
        assert!(locator.reads() <= 4, "{name}: {} reads", locator.reads());
        assert!(
            locator.bytes_read() <= 4 * 4096,
            "{name}: {} bytes",
            locator.bytes_read()
        );
    }
}

/// Cut short anywhere or with any byte flipped, a real file gives an answer or an error.
#[test]
fn mangled_files_never_panic() {
    for name in ["v32-full.exe", "t64.exe", "multilang.exe"] {
        let good = file(name);
        for cut in (0..good.len()).step_by(7) {
            let _ = pe::version_of(&good[..cut]);
        }
        for i in 0..good.len().min(4096) {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            let _ = pe::version_of(&bad);
        }
    }
}
