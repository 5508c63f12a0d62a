//! DCE/RPC PDUs: headers, bind answers, requests, and fragment reassembly.
#![no_main]
use exsweep_wire::dcerpc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dcerpc::decode_bind_response(data);
    let _ = dcerpc::decode_request(data);
    if let Ok(pdus) = dcerpc::split_pdus(data) {
        let mut asm = dcerpc::ResponseAssembler::new(1);
        for pdu in pdus {
            if asm.feed(pdu).is_err() {
                break;
            }
        }
    }
});
