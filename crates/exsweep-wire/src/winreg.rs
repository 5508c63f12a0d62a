//! [MS-RRP] Windows Remote Registry Protocol: the read-only calls exsweep makes over
//! `\PIPE\winreg`, as NDR stubs.
//!
//! Encoders produce request stubs (to wrap in [`crate::dcerpc::encode_request`]); decoders
//! take a reassembled response stub. Every decoder checks that the stub is consumed exactly.

use crate::dcerpc::SyntaxId;
use crate::ndr::{read_unicode_string, utf16_units, write_unicode_string, Reader, Writer};
use crate::DecodeError;

/// [MS-RRP] 1.9: winreg, 338cd001-2244-31f1-aaaa-900038001003 v1.0.
pub const WINREG_SYNTAX: SyntaxId = SyntaxId::new(
    0x338c_d001,
    0x2244,
    0x31f1,
    [0xaa, 0xaa, 0x90, 0x00, 0x38, 0x00, 0x10, 0x03],
    1,
    0,
);

/// [MS-RRP] 3.1.5.2 OpenLocalMachine (Opnum 2)
pub const OPNUM_OPEN_LOCAL_MACHINE: u16 = 2;
/// [MS-RRP] 3.1.5.6 BaseRegCloseKey (Opnum 5)
pub const OPNUM_CLOSE_KEY: u16 = 5;
/// [MS-RRP] 3.1.5.10 BaseRegEnumKey (Opnum 9)
pub const OPNUM_ENUM_KEY: u16 = 9;
/// [MS-RRP] 3.1.5.11 BaseRegEnumValue (Opnum 10)
pub const OPNUM_ENUM_VALUE: u16 = 10;
/// [MS-RRP] 3.1.5.15 BaseRegOpenKey (Opnum 15)
pub const OPNUM_OPEN_KEY: u16 = 15;
/// [MS-RRP] 3.1.5.13 BaseRegGetKeySecurity (Opnum 12)
pub const OPNUM_GET_KEY_SECURITY: u16 = 12;
/// `SECURITY_INFORMATION`: the DACL alone.
pub const DACL_SECURITY_INFORMATION: u32 = 0x4;
/// [MS-RRP] 3.1.5.17 BaseRegQueryValue (Opnum 17)
pub const OPNUM_QUERY_VALUE: u16 = 17;

/// KEY_READ ([MS-RRP] 2.2.3): query values, enumerate subkeys, notify, read control. Never
/// anything that writes: exsweep only reads.
pub const KEY_READ: u32 = 0x0002_0019;

/// Longest key or value name in UTF-16 units, plus its terminator ([MS-RRP] 2.2.6: names are
/// at most 255 and 16383 characters).
pub const MAX_NAME_UNITS: usize = 16_384;

/// A Win32 error code as MS-RRP returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Win32Status(pub u32);

impl Win32Status {
    pub const SUCCESS: Win32Status = Win32Status(0);
    pub const FILE_NOT_FOUND: Win32Status = Win32Status(2);
    pub const ACCESS_DENIED: Win32Status = Win32Status(5);
    pub const INVALID_HANDLE: Win32Status = Win32Status(6);
    pub const INVALID_PARAMETER: Win32Status = Win32Status(87);
    pub const MORE_DATA: Win32Status = Win32Status(234);
    pub const NO_MORE_ITEMS: Win32Status = Win32Status(259);

    pub fn is_success(self) -> bool {
        self.0 == 0
    }

    /// The symbolic name where known, e.g. `ERROR_FILE_NOT_FOUND`.
    pub fn name(self) -> String {
        match self.0 {
            0 => "ERROR_SUCCESS".into(),
            2 => "ERROR_FILE_NOT_FOUND".into(),
            5 => "ERROR_ACCESS_DENIED".into(),
            6 => "ERROR_INVALID_HANDLE".into(),
            87 => "ERROR_INVALID_PARAMETER".into(),
            234 => "ERROR_MORE_DATA".into(),
            259 => "ERROR_NO_MORE_ITEMS".into(),
            1018 => "ERROR_KEY_DELETED".into(),
            other => format!("WIN32_ERROR_{other}"),
        }
    }
}

