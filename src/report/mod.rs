//! Reports: the versioned records a run writes (CSV for auditors, JSON Lines for machines).
//!
//! Records are a boundary of their own, separate from internal types: columns and fields are
//! documented in the README and only ever added to. Writers append one host at a time and
//! flush, into `NAME.partial`; only a finished run renames them to their final names, so a
//! crash keeps what was collected and no partial report looks complete.

mod csv_report;
mod jsonl;

pub use csv_report::{CsvReport, CSV_COLUMNS};
pub use jsonl::JsonlReport;

use serde::Serialize;

use crate::facts::{Failure, HostFacts};
use crate::inventory::Host;
use crate::rules::Finding;
use crate::timefmt::Timestamp;

/// Version of the JSON Lines records and CSV columns; bumped when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "csv" => Ok(Format::Csv),
            "jsonl" => Ok(Format::Jsonl),
            other => Err(format!("unknown format {other:?} (csv, jsonl)")),
        }
    }
}

/// What a run is, as its first record says.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub run_id: String,
    pub schema_version: u32,
    pub tool_version: &'static str,
    pub started_at: Timestamp,
    pub inventory: String,
    pub hosts: usize,
    pub concurrency: usize,
    pub timeout_secs: u64,
    pub baselines: Vec<BaselineInfo>,
    /// The catalog's version and date (`bulletins/catalog.toml`); empty when it has none.
    pub catalog_version: String,
    pub catalog_date: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselineInfo {
    pub id: String,
    pub version: String,
    pub checks: usize,
}

/// Everything known about one host at the end of its scan.
#[derive(Debug)]
pub struct HostReport<'a> {
    pub host: &'a Host,
    /// The account used (`DOMAIN\user`), never the password.
    pub account: Option<String>,
    pub facts: &'a HostFacts,
    pub findings: &'a [Finding],
    pub started_at: Timestamp,
    pub elapsed_ms: u64,
    pub rpc_calls: u32,
}

impl HostReport<'_> {
    pub fn failure(&self) -> Option<&Failure> {
        self.facts.host_failure.as_ref()
    }
}

/// Totals written last.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub hosts: usize,
    pub hosts_failed: usize,
    pub findings: usize,
    pub pass: usize,
    pub fail: usize,
    pub not_applicable: usize,
    pub unknown: usize,
}

impl Summary {
    pub fn add(&mut self, report: &HostReport<'_>) {
        use crate::rules::Status;
        self.hosts += 1;
        if report.failure().is_some() {
            self.hosts_failed += 1;
        }
        for f in report.findings {
            self.findings += 1;
            match f.status {
                Status::Pass => self.pass += 1,
                Status::Fail => self.fail += 1,
                Status::NotApplicable => self.not_applicable += 1,
                Status::Unknown => self.unknown += 1,
            }
        }
    }
}

/// A place to write a run's records.
pub trait ReportWriter {
    fn begin(&mut self, run: &RunInfo) -> std::io::Result<()>;
    fn host(&mut self, run: &RunInfo, host: &HostReport<'_>) -> std::io::Result<()>;
    /// Writes the summary and gives the file its final name.
    fn finish(&mut self, run: &RunInfo, summary: &Summary) -> std::io::Result<std::path::PathBuf>;
}

/// Creates `path.partial` for writing; [`commit`] renames it to `path`.
pub(crate) fn create_partial(path: &std::path::Path) -> std::io::Result<(std::fs::File, std::path::PathBuf)> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    // A complete report left in a reused folder by an earlier run must not sit beside this
    // run's partial one looking current.
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    Ok((std::fs::File::create(&partial)?, partial))
}

pub(crate) fn commit(partial: &std::path::Path, path: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    std::fs::rename(partial, path)?;
    Ok(path.to_owned())
}
