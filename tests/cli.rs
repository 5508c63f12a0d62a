//! The binary's contract for bad input: a clear error naming file and line, exit code 2, and
//! no report that looks complete. Hermetic: no host is contacted.

use std::path::Path;
use std::process::Command;

fn exsweep(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_exsweep"))
        .args(args)
        .current_dir(dir)
        .env_remove("EXSWEEP_USER")
        .env_remove("EXSWEEP_PASSWORD")
        .output()
        .unwrap()
}

#[test]
fn malformed_inventory_line_exits_2_naming_file_and_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inv.csv"),
        "name,address,roles,credential\nok,127.0.0.11,,\nbad,bad address!,,\n",
    )
    .unwrap();
    let out = exsweep(&["scan", "--inventory", "inv.csv", "--out", "out"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("inv.csv:3:"), "{err}");
    assert!(
        !dir.path().join("out").exists(),
        "a report folder was created for a run that never started"
    );
}

#[test]
fn missing_credential_names_the_inventory_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inv.toml"),
        "[[host]]\nname = 'a'\naddress = '127.0.0.11'\ncredential = 'svc'\n",
    )
    .unwrap();
    let out = exsweep(&["scan", "--inventory", "inv.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("inv.toml:1:") && err.contains("\"svc\""), "{err}");
}

#[test]
fn open_credentials_file_is_refused_without_printing_the_password() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inv.csv"), "name,address\na,127.0.0.11\n").unwrap();
    let creds = dir.path().join("creds.toml");
    std::fs::write(&creds, "[default]\nuser = 'u'\npassword = 'sup3r-secret'\n").unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = exsweep(
        &["scan", "--inventory", "inv.csv", "--credentials", "creds.toml"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn baseline_with_a_duplicate_id_exits_2_naming_both_places() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inv.csv"), "name,address\na,127.0.0.11\n").unwrap();
    std::fs::create_dir(dir.path().join("b")).unwrap();
    let check = "[[check]]\nid = 'X-1'\ntitle = 't'\nseverity = 'low'\nroles = ['r']\nregistry = { path = 'HKLM\\S', value = 'v' }\nexpect = { op = 'exists' }\n";
    std::fs::write(dir.path().join("b/one.toml"), check).unwrap();
    std::fs::write(dir.path().join("b/two.toml"), format!("\n{check}")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_exsweep"))
        .args(["scan", "--inventory", "inv.csv", "--baselines", "b"])
        .current_dir(dir.path())
        .env("EXSWEEP_USER", "u")
        .env("EXSWEEP_PASSWORD", "p")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("two.toml:2:") && err.contains("one.toml:1"), "{err}");
}

#[test]
fn shipped_catalog_lints_clean_and_inventories_load() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let catalog = exsweep::rules::Catalog::builtin().unwrap();
    assert!(catalog.baselines.len() >= 6 && catalog.bulletins.len() >= 34 && !catalog.cves.is_empty());
    assert_eq!(catalog.lint(), Vec::<String>::new());
    for f in ["lab.csv", "lab.toml", "example.csv", "example.toml"] {
        exsweep::inventory::load(&repo.join("inventory").join(f)).unwrap();
    }
    // The binary says the same, with the catalog's version.
    let out = Command::new(env!("CARGO_BIN_EXE_exsweep"))
        .args(["catalog", "lint"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("catalog version ") && text.ends_with("0 problems\n"),
        "{text}"
    );
}

/// A baseline folder with a dangling `extends` and a bulletin folder with a dangling
/// `supersedes`: the lint and the scan refuse them, naming file, line and id.
#[test]
fn dangling_references_stop_the_lint_and_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("b")).unwrap();
    std::fs::write(
        dir.path().join("b/one.toml"),
        "[baseline]\nid = 'one'\ntitle = 't'\nsource = 's'\nroles = ['r']\nextends = ['nowhere']\n",
    )
    .unwrap();
    let out = exsweep(&["catalog", "lint", "--baselines", "b"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("one.toml:1: baseline \"one\" extends \"nowhere\""),
        "{err}"
    );

    std::fs::create_dir(dir.path().join("u")).unwrap();
    std::fs::write(
        dir.path().join("u/x.toml"),
        "[[bulletin]]\nid = 'MS05-021'\ntitle = 't'\nseverity = 'critical'\nsource = 's'\nsupersedes = ['MS99-999']\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("inv.csv"), "name,address,roles\nh,127.0.0.1,r\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_exsweep"))
        .args(["scan", "--inventory", "inv.csv", "--bulletins", "u", "--out", "r"])
        .current_dir(dir.path())
        .env("EXSWEEP_USER", "u")
        .env("EXSWEEP_PASSWORD", "p")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("x.toml:1: bulletin \"MS05-021\" supersedes \"MS99-999\""),
        "{err}"
    );
    assert!(
        !dir.path().join("r").exists(),
        "a scan with a broken catalog must not start"
    );
}
