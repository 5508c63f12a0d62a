//! Known-bytes tests: real DCE/RPC PDUs on `\pipe\svcctl` captured between impacket 0.13.1 and
//! Samba 4.17.12 (tests/data/svcctl/MANIFEST.md). Expected values were read off Samba's ndrdump
//! (`manifest-table.md`, `decoded.txt`) and agree with impacket's own decoding (`client.txt`) and
//! with Samba's `net rpc service` (`net.txt`); none of them is computed by this crate.

mod common;

use common::{response_stub, stub_of_fragments};
use exsweep_wire::dcerpc::{self, Assembled, BindOutcome, ResponseAssembler, ResponseFragment, MAX_FRAGMENT, NDR20};
use exsweep_wire::svcctl::{
    self, EnumServicesResponse, HandleResponse, ScHandle, ServiceEntry, ServiceStatus, SVCCTL_SYNTAX,
};
use exsweep_wire::winreg::Win32Status;

macro_rules! capture {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/svcctl/", $name)).as_slice()
    };
}

const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/svcctl");

fn handle(hex: &str) -> ScHandle {
    ScHandle(common::handle_bytes(hex))
}

// Context handles as ndrdump prints them (manifest-table.md, the response that returned each).
/// `04`: the SCM opened by the admin account (capuser).
const SCM: &str = "00000000964ef1cfb2768a48aeee7ccb668e9da2";
/// `65`: the SCM opened by the plain account (capplain).
const SCM_PLAIN: &str = "00000000e90be7239d94d042b652fd124615a88e";
/// `19`, `29`, `39`, `49`: the four services opened by capuser.
const SPOOLER: &str = "00000000b04b24accc53034aafa8ed60b110fd86";
const NETLOGON: &str = "00000000b115f9bc7e2e9e4984ce0ad367fc8ca5";
const REMOTE_REGISTRY: &str = "00000000d1329304a89baa4cb82931493a09d1cf";
const WINS: &str = "00000000045efbdde28564498efe3ce825d9d832";
/// `71`: RemoteRegistry opened by capplain.
const REMOTE_REGISTRY_PLAIN: &str = "0000000085da2883bbbb6147a41cc2254fa25b8c";
const NULL_HANDLE: ScHandle = ScHandle([0; 20]);

/// What impacket asked for (capture_client.py; access_mask 0x00000005 in every OpenSCManagerW and
/// OpenServiceW row but `78`): SC_MANAGER_CONNECT | SC_MANAGER_ENUMERATE_SERVICE of the SCM, and
/// SERVICE_QUERY_CONFIG (0x1) | SERVICE_QUERY_STATUS of each service.
const SCM_ACCESS: u32 = svcctl::SC_MANAGER_CONNECT | svcctl::SC_MANAGER_ENUMERATE_SERVICE;
const SERVICE_ACCESS: u32 = 0x0001 | svcctl::SERVICE_QUERY_STATUS;
/// `78`: SC_MANAGER_ALL_ACCESS.
const SC_MANAGER_ALL_ACCESS: u32 = 0x000f_003f;

/// The stub of one of impacket's requests, with its call id and opnum checked.
fn request_stub(pdu: &[u8], call_id: u32, opnum: u16) -> &[u8] {
    let req = dcerpc::decode_request(pdu).unwrap();
    assert_eq!((req.header.call_id, req.opnum, req.context_id), (call_id, opnum, 0));
    req.stub
}

fn handle_response(pdu: &[u8], call_id: u32) -> HandleResponse {
    svcctl::decode_handle_response(&response_stub(pdu, call_id)).unwrap()
}

fn enum_response(stub: &[u8]) -> EnumServicesResponse {
    svcctl::decode_enum_services_status_response(stub).unwrap()
}

/// Offsets at which two byte strings of the same length differ.
fn differing(ours: &[u8], theirs: &[u8]) -> Vec<usize> {
    assert_eq!(ours.len(), theirs.len(), "lengths");
    (0..ours.len()).filter(|&i| ours[i] != theirs[i]).collect()
}

