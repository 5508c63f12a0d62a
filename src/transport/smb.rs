//! SMB2/3 transport: one authenticated session per host (the `smb2` crate), the `winreg`
//! and `svcctl` named pipes on `IPC$` with DCE/RPC calls carried over them, and partial file
//! reads on the admin shares ([`files`]).
//!
//! `smb2` has no named-pipe API, so this module drives its lower-level `Connection::execute`:
//! TREE_CONNECT `IPC$`, CREATE `winreg`, IOCTL `FSCTL_PIPE_TRANSCEIVE` (one round trip per
//! call), READ for the rest of a pipe message (`STATUS_BUFFER_OVERFLOW`) and for further RPC
//! fragments. Codecs live in `exsweep-wire`; this module only moves bytes.

mod files;
mod lsa;
mod services;

pub use files::{FileVersionRead, WindowsPath};

use std::collections::HashMap;
use std::time::Duration;

use exsweep_wire::dcerpc::{self, Assembled, BindOutcome, ResponseAssembler};
use exsweep_wire::regvalue::RegData;
use exsweep_wire::winreg::{self, KeyHandle, Win32Status, KEY_READ};
use smb2::client::connection::Connection;
use smb2::msg::close::CloseRequest;
use smb2::msg::create::{CreateDisposition, CreateRequest, CreateResponse, ImpersonationLevel, ShareAccess};
use smb2::msg::ioctl::{IoctlRequest, IoctlResponse, FSCTL_PIPE_TRANSCEIVE};
use smb2::msg::read::{ReadRequest, ReadResponse, SMB2_CHANNEL_NONE};
use smb2::msg::tree_connect::{TreeConnectRequest, TreeConnectRequestFlags};
use smb2::msg::tree_disconnect::TreeDisconnectRequest;
use smb2::msg::write::WriteRequest;
use smb2::pack::{ReadCursor, Unpack};
use smb2::types::flags::FileAccessMask;
use smb2::types::status::NtStatus;
use smb2::types::{Command, FileId, OplockLevel, TreeId};

use super::TransportError;
use crate::credentials::Credential;
use crate::facts::FailureKind;

/// Largest single pipe message we accept. An RPC fragment is at most 4280 bytes; a peer that
/// keeps answering `STATUS_BUFFER_OVERFLOW` past this is refused rather than buffered.
const MAX_PIPE_MESSAGE: usize = 64 * 1024;
/// First buffer offered for a value's data; a larger value costs one retry (ERROR_MORE_DATA).
const INITIAL_VALUE_BUFFER: u32 = 1024;
/// Largest value data we ask for, matching the wire crate's stub bound.
const MAX_VALUE_BUFFER: u32 = 8 * 1024 * 1024;
/// Key and value names are at most 16383 characters; enumerations offer 512 first and retry
/// once with room for the longest name on ERROR_MORE_DATA.
const NAME_CAPACITY: usize = 512;
/// No key a scanner reads has more entries; stops a hostile server from enumerating forever.
const MAX_ENUM_ENTRIES: u32 = 100_000;
const FSCTL_FLAG: u32 = 0x0000_0001; // SMB2_0_IOCTL_IS_FSCTL

/// Where and as whom to connect.
pub struct SmbTarget<'a> {
    pub host: &'a str,
    pub port: u16,
    pub credential: &'a Credential,
    /// Bound on each response.
    pub timeout: Duration,
    /// Bound on the TCP connection alone: a firewall that drops SYNs to 445 (Windows
    /// Firewall's default) must not use up the host's deadline before WinRM is tried.
    pub connect_timeout: Duration,
}

/// What the session negotiated; reported as facts about the host.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub dialect: String,
    pub signing_required: bool,
}

/// Counters for one session, for the closing figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub rpc_calls: u32,
    pub smb_requests: u32,
    /// File bytes read on the admin shares (version resources).
    pub file_bytes: u64,
}

