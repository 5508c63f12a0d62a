//! Partial reads of files on the admin shares (`C$`, `ADMIN$`, `D$`, ...): just the byte
//! ranges a PE file's version resource needs, as the wire crate's locator asks for them.

use exsweep_wire::pe::{PeVersion, Step, VersionLocator};
use smb2::msg::close::CloseRequest;
use smb2::msg::create::{CreateDisposition, CreateRequest, CreateResponse, ImpersonationLevel, ShareAccess};
use smb2::msg::query_info::{InfoType, QueryInfoRequest, QueryInfoResponse};
use smb2::msg::read::{ReadRequest, ReadResponse, SMB2_CHANNEL_NONE};
use smb2::pack::{ReadCursor, Unpack};
use smb2::types::flags::FileAccessMask;
use smb2::types::status::NtStatus;
use smb2::types::{Command, FileId, OplockLevel, TreeId};

use super::{smb_err, status_error, SmbSession};
use crate::transport::TransportError;

/// Largest single READ: one credit's worth, which every dialect grants.
const MAX_READ_CHUNK: u32 = 64 * 1024;
/// READs one requested range may take; a well-behaved server needs one or two.
const MAX_READS_PER_RANGE: u32 = 32;
/// `FILE_NON_DIRECTORY_FILE`: opening a directory by mistake fails instead of succeeding.
const FILE_NON_DIRECTORY_FILE: u32 = 0x0000_0040;

/// A drive path on the scanned host, `X:\dir\file`, and the share that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowsPath {
    drive: char,
    /// The part after `X:\`, backslash-separated, no leading backslash.
    rest: String,
}

impl WindowsPath {
    pub fn parse(path: &str) -> Result<WindowsPath, TransportError> {
        let normalized = path.replace('/', "\\");
        let mut chars = normalized.chars();
        match (chars.next(), chars.next(), chars.next()) {
            (Some(drive), Some(':'), Some('\\')) if drive.is_ascii_alphabetic() => {
                let rest: Vec<&str> = normalized[3..].split('\\').filter(|p| !p.is_empty()).collect();
                if rest.is_empty() || rest.contains(&"..") {
                    return Err(TransportError::NotADrivePath(path.to_owned()));
                }
                Ok(WindowsPath {
                    drive: drive.to_ascii_uppercase(),
                    rest: rest.join("\\"),
                })
            }
            _ => Err(TransportError::NotADrivePath(path.to_owned())),
        }
    }

    /// The administrative share of the drive, `C$`.
    pub fn drive_share(&self) -> String {
        format!("{}$", self.drive)
    }

    /// The path relative to the drive share.
    pub fn within_drive(&self) -> &str {
        &self.rest
    }

    /// The path relative to `ADMIN$` when it lies under `system_root` (`C:\WINNT`).
    pub fn within_system_root(&self, system_root: &str) -> Option<String> {
        let root = WindowsPath::parse(&format!("{}\\x", system_root.trim_end_matches('\\'))).ok()?;
        let root_dir = root.rest.strip_suffix("\\x").unwrap_or("");
        if root.drive != self.drive || root_dir.is_empty() {
            return None;
        }
        let prefix = format!("{root_dir}\\");
        // Compared as bytes: the texts come from the remote registry, and a cut inside a
        // multi-byte character must not panic.
        let head = self.rest.as_bytes().get(..prefix.len())?;
        if !head.eq_ignore_ascii_case(prefix.as_bytes()) {
            return None;
        }
        self.rest
            .get(prefix.len()..)
            .filter(|tail| !tail.is_empty())
            .map(str::to_owned)
    }
}

impl std::fmt::Display for WindowsPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:\\{}", self.drive, self.rest)
    }
}

/// A file's version as read over SMB, with what the read cost.
#[derive(Debug, Clone)]
pub struct FileVersionRead {
    pub size: u64,
    pub pe: PeVersion,
    pub bytes_read: u64,
    pub reads: u32,
}

impl SmbSession {
    /// The version resource of `path` (relative to `share`), reading only what the locator
    /// asks for. `Ok(None)` when the file does not exist.
    pub async fn file_version(&mut self, share: &str, path: &str) -> Result<Option<FileVersionRead>, TransportError> {
        let tree = self.share_tree(share).await?;
        let Some((file, size)) = self.open_for_read(tree, share, path).await? else {
            return Ok(None);
        };
        let located = self.locate_version(tree, file, size, share, path).await;
        self.close_file(tree, file).await;
        located.map(Some)
    }