impl std::fmt::Display for Win32Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// [MS-RRP] 2.2.7 RPC_HKEY: a 20-byte context handle.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHandle(pub [u8; 20]);

impl std::fmt::Debug for KeyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyHandle(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl KeyHandle {
    pub fn is_null(&self) -> bool {
        self.0 == [0; 20]
    }
}

/// OpenLocalMachine: no server name, `access` requested.
pub fn encode_open_local_machine(access: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.null_pointer(); // ServerName: ignored by servers, null as Windows sends it
    w.u32(access);
    w.into_bytes()
}

/// BaseRegOpenKey: `subkey` relative to `parent`, NUL-terminated as [MS-RRP] 3.1.5.15
/// requires, no options.
pub fn encode_open_key(parent: &KeyHandle, subkey: &str, access: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(&parent.0);
    let units = utf16_units(subkey, true);
    write_unicode_string(&mut w, &units, units.len());
    w.u32(0); // dwOptions
    w.u32(access);
    w.into_bytes()
}

/// BaseRegGetKeySecurity: the parts of `key`'s security descriptor `information` names, in
/// a buffer of `capacity` bytes the server fills (the descriptor pointer sent null, as
/// impacket's client sends it).
pub fn encode_get_key_security(key: &KeyHandle, information: u32, capacity: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(&key.0);
    w.u32(information);
    w.null_pointer(); // lpSecurityDescriptor
    w.u32(capacity); // cbInSecurityDescriptor
    w.u32(0); // cbOutSecurityDescriptor
    w.into_bytes()
}

/// The answer to BaseRegGetKeySecurity: the self-relative security descriptor, and on
/// `ERROR_INSUFFICIENT_BUFFER` the size needed in `needed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySecurityResponse {
    pub descriptor: Option<Vec<u8>>,
    /// `cbInSecurityDescriptor` as returned.
    pub needed: u32,
    pub status: Win32Status,
}

pub fn decode_get_key_security_response(stub: &[u8]) -> Result<KeySecurityResponse, DecodeError> {
    let mut r = Reader::new(stub);
    let present = r.pointer("lpSecurityDescriptor")?.is_some();
    let needed = r.u32("cbInSecurityDescriptor")?;
    r.u32("cbOutSecurityDescriptor")?;
    let descriptor = if present {
        let bytes = r.varying_bytes("lpSecurityDescriptor")?.to_vec();
        r.align(4, "security descriptor padding")?;
        Some(bytes)
    } else {
        None
    };
    let status = read_status(&mut r)?;
    r.finish("get key security response")?;
    Ok(KeySecurityResponse {
        descriptor,
        needed,
        status,
    })
}

/// BaseRegCloseKey.
pub fn encode_close_key(key: &KeyHandle) -> Vec<u8> {
    key.0.to_vec()
}

/// BaseRegQueryValue of `name` (empty for the key's default value) with room for
/// `buffer_len` bytes of data.
pub fn encode_query_value(key: &KeyHandle, name: &str, buffer_len: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(&key.0);
    let units = utf16_units(name, true);
    write_unicode_string(&mut w, &units, units.len());
    w.dword_pointer(Some(0)); // lpType
    write_empty_data_buffer(&mut w, buffer_len);
    w.dword_pointer(Some(buffer_len)); // lpcbData: the buffer's size
    w.dword_pointer(Some(0)); // lpcbLen: nothing transmitted in the buffer
    w.into_bytes()
}

/// An `[in, out, unique, size_is(*lpcbData), length_is(*lpcbLen)] LPBYTE` sent empty: the
/// server fills it, we only announce its capacity.
fn write_empty_data_buffer(w: &mut Writer, capacity: u32) {
    w.referent();
    w.u32(capacity);
    w.u32(0);
    w.u32(0);
}

