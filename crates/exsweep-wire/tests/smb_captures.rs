//! Known-bytes tests: SMB1/SMB2 NEGOTIATE and SESSION_SETUP messages exchanged between a
//! hand-made probe (`smb_probe.py`, no SMB library) and two Samba 4.17.12 servers, recorded with
//! tshark (tests/data/smb/MANIFEST.md): `min2` (`server min protocol = SMB2_02`, NetBIOS name
//! EXCAPTURE) and `nt1` (`server min protocol = NT1`, EXCAPNT1); plus the CHALLENGE_MESSAGE
//! example of [MS-NLMP] 4.2.4.3. Expected values are tshark's decoding (manifest-table.md,
//! decoded.txt) and the specification's, not computed by this crate.
//!
//! The files hold SMB messages without the 4-byte direct-TCP header; our encoders return whole
//! frames, so their first 4 bytes are checked and cut off before comparing.

use exsweep_wire::ntlm::{self, Challenge, NtlmVersion, TargetInfo};
use exsweep_wire::smbprobe::{self, Smb1Answer, Smb2Negotiated, STATUS_MORE_PROCESSING_REQUIRED};

macro_rules! capture {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/smb/", $name)).as_slice()
    };
}

const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/smb");

/// SMB2 ServerGuid of each server: its lower-case NetBIOS name in ASCII, NUL-padded (MANIFEST.md,
/// "SMB2 NEGOTIATE responses"; tshark prints 61637865-7470-7275-6500-... and 61637865-6e70-3174-...).
const GUID_EXCAPTURE: [u8; 16] = *b"excapture\0\0\0\0\0\0\0";
const GUID_EXCAPNT1: [u8; 16] = *b"excapnt1\0\0\0\0\0\0\0\0";