/// A bound DCE/RPC pipe: its SMB file id and the largest fragment we may send on it.
#[derive(Debug, Clone, Copy)]
struct RpcPipe {
    file: FileId,
    max_xmit: u16,
}

/// The remote registry once opened: its pipe and the HKLM handle.
#[derive(Debug, Clone, Copy)]
struct Winreg {
    pipe: RpcPipe,
    hklm: KeyHandle,
}

/// An authenticated SMB session to one host: remote registry, service list, file versions.
/// Each service is opened on first use and a refusal is remembered, so an account that may
/// not read the registry still gets the files and services it may read.
pub struct SmbSession {
    client: smb2::SmbClient,
    ipc: TreeId,
    winreg: Option<Result<Winreg, (FailureKind, String)>>,
    /// Opened on first use: hosts whose checks name no service never open it.
    svcctl: Option<RpcPipe>,
    /// Opened when a check names the audit policy.
    lsarpc: Option<RpcPipe>,
    call_id: u32,
    /// Keys opened so far, by normalized lowercase path; `None` = does not exist.
    keys: HashMap<String, Option<KeyHandle>>,
    /// Disk shares connected so far, by uppercase name.
    shares: HashMap<String, TreeId>,
    max_read: u32,
    pub info: SessionInfo,
    pub stats: Stats,
}

fn smb_err(op: &'static str) -> impl FnOnce(smb2::Error) -> TransportError {
    move |source| TransportError::Smb { op, source }
}

/// A status the server answered: access denied has its own variant; any other is a refusal
/// of this one request, not a sign that the session is gone.
fn status_error(op: &'static str, status: NtStatus, _command: Command) -> TransportError {
    if status == NtStatus::ACCESS_DENIED {
        TransportError::AccessDenied { what: op.to_owned() }
    } else {
        TransportError::Status {
            op,
            status: status.to_string(),
        }
    }
}

const LOGON_STATUSES: [u32; 8] = [
    0xC000_006D, // STATUS_LOGON_FAILURE
    0xC000_006A, // STATUS_WRONG_PASSWORD
    0xC000_0064, // STATUS_NO_SUCH_USER
    0xC000_0234, // STATUS_ACCOUNT_LOCKED_OUT
    0xC000_0072, // STATUS_ACCOUNT_DISABLED
    0xC000_0071, // STATUS_PASSWORD_EXPIRED
    0xC000_0224, // STATUS_PASSWORD_MUST_CHANGE
    0xC000_006E, // STATUS_ACCOUNT_RESTRICTION
];

/// Tells a refused logon from other connect failures: the lockout breaker counts only these.
fn classify_connect_error(addr: &str, account: &str, connect_timeout: Duration, e: smb2::Error) -> TransportError {
    // Every address still dialling when the budget ran out: no answer at all to the SYN, the
    // mark of a port a firewall drops (a refused port fails at once with a kind).
    if let smb2::Error::ConnectFailed { attempts, .. } = &e {
        if !attempts.is_empty() && attempts.iter().all(|a| a.error_kind.is_none()) {
            return TransportError::Io {
                op: "connect",
                addr: addr.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no TCP connection within {connect_timeout:?} (port filtered?)"),
                ),
            };
        }
    }
    let logon_status = e.status().is_some_and(|s| LOGON_STATUSES.contains(&s.0));
    // A server that maps a bad password to guest answers with a guest session, which smb2
    // refuses: for the lockout breaker that is a refused logon too.
    let guest = e.kind() == smb2::ErrorKind::GuestSessionRefused;
    if logon_status || guest || matches!(e, smb2::Error::Auth { .. }) {
        TransportError::Logon {
            account: account.to_owned(),
            detail: e.to_string(),
        }
    } else {
        TransportError::Connect {
            addr: addr.to_owned(),
            source: e,
        }
    }
}

