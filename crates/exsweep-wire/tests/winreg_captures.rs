//! Known-bytes tests: real DCE/RPC PDUs captured between impacket 0.13.1 and Samba 4.17.12
//! (tests/data/winreg/MANIFEST.md). Expected values were read off tshark and Samba's ndrdump,
//! not computed by this crate.

mod common;

use common::{response_stub, stub_of_fragments};
use exsweep_wire::dcerpc::{self, BindOutcome, ResponseAssembler, NDR20};
use exsweep_wire::regvalue::RegData;
use exsweep_wire::winreg::{self, KeyHandle, Win32Status, WINREG_SYNTAX};

macro_rules! capture {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/winreg/", $name)).as_slice()
    };
}

fn handle(hex: &str) -> KeyHandle {
    KeyHandle(common::handle_bytes(hex))
}

const HKLM: &str = "01000000a8b1a4a0eb26ea4dae007ee149029fce";
const SUBKEY: &str = "0100000005b88d8518ccb842b977761081054971";

fn query(pdu: &[u8], call_id: u32) -> winreg::QueryValueResponse {
    winreg::decode_query_value_response(&response_stub(pdu, call_id)).unwrap()
}

#[test]
fn bind_request_matches_impacket_byte_for_byte() {
    assert_eq!(dcerpc::encode_bind(1, WINREG_SYNTAX), capture!("01-bind-req.bin"));
}

#[test]
fn bind_ack_from_samba() {
    let BindOutcome::Accepted(ack) = dcerpc::decode_bind_response(capture!("02-bind-ack.bin")).unwrap() else {
        panic!("not accepted")
    };
    assert_eq!(ack.call_id, 1);
    assert_eq!((ack.max_xmit_frag, ack.max_recv_frag), (4280, 4280));
    assert_eq!(ack.assoc_group_id, 0x0000_85f6);
    assert_eq!(ack.secondary_address, "\\pipe\\winreg");
    assert_eq!(ack.transfer_syntax, NDR20);
}

