//! Connection-oriented DCE/RPC ([C706] 12.6, [MS-RPCE] 2.2.2): the PDUs a client exchanges
//! over an SMB named pipe, and reassembly of a fragmented response.
//!
//! Two reassembly layers sit between a pipe and a stub: the SMB read that returns
//! `STATUS_BUFFER_OVERFLOW` with part of one pipe message (handled by the transport), and RPC
//! fragments, each its own PDU, until one carries `PFC_LAST_FRAG` ([`ResponseAssembler`]).

use crate::ndr::Reader;
use crate::DecodeError;

pub const HEADER_LEN: usize = 16;
/// Request and response PDUs carry 8 bytes after the common header before the stub.
pub const REQUEST_HEADER_LEN: usize = 24;

pub const PTYPE_REQUEST: u8 = 0;
pub const PTYPE_RESPONSE: u8 = 2;
pub const PTYPE_FAULT: u8 = 3;
pub const PTYPE_BIND: u8 = 11;
pub const PTYPE_BIND_ACK: u8 = 12;
pub const PTYPE_BIND_NAK: u8 = 13;

pub const PFC_FIRST_FRAG: u8 = 0x01;
pub const PFC_LAST_FRAG: u8 = 0x02;

/// Little-endian integers, ASCII characters, IEEE floats.
pub const DATA_REPRESENTATION: [u8; 4] = [0x10, 0, 0, 0];

/// The fragment size we offer and the largest PDU we accept from a peer. Windows and Samba
/// both use 4280 on named pipes; a peer announcing more is still held to this bound.
pub const MAX_FRAGMENT: u16 = 4280;
/// Largest reassembled response stub: far above any registry value a scanner reads, far below
/// what would hurt a fleet scan running hundreds of hosts at once.
pub const MAX_STUB: usize = 16 * 1024 * 1024;

/// An interface or transfer syntax: a UUID and a `major.minor` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxId {
    /// The UUID in its 16-byte wire order (first three fields little-endian).
    pub uuid: [u8; 16],
    pub major: u16,
    pub minor: u16,
}

impl SyntaxId {
    /// Builds a syntax id from the UUID's textual fields, so constants read like the spec.
    pub const fn new(d1: u32, d2: u16, d3: u16, d4: [u8; 8], major: u16, minor: u16) -> Self {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        SyntaxId {
            uuid: [
                a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5], d4[6], d4[7],
            ],
            major,
            minor,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.uuid);
        out.extend_from_slice(&self.major.to_le_bytes());
        out.extend_from_slice(&self.minor.to_le_bytes());
    }
}

/// NDR 2.0 transfer syntax, 8a885d04-1ceb-11c9-9fe8-08002b104860 v2.0.
pub const NDR20: SyntaxId = SyntaxId::new(
    0x8a88_5d04,
    0x1ceb,
    0x11c9,
    [0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60],
    2,
    0,
);

/// The 16-byte common header of every connection-oriented PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub ptype: u8,
    pub flags: u8,
    pub frag_length: u16,
    pub auth_length: u16,
    pub call_id: u32,
}

impl Header {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[5, 0, self.ptype, self.flags]);
        out.extend_from_slice(&DATA_REPRESENTATION);
        out.extend_from_slice(&self.frag_length.to_le_bytes());
        out.extend_from_slice(&self.auth_length.to_le_bytes());
        out.extend_from_slice(&self.call_id.to_le_bytes());
    }

    /// Parses and checks the common header: version 5.0, little-endian data, a fragment
    /// length that covers at least the header and fits our bound.
    pub fn parse(bytes: &[u8]) -> Result<Header, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.array::<2>("rpc version")?;
        if version != [5, 0] {
            return Err(DecodeError::invalid(
                "rpc version",
                format!("{}.{}, expected 5.0", version[0], version[1]),
            ));
        }
        let ptype = r.u8("ptype")?;
        let flags = r.u8("pfc_flags")?;
        let drep = r.array::<4>("data representation")?;
        if drep[0] & 0xf0 != 0x10 {
            return Err(DecodeError::invalid(
                "data representation",
                "big-endian PDUs are not supported",
            ));
        }
        let frag_length = r.u16("frag_length")?;
        let auth_length = r.u16("auth_length")?;
        let call_id = r.u32("call_id")?;
        if (frag_length as usize) < HEADER_LEN {
            return Err(DecodeError::invalid(
                "frag_length",
                format!("{frag_length} is shorter than the header"),
            ));
        }
        if frag_length > MAX_FRAGMENT {
            return Err(DecodeError::TooLong {
                what: "frag_length",
                len: frag_length as usize,
                limit: MAX_FRAGMENT as usize,
            });
        }
        Ok(Header {
            ptype,
            flags,
            frag_length,
            auth_length,
            call_id,
        })
    }
}

