//! Logon credentials: named entries from a private TOML file, and a `default` entry from the
//! environment. Never from the command line, never printed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroize;

use crate::secret::Secret;

/// The entry a host uses when the inventory names none.
pub const DEFAULT_ENTRY: &str = "default";

/// One account: `DOMAIN\user` and its password.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    #[serde(default)]
    pub domain: String,
    pub user: String,
    pub password: Secret,
}

impl Credential {
    /// `DOMAIN\user`, for logs and reports: the account, never the password.
    pub fn account(&self) -> String {
        if self.domain.is_empty() {
            self.user.clone()
        } else {
            format!("{}\\{}", self.domain, self.user)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read credentials file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("credentials file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("set both EXSWEEP_USER and EXSWEEP_PASSWORD, or neither")]
    IncompleteEnvironment,
}

/// All named credentials of a run.
#[derive(Debug, Default)]
pub struct Credentials {
    entries: BTreeMap<String, Credential>,
}

impl Credentials {
    /// Reads `path` (refusing a file that group or others can read), then lets the
    /// environment's `EXSWEEP_USER`/`EXSWEEP_PASSWORD`/`EXSWEEP_DOMAIN` replace `default`.
    pub fn load(path: Option<&Path>) -> Result<Self, CredentialsError> {
        let mut creds = match path {
            Some(p) => Self::from_file(p)?,
            None => Credentials::default(),
        };
        if let Some(c) = Self::from_env(|k| std::env::var(k).ok())? {
            creds.entries.insert(DEFAULT_ENTRY.to_owned(), c);
        }
        Ok(creds)
    }

    pub fn from_file(path: &Path) -> Result<Self, CredentialsError> {
        let io = |source| CredentialsError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        check_private(path, &meta)?;
        let mut text = std::fs::read_to_string(path).map_err(io)?;
        let parsed = Self::parse(path, &text);
        text.zeroize();
        parsed
    }

    fn parse(path: &Path, text: &str) -> Result<Self, CredentialsError> {
        let entries: BTreeMap<String, Credential> = toml::from_str(text).map_err(|e| CredentialsError::Syntax {
            path: path.to_owned(),
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            message: safe_message(e.message()),
        })?;
        Ok(Credentials { entries })
    }

    /// The `default` entry from the environment, if `EXSWEEP_USER` is set.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Credential>, CredentialsError> {
        let user = get("EXSWEEP_USER").filter(|u| !u.is_empty());
        let password = get("EXSWEEP_PASSWORD");
        match (user, password) {
            (Some(user), Some(password)) => Ok(Some(Credential {
                domain: get("EXSWEEP_DOMAIN").unwrap_or_default(),
                user,
                password: Secret::new(password),
            })),
            (None, None) => Ok(None),
            _ => Err(CredentialsError::IncompleteEnvironment),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Credential> {
        self.entries.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn insert(&mut self, name: &str, credential: Credential) {
        self.entries.insert(name.to_owned(), credential);
    }
}

#[cfg(unix)]
fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<(), CredentialsError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CredentialsError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path, _: &std::fs::Metadata) -> Result<(), CredentialsError> {
    Ok(())
}

/// A TOML error message that cannot carry a password: messages about field names are kept,
/// anything that may quote a value ("invalid type: integer `123456`") is replaced.
fn safe_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or("");
    if ["unknown field", "missing field", "duplicate key"]
        .iter()
        .any(|p| first.starts_with(p))
    {
        first.to_owned()
    } else {
        "invalid entry (expected [name] tables of domain, user and password strings)".to_owned()
    }
}

/// 1-based line number of byte offset `at` in `text`.
pub fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let p = dir.join("creds.toml");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn group_readable_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "[default]\nuser='a'\npassword='b'\n", 0o640);
        let err = Credentials::from_file(&p).unwrap_err();
        assert!(matches!(err, CredentialsError::TooOpen { mode: 0o640, .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"));
    }

    #[test]
    fn entries_load_and_errors_name_the_line_without_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "[default]\ndomain='LAB'\nuser='scan'\npassword='pw1'\n\n[other]\nuser='x'\npassword='topsecret'\ncolour='red'\n",
            0o600,
        );
        let err = Credentials::from_file(&p).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("creds.toml:9:"), "{text}");
        assert!(!text.contains("topsecret"), "{text}");

        let p = write(dir.path(), "[default]\nuser='scan'\npassword=123456\n", 0o600);
        let text = Credentials::from_file(&p).unwrap_err().to_string();
        assert!(text.contains("creds.toml:3:") && !text.contains("123456"), "{text}");

        let p = write(
            dir.path(),
            "[default]\ndomain='LAB'\nuser='scan'\npassword='pw1'\n",
            0o600,
        );
        let creds = Credentials::from_file(&p).unwrap();
        let c = creds.get("default").unwrap();
        assert_eq!(c.account(), "LAB\\scan");
        assert_eq!(c.password.expose(), "pw1");
        assert!(!format!("{c:?}").contains("pw1"));
    }

    #[test]
    fn environment_gives_the_default_entry() {
        let env = |k: &str| match k {
            "EXSWEEP_USER" => Some("svc".to_string()),
            "EXSWEEP_PASSWORD" => Some("pw".to_string()),
            "EXSWEEP_DOMAIN" => Some("CORP".to_string()),
            _ => None,
        };
        let c = Credentials::from_env(env).unwrap().unwrap();
        assert_eq!(c.account(), "CORP\\svc");
        let only_password = |k: &str| (k == "EXSWEEP_PASSWORD").then(|| "pw".to_string());
        assert!(matches!(
            Credentials::from_env(only_password),
            Err(CredentialsError::IncompleteEnvironment)
        ));
        assert!(Credentials::from_env(|_| None).unwrap().is_none());
        let only_user = |k: &str| (k == "EXSWEEP_USER").then(|| "svc".to_string());
        assert!(
            Credentials::from_env(only_user).is_err(),
            "an empty password would only burn lockout attempts"
        );
    }
}
