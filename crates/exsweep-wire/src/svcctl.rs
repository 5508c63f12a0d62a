//! [MS-SCMR] Service Control Manager Remote Protocol: the read-only calls exsweep makes over
//! `\PIPE\svcctl` (open the SCM, list services with their states, query one service), as NDR
//! stubs. Nothing here starts, stops or changes a service: exsweep only reads.

use crate::dcerpc::SyntaxId;
use crate::le::le32;
use crate::ndr::{utf16_units, utf16le_to_string, Reader, Writer};
use crate::winreg::Win32Status;
use crate::DecodeError;

/// [MS-SCMR] 1.9: svcctl, 367abb81-9844-35f1-ad32-98f038001003 v2.0.
pub const SVCCTL_SYNTAX: SyntaxId = SyntaxId::new(
    0x367a_bb81,
    0x9844,
    0x35f1,
    [0xad, 0x32, 0x98, 0xf0, 0x38, 0x00, 0x10, 0x03],
    2,
    0,
);

/// [MS-SCMR] 3.1.4.2 RCloseServiceHandle (Opnum 0)
pub const OPNUM_CLOSE_SERVICE_HANDLE: u16 = 0;
/// [MS-SCMR] 3.1.4.17 RQueryServiceStatus (Opnum 6)
pub const OPNUM_QUERY_SERVICE_STATUS: u16 = 6;
/// [MS-SCMR] 3.1.4.14 REnumServicesStatusW (Opnum 14)
pub const OPNUM_ENUM_SERVICES_STATUS: u16 = 14;
/// [MS-SCMR] 3.1.4.15 ROpenSCManagerW (Opnum 15)
pub const OPNUM_OPEN_SC_MANAGER: u16 = 15;
/// [MS-SCMR] 3.1.4.16 ROpenServiceW (Opnum 16)
pub const OPNUM_OPEN_SERVICE: u16 = 16;

/// [MS-SCMR] 2.2.1 access rights: connect and enumerate, what any authenticated user may ask.
pub const SC_MANAGER_CONNECT: u32 = 0x0001;
pub const SC_MANAGER_ENUMERATE_SERVICE: u32 = 0x0004;
/// SERVICE_QUERY_STATUS: the only right asked of a service.
pub const SERVICE_QUERY_STATUS: u32 = 0x0004;
/// [MS-SCMR] 2.2.47 `SERVICE_WIN32` = own process | share process.
pub const SERVICE_WIN32: u32 = 0x0000_0030;
/// `SERVICE_STATE_ALL`: active and inactive.
pub const SERVICE_STATE_ALL: u32 = 0x0000_0003;
/// `BOUNDED_DWORD_256K`: the largest enumeration buffer a server must accept.
pub const MAX_ENUM_BUFFER: u32 = 256 * 1024;
/// Size of one `ENUM_SERVICE_STATUSW` in the buffer: two 32-bit offsets and a SERVICE_STATUS.
const ENUM_ENTRY_LEN: usize = 36;
/// `ERROR_SERVICE_DOES_NOT_EXIST`.
pub const SERVICE_DOES_NOT_EXIST: Win32Status = Win32Status(1060);

/// [MS-SCMR] 2.2.4 SC_RPC_HANDLE: a 20-byte context handle.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScHandle(pub [u8; 20]);

impl std::fmt::Debug for ScHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScHandle(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// [MS-SCMR] 2.2.47 SERVICE_STATUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServiceStatus {
    pub service_type: u32,
    pub current_state: u32,
    pub controls_accepted: u32,
    pub win32_exit_code: u32,
    pub service_specific_exit_code: u32,
    pub check_point: u32,
    pub wait_hint: u32,
}

impl ServiceStatus {
    /// `dwCurrentState` as a word for reports (`running`, `stopped`, ...).
    pub fn state_name(&self) -> &'static str {
        state_name(self.current_state)
    }

    fn parse(b: &[u8]) -> ServiceStatus {
        let d = |i: usize| le32(b, i * 4);
        ServiceStatus {
            service_type: d(0),
            current_state: d(1),
            controls_accepted: d(2),
            win32_exit_code: d(3),
            service_specific_exit_code: d(4),
            check_point: d(5),
            wait_hint: d(6),
        }
    }
}

