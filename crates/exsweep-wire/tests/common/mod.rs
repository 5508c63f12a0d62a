//! Helpers shared by the known-bytes tests: hex text to bytes, `name value` lines of the
//! recordings made by the scripts under `tests/data/`, and response stubs out of captured PDUs.

use exsweep_wire::dcerpc::{self, Assembled, ResponseAssembler};

/// Bytes from hex text (tests' own literals and recordings: well-formed by construction).
#[allow(dead_code)]
pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every value of the lines `name value` in a recording, in order.
#[allow(dead_code)]
pub fn fields<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .collect()
}

/// The value of the one line `name value` of a recording.
#[allow(dead_code)]
pub fn field<'a>(text: &'a str, name: &str) -> &'a str {
    fields(text, name)
        .first()
        .copied()
        .unwrap_or_else(|| panic!("no {name} line"))
}

/// A 20-byte context handle written in hex, as ndrdump prints it.
#[allow(dead_code)]
pub fn handle_bytes(text: &str) -> [u8; 20] {
    hex(text).try_into().expect("20 bytes")
}

/// The stub of a single-fragment response, checked to be one whole PDU.
#[allow(dead_code)]
pub fn response_stub(pdu: &[u8], call_id: u32) -> Vec<u8> {
    let mut asm = ResponseAssembler::new(call_id);
    match asm.feed(pdu).unwrap() {
        Assembled::Complete(stub) => {
            // Both ways: the framing we would write is the framing Samba wrote.
            let header = dcerpc::Header::parse(pdu).unwrap();
            let alloc_hint = u32::from_le_bytes(pdu[16..20].try_into().unwrap());
            assert_eq!(dcerpc::encode_response(call_id, header.flags, alloc_hint, &stub), pdu);
            stub
        }
        other => panic!("expected a complete response, got {other:?}"),
    }
}

/// The stub of a response sent as several fragments, each fed in order.
#[allow(dead_code)]
pub fn stub_of_fragments(pdus: &[&[u8]], call_id: u32) -> Vec<u8> {
    let mut asm = ResponseAssembler::new(call_id);
    for (i, pdu) in pdus.iter().enumerate() {
        match asm.feed(pdu).unwrap() {
            Assembled::NeedMore => assert!(i + 1 < pdus.len()),
            Assembled::Complete(stub) => {
                assert_eq!(i + 1, pdus.len());
                assert_eq!(asm.fragments(), pdus.len());
                return stub;
            }
            Assembled::Fault(s) => panic!("fault {s:#x}"),
        }
    }
    panic!("no last fragment")
}
