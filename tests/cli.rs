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
    std::fs::write(dir.path().join("inv.csv"), "name,address,roles,credential\nok,127.0.0.11,,\nbad,bad address!,,\n").unwrap();
    let out = exsweep(&["scan", "--inventory", "inv.csv", "--out", "out"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("inv.csv:3:"), "{err}");
    assert!(!dir.path().join("out").exists(), "a report folder was created for a run that never started");
}

#[test]
fn missing_credential_names_the_inventory_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inv.toml"), "[[host]]\nname = 'a'\naddress = '127.0.0.11'\ncredential = 'svc'\n").unwrap();
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
    let out = exsweep(&["scan", "--inventory", "inv.csv", "--credentials", "creds.toml"], dir.path());
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
fn shipped_baselines_and_inventories_load() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let catalog = exsweep::rules::Catalog::builtin().unwrap();
    assert!(catalog.baselines.len() >= 3);
    for c in &catalog.checks {
        assert!(!c.source.trim().is_empty(), "check {} names no source", c.id);
        assert!(!c.title.trim().is_empty(), "check {} has no title", c.id);
    }
    for f in ["lab.csv", "lab.toml", "example.csv", "example.toml"] {
        exsweep::inventory::load(&repo.join("inventory").join(f)).unwrap();
    }
}