/// [MS-SCMR] 2.2.47 `dwCurrentState` values.
pub fn state_name(state: u32) -> &'static str {
    match state {
        1 => "stopped",
        2 => "start-pending",
        3 => "stop-pending",
        4 => "running",
        5 => "continue-pending",
        6 => "pause-pending",
        7 => "paused",
        _ => "unknown",
    }
}

/// One entry of an enumeration: [MS-SCMR] 2.2.11 ENUM_SERVICE_STATUSW.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    pub name: String,
    pub display_name: String,
    pub status: ServiceStatus,
}

/// A `[string] wchar_t*` pointee: conformant-varying, NUL-terminated.
fn write_string(w: &mut Writer, s: &str) {
    let units = utf16_units(s, true);
    w.u32(units.len() as u32);
    w.u32(0);
    w.u32(units.len() as u32);
    for u in units {
        w.u16(u);
    }
}

/// ROpenSCManagerW: `machine` as the server's name (`\\HOST`), the active database.
pub fn encode_open_sc_manager(machine: &str, access: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.referent();
    write_string(&mut w, machine);
    w.null_pointer(); // lpDatabaseName: SERVICES_ACTIVE_DATABASE
    w.u32(access);
    w.into_bytes()
}

/// ROpenServiceW for `name` (the service's short name, case-insensitive).
pub fn encode_open_service(scm: &ScHandle, name: &str, access: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(&scm.0);
    write_string(&mut w, name);
    w.u32(access);
    w.into_bytes()
}

/// RQueryServiceStatus and RCloseServiceHandle take only the handle.
pub fn encode_handle_only(handle: &ScHandle) -> Vec<u8> {
    handle.0.to_vec()
}

/// REnumServicesStatusW with room for `buffer_len` bytes, continuing at `resume`; `None` sends
/// a null resume pointer (one call, no continuation).
pub fn encode_enum_services_status(
    scm: &ScHandle,
    service_type: u32,
    state: u32,
    buffer_len: u32,
    resume: Option<u32>,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(&scm.0);
    w.u32(service_type);
    w.u32(state);
    w.u32(buffer_len.min(MAX_ENUM_BUFFER));
    w.dword_pointer(resume);
    w.into_bytes()
}

/// The answer to ROpenSCManagerW, ROpenServiceW or RCloseServiceHandle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleResponse {
    pub handle: ScHandle,
    pub status: Win32Status,
}

pub fn decode_handle_response(stub: &[u8]) -> Result<HandleResponse, DecodeError> {
    let mut r = Reader::new(stub);
    let handle = ScHandle(r.array::<20>("SC_RPC_HANDLE")?);
    let status = Win32Status(r.u32("return value")?);
    r.finish("svcctl handle response")?;
    Ok(HandleResponse { handle, status })
}

/// The answer to RQueryServiceStatus.
pub fn decode_query_service_status_response(stub: &[u8]) -> Result<(ServiceStatus, Win32Status), DecodeError> {
    let mut r = Reader::new(stub);
    let status = ServiceStatus::parse(r.take(28, "SERVICE_STATUS")?);
    let result = Win32Status(r.u32("return value")?);
    r.finish("RQueryServiceStatus response")?;
    Ok((status, result))
}

/// The answer to REnumServicesStatusW. On `ERROR_MORE_DATA`, `services` holds what fitted,
/// `bytes_needed` what the rest needs and `resume` where to go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumServicesResponse {
    pub services: Vec<ServiceEntry>,
    pub bytes_needed: u32,
    pub resume: Option<u32>,
    pub status: Win32Status,
}