/// An empty `RRP_UNICODE_STRING` with room for `capacity` UTF-16 units, for the server to
/// fill (EnumKey and EnumValue names).
fn write_name_buffer(w: &mut Writer, capacity: usize) {
    let capacity = capacity.min(MAX_NAME_UNITS);
    write_unicode_string(w, &[], capacity);
}

/// BaseRegEnumKey: the `index`th subkey's name, with room for `name_capacity` units.
pub fn encode_enum_key(key: &KeyHandle, index: u32, name_capacity: usize) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(&key.0);
    w.u32(index);
    write_name_buffer(&mut w, name_capacity);
    // lpClassIn: a present but empty class buffer; Samba refuses a null one.
    w.referent();
    w.u16(0);
    w.u16(0);
    w.null_pointer();
    w.null_pointer(); // lpftLastWriteTime: not asked for
    w.into_bytes()
}

/// BaseRegEnumValue: the `index`th value's name, type and (when `data_capacity` is given) data.
pub fn encode_enum_value(key: &KeyHandle, index: u32, name_capacity: usize, data_capacity: Option<u32>) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(&key.0);
    w.u32(index);
    write_name_buffer(&mut w, name_capacity);
    w.dword_pointer(Some(0)); // lpType
    match data_capacity {
        Some(capacity) => {
            write_empty_data_buffer(&mut w, capacity);
            w.dword_pointer(Some(capacity));
            w.dword_pointer(Some(0));
        }
        None => {
            w.null_pointer();
            w.null_pointer();
            w.null_pointer();
        }
    }
    w.into_bytes()
}

fn read_handle(r: &mut Reader<'_>) -> Result<KeyHandle, DecodeError> {
    Ok(KeyHandle(r.array::<20>("context handle")?))
}

fn read_status(r: &mut Reader<'_>) -> Result<Win32Status, DecodeError> {
    Ok(Win32Status(r.u32("error_status_t")?))
}

fn read_dword_pointer(r: &mut Reader<'_>, what: &'static str) -> Result<Option<u32>, DecodeError> {
    match r.pointer(what)? {
        Some(_) => Ok(Some(r.u32(what)?)),
        None => Ok(None),
    }
}

/// The answer to OpenLocalMachine or BaseRegOpenKey: a handle and a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenKeyResponse {
    pub handle: KeyHandle,
    pub status: Win32Status,
}

pub fn decode_open_key_response(stub: &[u8]) -> Result<OpenKeyResponse, DecodeError> {
    let mut r = Reader::new(stub);
    let handle = read_handle(&mut r)?;
    let status = read_status(&mut r)?;
    r.finish("open key response")?;
    Ok(OpenKeyResponse { handle, status })
}

/// The answer to BaseRegCloseKey: the zeroed handle and a status.
pub fn decode_close_key_response(stub: &[u8]) -> Result<Win32Status, DecodeError> {
    let mut r = Reader::new(stub);
    read_handle(&mut r)?;
    let status = read_status(&mut r)?;
    r.finish("close key response")?;
    Ok(status)
}

/// The answer to BaseRegQueryValue. On `ERROR_MORE_DATA`, `data_size` is the size needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryValueResponse {
    pub value_type: Option<u32>,
    pub data: Option<Vec<u8>>,
    /// `lpcbData` as returned: the data's size.
    pub data_size: Option<u32>,
    /// `lpcbLen` as returned: the bytes transmitted.
    pub data_len: Option<u32>,
    pub status: Win32Status,
}

pub fn decode_query_value_response(stub: &[u8]) -> Result<QueryValueResponse, DecodeError> {
    let mut r = Reader::new(stub);
    let (value_type, data, data_size, data_len) = read_value_out(&mut r)?;
    let status = read_status(&mut r)?;
    r.finish("query value response")?;
    Ok(QueryValueResponse {
        value_type,
        data,
        data_size,
        data_len,
        status,
    })
}

type ValueOut = (Option<u32>, Option<Vec<u8>>, Option<u32>, Option<u32>);

