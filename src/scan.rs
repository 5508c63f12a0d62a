//! A sweep: every host of the inventory scanned concurrently (bounded), each within its own
//! deadline, each result evaluated and handed to the report writers as soon as it is ready.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};
use tracing::{info, info_span, warn, Instrument};

use crate::collect::{self, collect_probes, collect_smb, Plan};
use crate::credentials::{Credentials, DEFAULT_ENTRY};
use crate::facts::{Failure, FailureKind, HostFacts};
use crate::inventory::Host;
use crate::inventory::TransportKind;
use crate::lockout::{Admission, LockoutBreaker};
use crate::rules::{evaluate_host, Catalog, Finding};
use crate::timefmt::Timestamp;
use crate::transport::smb::{SmbSession, SmbTarget};
use crate::transport::socket_addr;
use crate::transport::winrm::{TlsMode, WinrmSession, WinrmTarget};

/// How a sweep runs.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    /// Hosts scanned at once.
    pub concurrency: usize,
    /// Deadline for one host, from logon to the last read.
    pub host_timeout: Duration,
    /// Bound on each transport's TCP connection, so that a filtered port (a firewall that
    /// drops SYNs) leaves the rest of the deadline to the next transport.
    pub connect_timeout: Duration,
    /// Logon failures with one credential before it is no longer tried.
    pub lockout_threshold: u32,
}

/// One host's outcome.
#[derive(Debug)]
pub struct HostResult {
    /// Index into the inventory.
    pub index: usize,
    pub account: Option<String>,
    pub facts: HostFacts,
    pub findings: Vec<Finding>,
    pub started_at: Timestamp,
    pub elapsed: Duration,
    pub rpc_calls: u32,
}

/// Scans `hosts`, calling `on_result` for each host in completion order. Never fails as a
/// whole: a host that cannot be scanned yields a result that says why.
pub async fn scan_hosts(
    hosts: Arc<Vec<Host>>,
    credentials: Arc<Credentials>,
    catalog: Arc<Catalog>,
    config: &ScanConfig,
    mut on_result: impl FnMut(HostResult),
) {
    let breaker = LockoutBreaker::new(config.lockout_threshold);
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let (tx, mut rx) = mpsc::channel::<HostResult>(config.concurrency.max(1) * 2);

    let feeder = {
        let hosts = Arc::clone(&hosts);
        let host_timeout = config.host_timeout;
        let connect_timeout = config.connect_timeout;
        tokio::spawn(async move {
            for index in 0..hosts.len() {
                // Bounded: a task is spawned only when a slot is free.
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    break;
                };
                let (hosts, credentials, catalog, breaker, tx) = (
                    Arc::clone(&hosts),
                    Arc::clone(&credentials),
                    Arc::clone(&catalog),
                    Arc::clone(&breaker),
                    tx.clone(),
                );
                let h = &hosts[index];
                let span = info_span!("host", host = %h.name, addr = %h.address);
                tokio::spawn(async move {
                    // The host's work runs in a task of its own so that a panic in it becomes a
                    // result that says so, instead of a host missing from the reports.
                    let work = {
                        let hosts = Arc::clone(&hosts);
                        tokio::spawn(
                            async move {
                                scan_one(
                                    index,
                                    &hosts[index],
                                    &credentials,
                                    &catalog,
                                    &breaker,
                                    host_timeout,
                                    connect_timeout,
                                )
                                .await
                            }
                            .instrument(span),
                        )
                    };
                    let result = match work.await {
                        Ok(result) => result,
                        Err(e) => crashed(index, &hosts[index], e),
                    };
                    drop(permit);
                    let _ = tx.send(result).await;
                });
            }
        })
    };
    // Ends when the feeder and every host task have dropped their senders and the buffer
    // is drained.
    while let Some(result) = rx.recv().await {
        on_result(result);
    }
    let _ = feeder.await;
}