/// Every `.bin` file of the capture, by name, in name order.
fn captures() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(DATA_DIR)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "bin"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// A SERVICE_STATUS; dwServiceSpecificExitCode, dwCheckPoint and dwWaitHint are 0 in every
/// capture (MANIFEST.md, last line).
fn status(service_type: u32, current_state: u32, controls_accepted: u32, win32_exit_code: u32) -> ServiceStatus {
    ServiceStatus {
        service_type,
        current_state,
        controls_accepted,
        win32_exit_code,
        ..ServiceStatus::default()
    }
}

/// Samba 4.17's four built-in services, in its order. Source: the ENUM_SERVICE_STATUSW records
/// ndrdump decoded in rows `10`, `12`/`13`, `17` and `69` of manifest-table.md (type, state,
/// controls, win32 exit: WINS has WERR_SERVICE_NEVER_STARTED = 1077); impacket (client.txt) and
/// `net rpc service list` (net.txt) list the same names and display names.
fn samba_builtin_services() -> Vec<ServiceEntry> {
    let entry = |name: &str, display_name: &str, s: ServiceStatus| ServiceEntry {
        name: name.into(),
        display_name: display_name.into(),
        status: s,
    };
    vec![
        entry("Spooler", "Print Spooler", status(0x110, 1, 1, 0)),
        entry("NETLOGON", "Net Logon", status(0x20, 1, 0, 0)),
        entry("RemoteRegistry", "Remote Registry Service", status(0x20, 4, 0, 0)),
        entry("WINS", "Windows Internet Name Service (WINS)", status(0x10, 1, 0, 1077)),
    ]
}

#[test]
fn bind_request_matches_impacket_byte_for_byte() {
    // Both sessions bound with call id 1 and context id 0 (manifest-table.md rows 01 and 62).
    assert_eq!(dcerpc::encode_bind(1, SVCCTL_SYNTAX), capture!("01-bind-req.bin"));
    assert_eq!(
        dcerpc::encode_bind(1, SVCCTL_SYNTAX),
        capture!("62-nonadmin-bind-req.bin")
    );
    // ndrdump: abstract syntax 367abb81-9844-35f1-ad32-98f038001003, if_version 2 (as 2.0).
    let bind = capture!("01-bind-req.bin");
    assert_eq!(&bind[32..48], &SVCCTL_SYNTAX.uuid);
    assert_eq!(&bind[48..52], &[2u8, 0, 0, 0]);
}

#[test]
fn bind_acks_from_samba() {
    // manifest-table.md rows 02 and 63: 4280/4280, the assoc_group, `\pipe\svcctl`, NDR 2.0.
    for (pdu, assoc_group_id) in [
        (capture!("02-bind-ack.bin"), 0x0000_ebdf),
        (capture!("63-nonadmin-bind-ack.bin"), 0x0000_d5cb),
    ] {
        let BindOutcome::Accepted(ack) = dcerpc::decode_bind_response(pdu).unwrap() else {
            panic!("not accepted")
        };
        assert_eq!(ack.call_id, 1);
        assert_eq!((ack.max_xmit_frag, ack.max_recv_frag), (4280, 4280));
        assert_eq!(ack.assoc_group_id, assoc_group_id);
        assert_eq!(ack.secondary_address, "\\pipe\\svcctl");
        assert_eq!((ack.result, ack.reason), (0, 0));
        assert_eq!(ack.transfer_syntax, NDR20);
    }
}

/// Every request and response of the capture is our framing of its stub: same header, flags,
/// alloc_hint (the whole stub), context id 0, cancel count 0.
#[test]
fn every_request_and_response_pdu_is_our_framing_of_its_stub() {
    let (mut requests, mut responses) = (0, 0);
    for (name, pdu) in captures() {
        if name.contains("bind") {
            continue;
        }
        if name.contains("-req") {
            let req = dcerpc::decode_request(&pdu).unwrap();
            let ours = dcerpc::encode_request(req.header.call_id, req.context_id, req.opnum, req.stub, MAX_FRAGMENT);
            assert_eq!(ours.len(), 1, "{name}");
            assert_eq!(ours[0], pdu, "{name}");
            requests += 1;
        } else {
            let ResponseFragment::Data {
                header,
                alloc_hint,
                stub,
            } = dcerpc::decode_response(&pdu).unwrap()
            else {
                panic!("{name}: a fault")
            };
            assert_eq!(
                dcerpc::encode_response(header.call_id, header.flags, alloc_hint, stub),
                pdu,
                "{name}"
            );
            responses += 1;
        }
    }
    assert_eq!((requests, responses), (37, 38));
}

