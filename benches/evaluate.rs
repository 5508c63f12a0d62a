//! Evaluation at fleet scale: 10,000 synthetic hosts (Exchange 2000 at every patch level,
//! Exchange 2019 at several CUs) judged against the whole shipped catalog, in parallel.
//! Prints the figures; asserts nothing about time (benchmarks measure, tests judge).
//!
//! `cargo bench --bench evaluate [-- HOSTS]`

use std::time::Instant;

use exsweep::facts::{Fact, HostFacts, RegistryValue, Source, Transport, Value};
use exsweep::rules::{evaluate_fleet, Catalog, Probe, Status};
use exsweep::timefmt::Timestamp;
use exsweep_wire::regvalue::RegData;

/// A small deterministic generator, so every run judges the same fleet.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn source() -> Source {
    Source {
        transport: Transport::Smb,
        path: "synthetic".into(),
        value: None,
        read_at: Timestamp::now(),
    }
}

fn put(facts: &mut HostFacts, name: &str, value: Value) {
    facts.insert(Fact::new(name, value, source()));
}

/// One synthetic host: identity of one of the profiles, every probed fact with varied values.
fn host(catalog: &Catalog, rng: &mut Lcg) -> (Vec<String>, HostFacts) {
    const E2K: [(&str, &str, &str); 4] = [
        ("6.0.4417.0", "RTM", ""),
        ("6.0.5762.4", "SP2", ""),
        ("6.0.6603.1", "SP3", "post-SP3 rollup KB870540 (August 2004)"),
        ("6.0.6620.15", "SP3", "post-SP3 KB976703 (MS10-024)"),
    ];
    const E2019: [(&str, &str); 3] = [("15.2.792.5", "CU8"), ("15.2.1118.40", "CU12"), ("15.2.1544.4", "CU14")];
    let mut facts = HostFacts::default();
    let modern = rng.next(5) == 0;
    let roles = if modern {
        let (build, level) = E2019[rng.next(3) as usize];
        put(&mut facts, "exchange.generation", Value::Text("2019".into()));
        put(&mut facts, "exchange.build", Value::Text(build.into()));
        put(&mut facts, "exchange.level", Value::Text(level.into()));
        put(&mut facts, "os.product", Value::Text("Windows Server 2019".into()));
        put(&mut facts, "os.service_pack", Value::Number(0));
        vec!["exchange2019-mailbox".to_owned()]
    } else {
        let (build, level, update) = E2K[rng.next(4) as usize];
        put(&mut facts, "exchange.generation", Value::Text("2000".into()));
        put(&mut facts, "exchange.build", Value::Text(build.into()));
        put(&mut facts, "exchange.level", Value::Text(level.into()));
        if !update.is_empty() {
            put(&mut facts, "exchange.update", Value::Text(update.into()));
        }
        put(&mut facts, "os.product", Value::Text("Windows 2000".into()));
        put(&mut facts, "os.service_pack", Value::Number(1 + rng.next(4)));
        let role = if rng.next(3) == 0 {
            "exchange2000-owa-frontend"
        } else {
            "exchange2000-backend"
        };
        vec![role.to_owned()]
    };
    put(&mut facts, "exchange.installed", Value::Bool(true));
    put(&mut facts, "smb.smb1_accepted", Value::Bool(rng.next(2) == 0));
    let updates: Vec<String> = catalog
        .bulletins
        .iter()
        .filter(|_| rng.next(2) == 0)
        .filter_map(|b| b.affects.first()?.indicator.clone())
        .map(|i| i.trim_start_matches(r"HKLM\SOFTWARE\Microsoft\Updates\").to_owned())
        .collect();
    put(&mut facts, "updates.indicators", Value::List(updates));
    let probes = catalog.checks.iter().flat_map(|c| c.condition.probes()).chain(
        catalog
            .bulletins
            .iter()
            .flat_map(|b| b.affects.iter())
            .flat_map(|a| a.condition.iter())
            .flat_map(|c| c.probes()),
    );
    for probe in probes {
        let name = probe.fact_name();
        let value = match probe {
            Probe::Registry { .. } => {
                let data = RegData::Dword(rng.next(6) as u32);
                facts.insert(Fact {
                    name,
                    value: Value::Registry(RegistryValue::from_reg(&data)),
                    reg: Some(data),
                    source: source(),
                });
                continue;
            }
            Probe::RegistryKey { .. } => Value::Bool(true),
            Probe::Service { .. } => Value::Text(["automatic", "manual", "disabled"][rng.next(3) as usize].into()),
            Probe::File { .. } => Value::Text(format!("6.0.{}.0", 4417 + rng.next(2300))),
            Probe::Fact(_) => Value::Text("true".into()),
        };
        put(&mut facts, &name, value);
    }
    for file in catalog
        .bulletins
        .iter()
        .flat_map(|b| b.affects.iter())
        .flat_map(|a| a.files.iter())
    {
        put(&mut facts, &format!("file.{}.exists", file.path), Value::Bool(true));
        put(
            &mut facts,
            &format!("file.{}.version", file.path),
            Value::Text(format!("6.0.{}.{}", 6249 + rng.next(372), rng.next(90))),
        );
    }
    (roles, facts)
}

fn main() {
    let hosts: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let catalog = Catalog::builtin().expect("the shipped catalog loads");
    let mut rng = Lcg(0x5eed);
    let t0 = Instant::now();
    let fleet: Vec<(Vec<String>, HostFacts)> = (0..hosts).map(|_| host(&catalog, &mut rng)).collect();
    let built = t0.elapsed();
    let facts: usize = fleet.iter().map(|(_, f)| f.len()).sum();

    // Warm up once (page faults, rayon's pool), then measure three runs.
    let _ = evaluate_fleet(&fleet[..fleet.len().min(100)], &catalog);
    let mut runs = Vec::new();
    let mut findings = 0;
    let mut counts = [0usize; 4];
    for _ in 0..3 {
        let t = Instant::now();
        let judged = evaluate_fleet(&fleet, &catalog);
        runs.push(t.elapsed());
        findings = judged.iter().map(Vec::len).sum();
        counts = [0; 4];
        for f in judged.iter().flatten() {
            counts[match f.status {
                Status::Pass => 0,
                Status::Fail => 1,
                Status::NotApplicable => 2,
                Status::Unknown => 3,
            }] += 1;
        }
    }
    runs.sort();
    let median = runs[1];
    println!(
        "catalog: {} checks, {} bulletins, {} CVEs; {} threads",
        catalog.checks.len(),
        catalog.bulletins.len(),
        catalog.cves.len(),
        rayon::current_num_threads()
    );
    println!(
        "fleet: {hosts} synthetic hosts, {facts} facts (built in {} ms)",
        built.as_millis()
    );
    println!(
        "evaluate: median {} ms (min {} ms, max {} ms) for {findings} findings: {:.0} hosts/s",
        median.as_millis(),
        runs[0].as_millis(),
        runs[2].as_millis(),
        hosts as f64 / median.as_secs_f64()
    );
    println!(
        "findings: {} pass, {} fail, {} not-applicable, {} unknown",
        counts[0], counts[1], counts[2], counts[3]
    );
}
