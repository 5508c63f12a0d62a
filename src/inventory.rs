//! The inventory: which hosts to scan, their roles and the credential each uses. Read from
//! CSV (`name,address,roles,credential`) or TOML (`[defaults]` plus `[[host]]` tables).
//! Every error names the file and the line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::credentials::line_of;

/// Where a host was declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One host to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    /// A DNS name or an IP address, as written.
    pub address: String,
    /// SMB port: 445 unless the address says `host:port` (or `[v6]:port`).
    pub smb_port: u16,
    pub roles: Vec<String>,
    /// The credentials entry; `None` means the default entry.
    pub credential: Option<String>,
    /// Transports in order of preference: a fact the first cannot give is asked of the next.
    pub transports: Vec<TransportKind>,
    /// WinRM over HTTP (5985 unless the inventory says otherwise).
    pub winrm_port: u16,
    /// WinRM over HTTPS (5986 unless the inventory says otherwise).
    pub winrm_https_port: u16,
    /// The web server OWA is asked on over plain HTTP (80 unless the inventory says otherwise).
    pub http_port: u16,
    /// Accept any TLS certificate from this host: set only by the command line's
    /// `--winrm-accept-self-signed`, which names hosts; never by an inventory file.
    pub winrm_accept_self_signed: bool,
    pub origin: Origin,
}

/// A transport a host may be read over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    Smb,
    Winrm,
    /// WinRM over HTTPS (`winrm-https`).
    #[serde(rename = "winrm-https")]
    WinrmHttps,
}

/// `["smb", "winrm"]`: SMB first (it reads files and the registry directly), WinRM for what
/// SMB cannot give.
pub const DEFAULT_TRANSPORTS: [TransportKind; 2] = [TransportKind::Smb, TransportKind::Winrm];

fn parse_transports(path: &Path, line: usize, names: &[String]) -> Result<Vec<TransportKind>, InventoryError> {
    let mut out = Vec::new();
    for n in names {
        let t = match n.trim().to_ascii_lowercase().as_str() {
            "smb" => TransportKind::Smb,
            "winrm" => TransportKind::Winrm,
            "winrm-https" => TransportKind::WinrmHttps,
            other => {
                return Err(invalid(
                    path,
                    line,
                    format!("unknown transport {other:?} (smb, winrm, winrm-https)"),
                ))
            }
        };
        if out.contains(&t) {
            return Err(invalid(path, line, format!("transport {n:?} listed twice")));
        }
        out.push(t);
    }
    if out.is_empty() {
        return Err(invalid(path, line, "no transport (smb, winrm, winrm-https)"));
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read inventory {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}: host {name:?} is listed twice (first at line {first_line})")]
    Duplicate {
        path: PathBuf,
        line: usize,
        first_line: usize,
        name: String,
    },
    #[error("{path}: no hosts")]
    Empty { path: PathBuf },
    #[error("{path}: unknown inventory format (expected a .csv or .toml file)")]
    UnknownFormat { path: PathBuf },
}

/// Reads an inventory file, by extension.
pub fn load(path: &Path) -> Result<Vec<Host>, InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Io {
        path: path.to_owned(),
        source,
    })?;
    let hosts = match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("csv") => parse_csv(path, &text)?,
        Some(e) if e.eq_ignore_ascii_case("toml") => parse_toml(path, &text)?,
        _ => return Err(InventoryError::UnknownFormat { path: path.to_owned() }),
    };
    if hosts.is_empty() {
        return Err(InventoryError::Empty { path: path.to_owned() });
    }
    check_duplicates(path, &hosts)?;
    Ok(hosts)
}

/// The csv crate's message carries its own line count (of the comment-free text we gave it);
/// describe the error without it, since ours names the file's real line.
fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".into(),
        _ => "malformed CSV".into(),
    }
}

fn invalid(path: &Path, line: usize, message: impl Into<String>) -> InventoryError {
    InventoryError::Invalid {
        path: path.to_owned(),
        line,
        message: message.into(),
    }
}

