//! NDR 2.0 transfer syntax, little-endian: the primitives MS-RRP stubs are built from.
//!
//! Alignment is relative to the start of the stub, which is what [C706] 14.2.2 and
//! [MS-RPCE] 2.2.5 require, so a `Reader`/`Writer` always covers exactly one stub.

use crate::DecodeError;

/// Largest conformant array this crate accepts, in elements. [MS-RRP] caps value data at
/// 0x4000000 bytes (`range(0, 0x4000000)`); we cap lower because no value a scanner reads is
/// anywhere near it, and a hostile server must not make us reserve that much.
pub const MAX_ARRAY_ELEMENTS: usize = 16 * 1024 * 1024;

/// A bounded cursor over one NDR stub.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                what,
                offset: self.pos,
                need: n,
                have: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Skips padding so the next read starts on a multiple of `n` (a power of two).
    pub fn align(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        let pad = (n - self.pos % n) % n;
        self.take(pad, what).map(|_| ())
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.align(2, what)?;
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.align(4, what)?;
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// A unique or full pointer's referent id: `None` for a null pointer.
    pub fn pointer(&mut self, what: &'static str) -> Result<Option<u32>, DecodeError> {
        let id = self.u32(what)?;
        Ok((id != 0).then_some(id))
    }

    /// The header of a conformant-varying array: (maximum count, offset, actual count), with
    /// the actual elements required to fit inside the maximum and the cap.
    pub fn varying_header(&mut self, what: &'static str) -> Result<(usize, usize), DecodeError> {
        let max = self.u32(what)? as usize;
        let offset = self.u32(what)? as usize;
        let actual = self.u32(what)? as usize;
        if max > MAX_ARRAY_ELEMENTS {
            return Err(DecodeError::TooLong {
                what,
                len: max,
                limit: MAX_ARRAY_ELEMENTS,
            });
        }
        if offset.checked_add(actual).is_none_or(|end| end > max) {
            return Err(DecodeError::invalid(
                what,
                format!("offset {offset} + actual count {actual} exceeds maximum count {max}"),
            ));
        }
        Ok((max, actual))
    }

    /// A conformant-varying byte array (`[size_is, length_is] BYTE*` pointee).
    pub fn varying_bytes(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let (_, actual) = self.varying_header(what)?;
        self.take(actual, what)
    }

    /// Fails unless every byte was consumed: a closed structure has no tail.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingData { what, count }),
        }
    }
}

/// An NDR stub under construction. Referent ids count up from 0x00020000, as Windows does.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
    next_referent: u32,
}

impl Writer {
    pub fn new() -> Self {
        Writer {
            buf: Vec::with_capacity(128),
            next_referent: 0x0002_0000,
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn align(&mut self, n: usize) {
        while self.buf.len() % n != 0 {
            self.buf.push(0);
        }
    }

    pub fn u16(&mut self, v: u16) {
        self.align(2);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Writes a fresh non-null referent id for a unique pointer.
    pub fn referent(&mut self) {
        let id = self.next_referent;
        self.next_referent += 4;
        self.u32(id);
    }

    pub fn null_pointer(&mut self) {
        self.u32(0);
    }

    /// A unique pointer to a `DWORD`.
    pub fn dword_pointer(&mut self, value: Option<u32>) {
        match value {
            Some(v) => {
                self.referent();
                self.u32(v);
            }
            None => self.null_pointer(),
        }
    }
}

/// UTF-16LE code units of `s`, optionally with a terminating NUL.
pub fn utf16_units(s: &str, nul_terminated: bool) -> Vec<u16> {
    let mut units: Vec<u16> = s.encode_utf16().collect();
    if nul_terminated {
        units.push(0);
    }
    units
}

/// Decodes UTF-16LE bytes, dropping an odd trailing byte and trailing NULs. Unpaired
/// surrogates become U+FFFD rather than failing: a registry name is data to report, and
/// one odd character must not hide the rest.
pub fn utf16le_to_string(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let end = units.iter().rposition(|&u| u != 0).map_or(0, |i| i + 1);
    String::from_utf16_lossy(&units[..end])
}

/// [MS-DTYP] 2.3.10 RPC_UNICODE_STRING (and [MS-RRP] 2.2.4 RRP_UNICODE_STRING, the same on
/// the wire): `Length` and `MaximumLength` in bytes, then a unique pointer whose pointee is a
/// conformant-varying `WCHAR` array deferred after the structure.
pub fn write_unicode_string(w: &mut Writer, units: &[u16], max_units: usize) {
    let byte_len = (units.len() * 2).min(u16::MAX as usize) as u16;
    let max_len = (max_units * 2).min(u16::MAX as usize) as u16;
    w.u16(byte_len);
    w.u16(max_len);
    w.referent();
    // Deferred pointee, written right after its structure because the structure is a
    // top-level parameter.
    w.u32(max_units as u32);
    w.u32(0);
    w.u32(units.len() as u32);
    for u in units {
        w.buf.extend_from_slice(&u.to_le_bytes());
    }
}

/// Reads an RPC_UNICODE_STRING (structure plus deferred pointee). `None` when the buffer
/// pointer is null.
pub fn read_unicode_string(r: &mut Reader<'_>, what: &'static str) -> Result<Option<String>, DecodeError> {
    let length = r.u16(what)? as usize;
    let max_length = r.u16(what)? as usize;
    if length > max_length {
        return Err(DecodeError::invalid(
            what,
            format!("Length {length} exceeds MaximumLength {max_length}"),
        ));
    }
    if r.pointer(what)?.is_none() {
        return Ok(None);
    }
    let (_, actual) = r.varying_header(what)?;
    let bytes = r.take(actual * 2, what)?;
    Ok(Some(utf16le_to_string(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_string_round_trips_with_alignment() {
        let mut w = Writer::new();
        let units = utf16_units("Größe", true);
        write_unicode_string(&mut w, &units, units.len());
        let bytes = w.into_bytes();
        // 2+2+4 header, 12 varying header, 6 units * 2 bytes.
        assert_eq!(bytes.len(), 8 + 12 + 12);
        assert_eq!(&bytes[..4], &[12, 0, 12, 0]);
        let mut r = Reader::new(&bytes);
        assert_eq!(read_unicode_string(&mut r, "name").unwrap().as_deref(), Some("Größe"));
        r.finish("name").unwrap();
    }

    #[test]
    fn varying_array_larger_than_its_maximum_is_rejected() {
        let mut bytes = Vec::new();
        for v in [4u32, 0, 5] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes.extend_from_slice(&[0; 5]);
        let err = Reader::new(&bytes).varying_bytes("lpData").unwrap_err();
        assert!(matches!(err, DecodeError::Invalid { what: "lpData", .. }));
    }

    #[test]
    fn huge_announced_array_is_refused_before_allocation() {
        let mut bytes = Vec::new();
        for v in [u32::MAX, 0, u32::MAX] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let err = Reader::new(&bytes).varying_bytes("lpData").unwrap_err();
        assert!(matches!(err, DecodeError::TooLong { .. }));
    }

    #[test]
    fn utf16_decoding_drops_terminators_and_odd_bytes() {
        assert_eq!(utf16le_to_string(b"A\0B\0\0\0\0\0\x01"), "AB");
        assert_eq!(utf16le_to_string(b""), "");
        assert_eq!(utf16le_to_string(&[0x00, 0xD8, b'x', 0]), "\u{FFFD}x");
    }
}
