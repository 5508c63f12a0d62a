//! Unauthenticated SMB probes on their own connections: whether a host still accepts SMB1,
//! and what its NTLM CHALLENGE says about it (names, domain, OS version). Neither sends a
//! credential, so neither can count toward an account lockout.

use std::time::Duration;

use exsweep_wire::ntlm::{self, Challenge};
use exsweep_wire::smbprobe::{self, Smb1Answer, Smb2Negotiated};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{io_error, TransportError};

/// What the SMB1 probe learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Smb1Probe {
    Accepted {
        signing_required: bool,
    },
    /// Refused, with how: an error status, no dialect chosen, an SMB2 answer, or the
    /// connection closed (what Samba and Windows do when SMB1 is off).
    Refused(String),
}

/// What the NTLM probe learned.
#[derive(Debug, Clone)]
pub struct NtlmProbe {
    pub negotiated: Smb2Negotiated,
    pub challenge: Challenge,
}

async fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, TransportError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(stream) => stream.map_err(io_error("connect", addr)),
        Err(_) => Err(TransportError::Timeout(timeout)),
    }
}

/// Sends one framed message and reads the answer; `Ok(None)` when the server closes the
/// connection instead of answering.
async fn exchange(
    stream: &mut TcpStream,
    addr: &str,
    message: &[u8],
    timeout: Duration,
) -> Result<Option<Vec<u8>>, TransportError> {
    let round_trip = async {
        stream.write_all(message).await.map_err(io_error("send", addr))?;
        let mut header = [0u8; 4];
        match stream.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(io_error("receive", addr)(e)),
        }
        let len = smbprobe::frame_len(header).map_err(|source| TransportError::Decode {
            what: "SMB transport header",
            source,
        })?;
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await.map_err(io_error("receive", addr))?;
        Ok(Some(body))
    };
    tokio::time::timeout(timeout, round_trip)
        .await
        .unwrap_or(Err(TransportError::Timeout(timeout)))
}

/// Offers only `NT LM 0.12` on a fresh connection.
pub async fn probe_smb1(addr: &str, timeout: Duration) -> Result<Smb1Probe, TransportError> {
    let mut stream = connect(addr, timeout).await?;
    let Some(answer) = exchange(&mut stream, addr, &smbprobe::encode_smb1_negotiate(), timeout).await? else {
        return Ok(Smb1Probe::Refused("connection closed after an SMB1 NEGOTIATE".into()));
    };
    let decoded = smbprobe::decode_smb1_negotiate_response(&answer).map_err(|source| TransportError::Decode {
        what: "SMB1 NEGOTIATE response",
        source,
    })?;
    Ok(match decoded {
        Smb1Answer::Accepted { security_mode, .. } => Smb1Probe::Accepted {
            // [MS-CIFS] 2.2.4.52.2: NEGOTIATE_SECURITY_SIGNATURES_REQUIRED.
            signing_required: security_mode & 0x08 != 0,
        },
        Smb1Answer::Refused {
            status,
            dialect_index: None,
        } => Smb1Probe::Refused(format!("SMB1 NEGOTIATE answered with status {status:#010x}")),
        Smb1Answer::Refused {
            dialect_index: Some(i), ..
        } => Smb1Probe::Refused(format!("no SMB1 dialect chosen (index {i:#06x})")),
        Smb1Answer::Smb2 { dialect } => Smb1Probe::Refused(format!(
            "answered in SMB2 (dialect {})",
            smbprobe::dialect_name(dialect)
        )),
    })
}

/// SMB2 NEGOTIATE, then a SESSION_SETUP with an NTLM NEGOTIATE in SPNEGO; the connection is
/// dropped after the CHALLENGE, so no logon is ever attempted.
pub async fn probe_ntlm(addr: &str, timeout: Duration) -> Result<NtlmProbe, TransportError> {
    let mut stream = connect(addr, timeout).await?;
    let closed = || TransportError::Io {
        op: "receive",
        addr: addr.to_owned(),
        source: std::io::ErrorKind::UnexpectedEof.into(),
    };
    // A fixed client GUID: it identifies nothing and keeps the probe's bytes reproducible.
    let negotiate = smbprobe::encode_smb2_negotiate(*b"exsweep-probe-01");
    let answer = exchange(&mut stream, addr, &negotiate, timeout)
        .await?
        .ok_or_else(closed)?;
    let negotiated = smbprobe::decode_smb2_negotiate_response(&answer).map_err(|source| TransportError::Decode {
        what: "SMB2 NEGOTIATE response",
        source,
    })?;
    let token = smbprobe::spnego_init(&ntlm::encode_negotiate());
    let answer = exchange(&mut stream, addr, &smbprobe::encode_smb2_session_setup(&token), timeout)
        .await?
        .ok_or_else(closed)?;
    let decode = |what| move |source| TransportError::Decode { what, source };
    let (status, blob) =
        smbprobe::decode_smb2_session_setup_response(&answer).map_err(decode("SMB2 SESSION_SETUP response"))?;
    if status != smbprobe::STATUS_MORE_PROCESSING_REQUIRED {
        return Err(TransportError::Decode {
            what: "SMB2 SESSION_SETUP response",
            source: exsweep_wire::DecodeError::Invalid {
                what: "SESSION_SETUP status",
                detail: format!("{status:#010x} where a CHALLENGE was expected"),
            },
        });
    }
    let message = ntlm::find_challenge(blob).ok_or_else(|| TransportError::Decode {
        what: "SMB2 SESSION_SETUP response",
        source: exsweep_wire::DecodeError::Invalid {
            what: "security buffer",
            detail: "no NTLMSSP CHALLENGE in it".into(),
        },
    })?;
    let challenge = ntlm::decode_challenge(message).map_err(decode("NTLM CHALLENGE"))?;
    Ok(NtlmProbe { negotiated, challenge })
}