/// CSV with a header row naming at least `name` and `address`; `roles` (`;`-separated) and
/// `credential` are optional columns. Lines starting with `#` are comments.
pub fn parse_csv(path: &Path, text: &str) -> Result<Vec<Host>, InventoryError> {
    // Comment and blank lines are dropped here, keeping each remaining line's number: the
    // csv crate does not count the lines it skips, and errors must name the file's own lines.
    let mut line_numbers = Vec::new();
    let mut kept = String::with_capacity(text.len());
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        line_numbers.push(i + 1);
        kept.push_str(l);
        kept.push('\n');
    }
    let original_line = |csv_line: u64| {
        line_numbers
            .get((csv_line as usize).saturating_sub(1))
            .copied()
            .unwrap_or(csv_line as usize)
    };
    let csv_line = |e: &csv::Error| e.position().map_or(1, |p| original_line(p.line()));
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(kept.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| invalid(path, csv_line(&e), csv_message(&e)))?
        .clone();
    let header_line = line_numbers.first().copied().unwrap_or(1);
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let known = ["name", "address", "roles", "credential", "transports"];
    if let Some(unknown) = headers
        .iter()
        .find(|h| !known.iter().any(|k| h.eq_ignore_ascii_case(k)))
    {
        return Err(invalid(
            path,
            header_line,
            format!("unknown column {unknown:?} (expected {})", known.join(",")),
        ));
    }
    let (Some(name_col), Some(addr_col)) = (column("name"), column("address")) else {
        return Err(invalid(
            path,
            header_line,
            "header must name the columns name,address[,roles][,credential]",
        ));
    };
    let roles_col = column("roles");
    let cred_col = column("credential");
    let transports_col = column("transports");

    let mut hosts = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| invalid(path, csv_line(&e), csv_message(&e)))?;
        let line = record.position().map_or(0, |p| original_line(p.line()));
        let field = |col: Option<usize>| col.and_then(|c| record.get(c)).unwrap_or("");
        let roles = field(roles_col)
            .split(';')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        let credential = Some(field(cred_col)).filter(|c| !c.is_empty()).map(str::to_owned);
        let mut host = build_host(
            path,
            line,
            field(Some(name_col)),
            field(Some(addr_col)),
            roles,
            credential,
        )?;
        let transports: Vec<String> = field(transports_col)
            .split(';')
            .filter(|t| !t.trim().is_empty())
            .map(str::to_owned)
            .collect();
        if !transports.is_empty() {
            host.transports = parse_transports(path, line, &transports)?;
        }
        hosts.push(host);
    }
    Ok(hosts)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlInventory {
    #[serde(default)]
    defaults: TomlDefaults,
    #[serde(default)]
    host: Vec<toml::Spanned<TomlHost>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TomlDefaults {
    #[serde(default)]
    roles: Vec<String>,
    credential: Option<String>,
    transports: Option<Vec<String>>,
    winrm_port: Option<u16>,
    winrm_https_port: Option<u16>,
    http_port: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlHost {
    name: String,
    address: String,
    roles: Option<Vec<String>>,
    credential: Option<String>,
    transports: Option<Vec<String>>,
    winrm_port: Option<u16>,
    winrm_https_port: Option<u16>,
    http_port: Option<u16>,
}

pub fn parse_toml(path: &Path, text: &str) -> Result<Vec<Host>, InventoryError> {
    let inv: TomlInventory = toml::from_str(text).map_err(|e| {
        invalid(
            path,
            e.span().map_or(1, |s| line_of(text, s.start)),
            e.message().to_owned(),
        )
    })?;
    inv.host
        .into_iter()
        .map(|spanned| {
            let line = line_of(text, spanned.span().start);
            let h = spanned.into_inner();
            let mut host = build_host(
                path,
                line,
                &h.name,
                &h.address,
                h.roles.unwrap_or_else(|| inv.defaults.roles.clone()),
                h.credential.or_else(|| inv.defaults.credential.clone()),
            )?;
            if let Some(t) = h.transports.or_else(|| inv.defaults.transports.clone()) {
                host.transports = parse_transports(path, line, &t)?;
            }
            match h.winrm_port.or(inv.defaults.winrm_port) {
                Some(0) => return Err(invalid(path, line, "winrm_port 0")),
                Some(p) => host.winrm_port = p,
                None => {}
            }
            match h.winrm_https_port.or(inv.defaults.winrm_https_port) {
                Some(0) => return Err(invalid(path, line, "winrm_https_port 0")),
                Some(p) => host.winrm_https_port = p,
                None => {}
            }
            match h.http_port.or(inv.defaults.http_port) {
                Some(0) => return Err(invalid(path, line, "http_port 0")),
                Some(p) => host.http_port = p,
                None => {}
            }
            Ok(host)
        })
        .collect()
}

fn build_host(
    path: &Path,
    line: usize,
    name: &str,
    address: &str,
    roles: Vec<String>,
    credential: Option<String>,
) -> Result<Host, InventoryError> {
    if name.is_empty() {
        return Err(invalid(path, line, "empty host name"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(invalid(
            path,
            line,
            format!("host name {name:?} has the character {bad:?} (letters, digits, '-', '_', '.' only)"),
        ));
    }
    let (address, smb_port) = split_address(address).map_err(|m| invalid(path, line, format!("{m} in {address:?}")))?;
    if let Some(role) = roles.iter().find(|r| {
        !r.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    }) {
        return Err(invalid(path, line, format!("invalid role name {role:?}")));
    }
    Ok(Host {
        name: name.to_owned(),
        address,
        smb_port,
        roles,
        credential,
        transports: DEFAULT_TRANSPORTS.to_vec(),
        winrm_port: 5985,
        winrm_https_port: 5986,
        http_port: 80,
        winrm_accept_self_signed: false,
        origin: Origin {
            file: path.to_owned(),
            line,
        },
    })
}

/// `host`, `host:port`, `1.2.3.4`, `[::1]:445` → (host, port).
fn split_address(raw: &str) -> Result<(String, u16), String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("empty address".into());
    }
    let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or("unclosed '['")?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err("unexpected text after ']'".into()),
        }
    } else if raw.matches(':').count() == 1 {
        let (h, p) = raw.split_once(':').unwrap_or((raw, ""));
        (h, Some(p))
    } else {
        (raw, None)
    };
    if raw.matches(':').count() > 1 && !raw.starts_with('[') && host.parse::<std::net::Ipv6Addr>().is_err() {
        return Err("invalid IPv6 address".into());
    }
    let valid_host = host.parse::<std::net::IpAddr>().is_ok()
        || (!host.is_empty()
            && host.len() <= 253
            && host
                .split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')));
    if !valid_host {
        return Err("invalid host name or address".into());
    }
    let port = match port {
        None => 445,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("invalid port {p:?}"))?,
    };
    Ok((host.to_owned(), port))
}

