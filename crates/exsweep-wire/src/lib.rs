//! Sans-IO wire formats for exsweep: byte-exact encoders and bounded, panic-free decoders.
//!
//! Nothing here does I/O, reads a clock or draws random numbers. Each decoder takes `&[u8]`
//! and returns a value or a [`DecodeError`]; every length announced on the wire is checked
//! against the bytes present and against a fixed cap before anything is allocated.
//!
//! Layers, bottom up:
//! - [`ndr`]: NDR 2.0 (little-endian) primitives, conformant-varying arrays, unicode strings.
//! - [`dcerpc`]: connection-oriented DCE/RPC PDUs (bind, bind_ack, request, response, fault)
//!   and fragment reassembly (`PFC_LAST_FRAG`).
//! - [`winreg`]: [MS-RRP] stubs for the read-only registry calls exsweep makes.
//! - [`regvalue`]: registry value types and their data.

pub mod dcerpc;
mod error;
pub mod ndr;
pub mod regvalue;
pub mod winreg;

pub use error::DecodeError;