/// Splits a buffer holding one or more whole PDUs (a pipe may deliver them back to back).
pub fn split_pdus(mut bytes: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let header = Header::parse(bytes)?;
        let len = header.frag_length as usize;
        if len > bytes.len() {
            return Err(DecodeError::Truncated {
                what: "pdu",
                offset: 0,
                need: len,
                have: bytes.len(),
            });
        }
        out.push(&bytes[..len]);
        bytes = &bytes[len..];
    }
    Ok(out)
}

/// A BIND offering one presentation context: `interface` over NDR 2.0.
pub fn encode_bind(call_id: u32, interface: SyntaxId) -> Vec<u8> {
    let mut out = Vec::with_capacity(72);
    Header {
        ptype: PTYPE_BIND,
        flags: PFC_FIRST_FRAG | PFC_LAST_FRAG,
        frag_length: 72,
        auth_length: 0,
        call_id,
    }
    .write(&mut out);
    out.extend_from_slice(&MAX_FRAGMENT.to_le_bytes()); // max_xmit_frag
    out.extend_from_slice(&MAX_FRAGMENT.to_le_bytes()); // max_recv_frag
    out.extend_from_slice(&0u32.to_le_bytes()); // assoc_group_id: a new association
    out.extend_from_slice(&[1, 0, 0, 0]); // one context, reserved
    out.extend_from_slice(&0u16.to_le_bytes()); // p_cont_id
    out.extend_from_slice(&[1, 0]); // one transfer syntax, reserved
    interface.write(&mut out);
    NDR20.write(&mut out);
    out
}

/// What a BIND_ACK said about our single presentation context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindAck {
    pub call_id: u32,
    pub max_xmit_frag: u16,
    pub max_recv_frag: u16,
    pub assoc_group_id: u32,
    /// The secondary address, e.g. `\PIPE\winreg`.
    pub secondary_address: String,
    /// `0` acceptance, `2` provider rejection (with `reason`).
    pub result: u16,
    pub reason: u16,
    pub transfer_syntax: SyntaxId,
}

/// Why a bind did not produce a usable context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindOutcome {
    Accepted(BindAck),
    /// The context came back with a non-zero result (e.g. abstract syntax not supported).
    ContextRejected(BindAck),
    /// BIND_NAK with its reject reason ([C706] 12.6.4.5).
    Nak {
        call_id: u32,
        reason: u16,
    },
}

/// Parses the answer to a BIND: a BIND_ACK or a BIND_NAK.
pub fn decode_bind_response(pdu: &[u8]) -> Result<BindOutcome, DecodeError> {
    let header = Header::parse(pdu)?;
    let body = pdu_body(pdu, &header)?;
    let mut r = Reader::new(body);
    match header.ptype {
        PTYPE_BIND_NAK => Ok(BindOutcome::Nak {
            call_id: header.call_id,
            reason: r.u16("reject reason")?,
        }),
        PTYPE_BIND_ACK => {
            let max_xmit_frag = r.u16("max_xmit_frag")?;
            let max_recv_frag = r.u16("max_recv_frag")?;
            let assoc_group_id = r.u32("assoc_group_id")?;
            let addr_len = r.u16("sec_addr length")? as usize;
            let addr = r.take(addr_len, "sec_addr")?;
            let secondary_address = String::from_utf8_lossy(addr).trim_end_matches('\0').to_owned();
            // The result list starts 4-aligned relative to the PDU; the body starts at 16.
            r.align(4, "p_result_list")?;
            let n_results = r.u8("n_results")?;
            r.take(3, "p_result_list reserved")?;
            if n_results == 0 {
                return Err(DecodeError::invalid("p_result_list", "no results"));
            }
            let result = r.u16("result")?;
            let reason = r.u16("reason")?;
            let uuid = r.array::<16>("transfer syntax")?;
            let major = r.u16("transfer syntax version")?;
            let minor = r.u16("transfer syntax version")?;
            // We offer one context; results for more would be a peer answering someone else.
            r.take(24 * (n_results as usize - 1), "further results")?;
            r.finish("bind_ack")?;
            let ack = BindAck {
                call_id: header.call_id,
                max_xmit_frag,
                max_recv_frag,
                assoc_group_id,
                secondary_address,
                result,
                reason,
                transfer_syntax: SyntaxId { uuid, major, minor },
            };
            Ok(if result == 0 {
                BindOutcome::Accepted(ack)
            } else {
                BindOutcome::ContextRejected(ack)
            })
        }
        other => Err(DecodeError::invalid(
            "bind response",
            format!("unexpected PDU type {other}"),
        )),
    }
}

