//! The `exsweep` command line: argument parsing, progress, exit codes. Logic lives in the
//! library.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use exsweep::credentials::{Credentials, DEFAULT_ENTRY};
use exsweep::inventory;
use exsweep::report::{
    BaselineInfo, CsvReport, Format, HostReport, JsonlReport, ReportWriter, RunInfo, Summary,
    SCHEMA_VERSION,
};
use exsweep::rules::{Catalog, Severity, Status};
use exsweep::scan::{scan_hosts, ScanConfig};
use exsweep::timefmt::Timestamp;

#[derive(Parser)]
#[command(name = "exsweep", version, about = "Agentless scanner for Exchange server fleets")]
struct Cli {
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan the hosts of an inventory and write reports.
    Scan(ScanArgs),
    /// Inspect the baselines.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// List baselines and their checks.
    List {
        /// Baselines folder instead of the built-in one.
        #[arg(long)]
        baselines: Option<PathBuf>,
    },
}

#[derive(Args)]
struct ScanArgs {
    /// Inventory file (.csv with name,address,roles,credential or .toml).
    #[arg(long)]
    inventory: PathBuf,
    /// Credentials file (TOML, mode 0600). EXSWEEP_USER / EXSWEEP_PASSWORD / EXSWEEP_DOMAIN
    /// give the `default` entry.
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// Baselines folder instead of the built-in one.
    #[arg(long)]
    baselines: Option<PathBuf>,
    /// Output folder [default: reports/<run id>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Report formats, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "csv,jsonl")]
    format: Vec<Format>,
    /// Hosts scanned at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Deadline per host, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Logon failures with one credential before it is no longer tried.
    #[arg(long, default_value_t = 3)]
    lockout_threshold: u32,
    /// Exit with 1 when a check at or above this severity fails.
    #[arg(long)]
    fail_on: Option<Severity>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    init_logging(cli.verbose);
    let outcome = match cli.command {
        Command::Scan(args) => run_scan(args),
        Command::Catalog {
            command: CatalogCommand::List { baselines },
        } => catalog_list(baselines.as_deref()).map(|()| ExitCode::SUCCESS),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("exsweep: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn load_catalog(dir: Option<&Path>) -> Result<Catalog> {
    match dir {
        Some(d) => Catalog::load_dir(d).context("loading baselines"),
        None => Catalog::builtin().context("loading built-in baselines"),
    }
}

fn catalog_list(dir: Option<&Path>) -> Result<()> {
    let catalog = load_catalog(dir)?;
    for b in &catalog.baselines {
        println!(
            "{}\t{}\tversion {}\t{} checks\troles {}",
            b.id,
            b.title,
            b.version,
            b.checks,
            b.roles.join(";")
        );
    }
    println!("{} baselines, {} checks", catalog.baselines.len(), catalog.checks.len());
    Ok(())
}

fn run_scan(args: ScanArgs) -> Result<ExitCode> {
    // Everything that can be wrong with the input is found before any host is contacted.
    let hosts = inventory::load(&args.inventory)?;
    let credentials = Credentials::load(args.credentials.as_deref())?;
    for h in &hosts {
        let name = h.credential.as_deref().unwrap_or(DEFAULT_ENTRY);
        if credentials.get(name).is_none() {
            bail!(
                "{}: host {:?} uses credential {name:?}, which is not defined (credentials file entries: [{}]; EXSWEEP_USER/EXSWEEP_PASSWORD give \"default\")",
                h.origin,
                h.name,
                credentials.names().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let catalog = load_catalog(args.baselines.as_deref())?;
    if !(1..=4096).contains(&args.concurrency) || !(1..=86_400).contains(&args.timeout) {
        bail!("--concurrency must be 1..=4096 and --timeout 1..=86400 seconds");
    }

    let started_at = Timestamp::now();
    let run_id = format!("{}-{:05}", started_at.compact(), std::process::id() % 100_000);
    let default_out = args.out.is_none();
    let out = args.out.unwrap_or_else(|| PathBuf::from("reports").join(&run_id));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let run = RunInfo {
        run_id: run_id.clone(),
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION"),
        started_at,
        inventory: args.inventory.display().to_string(),
        hosts: hosts.len(),
        concurrency: args.concurrency,
        timeout_secs: args.timeout,
        baselines: catalog
            .baselines
            .iter()
            .map(|b| BaselineInfo {
                id: b.id.clone(),
                version: b.version.clone(),
                checks: b.checks,
            })
            .collect(),
    };
    let mut writers: Vec<Box<dyn ReportWriter>> = Vec::new();
    let mut formats = args.format.clone();
    formats.sort_by_key(|f| *f as u8);
    formats.dedup();
    for f in formats {
        writers.push(match f {
            Format::Csv => Box::new(CsvReport::create(&out.join("findings.csv"))?),
            Format::Jsonl => Box::new(JsonlReport::create(&out.join("results.jsonl"))?),
        });
    }
    for w in &mut writers {
        w.begin(&run).context("writing report header")?;
    }

    let progress = progress_bar(hosts.len());
    let hosts = Arc::new(hosts);
    let config = ScanConfig {
        concurrency: args.concurrency,
        host_timeout: Duration::from_secs(args.timeout),
        lockout_threshold: args.lockout_threshold,
    };
    let mut summary = Summary::default();
    let mut write_error: Option<std::io::Error> = None;
    let mut worst_failed: Option<Severity> = None;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let catalog = Arc::new(catalog);
    runtime.block_on(scan_hosts(
        Arc::clone(&hosts),
        Arc::new(credentials),
        Arc::clone(&catalog),
        &config,
        |result| {
            let report = HostReport {
                host: &hosts[result.index],
                account: result.account.clone(),
                facts: &result.facts,
                findings: &result.findings,
                started_at: result.started_at,
                elapsed_ms: result.elapsed.as_millis() as u64,
                rpc_calls: result.rpc_calls,
            };
            summary.add(&report);
            for f in report.findings.iter().filter(|f| f.status == Status::Fail) {
                worst_failed = worst_failed.max(Some(f.severity));
            }
            for w in &mut writers {
                if let Err(e) = w.host(&run, &report) {
                    write_error.get_or_insert(e);
                }
            }
            if let Some(p) = &progress {
                p.set_message(hosts[result.index].name.clone());
                p.inc(1);
            }
        },
    ));
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    if let Some(e) = write_error {
        return Err(e).context("writing reports (partial files kept)");
    }
    if summary.hosts != hosts.len() {
        bail!(
            "only {} of {} hosts reported back (partial files kept)",
            summary.hosts,
            hosts.len()
        );
    }
    let mut written = Vec::new();
    for w in &mut writers {
        written.push(w.finish(&run, &summary).context("finishing reports")?);
    }
    if default_out {
        update_latest_link(&out);
    }
    eprintln!(
        "exsweep: run {run_id}: {} hosts ({} not scanned), {} findings: {} pass, {} fail, {} unknown",
        summary.hosts, summary.hosts_failed, summary.findings, summary.pass, summary.fail, summary.unknown
    );
    for p in written {
        println!("{}", p.display());
    }
    let failed = matches!((args.fail_on, worst_failed), (Some(t), Some(w)) if w >= t);
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `reports/latest` → the newest run's folder, for people and scripts that want "the last one".
fn update_latest_link(out: &Path) {
    #[cfg(unix)]
    if let (Some(parent), Some(name)) = (out.parent(), out.file_name()) {
        let link = parent.join("latest");
        let _ = std::fs::remove_file(&link);
        let _ = std::os::unix::fs::symlink(name, &link);
    }
}

fn progress_bar(hosts: usize) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(hosts as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} hosts {elapsed} {msg}") {
        bar.set_style(style);
    }
    Some(bar)
}
