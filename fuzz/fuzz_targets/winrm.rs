//! What a WinRM server sends: HTTP responses fed in pieces, encrypted bodies, WS-Management
//! answers, SPNEGO NegTokenResp messages, server certificates (their channel-binding hash), and
//! CHALLENGE messages answered with an AUTHENTICATE; selected by the first byte.
#![no_main]
use exsweep_wire::{certhash, http1, httpenc, ntlmv2, spnego, wsman};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => {
            let mut parser = http1::ResponseParser::new();
            for piece in rest.chunks(7) {
                if parser.feed(piece).is_err() {
                    break;
                }
            }
            // A plain web server's answer, its body ended by the connection closing.
            let mut plain = http1::ResponseParser::until_close();
            if plain.feed(rest).is_ok() {
                drop(plain.finish());
            }
        }
        1 => drop(httpenc::decode(rest)),
        2 => drop(wsman::parse_answer(rest)),
        3 => drop(spnego::decode_resp(rest)),
        4 => drop(certhash::end_point_hash(rest)),
        _ => {
            let input = ntlmv2::AuthInput {
                user: "u",
                domain: "d",
                password: "p",
                workstation: "w",
                client_challenge: [1; 8],
                exported_session_key: [2; 16],
                fallback_time: 0,
                with_mic: true,
                channel_bindings: None,
                target_spn: None,
            };
            drop(ntlmv2::authenticate(&ntlmv2::encode_negotiate(), rest, &input));
        }
    }
});
