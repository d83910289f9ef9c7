//! The one way bootgate replaces a file: the new content goes to a temp file of a unique
//! name in the same directory, opened with `O_CREAT|O_EXCL|O_NOFOLLOW` (so a name planted
//! there in advance, a symlink above all, is never followed or reused), is synced, then
//! renamed over the target, and the directory is synced so the rename survives a power
//! cut. A reader sees the old file or the new one, never a mix.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Temp names differ between processes (the pid) and between writes of one process.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `bytes`, file mode `mode`. The temp file starts with `.` and
/// ends in `.tmp`, so collectors reading `*.prom` or `*.json` never pick it up.
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} names no file", path.display())))?
        .to_string_lossy();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        // The umask may have taken bits the readers need (node_exporter, operators).
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("verdict.json");
        write(&path, b"one", 0o644).unwrap();
        write(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(names(dir.path()), ["verdict.json"]);
        let err = write(&dir.path().join("missing/verdict.json"), b"x", 0o644).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn a_symlink_planted_at_a_temp_name_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let path = dir.path().join("out.prom");
        // Every name the next writes of this process could take.
        let next = NEXT.load(Ordering::Relaxed);
        for n in next..next + 64 {
            let planted = dir.path().join(format!(".out.prom.{}.{n}.tmp", std::process::id()));
            std::os::unix::fs::symlink(&victim, planted).unwrap();
        }
        let err = write(&path, b"new", 0o644).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(!path.exists());
    }
}
