//! The catalog: every baseline and bulletin file assembled into one set of checks, bulletins
//! and CVEs with unique ids, `extends` and `replaces` resolved into the roles each check
//! applies to, and the catalog's version and date. Nothing here touches the network.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::baseline::{parse_baseline, Baseline, CatalogError, Check};
use super::bulletins::{Bulletin, BulletinFileDef, Cve};
use crate::credentials::line_of;

/// The catalog's identity, from `bulletins/catalog.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogInfo {
    pub version: String,
    pub date: String,
    #[serde(default)]
    pub title: String,
}

/// Every loaded baseline, check, bulletin and CVE.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub baselines: Vec<Baseline>,
    pub checks: Vec<Check>,
    pub bulletins: Vec<Bulletin>,
    pub cves: Vec<Cve>,
    pub info: Option<CatalogInfo>,
}

/// A file's name and contents.
pub type Source<'a> = (&'a Path, &'a str);

pub(crate) fn read_folder(dir: &Path) -> Result<Vec<(PathBuf, String)>, CatalogError> {
    let io = |source| CatalogError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).map_err(|source| CatalogError::Io {
                path: f.clone(),
                source,
            })?;
            Ok((f, text))
        })
        .collect()
}

impl Catalog {
    /// Loads every `*.toml` file of a baselines folder and, when given, a bulletins folder.
    pub fn load(baselines: &Path, bulletins: Option<&Path>) -> Result<Catalog, CatalogError> {
        let baseline_files = read_folder(baselines)?;
        if baseline_files.is_empty() {
            return Err(CatalogError::Empty {
                path: baselines.to_owned(),
            });
        }
        let bulletin_files = match bulletins {
            Some(dir) => read_folder(dir)?,
            None => Vec::new(),
        };
        Catalog::assemble(
            baseline_files.iter().map(|(p, t)| (p.as_path(), t.as_str())),
            bulletin_files.iter().map(|(p, t)| (p.as_path(), t.as_str())),
        )
    }

