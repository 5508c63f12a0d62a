//! BaseRegGetKeySecurity and the security descriptor it carries, against an exchange between
//! impacket and Samba and impacket's own reading of the descriptor
//! (tests/data/winreg/record_key_security.py).

mod common;

use common::{fields as field, hex};
use exsweep_wire::secdesc;
use exsweep_wire::winreg::{self, KeyHandle, Win32Status};

const RECORDED: &str = include_str!("data/winreg/key-security.txt");

#[test]
fn the_request_is_impackets() {
    let ours = winreg::encode_get_key_security(&KeyHandle([7; 20]), winreg::DACL_SECURITY_INFORMATION, 4096);
    assert_eq!(ours[..20], [7; 20]);
    assert_eq!(ours[20..], hex(field(RECORDED, "request")[0]));
}

#[test]
fn sambas_answer_reads_as_impacket_reads_it() {
    let response = winreg::decode_get_key_security_response(&hex(field(RECORDED, "response")[0])).unwrap();
    assert_eq!(response.status, Win32Status::SUCCESS);
    let sd = secdesc::decode(&response.descriptor.unwrap()).unwrap();
    assert_eq!(sd.owner.as_deref(), Some(field(RECORDED, "owner")[0]));
    assert_eq!(sd.group.as_deref(), Some(field(RECORDED, "group")[0]));
    let ours: Vec<String> = sd
        .dacl
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {} 0x{:08x} {}",
                a.ace_type,
                a.flags,
                a.mask,
                a.sid.as_deref().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(ours, field(RECORDED, "ace"));
}

#[test]
fn the_answer_cut_or_flipped_never_panics() {
    let stub = hex(field(RECORDED, "response")[0]);
    for cut in 0..stub.len() {
        assert!(winreg::decode_get_key_security_response(&stub[..cut]).is_err());
    }
    for i in 0..stub.len() {
        for bit in [0x01, 0x80] {
            let mut bad = stub.clone();
            bad[i] ^= bit;
            if let Ok(r) = winreg::decode_get_key_security_response(&bad) {
                let _ = r.descriptor.map(|d| secdesc::decode(&d));
            }
        }
    }
}
