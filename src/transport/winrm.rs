//! WinRM transport: one TCP connection per host, NTLMv2 over HTTP (`Authorization:
//! Negotiate`); on port 5985 every body after the logon is sealed as Windows requires
//! (`multipart/encrypted`), on 5986 TLS protects it (verified against the system's roots unless
//! the host is named for accepting a self-signed certificate). The NTLM security context lives as long as the connection, which
//! is why exsweep speaks HTTP/1.1 itself (see README, "Crates and why"). Codecs live in
//! `exsweep-wire`; this module moves bytes and keeps the per-direction sealing state.

use std::time::Duration;

use exsweep_wire::base64::{decode as unbase64, encode as base64};
use exsweep_wire::certhash::{end_point_hash, EndPointHash};
use exsweep_wire::ntlmv2::{self, AuthInput, Direction, Sealer};
use exsweep_wire::spnego::{self, NegState, NTLMSSP_OID};
use exsweep_wire::wsman::{self, Answer, Fault, FaultKind, Header, Item};
use exsweep_wire::{http1, httpenc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{io_error, TransportError};
use crate::credentials::Credential;
use crate::facts::FailureKind;

/// Largest WS-Management envelope we ask the server to send: WinRM 2.0's default limit is
/// 150 KB (what pywinrm and other clients send), and a larger request is refused there.
const MAX_ENVELOPE: u32 = 153_600;
/// The server's operation timeout we ask for; the client waits a little longer, so a Receive
/// that times out on the server comes back as a fault and is asked again.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(20);
const CLIENT_MARGIN: Duration = Duration::from_secs(10);
/// Items asked for per Enumerate/Pull; more come with Pull.
const MAX_ELEMENTS: u32 = 1000;
/// Pulls one enumeration may take before we give up on a server that never ends it.
const MAX_PULLS: usize = 1000;
/// Receives one command may take.
const MAX_RECEIVES: usize = 1000;
/// Instances one enumeration may return, and output one command may print: far above what a
/// scan reads, far below what would exhaust memory.
const MAX_ITEMS: usize = 200_000;
const MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// Where and as whom to connect over WinRM.
pub struct WinrmTarget<'a> {
    pub host: &'a str,
    pub port: u16,
    pub credential: &'a Credential,
    pub timeout: Duration,
    /// Bound on the TCP connection alone, so a filtered port fails fast.
    pub connect_timeout: Duration,
    /// `None`: HTTP with sealed bodies; `Some`: HTTPS.
    pub tls: Option<TlsMode>,
}

/// How the server's certificate is checked over HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Against the system's trusted roots and the host name (the default).
    Verify,
    /// Any certificate: only for hosts named with `--winrm-accept-self-signed`.
    AcceptSelfSigned,
}

/// The byte stream under HTTP: a TCP socket or TLS over one.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

mod tls {
    //! rustls configurations: verified by default, or accepting anything for named hosts.
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// Verified against the platform's roots (an Active Directory CA is usually there).
    pub fn verifying() -> Result<rustls::ClientConfig, String> {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            let _ = roots.add(cert);
        }
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())
            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
    }

    #[derive(Debug)]
    struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// Any certificate is accepted (signatures are still checked): for named hosts only.
    pub fn accepting_self_signed() -> Result<rustls::ClientConfig, String> {
        let p = provider();
        rustls::ClientConfig::builder_with_provider(Arc::clone(&p))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())
            .map(|b| {
                b.dangerous()
                    .with_custom_certificate_verifier(Arc::new(AcceptAny(p)))
                    .with_no_client_auth()
            })
    }
}

/// Counters for one session, for the closing figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct WinrmStats {
    pub round_trips: u32,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// An authenticated, sealing WinRM session to one host.
pub struct WinrmSession {
    stream: Box<dyn Io>,
    /// Over HTTPS the bodies are not sealed (TLS protects them).
    sealed: bool,
    parser: http1::ResponseParser,
    host_header: String,
    url: String,
    outgoing: Sealer,
    incoming: Sealer,
    timeout: Duration,
    next_id: u64,
    /// Over TLS: the hash binding the NTLM logon to this TLS connection.
    channel_bindings: Option<[u8; 16]>,
    /// Set when the connection can no longer be trusted (socket error, timeout, a reply that
    /// did not decode): the HTTP parser and the RC4 stream may be out of step, so every later
    /// call fails at once with this reason instead of reading a late reply as its own.
    broken: Option<(FailureKind, String)>,
    pub stats: WinrmStats,
}