/// The body of a PDU: between the common header and the auth trailer, if any.
fn pdu_body<'a>(pdu: &'a [u8], header: &Header) -> Result<&'a [u8], DecodeError> {
    let frag = header.frag_length as usize;
    if pdu.len() < frag {
        return Err(DecodeError::Truncated {
            what: "pdu",
            offset: 0,
            need: frag,
            have: pdu.len(),
        });
    }
    if pdu.len() > frag {
        return Err(DecodeError::TrailingData {
            what: "pdu",
            count: pdu.len() - frag,
        });
    }
    // An auth verifier is an 8-byte sec_trailer plus auth_length bytes at the end.
    let trailer = match header.auth_length {
        0 => 0,
        n => n as usize + 8,
    };
    let end = frag
        .checked_sub(trailer)
        .filter(|&end| end >= HEADER_LEN)
        .ok_or_else(|| DecodeError::invalid("auth_length", "longer than the fragment"))?;
    Ok(&pdu[HEADER_LEN..end])
}

/// Encodes a REQUEST, split into fragments of at most `max_frag` bytes each.
pub fn encode_request(call_id: u32, context_id: u16, opnum: u16, stub: &[u8], max_frag: u16) -> Vec<Vec<u8>> {
    let max_frag = max_frag.clamp(REQUEST_HEADER_LEN as u16 + 8, MAX_FRAGMENT) as usize;
    // Stub fragments other than the last are kept 8-aligned ([C706] 12.6.3.7 note).
    let per_frag = (max_frag - REQUEST_HEADER_LEN) & !7;
    let chunks: Vec<&[u8]> = if stub.is_empty() {
        vec![stub]
    } else {
        stub.chunks(per_frag).collect()
    };
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut flags = 0;
            if i == 0 {
                flags |= PFC_FIRST_FRAG;
            }
            if i == last {
                flags |= PFC_LAST_FRAG;
            }
            let mut out = Vec::with_capacity(REQUEST_HEADER_LEN + chunk.len());
            Header {
                ptype: PTYPE_REQUEST,
                flags,
                frag_length: (REQUEST_HEADER_LEN + chunk.len()) as u16,
                auth_length: 0,
                call_id,
            }
            .write(&mut out);
            let alloc_hint = (stub.len() - i * per_frag) as u32;
            out.extend_from_slice(&alloc_hint.to_le_bytes());
            out.extend_from_slice(&context_id.to_le_bytes());
            out.extend_from_slice(&opnum.to_le_bytes());
            out.extend_from_slice(chunk);
            out
        })
        .collect()
}

/// A request PDU as a server sees it; used by tests and by the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPdu<'a> {
    pub header: Header,
    pub alloc_hint: u32,
    pub context_id: u16,
    pub opnum: u16,
    pub stub: &'a [u8],
}

pub fn decode_request(pdu: &[u8]) -> Result<RequestPdu<'_>, DecodeError> {
    let header = Header::parse(pdu)?;
    if header.ptype != PTYPE_REQUEST {
        return Err(DecodeError::invalid("request", format!("PDU type {}", header.ptype)));
    }
    let body = pdu_body(pdu, &header)?;
    let mut r = Reader::new(body);
    let alloc_hint = r.u32("alloc_hint")?;
    let context_id = r.u16("p_cont_id")?;
    let opnum = r.u16("opnum")?;
    if header.flags & 0x80 != 0 {
        // PFC_OBJECT_UUID: an object UUID precedes the stub.
        r.take(16, "object uuid")?;
    }
    let stub = r.take(r.remaining(), "stub")?;
    Ok(RequestPdu {
        header,
        alloc_hint,
        context_id,
        opnum,
        stub,
    })
}

/// One decoded response-side fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseFragment<'a> {
    Data {
        header: Header,
        alloc_hint: u32,
        stub: &'a [u8],
    },
    /// A FAULT PDU and its status (e.g. `0x1c010002` nca_s_op_rng_error, `5` access denied).
    Fault { header: Header, status: u32 },
}

pub fn decode_response(pdu: &[u8]) -> Result<ResponseFragment<'_>, DecodeError> {
    let header = Header::parse(pdu)?;
    let body = pdu_body(pdu, &header)?;
    let mut r = Reader::new(body);
    let alloc_hint = r.u32("alloc_hint")?;
    let _context_id = r.u16("p_cont_id")?;
    let _cancel_count = r.u8("cancel_count")?;
    let _reserved = r.u8("reserved")?;
    match header.ptype {
        PTYPE_RESPONSE => Ok(ResponseFragment::Data {
            header,
            alloc_hint,
            stub: r.take(r.remaining(), "stub")?,
        }),
        PTYPE_FAULT => Ok(ResponseFragment::Fault {
            header,
            status: r.u32("fault status")?,
        }),
        other => Err(DecodeError::invalid("response", format!("unexpected PDU type {other}"))),
    }
}