/// The message inside one of our frames, after checking that the header announces its length.
fn unframe(frame: &[u8]) -> &[u8] {
    let len = smbprobe::frame_len([frame[0], frame[1], frame[2], frame[3]]).unwrap();
    assert_eq!(len, frame.len() - 4);
    &frame[4..]
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn challenge8(hex: &str) -> [u8; 8] {
    unhex(hex).try_into().unwrap()
}

/// Offsets at which two byte strings of the same length differ.
fn differing(ours: &[u8], theirs: &[u8]) -> Vec<usize> {
    assert_eq!(ours.len(), theirs.len(), "lengths");
    (0..ours.len()).filter(|&i| ours[i] != theirs[i]).collect()
}

/// The FILETIME (100 ns units since 1601-01-01 UTC) of a UTC time as tshark prints it, so the
/// expected MsvAvTimestamp is the manifest's text, not a number computed from the bytes.
fn filetime(year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64, nanos: i64) -> u64 {
    // Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let unix = days * 86_400 + hour * 3600 + minute * 60 + second;
    ((unix + 11_644_473_600) * 10_000_000 + nanos / 100) as u64
}

#[test]
fn filetime_helper_agrees_with_known_dates() {
    // The Unix epoch and 2000-01-01, as FILETIMEs ([MS-DTYP] 2.3.3).
    assert_eq!(filetime(1970, 1, 1, 0, 0, 0, 0), 116_444_736_000_000_000);
    assert_eq!(filetime(2000, 1, 1, 0, 0, 0, 0), 125_911_584_000_000_000);
}

/// What Samba 4.17 puts in every CHALLENGE (MANIFEST.md, "The CHALLENGE"; tshark, manifest-table.md
/// rows 04/08/22/26/30): flags 0xe28a8235, TargetName and both NetBIOS AV pairs = the NetBIOS
/// name, MsvAvDnsDomainName present but empty, MsvAvDnsComputerName "vm", no DnsTreeName,
/// Version 6.1 build 0 NTLM revision 15.
fn samba_challenge(name: &str, server_challenge: &str, timestamp: u64) -> Challenge {
    Challenge {
        flags: 0xe28a_8235,
        target_name: name.into(),
        server_challenge: challenge8(server_challenge),
        target_info: TargetInfo {
            nb_computer_name: Some(name.into()),
            nb_domain_name: Some(name.into()),
            dns_computer_name: Some("vm".into()),
            dns_domain_name: Some(String::new()),
            dns_tree_name: None,
            timestamp: Some(timestamp),
        },
        version: Some(NtlmVersion {
            major: 6,
            minor: 1,
            build: 0,
            ntlm_revision: 15,
        }),
    }
}

#[test]
fn smb1_nt_lm_only_negotiate_is_refused_by_the_smb2_only_server() {
    // manifest-table.md 10 and 12 (with and without EXTENDED_SECURITY asked): 37 bytes, SMB1
    // status 0, WordCount 1, DialectIndex 65535 ("none of the listed dialects").
    for msg in [
        capture!("10-min2-smb1-nt1-negotiate-resp.bin"),
        capture!("12-min2-smb1-nt1-noext-negotiate-resp.bin"),
    ] {
        assert_eq!(msg.len(), 37);
        assert_eq!(
            smbprobe::decode_smb1_negotiate_response(msg).unwrap(),
            Smb1Answer::Refused {
                status: 0,
                dialect_index: Some(0xFFFF),
            }
        );
    }
}

#[test]
fn smb1_nt_lm_only_negotiate_is_accepted_by_the_nt1_server() {
    // manifest-table.md 28: DialectIndex 0, SecurityMode 0x03, Capabilities 0x8080f3fd
    // (EXTENDED_SECURITY set); 32 (EXTENDED_SECURITY not asked): Capabilities 0x0080f3fd.
    assert_eq!(
        smbprobe::decode_smb1_negotiate_response(capture!("28-nt1-smb1-nt1-negotiate-resp.bin")).unwrap(),
        Smb1Answer::Accepted {
            security_mode: 0x03,
            capabilities: 0x8080_f3fd,
            extended_security: true,
        }
    );
    assert_eq!(
        smbprobe::decode_smb1_negotiate_response(capture!("32-nt1-smb1-nt1-noext-negotiate-resp.bin")).unwrap(),
        Smb1Answer::Accepted {
            security_mode: 0x03,
            capabilities: 0x0080_f3fd,
            extended_security: false,
        }
    );
}

#[test]
fn multi_protocol_negotiate_is_answered_in_smb2() {
    // manifest-table.md 14/34 ("NT LM 0.12", "SMB 2.002", "SMB 2.???"): SMB2, dialect 0x02ff;
    // 18/38 ("NT LM 0.12", "SMB 2.002"): SMB2, dialect 0x0202. Both servers alike.
    for (msg, dialect, name) in [
        (capture!("14-min2-smb1-multi-negotiate-resp.bin"), 0x02FF, "2.???"),
        (capture!("34-nt1-smb1-multi-negotiate-resp.bin"), 0x02FF, "2.???"),
        (capture!("18-min2-smb1-nt1-2002-negotiate-resp.bin"), 0x0202, "2.0.2"),
        (capture!("38-nt1-smb1-nt1-2002-negotiate-resp.bin"), 0x0202, "2.0.2"),
    ] {
        assert_eq!(
            smbprobe::decode_smb1_negotiate_response(msg).unwrap(),
            Smb1Answer::Smb2 { dialect }
        );
        assert_eq!(smbprobe::dialect_name(dialect), name);
    }
}

#[test]
fn our_smb1_negotiate_is_the_probes_request_byte_for_byte() {
    let ours = smbprobe::encode_smb1_negotiate();
    let msg = unframe(&ours);
    // smb_probe.py built its request from [MS-CIFS] 2.2.4.52.1 on its own (MANIFEST.md, "The
    // requests"): FLAGS 0x18, FLAGS2 0xc801, TID 0xffff, PIDLow 0xfeff, one dialect. Same 47 bytes,
    // sent to both servers.
    assert_eq!(msg, capture!("09-min2-smb1-nt1-negotiate-req.bin"));
    assert_eq!(msg, capture!("27-nt1-smb1-nt1-negotiate-req.bin"));
    // WordCount 0, ByteCount 12, the dialect buffer.
    assert_eq!(&msg[32..], b"\x00\x0c\x00\x02NT LM 0.12\x00");
    // The probe's `-noext` variant differs only in FLAGS2 (0xc001: no EXTENDED_SECURITY).
    assert_eq!(
        differing(msg, capture!("11-min2-smb1-nt1-noext-negotiate-req.bin")),
        [11]
    );
}

#[test]
fn smb2_negotiate_responses() {
    // manifest-table.md: Dialect, SecurityMode 0x01 (signing enabled, not required), ServerGuid,
    // Capabilities (0x0f for 3.1.1, 0x01 for 2.0.2, 0x07 for the 0x02ff wildcard answer).
    let cases: [(&[u8], u16, u32, [u8; 16]); 10] = [
        (
            capture!("02-min2-smb2-311-negotiate-resp.bin"),
            0x0311,
            0x0f,
            GUID_EXCAPTURE,
        ),
        (
            capture!("06-min2-smb2-202-negotiate-resp.bin"),
            0x0202,
            0x01,
            GUID_EXCAPTURE,
        ),
        (
            capture!("14-min2-smb1-multi-negotiate-resp.bin"),
            0x02FF,
            0x07,
            GUID_EXCAPTURE,
        ),
        (
            capture!("16-min2-smb1-multi-then-smb2-negotiate-resp.bin"),
            0x0311,
            0x0f,
            GUID_EXCAPTURE,
        ),
        (
            capture!("18-min2-smb1-nt1-2002-negotiate-resp.bin"),
            0x0202,
            0x01,
            GUID_EXCAPTURE,
        ),
        (
            capture!("20-nt1-smb2-311-negotiate-resp.bin"),
            0x0311,
            0x0f,
            GUID_EXCAPNT1,
        ),
        (
            capture!("24-nt1-smb2-202-negotiate-resp.bin"),
            0x0202,
            0x01,
            GUID_EXCAPNT1,
        ),
        (
            capture!("34-nt1-smb1-multi-negotiate-resp.bin"),
            0x02FF,
            0x07,
            GUID_EXCAPNT1,
        ),
        (
            capture!("36-nt1-smb1-multi-then-smb2-negotiate-resp.bin"),
            0x0311,
            0x0f,
            GUID_EXCAPNT1,
        ),
        (
            capture!("38-nt1-smb1-nt1-2002-negotiate-resp.bin"),
            0x0202,
            0x01,
            GUID_EXCAPNT1,
        ),
    ];
    for (msg, dialect, capabilities, server_guid) in cases {
        assert_eq!(
            smbprobe::decode_smb2_negotiate_response(msg).unwrap(),
            Smb2Negotiated {
                dialect,
                signing_required: false,
                server_guid,
                capabilities,
            },
            "dialect {dialect:#06x}"
        );
    }
}

#[test]
fn our_smb2_negotiate_vs_the_probes() {
    // smb_probe.py's ClientGuid: 10 11 .. 1f (MANIFEST.md, "The requests").
    let client_guid: [u8; 16] = std::array::from_fn(|i| 0x10 + i as u8);
    let ours = smbprobe::encode_smb2_negotiate(client_guid);
    let msg = unframe(&ours);
    // SMB2 header, then StructureSize 36, DialectCount 4, SecurityMode 1 (signing enabled),
    // ClientGuid at 76, the dialects at 100.
    assert_eq!(msg.len(), 64 + 36 + 2 * 4);
    assert_eq!((le16(msg, 64), le16(msg, 66), le16(msg, 68)), (36, 4, 1));
    assert_eq!(&msg[76..92], &client_guid);
    let dialects: Vec<u16> = (0..4).map(|i| le16(msg, 100 + 2 * i)).collect();
    assert_eq!(dialects, smbprobe::SMB2_DIALECTS);

    // The probe's 2.0.2-only NEGOTIATE (05, 102 bytes) has the same layout. It differs from ours
    // in CreditRequest (byte 14: 31, we 1), ProcessId (bytes 32..34: 0xfeff, we 0), DialectCount
    // (byte 66: 1, we 4) and Capabilities (byte 72: 0x7f, we 0), and stops after 0x0202 where
    // we go on with 0x0210 0x0300 0x0302.
    let probe = capture!("05-min2-smb2-202-negotiate-req.bin");
    assert_eq!(differing(&msg[..probe.len()], probe), [14, 32, 33, 66, 72]);
    assert_eq!(le16(probe, 100), smbprobe::SMB2_DIALECTS[0]);

    // The probe's 3.1.1 NEGOTIATE (01) offers our four dialects in our order, then 0x0311 with
    // negotiate contexts (which we leave out on purpose, see SMB2_DIALECTS).
    let probe = capture!("01-min2-smb2-311-negotiate-req.bin");
    let offered: Vec<u16> = (0..usize::from(le16(probe, 66)))
        .map(|i| le16(probe, 100 + 2 * i))
        .collect();
    assert_eq!(offered, [0x0202, 0x0210, 0x0300, 0x0302, 0x0311]);
    assert_eq!(offered[..4], smbprobe::SMB2_DIALECTS);
}

#[test]
fn smb2_session_setup_answers_carry_the_servers_challenge() {
    // (message, byte of the message where the CHALLENGE starts, NetBIOS name, ServerChallenge,
    // MsvAvTimestamp as tshark prints it): manifest-table.md 04 and 22 (SPNEGO negTokenResp, the
    // CHALLENGE at byte 103), 08 and 26 (bare NTLMSSP, at byte 72); MANIFEST.md "SESSION_SETUP
    // response".
    let cases = [
        (
            capture!("04-min2-smb2-311-sessionsetup-resp.bin"),
            103,
            "EXCAPTURE",
            "1bcbedee068fb9a1",
            filetime(2026, 11, 28, 4, 36, 22, 380_066_000),
        ),
        (
            capture!("08-min2-smb2-202-sessionsetup-rawntlmssp-resp.bin"),
            72,
            "EXCAPTURE",
            "5e79207a0cd15ac1",
            filetime(2026, 11, 28, 4, 36, 23, 887_316_000),
        ),
        (
            capture!("22-nt1-smb2-311-sessionsetup-resp.bin"),
            103,
            "EXCAPNT1",
            "5c9726e78053823a",
            filetime(2026, 11, 28, 4, 36, 28, 410_855_000),
        ),
        (
            capture!("26-nt1-smb2-202-sessionsetup-rawntlmssp-resp.bin"),
            72,
            "EXCAPNT1",
            "b81cf5f29aa65ca5",
            filetime(2026, 11, 28, 4, 36, 29, 916_928_000),
        ),
    ];
    for (msg, at, name, server_challenge, timestamp) in cases {
        let (status, blob) = smbprobe::decode_smb2_session_setup_response(msg).unwrap();
        assert_eq!(status, STATUS_MORE_PROCESSING_REQUIRED, "{name}");
        assert_eq!(status, 0xC000_0016);
        // SecurityBufferOffset 0x48: the blob runs from byte 72 to the end of the message.
        assert_eq!(blob, &msg[72..], "{name}");
        // find_challenge answers a slice of the blob: in the SPNEGO case 31 bytes in, past the
        // negTokenResp framing (a1 81 ae 30 81 ab ... 04 81 92).
        let found = ntlm::find_challenge(blob).unwrap();
        assert_eq!(blob.len() - found.len(), at - 72, "{name}");
        assert_eq!(found, &msg[at..], "{name}");

        let challenge = ntlm::decode_challenge(found).unwrap();
        assert_eq!(challenge, samba_challenge(name, server_challenge, timestamp));
        assert_eq!(challenge.version.unwrap().to_string(), "6.1.0");

        // TargetInfoFields: Len 72 at offset 74 for EXCAPTURE, 68 at 72 for EXCAPNT1 (MANIFEST.md,
        // "The CHALLENGE"); the AV pairs alone decode to the same target information.
        let (len, offset) = (usize::from(le16(found, 40)), le32(found, 44) as usize);
        assert_eq!((len, offset), if name == "EXCAPTURE" { (72, 74) } else { (68, 72) });
        assert_eq!(
            ntlm::decode_target_info(&found[offset..offset + len]).unwrap(),
            challenge.target_info
        );
    }
}

#[test]
fn smb1_session_setup_answer_carries_the_same_challenge() {
    // manifest-table.md 30: SMB1 status 0xc0000016, the CHALLENGE at byte 74 (MANIFEST.md), and
    // after it the rest of the SMB1 message (NativeOS, NativeLanMan), which the decoder ignores.
    let msg = capture!("30-nt1-smb1-nt1-sessionsetup-resp.bin");
    assert_eq!(le32(msg, 5), STATUS_MORE_PROCESSING_REQUIRED);
    let found = ntlm::find_challenge(msg).unwrap();
    assert_eq!(msg.len() - found.len(), 74);
    assert_eq!(
        ntlm::decode_challenge(found).unwrap(),
        samba_challenge(
            "EXCAPNT1",
            "d3602c228f30f952",
            filetime(2026, 11, 28, 4, 36, 31, 423_736_000)
        )
    );
}

/// [MS-NLMP] 4.2.4.3 (NTLMv2 Authentication, Messages): the CHALLENGE_MESSAGE, as printed in the
/// specification.
const NLMP_4_2_4_3_CHALLENGE: &str = "
    4e544c4d53535000 02000000 0c000c0038000000 33828ae2 0123456789abcdef 0000000000000000
    2400240044000000 060070170000000f 530065007200760065007200
    02000c00 44006f006d00610069006e00 01000c00 530065007200760065007200 00000000";

#[test]
fn nlmp_4_2_4_3_example_challenge() {
    let msg = capture!("nlmp-4.2.4.3-challenge.bin");
    assert_eq!(msg, unhex(NLMP_4_2_4_3_CHALLENGE));
    assert_eq!(ntlm::find_challenge(msg), Some(msg));
    let challenge = ntlm::decode_challenge(msg).unwrap();
    // [MS-NLMP] 4.2.4 lists these inputs: flags 0xe28a8233 (`33 82 8a e2`), ServerChallenge
    // 01 23 45 67 89 ab cd ef, the AV pairs MsvAvNbDomainName "Domain" and MsvAvNbComputerName
    // "Server"; the message's TargetName is "Server" and its VERSION 6.0 build 6000 revision 15.
    // No timestamp: a client must use its own clock.
    assert_eq!(
        challenge,
        Challenge {
            flags: 0xe28a_8233,
            target_name: "Server".into(),
            server_challenge: [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef],
            target_info: TargetInfo {
                nb_domain_name: Some("Domain".into()),
                nb_computer_name: Some("Server".into()),
                ..TargetInfo::default()
            },
            version: Some(NtlmVersion {
                major: 6,
                minor: 0,
                build: 6000,
                ntlm_revision: 15,
            }),
        }
    );
    assert_eq!(challenge.version.unwrap().to_string(), "6.0.6000");
}

#[test]
fn our_session_setup_vs_the_probes() {
    let negotiate = ntlm::encode_negotiate();

    // In SPNEGO (the probe's 03).
    let ours = smbprobe::encode_smb2_session_setup(&smbprobe::spnego_init(&negotiate));
    let msg = unframe(&ours);
    let probe = capture!("03-min2-smb2-311-sessionsetup-req.bin");
    // StructureSize 25, SecurityBufferOffset 88, SecurityBufferLength 74 = 34 bytes of
    // NegTokenInit framing + the 40-byte NTLM NEGOTIATE; the same in the probe's.
    for m in [msg, probe] {
        assert_eq!((le16(m, 64), le16(m, 76), le16(m, 78)), (25, 88, 74));
    }
    assert_eq!(&msg[88 + 34..], negotiate.as_slice());
    // The NegTokenInit framing (mechTypes = NTLMSSP only) is the probe's byte for byte.
    assert_eq!(&msg[88..88 + 34], &probe[88..88 + 34]);
    // The rest differs in: CreditRequest (byte 14: probe 31, we 1), ProcessId (32..34: probe
    // 0xfeff, we 0), Capabilities (68: probe 0x1 DFS, we 0); in the NTLM NEGOTIATE at 122, its
    // flags (+12, +15) and its VERSION (+32, +34, +35: probe 10.0 build 19041, we zeros; minor
    // and the NTLM revision 15 agree).
    assert_eq!(differing(msg, probe), [14, 32, 33, 68, 134, 137, 154, 156, 157]);
    // The flags differ by SIGN, SEAL and KEY_EXCH only (probe 0xe2888237, we 0xa2888207).
    assert_eq!((le32(probe, 122 + 12), le32(msg, 122 + 12)), (0xe288_8237, 0xa288_8207));
    assert_eq!(
        le32(probe, 122 + 12) ^ le32(msg, 122 + 12),
        0x0000_0010 | 0x0000_0020 | 0x4000_0000
    );

    // Bare NTLMSSP (the probe's 07): the same differences, the NEGOTIATE now at 88.
    let ours = smbprobe::encode_smb2_session_setup(&negotiate);
    let msg = unframe(&ours);
    let probe = capture!("07-min2-smb2-202-sessionsetup-rawntlmssp-req.bin");
    assert_eq!((le16(msg, 64), le16(msg, 76), le16(msg, 78)), (25, 88, 40));
    assert_eq!(&msg[88..], negotiate.as_slice());
    assert_eq!(differing(msg, probe), [14, 32, 33, 68, 100, 103, 120, 122, 123]);
}

fn every_ntlm_decoder(bytes: &[u8]) {
    let _ = ntlm::decode_target_info(bytes);
    let _ = ntlm::decode_challenge(bytes);
    if let Some(challenge) = ntlm::find_challenge(bytes) {
        let _ = ntlm::decode_challenge(challenge);
        // The AV pairs where the (possibly mangled) TargetInfoFields point, read without trusting them.
        let _ = ntlm::decode_target_info(ntlm::raw_target_info(challenge));
    }
}

fn every_smb_decoder(msg: &[u8]) {
    let _ = smbprobe::decode_smb1_negotiate_response(msg);
    let _ = smbprobe::decode_smb2_negotiate_response(msg);
    if let Ok((_, blob)) = smbprobe::decode_smb2_session_setup_response(msg) {
        every_ntlm_decoder(blob);
    }
    every_ntlm_decoder(msg);
    if let Some(header) = msg.get(..4) {
        let _ = smbprobe::frame_len([header[0], header[1], header[2], header[3]]);
    }
}

/// Every captured message (responses, and the requests and the spec's CHALLENGE too), cut at
/// every length and with each byte in turn XORed with 0xff, through every SMB and NTLM decoder:
/// a value or an error, never a panic.
#[test]
fn mangled_messages_never_panic() {
    let mut seen = 0;
    for entry in std::fs::read_dir(DATA_DIR).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "bin") {
            continue;
        }
        let mut msg = std::fs::read(&path).unwrap();
        seen += 1;
        for cut in 0..=msg.len() {
            every_smb_decoder(&msg[..cut]);
        }
        for i in 0..msg.len() {
            msg[i] ^= 0xff;
            every_smb_decoder(&msg);
            msg[i] ^= 0xff;
        }
    }
    assert_eq!(seen, 39);
}
