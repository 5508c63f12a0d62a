//! NTLMv2 and session security against [MS-NLMP] 4.2.4 and a pyspnego known-answer vector
//! (tests/data/winrm/README.md): the keys, each sealed message's signature and ciphertext, and
//! the `multipart/encrypted` body that carries it, byte for byte, both ways.

mod common;

use common::hex;
use exsweep_wire::httpenc;
use exsweep_wire::ntlmv2::{self, AuthInput, Direction, Sealer};

const FLAGS: u32 = 0xe28a_8235;
const SESSION_KEY: [u8; 16] = [0x55; 16];

/// The inputs of the [MS-NLMP] 4.2.4 example (which has no MIC).
fn spec_input() -> AuthInput<'static> {
    AuthInput {
        user: "User",
        domain: "Domain",
        password: "Password",
        workstation: "COMPUTER",
        client_challenge: [0xaa; 8],
        exported_session_key: SESSION_KEY,
        fallback_time: 0,
        with_mic: false,
        channel_bindings: None,
        target_spn: None,
    }
}

#[test]
fn ms_nlmp_4_2_4_ntlmv2_response_and_keys() {
    let challenge = include_bytes!("data/smb/nlmp-4.2.4.3-challenge.bin");
    let negotiate = ntlmv2::encode_negotiate();
    let out = ntlmv2::authenticate(&negotiate, challenge, &spec_input()).unwrap();
    // 4.2.4.2.2 NTLMv2 response (NTProofStr), 4.2.4.1.2 session base key.
    assert_eq!(out.nt_proof.to_vec(), hex("68cd0ab851e51c96aabc927bebef6a1c"));
    assert_eq!(out.session_base_key.to_vec(), hex("8de40ccadbc14a82f15cb0ad0de95ca3"));
    // 4.2.4.2.3 encrypted session key: the last field of the AUTHENTICATE message.
    let m = &out.message;
    let key_len = u16::from_le_bytes([m[52], m[53]]) as usize;
    let key_at = u32::from_le_bytes([m[56], m[57], m[58], m[59]]) as usize;
    assert_eq!(
        m[key_at..key_at + key_len].to_vec(),
        hex("c5dad2544fc9799094ce1ce90bc9d03e")
    );
    // 4.2.4.2.1 LMv2 response (no timestamp in this CHALLENGE).
    let lm_at = u32::from_le_bytes([m[16], m[17], m[18], m[19]]) as usize;
    assert_eq!(m[lm_at..lm_at + 16].to_vec(), hex("86c35097ac9cec102554764a57cccc19"));
    assert_eq!(out.exported_session_key, SESSION_KEY);
}

#[test]
fn with_a_mic_the_message_carries_one_and_msv_av_flags() {
    let challenge = include_bytes!("data/smb/nlmp-4.2.4.3-challenge.bin");
    let input = AuthInput {
        with_mic: true,
        ..spec_input()
    };
    let out = ntlmv2::authenticate(&ntlmv2::encode_negotiate(), challenge, &input).unwrap();
    assert_ne!(out.message[72..88], [0u8; 16]);
    // MsvAvFlags (6) with 0x2 precedes MsvAvEOL in the echoed target information.
    assert!(out.message.windows(8).any(|w| w == [6, 0, 4, 0, 2, 0, 0, 0]));
    for cut in 0..challenge.len() {
        let _ = ntlmv2::authenticate(&ntlmv2::encode_negotiate(), &challenge[..cut], &input);
    }
}