/// Encodes a response fragment; the lab and tests use it to play a server.
pub fn encode_response(call_id: u32, flags: u8, alloc_hint: u32, stub: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(REQUEST_HEADER_LEN + stub.len());
    Header {
        ptype: PTYPE_RESPONSE,
        flags,
        frag_length: (REQUEST_HEADER_LEN + stub.len()) as u16,
        auth_length: 0,
        call_id,
    }
    .write(&mut out);
    out.extend_from_slice(&alloc_hint.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(stub);
    out
}

/// What feeding one fragment into the assembler produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembled {
    /// More fragments are due.
    NeedMore,
    /// The last fragment arrived: the whole stub.
    Complete(Vec<u8>),
    /// The server answered with a FAULT.
    Fault(u32),
}

/// Reassembles the fragments of one call's response, in order, up to [`MAX_STUB`].
#[derive(Debug)]
pub struct ResponseAssembler {
    call_id: u32,
    stub: Vec<u8>,
    fragments: usize,
    done: bool,
}

impl ResponseAssembler {
    pub fn new(call_id: u32) -> Self {
        ResponseAssembler {
            call_id,
            stub: Vec::new(),
            fragments: 0,
            done: false,
        }
    }

    pub fn fragments(&self) -> usize {
        self.fragments
    }

    pub fn feed(&mut self, pdu: &[u8]) -> Result<Assembled, DecodeError> {
        if self.done {
            return Err(DecodeError::invalid(
                "response fragment",
                "arrived after the last fragment",
            ));
        }
        let fragment = decode_response(pdu)?;
        let header = match &fragment {
            ResponseFragment::Data { header, .. } | ResponseFragment::Fault { header, .. } => *header,
        };
        if header.call_id != self.call_id {
            return Err(DecodeError::invalid(
                "call_id",
                format!("{} while waiting for {}", header.call_id, self.call_id),
            ));
        }
        let first = header.flags & PFC_FIRST_FRAG != 0;
        if first != (self.fragments == 0) {
            return Err(DecodeError::invalid("pfc_flags", "first-fragment flag out of sequence"));
        }
        self.fragments += 1;
        match fragment {
            ResponseFragment::Fault { status, .. } => {
                self.done = true;
                Ok(Assembled::Fault(status))
            }
            ResponseFragment::Data { stub, .. } => {
                let total = self.stub.len() + stub.len();
                if total > MAX_STUB {
                    return Err(DecodeError::TooLong {
                        what: "response stub",
                        len: total,
                        limit: MAX_STUB,
                    });
                }
                self.stub.extend_from_slice(stub);
                if header.flags & PFC_LAST_FRAG != 0 {
                    self.done = true;
                    Ok(Assembled::Complete(std::mem::take(&mut self.stub)))
                } else {
                    Ok(Assembled::NeedMore)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_fragmented_with_flags_and_alloc_hints() {
        let stub: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let frags = encode_request(7, 0, 17, &stub, MAX_FRAGMENT);
        assert_eq!(frags.len(), 3);
        let mut rebuilt = Vec::new();
        for (i, f) in frags.iter().enumerate() {
            let req = decode_request(f).unwrap();
            assert_eq!(req.header.call_id, 7);
            assert_eq!(req.opnum, 17);
            assert_eq!(req.header.flags & PFC_FIRST_FRAG != 0, i == 0);
            assert_eq!(req.header.flags & PFC_LAST_FRAG != 0, i == 2);
            assert_eq!(req.alloc_hint as usize, stub.len() - rebuilt.len());
            assert!(f.len() <= MAX_FRAGMENT as usize);
            rebuilt.extend_from_slice(req.stub);
        }
        assert_eq!(rebuilt, stub);
    }

    #[test]
    fn assembler_joins_fragments_and_rejects_out_of_order_ones() {
        let a = encode_response(3, PFC_FIRST_FRAG, 6, b"abc");
        let b = encode_response(3, PFC_LAST_FRAG, 3, b"def");
        let mut asm = ResponseAssembler::new(3);
        assert_eq!(asm.feed(&a).unwrap(), Assembled::NeedMore);
        assert_eq!(asm.feed(&b).unwrap(), Assembled::Complete(b"abcdef".to_vec()));
        assert!(asm.feed(&b).is_err());

        let mut asm = ResponseAssembler::new(3);
        assert!(asm.feed(&b).is_err(), "a middle fragment cannot come first");
        let mut asm = ResponseAssembler::new(4);
        assert!(asm.feed(&a).is_err(), "another call's fragment is refused");
    }

    #[test]
    fn trailing_bytes_after_a_pdu_are_refused() {
        let mut pdu = encode_response(1, PFC_FIRST_FRAG | PFC_LAST_FRAG, 1, b"x");
        pdu.push(0);
        assert!(matches!(decode_response(&pdu), Err(DecodeError::TrailingData { .. })));
        assert_eq!(split_pdus(&pdu[..pdu.len() - 1]).unwrap().len(), 1);
    }
}