    /// Closes an open; a failure leaves nothing to undo (the session ends it anyway).
    async fn close_file(&mut self, tree: TreeId, file: FileId) {
        let close = CloseRequest {
            flags: 0,
            file_id: file,
        };
        let _ = self.execute("close file", Command::Close, &close, Some(tree)).await;
    }

    async fn locate_version(
        &mut self,
        tree: TreeId,
        file: FileId,
        size: u64,
        share: &str,
        path: &str,
    ) -> Result<FileVersionRead, TransportError> {
        let pe_error = |source| TransportError::Pe {
            path: format!(r"\\{share}\{path}"),
            source,
        };
        let mut locator = VersionLocator::new(size);
        loop {
            match locator.step().map_err(pe_error)? {
                Step::Done(pe) => {
                    return Ok(FileVersionRead {
                        size,
                        pe,
                        bytes_read: locator.bytes_read(),
                        reads: locator.reads(),
                    })
                }
                Step::Read(request) => {
                    let bytes = self.read_range(tree, file, request.offset, request.len).await?;
                    self.stats.file_bytes += bytes.len() as u64;
                    locator.feed(bytes).map_err(pe_error)?;
                }
            }
        }
    }

    /// The security descriptor (owner, group, DACL) of the file or folder `path` (relative to
    /// `share`), opened for `READ_CONTROL` alone. `Ok(None)` when it does not exist.
    pub async fn file_security(&mut self, share: &str, path: &str) -> Result<Option<Vec<u8>>, TransportError> {
        const READ_CONTROL: u32 = 0x0002_0000;
        const OWNER_GROUP_DACL: u32 = 0x7;
        const MAX_DESCRIPTOR: u32 = 64 * 1024;
        let tree = self.share_tree(share).await?;
        // READ_CONTROL alone: the owner (Administrators) holds it whatever the DACL says, where
        // SYNCHRONIZE or FILE_READ_ATTRIBUTES would need an entry granting them.
        let Some(opened) = self.open_existing(tree, share, path, READ_CONTROL, 0).await? else {
            return Ok(None);
        };
        let file = opened.file_id;
        let query = QueryInfoRequest {
            info_type: InfoType::Security,
            file_info_class: 0,
            output_buffer_length: MAX_DESCRIPTOR,
            additional_information: OWNER_GROUP_DACL,
            flags: 0,
            file_id: file,
            input_buffer: vec![],
        };
        let answer = self
            .execute("query security", Command::QueryInfo, &query, Some(tree))
            .await;
        self.close_file(tree, file).await;
        let frame = answer?;
        if frame.header.status != NtStatus::SUCCESS {
            return Err(status_error("query security", frame.header.status, Command::QueryInfo));
        }
        let resp = QueryInfoResponse::unpack(&mut ReadCursor::new(&frame.body)).map_err(smb_err("query security"))?;
        Ok(Some(resp.output_buffer))
    }

    /// The tree of a disk share, connected once per session.
    async fn share_tree(&mut self, share: &str) -> Result<TreeId, TransportError> {
        let key = share.to_ascii_uppercase();
        if let Some(tree) = self.shares.get(&key) {
            return Ok(*tree);
        }
        let tree = self.tree_connect(&key).await?;
        self.shares.insert(key, tree);
        Ok(tree)
    }

    /// Opens a file for reading only, letting others keep reading, writing and deleting it
    /// (a running `store.exe` stays untouched). Returns its id and size.
    async fn open_for_read(
        &mut self,
        tree: TreeId,
        share: &str,
        path: &str,
    ) -> Result<Option<(FileId, u64)>, TransportError> {
        let access =
            FileAccessMask::FILE_READ_DATA | FileAccessMask::FILE_READ_ATTRIBUTES | FileAccessMask::SYNCHRONIZE;
        let opened = self
            .open_existing(tree, share, path, access, FILE_NON_DIRECTORY_FILE)
            .await?;
        Ok(opened.map(|r| (r.file_id, r.end_of_file)))
    }