impl SmbSession {
    /// Connects, logs on, opens `\PIPE\winreg`, binds MS-RRP and opens HKLM.
    pub async fn connect(target: SmbTarget<'_>) -> Result<Self, TransportError> {
        let addr = super::socket_addr(target.host, target.port);
        let config_connect_timeout = target.connect_timeout.min(target.timeout);
        let config = smb2::ClientConfig {
            addr: addr.clone(),
            timeout: config_connect_timeout,
            username: target.credential.user.clone(),
            password: target.credential.password.expose().to_owned(),
            domain: target.credential.domain.clone(),
            auto_reconnect: false,
            compression: false,
            dfs_enabled: false,
            response_timeout: Some(target.timeout),
            ..Default::default()
        };
        let client = smb2::SmbClient::connect(config)
            .await
            .map_err(|e| classify_connect_error(&addr, &target.credential.account(), config_connect_timeout, e))?;
        let params = client.params();
        let info = params
            .as_ref()
            .map(|p| SessionInfo {
                dialect: format!("{}", p.dialect),
                signing_required: p.signing_required,
            })
            .unwrap_or(SessionInfo {
                dialect: "unknown".into(),
                signing_required: false,
            });
        let max_read = params.map_or(65536, |p| p.max_read_size);
        let mut session = SmbSession {
            client,
            ipc: TreeId(0),
            winreg: None,
            svcctl: None,
            lsarpc: None,
            call_id: 0,
            keys: HashMap::new(),
            shares: HashMap::new(),
            max_read,
            info,
            stats: Stats::default(),
        };
        session.ipc = session.tree_connect(r"IPC$").await?;
        Ok(session)
    }

    fn conn(&self) -> &Connection {
        self.client.connection()
    }

    async fn execute(
        &mut self,
        op: &'static str,
        command: Command,
        body: &dyn smb2::pack::Pack,
        tree: Option<TreeId>,
    ) -> Result<smb2::client::connection::Frame, TransportError> {
        self.stats.smb_requests += 1;
        self.conn().execute(command, body, tree).await.map_err(smb_err(op))
    }

    /// TREE_CONNECT to `\\server\<share>`.
    async fn tree_connect(&mut self, share: &str) -> Result<TreeId, TransportError> {
        let path = format!(r"\\{}\{share}", self.conn().server_name());
        let req = TreeConnectRequest {
            flags: TreeConnectRequestFlags::default(),
            path,
        };
        let frame = self.execute("tree connect", Command::TreeConnect, &req, None).await?;
        match frame.header.status {
            NtStatus::SUCCESS => {}
            NtStatus::ACCESS_DENIED => {
                return Err(TransportError::AccessDenied {
                    what: format!("share {share}"),
                })
            }
            NtStatus::BAD_NETWORK_NAME => return Err(TransportError::NoShare(share.to_owned())),
            status => return Err(status_error("tree connect", status, Command::TreeConnect)),
        }
        frame.header.tree_id.ok_or_else(|| TransportError::Smb {
            op: "tree connect",
            source: smb2::Error::invalid_data("response without a tree id"),
        })
    }

    /// The pipe `slot` of the session holds, opened and bound on first use.
    async fn cached_pipe(
        &mut self,
        slot: fn(&mut SmbSession) -> &mut Option<RpcPipe>,
        name: &'static str,
        syntax: dcerpc::SyntaxId,
    ) -> Result<RpcPipe, TransportError> {
        if let Some(pipe) = *slot(self) {
            return Ok(pipe);
        }
        let pipe = self.open_rpc_pipe(name, syntax).await?;
        *slot(self) = Some(pipe);
        Ok(pipe)
    }

    /// Opens a named pipe on IPC$ and binds `syntax` on it.
    async fn open_rpc_pipe(&mut self, name: &'static str, syntax: dcerpc::SyntaxId) -> Result<RpcPipe, TransportError> {
        let file = self.open_pipe(name).await?;
        let max_xmit = self.bind(file, name, syntax).await?;
        Ok(RpcPipe { file, max_xmit })
    }

