//! PE file versions ([PE/COFF] headers, resource tree, `VS_VERSIONINFO`): found by asking for
//! only the byte ranges needed, so the version of a 100 MiB binary costs a few kilobytes.
//!
//! [`VersionLocator`] is a pull state machine: it says which range of the file it needs next
//! ([`Step::Read`]), the caller reads it however it likes (an SMB READ, a slice of a local
//! file) and hands the bytes back with [`VersionLocator::feed`]. Each step re-runs the walk
//! over the ranges fed so far, which keeps the walk one straight function and makes any
//! order of arrival harmless. The walk has a fixed depth (type, name, language), so a
//! resource tree that points back at itself cannot loop; every offset is checked against the
//! file size and every count against a cap before anything is read or allocated.

use std::fmt;

use crate::le::{le16, le32};
use crate::ndr::utf16le_to_string;
use crate::DecodeError;

/// Bytes asked for at least, per read: headers and small resource directories usually fit
/// in one such window, so a typical file costs three reads.
pub const READ_WINDOW: u32 = 4096;
/// Reads a file may cost before we give up (a well-formed file needs at most about eight).
pub const MAX_READS: u32 = 24;
/// The loader refuses more sections than this ([PE/COFF] "NumberOfSections").
const MAX_SECTIONS: usize = 96;
/// A resource directory with more entries than this is not a real file's.
const MAX_DIRECTORY_ENTRIES: usize = 4096;
/// The largest optional header we accept (PE32+ with 16 data directories is 240 bytes).
const MAX_OPTIONAL_HEADER: usize = 4096;
/// `VS_VERSIONINFO.wLength` is a WORD, so the resource cannot be larger.
const MAX_VERSION_RESOURCE: u32 = 0xFFFF;
const RT_VERSION: u32 = 16;
const IMAGE_DIRECTORY_ENTRY_RESOURCE: usize = 2;
const VS_FFI_SIGNATURE: u32 = 0xFEEF_04BD;
const FIXED_FILE_INFO_LEN: usize = 52;

/// One range of the file to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRequest {
    pub offset: u64,
    pub len: u32,
}

/// What the locator wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Read(ReadRequest),
    Done(PeVersion),
}

/// What a PE file says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeVersion {
    /// `IMAGE_FILE_HEADER.Machine` (0x14c i386, 0x8664 x64, ...).
    pub machine: u16,
    /// PE32+ (64-bit optional header) rather than PE32.
    pub pe32_plus: bool,
    /// Where the `VS_VERSIONINFO` resource lies in the file, when there is one.
    pub resource: Option<ResourceLocation>,
    /// `None`: the file has no version resource (a fact about the file, not an error).
    pub version: Option<VersionInfo>,
}

impl PeVersion {
    pub fn machine_name(&self) -> &'static str {
        machine_name(self.machine)
    }
}

/// Names the machine types a scanned Windows host may carry.
pub fn machine_name(machine: u16) -> &'static str {
    match machine {
        0x014c => "i386",
        0x8664 => "x64",
        0x0200 => "ia64",
        0xAA64 => "arm64",
        0x01c4 => "arm",
        _ => "other",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceLocation {
    pub offset: u64,
    pub size: u32,
}

/// A version as four 16-bit parts, `major.minor.build.revision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FourPart(pub [u16; 4]);

impl FourPart {
    fn from_ms_ls(ms: u32, ls: u32) -> Self {
        FourPart([(ms >> 16) as u16, ms as u16, (ls >> 16) as u16, ls as u16])
    }
}

impl fmt::Display for FourPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// `VS_FIXEDFILEINFO`: the binary versions the loader and installers compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedFileInfo {
    pub file_version: FourPart,
    pub product_version: FourPart,
    pub file_flags_mask: u32,
    pub file_flags: u32,
    pub file_os: u32,
    pub file_type: u32,
    pub file_subtype: u32,
}

/// One `StringTable` of `StringFileInfo`: its language-codepage key (`040904B0`) and strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringTable {
    pub key: String,
    pub strings: Vec<(String, String)>,
}