    /// Opens an existing file or folder with `access`, sharing read, write and delete.
    /// `Ok(None)` when it does not exist.
    async fn open_existing(
        &mut self,
        tree: TreeId,
        share: &str,
        path: &str,
        access: u32,
        options: u32,
    ) -> Result<Option<CreateResponse>, TransportError> {
        let req = CreateRequest {
            requested_oplock_level: OplockLevel::None,
            impersonation_level: ImpersonationLevel::Impersonation,
            desired_access: FileAccessMask::new(access),
            file_attributes: 0,
            share_access: ShareAccess(
                ShareAccess::FILE_SHARE_READ | ShareAccess::FILE_SHARE_WRITE | ShareAccess::FILE_SHARE_DELETE,
            ),
            create_disposition: CreateDisposition::FileOpen,
            create_options: options,
            name: path.to_owned(),
            create_contexts: vec![],
        };
        let frame = self.execute("open file", Command::Create, &req, Some(tree)).await?;
        match frame.header.status {
            NtStatus::SUCCESS => {}
            NtStatus::OBJECT_NAME_NOT_FOUND | NtStatus::OBJECT_PATH_NOT_FOUND => return Ok(None),
            NtStatus::ACCESS_DENIED => {
                return Err(TransportError::AccessDenied {
                    what: format!(r"\\{share}\{path}"),
                })
            }
            status => return Err(status_error("open file", status, Command::Create)),
        }
        CreateResponse::unpack(&mut ReadCursor::new(&frame.body))
            .map(Some)
            .map_err(smb_err("open file"))
    }

    /// `len` bytes at `offset`, in chunks the server accepts; fewer at the end of the file.
    async fn read_range(
        &mut self,
        tree: TreeId,
        file: FileId,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, TransportError> {
        let chunk = self.max_read.clamp(4096, MAX_READ_CHUNK);
        let mut out = Vec::with_capacity(len as usize);
        // A server answering a few bytes per READ would otherwise cost a round trip per byte.
        let mut reads_left = MAX_READS_PER_RANGE;
        while (out.len() as u32) < len && reads_left > 0 {
            reads_left -= 1;
            let want = (len - out.len() as u32).min(chunk);
            let req = ReadRequest {
                padding: 0x50,
                flags: 0,
                length: want,
                offset: offset + out.len() as u64,
                file_id: file,
                minimum_count: 0,
                channel: SMB2_CHANNEL_NONE,
                remaining_bytes: 0,
                read_channel_info: vec![],
            };
            let frame = self.execute("read file", Command::Read, &req, Some(tree)).await?;
            match frame.header.status {
                NtStatus::SUCCESS => {}
                NtStatus::END_OF_FILE => break,
                status => return Err(status_error("read file", status, Command::Read)),
            }
            let resp = ReadResponse::unpack(&mut ReadCursor::new(&frame.body)).map_err(smb_err("read file"))?;
            if resp.data.is_empty() {
                break;
            }
            // A server sending more than asked is cut to what was asked.
            let take = resp.data.len().min(want as usize);
            out.extend_from_slice(&resp.data[..take]);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drive_paths_map_to_shares() {
        let p = WindowsPath::parse(r"c:\Program Files\Exchsrvr\bin\store.exe").unwrap();
        assert_eq!(p.drive_share(), "C$");
        assert_eq!(p.within_drive(), r"Program Files\Exchsrvr\bin\store.exe");
        assert_eq!(p.to_string(), r"C:\Program Files\Exchsrvr\bin\store.exe");
        let k = WindowsPath::parse(r"C:\WINNT\system32\ntoskrnl.exe").unwrap();
        assert_eq!(
            k.within_system_root(r"C:\winnt").as_deref(),
            Some(r"system32\ntoskrnl.exe")
        );
        assert_eq!(k.within_system_root(r"D:\WINNT"), None);
        assert_eq!(p.within_system_root(r"C:\WINNT"), None);
        let umlaut = WindowsPath::parse(r"C:\Progrä\x.exe").unwrap();
        assert_eq!(umlaut.within_system_root(r"C:\WINNT"), None);
        assert_eq!(umlaut.within_system_root(r"C:\Progr"), None);
        assert_eq!(umlaut.within_system_root(r"C:\Progrä").as_deref(), Some("x.exe"));
        for bad in [r"\\server\share\x", "store.exe", r"C:\", r"C:\a\..\b", ""] {
            assert!(WindowsPath::parse(bad).is_err(), "{bad}");
        }
    }
}
