//! Registry value types ([MS-RRP] 2.2.5 / winnt.h `REG_*`) and decoding of their data.
//!
//! Decoding never fails: data that does not fit its announced type (a 3-byte REG_DWORD, say)
//! is kept as raw bytes with its type number, so nothing read from a host is lost.

use crate::ndr::utf16le_to_string;

pub const REG_NONE: u32 = 0;
pub const REG_SZ: u32 = 1;
pub const REG_EXPAND_SZ: u32 = 2;
pub const REG_BINARY: u32 = 3;
pub const REG_DWORD: u32 = 4;
pub const REG_DWORD_BIG_ENDIAN: u32 = 5;
pub const REG_MULTI_SZ: u32 = 7;
pub const REG_QWORD: u32 = 11;

/// A registry value's data, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegData {
    None(Vec<u8>),
    Sz(String),
    ExpandSz(String),
    Binary(Vec<u8>),
    Dword(u32),
    DwordBigEndian(u32),
    MultiSz(Vec<String>),
    Qword(u64),
    /// A type this crate does not interpret, or data whose length does not fit its type.
    Raw {
        value_type: u32,
        bytes: Vec<u8>,
    },
}

impl RegData {
    /// Interprets `bytes` as a value of type `value_type`.
    pub fn decode(value_type: u32, bytes: &[u8]) -> RegData {
        match value_type {
            REG_NONE => RegData::None(bytes.to_vec()),
            REG_SZ => RegData::Sz(utf16le_to_string(bytes)),
            REG_EXPAND_SZ => RegData::ExpandSz(utf16le_to_string(bytes)),
            REG_BINARY => RegData::Binary(bytes.to_vec()),
            REG_DWORD => match <[u8; 4]>::try_from(bytes) {
                Ok(b) => RegData::Dword(u32::from_le_bytes(b)),
                Err(_) => RegData::raw(value_type, bytes),
            },
            REG_DWORD_BIG_ENDIAN => match <[u8; 4]>::try_from(bytes) {
                Ok(b) => RegData::DwordBigEndian(u32::from_be_bytes(b)),
                Err(_) => RegData::raw(value_type, bytes),
            },
            REG_QWORD => match <[u8; 8]>::try_from(bytes) {
                Ok(b) => RegData::Qword(u64::from_le_bytes(b)),
                Err(_) => RegData::raw(value_type, bytes),
            },
            REG_MULTI_SZ => RegData::MultiSz(decode_multi_sz(bytes)),
            _ => RegData::raw(value_type, bytes),
        }
    }

    fn raw(value_type: u32, bytes: &[u8]) -> RegData {
        RegData::Raw {
            value_type,
            bytes: bytes.to_vec(),
        }
    }

    /// The `REG_*` type number.
    pub fn value_type(&self) -> u32 {
        match self {
            RegData::None(_) => REG_NONE,
            RegData::Sz(_) => REG_SZ,
            RegData::ExpandSz(_) => REG_EXPAND_SZ,
            RegData::Binary(_) => REG_BINARY,
            RegData::Dword(_) => REG_DWORD,
            RegData::DwordBigEndian(_) => REG_DWORD_BIG_ENDIAN,
            RegData::MultiSz(_) => REG_MULTI_SZ,
            RegData::Qword(_) => REG_QWORD,
            RegData::Raw { value_type, .. } => *value_type,
        }
    }

    /// The type's conventional name, e.g. `REG_SZ`, or `REG_UNKNOWN(9)`.
    pub fn type_name(&self) -> String {
        type_name(self.value_type())
    }
}

pub fn type_name(value_type: u32) -> String {
    match value_type {
        REG_NONE => "REG_NONE".into(),
        REG_SZ => "REG_SZ".into(),
        REG_EXPAND_SZ => "REG_EXPAND_SZ".into(),
        REG_BINARY => "REG_BINARY".into(),
        REG_DWORD => "REG_DWORD".into(),
        REG_DWORD_BIG_ENDIAN => "REG_DWORD_BIG_ENDIAN".into(),
        REG_MULTI_SZ => "REG_MULTI_SZ".into(),
        REG_QWORD => "REG_QWORD".into(),
        other => format!("REG_UNKNOWN({other})"),
    }
}

/// Splits REG_MULTI_SZ data at NULs, ending at the empty string that terminates the list.
fn decode_multi_sz(bytes: &[u8]) -> Vec<String> {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let mut out = Vec::new();
    for part in units.split(|&u| u == 0) {
        if part.is_empty() {
            break;
        }
        out.push(String::from_utf16_lossy(part));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn every_type_decodes() {
        assert_eq!(RegData::decode(REG_SZ, &utf16("abc\0")), RegData::Sz("abc".into()));
        assert_eq!(
            RegData::decode(REG_EXPAND_SZ, &utf16("%SystemRoot%\0")),
            RegData::ExpandSz("%SystemRoot%".into())
        );
        assert_eq!(
            RegData::decode(REG_MULTI_SZ, &utf16("a\0bc\0\0")),
            RegData::MultiSz(vec!["a".into(), "bc".into()])
        );
        assert_eq!(RegData::decode(REG_DWORD, &[1, 2, 0, 0]), RegData::Dword(0x0201));
        assert_eq!(
            RegData::decode(REG_DWORD_BIG_ENDIAN, &[0, 0, 1, 2]),
            RegData::DwordBigEndian(0x0102)
        );
        assert_eq!(
            RegData::decode(REG_QWORD, &[1, 0, 0, 0, 0, 0, 0, 1]),
            RegData::Qword(0x0100_0000_0000_0001)
        );
        assert_eq!(RegData::decode(REG_BINARY, &[9]), RegData::Binary(vec![9]));
        assert_eq!(RegData::decode(REG_NONE, &[]), RegData::None(vec![]));
        assert_eq!(
            RegData::decode(9, &[1]),
            RegData::Raw {
                value_type: 9,
                bytes: vec![1]
            }
        );
    }

    #[test]
    fn short_dword_is_kept_as_raw_bytes() {
        let data = RegData::decode(REG_DWORD, &[1, 2, 3]);
        assert_eq!(
            data,
            RegData::Raw {
                value_type: REG_DWORD,
                bytes: vec![1, 2, 3]
            }
        );
        assert_eq!(data.type_name(), "REG_DWORD");
    }
}