    /// Baselines only, e.g. for tests.
    pub fn from_sources<'a>(baselines: impl IntoIterator<Item = Source<'a>>) -> Result<Catalog, CatalogError> {
        Catalog::assemble(baselines, std::iter::empty())
    }

    /// Builds a catalog from `(file name, text)` pairs; bulletin files named `catalog.toml`
    /// carry the catalog's version and date.
    pub fn assemble<'a>(
        baselines: impl IntoIterator<Item = Source<'a>>,
        bulletins: impl IntoIterator<Item = Source<'a>>,
    ) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::default();
        let mut ids: HashMap<String, String> = HashMap::new();
        let mut claim = |id: &str, path: &Path, line: usize| -> Result<(), CatalogError> {
            let here = format!("{}:{line}", path.display());
            match ids.insert(id.to_ascii_uppercase(), here) {
                Some(first) => Err(CatalogError::DuplicateId {
                    path: path.to_owned(),
                    line,
                    id: id.to_owned(),
                    first,
                }),
                None => Ok(()),
            }
        };
        let mut baseline_ids: HashMap<String, (PathBuf, usize)> = HashMap::new();
        for (path, text) in baselines {
            let parsed = parse_baseline(path, text)?;
            if let Some((first, line)) = baseline_ids.insert(
                parsed.header.id.to_ascii_lowercase(),
                (path.to_owned(), parsed.header.line),
            ) {
                return Err(CatalogError::Invalid {
                    path: path.to_owned(),
                    line: parsed.header.line,
                    message: format!(
                        "baseline id {:?} is already used by {}:{line}",
                        parsed.header.id,
                        first.display()
                    ),
                });
            }
            for c in &parsed.checks {
                claim(&c.id, &c.file, c.line)?;
            }
            catalog.baselines.push(parsed.header);
            catalog.checks.extend(parsed.checks);
        }
        for (path, text) in bulletins {
            let invalid = |line: usize, message: String| CatalogError::Invalid {
                path: path.to_owned(),
                line,
                message,
            };
            if path.file_name().is_some_and(|n| n == "catalog.toml") {
                let info: CatalogInfo = toml::from_str(text)
                    .map_err(|e| invalid(e.span().map_or(1, |s| line_of(text, s.start)), e.message().to_owned()))?;
                catalog.info = Some(info);
                continue;
            }
            let def: BulletinFileDef = toml::from_str(text)
                .map_err(|e| invalid(e.span().map_or(1, |s| line_of(text, s.start)), e.message().to_owned()))?;
            for spanned in def.bulletin {
                let line = line_of(text, spanned.span().start);
                let def = spanned.into_inner();
                let b = def.build(path, line).map_err(|m| invalid(line, m))?;
                claim(&b.id, path, line)?;
                catalog.bulletins.push(b);
            }
            for spanned in def.cve {
                let line = line_of(text, spanned.span().start);
                let c = spanned.into_inner().build(path, line).map_err(|m| invalid(line, m))?;
                claim(&c.id, path, line)?;
                catalog.cves.push(c);
            }
        }
        catalog.resolve_extends()?;
        catalog.check_supersedence()?;
        Ok(catalog)
    }

    /// Gives each check the roles of the baselines that extend its own, minus those that
    /// replace it; refuses dangling or cyclic `extends` and dangling `replaces`.
    fn resolve_extends(&mut self) -> Result<(), CatalogError> {
        let index: HashMap<String, usize> = self
            .baselines
            .iter()
            .enumerate()
            .map(|(i, b)| (b.id.to_ascii_lowercase(), i))
            .collect();
        for b in &self.baselines {
            for parent in &b.extends {
                if !index.contains_key(&parent.to_ascii_lowercase()) {
                    return Err(CatalogError::Invalid {
                        path: b.file.clone(),
                        line: b.line,
                        message: format!("baseline {:?} extends {parent:?}, which is not a loaded baseline", b.id),
                    });
                }
            }
        }
        // Ancestors of each baseline, refusing cycles.
        let mut ancestors: Vec<Vec<usize>> = Vec::with_capacity(self.baselines.len());
        for (i, b) in self.baselines.iter().enumerate() {
            let mut seen = Vec::new();
            let mut stack: Vec<usize> = b.extends.iter().map(|p| index[&p.to_ascii_lowercase()]).collect();
            while let Some(p) = stack.pop() {
                if p == i {
                    return Err(CatalogError::Invalid {
                        path: b.file.clone(),
                        line: b.line,
                        message: format!("baseline {:?} extends itself through {:?}", b.id, b.extends),
                    });
                }
                if !seen.contains(&p) {
                    seen.push(p);
                    stack.extend(self.baselines[p].extends.iter().map(|q| index[&q.to_ascii_lowercase()]));
                }
            }
            ancestors.push(seen);
        }
        // Which ids each baseline's checks replace, and that each names a check of an ancestor.
        let mut replaced_by: Vec<HashSet<String>> = vec![HashSet::new(); self.baselines.len()];
        for c in &self.checks {
            let own = index[&c.baseline.to_ascii_lowercase()];
            for r in &c.replaces {
                let target = self.checks.iter().find(|t| t.id.eq_ignore_ascii_case(r));
                let ok = target.is_some_and(|t| ancestors[own].contains(&index[&t.baseline.to_ascii_lowercase()]));
                if !ok {
                    return Err(CatalogError::Invalid {
                        path: c.file.clone(),
                        line: c.line,
                        message: format!(
                            "check {:?} replaces {r:?}, which is not a check of a baseline it extends",
                            c.id
                        ),
                    });
                }
                replaced_by[own].insert(r.to_ascii_uppercase());
            }
        }
        let baselines = &self.baselines;
        for c in &mut self.checks {
            let own = index[&c.baseline.to_ascii_lowercase()];
            let id = c.id.to_ascii_uppercase();
            for (d, anc) in ancestors.iter().enumerate() {
                if !anc.contains(&own) {
                    continue;
                }
                // Replaced on the way from the check's baseline down to `d`?
                let on_path = |x: usize| x == d || (ancestors[d].contains(&x) && ancestors[x].contains(&own));
                let replaced = (0..baselines.len()).any(|x| on_path(x) && replaced_by[x].contains(&id));
                if !replaced {
                    for role in &baselines[d].roles {
                        if !c.roles.iter().any(|r| r.eq_ignore_ascii_case(role)) {
                            c.roles.push(role.clone());
                        }
                    }
                }
            }
            if c.roles.is_empty() {
                return Err(CatalogError::Invalid {
                    path: c.file.clone(),
                    line: c.line,
                    message: format!(
                        "check {:?} applies to no role (give `roles` on the check or in [baseline], or extend the baseline)",
                        c.id
                    ),
                });
            }
        }
        Ok(())
    }

    /// Every `supersedes` names a bulletin of the catalog, and no chain comes back to its start.
    fn check_supersedence(&self) -> Result<(), CatalogError> {
        for b in &self.bulletins {
            let mut stack: Vec<&str> = b.supersedes.iter().map(String::as_str).collect();
            let mut seen: Vec<&str> = Vec::new();
            while let Some(id) = stack.pop() {
                if id.eq_ignore_ascii_case(&b.id) {
                    return Err(CatalogError::Invalid {
                        path: b.file.clone(),
                        line: b.line,
                        message: format!("bulletin {:?} supersedes itself through a chain of supersedes", b.id),
                    });
                }
                if seen.iter().any(|s| s.eq_ignore_ascii_case(id)) {
                    continue;
                }
                seen.push(id);
                if let Some(next) = self.bulletins.iter().find(|o| o.id.eq_ignore_ascii_case(id)) {
                    stack.extend(next.supersedes.iter().map(String::as_str));
                }
            }
        }
        for b in &self.bulletins {
            for s in &b.supersedes {
                if !self.bulletins.iter().any(|o| o.id.eq_ignore_ascii_case(s)) {
                    return Err(CatalogError::Invalid {
                        path: b.file.clone(),
                        line: b.line,
                        message: format!("bulletin {:?} supersedes {s:?}, which is not in the catalog", b.id),
                    });
                }
                if s.eq_ignore_ascii_case(&b.id) {
                    return Err(CatalogError::Invalid {
                        path: b.file.clone(),
                        line: b.line,
                        message: format!("bulletin {:?} supersedes itself", b.id),
                    });
                }
            }
        }
        Ok(())
    }

    /// The checks that apply to a host with these roles, with the role that brought each in.
    /// A check another applicable check replaces is left out (a host holding both the base
    /// role and the extending one gets the replacement only).
    pub fn checks_for<'a>(&'a self, host_roles: &'a [String]) -> impl Iterator<Item = (&'a Check, &'a str)> + 'a {
        let applicable: Vec<(&Check, &str)> = self
            .checks
            .iter()
            .filter_map(|c| c.matching_role(host_roles).map(|r| (c, r)))
            .collect();
        let replaced: Vec<&str> = applicable
            .iter()
            .flat_map(|(c, _)| c.replaces.iter().map(String::as_str))
            .collect();
        applicable
            .into_iter()
            .filter(move |(c, _)| !replaced.iter().any(|r| r.eq_ignore_ascii_case(&c.id)))
    }

    /// Bulletins that supersede `id`.
    pub fn superseded_by(&self, id: &str) -> Vec<&str> {
        self.bulletins
            .iter()
            .filter(|b| b.supersedes.iter().any(|s| s.eq_ignore_ascii_case(id)))
            .map(|b| b.id.as_str())
            .collect()
    }

    /// What `exsweep catalog lint` reports beyond what loading already refuses: a check or
    /// bulletin without a source, a catalog without a version or date.
    pub fn lint(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match &self.info {
            None => problems.push("no catalog.toml: the catalog has no version and date".to_owned()),
            Some(info) => {
                if info.version.trim().is_empty() {
                    problems.push("catalog.toml: empty version".into());
                }
                if crate::timefmt::parse_date(&info.date).is_none() {
                    problems.push(format!("catalog.toml: date {:?} is not YYYY-MM-DD", info.date));
                }
            }
        }
        let at = |file: &Path, line: usize| format!("{}:{line}", file.display());
        for c in &self.checks {
            if c.source.trim().is_empty() {
                problems.push(format!("{}: check {:?} names no source", at(&c.file, c.line), c.id));
            }
            if c.title.trim().is_empty() {
                problems.push(format!("{}: check {:?} has no title", at(&c.file, c.line), c.id));
            }
        }
        for b in &self.baselines {
            if b.source.trim().is_empty() {
                problems.push(format!("{}: baseline {:?} names no source", at(&b.file, b.line), b.id));
            }
            if b.version.trim().is_empty() {
                problems.push(format!("{}: baseline {:?} has no version", at(&b.file, b.line), b.id));
            }
        }
        const EXCHANGE_GENERATIONS: [&str; 9] = ["5.5", "2000", "2003", "2007", "2010", "2013", "2016", "2019", "SE"];
        for b in &self.bulletins {
            if b.source.trim().is_empty() {
                problems.push(format!("{}: bulletin {:?} names no source", at(&b.file, b.line), b.id));
            }
            if b.affects.is_empty() && b.not_affected.is_empty() {
                problems.push(format!(
                    "{}: bulletin {:?} names no product line (affects or not_affected)",
                    at(&b.file, b.line),
                    b.id
                ));
            }
            for a in &b.affects {
                let known = match a.product {
                    super::bulletins::Product::Exchange => EXCHANGE_GENERATIONS.contains(&a.generation.as_str()),
                    super::bulletins::Product::Windows => a.generation.starts_with("Windows"),
                };
                if !known {
                    problems.push(format!(
                        "{}: bulletin {:?}: generation {:?} is not one exsweep recognises",
                        at(&b.file, b.line),
                        b.id,
                        a.generation
                    ));
                }
                for f in &a.files {
                    if let Err(e) = super::condition::check_file_template(&f.path) {
                        problems.push(format!("{}: bulletin {:?}: {e}", at(&b.file, b.line), b.id));
                    }
                }
            }
        }
        for c in &self.cves {
            if c.generations.is_empty()
                || c.generations
                    .iter()
                    .any(|g| !EXCHANGE_GENERATIONS.contains(&g.as_str()))
            {
                problems.push(format!(
                    "{}: CVE {:?}: generations {:?}",
                    at(&c.file, c.line),
                    c.id,
                    c.generations
                ));
            }
            if c.source.trim().is_empty() {
                problems.push(format!("{}: CVE {:?} names no source", at(&c.file, c.line), c.id));
            }
            for update in &c.fixed_by {
                if !crate::builds::exchange_builds()
                    .iter()
                    .any(|r| r.update.eq_ignore_ascii_case(update))
                {
                    problems.push(format!(
                        "{}: CVE {:?} is fixed by {update:?}, which builds/exchange.csv does not know",
                        at(&c.file, c.line),
                        c.id
                    ));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Condition, Expect, Probe, Scalar};

    const W2K: &str = r#"
[baseline]
id = "w2k"
title = "Windows 2000 member"
version = "1"
source = "s"
roles = ["windows2000-member"]

[[check]]
id = "W2K-LMCOMPAT"
title = "NTLMv2 only"
severity = "high"
source = "s"
registry = { path = 'HKLM\SYSTEM\CurrentControlSet\Control\Lsa', value = 'LmCompatibilityLevel' }
expect = { op = "ge", value = 3 }

[[check]]
id = "W2K-NNTP"
title = "NNTP disabled"
severity = "medium"
source = "s"
service = { name = "NntpSvc" }
expect = { op = "eq", value = "disabled" }
"#;

    const BE: &str = r#"
[baseline]
id = "be"
title = "back-end"
version = "1"
source = "s"
roles = ["exchange2000-backend"]
extends = ["w2k"]

[[check]]
id = "BE-IS"
title = "IS automatic"
severity = "info"
source = "s"
service = { name = "MSExchangeIS" }
expect = { op = "eq", value = "automatic" }
"#;

    const FE: &str = r#"
[baseline]
id = "fe"
title = "front-end"
version = "1"
source = "s"
roles = ["exchange2000-owa-frontend"]
extends = ["be"]

[[check]]
id = "FE-IS"
title = "IS disabled"
severity = "medium"
source = "s"
replaces = ["BE-IS"]
service = { name = "MSExchangeIS" }
expect = { op = "eq", value = "disabled" }
"#;

    fn load(files: &[(&str, &str)]) -> Result<Catalog, CatalogError> {
        Catalog::from_sources(files.iter().map(|(p, t)| (Path::new(*p), *t)))
    }

    fn ids(cat: &Catalog, role: &str) -> Vec<String> {
        let roles = vec![role.to_owned()];
        cat.checks_for(&roles).map(|(c, _)| c.id.clone()).collect()
    }

    #[test]
    fn extends_brings_checks_to_the_roles_below_and_replaces_takes_them_away() {
        let cat = load(&[("w2k.toml", W2K), ("be.toml", BE), ("fe.toml", FE)]).unwrap();
        assert_eq!(ids(&cat, "windows2000-member"), ["W2K-LMCOMPAT", "W2K-NNTP"]);
        assert_eq!(ids(&cat, "exchange2000-backend"), ["W2K-LMCOMPAT", "W2K-NNTP", "BE-IS"]);
        assert_eq!(
            ids(&cat, "exchange2000-owa-frontend"),
            ["W2K-LMCOMPAT", "W2K-NNTP", "FE-IS"]
        );
        assert_eq!(cat.checks[0].line, 9, "the line of the [[check]] header");
        assert_eq!(
            cat.checks[0].condition,
            Condition::Leaf {
                probe: Probe::Registry {
                    path: "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa".into(),
                    value: "LmCompatibilityLevel".into()
                },
                expect: Expect::Ge(Scalar::Int(3)),
            }
        );
    }

    #[test]
    fn dangling_and_cyclic_references_name_file_line_and_id() {
        let err = load(&[("be.toml", BE)]).unwrap_err().to_string();
        assert_eq!(
            err,
            "be.toml:2: baseline \"be\" extends \"w2k\", which is not a loaded baseline"
        );
        let cyclic = W2K.replace(
            "roles = [\"windows2000-member\"]",
            "roles = [\"windows2000-member\"]\nextends = [\"be\"]",
        );
        let err = load(&[("w2k.toml", &cyclic), ("be.toml", BE)]).unwrap_err().to_string();
        assert!(err.contains("extends itself"), "{err}");
        let bad = FE.replace("BE-IS\"]", "NOPE\"]");
        let err = load(&[("w2k.toml", W2K), ("be.toml", BE), ("fe.toml", &bad)])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("fe.toml:10: check \"FE-IS\" replaces \"NOPE\""),
            "{err}"
        );
        let err = load(&[
            ("a.toml", W2K),
            ("b.toml", &W2K.replace("id = \"w2k\"", "id = \"w2k2\"")),
        ])
        .unwrap_err()
        .to_string();
        assert_eq!(err, "b.toml:9: id \"W2K-LMCOMPAT\" is already defined at a.toml:9");
    }

    #[test]
    fn unknown_field_and_bad_expect_name_file_and_line() {
        let bad = W2K.replace("severity = \"medium\"", "severity = \"medium\"\ncolour = 1");
        let err = load(&[("w2k.toml", &bad)]).unwrap_err().to_string();
        assert!(err.starts_with("w2k.toml:21: unknown field `colour`"), "{err}");
        let bad = W2K.replace("{ op = \"ge\", value = 3 }", "{ op = \"exists\", value = 3 }");
        let err = load(&[("w2k.toml", &bad)]).unwrap_err().to_string();
        assert_eq!(
            err,
            "w2k.toml:9: check \"W2K-LMCOMPAT\": `exists` and `absent` take no value"
        );
        let bad = W2K.replace("severity = \"high\"", "severity = \"severe\"");
        assert!(load(&[("w2k.toml", &bad)])
            .unwrap_err()
            .to_string()
            .starts_with("w2k.toml:"));
    }

    #[test]
    fn bulletins_load_with_supersedence_checked() {
        let bulletins = r#"
[[bulletin]]
id = "MS05-021"
title = "t"
severity = "critical"
source = "s"
supersedes = ["MS03-046"]
[[bulletin.affects]]
product = "exchange"
generation = "2000"
levels = ["SP3"]
files = [{ path = '%ExchangeInstallPath%\bin\reapi.dll', version = "6.0.6617.52" }]

[[bulletin]]
id = "MS03-046"
title = "t"
severity = "critical"
source = "s"
"#;
        let cat = Catalog::assemble(
            [(Path::new("w2k.toml"), W2K)],
            [
                (Path::new("b.toml"), bulletins),
                (Path::new("catalog.toml"), "version = '1'\ndate = '2026-11-28'\n"),
            ],
        )
        .unwrap();
        assert_eq!(cat.bulletins.len(), 2);
        assert_eq!(cat.superseded_by("ms03-046"), ["MS05-021"]);
        assert_eq!(cat.info.as_ref().unwrap().date, "2026-11-28");
        let dangling = bulletins.replace("MS03-046\"]", "MS99-999\"]");
        let err = Catalog::assemble(
            [(Path::new("w2k.toml"), W2K)],
            [(Path::new("b.toml"), dangling.as_str())],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "b.toml:2: bulletin \"MS05-021\" supersedes \"MS99-999\", which is not in the catalog"
        );
        let clash = bulletins.replace("MS03-046\"\n", "W2K-NNTP\"\n");
        let err = Catalog::assemble([(Path::new("w2k.toml"), W2K)], [(Path::new("b.toml"), clash.as_str())]);
        assert!(err.is_err());
    }

    #[test]
    fn a_host_with_both_roles_gets_the_replacement_only_and_cycles_are_refused() {
        let cat = load(&[("w2k.toml", W2K), ("be.toml", BE), ("fe.toml", FE)]).unwrap();
        let roles = vec![
            "exchange2000-backend".to_owned(),
            "exchange2000-owa-frontend".to_owned(),
        ];
        let ids: Vec<&str> = cat.checks_for(&roles).map(|(c, _)| c.id.as_str()).collect();
        assert!(ids.contains(&"FE-IS") && !ids.contains(&"BE-IS"), "{ids:?}");

        let cycle = "[[bulletin]]\nid = 'A'\ntitle = 't'\nseverity = 'low'\nsource = 's'\nsupersedes = ['B']\nnot_affected = [{ product = 'exchange', generation = '2000' }]\n\
[[bulletin]]\nid = 'B'\ntitle = 't'\nseverity = 'low'\nsource = 's'\nsupersedes = ['A']\nnot_affected = [{ product = 'exchange', generation = '2000' }]\n";
        let err = Catalog::assemble([(Path::new("w2k.toml"), W2K)], [(Path::new("c.toml"), cycle)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("supersedes itself through a chain"), "{err}");
    }
}
