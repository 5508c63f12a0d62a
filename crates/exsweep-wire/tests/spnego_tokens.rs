//! SPNEGO wrapping against a logon recorded between pyspnego's initiator and acceptor
//! (tests/data/spnego/README.md).

mod common;

use exsweep_wire::spnego::{self, NegState, NTLMSSP_OID};

fn recorded(name: &str) -> Vec<u8> {
    common::hex(common::field(include_str!("data/spnego/pyspnego-logon.txt"), name))
}

#[test]
fn neg_token_init_wraps_the_negotiate_as_pyspnego_does() {
    let init = recorded("init");
    let negotiate = &init[init.len() - 40..];
    assert_eq!(&negotiate[..8], b"NTLMSSP\0");
    assert_eq!(spnego::encode_init(negotiate), init);
    // The MechTypeList both sides sign for the mechListMIC.
    assert!(init.windows(14).any(|w| w == spnego::mech_type_list().as_slice()));
}

#[test]
fn the_acceptors_answers_read_back() {
    let challenge = spnego::decode_resp(&recorded("challenge")).unwrap();
    assert_eq!(challenge.state, Some(NegState::RequestMic));
    assert_eq!(challenge.supported_mech.as_deref(), Some(&NTLMSSP_OID[..]));
    assert_eq!(&challenge.response_token.unwrap()[..12], b"NTLMSSP\0\x02\0\0\0");
    assert_eq!(challenge.mech_list_mic, None);

    let final_ = spnego::decode_resp(&recorded("final")).unwrap();
    assert_eq!(final_.state, Some(NegState::AcceptCompleted));
    assert_eq!(final_.response_token, None);
    let mic = final_.mech_list_mic.unwrap();
    assert_eq!(
        (mic.len(), &mic[..4], &mic[12..]),
        (16, &[1, 0, 0, 0][..], &[0, 0, 0, 0][..])
    );

    // The initiator's own answer has the same shape: AUTHENTICATE and its mechListMIC.
    let authenticate = spnego::decode_resp(&recorded("authenticate")).unwrap();
    assert_eq!(&authenticate.response_token.unwrap()[..12], b"NTLMSSP\0\x03\0\0\0");
    assert_eq!(authenticate.mech_list_mic.map(|m| m.len()), Some(16));
}

#[test]
fn recorded_tokens_cut_or_flipped_never_panic() {
    for name in ["challenge", "authenticate", "final"] {
        let token = recorded(name);
        for cut in 0..token.len() {
            assert!(spnego::decode_resp(&token[..cut]).is_err());
        }
        for i in 0..token.len() {
            let mut bad = token.clone();
            bad[i] ^= 0xff;
            let _ = spnego::decode_resp(&bad);
        }
    }
}
