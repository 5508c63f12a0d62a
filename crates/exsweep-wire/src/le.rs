//! Little-endian fields at fixed offsets of structures whose length was checked first.
//! Out of range reads 0 rather than panicking, so a missed check is a wrong value, never a
//! crash; callers still check lengths before they rely on a field.

pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at.saturating_add(2))
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at.saturating_add(4))
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
