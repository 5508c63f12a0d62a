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
    BaselineInfo, CsvReport, Format, HostReport, JsonlReport, ReportWriter, RunInfo, Summary, SCHEMA_VERSION,
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
    /// Inspect and check the catalog (baselines and bulletins).
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// List baselines, checks, bulletins and CVEs, with counts.
    List(CatalogArgs),
    /// Check the catalog: it parses, ids are unique, references resolve, every check and
    /// bulletin names its source, the catalog has a version and a date. Exit 1 on problems.
    Lint(CatalogArgs),
}

#[derive(Args)]
struct CatalogArgs {
    /// Baselines folder instead of the built-in one.
    #[arg(long)]
    baselines: Option<PathBuf>,
    /// Bulletins folder instead of the built-in one.
    #[arg(long)]
    bulletins: Option<PathBuf>,
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
    /// Bulletins folder instead of the built-in one.
    #[arg(long)]
    bulletins: Option<PathBuf>,
    /// Warn when the catalog's date is older than this many days.
    #[arg(long, default_value_t = 90)]
    max_catalog_age: u32,
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
    /// Seconds to wait for each transport's TCP connection. A port a firewall silently drops
    /// fails after this, and the host's next transport is tried within the same deadline.
    #[arg(long, default_value_t = 5)]
    connect_timeout: u64,
    /// Logon failures with one credential before it is no longer tried.
    #[arg(long, default_value_t = 3)]
    lockout_threshold: u32,
    /// Exit with 1 when a check at or above this severity fails.
    #[arg(long)]
    fail_on: Option<Severity>,
    /// Over WinRM/HTTPS, accept any certificate from these inventory hosts (comma-separated
    /// names), e.g. a lab's self-signed one. Every other host's certificate is verified.
    #[arg(long, value_delimiter = ',')]
    winrm_accept_self_signed: Vec<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(cli.verbose);
    let outcome = match cli.command {
        Command::Scan(args) => run_scan(args),
        Command::Catalog {
            command: CatalogCommand::List(args),
        } => catalog_list(&args).map(|()| ExitCode::SUCCESS),
        Command::Catalog {
            command: CatalogCommand::Lint(args),
        } => catalog_lint(&args),
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

fn load_catalog(baselines: Option<&Path>, bulletins: Option<&Path>) -> Result<Catalog> {
    Catalog::load_with_builtin(baselines, bulletins).context("loading the catalog")
}

/// `version 2026.11.28 (2026-11-28)`, or why there is none.
fn catalog_label(catalog: &Catalog) -> String {
    match &catalog.info {
        Some(i) => format!("version {} ({})", i.version, i.date),
        None => "without version or date (no catalog.toml)".into(),
    }
}

fn catalog_list(args: &CatalogArgs) -> Result<()> {
    let catalog = load_catalog(args.baselines.as_deref(), args.bulletins.as_deref())?;
    println!("catalog {}", catalog_label(&catalog));
    for b in &catalog.baselines {
        let extends = if b.extends.is_empty() {
            String::new()
        } else {
            format!("\textends {}", b.extends.join(";"))
        };
        println!(
            "baseline\t{}\t{}\tversion {}\t{} checks\troles {}{extends}",
            b.id,
            b.title,
            b.version,
            b.checks,
            b.roles.join(";")
        );
    }
    for c in &catalog.checks {
        println!("check\t{}\t{}\t{}\t{}", c.id, c.severity.as_str(), c.baseline, c.title);
    }
    for b in &catalog.bulletins {
        println!("bulletin\t{}\t{}\t{}\t{}", b.id, b.kb, b.severity.as_str(), b.title);
    }
    for c in &catalog.cves {
        println!(
            "cve\t{}\t{}\t{}\t{}",
            c.id,
            c.severity.as_str(),
            c.fixed_by.join(";"),
            c.title
        );
    }
    println!(
        "{} baselines, {} checks, {} bulletins, {} CVEs",
        catalog.baselines.len(),
        catalog.checks.len(),
        catalog.bulletins.len(),
        catalog.cves.len()
    );
    Ok(())
}

fn catalog_lint(args: &CatalogArgs) -> Result<ExitCode> {
    let catalog = load_catalog(args.baselines.as_deref(), args.bulletins.as_deref())?;
    let problems = catalog.lint();
    for p in &problems {
        println!("{p}");
    }
    println!(
        "catalog {}: {} baselines, {} checks, {} bulletins, {} CVEs, {} problems",
        catalog_label(&catalog),
        catalog.baselines.len(),
        catalog.checks.len(),
        catalog.bulletins.len(),
        catalog.cves.len(),
        problems.len()
    );
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A warning on stderr when the catalog is older than `max_days`.
fn warn_if_old(catalog: &Catalog, max_days: u32) {
    let Some(info) = &catalog.info else {
        eprintln!("exsweep: warning: the catalog has no date (no catalog.toml); its age cannot be judged");
        return;
    };
    if let Some(day) = exsweep::timefmt::parse_date(&info.date) {
        let age = exsweep::timefmt::today() - day;
        if age > i64::from(max_days) {
            eprintln!(
                "exsweep: warning: the catalog is {age} days old (dated {}); bulletins and builds released since are not judged (--max-catalog-age {max_days})",
                info.date
            );
        }
    }
}

fn run_scan(args: ScanArgs) -> Result<ExitCode> {
    // Everything that can be wrong with the input is found before any host is contacted.
    let mut hosts = inventory::load(&args.inventory)?;
    for name in &args.winrm_accept_self_signed {
        let host = hosts
            .iter_mut()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .with_context(|| {
                format!(
                    "--winrm-accept-self-signed names {name:?}, which is not in {}",
                    args.inventory.display()
                )
            })?;
        host.winrm_accept_self_signed = true;
    }
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
    let catalog = load_catalog(args.baselines.as_deref(), args.bulletins.as_deref())?;
    eprintln!("exsweep: catalog {}", catalog_label(&catalog));
    warn_if_old(&catalog, args.max_catalog_age);
    if !(1..=4096).contains(&args.concurrency) || !(1..=86_400).contains(&args.timeout) {
        bail!("--concurrency must be 1..=4096 and --timeout 1..=86400 seconds");
    }
    if !(1..=args.timeout).contains(&args.connect_timeout) {
        bail!("--connect-timeout must be 1..=--timeout seconds");
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
        catalog_version: catalog.info.as_ref().map(|i| i.version.clone()).unwrap_or_default(),
        catalog_date: catalog.info.as_ref().map(|i| i.date.clone()).unwrap_or_default(),
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
        connect_timeout: Duration::from_secs(args.connect_timeout),
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
        "exsweep: run {run_id}: {} hosts ({} not scanned), {} findings: {} pass, {} fail, {} not applicable, {} unknown",
        summary.hosts,
        summary.hosts_failed,
        summary.findings,
        summary.pass,
        summary.fail,
        summary.not_applicable,
        summary.unknown
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
