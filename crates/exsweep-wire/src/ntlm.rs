//! [MS-NLMP] NTLM messages, as far as exsweep reads them without authenticating: the
//! NEGOTIATE message that asks a server to introduce itself, and the CHALLENGE message in
//! which it does (its names, domain and OS version, in the target information).

use crate::le::{le16, le32};
use crate::ndr::utf16le_to_string;
use crate::DecodeError;

pub const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// [MS-NLMP] 2.2.2.5 NEGOTIATE flags used here.
pub const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
pub const NEGOTIATE_OEM: u32 = 0x0000_0002;
pub const REQUEST_TARGET: u32 = 0x0000_0004;
pub const NEGOTIATE_NTLM: u32 = 0x0000_0200;
pub const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
pub const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
pub const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
pub const NEGOTIATE_VERSION: u32 = 0x0200_0000;
pub const NEGOTIATE_128: u32 = 0x2000_0000;
pub const NEGOTIATE_56: u32 = 0x8000_0000;

/// Largest CHALLENGE message accepted; real ones are a few hundred bytes.
const MAX_CHALLENGE: usize = 64 * 1024;
/// AV pairs beyond this are not a real server's.
const MAX_AV_PAIRS: usize = 64;

/// [MS-NLMP] 2.2.1.1 NEGOTIATE_MESSAGE with no domain or workstation supplied: a server
/// answers it with a CHALLENGE carrying its target information.
pub fn encode_negotiate() -> Vec<u8> {
    encode_negotiate_with(PROBE_FLAGS)
}

/// What the probe asks for: target information, no session security.
pub const PROBE_FLAGS: u32 = NEGOTIATE_UNICODE
    | NEGOTIATE_OEM
    | REQUEST_TARGET
    | NEGOTIATE_NTLM
    | NEGOTIATE_ALWAYS_SIGN
    | NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NEGOTIATE_TARGET_INFO
    | NEGOTIATE_VERSION
    | NEGOTIATE_128
    | NEGOTIATE_56;

/// A NEGOTIATE_MESSAGE with these flags, no domain or workstation, a VERSION naming NTLM
/// revision 15.
pub fn encode_negotiate_with(flags: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    // DomainNameFields and WorkstationFields: empty, offset at the end of the fixed part.
    for _ in 0..2 {
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&40u32.to_le_bytes());
    }
    // VERSION: zeros but the NTLM revision (15), which is all a server looks at.
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 15]);
    out
}

/// [MS-NLMP] 2.2.2.10 VERSION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtlmVersion {
    pub major: u8,
    pub minor: u8,
    pub build: u16,
    pub ntlm_revision: u8,
}

impl std::fmt::Display for NtlmVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// The target information of a CHALLENGE ([MS-NLMP] 2.2.2.1 AV_PAIR), by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetInfo {
    pub nb_computer_name: Option<String>,
    pub nb_domain_name: Option<String>,
    pub dns_computer_name: Option<String>,
    pub dns_domain_name: Option<String>,
    pub dns_tree_name: Option<String>,
    /// MsvAvTimestamp: the server's clock, as a FILETIME.
    pub timestamp: Option<u64>,
}

/// What a server says of itself in its CHALLENGE message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub flags: u32,
    pub target_name: String,
    pub server_challenge: [u8; 8],
    pub target_info: TargetInfo,
    pub version: Option<NtlmVersion>,
}

/// The payload a `(Len, MaxLen, BufferOffset)` field at `at` points to.
fn field<'a>(msg: &'a [u8], at: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
    let len = usize::from(le16(msg, at));
    let offset = le32(msg, at + 4) as usize;
    if len == 0 {
        return Ok(&[]);
    }
    msg.get(offset..)
        .and_then(|b| b.get(..len))
        .ok_or(DecodeError::Truncated {
            what,
            offset,
            need: len,
            have: msg.len().saturating_sub(offset),
        })
}

/// The raw target-information bytes (AV pairs) a CHALLENGE message's TargetInfoFields point
/// to; empty when they point outside the message.
pub fn raw_target_info(challenge: &[u8]) -> &[u8] {
    field(challenge, 40, "TargetInfo").unwrap_or(&[])
}