    async fn open_pipe(&mut self, name: &'static str) -> Result<FileId, TransportError> {
        let req = CreateRequest {
            requested_oplock_level: OplockLevel::None,
            impersonation_level: ImpersonationLevel::Impersonation,
            desired_access: FileAccessMask::new(FileAccessMask::FILE_READ_DATA | FileAccessMask::FILE_WRITE_DATA),
            file_attributes: 0,
            share_access: ShareAccess(ShareAccess::FILE_SHARE_READ | ShareAccess::FILE_SHARE_WRITE),
            create_disposition: CreateDisposition::FileOpen,
            create_options: 0,
            name: name.to_owned(),
            create_contexts: vec![],
        };
        let tree = Some(self.ipc);
        let frame = self.execute("open pipe", Command::Create, &req, tree).await?;
        if frame.header.status == NtStatus::ACCESS_DENIED {
            return Err(TransportError::AccessDenied {
                what: format!("pipe {name}"),
            });
        }
        if frame.header.status != NtStatus::SUCCESS {
            return Err(status_error("open pipe", frame.header.status, Command::Create));
        }
        let resp = CreateResponse::unpack(&mut ReadCursor::new(&frame.body)).map_err(smb_err("open pipe"))?;
        Ok(resp.file_id)
    }

    /// Sends one PDU and returns the pipe message that answers it (one round trip), then
    /// completes the message with READs if it overflowed the IOCTL's output buffer.
    async fn transceive(&mut self, pipe: FileId, pdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        let req = IoctlRequest {
            ctl_code: FSCTL_PIPE_TRANSCEIVE,
            file_id: pipe,
            max_input_response: 0,
            max_output_response: u32::from(dcerpc::MAX_FRAGMENT),
            flags: FSCTL_FLAG,
            input_data: pdu,
        };
        let tree = Some(self.ipc);
        let frame = self.execute("pipe transceive", Command::Ioctl, &req, tree).await?;
        let status = frame.header.status;
        if !status.is_success_or_partial() {
            return Err(status_error("pipe transceive", status, Command::Ioctl));
        }
        let resp = IoctlResponse::unpack(&mut ReadCursor::new(&frame.body)).map_err(smb_err("pipe transceive"))?;
        let mut message = resp.output_data;
        if status == NtStatus::BUFFER_OVERFLOW {
            self.read_rest_of_message(pipe, &mut message).await?;
        }
        Ok(message)
    }

    /// Reads one whole pipe message; an empty one is an error (a pipe that answers nothing
    /// would otherwise be read until the deadline).
    async fn read_message(&mut self, pipe: FileId) -> Result<Vec<u8>, TransportError> {
        let mut message = Vec::new();
        self.read_rest_of_message(pipe, &mut message).await?;
        if message.is_empty() {
            return Err(TransportError::Smb {
                op: "pipe read",
                source: smb2::Error::invalid_data("empty pipe message while a response was due"),
            });
        }
        Ok(message)
    }

    /// Appends READs to `message` until a read completes with `STATUS_SUCCESS` ([MS-SMB2]
    /// 3.3.5.12: `STATUS_BUFFER_OVERFLOW` means more of the same message follows).
    async fn read_rest_of_message(&mut self, pipe: FileId, message: &mut Vec<u8>) -> Result<(), TransportError> {
        loop {
            let req = ReadRequest {
                padding: 0x50,
                flags: 0,
                length: u32::from(dcerpc::MAX_FRAGMENT),
                offset: 0,
                file_id: pipe,
                minimum_count: 0,
                channel: SMB2_CHANNEL_NONE,
                remaining_bytes: 0,
                read_channel_info: vec![],
            };
            let tree = Some(self.ipc);
            let frame = self.execute("pipe read", Command::Read, &req, tree).await?;
            let status = frame.header.status;
            if !status.is_success_or_partial() {
                return Err(status_error("pipe read", status, Command::Read));
            }
            let resp = ReadResponse::unpack(&mut ReadCursor::new(&frame.body)).map_err(smb_err("pipe read"))?;
            if message.len() + resp.data.len() > MAX_PIPE_MESSAGE {
                return Err(TransportError::Decode {
                    what: "pipe message",
                    source: exsweep_wire::DecodeError::TooLong {
                        what: "pipe message",
                        len: message.len() + resp.data.len(),
                        limit: MAX_PIPE_MESSAGE,
                    },
                });
            }
            let empty = resp.data.is_empty();
            message.extend_from_slice(&resp.data);
            if status != NtStatus::BUFFER_OVERFLOW {
                return Ok(());
            }
            if empty {
                return Err(TransportError::Smb {
                    op: "pipe read",
                    source: smb2::Error::invalid_data("BUFFER_OVERFLOW with no data"),
                });
            }
        }
    }

