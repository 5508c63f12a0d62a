//! The hotfix inventory MBSA read: update indicator keys under
//! `HKLM\SOFTWARE\Microsoft\Updates\<product>\<SPn>\<KB or Q id>`, their `Filelist` subkeys,
//! and the ids normalised so that `Q823980`, `KB823980` and `823980` are one update.

use std::collections::{BTreeMap, BTreeSet};

use exsweep_wire::regvalue::RegData;

use super::{failure, session_lost, smb_source, UPDATES};
use crate::facts::Failure;
use crate::facts::{Fact, HostFacts, Value};
use crate::transport::smb::SmbSession;
use crate::transport::TransportError;

/// `Filelist\<n>` entries read per update at most: real ones list a few dozen files.
const MAX_FILELIST_ENTRIES: usize = 256;

/// `KB823980` for `Q823980`, `kb823980`, `KB 823980`, `823980` or a re-release `KB950982-v2`;
/// other names (`Update Rollup 1`) as they are.
pub fn normalize_update_id(id: &str) -> String {
    let trimmed = id.trim();
    let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
    let mut upper = compact.to_ascii_uppercase();
    if let Some(at) = upper.rfind("-V") {
        if upper.len() > at + 2 && upper[at + 2..].bytes().all(|b| b.is_ascii_digit()) {
            upper.truncate(at);
        }
    }
    let digits = upper
        .strip_prefix("KB")
        .or_else(|| upper.strip_prefix('Q'))
        .unwrap_or(&upper);
    if (5..=8).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        format!("KB{digits}")
    } else {
        trimmed.to_owned()
    }
}

/// `SP4`, `RTM`, `Gold`: the service-pack level keys MBSA's layout puts between product and update.
pub fn is_level(name: &str) -> bool {
    let upper = name.trim().to_ascii_uppercase();
    upper == "RTM"
        || upper == "GOLD"
        || upper
            .strip_prefix("SP")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// One update indicator: where it was found and its normalised id.
struct Indicator {
    /// `<product>\<SPn>\<id>` (or `<product>\<id>`), relative to the Updates key.
    entry: String,
    id: String,
}

/// Every `<product>\<SPn>\<id>` under the Updates key, as MBSA enumerated them, and
/// `<product>\<id>` where an update registered without a service-pack level.
async fn indicators(session: &mut SmbSession) -> Result<Vec<Indicator>, TransportError> {
    let mut out = Vec::new();
    let Some(products) = session.subkeys(UPDATES).await? else {
        return Ok(out);
    };
    for product in products {
        let product_path = format!("{UPDATES}\\{product}");
        for level in session.subkeys(&product_path).await?.unwrap_or_default() {
            // Some updates register without a service-pack level (`<product>\<KB id>`): a
            // name that is not a level (`SP4`, `RTM`, `Gold`) is an update itself, and its
            // subkeys (`Filelist`) are not updates.
            if !is_level(&level) {
                out.push(Indicator {
                    id: normalize_update_id(&level),
                    entry: format!("{product}\\{level}"),
                });
                continue;
            }
            let level_path = format!("{product_path}\\{level}");
            let ids = session.subkeys(&level_path).await?.unwrap_or_default();
            for id in ids {
                out.push(Indicator {
                    entry: format!("{product}\\{level}\\{id}"),
                    id: normalize_update_id(&id),
                });
            }
        }
    }
    Ok(out)
}

/// The files an update's `Filelist` names, as `<Location>\<FileName> <Version>` lines, or
/// `None` when the update has no `Filelist` key.
async fn filelist(session: &mut SmbSession, entry_path: &str) -> Result<Option<Vec<String>>, TransportError> {
    let list_path = format!("{entry_path}\\Filelist");
    let Some(numbers) = session.subkeys(&list_path).await? else {
        return Ok(None);
    };
    let mut files = Vec::new();
    for n in numbers.into_iter().take(MAX_FILELIST_ENTRIES) {
        let path = format!("{list_path}\\{n}");
        let field = |data: Option<RegData>| match data {
            Some(RegData::Sz(s)) | Some(RegData::ExpandSz(s)) => s,
            _ => String::new(),
        };
        let name = field(session.query_value(&path, "FileName").await?);
        let version = field(session.query_value(&path, "Version").await?);
        let location = field(session.query_value(&path, "Location").await?);
        let file = if location.is_empty() {
            name
        } else {
            format!("{}\\{name}", location.trim_end_matches('\\'))
        };
        files.push(format!("{file} {version}").trim().to_owned());
    }
    Ok(Some(files))
}

/// Reads the indicators into `updates.indicators` (as found), `hotfix.installed`
/// (normalised ids) and `hotfix.<id>.files` (where a `Filelist` exists). Returns the failure
/// that ended the session, if one did.
pub async fn collect(session: &mut SmbSession, facts: &mut HostFacts) -> Option<Failure> {
    let found = match indicators(session).await {
        Ok(found) => found,
        Err(e) => {
            let f = failure(&e);
            for name in ["updates.indicators", "hotfix.installed"] {
                facts.insert(Fact::new(name, Value::Unavailable(f.clone()), smb_source(UPDATES)));
            }
            return session_lost(&e).then_some(f);
        }
    };
    // Sorted: a registry's enumeration order is its own, not part of the fact.
    let mut entries: Vec<String> = found.iter().map(|i| i.entry.clone()).collect();
    entries.sort_by_key(|e| e.to_ascii_lowercase());
    facts.insert(Fact::new(
        "updates.indicators",
        Value::List(entries),
        smb_source(UPDATES),
    ));
    let ids: BTreeSet<String> = found.iter().map(|i| i.id.clone()).collect();
    facts.insert(Fact::new(
        "hotfix.installed",
        Value::List(ids.into_iter().collect()),
        smb_source(UPDATES),
    ));

    // One Filelist per id, the first entry that has one.
    let mut files: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for indicator in &found {
        if files.contains_key(&indicator.id) {
            continue;
        }
        let path = format!("{UPDATES}\\{}", indicator.entry);
        match filelist(session, &path).await {
            Ok(Some(list)) => {
                files.insert(indicator.id.clone(), (path, list));
            }
            Ok(None) => {}
            Err(e) => {
                let name = format!("hotfix.{}.files", indicator.id);
                let f = failure(&e);
                facts.insert(Fact::new(&name, Value::Unavailable(f.clone()), smb_source(&path)));
                if session_lost(&e) {
                    return Some(f);
                }
            }
        }
    }
    for (id, (path, list)) in files {
        facts.insert(Fact::new(
            &format!("hotfix.{id}.files"),
            Value::List(list),
            smb_source(&path),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_ids_normalise() {
        assert_eq!(normalize_update_id("Q823980"), "KB823980");
        assert_eq!(normalize_update_id("kb823980"), "KB823980");
        assert_eq!(normalize_update_id("823980"), "KB823980");
        assert_eq!(normalize_update_id("KB870540"), "KB870540");
        assert_eq!(normalize_update_id("Update Rollup 1"), "Update Rollup 1");
        assert_eq!(normalize_update_id("SP5"), "SP5");
        assert_eq!(normalize_update_id("Q12"), "Q12");
        assert_eq!(normalize_update_id("KB950982-v2"), "KB950982");
        assert_eq!(normalize_update_id("KB 823980"), "KB823980");
        assert!(
            is_level("SP4") && is_level("rtm") && !is_level("SP") && !is_level("KB870540") && !is_level("Filelist")
        );
    }
}
