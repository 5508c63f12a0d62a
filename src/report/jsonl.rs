//! `results.jsonl`: one JSON object per line, each with a `type`: `run` first, then per host a
//! `host` record, its `fact` records and its `finding` records, and `summary` last.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{commit, create_partial, HostReport, ReportWriter, RunInfo, Summary};
use crate::facts::{Failure, Source, Value};

pub struct JsonlReport {
    path: PathBuf,
    partial: PathBuf,
    out: BufWriter<File>,
}

impl JsonlReport {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let (file, partial) = create_partial(path)?;
        Ok(JsonlReport {
            path: path.to_owned(),
            partial,
            out: BufWriter::new(file),
        })
    }

    fn line<T: Serialize>(&mut self, record: &T) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, record).map_err(std::io::Error::other)?;
        self.out.write_all(b"\n")
    }
}

#[derive(Serialize)]
struct Tagged<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

#[derive(Serialize)]
struct HostRecord<'a> {
    run_id: &'a str,
    host: &'a str,
    address: &'a str,
    roles: &'a [String],
    credential: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<&'a Failure>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    transport_failures: Vec<TransportFailure<'a>>,
    started_at: String,
    elapsed_ms: u64,
    facts: usize,
    rpc_calls: u32,
}

#[derive(Serialize)]
struct TransportFailure<'a> {
    transport: &'a str,
    #[serde(flatten)]
    failure: &'a Failure,
}

#[derive(Serialize)]
struct FactRecord<'a> {
    run_id: &'a str,
    host: &'a str,
    name: &'a str,
    value: &'a Value,
    source: &'a Source,
}

#[derive(Serialize)]
struct FindingRecord<'a> {
    run_id: &'a str,
    host: &'a str,
    address: &'a str,
    role: &'a str,
    check_id: &'a str,
    title: &'a str,
    severity: &'static str,
    status: &'static str,
    expected: &'a str,
    observed: &'a str,
    evidence: &'a str,
    collected_at: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    verdict: &'a str,
}

#[derive(Serialize)]
struct SummaryRecord<'a> {
    run_id: &'a str,
    finished_at: String,
    #[serde(flatten)]
    summary: &'a Summary,
}

impl ReportWriter for JsonlReport {
    fn begin(&mut self, run: &RunInfo) -> std::io::Result<()> {
        self.line(&Tagged { kind: "run", body: run })?;
        self.out.flush()
    }

    fn host(&mut self, run: &RunInfo, h: &HostReport<'_>) -> std::io::Result<()> {
        let run_id = run.run_id.as_str();
        let host = h.host.name.as_str();
        let started_at = h.started_at.to_string();
        self.line(&Tagged {
            kind: "host",
            body: &HostRecord {
                run_id,
                host,
                address: &h.host.address,
                roles: &h.host.roles,
                credential: h
                    .host
                    .credential
                    .as_deref()
                    .unwrap_or(crate::credentials::DEFAULT_ENTRY),
                account: h.account.as_deref(),
                status: if h.failure().is_some() { "failed" } else { "collected" },
                failure: h.failure(),
                transport_failures: h
                    .facts
                    .transport_failures
                    .iter()
                    .map(|(transport, failure)| TransportFailure { transport, failure })
                    .collect(),
                started_at: started_at.clone(),
                elapsed_ms: h.elapsed_ms,
                facts: h.facts.len(),
                rpc_calls: h.rpc_calls,
            },
        })?;
        for fact in h.facts.iter().chain(h.facts.alternatives.iter()) {
            self.line(&Tagged {
                kind: "fact",
                body: &FactRecord {
                    run_id,
                    host,
                    name: &fact.name,
                    value: &fact.value,
                    source: &fact.source,
                },
            })?;
        }
        for f in h.findings {
            self.line(&Tagged {
                kind: "finding",
                body: &FindingRecord {
                    run_id,
                    host,
                    address: &h.host.address,
                    role: &f.role,
                    check_id: &f.check_id,
                    title: &f.title,
                    severity: f.severity.as_str(),
                    status: f.status.as_str(),
                    expected: &f.expected,
                    observed: &f.observed,
                    evidence: &f.evidence,
                    collected_at: &started_at,
                    verdict: &f.verdict,
                },
            })?;
        }
        self.out.flush()
    }

    fn finish(&mut self, run: &RunInfo, summary: &Summary) -> std::io::Result<PathBuf> {
        self.line(&Tagged {
            kind: "summary",
            body: &SummaryRecord {
                run_id: &run.run_id,
                finished_at: crate::timefmt::Timestamp::now().to_string(),
                summary,
            },
        })?;
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        commit(&self.partial, &self.path)
    }
}