    async fn write_pipe(&mut self, pipe: FileId, pdu: Vec<u8>) -> Result<(), TransportError> {
        let req = WriteRequest {
            data_offset: 0x70,
            offset: 0,
            file_id: pipe,
            channel: 0,
            remaining_bytes: 0,
            write_channel_info_offset: 0,
            write_channel_info_length: 0,
            flags: 0,
            data: pdu,
        };
        let tree = Some(self.ipc);
        let frame = self.execute("pipe write", Command::Write, &req, tree).await?;
        if frame.header.status != NtStatus::SUCCESS {
            return Err(status_error("pipe write", frame.header.status, Command::Write));
        }
        Ok(())
    }

    fn next_call_id(&mut self) -> u32 {
        self.call_id += 1;
        self.call_id
    }

    /// Binds `syntax` on `pipe`; returns the largest fragment we may send.
    async fn bind(
        &mut self,
        pipe: FileId,
        interface: &'static str,
        syntax: dcerpc::SyntaxId,
    ) -> Result<u16, TransportError> {
        let call_id = self.next_call_id();
        let answer = self.transceive(pipe, dcerpc::encode_bind(call_id, syntax)).await?;
        let decode = |source| TransportError::Decode {
            what: "bind_ack",
            source,
        };
        match dcerpc::decode_bind_response(&answer).map_err(decode)? {
            // Never send fragments larger than either side allows.
            BindOutcome::Accepted(ack) => Ok(ack.max_recv_frag.min(dcerpc::MAX_FRAGMENT)),
            BindOutcome::ContextRejected(ack) => Err(TransportError::Bind {
                interface,
                detail: format!("context result {} reason {}", ack.result, ack.reason),
            }),
            BindOutcome::Nak { reason, .. } => Err(TransportError::Bind {
                interface,
                detail: format!("bind_nak reason {reason}"),
            }),
        }
    }

    /// The registry, opened (pipe, bind, OpenLocalMachine) on first use; a failure to open
    /// it is kept and returned again without another attempt.
    async fn winreg(&mut self) -> Result<Winreg, TransportError> {
        match &self.winreg {
            Some(Ok(w)) => return Ok(*w),
            Some(Err((kind, reason))) => {
                return Err(TransportError::Earlier {
                    kind: *kind,
                    reason: reason.clone(),
                })
            }
            None => {}
        }
        let opened = async {
            let pipe = self.open_rpc_pipe("winreg", winreg::WINREG_SYNTAX).await?;
            let hklm = self.open_local_machine(pipe).await?;
            Ok(Winreg { pipe, hklm })
        }
        .await;
        self.winreg = Some(
            opened
                .as_ref()
                .map(|w| *w)
                .map_err(|e: &TransportError| (e.kind(), e.to_string())),
        );
        opened
    }