/// A decoded `VS_VERSIONINFO` resource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionInfo {
    pub fixed: Option<FixedFileInfo>,
    pub string_tables: Vec<StringTable>,
    /// `VarFileInfo\Translation`: (language, codepage) pairs.
    pub translations: Vec<(u16, u16)>,
}

impl VersionInfo {
    /// A `StringFileInfo` value, from the first table that has it (tables in file order).
    pub fn string(&self, name: &str) -> Option<&str> {
        self.string_tables
            .iter()
            .flat_map(|t| t.strings.iter())
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why the walk stopped: it needs bytes, or the file is not what it should be.
enum Stop {
    Need { offset: u64, len: u32 },
    Bad(DecodeError),
}

impl From<DecodeError> for Stop {
    fn from(e: DecodeError) -> Self {
        Stop::Bad(e)
    }
}

/// Finds a PE file's version by asking for byte ranges; see the module documentation.
#[derive(Debug, Clone)]
pub struct VersionLocator {
    file_size: u64,
    chunks: Vec<(u64, Vec<u8>)>,
    pending: Option<(ReadRequest, u32)>,
    reads: u32,
    bytes_read: u64,
}

impl VersionLocator {
    pub fn new(file_size: u64) -> Self {
        VersionLocator {
            file_size,
            chunks: Vec::new(),
            pending: None,
            reads: 0,
            bytes_read: 0,
        }
    }

    /// Bytes handed to [`feed`](Self::feed) so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Reads asked for so far.
    pub fn reads(&self) -> u32 {
        self.reads
    }

    /// The next range to read, or the answer. Asking again without feeding repeats the request.
    pub fn step(&mut self) -> Result<Step, DecodeError> {
        if let Some((request, _)) = self.pending {
            return Ok(Step::Read(request));
        }
        match self.walk() {
            Ok(found) => Ok(Step::Done(found)),
            Err(Stop::Bad(e)) => Err(e),
            Err(Stop::Need { offset, len }) => {
                if self.reads >= MAX_READS {
                    return Err(DecodeError::TooLong {
                        what: "reads for one PE version",
                        len: self.reads as usize + 1,
                        limit: MAX_READS as usize,
                    });
                }
                let room = self.file_size.saturating_sub(offset);
                let window = u64::from(len.max(READ_WINDOW)).min(room);
                let request = ReadRequest {
                    offset,
                    len: u32::try_from(window).unwrap_or(u32::MAX),
                };
                self.reads += 1;
                self.pending = Some((request, len));
                Ok(Step::Read(request))
            }
        }
    }

    /// The bytes of the last [`Step::Read`], from its offset. Fewer than asked for is fine as
    /// long as they cover what the walk needs; fewer than that is a truncated file.
    pub fn feed(&mut self, bytes: Vec<u8>) -> Result<(), DecodeError> {
        let Some((request, needed)) = self.pending.take() else {
            return Err(DecodeError::invalid("PE read", "bytes fed with no read outstanding"));
        };
        if bytes.len() < needed as usize {
            return Err(DecodeError::Truncated {
                what: "PE file",
                offset: usize::try_from(request.offset).unwrap_or(usize::MAX),
                need: needed as usize,
                have: bytes.len(),
            });
        }
        let mut bytes = bytes;
        bytes.truncate(request.len as usize);
        self.bytes_read += bytes.len() as u64;
        self.chunks.push((request.offset, bytes));
        Ok(())
    }

    /// `len` bytes at `offset`, from one chunk fed earlier.
    fn get(&self, what: &'static str, offset: u64, len: usize) -> Result<&[u8], Stop> {
        let end = offset.checked_add(len as u64).filter(|e| *e <= self.file_size);
        if end.is_none() {
            return Err(Stop::Bad(DecodeError::Truncated {
                what,
                offset: usize::try_from(offset).unwrap_or(usize::MAX),
                need: len,
                have: usize::try_from(self.file_size.saturating_sub(offset)).unwrap_or(usize::MAX),
            }));
        }
        for (start, bytes) in &self.chunks {
            if offset >= *start {
                let at = (offset - start) as usize;
                if let Some(slice) = bytes.get(at..).and_then(|b| b.get(..len)) {
                    return Ok(slice);
                }
            }
        }
        Err(Stop::Need {
            offset,
            len: u32::try_from(len).unwrap_or(u32::MAX),
        })
    }

    fn walk(&self) -> Result<PeVersion, Stop> {
        let dos = self.get("DOS header", 0, 64)?;
        if &dos[..2] != b"MZ" {
            return Err(DecodeError::invalid("DOS header", "no MZ signature").into());
        }
        let pe_offset = u64::from(le32(dos, 0x3c));
        let file_header = self.get("PE header", pe_offset, 24)?;
        if &file_header[..4] != b"PE\0\0" {
            return Err(DecodeError::invalid("PE header", "no PE signature").into());
        }
        let machine = le16(file_header, 4);
        let section_count = usize::from(le16(file_header, 6));
        let optional_len = usize::from(le16(file_header, 20));
        if section_count > MAX_SECTIONS {
            return Err(too_long("NumberOfSections", section_count, MAX_SECTIONS));
        }
        if optional_len > MAX_OPTIONAL_HEADER {
            return Err(too_long("SizeOfOptionalHeader", optional_len, MAX_OPTIONAL_HEADER));
        }
        let optional = self.get("optional header", pe_offset + 24, optional_len)?;
        if optional.len() < 2 {
            return Err(DecodeError::invalid("optional header", "shorter than its magic").into());
        }
        let (pe32_plus, directories_at) = match le16(optional, 0) {
            0x10b => (false, 96),
            0x20b => (true, 112),
            other => {
                return Err(DecodeError::invalid("optional header", format!("magic {other:#06x}")).into());
            }
        };
        let no_version = PeVersion {
            machine,
            pe32_plus,
            resource: None,
            version: None,
        };
        let directory_count = optional
            .get(directories_at - 4..directories_at)
            .map_or(0, |b| le32(b, 0) as usize);
        let entry_at = directories_at + IMAGE_DIRECTORY_ENTRY_RESOURCE * 8;
        let Some(entry) = optional.get(entry_at..entry_at + 8) else {
            return Ok(no_version);
        };
        if directory_count <= IMAGE_DIRECTORY_ENTRY_RESOURCE {
            return Ok(no_version);
        }
        let (resource_rva, resource_size) = (le32(entry, 0), le32(entry, 4));
        if resource_rva == 0 || resource_size == 0 {
            return Ok(no_version);
        }
        let table = self.get(
            "section table",
            pe_offset + 24 + optional_len as u64,
            section_count * 40,
        )?;
        let sections: Vec<Section> = table.chunks_exact(40).map(Section::parse).collect();
        let tree = ResourceTree {
            base: rva_to_offset(&sections, resource_rva, "resource directory")?,
            size: resource_size,
        };

        let Some(type_dir) = self.entry(&tree, 0, Pick::Id(RT_VERSION))? else {
            return Ok(no_version);
        };
        let name_dir = tree.subdirectory(type_dir, "RT_VERSION entry")?;
        let Some(name_entry) = self.entry(&tree, name_dir, Pick::First)? else {
            return Ok(no_version);
        };
        let language_dir = tree.subdirectory(name_entry, "version name entry")?;
        let Some(language_entry) = self.entry(&tree, language_dir, Pick::First)? else {
            return Ok(no_version);
        };
        if language_entry & 0x8000_0000 != 0 {
            return Err(DecodeError::invalid("resource tree", "a fourth directory level").into());
        }
        let data_entry = self.get("resource data entry", tree.offset(language_entry, 16)?, 16)?;
        let (data_rva, data_size) = (le32(data_entry, 0), le32(data_entry, 4));
        if data_size > MAX_VERSION_RESOURCE {
            return Err(too_long(
                "version resource",
                data_size as usize,
                MAX_VERSION_RESOURCE as usize,
            ));
        }
        let data_offset = rva_to_offset(&sections, data_rva, "version resource")?;
        let data = self.get("version resource", data_offset, data_size as usize)?;
        Ok(PeVersion {
            machine,
            pe32_plus,
            resource: Some(ResourceLocation {
                offset: data_offset,
                size: data_size,
            }),
            version: Some(decode_version_info(data)?),
        })
    }

    /// The value of one entry of the resource directory at `at` (relative to the tree).
    fn entry(&self, tree: &ResourceTree, at: u32, pick: Pick) -> Result<Option<u32>, Stop> {
        let header = self.get("resource directory", tree.offset(at, 16)?, 16)?;
        let named = usize::from(le16(header, 12));
        let ids = usize::from(le16(header, 14));
        let count = named + ids;
        if count > MAX_DIRECTORY_ENTRIES {
            return Err(too_long("resource directory entries", count, MAX_DIRECTORY_ENTRIES));
        }
        let entries_at = tree.offset(at, 16 + count as u64 * 8)? + 16;
        let entries = self.get("resource directory entries", entries_at, count * 8)?;
        let mut entries = entries.chunks_exact(8).map(|e| (le32(e, 0), le32(e, 4)));
        Ok(match pick {
            Pick::First => entries.next().map(|(_, value)| value),
            Pick::Id(id) => entries
                .skip(named)
                .find(|(name, _)| *name == id)
                .map(|(_, value)| value),
        })
    }
}

enum Pick {
    First,
    Id(u32),
}

/// The resource section as the data directory announces it.
struct ResourceTree {
    base: u64,
    size: u32,
}

impl ResourceTree {
    /// File offset of `len` bytes at `at` within the tree; outside the tree is an error.
    fn offset(&self, at: u32, len: u64) -> Result<u64, Stop> {
        if u64::from(at) + len > u64::from(self.size) {
            return Err(
                DecodeError::invalid("resource tree", format!("offset {at:#x} outside the resource section")).into(),
            );
        }
        Ok(self.base + u64::from(at))
    }

    fn subdirectory(&self, value: u32, what: &'static str) -> Result<u32, Stop> {
        if value & 0x8000_0000 == 0 {
            return Err(DecodeError::invalid(what, "points at data where a directory belongs").into());
        }
        Ok(value & 0x7FFF_FFFF)
    }
}

struct Section {
    virtual_address: u32,
    virtual_size: u32,
    raw_size: u32,
    raw_pointer: u32,
}

impl Section {
    fn parse(b: &[u8]) -> Section {
        Section {
            virtual_size: le32(b, 8),
            virtual_address: le32(b, 12),
            raw_size: le32(b, 16),
            raw_pointer: le32(b, 20),
        }
    }
}

/// The file offset of an RVA; it must fall in the raw data of a section (not in the part the
/// loader fills with zeros).
fn rva_to_offset(sections: &[Section], rva: u32, what: &'static str) -> Result<u64, Stop> {
    sections
        .iter()
        .find_map(|s| {
            let delta = rva.checked_sub(s.virtual_address)?;
            let span = s.virtual_size.max(s.raw_size);
            (delta < span && delta < s.raw_size).then(|| u64::from(s.raw_pointer) + u64::from(delta))
        })
        .ok_or_else(|| DecodeError::invalid(what, format!("RVA {rva:#x} is in no section's file data")).into())
}

fn too_long(what: &'static str, len: usize, limit: usize) -> Stop {
    Stop::Bad(DecodeError::TooLong { what, len, limit })
}

/// Drives a [`VersionLocator`] over a file held in memory (tests, fuzzing, local files).
pub fn version_of(file: &[u8]) -> Result<PeVersion, DecodeError> {
    let mut locator = VersionLocator::new(file.len() as u64);
    loop {
        match locator.step()? {
            Step::Done(found) => return Ok(found),
            Step::Read(r) => {
                let start = usize::try_from(r.offset).unwrap_or(usize::MAX).min(file.len());
                let end = start.saturating_add(r.len as usize).min(file.len());
                locator.feed(file[start..end].to_vec())?;
            }
        }
    }
}

// --- VS_VERSIONINFO ---------------------------------------------------------------------

/// One node of the version resource's tree: `wLength`, `wValueLength`, `wType`, `szKey`,
/// padding, `Value`, padding, children. Offsets are relative to the resource's start, which
/// is what the 32-bit alignment of the format refers to.
struct Node<'a> {
    key: String,
    is_text: bool,
    value: &'a [u8],
    children: std::ops::Range<usize>,
    end: usize,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn node(data: &[u8], start: usize, limit: usize) -> Result<Node<'_>, DecodeError> {
    let what = "version resource node";
    if start + 6 > limit {
        return Err(DecodeError::Truncated {
            what,
            offset: start,
            need: 6,
            have: limit.saturating_sub(start),
        });
    }
    let length = usize::from(le16(data, start));
    let value_length = usize::from(le16(data, start + 2));
    let is_text = le16(data, start + 4) == 1;
    if length < 6 {
        return Err(DecodeError::invalid(
            what,
            format!("wLength {length} at offset {start}"),
        ));
    }
    // Some producers count a node a little past its parent; the parent's end is the bound.
    let end = (start + length).min(limit);
    let mut at = start + 6;
    let key_start = at;
    while at + 2 <= end && le16(data, at) != 0 {
        at += 2;
    }
    if at + 2 > end {
        return Err(DecodeError::invalid(
            what,
            format!("key without terminator at offset {start}"),
        ));
    }
    let key = utf16le_to_string(&data[key_start..at]);
    let value_start = align4(at + 2).min(end);
    // wValueLength counts WORDs for text values and bytes otherwise.
    let value_bytes = if is_text { value_length * 2 } else { value_length };
    let value_end = (value_start + value_bytes).min(end);
    let value = &data[value_start..value_end];
    let children = align4(value_end).min(end)..end;
    Ok(Node {
        key,
        is_text,
        value,
        children,
        end,
    })
}

/// The children of a node, in order; zero padding up to the parent's end ends the list.
fn children<'a>(data: &'a [u8], range: std::ops::Range<usize>) -> Result<Vec<Node<'a>>, DecodeError> {
    let mut out = Vec::new();
    let mut at = range.start;
    // Padding to the next node may be missing at the very end.
    while at + 6 <= range.end {
        if le16(data, at) == 0 {
            // Zero padding up to the parent's end.
            break;
        }
        let child = node(data, at, range.end)?;
        at = align4(child.end);
        out.push(child);
    }
    Ok(out)
}

