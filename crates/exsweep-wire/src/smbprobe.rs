//! SMB negotiation probes, before any logon: the SMB1 NEGOTIATE that tells whether a server
//! still speaks SMB1 ([MS-CIFS] 2.2.4.52, [MS-SMB] 2.2.4.5), and the SMB2 NEGOTIATE plus a
//! first SESSION_SETUP carrying an NTLM NEGOTIATE ([MS-SMB2] 2.2.3, 2.2.5), whose answer holds
//! the server's NTLM CHALLENGE and with it the server's names and OS version. No credential
//! is ever sent, so these probes cannot count toward an account lockout.
//!
//! Messages travel in the direct-TCP framing of [MS-SMB2] 2.1: a zero byte and a 24-bit
//! big-endian length. Encoders return whole frames; decoders take one message without it.

use crate::le::{le16, le32};
use crate::DecodeError;

/// Largest message a probe accepts; negotiate and session-setup answers are small.
pub const MAX_PROBE_MESSAGE: usize = 64 * 1024;
const SMB2_HEADER_LEN: usize = 64;
const SMB1_HEADER_LEN: usize = 32;
/// `STATUS_MORE_PROCESSING_REQUIRED`: the CHALLENGE leg of a logon.
pub const STATUS_MORE_PROCESSING_REQUIRED: u32 = 0xC000_0016;
/// SMB2 dialects offered by the probe; 3.1.1 is left out because it needs negotiate contexts
/// and adds nothing a probe reports.
pub const SMB2_DIALECTS: [u16; 4] = [0x0202, 0x0210, 0x0300, 0x0302];

/// Wraps one SMB message in the direct-TCP transport header.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let len = message.len() as u32;
    let mut out = Vec::with_capacity(4 + message.len());
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(message);
    out
}

/// The length announced by a direct-TCP header, refused when over the probe's bound.
pub fn frame_len(header: [u8; 4]) -> Result<usize, DecodeError> {
    if header[0] != 0 {
        return Err(DecodeError::invalid(
            "transport header",
            format!("type {:#04x}", header[0]),
        ));
    }
    let len = usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
    if len > MAX_PROBE_MESSAGE {
        return Err(DecodeError::TooLong {
            what: "SMB message",
            len,
            limit: MAX_PROBE_MESSAGE,
        });
    }
    Ok(len)
}

fn truncated(what: &'static str, need: usize, have: usize) -> DecodeError {
    DecodeError::Truncated {
        what,
        offset: 0,
        need,
        have,
    }
}

// --- SMB1 ----------------------------------------------------------------------------------

/// An SMB1 NEGOTIATE offering only `NT LM 0.12`: a server that answers it with dialect 0
/// accepts SMB1.
pub fn encode_smb1_negotiate() -> Vec<u8> {
    let mut m = Vec::with_capacity(48);
    m.extend_from_slice(b"\xffSMB");
    m.push(0x72); // SMB_COM_NEGOTIATE
    m.extend_from_slice(&0u32.to_le_bytes()); // Status
    m.push(0x18); // Flags: canonicalized paths, case-insensitive
                  // Flags2: unicode, NT status codes, extended security, long names.
    m.extend_from_slice(&0xC801u16.to_le_bytes());
    m.extend_from_slice(&[0; 12]); // PIDHigh, SecurityFeatures, Reserved
    m.extend_from_slice(&0xFFFFu16.to_le_bytes()); // TID
    m.extend_from_slice(&0xFEFFu16.to_le_bytes()); // PIDLow
    m.extend_from_slice(&0u16.to_le_bytes()); // UID
    m.extend_from_slice(&0u16.to_le_bytes()); // MID
    m.push(0); // WordCount
    let dialects = b"\x02NT LM 0.12\0";
    m.extend_from_slice(&(dialects.len() as u16).to_le_bytes());
    m.extend_from_slice(dialects);
    frame(&m)
}

/// How a server answered the SMB1 NEGOTIATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Smb1Answer {
    /// It chose `NT LM 0.12`: SMB1 is accepted.
    Accepted {
        security_mode: u8,
        capabilities: u32,
        extended_security: bool,
    },
    /// An SMB1 answer that declines: an error status or no dialect chosen (0xFFFF).
    Refused { status: u32, dialect_index: Option<u16> },
    /// It answered in SMB2 (only a server that offers nothing else does that to us).
    Smb2 { dialect: u16 },
}

