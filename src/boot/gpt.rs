//! Read-only decoder of the on-disk GPT, enough to see the gptprio boot attributes.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Logical sector sizes probed in order; 4Kn disks keep the primary header at byte 4096.
const SECTOR_SIZES: [u64; 2] = [512, 4096];
const SIGNATURE: &[u8] = b"EFI PART";
const MIN_HEADER_SIZE: usize = 92;
const MIN_ENTRY_SIZE: u64 = 128;
/// A hostile header must not make us allocate more than this for the entry array.
const MAX_ENTRY_ARRAY: u64 = 1 << 20;

/// Why a GPT could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GptError {
    /// The disk or image could not be opened.
    #[error("cannot open {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A seek or read on the disk failed.
    #[error("cannot read {len} bytes at byte {offset}")]
    Io {
        offset: u64,
        len: u64,
        #[source]
        source: io::Error,
    },
    /// Neither the primary nor the backup location holds a GPT header.
    #[error("not a GPT disk: no EFI PART signature at LBA 1 or backup")]
    NotGpt,
    /// Headers were found but none is intact.
    #[error("primary and backup GPT headers both corrupt: {0}")]
    Corrupt(String),
}

/// One non-empty partition entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based slot in the entry array, as cgpt and sgdisk number partitions.
    pub index: u32,
    /// Partition type GUID, lowercase canonical form.
    pub type_guid: String,
    /// Unique partition GUID (PARTUUID), lowercase canonical form.
    pub unique_guid: String,
    /// Partition name (GPT label).
    pub name: String,
    /// First sector of the partition.
    pub first_lba: u64,
    /// Last sector of the partition, inclusive.
    pub last_lba: u64,
    /// All 64 attribute bits as stored.
    pub attributes: u64,
    /// gptprio priority, attribute bits 48–51.
    pub priority: u8,
    /// gptprio tries left, attribute bits 52–55.
    pub tries: u8,
    /// gptprio successful flag, attribute bit 56.
    pub successful: bool,
}

/// A decoded partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    /// Logical sector size the table was found with (512 or 4096).
    pub sector_size: u64,
    /// Disk GUID, lowercase canonical form.
    pub disk_guid: String,
    /// True when the primary copy was missing or corrupt and the backup was used.
    pub used_backup: bool,
    /// Non-empty entries in index order.
    pub partitions: Vec<Partition>,
}

/// Reads the GPT of the disk or image at `path`.
pub fn read_path(path: &Path) -> Result<Gpt, GptError> {
    let mut file = File::open(path).map_err(|source| GptError::Open { path: path.to_owned(), source })?;
    read(&mut file)
}

/// Reads the GPT from a disk image or block device, falling back to the backup copy.
pub fn read<R: Read + Seek>(dev: &mut R) -> Result<Gpt, GptError> {
    let len = dev.seek(SeekFrom::End(0)).map_err(|source| GptError::Io { offset: 0, len: 0, source })?;
    let mut problems = Vec::new();
    let mut backups = Vec::new();
    for ss in SECTOR_SIZES {
        match load(dev, ss, 1, len) {
            Ok(table) => return Ok(table),
            Err(Miss::NoSignature) => {}
            Err(Miss::Io(e)) => return Err(e),
            Err(Miss::Bad { why, alternate }) => {
                problems.push(format!("primary: {why}"));
                backups.extend(alternate.map(|lba| (ss, lba)));
                backups.push((ss, (len / ss).saturating_sub(1)));
            }
        }
    }
    // No primary signature at all: the sector size is unknown, so try both backup spots.
    if backups.is_empty() {
        backups.extend(SECTOR_SIZES.map(|ss| (ss, (len / ss).saturating_sub(1))));
    }
    backups.dedup();
    for (ss, lba) in backups {
        if lba < 2 {
            continue;
        }
        match load(dev, ss, lba, len) {
            Ok(table) => {
                return Ok(Gpt { used_backup: true, ..table });
            }
            Err(Miss::NoSignature) if problems.is_empty() => {}
            Err(Miss::NoSignature) => problems.push(format!("backup at LBA {lba}: no signature")),
            Err(Miss::Io(e)) => return Err(e),
            Err(Miss::Bad { why, .. }) => problems.push(format!("backup at LBA {lba}: {why}")),
        }
    }
    if problems.is_empty() { Err(GptError::NotGpt) } else { Err(GptError::Corrupt(problems.join("; "))) }
}

/// Why one copy of the table was not usable.
enum Miss {
    NoSignature,
    /// `alternate` is the other copy's LBA, known once this header's CRC checked out.
    Bad {
        why: String,
        alternate: Option<u64>,
    },
    Io(GptError),
}

fn bad(why: impl Into<String>, alternate: Option<u64>) -> Miss {
    Miss::Bad { why: why.into(), alternate }
}

