//! Answers to the unauthenticated probes: SMB1 and SMB2 NEGOTIATE responses, SESSION_SETUP
//! responses, NTLM CHALLENGE messages and AV_PAIR lists, selected by the first byte.
#![no_main]
use exsweep_wire::{ntlm, smbprobe};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, msg)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => drop(smbprobe::decode_smb1_negotiate_response(msg)),
        1 => drop(smbprobe::decode_smb2_negotiate_response(msg)),
        2 => {
            if let Ok((_, blob)) = smbprobe::decode_smb2_session_setup_response(msg) {
                if let Some(challenge) = ntlm::find_challenge(blob) {
                    drop(ntlm::decode_challenge(challenge));
                }
            }
        }
        3 => drop(ntlm::decode_challenge(msg)),
        _ => drop(ntlm::decode_target_info(msg)),
    }
});