#[test]
fn open_sc_manager_both_ways() {
    for (pdu, call_id, access) in [
        (capture!("03-openscmanager-req.bin"), 1, SCM_ACCESS),
        (capture!("64-nonadmin-openscmanager-req.bin"), 1, SCM_ACCESS),
        (
            capture!("78-nonadmin-openscmanager-allaccess-req.bin"),
            8,
            SC_MANAGER_ALL_ACCESS,
        ),
    ] {
        let stub = request_stub(pdu, call_id, svcctl::OPNUM_OPEN_SC_MANAGER);
        // ndrdump: MachineName '\\127.0.0.98'; DatabaseName NULL; access_mask as given.
        let ours = svcctl::encode_open_sc_manager(r"\\127.0.0.98", access);
        // impacket's stub is ours but for two things NDR leaves to the sender (MANIFEST.md,
        // "impacket's requests"): the MachineName referent id (bytes 0..4: impacket a random
        // 16-bit value, we 0x00020000; the top byte is 0 in both) and the 2 alignment bytes after
        // the 13 UTF-16 units of the name (bytes 42..44: impacket 0xbf 0xbf, we zeros).
        assert_eq!(differing(&ours, stub), [0, 1, 2, 42, 43], "call {call_id}");
        assert_eq!(&ours[..4], &0x0002_0000u32.to_le_bytes());
        assert_ne!(&stub[..4], &[0u8; 4], "impacket's MachineName pointer is not NULL");
        assert_eq!((&ours[42..44], &stub[42..44]), (&[0u8, 0][..], &[0xbfu8, 0xbf][..]));
    }

    // manifest-table.md 04 and 65: the handle, WERR_OK (the plain user may connect and enumerate);
    // 79: SC_MANAGER_ALL_ACCESS as the plain user, WERR_ACCESS_DENIED and an all-zero handle.
    assert_eq!(
        handle_response(capture!("04-openscmanager-resp.bin"), 1),
        HandleResponse {
            handle: handle(SCM),
            status: Win32Status::SUCCESS
        }
    );
    assert_eq!(
        handle_response(capture!("65-nonadmin-openscmanager-resp.bin"), 1),
        HandleResponse {
            handle: handle(SCM_PLAIN),
            status: Win32Status::SUCCESS
        }
    );
    let denied = handle_response(capture!("79-nonadmin-openscmanager-allaccess-resp.bin"), 8);
    assert_eq!(denied.status, Win32Status::ACCESS_DENIED);
    assert_eq!(denied.status, Win32Status(5));
    assert_eq!(denied.handle, NULL_HANDLE);
}

