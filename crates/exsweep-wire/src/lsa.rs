//! [MS-LSAD] stubs for reading a host's audit policy over `\PIPE\lsarpc`: LsarOpenPolicy2,
//! LsarQueryInformationPolicy (PolicyAuditEventsInformation) and LsarClose.

use crate::dcerpc::SyntaxId;
use crate::ndr::{Reader, Writer};
use crate::DecodeError;

/// [MS-LSAD] 1.9: lsarpc, 12345778-1234-abcd-ef00-0123456789ab v0.0.
pub const LSARPC_SYNTAX: SyntaxId = SyntaxId::new(
    0x1234_5778,
    0x1234,
    0xabcd,
    [0xef, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab],
    0,
    0,
);

/// [MS-LSAD] 3.1.4.3 LsarClose (Opnum 0)
pub const OPNUM_CLOSE: u16 = 0;
/// [MS-LSAD] 3.1.4.4.4 LsarQueryInformationPolicy (Opnum 7)
pub const OPNUM_QUERY_INFORMATION_POLICY: u16 = 7;
/// [MS-LSAD] 3.1.4.4.1 LsarOpenPolicy2 (Opnum 44)
pub const OPNUM_OPEN_POLICY2: u16 = 44;
/// `POLICY_VIEW_AUDIT_INFORMATION`: the one right reading the audit policy needs.
pub const POLICY_VIEW_AUDIT_INFORMATION: u32 = 0x0000_0002;
/// `PolicyAuditEventsInformation`.
pub const POLICY_AUDIT_EVENTS_INFORMATION: u16 = 2;
/// Most categories accepted ([MS-LSAD] 2.2.4.4 bounds the count at 1000).
pub const MAX_AUDIT_CATEGORIES: usize = 1000;

/// A policy handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyHandle(pub [u8; 20]);

/// LsarOpenPolicy2: no server name, empty object attributes (Length 24, as Windows sets it),
/// `access` requested.
pub fn encode_open_policy2(access: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.null_pointer(); // SystemName
    w.u32(24); // ObjectAttributes.Length
    for _ in 0..2 {
        w.null_pointer(); // RootDirectory, ObjectName
    }
    w.u32(0); // Attributes
    for _ in 0..2 {
        w.null_pointer(); // SecurityDescriptor, SecurityQualityOfService
    }
    w.u32(access);
    w.into_bytes()
}

/// LsarQueryInformationPolicy of `class`.
pub fn encode_query_information_policy(handle: &PolicyHandle, class: u16) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(&handle.0);
    w.u16(class);
    w.into_bytes()
}

/// LsarClose.
pub fn encode_close(handle: &PolicyHandle) -> Vec<u8> {
    handle.0.to_vec()
}

/// A handle and the NTSTATUS of LsarOpenPolicy2 (and of LsarClose).
pub fn decode_handle_response(stub: &[u8]) -> Result<(PolicyHandle, u32), DecodeError> {
    let mut r = Reader::new(stub);
    let handle = PolicyHandle(r.array::<20>("policy handle")?);
    let status = r.u32("NTSTATUS")?;
    r.finish("policy handle response")?;
    Ok((handle, status))
}

/// `LSAPR_POLICY_AUDIT_EVENTS_INFO`: whether auditing is on, and per category the
/// `POLICY_AUDIT_EVENT_*` bits (1 success, 2 failure, 4 none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvents {
    pub auditing_mode: bool,
    pub options: Vec<u32>,
}

/// The answer to LsarQueryInformationPolicy for PolicyAuditEventsInformation: the policy (or
/// `None` when the server sent none) and the NTSTATUS.
pub fn decode_audit_events_response(stub: &[u8]) -> Result<(Option<AuditEvents>, u32), DecodeError> {
    let mut r = Reader::new(stub);
    let events = match r.pointer("PolicyInformation")? {
        None => None,
        Some(_) => {
            let tag = r.u16("information class")?;
            if tag != POLICY_AUDIT_EVENTS_INFORMATION {
                return Err(DecodeError::invalid("PolicyInformation", format!("class {tag}, not 2")));
            }
            r.align(4, "union arm")?;
            let mode = r.u8("AuditingMode")?;
            r.align(4, "EventAuditingOptions")?;
            let present = r.pointer("EventAuditingOptions")?.is_some();
            let count = r.u32("MaximumAuditEventCount")? as usize;
            let mut options = Vec::new();
            if present {
                let conformance = r.u32("EventAuditingOptions count")? as usize;
                if conformance != count || count > MAX_AUDIT_CATEGORIES {
                    return Err(DecodeError::invalid(
                        "EventAuditingOptions",
                        format!("{conformance} elements for a count of {count}"),
                    ));
                }
                for _ in 0..count {
                    options.push(r.u32("audit option")?);
                }
            }
            Some(AuditEvents {
                auditing_mode: mode != 0,
                options,
            })
        }
    };
    let status = r.u32("NTSTATUS")?;
    r.finish("query information policy response")?;
    Ok((events, status))
}

/// The Windows 2000 audit categories, in `POLICY_AUDIT_EVENT_TYPE` order ([MS-LSAD] 2.2.4.20),
/// as exsweep names their facts (`audit.<name>`).
pub const AUDIT_CATEGORIES: [&str; 9] = [
    "system",
    "logon",
    "object_access",
    "privilege_use",
    "process_tracking",
    "policy_change",
    "account_management",
    "directory_service_access",
    "account_logon",
];

/// What one category's option bits mean: `success-and-failure`, `success`, `failure` or
/// `none` (also `none` for every category when auditing is off).
pub fn audit_setting(auditing_mode: bool, option: u32) -> &'static str {
    const SUCCESS: u32 = 1;
    const FAILURE: u32 = 2;
    const NONE: u32 = 4;
    if !auditing_mode || option & NONE != 0 {
        return "none";
    }
    match (option & SUCCESS != 0, option & FAILURE != 0) {
        (true, true) => "success-and-failure",
        (true, false) => "success",
        (false, true) => "failure",
        (false, false) => "none",
    }
}