/// `lpType`, `lpData`, `lpcbData`, `lpcbLen`, shared by QueryValue and EnumValue.
fn read_value_out(r: &mut Reader<'_>) -> Result<ValueOut, DecodeError> {
    let value_type = read_dword_pointer(r, "lpType")?;
    let data = match r.pointer("lpData")? {
        Some(_) => Some(r.varying_bytes("lpData")?.to_vec()),
        None => None,
    };
    let data_size = read_dword_pointer(r, "lpcbData")?;
    let data_len = read_dword_pointer(r, "lpcbLen")?;
    Ok((value_type, data, data_size, data_len))
}

/// Skips the class string BaseRegEnumKey echoes back. Samba echoes the caller's class buffer
/// at the end of an enumeration with `Length` > `MaximumLength` and actual count > maximum
/// count (seen in a capture against Samba 4.17), so only the bounds that keep the read inside
/// the stub are enforced here; the class is never used.
fn skip_class_string(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    r.u16("class length")?;
    r.u16("class maximum length")?;
    if r.pointer("class buffer")?.is_some() {
        r.u32("class max count")?;
        r.u32("class offset")?;
        let actual = r.u32("class actual count")? as usize;
        r.take(actual.saturating_mul(2), "class buffer")?;
    }
    Ok(())
}

/// The answer to BaseRegEnumKey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumKeyResponse {
    pub name: Option<String>,
    pub status: Win32Status,
}

pub fn decode_enum_key_response(stub: &[u8]) -> Result<EnumKeyResponse, DecodeError> {
    let mut r = Reader::new(stub);
    let name = read_unicode_string(&mut r, "lpNameOut")?;
    if r.pointer("lplpClassOut")?.is_some() {
        skip_class_string(&mut r)?;
    }
    if r.pointer("lpftLastWriteTime")?.is_some() {
        r.u32("lpftLastWriteTime")?;
        r.u32("lpftLastWriteTime")?;
    }
    let status = read_status(&mut r)?;
    r.finish("enum key response")?;
    Ok(EnumKeyResponse { name, status })
}

/// The answer to BaseRegEnumValue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumValueResponse {
    pub name: Option<String>,
    pub value_type: Option<u32>,
    pub data: Option<Vec<u8>>,
    pub data_size: Option<u32>,
    pub data_len: Option<u32>,
    pub status: Win32Status,
}

pub fn decode_enum_value_response(stub: &[u8]) -> Result<EnumValueResponse, DecodeError> {
    let mut r = Reader::new(stub);
    let name = read_unicode_string(&mut r, "lpValueNameOut")?;
    let (value_type, data, data_size, data_len) = read_value_out(&mut r)?;
    let status = read_status(&mut r)?;
    r.finish("enum value response")?;
    Ok(EnumValueResponse {
        name,
        value_type,
        data,
        data_size,
        data_len,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn winreg_uuid_is_in_wire_order() {
        assert_eq!(
            WINREG_SYNTAX.uuid,
            [0x01, 0xd0, 0x8c, 0x33, 0x44, 0x22, 0xf1, 0x31, 0xaa, 0xaa, 0x90, 0x00, 0x38, 0x00, 0x10, 0x03]
        );
    }

    #[test]
    fn open_key_request_counts_the_terminator() {
        let stub = encode_open_key(&KeyHandle([7; 20]), "SOFTWARE", KEY_READ);
        // handle, Length 18 / MaximumLength 18 (8 units + NUL, in bytes), referent.
        assert_eq!(&stub[20..24], &[18, 0, 18, 0]);
        assert_eq!(&stub[28..40], &[9, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0]);
        // 18 bytes of name, 2 of padding, dwOptions, samDesired.
        assert_eq!(stub.len(), 40 + 18 + 2 + 8);
        assert_eq!(&stub[stub.len() - 4..], &KEY_READ.to_le_bytes());
    }

    #[test]
    fn truncated_query_value_response_is_an_error() {
        assert!(decode_query_value_response(&[0, 0, 2]).is_err());
    }
}
