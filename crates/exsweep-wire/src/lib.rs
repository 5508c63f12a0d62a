//! Sans-IO wire formats for exsweep: byte-exact encoders and bounded, panic-free decoders.
//!
//! Nothing here does I/O, reads a clock or draws random numbers (NTLM's client challenge,
//! session key and time are parameters). Each decoder takes `&[u8]`
//! and returns a value or a [`DecodeError`]; every length announced on the wire is checked
//! against the bytes present and against a fixed cap before anything is allocated.
//!
//! Layers, bottom up:
//! - [`ndr`]: NDR 2.0 (little-endian) primitives, conformant-varying arrays, unicode strings.
//! - [`dcerpc`]: connection-oriented DCE/RPC PDUs (bind, bind_ack, request, response, fault)
//!   and fragment reassembly (`PFC_LAST_FRAG`).
//! - [`winreg`]: [MS-RRP] stubs for the read-only registry calls exsweep makes.
//! - [`regvalue`]: registry value types and their data; [`secdesc`]: security descriptors.
//! - [`svcctl`]: [MS-SCMR] stubs for listing services and their states; [`lsa`]: [MS-LSAD] stubs
//!   for the audit policy.
//! - [`ntlm`], [`smbprobe`]: the NTLM CHALLENGE and the SMB1/SMB2 negotiations read before
//!   any logon (SMB1 acceptance, signing, the server's names and OS version).
//! - [`ntlmv2`], [`httpenc`]: NTLMv2 authentication and session security, and the
//!   `multipart/encrypted` framing of sealed WinRM bodies.
//! - [`http1`], [`wsman`]: HTTP/1.1 responses parsed as they arrive, and WS-Management
//!   envelopes and answers (WMI items, StdRegProv output, shell streams, faults).
//! - [`spnego`]: the SPNEGO wrapping of NTLM a WinRM server may ask for.
//! - [`pe`]: PE file versions (`VS_VERSIONINFO`), located by asking for byte ranges.

pub mod base64;
pub mod certhash;
pub mod dcerpc;
mod der;
mod error;
pub mod http1;
pub mod httpenc;
mod le;
pub mod lsa;
pub mod ndr;
pub mod ntlm;
pub mod ntlmv2;
pub mod pe;
pub mod regvalue;
pub mod secdesc;
pub mod smbprobe;
pub mod spnego;
pub mod svcctl;
pub mod winreg;
pub mod wsman;

pub use error::DecodeError;