/// Random bytes from the operating system (client challenge, session key).
fn random<const N: usize>() -> Result<[u8; N], TransportError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| TransportError::Io {
        op: "random",
        addr: String::new(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(out)
}

/// Now as a FILETIME (100 ns since 1601), for a CHALLENGE without a timestamp.
fn filetime_now() -> u64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() / 100) as u64;
    unix + 116_444_736_000_000_000
}

/// The NTLM token of a `WWW-Authenticate: Negotiate <base64>` header.
fn negotiate_token(response: &http1::Response) -> Option<Vec<u8>> {
    response
        .headers_named("WWW-Authenticate")
        .find_map(|v| v.strip_prefix("Negotiate ").or_else(|| v.strip_prefix("NTLM ")))
        .and_then(unbase64)
}

fn protocol(detail: impl Into<String>) -> TransportError {
    TransportError::Winrm {
        kind: FailureKind::Protocol,
        detail: detail.into(),
    }
}

impl WinrmSession {
    /// Connects and logs on (NEGOTIATE, CHALLENGE, AUTHENTICATE on one connection).
    pub async fn connect(target: WinrmTarget<'_>) -> Result<Self, TransportError> {
        let addr = super::socket_addr(target.host, target.port);
        let connect_timeout = target.connect_timeout.min(target.timeout);
        let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect(&addr)).await {
            Ok(s) => s.map_err(io_error("connect", &addr))?,
            Err(_) => {
                return Err(TransportError::Io {
                    op: "connect",
                    addr,
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no TCP connection within {connect_timeout:?} (port filtered?)"),
                    ),
                })
            }
        };
        let _ = tcp.set_nodelay(true);
        let mut channel_bindings = None;
        let stream: Box<dyn Io> = match target.tls {
            None => Box::new(tcp),
            Some(mode) => {
                let config = match mode {
                    TlsMode::Verify => tls::verifying(),
                    TlsMode::AcceptSelfSigned => tls::accepting_self_signed(),
                }
                .map_err(|e| protocol(format!("TLS setup: {e}")))?;
                let name = rustls::pki_types::ServerName::try_from(target.host.to_owned())
                    .map_err(|e| protocol(format!("TLS server name {:?}: {e}", target.host)))?;
                let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
                match tokio::time::timeout(target.timeout, connector.connect(name, tcp)).await {
                    Ok(Ok(s)) => {
                        // RFC 5929 tls-server-end-point: the certificate hashed with the hash
                        // of its own signature (SHA-256 for MD5 and SHA-1). An unknown one
                        // sends no binding: a wrong binding fails even a relaxed server.
                        if let Some(cert) = s.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                            let algorithm = match end_point_hash(cert.as_ref()) {
                                Ok(Some(EndPointHash::Sha256)) => Some(&ring::digest::SHA256),
                                Ok(Some(EndPointHash::Sha384)) => Some(&ring::digest::SHA384),
                                Ok(Some(EndPointHash::Sha512)) => Some(&ring::digest::SHA512),
                                Ok(None) | Err(_) => None,
                            };
                            channel_bindings = algorithm.map(|a| {
                                let mut data = b"tls-server-end-point:".to_vec();
                                data.extend_from_slice(ring::digest::digest(a, cert.as_ref()).as_ref());
                                ntlmv2::channel_binding_hash(&data)
                            });
                        }
                        Box::new(s)
                    }
                    Ok(Err(e)) => {
                        return Err(TransportError::Winrm {
                            kind: FailureKind::Protocol,
                            detail: format!("TLS with {addr}: {e}"),
                        })
                    }
                    Err(_) => return Err(TransportError::Timeout(target.timeout)),
                }
            }
        };
        let scheme = if target.tls.is_some() { "https" } else { "http" };
        let mut session = WinrmSession {
            stream,
            sealed: target.tls.is_none(),
            parser: http1::ResponseParser::new(),
            host_header: addr.clone(),
            url: format!("{scheme}://{addr}/wsman"),
            outgoing: Sealer::new(&[0; 16], Direction::ClientToServer, 0),
            incoming: Sealer::new(&[0; 16], Direction::ServerToClient, 0),
            timeout: target.timeout.min(OPERATION_TIMEOUT + CLIENT_MARGIN),
            next_id: 0,
            channel_bindings,
            broken: None,
            stats: WinrmStats::default(),
        };
        session.logon(target.credential).await?;
        Ok(session)
    }

    async fn logon(&mut self, credential: &Credential) -> Result<(), TransportError> {
        let host = self
            .host_header
            .rsplit_once(':')
            .map_or(self.host_header.as_str(), |(h, _)| h);
        let spn = (!self.sealed).then(|| format!("HTTP/{}", host.trim_start_matches('[').trim_end_matches(']')));
        let negotiate = ntlmv2::encode_negotiate();
        let auth = format!("Negotiate {}", base64(&negotiate));
        let first = self.exchange(&[("Authorization", auth.as_str())], &[]).await?;
        let (wrapped, challenge) = match (first.status, negotiate_token(&first)) {
            (401, Some(token)) if token.starts_with(b"NTLMSSP\0") => (false, token),
            // A bare challenge to a raw NEGOTIATE: the server wants SPNEGO. No password has
            // been tried yet, so asking again costs nothing against the lockout.
            (401, None) => (true, self.spnego_challenge(&negotiate).await?),
            (status, _) => return Err(protocol(format!("HTTP {status} where an NTLM CHALLENGE was expected"))),
        };
        let input = AuthInput {
            user: &credential.user,
            domain: &credential.domain,
            password: credential.password.expose(),
            workstation: "EXSWEEP",
            client_challenge: random::<8>()?,
            exported_session_key: random::<16>()?,
            fallback_time: filetime_now(),
            with_mic: true,
            channel_bindings: self.channel_bindings,
            target_spn: spn.as_deref(),
        };
        let authenticated =
            ntlmv2::authenticate(&negotiate, &challenge, &input).map_err(|source| TransportError::Decode {
                what: "NTLM CHALLENGE",
                source,
            })?;
        let key = authenticated.exported_session_key;
        let mut outgoing = Sealer::new(&key, Direction::ClientToServer, authenticated.flags);
        let mut incoming = Sealer::new(&key, Direction::ServerToClient, authenticated.flags);
        let token = if wrapped {
            // The AUTHENTICATE carries a MIC, so SPNEGO wants a mechListMIC: the first signature
            // of the session, after which the keystream starts again.
            let mic = outgoing.sign(&spnego::mech_type_list());
            outgoing.reset_keystream();
            spnego::encode_resp(&authenticated.message, Some(&mic))
        } else {
            authenticated.message.clone()
        };
        let auth = format!("Negotiate {}", base64(&token));
        let second = self.exchange(&[("Authorization", auth.as_str())], &[]).await?;
        match second.status {
            200 | 204 => {}
            401 => {
                return Err(TransportError::Logon {
                    account: credential.account(),
                    detail: "WinRM answered 401 to the NTLM AUTHENTICATE".into(),
                })
            }
            status => return Err(protocol(format!("HTTP {status} after the NTLM AUTHENTICATE"))),
        }
        if wrapped {
            // accept-completed with the server's mechListMIC, which proves it knows the session
            // key (and moves the incoming sequence on, as the server's did).
            let token = negotiate_token(&second).ok_or_else(|| protocol("no SPNEGO answer to the AUTHENTICATE"))?;
            let answer = spnego::decode_resp(&token).map_err(|source| TransportError::Decode {
                what: "SPNEGO NegTokenResp",
                source,
            })?;
            if answer.state != Some(NegState::AcceptCompleted) {
                return Err(protocol(format!(
                    "SPNEGO ended in {:?}, not accept-completed",
                    answer.state
                )));
            }
            let mic = answer
                .mech_list_mic
                .ok_or_else(|| protocol("SPNEGO accept-completed without the server's mechListMIC"))?;
            incoming
                .verify(&spnego::mech_type_list(), &mic)
                .map_err(|source| TransportError::Decode {
                    what: "SPNEGO mechListMIC",
                    source,
                })?;
            incoming.reset_keystream();
        }
        if self.sealed {
            self.outgoing = outgoing;
            self.incoming = incoming;
        }
        Ok(())
    }

    /// The NTLM CHALLENGE, asked for again inside a SPNEGO NegTokenInit.
    async fn spnego_challenge(&mut self, negotiate: &[u8]) -> Result<Vec<u8>, TransportError> {
        let auth = format!("Negotiate {}", base64(&spnego::encode_init(negotiate)));
        let answer = self.exchange(&[("Authorization", auth.as_str())], &[]).await?;
        let token = match (answer.status, negotiate_token(&answer)) {
            (401, Some(token)) => token,
            (status, _) => {
                return Err(protocol(format!(
                "HTTP {status} to a SPNEGO NegTokenInit offering NTLM: the server takes neither raw nor wrapped NTLM"
            )))
            }
        };
        let answer = spnego::decode_resp(&token).map_err(|source| TransportError::Decode {
            what: "SPNEGO NegTokenResp",
            source,
        })?;
        if answer.state == Some(NegState::Reject) || answer.supported_mech.as_deref().is_some_and(|m| m != NTLMSSP_OID)
        {
            return Err(protocol("the server's SPNEGO does not accept NTLM"));
        }
        answer
            .response_token
            .filter(|t| t.starts_with(b"NTLMSSP\0"))
            .ok_or_else(|| protocol("SPNEGO answer without an NTLM CHALLENGE"))
    }

    /// One HTTP request and its response, within the session's timeout. A failure that may
    /// leave the connection out of step breaks the session for good.
    async fn exchange(&mut self, headers: &[(&str, &str)], body: &[u8]) -> Result<http1::Response, TransportError> {
        if let Some((kind, reason)) = &self.broken {
            return Err(TransportError::Earlier {
                kind: *kind,
                reason: reason.clone(),
            });
        }
        let result = self.exchange_once(headers, body).await;
        if let Err(e) = &result {
            self.broken = Some((e.kind(), format!("WinRM session ended: {e}")));
        }
        result
    }

    async fn exchange_once(
        &mut self,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<http1::Response, TransportError> {
        let mut all = vec![("User-Agent", "exsweep"), ("Connection", "Keep-Alive")];
        all.extend_from_slice(headers);
        let request = http1::encode_request("POST", "/wsman", &self.host_header, &all, body);
        let addr = self.host_header.clone();
        let timeout = self.timeout;
        let round_trip = async {
            self.stream.write_all(&request).await.map_err(io_error("send", &addr))?;
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = self.stream.read(&mut buf).await.map_err(io_error("receive", &addr))?;
                if n == 0 {
                    return Err(TransportError::Io {
                        op: "receive",
                        addr: addr.clone(),
                        source: std::io::ErrorKind::UnexpectedEof.into(),
                    });
                }
                self.stats.bytes_received += n as u64;
                if let Some(response) = self.parser.feed(&buf[..n]).map_err(|source| TransportError::Decode {
                    what: "HTTP response",
                    source,
                })? {
                    return Ok(response);
                }
            }
        };
        self.stats.round_trips += 1;
        self.stats.bytes_sent += request.len() as u64;
        tokio::time::timeout(timeout, round_trip)
            .await
            .unwrap_or(Err(TransportError::Timeout(timeout)))
    }

    fn message_id(&mut self) -> String {
        self.next_id += 1;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        format!(
            "uuid:{:08X}-{:04X}-4000-8000-{:012X}",
            (nanos >> 32) as u32,
            self.next_id & 0xFFFF,
            nanos & 0xFFFF_FFFF_FFFF
        )
    }

    /// Sends one envelope, sealed, and returns the server's answer or its fault.
    pub async fn call(
        &mut self,
        resource_uri: &str,
        action: &str,
        selectors: &[(&str, &str)],
        body: &str,
    ) -> Result<Result<Answer, Fault>, TransportError> {
        let message_id = self.message_id();
        let xml = wsman::envelope(
            &Header {
                to: &self.url,
                resource_uri,
                action,
                message_id: &message_id,
                max_envelope_size: MAX_ENVELOPE,
                timeout_secs: OPERATION_TIMEOUT.as_secs() as u32,
                selectors,
                options: &[],
            },
            body,
        );
        let response = if self.sealed {
            let (signature, sealed) = self.outgoing.seal(xml.as_bytes());
            let framed = httpenc::encode(xml.len(), &signature, &sealed);
            self.exchange(&[("Content-Type", httpenc::CONTENT_TYPE)], &framed)
                .await?
        } else {
            self.exchange(
                &[("Content-Type", "application/soap+xml;charset=UTF-8")],
                xml.as_bytes(),
            )
            .await?
        };
        if response.status == 401 {
            return Err(TransportError::Winrm {
                kind: FailureKind::AuthFailed,
                detail: "WinRM answered 401 after the logon".into(),
            });
        }
        let content_type = response.header("Content-Type").unwrap_or("");
        if !self.sealed {
            if !content_type.to_ascii_lowercase().starts_with("application/soap+xml") {
                return Err(protocol(format!(
                    "HTTP {} with content type {content_type:?}",
                    response.status
                )));
            }
            return wsman::parse_answer(&response.body).map_err(|source| TransportError::Decode {
                what: "WS-Management answer",
                source,
            });
        }
        if !content_type.to_ascii_lowercase().starts_with("multipart/encrypted") {
            return Err(protocol(format!(
                "HTTP {} with an unsealed body ({content_type:?}); a WinRM server seals every answer",
                response.status
            )));
        }
        let unsealed = httpenc::decode(&response.body)
            .map_err(|source| TransportError::Decode {
                what: "encrypted WinRM body",
                source,
            })
            .and_then(|part| {
                self.incoming
                    .unseal(&part.signature, part.sealed)
                    .map_err(|source| TransportError::Decode {
                        what: "sealed WinRM body",
                        source,
                    })
            });
        // A body that does not unseal leaves the RC4 stream out of step: nothing later can be read.
        let plain = match unsealed {
            Ok(p) => p,
            Err(e) => {
                self.broken = Some((e.kind(), format!("WinRM session ended: {e}")));
                return Err(e);
            }
        };
        wsman::parse_answer(&plain).map_err(|source| TransportError::Decode {
            what: "WS-Management answer",
            source,
        })
    }

    /// Every instance of a WMI class (`Win32_Service`), or of a WQL query's answer.
    pub async fn enumerate(&mut self, class: &str, wql: Option<&str>) -> Result<Vec<Item>, TransportError> {
        let resource = format!("{}{}", wsman::RESOURCE_CIMV2, if wql.is_some() { "*" } else { class });
        let mut answer = self
            .call(
                &resource,
                wsman::ACTION_ENUMERATE,
                &[],
                &wsman::enumerate_body(wql, MAX_ELEMENTS),
            )
            .await?;
        let mut out = Vec::new();
        for _ in 0..MAX_PULLS {
            match answer {
                Err(fault) => return Err(fault_error(fault, class)),
                Ok(Answer::Items {
                    items,
                    context,
                    end_of_sequence,
                }) => {
                    out.extend(items);
                    if out.len() > MAX_ITEMS {
                        return Err(protocol(format!("enumeration of {class} passed {MAX_ITEMS} items")));
                    }
                    match context {
                        Some(ctx) if !end_of_sequence => {
                            answer = self
                                .call(
                                    &resource,
                                    wsman::ACTION_PULL,
                                    &[],
                                    &wsman::pull_body(&ctx, MAX_ELEMENTS),
                                )
                                .await?;
                        }
                        _ => return Ok(out),
                    }
                }
                Ok(other) => return Err(protocol(format!("unexpected answer to Enumerate: {other:?}"))),
            }
        }
        Err(protocol(format!(
            "enumeration of {class} did not end after {MAX_PULLS} pulls"
        )))
    }

    /// A `StdRegProv` method on HKLM; the output item (with `ReturnValue`).
    pub async fn registry(&mut self, method: &str, key: &str, value: Option<&str>) -> Result<Item, TransportError> {
        let hklm = wsman::HKLM.to_string();
        let mut params = vec![("hDefKey", hklm.as_str()), ("sSubKeyName", key)];
        if let Some(v) = value {
            params.push(("sValueName", v));
        }
        let body = wsman::invoke_body(wsman::RESOURCE_STDREGPROV, method, &params);
        let action = format!("{}/{method}", wsman::RESOURCE_STDREGPROV);
        match self.call(wsman::RESOURCE_STDREGPROV, &action, &[], &body).await? {
            Ok(Answer::Output(item)) => Ok(item),
            Ok(other) => Err(protocol(format!("unexpected answer to {method}: {other:?}"))),
            Err(fault) => Err(fault_error(fault, "StdRegProv")),
        }
    }

    /// Runs a command in a cmd shell: stdout, stderr, exit code. The shell is always deleted.
    pub async fn run_command(
        &mut self,
        command: &str,
        arguments: &[&str],
    ) -> Result<(Vec<u8>, Vec<u8>, i64), TransportError> {
        let created = self
            .call(
                wsman::RESOURCE_CMD,
                wsman::ACTION_CREATE,
                &[],
                &wsman::shell_create_body(),
            )
            .await?;
        let shell_id = match created {
            Ok(Answer::ShellCreated { shell_id }) => shell_id,
            Ok(other) => return Err(protocol(format!("unexpected answer to Create: {other:?}"))),
            Err(fault) => return Err(fault_error(fault, "shell")),
        };
        let result = self.run_in_shell(&shell_id, command, arguments).await;
        let selector = [("ShellId", shell_id.as_str())];
        let _ = self
            .call(wsman::RESOURCE_CMD, wsman::ACTION_DELETE, &selector, "")
            .await;
        result
    }

    async fn run_in_shell(
        &mut self,
        shell_id: &str,
        command: &str,
        arguments: &[&str],
    ) -> Result<(Vec<u8>, Vec<u8>, i64), TransportError> {
        let selector = [("ShellId", shell_id)];
        let started = self
            .call(
                wsman::RESOURCE_CMD,
                wsman::ACTION_COMMAND,
                &selector,
                &wsman::command_body(command, arguments),
            )
            .await?;
        let command_id = match started {
            Ok(Answer::CommandStarted { command_id }) => command_id,
            Ok(other) => return Err(protocol(format!("unexpected answer to Command: {other:?}"))),
            Err(fault) => return Err(fault_error(fault, "command")),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        for _ in 0..MAX_RECEIVES {
            match self
                .call(
                    wsman::RESOURCE_CMD,
                    wsman::ACTION_RECEIVE,
                    &selector,
                    &wsman::receive_body(&command_id),
                )
                .await?
            {
                Ok(Answer::Received {
                    stdout,
                    stderr,
                    done,
                    exit_code,
                }) => {
                    out.extend(stdout);
                    err.extend(stderr);
                    if out.len() + err.len() > MAX_OUTPUT {
                        return Err(protocol(format!("command output passed {MAX_OUTPUT} bytes")));
                    }
                    if done {
                        let body = wsman::signal_body(&command_id, wsman::SIGNAL_TERMINATE);
                        let _ = self
                            .call(wsman::RESOURCE_CMD, wsman::ACTION_SIGNAL, &selector, &body)
                            .await;
                        // No exit code is not success: -1 says the server did not tell.
                        return Ok((out, err, exit_code.unwrap_or(-1)));
                    }
                }
                // A Receive that times out while the command runs: ask again.
                Err(fault) if fault.kind() == FaultKind::Timeout => continue,
                Ok(other) => return Err(protocol(format!("unexpected answer to Receive: {other:?}"))),
                Err(fault) => return Err(fault_error(fault, "receive")),
            }
        }
        Err(protocol(format!("command did not end after {MAX_RECEIVES} receives")))
    }
}

/// A fault as a transport error with its coarse kind.
fn fault_error(fault: Fault, what: &str) -> TransportError {
    let kind = match fault.kind() {
        FaultKind::AccessDenied => FailureKind::AccessDenied,
        FaultKind::Timeout => FailureKind::Timeout,
        _ => FailureKind::Protocol,
    };
    let text = if fault.message.is_empty() {
        &fault.reason
    } else {
        &fault.message
    };
    TransportError::Winrm {
        kind,
        detail: format!("{what}: {} ({})", text, fault.subcode),
    }
}
