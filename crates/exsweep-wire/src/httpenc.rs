//! The body of an encrypted WinRM message over HTTP ([MS-WSMV] 2.2.9.1):
//! `multipart/encrypted; protocol="application/HTTP-SPNEGO-session-encrypted"`, one part
//! naming the original length, one part holding a 4-byte little-endian signature length (16),
//! the 16-byte NTLM signature and the sealed payload. Framing only: sealing is done by the
//! caller (`ntlm::Sealer`).

use crate::le::le32;
use crate::DecodeError;

pub const BOUNDARY: &str = "Encrypted Boundary";
/// The `Content-Type` of an encrypted request or response.
pub const CONTENT_TYPE: &str =
    "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\"";
/// NTLM's signature is always 16 bytes.
pub const SIGNATURE_LEN: usize = 16;
/// Largest encrypted body accepted; WinRM's MaxEnvelopeSize defaults to 500 KB.
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// The framing of one sealed message.
pub fn encode(original_len: usize, signature: &[u8; SIGNATURE_LEN], sealed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sealed.len() + 256);
    out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
    out.extend_from_slice(b"\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n");
    out.extend_from_slice(
        format!("\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={original_len}\r\n").as_bytes(),
    );
    out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
    out.extend_from_slice(b"\tContent-Type: application/octet-stream\r\n");
    out.extend_from_slice(&(SIGNATURE_LEN as u32).to_le_bytes());
    out.extend_from_slice(signature);
    out.extend_from_slice(sealed);
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

/// One sealed message taken from a body: the length the plaintext must have, the signature,
/// and exactly `Length` sealed bytes (RC4 keeps lengths, so the sealed payload is as long as
/// the original; the closing boundary after it is never part of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed<'a> {
    pub original_len: usize,
    pub signature: [u8; SIGNATURE_LEN],
    pub sealed: &'a [u8],
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Takes the sealed message out of an encrypted body.
pub fn decode(body: &[u8]) -> Result<Sealed<'_>, DecodeError> {
    let what = "encrypted body";
    if body.len() > MAX_BODY {
        return Err(DecodeError::TooLong {
            what,
            len: body.len(),
            limit: MAX_BODY,
        });
    }
    let marker = b"Length=";
    let at = find(body, marker, 0).ok_or_else(|| DecodeError::invalid(what, "no OriginalContent Length"))?;
    let digits_start = at + marker.len();
    let digits_end = body[digits_start..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(body.len(), |p| digits_start + p);
    let original_len: usize = std::str::from_utf8(&body[digits_start..digits_end])
        .ok()
        .and_then(|d| d.parse().ok())
        .filter(|n| *n <= MAX_BODY)
        .ok_or_else(|| DecodeError::invalid(what, "OriginalContent Length is not a number"))?;
    let octets = b"application/octet-stream\r\n";
    let part = find(body, octets, digits_end).ok_or_else(|| DecodeError::invalid(what, "no octet-stream part"))?
        + octets.len();
    let truncated = |need: usize| DecodeError::Truncated {
        what,
        offset: part,
        need,
        have: body.len().saturating_sub(part),
    };
    if body.len() < part + 4 + SIGNATURE_LEN {
        return Err(truncated(4 + SIGNATURE_LEN));
    }
    let signature_len = le32(body, part) as usize;
    if signature_len != SIGNATURE_LEN {
        return Err(DecodeError::invalid(
            what,
            format!("signature length {signature_len}, not 16"),
        ));
    }
    let mut signature = [0u8; SIGNATURE_LEN];
    signature.copy_from_slice(&body[part + 4..part + 4 + SIGNATURE_LEN]);
    let start = part + 4 + SIGNATURE_LEN;
    let sealed = body
        .get(start..start + original_len)
        .ok_or_else(|| truncated(4 + SIGNATURE_LEN + original_len))?;
    // What follows must be the closing boundary, else the Length lied.
    let tail = &body[start + original_len..];
    if !tail.starts_with(format!("--{BOUNDARY}").as_bytes()) {
        return Err(DecodeError::invalid(
            what,
            "the sealed payload is not followed by the boundary",
        ));
    }
    Ok(Sealed {
        original_len,
        signature,
        sealed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_holding_the_boundary_text_is_taken_by_length_not_by_search() {
        let payload = b"--Encrypted Boundary--\r\n and more";
        let body = encode(payload.len(), &[7; 16], payload);
        let got = decode(&body).unwrap();
        assert_eq!(got.sealed, payload);
        assert_eq!(got.signature, [7; 16]);
        for cut in 0..body.len() {
            let _ = decode(&body[..cut]);
        }
        let mut lying = body.clone();
        let at = find(&lying, b"Length=", 0).unwrap() + 7;
        lying[at] = b'9';
        assert!(decode(&lying).is_err());
    }
}
