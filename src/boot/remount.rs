//! A write to a file system mounted read-only, as `/boot` is on rpm-ostree and bootc
//! hosts: the mount holding the file is found in `/proc/self/mountinfo`, remounted
//! read-write for the write only when it is read-only, and always remounted read-only
//! after it, as greenboot's `greenboot-boot-remount` does. Through the `mount` tool, run
//! bounded ([`reaper::run_tool`]): a remount of a wedged device is killed at its
//! timeout and said, where a mount(2) call on a blocking thread could neither be
//! bounded nor ended. The daemon runs in its unit's own mount namespace
//! (`PrivateMounts=yes`), so the read-write mount point is never seen outside it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::reaper;
use crate::util::read::read_regular;
use crate::util::tool::ToolError;

/// How long one remount may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest mount table read.
const MOUNTINFO_CAP: u64 = 4 << 20;

/// One line of a mount table: where it is mounted, and whether it is read-only, as a
/// mount point or in its super block (a bind mount made writable over a read-only file
/// system still refuses writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub point: PathBuf,
    pub read_only: bool,
}

/// Why a read-only mount could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RemountError {
    #[error("cannot read the mount table {path}: {source}")]
    Table { path: String, source: std::io::Error },
    #[error("cannot remount {point} read-write: {source}")]
    Writable { point: String, source: ToolError },
}

/// The mount holding the (already resolved) `path`, from the table text of
/// `/proc/self/mountinfo`: the longest mount point above it, the last one of them
/// (a later mount on the same point hides the earlier).
pub fn holding(table: &str, path: &Path) -> Option<Mount> {
    let mut best: Option<Mount> = None;
    for line in table.lines() {
        let Some(mount) = parse_line(line) else { continue };
        if !path.starts_with(&mount.point) {
            continue;
        }
        if best.as_ref().is_none_or(|b| mount.point.as_os_str().len() >= b.point.as_os_str().len()) {
            best = Some(mount);
        }
    }
    best
}

/// One mountinfo line: `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL…] - TYPE SOURCE SUPER`.
fn parse_line(line: &str) -> Option<Mount> {
    let (head, tail) = line.split_once(" - ")?;
    let fields: Vec<&str> = head.split(' ').collect();
    let point = unescape(fields.get(4)?);
    let options = fields.get(5)?;
    let super_options = tail.split(' ').nth(2).unwrap_or("");
    let ro = |opts: &str| opts.split(',').any(|o| o == "ro");
    Some(Mount { point: PathBuf::from(point), read_only: ro(options) || ro(super_options) })
}

/// A mount point as the kernel escapes it: space, tab, newline and backslash as `\ooo`.
pub(crate) fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal =
            bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal.and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()) {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount holding `path` (resolved: a symlink's target counts), as `table` lists it.
pub fn mount_of(table: &Path, path: &Path) -> Result<Option<Mount>, RemountError> {
    let text = read_regular(table, MOUNTINFO_CAP)
        .map_err(|source| RemountError::Table { path: table.display().to_string(), source })?;
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(holding(&String::from_utf8_lossy(&text), &resolved))
}

/// `mount -o remount,MODE POINT`, bounded by [`TIMEOUT`].
async fn remount(point: &Path, mode: &str) -> Result<(), ToolError> {
    let mut cmd = tokio::process::Command::new("mount");
    cmd.arg("-o").arg(format!("remount,{mode}")).arg(point);
    let shown = format!("mount -o remount,{mode} {}", point.display());
    reaper::run_tool(cmd, shown, TIMEOUT).await.map(drop)
}

/// What [`writing`] did around the write, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Around {
    /// The file system was writable already: nothing was remounted.
    Writable,
    /// Remounted read-write for the write, and read-only again after it.
    Restored(PathBuf),
    /// Remounted read-write for the write; remounting it read-only after failed.
    LeftWritable(PathBuf, String),
}

/// Runs `write` on a file in `mount`: directly when it is writable, else between a
/// remount read-write and one back to read-only, the second made whatever `write` did.
pub async fn writing<T>(
    mount: Option<Mount>,
    write: impl std::future::Future<Output = T>,
) -> Result<(T, Around), RemountError> {
    let Some(Mount { point, read_only: true }) = mount else {
        return Ok((write.await, Around::Writable));
    };
    remount(&point, "rw")
        .await
        .map_err(|source| RemountError::Writable { point: point.display().to_string(), source })?;
    let done = write.await;
    let around = match remount(&point, "ro").await {
        Ok(()) => Around::Restored(point),
        Err(e) => {
            tracing::error!(mount = %point.display(), "{e}; {} stays mounted read-write", point.display());
            Around::LeftWritable(point, e.to_string())
        }
    };
    Ok((done, around))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
30 22 8:1 / /boot ro,relatime shared:7 - ext4 /dev/sda1 ro
31 30 8:3 / /boot/efi rw,relatime shared:8 - vfat /dev/sda3 rw,fmask=0077
40 22 0:50 / /mnt/with\\040space rw,relatime - tmpfs tmpfs rw
41 22 8:1 /grub2 /srv/grub rw,relatime - ext4 /dev/sda1 ro
42 22 0:51 / /boot rw,relatime - tmpfs tmpfs rw
";

    fn of(path: &str) -> Option<Mount> {
        holding(TABLE, Path::new(path))
    }

    #[test]
    fn the_longest_and_latest_mount_above_a_file_holds_it() {
        let m = |p: &str, ro| Some(Mount { point: p.into(), read_only: ro });
        assert_eq!(of("/boot/efi/EFI/fedora/grubenv"), m("/boot/efi", false));
        assert_eq!(of("/bootx/grubenv"), m("/", false), "a prefix of the name is not a mount above it");
        assert_eq!(of("/boot/grub2/grubenv"), m("/boot", false), "the later mount on /boot hides the earlier");
        assert_eq!(
            holding(&TABLE.lines().take(3).collect::<Vec<_>>().join("\n"), Path::new("/boot/x")),
            m("/boot", true)
        );
        assert_eq!(of("/srv/grub/grubenv"), m("/srv/grub", true), "a bind mount over a read-only super block");
        assert_eq!(of("/mnt/with space/grubenv"), m("/mnt/with space", false));
        assert_eq!(holding("garbage\n\n1 2 3\n", Path::new("/boot")), None);
    }

    #[tokio::test]
    async fn a_writable_file_system_is_written_without_a_remount() {
        let (n, around) =
            writing(Some(Mount { point: "/nonexistent".into(), read_only: false }), async { 7 }).await.unwrap();
        assert_eq!((n, around), (7, Around::Writable));
        let (_, around) = writing(None, async {}).await.unwrap();
        assert_eq!(around, Around::Writable);
    }
}