fn text_value(node: &Node<'_>) -> String {
    let units = node.value.len() / 2 * 2;
    let mut text = utf16le_to_string(&node.value[..units]);
    if let Some(nul) = text.find('\0') {
        text.truncate(nul);
    }
    text
}

/// Decodes a `VS_VERSIONINFO` resource.
pub fn decode_version_info(data: &[u8]) -> Result<VersionInfo, DecodeError> {
    let root = node(data, 0, data.len())?;
    if root.key != "VS_VERSION_INFO" {
        return Err(DecodeError::invalid(
            "VS_VERSIONINFO",
            format!("root key {:?}", root.key),
        ));
    }
    let mut info = VersionInfo::default();
    if root.value.len() >= FIXED_FILE_INFO_LEN {
        let v = root.value;
        if le32(v, 0) != VS_FFI_SIGNATURE {
            return Err(DecodeError::invalid(
                "VS_FIXEDFILEINFO",
                format!("signature {:#010x}", le32(v, 0)),
            ));
        }
        info.fixed = Some(FixedFileInfo {
            file_version: FourPart::from_ms_ls(le32(v, 8), le32(v, 12)),
            product_version: FourPart::from_ms_ls(le32(v, 16), le32(v, 20)),
            file_flags_mask: le32(v, 24),
            file_flags: le32(v, 28),
            file_os: le32(v, 32),
            file_type: le32(v, 36),
            file_subtype: le32(v, 40),
        });
    } else if !root.value.is_empty() {
        return Err(DecodeError::Truncated {
            what: "VS_FIXEDFILEINFO",
            offset: 0,
            need: FIXED_FILE_INFO_LEN,
            have: root.value.len(),
        });
    }
    for child in children(data, root.children.clone())? {
        match child.key.as_str() {
            "StringFileInfo" => {
                for table in children(data, child.children.clone())? {
                    let strings = children(data, table.children.clone())?
                        .iter()
                        .map(|s| {
                            (
                                s.key.clone(),
                                if s.is_text || !s.value.is_empty() {
                                    text_value(s)
                                } else {
                                    String::new()
                                },
                            )
                        })
                        .collect();
                    info.string_tables.push(StringTable {
                        key: table.key.clone(),
                        strings,
                    });
                }
            }
            "VarFileInfo" => {
                for var in children(data, child.children.clone())? {
                    if var.key == "Translation" {
                        info.translations
                            .extend(var.value.chunks_exact(4).map(|p| (le16(p, 0), le16(p, 2))));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node as the format lays it out; `value` already encoded.
    fn build(key: &str, text: bool, value: &[u8], value_units: u16, kids: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![0, 0];
        out.extend_from_slice(&value_units.to_le_bytes());
        out.extend_from_slice(&u16::from(text).to_le_bytes());
        for unit in key.encode_utf16().chain([0]) {
            out.extend_from_slice(&unit.to_le_bytes());
        }
        out.resize(align4(out.len()), 0);
        out.extend_from_slice(value);
        for kid in kids {
            out.resize(align4(out.len()), 0);
            out.extend_from_slice(kid);
        }
        let len = out.len() as u16;
        out[..2].copy_from_slice(&len.to_le_bytes());
        out
    }

    fn utf16z(s: &str) -> Vec<u8> {
        s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
    }

    fn sample() -> Vec<u8> {
        let mut fixed = Vec::new();
        for n in [
            VS_FFI_SIGNATURE,
            0x10000,
            0x0006_0000,
            0x1AB3_0001,
            0x0006_0000,
            0x1AB3_0000,
            0x3f,
            0,
            0x40004,
            1,
            0,
            0,
            0,
        ] {
            fixed.extend_from_slice(&n.to_le_bytes());
        }
        let string = build("FileVersion", true, &utf16z("6.0.6835.0"), 11, &[]);
        let table = build("040904B0", false, &[], 0, &[string]);
        let sfi = build("StringFileInfo", true, &[], 0, &[table]);
        let translation = build("Translation", false, &[0x09, 0x04, 0xb0, 0x04], 4, &[]);
        let vfi = build("VarFileInfo", true, &[], 0, &[translation]);
        build("VS_VERSION_INFO", false, &fixed, 52, &[sfi, vfi])
    }

    #[test]
    fn decodes_fixed_info_strings_and_translations() {
        let info = decode_version_info(&sample()).unwrap();
        let fixed = info.fixed.unwrap();
        assert_eq!(fixed.file_version.to_string(), "6.0.6835.1");
        assert_eq!(fixed.product_version.to_string(), "6.0.6835.0");
        assert_eq!(fixed.file_os, 0x40004);
        assert_eq!(info.string("fileversion"), Some("6.0.6835.0"));
        assert_eq!(info.string_tables[0].key, "040904B0");
        assert_eq!(info.translations, vec![(0x0409, 0x04b0)]);
    }

    #[test]
    fn every_cut_and_flip_of_a_version_resource_is_an_answer_or_an_error() {
        let good = sample();
        for cut in 0..good.len() {
            let _ = decode_version_info(&good[..cut]);
        }
        for i in 0..good.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] ^= flip;
                let _ = decode_version_info(&bad);
            }
        }
    }

    #[test]
    fn a_wrong_signature_is_refused() {
        let mut bad = sample();
        bad[40] ^= 1; // first byte of VS_FIXEDFILEINFO (after the 15-character key and padding)
        assert!(decode_version_info(&bad).is_err());
    }

    #[test]
    fn non_pe_input_is_an_error_not_a_read_loop() {
        assert!(version_of(b"").is_err());
        assert!(version_of(&[0u8; 100]).is_err());
        let mut mz = vec![0u8; 128];
        mz[..2].copy_from_slice(b"MZ");
        mz[0x3c] = 0xf0; // e_lfanew past the end
        assert!(matches!(version_of(&mz), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn feeding_without_a_read_is_refused() {
        let mut locator = VersionLocator::new(10);
        assert!(locator.feed(vec![1, 2, 3]).is_err());
    }
}