#[test]
fn open_service_both_ways() {
    // (request, response, call id, SCM handle, name, handle returned, offsets where impacket's
    // stub differs from ours); names, call ids and handles from manifest-table.md.
    let cases: [(&[u8], &[u8], u32, &str, &str, &str, &[usize]); 5] = [
        (
            capture!("18-openservice-spooler-req.bin"),
            capture!("19-openservice-spooler-resp.bin"),
            8,
            SCM,
            "Spooler",
            SPOOLER,
            &[],
        ),
        (
            capture!("28-openservice-netlogon-req.bin"),
            capture!("29-openservice-netlogon-resp.bin"),
            13,
            SCM,
            "NETLOGON",
            NETLOGON,
            &[50, 51],
        ),
        (
            capture!("38-openservice-remoteregistry-req.bin"),
            capture!("39-openservice-remoteregistry-resp.bin"),
            18,
            SCM,
            "RemoteRegistry",
            REMOTE_REGISTRY,
            &[62, 63],
        ),
        (
            capture!("48-openservice-wins-req.bin"),
            capture!("49-openservice-wins-resp.bin"),
            23,
            SCM,
            "WINS",
            WINS,
            &[42, 43],
        ),
        (
            capture!("70-nonadmin-openservice-remoteregistry-req.bin"),
            capture!("71-nonadmin-openservice-remoteregistry-resp.bin"),
            4,
            SCM_PLAIN,
            "RemoteRegistry",
            REMOTE_REGISTRY_PLAIN,
            &[62, 63],
        ),
    ];
    for (req, resp, call_id, scm, name, opened, pad) in cases {
        let stub = request_stub(req, call_id, svcctl::OPNUM_OPEN_SERVICE);
        let ours = svcctl::encode_open_service(&handle(scm), name, SERVICE_ACCESS);
        // Both send lpServiceName as a [string] ref array (no referent id) counted with its NUL.
        // When the name with its NUL is not a multiple of 4 bytes, 2 alignment bytes precede
        // dwDesiredAccess: impacket fills them with 0xbf, we with zeros, and NDR ignores them.
        // Spooler (8 units) needs none: its stub is ours byte for byte.
        assert_eq!(differing(&ours, stub), pad, "{name}");
        for &i in pad {
            assert_eq!((ours[i], stub[i]), (0, 0xbf), "{name} byte {i}");
        }
        assert_eq!(
            handle_response(resp, call_id),
            HandleResponse {
                handle: handle(opened),
                status: Win32Status::SUCCESS
            },
            "{name}"
        );
    }
}

#[test]
fn open_missing_service_is_service_does_not_exist() {
    let stub = request_stub(
        capture!("58-openservice-missing-req.bin"),
        28,
        svcctl::OPNUM_OPEN_SERVICE,
    );
    // 13 letters + NUL = 28 bytes, no alignment padding: impacket's stub is ours byte for byte.
    assert_eq!(
        svcctl::encode_open_service(&handle(SCM), "NoSuchService", SERVICE_ACCESS),
        stub
    );
    // manifest-table.md 59: all-zero handle, status 1060 (WERR_SERVICE_DOES_NOT_EXIST).
    let resp = handle_response(capture!("59-openservice-missing-resp.bin"), 28);
    assert_eq!(resp.status, svcctl::SERVICE_DOES_NOT_EXIST);
    assert_eq!(resp.status, Win32Status(1060));
    assert_eq!(resp.handle, NULL_HANDLE);
}

#[test]
fn handle_only_requests_match_impacket_byte_for_byte() {
    use exsweep_wire::svcctl::{OPNUM_CLOSE_SERVICE_HANDLE as CLOSE, OPNUM_QUERY_SERVICE_STATUS as QUERY};
    // (request, call id, opnum, the handle ndrdump shows in it): manifest-table.md.
    let cases: [(&[u8], u32, u16, &str); 12] = [
        (capture!("20-querystatus-spooler-req.bin"), 9, QUERY, SPOOLER),
        (capture!("30-querystatus-netlogon-req.bin"), 14, QUERY, NETLOGON),
        (
            capture!("40-querystatus-remoteregistry-req.bin"),
            19,
            QUERY,
            REMOTE_REGISTRY,
        ),
        (capture!("50-querystatus-wins-req.bin"), 24, QUERY, WINS),
        (
            capture!("72-nonadmin-querystatus-remoteregistry-req.bin"),
            5,
            QUERY,
            REMOTE_REGISTRY_PLAIN,
        ),
        (capture!("26-closeservice-spooler-req.bin"), 12, CLOSE, SPOOLER),
        (capture!("36-closeservice-netlogon-req.bin"), 17, CLOSE, NETLOGON),
        (
            capture!("46-closeservice-remoteregistry-req.bin"),
            22,
            CLOSE,
            REMOTE_REGISTRY,
        ),
        (capture!("56-closeservice-wins-req.bin"), 27, CLOSE, WINS),
        (capture!("60-closescm-req.bin"), 29, CLOSE, SCM),
        (
            capture!("74-nonadmin-closeservice-remoteregistry-req.bin"),
            6,
            CLOSE,
            REMOTE_REGISTRY_PLAIN,
        ),
        (capture!("76-nonadmin-closescm-req.bin"), 7, CLOSE, SCM_PLAIN),
    ];
    for (pdu, call_id, opnum, h) in cases {
        assert_eq!(
            svcctl::encode_handle_only(&handle(h)),
            request_stub(pdu, call_id, opnum),
            "call {call_id}"
        );
    }
}

