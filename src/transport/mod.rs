//! Sessions to one host. Each transport owns its protocol session and answers typed reads;
//! it never decides what to read.

pub mod http;
pub mod probe;
pub mod smb;
pub mod winrm;

use std::time::Duration;

use crate::facts::FailureKind;

/// Why a transport could not connect or answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: smb2::Error },
    #[error("logon as {account} refused: {detail}")]
    Logon { account: String, detail: String },
    #[error("access denied: {what}")]
    AccessDenied { what: String },
    #[error("{op} failed: {source}")]
    Smb { op: &'static str, source: smb2::Error },
    /// The server refused one request with a status (the session itself is fine).
    #[error("{op} refused: {status}")]
    Status { op: &'static str, status: String },
    #[error("malformed {what} from the server: {source}")]
    Decode {
        what: &'static str,
        source: exsweep_wire::DecodeError,
    },
    #[error("{interface} bind rejected: {detail}")]
    Bind { interface: &'static str, detail: String },
    #[error("rpc fault 0x{status:08x} on opnum {opnum}")]
    Fault { opnum: u16, status: u32 },
    #[error("{call} returned {status}")]
    Win32 {
        call: &'static str,
        status: exsweep_wire::winreg::Win32Status,
    },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("unsupported registry path {0:?}: only HKLM is read")]
    UnsupportedHive(String),
    #[error("{op} {addr}: {source}")]
    Io {
        op: &'static str,
        addr: String,
        source: std::io::Error,
    },
    /// A WinRM failure that is not a socket or decode error: a fault, a refused logon after
    /// the handshake, an unexpected answer.
    #[error("winrm: {detail}")]
    Winrm { kind: FailureKind, detail: String },
    /// A service that failed to open earlier in the session; not tried again.
    #[error("{reason}")]
    Earlier { kind: FailureKind, reason: String },
    #[error("the host has no share {0}")]
    NoShare(String),
    #[error("{0:?} is not a drive path (X:\\...)")]
    NotADrivePath(String),
    #[error("malformed PE file {path}: {source}")]
    Pe {
        path: String,
        source: exsweep_wire::DecodeError,
    },
}

/// `host:port`, with brackets around an IPv6 address.
pub fn socket_addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A socket error of `op` on `addr`, for `map_err`.
pub(crate) fn io_error<'a>(op: &'static str, addr: &'a str) -> impl FnOnce(std::io::Error) -> TransportError + 'a {
    move |source| TransportError::Io {
        op,
        addr: addr.to_owned(),
        source,
    }
}

impl TransportError {
    /// The coarse cause, for reports and for the lockout breaker.
    pub fn kind(&self) -> FailureKind {
        use smb2::ErrorKind as K;
        match self {
            TransportError::Connect { source, .. } | TransportError::Smb { source, .. } => match source.kind() {
                K::TimedOut => FailureKind::Timeout,
                K::AccessDenied => FailureKind::AccessDenied,
                K::AuthRequired => FailureKind::AuthFailed,
                K::ConnectionLost => FailureKind::Unreachable,
                _ if matches!(self, TransportError::Connect { .. }) => FailureKind::Unreachable,
                _ => FailureKind::Protocol,
            },
            TransportError::Logon { .. } => FailureKind::AuthFailed,
            TransportError::AccessDenied { .. } => FailureKind::AccessDenied,
            TransportError::Fault { status: 5, .. } => FailureKind::AccessDenied,
            TransportError::Win32 { status, .. } if *status == exsweep_wire::winreg::Win32Status::ACCESS_DENIED => {
                FailureKind::AccessDenied
            }
            TransportError::Timeout(_) => FailureKind::Timeout,
            TransportError::Earlier { kind, .. } | TransportError::Winrm { kind, .. } => *kind,
            TransportError::Io { source, .. } if source.kind() == std::io::ErrorKind::TimedOut => FailureKind::Timeout,
            TransportError::Io { .. } => FailureKind::Unreachable,
            TransportError::Decode { .. }
            | TransportError::Bind { .. }
            | TransportError::Fault { .. }
            | TransportError::Win32 { .. }
            | TransportError::UnsupportedHive(_)
            | TransportError::Status { .. }
            | TransportError::NoShare(_)
            | TransportError::NotADrivePath(_)
            | TransportError::Pe { .. } => FailureKind::Protocol,
        }
    }
}
