//! Role baselines and the bulletin catalog: loading and validating their files, and judging
//! facts against them. Evaluation is pure (facts in, findings out) and runs over hosts in
//! parallel.

mod baseline;
pub mod bulletins;
mod catalog;
pub mod condition;
mod eval;

pub use baseline::{Baseline, CatalogError, Check, Severity};
pub use bulletins::{Bulletin, Cve, Verdict};
pub use catalog::{Catalog, CatalogInfo};
pub use condition::{Condition, Expect, Op, Probe, Scalar};
pub use eval::{evaluate_fleet, evaluate_host, Finding, Status, COLLECT_CHECK_ID};

include!(concat!(env!("OUT_DIR"), "/builtin_catalog.rs"));

fn sources<'a>(files: &'static [(&'static str, &'static str)]) -> impl Iterator<Item = (&'a std::path::Path, &'a str)> {
    files.iter().map(|(name, text)| (std::path::Path::new(*name), *text))
}

impl Catalog {
    /// The baselines and bulletins shipped in `baselines/` and `bulletins/`, compiled into
    /// the binary.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        Catalog::assemble(sources(BUILTIN_BASELINES), sources(BUILTIN_BULLETINS))
    }

    /// Baselines from a folder with the built-in bulletins (`--baselines DIR`), or both from
    /// folders.
    pub fn load_with_builtin(
        baselines: Option<&std::path::Path>,
        bulletins: Option<&std::path::Path>,
    ) -> Result<Catalog, CatalogError> {
        match (baselines, bulletins) {
            (None, None) => Catalog::builtin(),
            (Some(b), Some(u)) => Catalog::load(b, Some(u)),
            (Some(b), None) => {
                let texts = catalog::read_folder(b)?;
                Catalog::assemble(
                    texts.iter().map(|(p, t)| (p.as_path(), t.as_str())),
                    sources(BUILTIN_BULLETINS),
                )
            }
            (None, Some(u)) => {
                let texts = catalog::read_folder(u)?;
                Catalog::assemble(
                    sources(BUILTIN_BASELINES),
                    texts.iter().map(|(p, t)| (p.as_path(), t.as_str())),
                )
            }
        }
    }
}