#[test]
fn close_service_handle_answers_a_zero_handle_and_success() {
    // manifest-table.md: every CloseServiceHandle response is an all-zero handle and WERR_OK.
    for (pdu, call_id) in [
        (capture!("27-closeservice-spooler-resp.bin"), 12),
        (capture!("37-closeservice-netlogon-resp.bin"), 17),
        (capture!("47-closeservice-remoteregistry-resp.bin"), 22),
        (capture!("57-closeservice-wins-resp.bin"), 27),
        (capture!("61-closescm-resp.bin"), 29),
        (capture!("75-nonadmin-closeservice-remoteregistry-resp.bin"), 6),
        (capture!("77-nonadmin-closescm-resp.bin"), 7),
    ] {
        assert_eq!(
            handle_response(pdu, call_id),
            HandleResponse {
                handle: NULL_HANDLE,
                status: Win32Status::SUCCESS
            },
            "call {call_id}"
        );
    }
}

#[test]
fn query_service_status_of_each_service() {
    // manifest-table.md rows 21, 31, 41, 51, 73 (ndrdump QueryServiceStatus out); `net rpc
    // service status` says stopped / stopped / running / stopped (net.txt).
    let cases: [(&[u8], u32, ServiceStatus, &str); 5] = [
        (
            capture!("21-querystatus-spooler-resp.bin"),
            9,
            status(0x110, 1, 1, 0),
            "stopped",
        ),
        (
            capture!("31-querystatus-netlogon-resp.bin"),
            14,
            status(0x20, 1, 0, 0),
            "stopped",
        ),
        (
            capture!("41-querystatus-remoteregistry-resp.bin"),
            19,
            status(0x20, 4, 0, 0),
            "running",
        ),
        (
            capture!("51-querystatus-wins-resp.bin"),
            24,
            status(0x10, 1, 0, 1077),
            "stopped",
        ),
        (
            capture!("73-nonadmin-querystatus-remoteregistry-resp.bin"),
            5,
            status(0x20, 4, 0, 0),
            "running",
        ),
    ];
    for (pdu, call_id, expected, state) in cases {
        let (got, result) = svcctl::decode_query_service_status_response(&response_stub(pdu, call_id)).unwrap();
        assert_eq!(result, Win32Status::SUCCESS, "call {call_id}");
        assert_eq!(got, expected, "call {call_id}");
        assert_eq!(got.state_name(), state, "call {call_id}");
    }
}

