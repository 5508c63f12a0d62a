//! `findings.csv`: one row per host and check, for auditors.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::{commit, create_partial, HostReport, ReportWriter, RunInfo, Summary};

/// The columns, in order. Stable: new columns are only ever appended.
pub const CSV_COLUMNS: [&str; 13] = [
    "run_id",
    "host",
    "address",
    "role",
    "check_id",
    "title",
    "severity",
    "status",
    "expected",
    "observed",
    "evidence",
    "collected_at",
    "verdict",
];

pub struct CsvReport {
    path: PathBuf,
    partial: PathBuf,
    writer: csv::Writer<BufWriter<File>>,
}

impl CsvReport {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let (file, partial) = create_partial(path)?;
        Ok(CsvReport {
            path: path.to_owned(),
            partial,
            writer: csv::Writer::from_writer(BufWriter::new(file)),
        })
    }
}

/// Registry data is written by whoever controls the host: a cell starting with `=`, `+`, `-`,
/// `@`, tab or CR would be a formula in a spreadsheet, so it gets a leading `'` (OWASP's
/// advice for CSV injection).
fn defuse(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

fn io(e: csv::Error) -> std::io::Error {
    std::io::Error::other(e)
}

impl ReportWriter for CsvReport {
    fn begin(&mut self, _run: &RunInfo) -> std::io::Result<()> {
        self.writer.write_record(CSV_COLUMNS).map_err(io)?;
        self.writer.flush()
    }

    fn host(&mut self, run: &RunInfo, host: &HostReport<'_>) -> std::io::Result<()> {
        let collected_at = host.started_at.to_string();
        for f in host.findings {
            self.writer
                .write_record([
                    run.run_id.as_str(),
                    host.host.name.as_str(),
                    host.host.address.as_str(),
                    f.role.as_str(),
                    f.check_id.as_str(),
                    f.title.as_str(),
                    f.severity.as_str(),
                    f.status.as_str(),
                    f.expected.as_str(),
                    &defuse(&f.observed),
                    &defuse(&f.evidence),
                    collected_at.as_str(),
                    f.verdict.as_str(),
                ])
                .map_err(io)?;
        }
        self.writer.flush()
    }

    fn finish(&mut self, _run: &RunInfo, _summary: &Summary) -> std::io::Result<PathBuf> {
        self.writer.flush()?;
        self.writer.get_ref().get_ref().sync_all()?;
        commit(&self.partial, &self.path)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cells_that_a_spreadsheet_would_run_are_defused() {
        assert_eq!(super::defuse("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(super::defuse("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(super::defuse("4"), "4");
    }
}