#[test]
fn bind_rejections_from_samba() {
    match dcerpc::decode_bind_response(capture!("78-bind-badversion-ack.bin")).unwrap() {
        BindOutcome::ContextRejected(ack) => assert_eq!((ack.result, ack.reason), (2, 1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        dcerpc::decode_bind_response(capture!("80-bind-noctx-nak.bin")).unwrap(),
        BindOutcome::Nak { call_id: 1, reason: 0 }
    );
}

#[test]
fn open_local_machine_both_ways() {
    let req = dcerpc::decode_request(capture!("03-openlocalmachine-req.bin")).unwrap();
    assert_eq!((req.header.call_id, req.opnum), (1, winreg::OPNUM_OPEN_LOCAL_MACHINE));
    // impacket asks for MAXIMUM_ALLOWED; with the same argument our stub is the same bytes.
    assert_eq!(winreg::encode_open_local_machine(0x0200_0000), req.stub);
    let resp = winreg::decode_open_key_response(&response_stub(capture!("04-openlocalmachine-resp.bin"), 1)).unwrap();
    assert_eq!(resp.handle, handle(HKLM));
    assert_eq!(resp.status, Win32Status::SUCCESS);
}

#[test]
fn open_key_found_and_missing() {
    let req = dcerpc::decode_request(capture!("05-openkey-req.bin")).unwrap();
    assert_eq!(req.opnum, winreg::OPNUM_OPEN_KEY);
    // Our request differs from impacket's only in referent id and dwOptions (impacket sends
    // 1, REG_OPTION_VOLATILE; we send 0): the name is counted the same way, NUL included.
    let ours = winreg::encode_open_key(&handle(HKLM), "SOFTWARE\\ExsweepCapture", 0x0200_0000);
    assert_eq!(ours.len(), req.stub.len());
    assert_eq!(&ours[..24], &req.stub[..24], "handle, Length 48, MaximumLength 48");
    assert_eq!(
        &ours[28..ours.len() - 8],
        &req.stub[28..req.stub.len() - 8],
        "counts and name"
    );

    let resp = winreg::decode_open_key_response(&response_stub(capture!("06-openkey-resp.bin"), 2)).unwrap();
    assert_eq!((resp.handle, resp.status), (handle(SUBKEY), Win32Status::SUCCESS));
    let resp = winreg::decode_open_key_response(&response_stub(capture!("38-openkey-missing-resp.bin"), 16)).unwrap();
    assert!(resp.handle.is_null());
    assert_eq!(resp.status, Win32Status::FILE_NOT_FOUND);
}

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
}

#[test]
fn query_value_of_every_type() {
    let cases: [(&[u8], u32, RegData); 8] = [
        (
            capture!("08-queryvalue-sz-resp.bin"),
            3,
            RegData::Sz("hello exsweep".into()),
        ),
        (
            capture!("10-queryvalue-expandsz-resp.bin"),
            4,
            RegData::ExpandSz("%SystemRoot%\\system32".into()),
        ),
        (
            capture!("12-queryvalue-multisz-resp.bin"),
            5,
            RegData::MultiSz(vec!["alpha".into(), "beta".into(), "gamma".into()]),
        ),
        (capture!("14-queryvalue-dword-resp.bin"), 6, RegData::Dword(0x1234_5678)),
        (
            capture!("16-queryvalue-dwordbe-resp.bin"),
            7,
            RegData::DwordBigEndian(0x1234_5678),
        ),
        (
            capture!("18-queryvalue-qword-resp.bin"),
            8,
            RegData::Qword(0x0102_0304_0506_0708),
        ),
        (
            capture!("20-queryvalue-binary-resp.bin"),
            9,
            RegData::Binary(vec![0xde, 0xad, 0xbe, 0xef, 0, 1, 2]),
        ),
        (
            capture!("22-queryvalue-none-resp.bin"),
            10,
            RegData::None(vec![1, 2, 3]),
        ),
    ];
    for (pdu, call_id, expected) in cases {
        let resp = query(pdu, call_id);
        assert_eq!(resp.status, Win32Status::SUCCESS, "call {call_id}");
        assert_eq!(resp.value_type, Some(expected.value_type()), "call {call_id}");
        let data = resp.data.unwrap();
        assert_eq!(resp.data_size, Some(data.len() as u32));
        assert_eq!(resp.data_len, Some(data.len() as u32));
        assert_eq!(
            RegData::decode(resp.value_type.unwrap(), &data),
            expected,
            "call {call_id}"
        );
    }
    let resp = query(capture!("08-queryvalue-sz-resp.bin"), 3);
    assert_eq!(resp.data.unwrap(), utf16z("hello exsweep"));
}

#[test]
fn query_value_with_a_non_ascii_name() {
    let req = dcerpc::decode_request(capture!("23-queryvalue-nonascii-req.bin")).unwrap();
    let name: Vec<u8> = "Größe-Ü€"
        .encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect();
    // handle (20), Length/MaximumLength (4), referent (4), counts (12), then the name.
    assert_eq!(&req.stub[40..40 + name.len()], name.as_slice());
    let resp = query(capture!("24-queryvalue-nonascii-resp.bin"), 11);
    assert_eq!(RegData::decode(1, &resp.data.unwrap()), RegData::Sz("wert-ä".into()));
}

#[test]
fn more_data_then_retry() {
    let resp = query(capture!("26-queryvalue-moredata-resp.bin"), 12);
    assert_eq!(resp.status, Win32Status::MORE_DATA);
    assert_eq!(resp.data_size, Some(28), "the size needed");
    assert_eq!(resp.data_len, Some(4));
    let resp = query(capture!("28-queryvalue-moredata-retry-resp.bin"), 13);
    assert_eq!(resp.status, Win32Status::SUCCESS);
    assert_eq!(
        RegData::decode(1, &resp.data.unwrap()),
        RegData::Sz("hello exsweep".into())
    );
}

fn big_binary() -> Vec<u8> {
    (0..10_000u32).map(|i| ((7 * i + 3) & 0xff) as u8).collect()
}

#[test]
fn ten_thousand_byte_value_reassembles_from_three_fragments() {
    let stub = stub_of_fragments(
        &[
            capture!("32-queryvalue-big-resp-frag1.bin"),
            capture!("33-queryvalue-big-resp-frag2.bin"),
            capture!("34-queryvalue-big-resp-frag3.bin"),
        ],
        14,
    );
    let resp = winreg::decode_query_value_response(&stub).unwrap();
    assert_eq!(resp.value_type, Some(3));
    assert_eq!(resp.data.unwrap(), big_binary());
    assert_eq!(resp.data_size, Some(10_000));

    // The request side: impacket's three fragments carry one stub.
    let frags: Vec<_> = [
        capture!("29-queryvalue-big-req-frag1.bin"),
        capture!("30-queryvalue-big-req-frag2.bin"),
        capture!("31-queryvalue-big-req-frag3.bin"),
    ]
    .iter()
    .map(|p| dcerpc::decode_request(p).unwrap())
    .collect();
    assert_eq!(frags.iter().map(|f| f.header.flags).collect::<Vec<_>>(), [1, 0, 2]);
    assert_eq!(frags.iter().map(|f| f.stub.len()).sum::<usize>(), 10_100);
}

#[test]
fn missing_value_is_file_not_found() {
    let resp = query(capture!("36-queryvalue-missing-resp.bin"), 15);
    assert_eq!(resp.status, Win32Status::FILE_NOT_FOUND);
}

#[test]
fn enum_key_until_no_more_items() {
    let names: Vec<_> = [
        (capture!("40-enumkey-0-resp.bin"), 17),
        (capture!("42-enumkey-1-resp.bin"), 18),
    ]
    .iter()
    .map(|(pdu, id)| {
        let r = winreg::decode_enum_key_response(&response_stub(pdu, *id)).unwrap();
        assert_eq!(r.status, Win32Status::SUCCESS);
        r.name.unwrap()
    })
    .collect();
    assert_eq!(names, ["SubKeyA", "SubKeyB"]);
    // Samba's last answer echoes a class buffer with Length > MaximumLength: still decoded.
    let end = winreg::decode_enum_key_response(&response_stub(capture!("44-enumkey-2-resp.bin"), 19)).unwrap();
    assert_eq!(end.status, Win32Status::NO_MORE_ITEMS);
}

#[test]
fn enum_value_names_types_and_data() {
    let expected = [
        ("46-enumvalue-00-resp.bin", 20, "SzValue", 1),
        ("48-enumvalue-01-resp.bin", 21, "ExpandSzValue", 2),
        ("50-enumvalue-02-resp.bin", 22, "MultiSzValue", 7),
        ("52-enumvalue-03-resp.bin", 23, "DwordValue", 4),
        ("54-enumvalue-04-resp.bin", 24, "DwordBEValue", 5),
        ("56-enumvalue-05-resp.bin", 25, "QwordValue", 11),
        ("58-enumvalue-06-resp.bin", 26, "BinaryValue", 3),
        ("60-enumvalue-07-resp.bin", 27, "NoneValue", 0),
        ("70-enumvalue-09-resp.bin", 30, "Größe-Ü€", 1),
    ];
    let pdus: [&[u8]; 9] = [
        capture!("46-enumvalue-00-resp.bin"),
        capture!("48-enumvalue-01-resp.bin"),
        capture!("50-enumvalue-02-resp.bin"),
        capture!("52-enumvalue-03-resp.bin"),
        capture!("54-enumvalue-04-resp.bin"),
        capture!("56-enumvalue-05-resp.bin"),
        capture!("58-enumvalue-06-resp.bin"),
        capture!("60-enumvalue-07-resp.bin"),
        capture!("70-enumvalue-09-resp.bin"),
    ];
    for ((file, call_id, name, value_type), pdu) in expected.iter().zip(pdus) {
        let r = winreg::decode_enum_value_response(&response_stub(pdu, *call_id)).unwrap();
        assert_eq!(r.status, Win32Status::SUCCESS, "{file}");
        assert_eq!(r.name.as_deref(), Some(*name), "{file}");
        assert_eq!(r.value_type, Some(*value_type), "{file}");
    }
    let more = winreg::decode_enum_value_response(&response_stub(capture!("62-enumvalue-08-resp.bin"), 28)).unwrap();
    assert_eq!(more.status, Win32Status::MORE_DATA);
    assert_eq!(more.name.as_deref(), Some("BigBinary"));
    let stub = stub_of_fragments(
        &[
            capture!("66-enumvalue-08-retry-resp-frag1.bin"),
            capture!("67-enumvalue-08-retry-resp-frag2.bin"),
            capture!("68-enumvalue-08-retry-resp-frag3.bin"),
        ],
        29,
    );
    let big = winreg::decode_enum_value_response(&stub).unwrap();
    assert_eq!(big.data.unwrap(), big_binary());
    let end = winreg::decode_enum_value_response(&response_stub(capture!("72-enumvalue-10-resp.bin"), 31)).unwrap();
    assert_eq!(end.status, Win32Status::NO_MORE_ITEMS);
    assert_eq!(end.name.as_deref(), Some(""));
}

#[test]
fn close_key_both_ways() {
    let req = dcerpc::decode_request(capture!("73-closekey-subkey-req.bin")).unwrap();
    assert_eq!(req.opnum, winreg::OPNUM_CLOSE_KEY);
    assert_eq!(winreg::encode_close_key(&handle(SUBKEY)), req.stub);
    for (pdu, id) in [
        (capture!("74-closekey-subkey-resp.bin"), 32),
        (capture!("76-closekey-hklm-resp.bin"), 33),
    ] {
        assert_eq!(
            winreg::decode_close_key_response(&response_stub(pdu, id)).unwrap(),
            Win32Status::SUCCESS
        );
    }
}

/// Every captured PDU, cut short or with a byte flipped, still decodes to a value or an
/// error: never a panic (the fuzz targets do the same at scale).
#[test]
fn mangled_captures_never_panic() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/winreg");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "bin") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        seen += 1;
        let mut variants = vec![bytes.clone()];
        for cut in [0, 1, 15, 16, 23, 24, bytes.len() / 2, bytes.len().saturating_sub(1)] {
            variants.push(bytes[..cut.min(bytes.len())].to_vec());
        }
        for i in (0..bytes.len()).step_by(3) {
            let mut v = bytes.clone();
            v[i] ^= 0xff;
            variants.push(v);
        }
        for v in &variants {
            exsweep_wire_fuzz_all(v);
        }
    }
    assert_eq!(seen, 80);
}

fn exsweep_wire_fuzz_all(bytes: &[u8]) {
    let _ = dcerpc::decode_bind_response(bytes);
    let _ = dcerpc::decode_request(bytes);
    let _ = dcerpc::split_pdus(bytes);
    let _ = ResponseAssembler::new(1).feed(bytes);
    let stub = bytes.get(24..).unwrap_or_default();
    let _ = winreg::decode_open_key_response(stub);
    let _ = winreg::decode_close_key_response(stub);
    let _ = winreg::decode_query_value_response(stub);
    let _ = winreg::decode_enum_key_response(stub);
    let _ = winreg::decode_enum_value_response(stub);
    for t in 0..12 {
        let _ = RegData::decode(t, stub);
    }
}