pub fn decode_smb1_negotiate_response(msg: &[u8]) -> Result<Smb1Answer, DecodeError> {
    if msg.len() >= 4 && &msg[..4] == b"\xfeSMB" {
        let dialect = le16(msg, SMB2_HEADER_LEN + 4);
        if msg.len() < SMB2_HEADER_LEN + 6 {
            return Err(truncated("SMB2 NEGOTIATE response", SMB2_HEADER_LEN + 6, msg.len()));
        }
        return Ok(Smb1Answer::Smb2 { dialect });
    }
    if msg.len() < SMB1_HEADER_LEN + 1 {
        return Err(truncated("SMB1 NEGOTIATE response", SMB1_HEADER_LEN + 1, msg.len()));
    }
    if &msg[..4] != b"\xffSMB" || msg[4] != 0x72 {
        return Err(DecodeError::invalid(
            "SMB1 NEGOTIATE response",
            "not an SMB1 NEGOTIATE answer",
        ));
    }
    let status = le32(msg, 5);
    let word_count = usize::from(msg[SMB1_HEADER_LEN]);
    let words = &msg[SMB1_HEADER_LEN + 1..];
    if status != 0 {
        return Ok(Smb1Answer::Refused {
            status,
            dialect_index: None,
        });
    }
    if word_count == 0 || words.len() < 2 {
        return Err(truncated("SMB1 NEGOTIATE response parameters", 2, words.len()));
    }
    let dialect_index = le16(words, 0);
    if dialect_index != 0 {
        return Ok(Smb1Answer::Refused {
            status,
            dialect_index: Some(dialect_index),
        });
    }
    // NT LM 0.12 answers carry 17 words ([MS-CIFS] 2.2.4.52.2).
    if word_count < 17 || words.len() < 34 {
        return Err(truncated("SMB1 NEGOTIATE response parameters", 34, words.len()));
    }
    let capabilities = le32(words, 19);
    Ok(Smb1Answer::Accepted {
        security_mode: words[2],
        capabilities,
        extended_security: capabilities & 0x8000_0000 != 0,
    })
}

// --- SMB2 ----------------------------------------------------------------------------------

fn smb2_header(command: u16, message_id: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(SMB2_HEADER_LEN);
    h.extend_from_slice(b"\xfeSMB");
    h.extend_from_slice(&64u16.to_le_bytes()); // StructureSize
    h.extend_from_slice(&0u16.to_le_bytes()); // CreditCharge
    h.extend_from_slice(&0u32.to_le_bytes()); // Status
    h.extend_from_slice(&command.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // CreditRequest
    h.extend_from_slice(&0u32.to_le_bytes()); // Flags
    h.extend_from_slice(&0u32.to_le_bytes()); // NextCommand
    h.extend_from_slice(&message_id.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // Reserved (ProcessId)
    h.extend_from_slice(&0u32.to_le_bytes()); // TreeId
    h.extend_from_slice(&0u64.to_le_bytes()); // SessionId
    h.extend_from_slice(&[0; 16]); // Signature
    h
}

/// SMB2 NEGOTIATE offering [`SMB2_DIALECTS`], signing enabled (not required).
pub fn encode_smb2_negotiate(client_guid: [u8; 16]) -> Vec<u8> {
    let mut m = smb2_header(0, 0);
    m.extend_from_slice(&36u16.to_le_bytes());
    m.extend_from_slice(&(SMB2_DIALECTS.len() as u16).to_le_bytes());
    m.extend_from_slice(&1u16.to_le_bytes()); // SecurityMode: signing enabled
    m.extend_from_slice(&0u16.to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes()); // Capabilities
    m.extend_from_slice(&client_guid);
    m.extend_from_slice(&0u64.to_le_bytes()); // ClientStartTime
    for d in SMB2_DIALECTS {
        m.extend_from_slice(&d.to_le_bytes());
    }
    frame(&m)
}

/// The fields of an SMB2 NEGOTIATE response a scan reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smb2Negotiated {
    pub dialect: u16,
    pub signing_required: bool,
    pub server_guid: [u8; 16],
    pub capabilities: u32,
}

/// `0x0302` → `"3.0.2"`, `0x02FF` → `"2.???"` (the wildcard of a multi-protocol negotiate).
pub fn dialect_name(dialect: u16) -> String {
    match dialect {
        0x0202 => "2.0.2".into(),
        0x0210 => "2.1".into(),
        0x0300 => "3.0".into(),
        0x0302 => "3.0.2".into(),
        0x0311 => "3.1.1".into(),
        0x02FF => "2.???".into(),
        other => format!("{other:#06x}"),
    }
}

fn smb2_checked<'a>(msg: &'a [u8], command: u16, what: &'static str) -> Result<(u32, &'a [u8]), DecodeError> {
    if msg.len() < SMB2_HEADER_LEN {
        return Err(truncated(what, SMB2_HEADER_LEN, msg.len()));
    }
    if &msg[..4] != b"\xfeSMB" || le16(msg, 12) != command || le32(msg, 16) & 1 == 0 {
        return Err(DecodeError::invalid(what, "not the SMB2 response expected"));
    }
    Ok((le32(msg, 8), &msg[SMB2_HEADER_LEN..]))
}