#[test]
fn enum_services_requests_vs_impacket() {
    // With lpResumeIndex -> 0 (07, 09, 11, 68): the same bytes but for the pointer's referent id
    // (bytes 32..36: impacket a random 16-bit value, we 0x00020000; the top byte is 0 in both).
    for (pdu, call_id, scm, buffer) in [
        (capture!("07-enumservices-small-req.bin"), 3, SCM, 64),
        (capture!("09-enumservices-req.bin"), 4, SCM, 388),
        (capture!("11-enumservices-large-req.bin"), 5, SCM, 8192),
        (capture!("68-nonadmin-enumservices-req.bin"), 3, SCM_PLAIN, 388),
    ] {
        let stub = request_stub(pdu, call_id, svcctl::OPNUM_ENUM_SERVICES_STATUS);
        let ours = svcctl::encode_enum_services_status(
            &handle(scm),
            svcctl::SERVICE_WIN32,
            svcctl::SERVICE_STATE_ALL,
            buffer,
            Some(0),
        );
        assert_eq!(differing(&ours, stub), [32, 33, 34], "call {call_id}");
        assert_eq!(&stub[36..], &0u32.to_le_bytes(), "*lpResumeIndex");
    }
    // With lpResumeIndex NULL (05, 14/16 = impacket's own hREnumServicesStatusW, 66): byte for
    // byte, `resume: None` being the null pointer.
    for (pdu, call_id, scm, buffer) in [
        (capture!("05-enumservices-size0-req.bin"), 2, SCM, 0),
        (capture!("14-enumservices-impacket-req.bin"), 6, SCM, 0),
        (capture!("16-enumservices-impacket-retry-req.bin"), 7, SCM, 388),
        (capture!("66-nonadmin-enumservices-size0-req.bin"), 2, SCM_PLAIN, 0),
    ] {
        let stub = request_stub(pdu, call_id, svcctl::OPNUM_ENUM_SERVICES_STATUS);
        let ours = svcctl::encode_enum_services_status(
            &handle(scm),
            svcctl::SERVICE_WIN32,
            svcctl::SERVICE_STATE_ALL,
            buffer,
            None,
        );
        assert_eq!(ours, stub, "call {call_id}");
        assert_eq!(&stub[32..], &[0u8; 4], "NULL lpResumeIndex");
    }
}

#[test]
fn enum_services_with_too_small_a_buffer_is_more_data() {
    // manifest-table.md 06 (cbBufSize 0), 08 (cbBufSize 64, Samba sends 64 zero bytes), 15
    // (impacket's first call), 67 (plain user): pcbBytesNeeded 388, lpServicesReturned 0,
    // lpResumeIndex as it was sent, WERR_MORE_DATA (234).
    for (pdu, call_id, resume) in [
        (capture!("06-enumservices-size0-resp.bin"), 2, None),
        (capture!("08-enumservices-small-resp.bin"), 3, Some(0)),
        (capture!("15-enumservices-impacket-resp.bin"), 6, None),
        (capture!("67-nonadmin-enumservices-size0-resp.bin"), 2, None),
    ] {
        let resp = enum_response(&response_stub(pdu, call_id));
        assert_eq!(
            resp,
            EnumServicesResponse {
                services: vec![],
                bytes_needed: 388,
                resume,
                status: Win32Status::MORE_DATA
            },
            "call {call_id}"
        );
        assert_eq!(resp.status, Win32Status(234));
    }
}

#[test]
fn enum_services_lists_samba_builtin_services() {
    // manifest-table.md 10 (resume -> 0), 17 (impacket's retry, resume NULL), 69 (plain user: the
    // same list): 4 services, pcbBytesNeeded 388, WERR_OK.
    for (pdu, call_id, resume) in [
        (capture!("10-enumservices-resp.bin"), 4, Some(0)),
        (capture!("17-enumservices-impacket-retry-resp.bin"), 7, None),
        (capture!("69-nonadmin-enumservices-resp.bin"), 3, Some(0)),
    ] {
        let resp = enum_response(&response_stub(pdu, call_id));
        assert_eq!(
            resp,
            EnumServicesResponse {
                services: samba_builtin_services(),
                bytes_needed: 388,
                resume,
                status: Win32Status::SUCCESS,
            },
            "call {call_id}"
        );
        let states: Vec<_> = resp.services.iter().map(|s| s.status.state_name()).collect();
        assert_eq!(states, ["stopped", "stopped", "running", "stopped"]);
    }
}