/// Decodes a CHALLENGE_MESSAGE ([MS-NLMP] 2.2.1.2). Bytes after the payloads are ignored:
/// inside SPNEGO the message is followed by the token's own data.
pub fn decode_challenge(msg: &[u8]) -> Result<Challenge, DecodeError> {
    if msg.len() > MAX_CHALLENGE {
        return Err(DecodeError::TooLong {
            what: "CHALLENGE message",
            len: msg.len(),
            limit: MAX_CHALLENGE,
        });
    }
    if msg.len() < 48 {
        return Err(DecodeError::Truncated {
            what: "CHALLENGE message",
            offset: 0,
            need: 48,
            have: msg.len(),
        });
    }
    if &msg[..8] != SIGNATURE || le32(msg, 8) != 2 {
        return Err(DecodeError::invalid(
            "CHALLENGE message",
            "not an NTLMSSP type 2 message",
        ));
    }
    let flags = le32(msg, 20);
    let name = field(msg, 12, "TargetName")?;
    let target_name = if flags & NEGOTIATE_UNICODE != 0 {
        utf16le_to_string(name)
    } else {
        String::from_utf8_lossy(name).into_owned()
    };
    let mut server_challenge = [0u8; 8];
    server_challenge.copy_from_slice(&msg[24..32]);
    let target_info = if flags & NEGOTIATE_TARGET_INFO != 0 {
        decode_target_info(field(msg, 40, "TargetInfo")?)?
    } else {
        TargetInfo::default()
    };
    // VERSION sits at 48 when the flag is set and the first payload does not start earlier;
    // offsets of empty fields, and of TargetInfo without its flag, mean nothing ([MS-NLMP]
    // 2.2.1.2).
    let name_field = (le16(msg, 12) > 0).then(|| le32(msg, 16));
    let info_field = (flags & NEGOTIATE_TARGET_INFO != 0 && le16(msg, 40) > 0).then(|| le32(msg, 44));
    let first_payload = [name_field, info_field]
        .into_iter()
        .flatten()
        .filter(|o| *o >= 48)
        .min()
        .unwrap_or(u32::MAX) as usize;
    let version = (flags & NEGOTIATE_VERSION != 0 && msg.len() >= 56 && first_payload >= 56).then(|| NtlmVersion {
        major: msg[48],
        minor: msg[49],
        build: le16(msg, 50),
        ntlm_revision: msg[55],
    });
    Ok(Challenge {
        flags,
        target_name,
        server_challenge,
        target_info,
        version,
    })
}

/// Decodes AV_PAIRs up to MsvAvEOL. Unknown ids are skipped; a pair running past the end is
/// an error.
pub fn decode_target_info(bytes: &[u8]) -> Result<TargetInfo, DecodeError> {
    let mut info = TargetInfo::default();
    let mut at = 0;
    for _ in 0..MAX_AV_PAIRS {
        if at + 4 > bytes.len() {
            // Some servers omit MsvAvEOL at the very end.
            return Ok(info);
        }
        let id = le16(bytes, at);
        let len = usize::from(le16(bytes, at + 2));
        let value = bytes.get(at + 4..at + 4 + len).ok_or(DecodeError::Truncated {
            what: "AV_PAIR",
            offset: at + 4,
            need: len,
            have: bytes.len().saturating_sub(at + 4),
        })?;
        let text = || Some(utf16le_to_string(value));
        match id {
            0 => return Ok(info),
            1 => info.nb_computer_name = text(),
            2 => info.nb_domain_name = text(),
            3 => info.dns_computer_name = text(),
            4 => info.dns_domain_name = text(),
            5 => info.dns_tree_name = text(),
            7 if len == 8 => {
                info.timestamp = Some(u64::from(le32(value, 0)) | (u64::from(le32(value, 4)) << 32));
            }
            _ => {}
        }
        at += 4 + len;
    }
    Err(DecodeError::TooLong {
        what: "AV_PAIR list",
        len: MAX_AV_PAIRS + 1,
        limit: MAX_AV_PAIRS,
    })
}

/// Finds a CHALLENGE message inside a security blob (raw, or wrapped in a SPNEGO
/// NegTokenResp): the NTLMSSP signature followed by message type 2.
pub fn find_challenge(blob: &[u8]) -> Option<&[u8]> {
    blob.windows(12)
        .position(|w| &w[..8] == SIGNATURE && le32(w, 8) == 2)
        .map(|at| &blob[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiate_message_is_40_bytes_with_version() {
        let m = encode_negotiate();
        assert_eq!(m.len(), 40);
        assert_eq!(&m[..8], SIGNATURE);
        assert_eq!(le32(&m, 8), 1);
        assert_ne!(le32(&m, 12) & NEGOTIATE_TARGET_INFO, 0);
    }

    #[test]
    fn av_pairs_without_eol_and_truncated_ones() {
        let mut pairs = vec![1, 0, 4, 0, b'A', 0, b'B', 0];
        assert_eq!(
            decode_target_info(&pairs).unwrap().nb_computer_name.as_deref(),
            Some("AB")
        );
        pairs[2] = 40;
        assert!(decode_target_info(&pairs).is_err());
    }
}
