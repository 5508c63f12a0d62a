//! PE files through the range-pulling version locator, and VS_VERSIONINFO resources alone,
//! selected by the first byte.
#![no_main]
use exsweep_wire::pe;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        drop(pe::version_of(rest));
    } else {
        drop(pe::decode_version_info(rest));
    }
});
