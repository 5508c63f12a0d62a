//! Compiles the shipped catalog (baselines and bulletins) into the binary, so `exsweep` works
//! from any folder.

use std::fmt::Write;

/// `pub const <NAME>: &[(&str, &str)]` with the `.toml` files of `folder`, in name order.
fn embed(out: &mut String, folder: &str, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    let _ = writeln!(
        out,
        "/// Shipped {folder}: (file name, contents).\npub const {name}: &[(&str, &str)] = &["
    );
    for f in files {
        println!("cargo:rerun-if-changed={}", f.display());
        let file = f.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let _ = writeln!(
            out,
            "    ({:?}, include_str!({:?})),",
            format!("{folder}/{file}"),
            f.display().to_string()
        );
    }
    out.push_str("];\n");
}

fn main() {
    let mut out = String::new();
    embed(&mut out, "baselines", "BUILTIN_BASELINES");
    embed(&mut out, "bulletins", "BUILTIN_BULLETINS");
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("builtin_catalog.rs");
    std::fs::write(dest, out).expect("write builtin_catalog.rs");
}