/// A host listed twice, by name or by address and port, is an error naming both lines.
fn check_duplicates(path: &Path, hosts: &[Host]) -> Result<(), InventoryError> {
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut by_addr: HashMap<(String, u16), usize> = HashMap::new();
    for h in hosts {
        let dup = |first_line: usize| InventoryError::Duplicate {
            path: path.to_owned(),
            line: h.origin.line,
            first_line,
            name: h.name.clone(),
        };
        if let Some(&first) = by_name.get(&h.name.to_ascii_lowercase()) {
            return Err(dup(first));
        }
        if let Some(&first) = by_addr.get(&(h.address.to_ascii_lowercase(), h.smb_port)) {
            return Err(dup(first));
        }
        by_name.insert(h.name.to_ascii_lowercase(), h.origin.line);
        by_addr.insert((h.address.to_ascii_lowercase(), h.smb_port), h.origin.line);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> Result<Vec<Host>, InventoryError> {
        let hosts = parse_csv(Path::new("inv.csv"), text)?;
        check_duplicates(Path::new("inv.csv"), &hosts)?;
        Ok(hosts)
    }

    #[test]
    fn csv_rows_become_hosts() {
        let hosts = csv("# fleet\nname,address,roles,credential\n# a comment\n\nex1,127.0.0.11,exchange2000-backend;windows2000-member,\nex2,ex2.corp.example:1445,,svc\n").unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].roles, ["exchange2000-backend", "windows2000-member"]);
        assert_eq!(hosts[0].credential, None);
        assert_eq!(hosts[0].origin.line, 5);
        assert_eq!(
            (hosts[1].address.as_str(), hosts[1].smb_port),
            ("ex2.corp.example", 1445)
        );
        assert_eq!(hosts[1].credential.as_deref(), Some("svc"));
    }

    #[test]
    fn malformed_csv_line_names_file_and_line() {
        let err = csv("name,address,roles,credential\nex1,127.0.0.1,,\nex2,not an address!,,\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "inv.csv:3: invalid host name or address in \"not an address!\""
        );
        let err = csv("# comment\nname,address,roles,credential\nex1,127.0.0.1,,\nex2,127.0.0.2\n").unwrap_err();
        assert_eq!(err.to_string(), "inv.csv:4: 2 fields where the header has 4");
        let err = csv("host,ip\n").unwrap_err();
        assert!(err.to_string().starts_with("inv.csv:1: unknown column"), "{err}");
    }

    #[test]
    fn host_listed_twice_names_both_lines() {
        let err = csv("name,address\na,127.0.0.1\nb,127.0.0.2\nA,127.0.0.3\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "inv.csv:4: host \"A\" is listed twice (first at line 2)"
        );
        let err = csv("name,address\na,127.0.0.1\nb,127.0.0.1\n").unwrap_err();
        assert!(err.to_string().contains("(first at line 2)"), "{err}");
    }

    #[test]
    fn toml_hosts_take_defaults_and_errors_name_the_line() {
        let text = "[defaults]\nroles = ['windows2000-member']\ncredential = 'svc'\n\n[[host]]\nname = 'a'\naddress = '127.0.0.1'\n\n[[host]]\nname = 'b'\naddress = '[::1]:4450'\nroles = ['exchange2019-mailbox']\n";
        let hosts = parse_toml(Path::new("inv.toml"), text).unwrap();
        assert_eq!(hosts[0].roles, ["windows2000-member"]);
        assert_eq!(hosts[0].credential.as_deref(), Some("svc"));
        assert_eq!(hosts[0].origin.line, 5);
        assert_eq!((hosts[1].address.as_str(), hosts[1].smb_port), ("::1", 4450));
        assert_eq!(hosts[1].origin.line, 9);

        let err = parse_toml(
            Path::new("inv.toml"),
            "[[host]]\nname = 'a'\naddress = '127.0.0.1'\nrole = 'x'\n",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("inv.toml:4:"), "{err}");
    }

    #[test]
    fn addresses_parse() {
        assert_eq!(split_address("127.0.0.9").unwrap(), ("127.0.0.9".into(), 445));
        assert_eq!(split_address("::1").unwrap(), ("::1".into(), 445));
        assert!(split_address("host:0").is_err());
        assert!(split_address("a..b").is_err());
        assert!(split_address("[::1").is_err());
    }

    #[test]
    fn transports_default_to_smb_then_winrm_and_can_be_chosen() {
        let csv = "name,address,transports\nh1,127.0.0.1,\nh2,127.0.0.2,winrm;smb\n";
        let hosts = parse_csv(Path::new("i.csv"), csv).unwrap();
        assert_eq!(hosts[0].transports, DEFAULT_TRANSPORTS);
        assert_eq!(hosts[1].transports, [TransportKind::Winrm, TransportKind::Smb]);
        let toml_text =
            "[defaults]\ntransports = ['winrm']\nwinrm_port = 55985\n[[host]]\nname = 'a'\naddress = '127.0.0.1'\n";
        let hosts = parse_toml(Path::new("i.toml"), toml_text).unwrap();
        assert_eq!(
            (hosts[0].transports.as_slice(), hosts[0].winrm_port),
            (&[TransportKind::Winrm][..], 55985)
        );
        let err = parse_csv(Path::new("i.csv"), "name,address,transports\nh,127.0.0.1,ftp\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "i.csv:2: unknown transport \"ftp\" (smb, winrm, winrm-https)"
        );
    }

    #[test]
    fn http_port_defaults_to_80_and_a_host_overrides_the_defaults() {
        let text = "[defaults]\nhttp_port = 8080\n[[host]]\nname = 'a'\naddress = '127.0.0.1'\n\
                    [[host]]\nname = 'b'\naddress = '127.0.0.2'\nhttp_port = 8081\n";
        let hosts = parse_toml(Path::new("i.toml"), text).unwrap();
        assert_eq!((hosts[0].http_port, hosts[1].http_port), (8080, 8081));
        let csv = parse_csv(Path::new("i.csv"), "name,address\nh,127.0.0.1\n").unwrap();
        assert_eq!(csv[0].http_port, 80);
        let zero = parse_toml(
            Path::new("i.toml"),
            "[[host]]\nname = 'a'\naddress = '127.0.0.1'\nhttp_port = 0\n",
        );
        assert_eq!(zero.unwrap_err().to_string(), "i.toml:1: http_port 0");
    }
}