    /// One winreg call.
    async fn call(&mut self, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, TransportError> {
        let pipe = self.winreg().await?.pipe;
        self.call_on(pipe, opnum, stub).await
    }

    /// One RPC call: request fragments out, response fragments reassembled.
    async fn call_on(&mut self, pipe: RpcPipe, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.stats.rpc_calls += 1;
        let call_id = self.next_call_id();
        let mut fragments = dcerpc::encode_request(call_id, 0, opnum, stub, pipe.max_xmit);
        let last = fragments.pop().unwrap_or_default();
        for f in fragments {
            self.write_pipe(pipe.file, f).await?;
        }
        let mut message = self.transceive(pipe.file, last).await?;
        let mut assembler = ResponseAssembler::new(call_id);
        let decode = |source| TransportError::Decode {
            what: "rpc response",
            source,
        };
        loop {
            let mut outcome = Assembled::NeedMore;
            for pdu in dcerpc::split_pdus(&message).map_err(decode)? {
                if !matches!(outcome, Assembled::NeedMore) {
                    return Err(decode(exsweep_wire::DecodeError::TrailingData {
                        what: "rpc response",
                        count: pdu.len(),
                    }));
                }
                outcome = assembler.feed(pdu).map_err(decode)?;
            }
            match outcome {
                Assembled::Complete(stub) => return Ok(stub),
                Assembled::Fault(status) => return Err(TransportError::Fault { opnum, status }),
                Assembled::NeedMore => message = self.read_message(pipe.file).await?,
            }
        }
    }

    async fn open_local_machine(&mut self, pipe: RpcPipe) -> Result<KeyHandle, TransportError> {
        let stub = self
            .call_on(
                pipe,
                winreg::OPNUM_OPEN_LOCAL_MACHINE,
                &winreg::encode_open_local_machine(KEY_READ),
            )
            .await?;
        let resp = winreg::decode_open_key_response(&stub).map_err(|source| TransportError::Decode {
            what: "OpenLocalMachine response",
            source,
        })?;
        match resp.status {
            Win32Status::SUCCESS => Ok(resp.handle),
            status => Err(TransportError::Win32 {
                call: "OpenLocalMachine",
                status,
            }),
        }
    }

    /// Opens `HKLM\...` (cached for the session). `Ok(None)` when the key does not exist.
    async fn open(&mut self, path: &str) -> Result<Option<KeyHandle>, TransportError> {
        let sub = hklm_subkey(path)?;
        let hklm = self.winreg().await?.hklm;
        if sub.is_empty() {
            return Ok(Some(hklm));
        }
        let cache_key = sub.to_ascii_lowercase();
        if let Some(known) = self.keys.get(&cache_key) {
            return Ok(*known);
        }
        let stub = winreg::encode_open_key(&hklm, sub, KEY_READ);
        let answer = self.call(winreg::OPNUM_OPEN_KEY, &stub).await?;
        let resp = winreg::decode_open_key_response(&answer).map_err(|source| TransportError::Decode {
            what: "BaseRegOpenKey response",
            source,
        })?;
        let handle = match resp.status {
            Win32Status::SUCCESS => Some(resp.handle),
            Win32Status::FILE_NOT_FOUND => None,
            status => {
                return Err(TransportError::Win32 {
                    call: "BaseRegOpenKey",
                    status,
                })
            }
        };
        self.keys.insert(cache_key, handle);
        Ok(handle)
    }

    /// Whether `HKLM\...` exists (and may be opened for reading).
    pub async fn key_exists(&mut self, path: &str) -> Result<bool, TransportError> {
        Ok(self.open(path).await?.is_some())
    }

    /// Reads one value. `Ok(None)` when the key or the value does not exist.
    pub async fn query_value(&mut self, path: &str, name: &str) -> Result<Option<RegData>, TransportError> {
        let Some(key) = self.open(path).await? else {
            return Ok(None);
        };
        let mut buffer = INITIAL_VALUE_BUFFER;
        // One retry with the size the server asked for; a second ERROR_MORE_DATA (the value
        // grew in between) gets one more, then gives up.
        for _ in 0..3 {
            let answer = self
                .call(
                    winreg::OPNUM_QUERY_VALUE,
                    &winreg::encode_query_value(&key, name, buffer),
                )
                .await?;
            let resp = winreg::decode_query_value_response(&answer).map_err(|source| TransportError::Decode {
                what: "BaseRegQueryValue response",
                source,
            })?;
            match resp.status {
                Win32Status::SUCCESS => {
                    let value_type = resp.value_type.unwrap_or(0);
                    let data = resp.data.unwrap_or_default();
                    // More than the buffer we offered is a broken or hostile server.
                    if data.len() > buffer as usize {
                        return Err(TransportError::Decode {
                            what: "BaseRegQueryValue response",
                            source: exsweep_wire::DecodeError::TooLong {
                                what: "lpData",
                                len: data.len(),
                                limit: buffer as usize,
                            },
                        });
                    }
                    return Ok(Some(RegData::decode(value_type, &data)));
                }
                Win32Status::FILE_NOT_FOUND => return Ok(None),
                Win32Status::MORE_DATA => {
                    let needed = resp.data_size.unwrap_or(0);
                    if needed <= buffer || needed > MAX_VALUE_BUFFER {
                        return Err(TransportError::Win32 {
                            call: "BaseRegQueryValue",
                            status: resp.status,
                        });
                    }
                    buffer = needed;
                }
                status => {
                    return Err(TransportError::Win32 {
                        call: "BaseRegQueryValue",
                        status,
                    })
                }
            }
        }
        Err(TransportError::Win32 {
            call: "BaseRegQueryValue",
            status: Win32Status::MORE_DATA,
        })
    }

    /// The self-relative security descriptor (DACL, owner and group as the server gives them)
    /// of `HKLM\...`. `Ok(None)` when the key does not exist.
    pub async fn key_security(&mut self, path: &str) -> Result<Option<Vec<u8>>, TransportError> {
        const INSUFFICIENT_BUFFER: Win32Status = Win32Status(122);
        const MAX_DESCRIPTOR: u32 = 64 * 1024;
        let Some(key) = self.open(path).await? else {
            return Ok(None);
        };
        let mut capacity = 4096;
        for _ in 0..2 {
            let stub = winreg::encode_get_key_security(&key, winreg::DACL_SECURITY_INFORMATION, capacity);
            let answer = self.call(winreg::OPNUM_GET_KEY_SECURITY, &stub).await?;
            let resp = winreg::decode_get_key_security_response(&answer).map_err(|source| TransportError::Decode {
                what: "BaseRegGetKeySecurity response",
                source,
            })?;
            match resp.status {
                Win32Status::SUCCESS => {
                    return resp.descriptor.map(Some).ok_or_else(|| TransportError::Decode {
                        what: "BaseRegGetKeySecurity response",
                        source: exsweep_wire::DecodeError::Invalid {
                            what: "lpSecurityDescriptor",
                            detail: "success without a descriptor".into(),
                        },
                    })
                }
                INSUFFICIENT_BUFFER if resp.needed > capacity && resp.needed <= MAX_DESCRIPTOR => {
                    capacity = resp.needed
                }
                status => {
                    return Err(TransportError::Win32 {
                        call: "BaseRegGetKeySecurity",
                        status,
                    })
                }
            }
        }
        Err(TransportError::Win32 {
            call: "BaseRegGetKeySecurity",
            status: INSUFFICIENT_BUFFER,
        })
    }

    /// Names of the subkeys of `path`, in the server's order. `Ok(None)` when it does not exist.
    pub async fn subkeys(&mut self, path: &str) -> Result<Option<Vec<String>>, TransportError> {
        let Some(key) = self.open(path).await? else {
            return Ok(None);
        };
        let mut names = Vec::new();
        let mut capacity = NAME_CAPACITY;
        let mut index = 0;
        while index < MAX_ENUM_ENTRIES {
            let answer = self
                .call(winreg::OPNUM_ENUM_KEY, &winreg::encode_enum_key(&key, index, capacity))
                .await?;
            let resp = winreg::decode_enum_key_response(&answer).map_err(|source| TransportError::Decode {
                what: "BaseRegEnumKey response",
                source,
            })?;
            match resp.status {
                Win32Status::SUCCESS => names.push(resp.name.unwrap_or_default()),
                Win32Status::NO_MORE_ITEMS => return Ok(Some(names)),
                // A name longer than offered: once more with room for the longest name.
                Win32Status::MORE_DATA if capacity < winreg::MAX_NAME_UNITS => {
                    capacity = winreg::MAX_NAME_UNITS;
                    continue;
                }
                status => {
                    return Err(TransportError::Win32 {
                        call: "BaseRegEnumKey",
                        status,
                    })
                }
            }
            index += 1;
        }
        Err(too_many_entries(path))
    }

    /// Names of the values of `path`, in the server's order. `Ok(None)` when it does not exist.
    pub async fn value_names(&mut self, path: &str) -> Result<Option<Vec<String>>, TransportError> {
        let Some(key) = self.open(path).await? else {
            return Ok(None);
        };
        let mut names = Vec::new();
        let mut capacity = NAME_CAPACITY;
        let mut index = 0;
        while index < MAX_ENUM_ENTRIES {
            let stub = winreg::encode_enum_value(&key, index, capacity, None);
            let answer = self.call(winreg::OPNUM_ENUM_VALUE, &stub).await?;
            let resp = winreg::decode_enum_value_response(&answer).map_err(|source| TransportError::Decode {
                what: "BaseRegEnumValue response",
                source,
            })?;
            match resp.status {
                Win32Status::SUCCESS => names.push(resp.name.unwrap_or_default()),
                Win32Status::NO_MORE_ITEMS => return Ok(Some(names)),
                Win32Status::MORE_DATA if capacity < winreg::MAX_NAME_UNITS => {
                    capacity = winreg::MAX_NAME_UNITS;
                    continue;
                }
                status => {
                    return Err(TransportError::Win32 {
                        call: "BaseRegEnumValue",
                        status,
                    })
                }
            }
            index += 1;
        }
        Err(too_many_entries(path))
    }

    /// Closes every key handle, the pipe and the tree, and logs off; dropping the client then
    /// closes the socket. Best effort: the host has already given what it will give.
    pub async fn close(mut self) {
        let mut pipes = Vec::new();
        if let Some(Ok(registry)) = self.winreg {
            let handles: Vec<KeyHandle> = self.keys.drain().filter_map(|(_, h)| h).collect();
            for h in handles.into_iter().chain(std::iter::once(registry.hklm)) {
                if self
                    .call(winreg::OPNUM_CLOSE_KEY, &winreg::encode_close_key(&h))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            pipes.push(registry.pipe.file);
        }
        let tree = Some(self.ipc);
        for pipe in [self.svcctl, self.lsarpc].into_iter().flatten() {
            pipes.push(pipe.file);
        }
        for file_id in pipes {
            let _ = self
                .execute("close pipe", Command::Close, &CloseRequest { flags: 0, file_id }, tree)
                .await;
        }
        let trees: Vec<TreeId> = self
            .shares
            .drain()
            .map(|(_, t)| t)
            .chain(std::iter::once(self.ipc))
            .collect();
        for tree in trees {
            let _ = self
                .execute(
                    "tree disconnect",
                    Command::TreeDisconnect,
                    &TreeDisconnectRequest,
                    Some(tree),
                )
                .await;
        }
        let _ = self
            .execute("logoff", Command::Logoff, &smb2::msg::logoff::LogoffRequest, None)
            .await;
    }
}

fn too_many_entries(path: &str) -> TransportError {
    TransportError::Decode {
        what: "registry enumeration",
        source: exsweep_wire::DecodeError::TooLong {
            what: if path.is_empty() { "entries" } else { "entries of a key" },
            len: MAX_ENUM_ENTRIES as usize,
            limit: MAX_ENUM_ENTRIES as usize,
        },
    }
}

/// `HKLM\A\B` → `A\B`; anything but HKLM is refused (OpenLocalMachine is the only hive opened).
fn hklm_subkey(path: &str) -> Result<&str, TransportError> {
    let (hive, rest) = path.split_once('\\').unwrap_or((path, ""));
    if hive.eq_ignore_ascii_case("HKLM") || hive.eq_ignore_ascii_case("HKEY_LOCAL_MACHINE") {
        Ok(rest.trim_matches('\\'))
    } else {
        Err(TransportError::UnsupportedHive(path.to_owned()))
    }
}