#[test]
fn enum_services_8192_byte_answer_reassembles_from_two_fragments() {
    let frags = [
        capture!("12-enumservices-large-resp-frag1.bin"),
        capture!("13-enumservices-large-resp-frag2.bin"),
    ];
    // MANIFEST.md: frag1 first (0x01), alloc_hint 8216 = the whole stub; frag2 last (0x02),
    // alloc_hint 3960. Each is our framing of its part.
    for (pdu, flags, hint) in [
        (frags[0], dcerpc::PFC_FIRST_FRAG, 8216),
        (frags[1], dcerpc::PFC_LAST_FRAG, 3960),
    ] {
        let ResponseFragment::Data {
            header,
            alloc_hint,
            stub,
        } = dcerpc::decode_response(pdu).unwrap()
        else {
            panic!("a fault")
        };
        assert_eq!((header.call_id, header.flags, alloc_hint), (5, flags, hint));
        assert_eq!(dcerpc::encode_response(5, flags, hint, stub), pdu);
    }
    let stub = stub_of_fragments(&frags, 5);
    assert_eq!(stub.len(), 8216);
    // manifest-table.md 12/13: the same 4 records; Samba answers pcbBytesNeeded = cbBufSize (8192).
    assert_eq!(
        enum_response(&stub),
        EnumServicesResponse {
            services: samba_builtin_services(),
            bytes_needed: 8192,
            resume: Some(0),
            status: Win32Status::SUCCESS,
        }
    );
    // client.txt: the first 388 bytes of the buffer are the exact-size answer's buffer.
    let exact = response_stub(capture!("10-enumservices-resp.bin"), 4);
    assert_eq!(&stub[4..392], &exact[4..392]);
}

fn every_svcctl_decoder(stub: &[u8]) {
    let _ = svcctl::decode_handle_response(stub);
    let _ = svcctl::decode_query_service_status_response(stub);
    if let Ok(resp) = svcctl::decode_enum_services_status_response(stub) {
        for service in &resp.services {
            let _ = service.status.state_name();
        }
    }
}

/// The stub of every response in the capture (QueryServiceConfigW ones included, which no
/// decoder here reads), the 8192-byte enumeration reassembled from its two fragments.
fn all_response_stubs() -> Vec<Vec<u8>> {
    let mut stubs: Vec<Vec<u8>> = captures()
        .into_iter()
        .filter(|(name, _)| name.contains("-resp") && !name.contains("-frag"))
        .map(|(_, pdu)| {
            let call_id = dcerpc::Header::parse(&pdu).unwrap().call_id;
            response_stub(&pdu, call_id)
        })
        .collect();
    stubs.push(stub_of_fragments(
        &[
            capture!("12-enumservices-large-resp-frag1.bin"),
            capture!("13-enumservices-large-resp-frag2.bin"),
        ],
        5,
    ));
    stubs
}

/// Every response stub, cut at every length and with each byte in turn XORed with 0xff, through
/// every svcctl decoder: a value or an error, never a panic.
#[test]
fn mangled_response_stubs_never_panic() {
    let stubs = all_response_stubs();
    assert_eq!(stubs.len(), 37);
    for mut stub in stubs {
        for cut in 0..=stub.len() {
            every_svcctl_decoder(&stub[..cut]);
        }
        for i in 0..stub.len() {
            stub[i] ^= 0xff;
            every_svcctl_decoder(&stub);
            stub[i] ^= 0xff;
        }
    }
}

fn every_pdu_decoder(bytes: &[u8]) {
    let _ = dcerpc::decode_bind_response(bytes);
    let _ = dcerpc::decode_request(bytes);
    let _ = dcerpc::decode_response(bytes);
    let _ = dcerpc::split_pdus(bytes);
    if let Ok(Assembled::Complete(stub)) = ResponseAssembler::new(1).feed(bytes) {
        every_svcctl_decoder(&stub);
    }
    every_svcctl_decoder(bytes.get(24..).unwrap_or_default());
}

/// The same for every whole PDU (binds, requests, responses), through the DCE/RPC layer too.
#[test]
fn mangled_pdus_never_panic() {
    let mut seen = 0;
    for (_, mut pdu) in captures() {
        seen += 1;
        for cut in 0..=pdu.len() {
            every_pdu_decoder(&pdu[..cut]);
        }
        for i in 0..pdu.len() {
            pdu[i] ^= 0xff;
            every_pdu_decoder(&pdu);
            pdu[i] ^= 0xff;
        }
    }
    assert_eq!(seen, 79);
}
