//! MS-RRP response stubs (and the security descriptors GetKeySecurity carries), and the
//! MS-LSAD audit policy answers, selected by the first byte.
#![no_main]
use exsweep_wire::{lsa, secdesc, winreg};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, stub)) = data.split_first() else {
        return;
    };
    match which % 9 {
        0 => drop(winreg::decode_open_key_response(stub)),
        1 => drop(winreg::decode_close_key_response(stub)),
        2 => drop(winreg::decode_query_value_response(stub)),
        3 => drop(winreg::decode_enum_key_response(stub)),
        4 => drop(winreg::decode_enum_value_response(stub)),
        5 => {
            if let Ok(r) = winreg::decode_get_key_security_response(stub) {
                drop(r.descriptor.map(|d| secdesc::decode(&d)));
            }
        }
        6 => drop(secdesc::decode(stub)),
        7 => drop(lsa::decode_audit_events_response(stub)),
        _ => drop(lsa::decode_handle_response(stub)),
    }
});
