//! Self-relative security descriptors ([MS-DTYP] 2.4.6): the owner, the group and the DACL's
//! access-control entries with their SIDs, as a registry key's or a file's security reads.
//! The SACL is not read.

use crate::le::{le16, le32};
use crate::DecodeError;

/// `SE_DACL_PRESENT`: without it the object has no DACL and grants everyone everything.
pub const SE_DACL_PRESENT: u16 = 0x0004;
/// Most ACEs one DACL may carry here (Windows' practical limit is far lower).
pub const MAX_ACES: usize = 1024;

/// The well-known SID of Everyone.
pub const EVERYONE: &str = "S-1-1-0";

/// What a descriptor says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityDescriptor {
    pub control: u16,
    pub owner: Option<String>,
    pub group: Option<String>,
    /// `None`: no DACL at all (everyone has full access); `Some(vec![])`: an empty DACL
    /// (nobody has access).
    pub dacl: Option<Vec<Ace>>,
}

/// One access-control entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    /// 0 allow, 1 deny, 5 and 6 the object forms; others are kept by number.
    pub ace_type: u8,
    /// Inheritance and audit flags (`OBJECT_INHERIT_ACE` 0x1, `CONTAINER_INHERIT_ACE` 0x2,
    /// `INHERIT_ONLY_ACE` 0x8, `INHERITED_ACE` 0x10, ...).
    pub flags: u8,
    pub mask: u32,
    /// The trustee, for the allow and deny forms that carry it at a fixed place.
    pub sid: Option<String>,
}

pub const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;
pub const ACCESS_DENIED_ACE_TYPE: u8 = 1;
pub const ACCESS_ALLOWED_COMPOUND_ACE_TYPE: u8 = 4;
pub const ACCESS_ALLOWED_OBJECT_ACE_TYPE: u8 = 5;
pub const ACCESS_DENIED_OBJECT_ACE_TYPE: u8 = 6;
pub const ACCESS_ALLOWED_CALLBACK_ACE_TYPE: u8 = 9;
pub const ACCESS_DENIED_CALLBACK_ACE_TYPE: u8 = 10;
pub const ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE: u8 = 11;
pub const ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE: u8 = 12;
/// The allow forms: their trustee is granted `mask`.
pub const ALLOW_TYPES: [u8; 4] = [
    ACCESS_ALLOWED_ACE_TYPE,
    ACCESS_ALLOWED_OBJECT_ACE_TYPE,
    ACCESS_ALLOWED_CALLBACK_ACE_TYPE,
    ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE,
];
pub const INHERIT_ONLY_ACE: u8 = 0x08;
/// CREATOR OWNER and CREATOR GROUP: placeholders an inheritable entry hands to whoever creates
/// a child, not accounts of their own.
const CREATOR_SIDS: [&str; 2] = ["S-1-3-0", "S-1-3-1"];

impl SecurityDescriptor {
    /// The SIDs an allow entry grants any access, to the object itself or (inheritable
    /// entries, inherit-only ones included) to what is created in it, sorted and without
    /// repeats; CREATOR OWNER and CREATOR GROUP are left out. With no DACL at all: `["S-1-1-0"]`.
    pub fn allowed_sids(&self) -> Vec<String> {
        let Some(aces) = &self.dacl else {
            return vec![EVERYONE.to_owned()];
        };
        let mut sids: Vec<String> = aces
            .iter()
            .filter(|a| ALLOW_TYPES.contains(&a.ace_type) && a.mask != 0)
            .filter_map(|a| a.sid.clone())
            .filter(|sid| !CREATOR_SIDS.contains(&sid.as_str()))
            .collect();
        sids.sort();
        sids.dedup();
        sids
    }
}

/// Decodes a self-relative security descriptor.
pub fn decode(bytes: &[u8]) -> Result<SecurityDescriptor, DecodeError> {
    if bytes.len() < 20 {
        return Err(DecodeError::Truncated {
            what: "security descriptor",
            offset: 0,
            need: 20,
            have: bytes.len(),
        });
    }
    if bytes[0] != 1 {
        return Err(DecodeError::invalid(
            "security descriptor",
            format!("revision {}", bytes[0]),
        ));
    }
    let control = le16(bytes, 2);
    let offset = |at: usize| le32(bytes, at) as usize;
    let sid_at = |at: usize| -> Result<Option<String>, DecodeError> {
        match offset(at) {
            0 => Ok(None),
            o => sid(bytes, o).map(|(s, _)| Some(s)),
        }
    };
    let owner = sid_at(4)?;
    let group = sid_at(8)?;
    let dacl_offset = offset(16);
    let dacl = if control & SE_DACL_PRESENT == 0 || dacl_offset == 0 {
        None
    } else {
        Some(acl(bytes, dacl_offset)?)
    };
    Ok(SecurityDescriptor {
        control,
        owner,
        group,
        dacl,
    })
}

fn truncated(what: &'static str, offset: usize, need: usize, len: usize) -> DecodeError {
    DecodeError::Truncated {
        what,
        offset,
        need,
        have: len.saturating_sub(offset),
    }
}

