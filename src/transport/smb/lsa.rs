//! The audit policy, over `\PIPE\lsarpc` ([MS-LSAD]): open the policy for viewing audit
//! information only, query PolicyAuditEventsInformation, close.

use exsweep_wire::lsa::{self, AuditEvents};

use super::{RpcPipe, SmbSession};
use crate::transport::TransportError;

/// `STATUS_ACCESS_DENIED`.
const ACCESS_DENIED: u32 = 0xC000_0022;

impl SmbSession {
    async fn lsarpc_pipe(&mut self) -> Result<RpcPipe, TransportError> {
        self.cached_pipe(|s| &mut s.lsarpc, "lsarpc", lsa::LSARPC_SYNTAX).await
    }

    /// The host's audit policy (LsarQueryInformationPolicy, PolicyAuditEventsInformation).
    pub async fn audit_policy(&mut self) -> Result<AuditEvents, TransportError> {
        let pipe = self.lsarpc_pipe().await?;
        let stub = lsa::encode_open_policy2(lsa::POLICY_VIEW_AUDIT_INFORMATION);
        let answer = self.call_on(pipe, lsa::OPNUM_OPEN_POLICY2, &stub).await?;
        let (handle, status) = lsa::decode_handle_response(&answer).map_err(|source| TransportError::Decode {
            what: "LsarOpenPolicy2 response",
            source,
        })?;
        ntstatus("LsarOpenPolicy2", status)?;
        let stub = lsa::encode_query_information_policy(&handle, lsa::POLICY_AUDIT_EVENTS_INFORMATION);
        let answer = self.call_on(pipe, lsa::OPNUM_QUERY_INFORMATION_POLICY, &stub).await;
        // Closed only when the pipe is still in step: after a timeout or a lost session the
        // close would only wait out another timeout.
        if answer.is_ok() {
            let _ = self.call_on(pipe, lsa::OPNUM_CLOSE, &lsa::encode_close(&handle)).await;
        }
        let (events, status) =
            lsa::decode_audit_events_response(&answer?).map_err(|source| TransportError::Decode {
                what: "LsarQueryInformationPolicy response",
                source,
            })?;
        ntstatus("LsarQueryInformationPolicy", status)?;
        events.ok_or_else(|| TransportError::Decode {
            what: "LsarQueryInformationPolicy response",
            source: exsweep_wire::DecodeError::Invalid {
                what: "PolicyInformation",
                detail: "a successful answer without the policy".into(),
            },
        })
    }
}

fn ntstatus(call: &'static str, status: u32) -> Result<(), TransportError> {
    match status {
        0 => Ok(()),
        ACCESS_DENIED => Err(TransportError::AccessDenied {
            what: format!("{call} (the audit policy)"),
        }),
        other => Err(TransportError::Status {
            op: call,
            status: format!("NTSTATUS 0x{other:08x}"),
        }),
    }
}