/// Loads and verifies the header at `lba` and its entry array.
fn load<R: Read + Seek>(dev: &mut R, ss: u64, lba: u64, len: u64) -> Result<Gpt, Miss> {
    let offset = lba.checked_mul(ss).ok_or(Miss::NoSignature)?;
    if offset.saturating_add(ss) > len {
        return Err(Miss::NoSignature);
    }
    let hdr = read_at(dev, offset, ss).map_err(Miss::Io)?;
    if !hdr.starts_with(SIGNATURE) {
        return Err(Miss::NoSignature);
    }
    let size = le32(&hdr, 12) as usize;
    if !(MIN_HEADER_SIZE..=hdr.len()).contains(&size) {
        return Err(bad(format!("header size {size} out of range"), None));
    }
    let mut zeroed = hdr[..size].to_vec();
    zeroed[16..20].fill(0);
    if crc32fast::hash(&zeroed) != le32(&hdr, 16) {
        return Err(bad("header CRC mismatch", None));
    }
    let (my_lba, alternate) = (le64(&hdr, 24), le64(&hdr, 32));
    let alt = Some(alternate);
    if my_lba != lba {
        return Err(bad(format!("header claims LBA {my_lba}, found at {lba}"), alt));
    }
    let (entries_lba, count, entry_size) = (le64(&hdr, 72), le32(&hdr, 80), le32(&hdr, 84));
    let entry_size = u64::from(entry_size);
    if entry_size < MIN_ENTRY_SIZE || entry_size % 8 != 0 {
        return Err(bad(format!("entry size {entry_size} invalid"), alt));
    }
    let bytes = u64::from(count) * entry_size;
    if bytes > MAX_ENTRY_ARRAY {
        return Err(bad(format!("entry array of {bytes} bytes too large"), alt));
    }
    // The array may not cover the protective MBR, the primary header or this header:
    // with valid CRCs such a table would show a header as a partition.
    let sectors = bytes.div_ceil(ss);
    if entries_lba < 2 || (entries_lba <= my_lba && my_lba < entries_lba.saturating_add(sectors)) {
        return Err(bad(format!("entry array at LBA {entries_lba} overlaps the GPT headers"), alt));
    }
    let start = entries_lba.checked_mul(ss).filter(|s| s.saturating_add(bytes) <= len);
    let Some(start) = start else {
        return Err(bad(format!("entry array at LBA {entries_lba} beyond end"), alt));
    };
    let array = read_at(dev, start, bytes).map_err(Miss::Io)?;
    if crc32fast::hash(&array) != le32(&hdr, 88) {
        return Err(bad("partition entry array CRC mismatch", alt));
    }
    let partitions = array
        .chunks_exact(entry_size as usize)
        .zip(1u32..)
        .filter(|(e, _)| e[..16].iter().any(|b| *b != 0))
        .map(|(e, index)| decode_entry(e, index))
        .collect();
    Ok(Gpt { sector_size: ss, disk_guid: guid(&hdr[56..72]), used_backup: false, partitions })
}

fn decode_entry(e: &[u8], index: u32) -> Partition {
    let attributes = le64(e, 48);
    let units: Vec<u16> =
        e[56..128].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|u| *u != 0).collect();
    Partition {
        index,
        type_guid: guid(&e[..16]),
        unique_guid: guid(&e[16..32]),
        name: String::from_utf16_lossy(&units),
        first_lba: le64(e, 32),
        last_lba: le64(e, 40),
        attributes,
        priority: ((attributes >> 48) & 0xf) as u8,
        tries: ((attributes >> 52) & 0xf) as u8,
        successful: (attributes >> 56) & 1 == 1,
    }
}

fn read_at<R: Read + Seek>(dev: &mut R, offset: u64, len: u64) -> Result<Vec<u8>, GptError> {
    let io = |source| GptError::Io { offset, len, source };
    dev.seek(SeekFrom::Start(offset)).map_err(io)?;
    // `len` is at most a sector or MAX_ENTRY_ARRAY, so this cannot be a huge allocation.
    let mut buf = vec![0; len as usize];
    dev.read_exact(&mut buf).map_err(io)?;
    Ok(buf)
}

/// Formats a GUID stored mixed-endian (first three groups little-endian).
fn guid(b: &[u8]) -> String {
    let tail: String = b[10..16].iter().map(|x| format!("{x:02x}")).collect();
    let (a, m, h) = (le32(b, 0), le16(b, 4), le16(b, 6));
    format!("{a:08x}-{m:04x}-{h:04x}-{:02x}{:02x}-{tail}", b[8], b[9])
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn guid_uses_mixed_endian_layout() {
        let raw = [0xf4, 0xf5, 0xfb, 0x5d, 0x48, 0x28, 0xac, 0x4b, 0xaa, 0x5e, 0x0d, 0x9a, 0x20, 0xb7, 0x45, 0xa6];
        assert_eq!(guid(&raw), "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6");
    }

    #[test]
    fn short_or_blank_input_is_not_gpt() {
        for size in [0, 100, 512, 1024, 8192] {
            let err = read(&mut Cursor::new(vec![0u8; size])).unwrap_err();
            assert!(matches!(err, GptError::NotGpt), "{size} bytes: {err}");
        }
    }

    #[test]
    fn lone_signature_without_valid_crc_is_corrupt() {
        let mut disk = vec![0u8; 64 * 512];
        disk[512..520].copy_from_slice(SIGNATURE);
        disk[512 + 12] = 92;
        let err = read(&mut Cursor::new(disk)).unwrap_err();
        assert!(matches!(err, GptError::Corrupt(_)), "{err}");
        assert!(err.to_string().contains("header CRC mismatch"), "{err}");
    }
}
