//! The service list with running states, over `\PIPE\svcctl` ([MS-SCMR]): open the service
//! control manager for connect and enumerate only, list every Win32 service, close.

use exsweep_wire::svcctl::{self, ScHandle, ServiceEntry};
use exsweep_wire::winreg::Win32Status;

use super::{RpcPipe, SmbSession};
use crate::transport::TransportError;

/// First enumeration buffer; a host with more services costs one more call per 16 KiB.
const INITIAL_ENUM_BUFFER: u32 = 16 * 1024;
/// Calls one enumeration may take before we decide the server is not making progress.
const MAX_ENUM_CALLS: u32 = 64;

fn decode_error(what: &'static str) -> impl FnOnce(exsweep_wire::DecodeError) -> TransportError {
    move |source| TransportError::Decode { what, source }
}

impl SmbSession {
    async fn svcctl_pipe(&mut self) -> Result<RpcPipe, TransportError> {
        self.cached_pipe(|s| &mut s.svcctl, "svcctl", svcctl::SVCCTL_SYNTAX)
            .await
    }

    /// Every Win32 service with its status, in the server's order (REnumServicesStatusW).
    pub async fn services(&mut self) -> Result<Vec<ServiceEntry>, TransportError> {
        let pipe = self.svcctl_pipe().await?;
        let machine = format!(r"\\{}", self.conn().server_name());
        let access = svcctl::SC_MANAGER_CONNECT | svcctl::SC_MANAGER_ENUMERATE_SERVICE;
        let answer = self
            .call_on(
                pipe,
                svcctl::OPNUM_OPEN_SC_MANAGER,
                &svcctl::encode_open_sc_manager(&machine, access),
            )
            .await?;
        let opened = svcctl::decode_handle_response(&answer).map_err(decode_error("ROpenSCManagerW response"))?;
        if opened.status != Win32Status::SUCCESS {
            return Err(TransportError::Win32 {
                call: "ROpenSCManagerW",
                status: opened.status,
            });
        }
        let listed = self.enumerate(pipe, &opened.handle).await;
        let _ = self
            .call_on(
                pipe,
                svcctl::OPNUM_CLOSE_SERVICE_HANDLE,
                &svcctl::encode_handle_only(&opened.handle),
            )
            .await;
        listed
    }

    async fn enumerate(&mut self, pipe: RpcPipe, scm: &ScHandle) -> Result<Vec<ServiceEntry>, TransportError> {
        let mut services = Vec::new();
        let mut buffer = INITIAL_ENUM_BUFFER;
        let mut resume = 0;
        for _ in 0..MAX_ENUM_CALLS {
            let stub = svcctl::encode_enum_services_status(
                scm,
                svcctl::SERVICE_WIN32,
                svcctl::SERVICE_STATE_ALL,
                buffer,
                Some(resume),
            );
            let answer = self.call_on(pipe, svcctl::OPNUM_ENUM_SERVICES_STATUS, &stub).await?;
            let resp = svcctl::decode_enum_services_status_response(&answer)
                .map_err(decode_error("REnumServicesStatusW response"))?;
            let got = resp.services.len();
            services.extend(resp.services);
            match resp.status {
                Win32Status::SUCCESS => return Ok(services),
                Win32Status::MORE_DATA => {
                    // Resume where the server says; with no resume index, the entries that
                    // fitted are all we would get again, so start over with room for all.
                    match resp.resume {
                        Some(next) if got > 0 => resume = next,
                        _ => {
                            services.clear();
                            resume = 0;
                        }
                    }
                    buffer = resp.bytes_needed.clamp(INITIAL_ENUM_BUFFER, svcctl::MAX_ENUM_BUFFER);
                }
                status => {
                    return Err(TransportError::Win32 {
                        call: "REnumServicesStatusW",
                        status,
                    })
                }
            }
        }
        Err(TransportError::Decode {
            what: "REnumServicesStatusW",
            source: exsweep_wire::DecodeError::TooLong {
                what: "enumeration calls",
                len: MAX_ENUM_CALLS as usize + 1,
                limit: MAX_ENUM_CALLS as usize,
            },
        })
    }
}
