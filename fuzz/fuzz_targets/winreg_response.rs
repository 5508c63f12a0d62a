//! MS-RRP response stubs, selected by the first byte.
#![no_main]
use exsweep_wire::winreg;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, stub)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => drop(winreg::decode_open_key_response(stub)),
        1 => drop(winreg::decode_close_key_response(stub)),
        2 => drop(winreg::decode_query_value_response(stub)),
        3 => drop(winreg::decode_enum_key_response(stub)),
        _ => drop(winreg::decode_enum_value_response(stub)),
    }
});