/// The result for a host whose scan task failed.
fn crashed(index: usize, host: &Host, e: tokio::task::JoinError) -> HostResult {
    let mut facts = HostFacts::default();
    facts.host_failure = Some(Failure {
        kind: FailureKind::Protocol,
        reason: format!("internal error while scanning: {e}"),
    });
    HostResult {
        index,
        account: None,
        findings: evaluate_host(&host.roles, &facts, &Catalog::default()),
        facts,
        started_at: Timestamp::now(),
        elapsed: Duration::ZERO,
        rpc_calls: 0,
    }
}

async fn scan_one(
    index: usize,
    host: &Host,
    credentials: &Credentials,
    catalog: &Catalog,
    breaker: &Arc<LockoutBreaker>,
    host_timeout: Duration,
    connect_timeout: Duration,
) -> HostResult {
    let started_at = Timestamp::now();
    let t0 = Instant::now();
    let plan = Plan::for_roles(&host.roles, catalog);
    let mut facts = HostFacts::default();
    let mut rpc_calls = 0;
    let credential_name = host.credential.as_deref().unwrap_or(DEFAULT_ENTRY);
    let credential = credentials.get(credential_name);
    let account = credential.map(|c| c.account());

    let Some(credential) = credential else {
        facts.host_failure = Some(Failure {
            kind: FailureKind::Skipped,
            reason: format!("no credential named {credential_name:?}"),
        });
        return finish_host(index, host, account, facts, catalog, started_at, t0, rpc_calls);
    };
    let deadline = Instant::now() + host_timeout;
    let ctx = LogonContext {
        host,
        credential_name,
        credential,
        breaker,
        deadline,
        host_timeout,
        connect_timeout,
    };
    let mut connected = false;
    let mut refusals: Vec<(TransportKind, Failure)> = Vec::new();
    let mut tried = 0;
    for transport in &host.transports {
        // A refused logon is not retried over another transport: the account is the same,
        // and each try counts toward the lockout.
        if Instant::now() >= deadline || refusals.iter().any(|(_, f)| f.kind == FailureKind::AuthFailed) {
            break;
        }
        tried += 1;
        match transport {
            TransportKind::Smb => match logon(&ctx).await {
                Err(failure) => refusals.push((TransportKind::Smb, failure)),
                Ok(mut session) => {
                    let addr = socket_addr(&host.address, host.smb_port);
                    // After another transport, what it read stands; SMB fills the gaps.
                    let earlier = connected.then(|| facts.clone());
                    let work = async {
                        collect_smb(&mut session, &plan, catalog, &mut facts).await;
                        if plan.probes {
                            collect_probes(&addr, host_timeout, &mut facts).await;
                        }
                    };
                    let collected = tokio::time::timeout_at(deadline.into(), work).await;
                    if let Some(earlier) = earlier {
                        keep_earlier(&earlier, &mut facts);
                    }
                    rpc_calls = session.stats.rpc_calls;
                    connected = true;
                    match collected {
                        // Closing is courtesy to the host; it must not hold up the sweep.
                        Ok(()) => {
                            let _ = tokio::time::timeout(Duration::from_secs(2), session.close()).await;
                        }
                        Err(_) => break,
                    }
                }
            },
            TransportKind::Winrm | TransportKind::WinrmHttps => match winrm_logon(&ctx, *transport, connected).await {
                Err(failure) => refusals.push((*transport, failure)),
                Ok(mut session) => {
                    let only_missing = connected;
                    let work = collect::winrm::collect(&mut session, &plan, catalog, &mut facts, only_missing);
                    let collected = tokio::time::timeout_at(deadline.into(), work).await;
                    connected = true;
                    info!(
                        round_trips = session.stats.round_trips,
                        bytes = session.stats.bytes_sent + session.stats.bytes_received,
                        "winrm collected"
                    );
                    if collected.is_err() {
                        break;
                    }
                }
            },
        }
    }
    // What OWA shows anyone, for the settings the configuration reads did not give.
    if connected && plan.owa && Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let owa = collect::owa::collect(&host.address, host.http_port, connect_timeout, left, &mut facts);
        let _ = tokio::time::timeout_at(deadline.into(), owa).await;
    }
    if !connected {
        let failure = combine_failures(&refusals);
        warn!(kind = failure.kind.as_str(), reason = %failure.reason, "host not scanned");
        facts.host_failure = Some(failure);
    } else {
        if Instant::now() >= deadline {
            mark_cut_off(&mut facts, &plan, host_timeout);
        }
        // Why the loop stopped before these: a refused logon (never retried over another
        // transport) or the deadline.
        let refused = refusals
            .iter()
            .find(|(_, f)| f.kind == FailureKind::AuthFailed)
            .map(|(t, _)| *t);
        let untried = host.transports[tried..].iter().map(|t| {
            let failure = match refused {
                Some(over) => Failure {
                    kind: FailureKind::Skipped,
                    reason: format!(
                        "not tried: the logon was refused over {} (each try counts toward the lockout)",
                        transport_label(over)
                    ),
                },
                None => Failure {
                    kind: FailureKind::Timeout,
                    reason: format!(
                        "not tried: the host's deadline of {}s was reached first",
                        host_timeout.as_secs_f64()
                    ),
                },
            };
            (*t, failure)
        });
        facts.transport_failures = refusals
            .into_iter()
            .chain(untried)
            .map(|(t, f)| (transport_label(t).to_owned(), f))
            .collect();
        info!(facts = facts.len(), rpc_calls, "host collected");
    }
    finish_host(index, host, account, facts, catalog, started_at, t0, rpc_calls)
}

