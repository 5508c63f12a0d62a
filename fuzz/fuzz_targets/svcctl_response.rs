//! MS-SCMR response stubs, selected by the first byte.
#![no_main]
use exsweep_wire::svcctl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, stub)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => drop(svcctl::decode_handle_response(stub)),
        1 => drop(svcctl::decode_query_service_status_response(stub)),
        _ => drop(svcctl::decode_enum_services_status_response(stub)),
    }
});
