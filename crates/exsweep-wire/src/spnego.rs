//! SPNEGO (RFC 4178, [MS-SPNG]) around NTLM: the NegTokenInit a client opens with, the
//! NegTokenResp it answers with, and the server's NegTokenResp, read with the shared bounded
//! DER reader (`der`).
//!
//! Only what an NTLM-only initiator needs: one mechanism offered (NTLMSSP), definite DER
//! lengths, at most [`MAX_TOKEN`] bytes.

use crate::der::Der;
use crate::DecodeError;

/// Largest SPNEGO token accepted (a CHALLENGE with its target information is well under 2 KiB).
pub const MAX_TOKEN: usize = 64 * 1024;

/// OID 1.3.6.1.5.5.2, the SPNEGO pseudo-mechanism.
const SPNEGO_OID: [u8; 6] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/// OID 1.3.6.1.4.1.311.2.2.10, NTLMSSP.
pub const NTLMSSP_OID: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];

/// `negState` of a NegTokenResp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegState {
    AcceptCompleted,
    AcceptIncomplete,
    Reject,
    RequestMic,
}

/// A server's NegTokenResp.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegTokenResp {
    pub state: Option<NegState>,
    /// The OID's content octets.
    pub supported_mech: Option<Vec<u8>>,
    pub response_token: Option<Vec<u8>>,
    pub mech_list_mic: Option<Vec<u8>>,
}

fn der_len(len: usize, out: &mut Vec<u8>) {
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xffff => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
        _ => out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]),
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    der_len(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

/// The DER `MechTypeList` offered (NTLMSSP alone): what both mechListMICs are computed over.
pub fn mech_type_list() -> Vec<u8> {
    tlv(0x30, &tlv(0x06, &NTLMSSP_OID))
}

/// The GSS-API InitialContextToken carrying a NegTokenInit with NTLMSSP as the only mechanism
/// and `mech_token` (the NTLM NEGOTIATE) as its optimistic token.
pub fn encode_init(mech_token: &[u8]) -> Vec<u8> {
    let mut init = tlv(0xa0, &mech_type_list());
    init.extend_from_slice(&tlv(0xa2, &tlv(0x04, mech_token)));
    let mut body = tlv(0x06, &SPNEGO_OID);
    body.extend_from_slice(&tlv(0xa0, &tlv(0x30, &init)));
    tlv(0x60, &body)
}

/// A NegTokenResp carrying the NTLM AUTHENTICATE and, when the MIC is required, the
/// mechListMIC.
pub fn encode_resp(response_token: &[u8], mech_list_mic: Option<&[u8]>) -> Vec<u8> {
    let mut seq = tlv(0xa2, &tlv(0x04, response_token));
    if let Some(mic) = mech_list_mic {
        seq.extend_from_slice(&tlv(0xa3, &tlv(0x04, mic)));
    }
    tlv(0xa1, &tlv(0x30, &seq))
}

/// Decodes a server's NegTokenResp (`[1] SEQUENCE { [0] negState, [1] supportedMech,
/// [2] responseToken, [3] mechListMIC }`, each optional).
pub fn decode_resp(token: &[u8]) -> Result<NegTokenResp, DecodeError> {
    if token.len() > MAX_TOKEN {
        return Err(DecodeError::TooLong {
            what: "SPNEGO token",
            len: token.len(),
            limit: MAX_TOKEN,
        });
    }
    let mut outer = Der::new(token);
    let resp = outer.expect(0xa1, "SPNEGO NegTokenResp")?;
    if !outer.is_empty() {
        return Err(DecodeError::TrailingData {
            what: "SPNEGO NegTokenResp",
            count: token.len() - outer.at,
        });
    }
    let seq = Der::new(resp).expect(0x30, "NegTokenResp sequence")?;
    let mut fields = Der::new(seq);
    let mut out = NegTokenResp::default();
    while !fields.is_empty() {
        let (tag, content) = fields.element("NegTokenResp field")?;
        let mut inner = Der::new(content);
        match tag {
            0xa0 => {
                let state = inner.expect(0x0a, "negState")?;
                out.state = Some(match state {
                    [0] => NegState::AcceptCompleted,
                    [1] => NegState::AcceptIncomplete,
                    [2] => NegState::Reject,
                    [3] => NegState::RequestMic,
                    _ => return Err(DecodeError::invalid("negState", format!("{state:02x?}"))),
                });
            }
            0xa1 => out.supported_mech = Some(inner.expect(0x06, "supportedMech")?.to_vec()),
            0xa2 => out.response_token = Some(inner.expect(0x04, "responseToken")?.to_vec()),
            0xa3 => out.mech_list_mic = Some(inner.expect(0x04, "mechListMIC")?.to_vec()),
            // Later fields are extensions this client does not use.
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_over_127_use_the_long_form_and_read_back() {
        let token = vec![0x4e; 300];
        let resp = encode_resp(&token, Some(&[1; 16]));
        let back = decode_resp(&resp).unwrap();
        assert_eq!(back.response_token.as_deref(), Some(token.as_slice()));
        assert_eq!(back.mech_list_mic.as_deref(), Some(&[1u8; 16][..]));
        assert_eq!(back.state, None);
    }

    #[test]
    fn cut_or_flipped_tokens_are_errors_not_panics() {
        let resp = encode_resp(&[7; 40], Some(&[9; 16]));
        for cut in 0..resp.len() {
            assert!(decode_resp(&resp[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..resp.len() {
            for bit in 0..8 {
                let mut bad = resp.clone();
                bad[i] ^= 1 << bit;
                let _ = decode_resp(&bad);
            }
        }
        assert!(matches!(
            decode_resp(&[0xa1, 0x84, 0, 0, 0, 0]),
            Err(DecodeError::Invalid { .. })
        ));
    }
}