#[allow(clippy::too_many_arguments)]
fn finish_host(
    index: usize,
    host: &Host,
    account: Option<String>,
    facts: HostFacts,
    catalog: &Catalog,
    started_at: Timestamp,
    t0: Instant,
    rpc_calls: u32,
) -> HostResult {
    let findings = evaluate_host(&host.roles, &facts, catalog);
    HostResult {
        index,
        account,
        facts,
        findings,
        started_at,
        elapsed: t0.elapsed(),
        rpc_calls,
    }
}

/// Why no transport reached the host: the most telling cause first (a refused logon over a
/// refused connection), every transport's reason in the text.
fn combine_failures(refusals: &[(TransportKind, Failure)]) -> Failure {
    let rank = |k: FailureKind| match k {
        FailureKind::AuthFailed => 0,
        FailureKind::AccessDenied => 1,
        FailureKind::Skipped => 2,
        FailureKind::Timeout => 3,
        FailureKind::Protocol => 4,
        FailureKind::Unreachable => 5,
    };
    let kind = refusals
        .iter()
        .map(|(_, f)| f.kind)
        .min_by_key(|k| rank(*k))
        .unwrap_or(FailureKind::Skipped);
    let reason = match refusals {
        [(_, only)] => only.reason.clone(),
        _ => refusals
            .iter()
            .map(|(t, f)| format!("{}: {}", transport_label(*t), f.reason))
            .collect::<Vec<_>>()
            .join("; "),
    };
    Failure { kind, reason }
}

fn transport_label(t: TransportKind) -> &'static str {
    match t {
        TransportKind::Smb => "smb",
        TransportKind::Winrm => "winrm",
        TransportKind::WinrmHttps => "winrm-https",
    }
}