/// An ACL at `at`: its header, then its ACEs, each inside the ACL's own size.
fn acl(bytes: &[u8], at: usize) -> Result<Vec<Ace>, DecodeError> {
    let header = bytes
        .get(at..at.saturating_add(8))
        .ok_or_else(|| truncated("ACL header", at, 8, bytes.len()))?;
    let size = u16::from_le_bytes([header[2], header[3]]) as usize;
    let count = u16::from_le_bytes([header[4], header[5]]) as usize;
    if size < 8 {
        return Err(DecodeError::invalid("ACL", format!("size {size}")));
    }
    if count > MAX_ACES {
        return Err(DecodeError::TooLong {
            what: "ACL entries",
            len: count,
            limit: MAX_ACES,
        });
    }
    let acl = bytes
        .get(at..at + size)
        .ok_or_else(|| truncated("ACL", at, size, bytes.len()))?;
    let mut aces = Vec::with_capacity(count);
    let mut pos = 8;
    for _ in 0..count {
        let head = acl
            .get(pos..pos + 4)
            .ok_or_else(|| truncated("ACE header", at + pos, 4, bytes.len()))?;
        let (ace_type, flags) = (head[0], head[1]);
        let ace_size = u16::from_le_bytes([head[2], head[3]]) as usize;
        if ace_size < 8 {
            return Err(DecodeError::invalid("ACE", format!("size {ace_size}")));
        }
        let ace = acl
            .get(pos..pos + ace_size)
            .ok_or_else(|| truncated("ACE", at + pos, ace_size, bytes.len()))?;
        let mask = u32::from_le_bytes([ace[4], ace[5], ace[6], ace[7]]);
        let sid = match ace_type {
            ACCESS_ALLOWED_ACE_TYPE
            | ACCESS_DENIED_ACE_TYPE
            | ACCESS_ALLOWED_CALLBACK_ACE_TYPE
            | ACCESS_DENIED_CALLBACK_ACE_TYPE => Some(sid(ace, 8)?.0),
            // Flags, then the object type and inherited object type GUIDs each present flags
            // say, then the SID ([MS-DTYP] 2.4.4.3).
            ACCESS_ALLOWED_OBJECT_ACE_TYPE
            | ACCESS_DENIED_OBJECT_ACE_TYPE
            | ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE
            | ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE => {
                let object_flags = ace
                    .get(8..12)
                    .map_or(0, |f| u32::from_le_bytes([f[0], f[1], f[2], f[3]]));
                let guids = (object_flags & 0x3).count_ones() as usize;
                Some(sid(ace, 12 + 16 * guids)?.0)
            }
            // Whom it grants cannot be read here: rather no answer than one that leaves it out.
            ACCESS_ALLOWED_COMPOUND_ACE_TYPE => {
                return Err(DecodeError::invalid("ACE", "a compound allow entry is not read"))
            }
            _ => None,
        };
        aces.push(Ace {
            ace_type,
            flags,
            mask,
            sid,
        });
        pos += ace_size;
    }
    Ok(aces)
}

/// A SID at `at`, as `S-1-...` text, and its length.
pub fn sid(bytes: &[u8], at: usize) -> Result<(String, usize), DecodeError> {
    let head = bytes
        .get(at..at.saturating_add(8))
        .ok_or_else(|| truncated("SID", at, 8, bytes.len()))?;
    let count = head[1] as usize;
    if count > 15 {
        return Err(DecodeError::invalid("SID", format!("{count} sub-authorities")));
    }
    let len = 8 + 4 * count;
    let body = bytes
        .get(at..at + len)
        .ok_or_else(|| truncated("SID", at, len, bytes.len()))?;
    let authority = body[2..8].iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
    let mut text = if authority >> 32 == 0 {
        format!("S-{}-{authority}", body[0])
    } else {
        format!("S-{}-0x{authority:012X}", body[0])
    };
    for i in 0..count {
        let o = 8 + 4 * i;
        let sub = u32::from_le_bytes([body[o], body[o + 1], body[o + 2], body[o + 3]]);
        text.push_str(&format!("-{sub}"));
    }
    Ok((text, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_dacl_grants_everyone() {
        // Revision 1, self-relative, no DACL present.
        let mut sd = vec![1, 0, 0x00, 0x80];
        sd.extend_from_slice(&[0; 16]);
        let d = decode(&sd).unwrap();
        assert_eq!(d.dacl, None);
        assert_eq!(d.allowed_sids(), [EVERYONE]);
    }

    /// Inheritable entries count (a folder's children get them); CREATOR OWNER does not.
    #[test]
    fn inheritable_entries_count_and_creator_owner_does_not() {
        let ace = |flags: u8, sid: &[u8]| {
            let mut a = vec![0, flags, (8 + sid.len()) as u8, 0, 0xff, 0x01, 0x1f, 0x00];
            a.extend_from_slice(sid);
            a
        };
        let everyone = [1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        let creator = [1, 1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0];
        let system = [1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0];
        let aces = [ace(0x0b, &everyone), ace(0x0b, &creator), ace(0x03, &system)].concat();
        let mut sd = vec![1, 0, 4, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0];
        sd.extend_from_slice(&[2, 0, (8 + aces.len()) as u8, 0, 3, 0, 0, 0]);
        sd.extend_from_slice(&aces);
        assert_eq!(decode(&sd).unwrap().allowed_sids(), [EVERYONE, "S-1-5-18"]);
    }

    #[test]
    fn hostile_lengths_are_errors() {
        assert!(decode(&[1, 0, 4, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0]).is_err());
        let mut sd = vec![1, 0, 4, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0];
        sd.extend_from_slice(&[2, 0, 0xff, 0xff, 0xff, 0xff, 0, 0]); // huge size and count
        assert!(decode(&sd).is_err());
        assert!(sid(&[1, 16, 0, 0, 0, 0, 0, 5], 0).is_err());
    }
}
