//! Role baselines: loading and validating the check files, and judging facts against them.
//! Evaluation is pure (facts in, findings out) and runs over hosts in parallel.

mod baseline;
mod eval;

pub use baseline::{Baseline, Catalog, CatalogError, Check, Expect, Op, Probe, Scalar, Severity};
pub use eval::{evaluate_host, Finding, Status, COLLECT_CHECK_ID};

include!(concat!(env!("OUT_DIR"), "/builtin_baselines.rs"));

impl Catalog {
    /// The baselines shipped in `baselines/`, compiled into the binary.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        Catalog::from_sources(
            BUILTIN_BASELINES
                .iter()
                .map(|(name, text)| (std::path::Path::new(*name), *text)),
        )
    }
}
