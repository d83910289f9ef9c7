//! This boot and the booted OS as the kernel and os-release name them.

use std::path::Path;

use crate::util::read::read_regular;

/// This boot's id from the kernel, if readable.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_string())
}

/// `VERSION` from `/usr/lib/os-release`.
pub fn os_version() -> Option<String> {
    os_version_at(Path::new("/usr/lib/os-release"))
}

/// [`os_version`] from the os-release file at `path`.
pub fn os_version_at(path: &Path) -> Option<String> {
    let bytes = read_regular(path, 64 << 10).ok()?;
    String::from_utf8_lossy(&bytes).lines().find_map(|l| {
        let v = l.trim().strip_prefix("VERSION=")?;
        let v = v.trim_matches(|c| c == '"' || c == '\'');
        (!v.is_empty()).then(|| v.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_version_is_read_unquoted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("os-release");
        std::fs::write(&file, "NAME=\"Flatcar\"\nVERSION_ID=4152.2.0\nVERSION=\"4152.2.0\"\n").unwrap();
        assert_eq!(os_version_at(&file).as_deref(), Some("4152.2.0"));
        std::fs::write(&file, "NAME=x\n").unwrap();
        assert_eq!(os_version_at(&file), None);
        assert_eq!(os_version_at(&dir.path().join("missing")), None);
    }
}