/// Logs on through the lockout breaker, within the host's deadline: a refused logon counts
/// against the account, a success lifts the in-flight bound.
async fn through_breaker<T, E, F>(ctx: &LogonContext<'_>, what: &str, connect: F) -> Result<T, Failure>
where
    F: std::future::Future<Output = Result<T, E>>,
    E: Into<crate::transport::TransportError>,
{
    // Keyed on the account, not the entry name: two entries for one account share its budget.
    let credential_name = ctx.credential_name;
    let ticket = match ctx.breaker.admit(&ctx.credential.account().to_lowercase()).await {
        Admission::Go(t) => t,
        Admission::Tripped { failures } => {
            return Err(Failure {
                kind: FailureKind::Skipped,
                reason: format!(
                    "credential {credential_name:?} not tried: {failures} logon failures earlier in this run (lockout breaker)"
                ),
            })
        }
    };
    match tokio::time::timeout_at(ctx.deadline.into(), connect).await {
        Err(_) => Err(Failure {
            kind: FailureKind::Timeout,
            reason: format!("no {what} within {}s", ctx.host_timeout.as_secs_f64()),
        }),
        Ok(Err(e)) => {
            let e: crate::transport::TransportError = e.into();
            let kind = e.kind();
            if kind == FailureKind::AuthFailed {
                ticket.logon_refused();
            }
            Err(Failure {
                kind,
                reason: e.to_string(),
            })
        }
        Ok(Ok(session)) => {
            ticket.logon_succeeded();
            Ok(session)
        }
    }
}

/// Who logs on to which host, and within which limits.
struct LogonContext<'a> {
    host: &'a Host,
    credential_name: &'a str,
    credential: &'a crate::credentials::Credential,
    breaker: &'a Arc<LockoutBreaker>,
    /// When the host's time is up.
    deadline: Instant,
    host_timeout: Duration,
    connect_timeout: Duration,
}

/// An SMB session, through the breaker.
async fn logon(ctx: &LogonContext<'_>) -> Result<SmbSession, Failure> {
    let target = SmbTarget {
        host: &ctx.host.address,
        port: ctx.host.smb_port,
        credential: ctx.credential,
        timeout: ctx.host_timeout,
        connect_timeout: ctx.connect_timeout,
    };
    through_breaker(ctx, "session", SmbSession::connect(target)).await
}

/// Facts a transport earlier in the host's order read stand: a later one's value replaces
/// them only where they could not be read.
fn keep_earlier(earlier: &HostFacts, facts: &mut HostFacts) {
    for fact in earlier.iter() {
        let readable = !matches!(fact.value, crate::facts::Value::Unavailable(_));
        let replaced = facts.get(&fact.name).is_none_or(|now| now.value != fact.value);
        if readable && replaced {
            facts.insert(fact.clone());
        }
    }
}

/// A WinRM session (HTTP or HTTPS), through the breaker. When another transport has logged
/// on to this host with the same account, a refusal is not a wrong password (Windows answers
/// 401 to accounts that may not use WinRM): it is access denied, and does not count.
async fn winrm_logon(
    ctx: &LogonContext<'_>,
    transport: TransportKind,
    account_proven: bool,
) -> Result<WinrmSession, Failure> {
    let host = ctx.host;
    let https = transport == TransportKind::WinrmHttps;
    let target = WinrmTarget {
        host: &host.address,
        port: if https { host.winrm_https_port } else { host.winrm_port },
        credential: ctx.credential,
        timeout: ctx.host_timeout,
        connect_timeout: ctx.connect_timeout,
        tls: https.then_some(if host.winrm_accept_self_signed {
            TlsMode::AcceptSelfSigned
        } else {
            TlsMode::Verify
        }),
    };
    if account_proven {
        return match tokio::time::timeout_at(ctx.deadline.into(), WinrmSession::connect(target)).await {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(e)) if e.kind() == FailureKind::AuthFailed => Err(Failure {
                kind: FailureKind::AccessDenied,
                reason: format!("WinRM refused an account the host accepts over SMB (not allowed to use WinRM?): {e}"),
            }),
            Ok(Err(e)) => Err(Failure {
                kind: e.kind(),
                reason: e.to_string(),
            }),
            Err(_) => Err(Failure {
                kind: FailureKind::Timeout,
                reason: format!("no WinRM session within {}s", ctx.host_timeout.as_secs_f64()),
            }),
        };
    }
    through_breaker(ctx, "WinRM session", WinrmSession::connect(target)).await
}

/// After a deadline: every planned fact not yet read is recorded as cut off, so checks on
/// them say `unknown` with the reason while facts already read still count.
fn mark_cut_off(facts: &mut HostFacts, plan: &Plan, host_timeout: Duration) {
    let failure = Failure {
        kind: FailureKind::Timeout,
        reason: format!(
            "host deadline of {}s reached before this was read",
            host_timeout.as_secs_f64()
        ),
    };
    crate::collect::finish(plan, facts, Some(&failure));
}