pub fn decode_smb2_negotiate_response(msg: &[u8]) -> Result<Smb2Negotiated, DecodeError> {
    let what = "SMB2 NEGOTIATE response";
    let (status, body) = smb2_checked(msg, 0, what)?;
    if status != 0 {
        return Err(DecodeError::invalid(what, format!("status {status:#010x}")));
    }
    if body.len() < 64 {
        return Err(truncated(what, SMB2_HEADER_LEN + 64, msg.len()));
    }
    let mut server_guid = [0u8; 16];
    server_guid.copy_from_slice(&body[8..24]);
    Ok(Smb2Negotiated {
        dialect: le16(body, 4),
        signing_required: le16(body, 2) & 0x0002 != 0,
        server_guid,
        capabilities: le32(body, 24),
    })
}

/// SMB2 SESSION_SETUP carrying `token` (an NTLM NEGOTIATE, raw or in SPNEGO).
pub fn encode_smb2_session_setup(token: &[u8]) -> Vec<u8> {
    let mut m = smb2_header(1, 1);
    m.extend_from_slice(&25u16.to_le_bytes());
    m.push(0); // Flags
    m.push(1); // SecurityMode: signing enabled
    m.extend_from_slice(&0u32.to_le_bytes()); // Capabilities
    m.extend_from_slice(&0u32.to_le_bytes()); // Channel
    m.extend_from_slice(&((SMB2_HEADER_LEN + 24) as u16).to_le_bytes());
    m.extend_from_slice(&(token.len() as u16).to_le_bytes());
    m.extend_from_slice(&0u64.to_le_bytes()); // PreviousSessionId
    m.extend_from_slice(token);
    frame(&m)
}

/// The security buffer of a SESSION_SETUP response and its status; the CHALLENGE leg
/// answers `STATUS_MORE_PROCESSING_REQUIRED`.
pub fn decode_smb2_session_setup_response(msg: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    let what = "SMB2 SESSION_SETUP response";
    let (status, body) = smb2_checked(msg, 1, what)?;
    if body.len() < 8 {
        return Err(truncated(what, SMB2_HEADER_LEN + 8, msg.len()));
    }
    let offset = usize::from(le16(body, 4));
    let len = usize::from(le16(body, 6));
    if len == 0 {
        return Ok((status, &[]));
    }
    let blob = msg
        .get(offset..)
        .and_then(|b| b.get(..len))
        .ok_or(DecodeError::Truncated {
            what: "SESSION_SETUP security buffer",
            offset,
            need: len,
            have: msg.len().saturating_sub(offset),
        })?;
    Ok((status, blob))
}

/// Wraps an NTLM token in a SPNEGO NegTokenInit ([RFC 4178] 4.2.1) that offers NTLMSSP only.
pub fn spnego_init(ntlm: &[u8]) -> Vec<u8> {
    const SPNEGO_OID: &[u8] = &[0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
    const NTLMSSP_OID: &[u8] = &[0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];
    let mech_types = der(0xa0, &der(0x30, NTLMSSP_OID));
    let mech_token = der(0xa2, &der(0x04, ntlm));
    let init = der(0xa0, &der(0x30, &[mech_types, mech_token].concat()));
    der(0x60, &[SPNEGO_OID, &init].concat())
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xFF {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_a_24_bit_length() {
        let f = frame(&[1, 2, 3]);
        assert_eq!(f, vec![0, 0, 0, 3, 1, 2, 3]);
        assert_eq!(frame_len([0, 0, 0, 3]).unwrap(), 3);
        assert!(frame_len([0, 0x10, 0, 0]).is_err());
        assert!(frame_len([0x85, 0, 0, 0]).is_err());
    }

    #[test]
    fn smb1_negotiate_offers_nt_lm_only() {
        let f = encode_smb1_negotiate();
        assert_eq!(&f[4..8], b"\xffSMB");
        assert!(f.ends_with(b"\x02NT LM 0.12\0"));
        assert_eq!(frame_len([f[0], f[1], f[2], f[3]]).unwrap(), f.len() - 4);
    }

    #[test]
    fn spnego_wrapping_is_well_formed_der() {
        let token = spnego_init(&[0xAB; 200]);
        assert_eq!(token[0], 0x60);
        // Long form length: 0x81 nn.
        assert_eq!(token[1], 0x81);
        assert_eq!(token[2] as usize, token.len() - 3);
    }
}