#[test]
fn channel_binding_hash_and_spn_match_pyspnego() {
    // pyspnego 0.11: md5(GssChannelBindings(application_data=b"tls-server-end-point:" + bytes(range(32))).pack())
    let mut data = b"tls-server-end-point:".to_vec();
    data.extend(0u8..32);
    let hash = ntlmv2::channel_binding_hash(&data);
    assert_eq!(hash.to_vec(), hex("8f1214c9c9cab8dc3bf866da9aba57a7"));

    let challenge = include_bytes!("data/smb/nlmp-4.2.4.3-challenge.bin");
    let input = AuthInput {
        with_mic: true,
        channel_bindings: Some(hash),
        target_spn: Some("HTTP/ex1"),
        ..spec_input()
    };
    let out = ntlmv2::authenticate(&ntlmv2::encode_negotiate(), challenge, &input).unwrap();
    // MsvAvChannelBindings (10) and MsvAvTargetName (9) sit in the echoed target information.
    let mut cbt = vec![10, 0, 16, 0];
    cbt.extend_from_slice(&hash);
    assert!(out.message.windows(cbt.len()).any(|w| w == cbt.as_slice()));
    let spn: Vec<u8> = [9u8, 0, 16, 0]
        .into_iter()
        .chain("HTTP/ex1".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    assert!(out.message.windows(spn.len()).any(|w| w == spn.as_slice()));
}

#[test]
fn session_keys_match_the_known_answer() {
    let client = Sealer::new(&SESSION_KEY, Direction::ClientToServer, FLAGS);
    let server = Sealer::new(&SESSION_KEY, Direction::ServerToClient, FLAGS);
    assert_eq!(client.sign_key().to_vec(), hex("4788dc861b4782f35d43fd98fe1a2d39"));
    assert_eq!(server.sign_key().to_vec(), hex("d04d6f10741041d1d246d64188d7a8ad"));
}

const ENVELOPE: &str = "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"/>";

#[test]
fn client_messages_seal_to_the_known_bytes_and_bodies() {
    let mut client = Sealer::new(&SESSION_KEY, Direction::ClientToServer, FLAGS);
    let cases = [
        (
            ENVELOPE.as_bytes(),
            "0100000006bb69ed8d379d0b00000000",
            "38965720b06f3ab0981031e19c761b68fc657cbb84fc437f7a451bec1397888c28d4b44c2334837849d747d5070d77bee871ec3f27c212706a3fd3b19a6dc1",
        ),
        (b"second message".as_slice(), "0100000080f327b30474a39701000000", "891a283ad5b9d86ad04ddb8c4fd8"),
    ];
    for (plaintext, signature, ciphertext) in cases {
        let (sig, sealed) = client.seal(plaintext);
        assert_eq!(sig.to_vec(), hex(signature));
        assert_eq!(sealed, hex(ciphertext));
        let body = httpenc::encode(plaintext.len(), &sig, &sealed);
        let parsed = httpenc::decode(&body).unwrap();
        assert_eq!(
            (parsed.original_len, parsed.signature, parsed.sealed),
            (plaintext.len(), sig, sealed.as_slice())
        );
    }
    // The second body, byte for byte as pyspnego framed it.
    let body = hex(concat!(
        "2d2d456e6372797074656420426f756e646172790d0a09436f6e74656e742d547970653a206170706c69636174696f6e2f485454502d53504e45474f2d73657373696f6e2d656e637279707465640d0a",
        "094f726967696e616c436f6e74656e743a20747970653d6170706c69636174696f6e2f736f61702b786d6c3b636861727365743d5554462d383b4c656e6774683d31340d0a",
        "2d2d456e6372797074656420426f756e646172790d0a09436f6e74656e742d547970653a206170706c69636174696f6e2f6f637465742d73747265616d0d0a",
        "100000000100000080f327b30474a39701000000891a283ad5b9d86ad04ddb8c4fd82d2d456e6372797074656420426f756e646172792d2d0d0a"
    ));
    let sig: [u8; 16] = hex("0100000080f327b30474a39701000000").try_into().unwrap();
    assert_eq!(httpenc::encode(14, &sig, &hex("891a283ad5b9d86ad04ddb8c4fd8")), body);
}

#[test]
fn the_servers_first_message_unseals_and_a_wrong_signature_is_refused() {
    let mut server_view = Sealer::new(&SESSION_KEY, Direction::ServerToClient, FLAGS);
    let sig: [u8; 16] = hex("0100000094c3e47912ffc0e400000000").try_into().unwrap();
    let sealed = hex("7a7b27f23fcc788547b442f75b3640498aea67b6036b106c65e84297b56f1e18c2ddfbc86f21e087a1598e5878a17b2f8f17300b459ed16182a6ecd41a9fd7");
    let mut replay = server_view.clone();
    assert_eq!(server_view.unseal(&sig, &sealed).unwrap(), ENVELOPE.as_bytes());
    let mut bad = sig;
    bad[5] ^= 1;
    assert!(replay.unseal(&bad, &sealed).is_err());
}
