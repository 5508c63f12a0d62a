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
/// `POLICY_AUDIT_EVENT_*` bits as a read returns them (1 success, 2 failure, 0 not audited;
/// 4, "none", is for set operations only).
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
            if !present && count != 0 {
                return Err(DecodeError::invalid(
                    "EventAuditingOptions",
                    format!("no array for a count of {count}"),
                ));
            }
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
/// `none` (also `none` for every category when auditing is off). `None` for bits a read never
/// returns (anything beyond success and failure): unreadable, not "not audited".
pub fn audit_setting(auditing_mode: bool, option: u32) -> Option<&'static str> {
    const SUCCESS: u32 = 1;
    const FAILURE: u32 = 2;
    if option & !(SUCCESS | FAILURE) != 0 {
        return None;
    }
    if !auditing_mode {
        return Some("none");
    }
    Some(match (option & SUCCESS != 0, option & FAILURE != 0) {
        (true, true) => "success-and-failure",
        (true, false) => "success",
        (false, true) => "failure",
        (false, false) => "none",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PolicyAuditEventsInformation answer built by hand: `options` (None: a null array with
    /// `count`), then NTSTATUS 0.
    fn answer(mode: u8, options: Option<&[u32]>, count: u32) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(0x0002_0000); // PolicyInformation
        w.u16(POLICY_AUDIT_EVENTS_INFORMATION);
        w.align(4);
        w.bytes(&[mode]);
        w.align(4);
        match options {
            Some(_) => w.u32(0x0002_0004),
            None => w.null_pointer(),
        }
        w.u32(count);
        if let Some(options) = options {
            w.u32(options.len() as u32);
            for o in options {
                w.u32(*o);
            }
        }
        w.u32(0);
        w.into_bytes()
    }

    #[test]
    fn nine_categories_each_read_in_order() {
        let options = [1, 2, 3, 0, 2, 1, 3, 0, 2];
        let (events, status) = decode_audit_events_response(&answer(1, Some(&options), 9)).unwrap();
        let events = events.unwrap();
        assert_eq!(
            (status, events.auditing_mode, events.options.as_slice()),
            (0, true, &options[..])
        );
        let read: Vec<_> = events
            .options
            .iter()
            .map(|o| audit_setting(true, *o).unwrap())
            .collect();
        assert_eq!(
            read,
            [
                "success",
                "failure",
                "success-and-failure",
                "none",
                "failure",
                "success",
                "success-and-failure",
                "none",
                "failure"
            ]
        );
    }

    #[test]
    fn auditing_off_is_none_everywhere_and_unknown_bits_are_unreadable() {
        let (events, _) = decode_audit_events_response(&answer(0, Some(&[3, 1]), 2)).unwrap();
        assert!(!events.unwrap().auditing_mode);
        assert_eq!(audit_setting(false, 3), Some("none"));
        assert_eq!(audit_setting(true, 0), Some("none"));
        for odd in [4, 5, 6, 7, 8, 0x10, 0x8000_0000] {
            assert_eq!(audit_setting(true, odd), None, "{odd:#x}");
        }
    }

    #[test]
    fn inconsistent_arrays_are_errors() {
        assert!(decode_audit_events_response(&answer(1, None, 7)).is_err());
        let (events, _) = decode_audit_events_response(&answer(1, None, 0)).unwrap();
        assert!(events.unwrap().options.is_empty());
        let mut bad = answer(1, Some(&[3, 3]), 2);
        bad[20] = 3; // the array's length field against a count of 2
        assert!(decode_audit_events_response(&bad).is_err());
        assert!(decode_audit_events_response(&answer(1, Some(&[3; 1001]), 1001)).is_err());
    }
}
