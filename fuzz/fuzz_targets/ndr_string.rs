//! NDR unicode strings and conformant-varying arrays.
#![no_main]
use exsweep_wire::ndr::{read_unicode_string, Reader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let _ = read_unicode_string(&mut r, "fuzz");
    let _ = Reader::new(data).varying_bytes("fuzz");
});
