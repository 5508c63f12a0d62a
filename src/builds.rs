//! Build tables: which product generation, service pack or cumulative update, and security
//! update a build number is. Exchange's table is `builds/exchange.csv`, compiled into the
//! binary; Windows kernels are told apart by their well-known major.minor.build.

use std::fmt;
use std::sync::OnceLock;

/// A dotted version of up to four numeric parts (missing parts are 0): `6.0.6249` equals
/// `6.0.6249.0`. Compares numerically, never as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Build(pub [u32; 4]);

impl Build {
    pub fn parse(text: &str) -> Option<Build> {
        let mut parts = [0u32; 4];
        let mut count = 0;
        for (i, p) in text.trim().split('.').enumerate() {
            if i >= 4 {
                return None;
            }
            parts[i] = p.trim().parse().ok()?;
            count += 1;
        }
        (count >= 2).then_some(Build(parts))
    }

    pub fn major_minor(&self) -> (u32, u32) {
        (self.0[0], self.0[1])
    }
}

impl fmt::Display for Build {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// One row of the Exchange build table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRow {
    pub generation: String,
    pub build: Build,
    /// `RTM`, `SP3`, `CU8`.
    pub level: String,
    /// The update on top of the level, empty for the level's own build: `Feb21SU`,
    /// `post-SP3 rollup KB870540 (August 2004)`.
    pub update: String,
    pub released: String,
}

/// What a build is, by the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identified {
    pub generation: String,
    pub level: String,
    pub update: Option<String>,
    /// The table has this very build; otherwise `row_build` is the nearest one below it.
    pub exact: bool,
    pub row_build: Build,
}

impl Identified {
    /// `SP3 post-SP3 rollup KB870540 (August 2004)`, `CU8 Feb21SU`, `SP3 or later`.
    pub fn level_name(&self) -> String {
        let mut name = self.level.clone();
        if let Some(u) = &self.update {
            name.push(' ');
            name.push_str(u);
        }
        if !self.exact {
            name.push_str(&format!(" or later (nearest known build {})", self.row_build));
        }
        name
    }
}

const EXCHANGE_CSV: &str = include_str!("../builds/exchange.csv");

/// The Exchange build table shipped with the binary (parsed once).
pub fn exchange_builds() -> &'static [BuildRow] {
    static TABLE: OnceLock<Vec<BuildRow>> = OnceLock::new();
    TABLE.get_or_init(|| parse_table(EXCHANGE_CSV).unwrap_or_default())
}

/// Parses the table; the shipped one is checked by a test, so a broken row cannot ship.
pub fn parse_table(text: &str) -> Result<Vec<BuildRow>, String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let r = record.map_err(|e| format!("builds/exchange.csv:{line}: {e}"))?;
        let field = |n: usize| r.get(n).unwrap_or("").to_owned();
        let build =
            Build::parse(&field(1)).ok_or_else(|| format!("builds/exchange.csv:{line}: bad build {:?}", field(1)))?;
        rows.push(BuildRow {
            generation: field(0),
            build,
            level: field(2),
            update: field(3),
            released: field(4),
        });
    }
    rows.sort_by(|a, b| a.build.cmp(&b.build).then_with(|| a.update.len().cmp(&b.update.len())));
    Ok(rows)
}

/// The Exchange generation of a build by its major.minor (and, for 15.2, the build number
/// where Subscription Edition starts).
pub fn exchange_generation(build: Build) -> Option<&'static str> {
    Some(match build.major_minor() {
        (5, 5) => "5.5",
        (6, 0) => "2000",
        (6, 5) => "2003",
        (8, _) => "2007",
        (14, _) => "2010",
        (15, 0) => "2013",
        (15, 1) => "2016",
        (15, 2) if build.0[2] >= 2562 => "SE",
        (15, 2) => "2019",
        _ => return None,
    })
}

/// Finds `build` in `table`: the exact row, else the nearest row below it of the same
/// generation. When a build is listed twice (a CU whose release already held an SU), the row
/// naming the update wins.
pub fn identify(table: &[BuildRow], build: Build) -> Option<Identified> {
    let generation = exchange_generation(build)?;
    let row = table
        .iter()
        .filter(|r| r.generation == generation && r.build <= build)
        .max_by(|a, b| a.build.cmp(&b.build).then_with(|| a.update.len().cmp(&b.update.len())))?;
    Some(Identified {
        generation: generation.to_owned(),
        level: row.level.clone(),
        update: (!row.update.is_empty()).then(|| row.update.clone()),
        exact: row.build == build,
        row_build: row.build,
    })
}

/// Windows product names by kernel major.minor.build, for servers an Exchange runs on.
pub fn windows_product(build: Build) -> Option<&'static str> {
    let [major, minor, number, _] = build.0;
    Some(match (major, minor) {
        (4, 0) => "Windows NT 4.0",
        (5, 0) => "Windows 2000",
        (5, 2) => "Windows Server 2003",
        (6, 0) => "Windows Server 2008",
        (6, 1) => "Windows Server 2008 R2",
        (6, 2) => "Windows Server 2012",
        (6, 3) => "Windows Server 2012 R2",
        (10, 0) => match number {
            14393 => "Windows Server 2016",
            17763 => "Windows Server 2019",
            20348 => "Windows Server 2022",
            26100 => "Windows Server 2025",
            _ => "Windows 10/11 or Server (build not a known server release)",
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Build {
        Build::parse(s).unwrap()
    }

    #[test]
    fn shipped_table_parses_and_names_the_exchange_2000_levels() {
        let table = parse_table(EXCHANGE_CSV).unwrap();
        assert!(table.len() > 400, "{}", table.len());
        let name = |s: &str| identify(&table, b(s)).map(|i| (i.generation.clone(), i.level_name()));
        assert_eq!(name("6.0.4417.0"), Some(("2000".into(), "RTM".into())));
        assert_eq!(
            name("6.0.5762.4"),
            Some(("2000".into(), "SP2 or later (nearest known build 6.0.5762.0)".into()))
        );
        assert_eq!(name("6.0.6249.0"), Some(("2000".into(), "SP3".into())));
        assert_eq!(
            name("6.0.6603.1"),
            Some(("2000".into(), "SP3 post-SP3 rollup KB870540 (August 2004)".into()))
        );
        assert_eq!(
            name("6.0.6620.15"),
            Some(("2000".into(), "SP3 post-SP3 KB976703 (MS10-024)".into()))
        );
        assert_eq!(name("15.2.792.5"), Some(("2019".into(), "CU8 Feb21SU".into())));
        assert_eq!(name("15.2.2562.17").map(|n| n.0), Some("SE".into()));
        assert_eq!(name("7.0.1.0"), None);
    }

    #[test]
    fn builds_compare_numerically() {
        assert!(b("6.0.6603.1") > b("6.0.6249"));
        assert!(b("15.2.1118.40") > b("15.2.1118.9"));
        assert_eq!(b("6.0.6249"), b("6.0.6249.0"));
        assert_eq!(Build::parse("6"), None);
        assert_eq!(Build::parse("6.x"), None);
        assert_eq!(Build::parse("1.2.3.4.5"), None);
        assert_eq!(windows_product(b("5.0.2195.6717")), Some("Windows 2000"));
        assert_eq!(windows_product(b("10.0.17763.1")), Some("Windows Server 2019"));
    }
}