pub fn decode_enum_services_status_response(stub: &[u8]) -> Result<EnumServicesResponse, DecodeError> {
    let mut r = Reader::new(stub);
    let size = r.u32("lpBuffer size")? as usize;
    if size > MAX_ENUM_BUFFER as usize {
        return Err(DecodeError::TooLong {
            what: "lpBuffer",
            len: size,
            limit: MAX_ENUM_BUFFER as usize,
        });
    }
    let buffer = r.take(size, "lpBuffer")?;
    let bytes_needed = r.u32("pcbBytesNeeded")?;
    let returned = r.u32("lpServicesReturned")? as usize;
    let resume = match r.pointer("lpResumeIndex")? {
        Some(_) => Some(r.u32("lpResumeIndex")?),
        None => None,
    };
    let status = Win32Status(r.u32("return value")?);
    r.finish("REnumServicesStatusW response")?;
    if returned > size / ENUM_ENTRY_LEN {
        return Err(DecodeError::invalid(
            "lpServicesReturned",
            format!("{returned} entries do not fit a {size}-byte buffer"),
        ));
    }
    let services = buffer
        .chunks_exact(ENUM_ENTRY_LEN)
        .take(returned)
        .map(|entry| {
            Ok(ServiceEntry {
                name: string_at(buffer, le32(entry, 0), "lpServiceName")?,
                display_name: string_at(buffer, le32(entry, 4), "lpDisplayName")?,
                status: ServiceStatus::parse(&entry[8..]),
            })
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(EnumServicesResponse {
        services,
        bytes_needed,
        resume,
        status,
    })
}

/// A NUL-terminated UTF-16 string at `offset` in an enumeration buffer.
fn string_at(buffer: &[u8], offset: u32, what: &'static str) -> Result<String, DecodeError> {
    let tail = buffer.get(offset as usize..).ok_or_else(|| {
        DecodeError::invalid(
            what,
            format!("offset {offset} outside the {}-byte buffer", buffer.len()),
        )
    })?;
    let end = tail
        .chunks_exact(2)
        .position(|u| u == [0, 0])
        .ok_or_else(|| DecodeError::invalid(what, format!("no terminator after offset {offset}")))?;
    Ok(utf16le_to_string(&tail[..end * 2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumeration_entries_point_into_the_buffer() {
        // One entry, strings after it, as a server lays them out.
        let mut buffer = vec![0u8; ENUM_ENTRY_LEN];
        let name_at = buffer.len() as u32;
        buffer.extend("Spooler\0".encode_utf16().flat_map(u16::to_le_bytes));
        let display_at = buffer.len() as u32;
        buffer.extend("Print Spooler\0".encode_utf16().flat_map(u16::to_le_bytes));
        buffer[0..4].copy_from_slice(&name_at.to_le_bytes());
        buffer[4..8].copy_from_slice(&display_at.to_le_bytes());
        buffer[8..12].copy_from_slice(&0x10u32.to_le_bytes());
        buffer[12..16].copy_from_slice(&4u32.to_le_bytes());
        let mut stub = Vec::new();
        stub.extend((buffer.len() as u32).to_le_bytes());
        stub.extend(&buffer);
        while stub.len() % 4 != 0 {
            stub.push(0);
        }
        for v in [0u32, 1, 0x20000, 0, 0] {
            stub.extend(v.to_le_bytes());
        }
        let resp = decode_enum_services_status_response(&stub).unwrap();
        assert_eq!(resp.services.len(), 1);
        assert_eq!(resp.services[0].name, "Spooler");
        assert_eq!(resp.services[0].display_name, "Print Spooler");
        assert_eq!(resp.services[0].status.state_name(), "running");
        assert_eq!(resp.resume, Some(0));

        // An offset past the buffer is an error, not a panic.
        let mut bad = stub.clone();
        bad[4..8].copy_from_slice(&5000u32.to_le_bytes());
        assert!(decode_enum_services_status_response(&bad).is_err());
        for cut in 0..stub.len() {
            let _ = decode_enum_services_status_response(&stub[..cut]);
        }
    }

    #[test]
    fn open_service_request_carries_a_terminated_name() {
        let stub = encode_open_service(&ScHandle([7; 20]), "W3SVC", SERVICE_QUERY_STATUS);
        // handle, max/offset/actual = 6, 6 units + padding to 4, access.
        assert_eq!(&stub[20..24], &6u32.to_le_bytes());
        assert_eq!(&stub[28..32], &6u32.to_le_bytes());
        assert_eq!(stub.len(), 20 + 12 + 12 + 4);
        assert_eq!(&stub[44..48], &SERVICE_QUERY_STATUS.to_le_bytes());
    }
}
