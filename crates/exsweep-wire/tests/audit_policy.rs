//! LSA audit policy stubs against an exchange between impacket and Samba and impacket's own
//! reading of the answer (tests/data/lsa/record_audit_policy.py).

mod common;

use common::hex;
use exsweep_wire::lsa::{self, PolicyHandle};

const RECORDED: &str = include_str!("data/lsa/audit-policy.txt");

fn field(name: &str) -> &'static str {
    common::field(RECORDED, name)
}

#[test]
fn requests_match_impackets_but_for_the_object_attributes_length() {
    let theirs = hex(field("open-request"));
    let ours = lsa::encode_open_policy2(lsa::POLICY_VIEW_AUDIT_INFORMATION);
    // impacket leaves ObjectAttributes.Length 0; Windows (and exsweep) set it to 24.
    assert_eq!(ours[4..8], 24u32.to_le_bytes());
    assert_eq!((&ours[..4], &ours[8..]), (&theirs[..4], &theirs[8..]));
    let (handle, status) = lsa::decode_handle_response(&hex(field("open-response"))).unwrap();
    assert_eq!(status, 0);
    assert_eq!(
        lsa::encode_query_information_policy(&handle, lsa::POLICY_AUDIT_EVENTS_INFORMATION),
        hex(field("query-request"))
    );
    assert_eq!(lsa::encode_close(&handle), hex(field("close-request")));
    let (closed, status) = lsa::decode_handle_response(&hex(field("close-response"))).unwrap();
    assert_eq!((closed, status), (PolicyHandle([0; 20]), 0));
}

#[test]
fn sambas_audit_policy_reads_as_impacket_reads_it() {
    let (events, status) = lsa::decode_audit_events_response(&hex(field("query-response"))).unwrap();
    let events = events.unwrap();
    assert_eq!(status, 0);
    assert_eq!(events.auditing_mode, field("auditing_mode") == "1");
    let theirs: Vec<u32> = field("options").split(' ').map(|o| o.parse().unwrap()).collect();
    assert_eq!(events.options, theirs);
    assert_eq!(lsa::audit_setting(true, 3), Some("success-and-failure"));
}

#[test]
fn the_answer_cut_or_flipped_never_panics() {
    let stub = hex(field("query-response"));
    for cut in 0..stub.len() {
        assert!(lsa::decode_audit_events_response(&stub[..cut]).is_err());
    }
    for i in 0..stub.len() {
        for bit in [0x01, 0x80] {
            let mut bad = stub.clone();
            bad[i] ^= bit;
            let _ = lsa::decode_audit_events_response(&bad);
        }
    }
}
