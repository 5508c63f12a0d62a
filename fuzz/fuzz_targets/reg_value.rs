//! Registry value data of every type.
#![no_main]
use exsweep_wire::regvalue::RegData;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&t, bytes)) = data.split_first() else { return };
    let value = RegData::decode(u32::from(t % 13), bytes);
    let _ = value.type_name();
});
