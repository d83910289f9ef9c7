//! This boot, this device and the booted OS as the kernel, systemd and os-release name them.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::util::read::read_regular;

/// The os-release files in the order systemd reads them.
const OS_RELEASE: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// The largest os-release, hostname or machine-id file read.
const MAX_ID_BYTES: u64 = 64 << 10;

/// This boot's id from the kernel, if readable.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_string())
}

/// The fields of os-release that name the booted OS and its image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID`, e.g. `flatcar`, `fedora`, `debian`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `PRETTY_NAME`, e.g. `Flatcar Container Linux by Kinvolk 4152.2.0 (Oklo)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
    /// `VERSION`, e.g. `12 (bookworm)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `VERSION_ID`, e.g. `4152.2.0` or `12`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// `IMAGE_ID`, set by image-based OSes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// `IMAGE_VERSION`, set by image-based OSes: the version an update installs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_version: Option<String>,
}

impl OsRelease {
    /// The booted OS's os-release, from `/etc/os-release` or else `/usr/lib/os-release`.
    pub fn read() -> OsRelease {
        OS_RELEASE.iter().find_map(|p| OsRelease::read_at(Path::new(p))).unwrap_or_default()
    }

    /// The os-release file at `path`, if it can be read.
    pub fn read_at(path: &Path) -> Option<OsRelease> {
        let bytes = read_regular(path, MAX_ID_BYTES).ok()?;
        Some(OsRelease::parse(&String::from_utf8_lossy(&bytes)))
    }

    /// os-release text: `KEY=value` lines, values optionally quoted, `#` comments.
    pub fn parse(text: &str) -> OsRelease {
        let fields: HashMap<&str, String> = text
            .lines()
            .filter_map(|l| {
                let (key, value) = l.trim().split_once('=')?;
                let value = unquote(value.trim());
                (!key.starts_with('#') && !value.is_empty()).then(|| (key.trim(), value))
            })
            .collect();
        let get = |key: &str| fields.get(key).cloned();
        OsRelease {
            id: get("ID"),
            pretty_name: get("PRETTY_NAME").or_else(|| get("NAME")),
            version: get("VERSION"),
            version_id: get("VERSION_ID"),
            image_id: get("IMAGE_ID"),
            image_version: get("IMAGE_VERSION"),
        }
    }

    /// The version an update changes: `IMAGE_VERSION`, else `VERSION_ID`, else `VERSION`.
    pub fn os_version(&self) -> Option<&str> {
        self.image_version.as_deref().or(self.version_id.as_deref()).or(self.version.as_deref())
    }
}

/// A shell-style quoted os-release value without its quotes and backslash escapes.
fn unquote(value: &str) -> String {
    let inner = match value.as_bytes() {
        [q @ (b'"' | b'\''), .., last] if last == q && value.len() >= 2 => &value[1..value.len() - 1],
        _ => value,
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Which device this is: what a person tells ten devices apart by.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The kernel's hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// `/etc/machine-id`, all 32 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// The booted OS.
    #[serde(default)]
    pub os: OsRelease,
}

impl Device {
    /// This device, read from the kernel, `/etc/machine-id` and os-release.
    pub fn read() -> Device {
        let first_line = |path: &str| {
            let bytes = read_regular(Path::new(path), MAX_ID_BYTES).ok()?;
            let text = String::from_utf8_lossy(&bytes);
            let line = text.lines().next()?.trim();
            (!line.is_empty()).then(|| line.to_string())
        };
        Device {
            hostname: first_line("/proc/sys/kernel/hostname"),
            machine_id: first_line("/etc/machine-id")
                .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())),
            os: OsRelease::read(),
        }
    }

    /// The machine id's first 12 hex digits, as `journalctl` and `hostnamectl` users
    /// recognise a machine by; enough to tell a fleet's devices apart.
    pub fn short_machine_id(&self) -> Option<&str> {
        self.machine_id.as_deref().map(|id| &id[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_version_is_read_unquoted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("os-release");
        std::fs::write(&file, "NAME=\"Flatcar\"\nVERSION_ID=4152.2.0\nVERSION=\"4152.2.0\"\n").unwrap();
        let read = |path: &Path| OsRelease::read_at(path).and_then(|os| os.os_version().map(str::to_string));
        assert_eq!(read(&file).as_deref(), Some("4152.2.0"));
        std::fs::write(&file, "NAME=x\n").unwrap();
        assert_eq!(read(&file), None);
        assert_eq!(OsRelease::read_at(&dir.path().join("missing")), None);
    }

    #[test]
    fn the_image_version_wins_then_version_id_then_version() {
        let debian = OsRelease::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n\
             VERSION=\"12 (bookworm)\"\nID=debian\n# IMAGE_VERSION=commented\n",
        );
        assert_eq!(debian.pretty_name.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(debian.id.as_deref(), Some("debian"));
        assert_eq!(debian.os_version(), Some("12"));
        let image = OsRelease::parse("NAME=Appliance\nVERSION_ID=2\nIMAGE_ID=appliance\nIMAGE_VERSION='2.4.1'\n");
        assert_eq!(image.os_version(), Some("2.4.1"));
        assert_eq!(image.pretty_name.as_deref(), Some("Appliance"), "NAME stands in for PRETTY_NAME");
        assert_eq!(OsRelease::parse("VERSION=\"1 \\\"x\\\"\"\n").os_version(), Some("1 \"x\""));
        assert_eq!(OsRelease::parse("").os_version(), None);
    }

    #[test]
    fn this_device_is_named() {
        let device = Device::read();
        assert!(device.hostname.is_some(), "{device:?}");
        if let Some(id) = &device.machine_id {
            assert_eq!(device.short_machine_id(), Some(&id[..12]));
        }
    }
}
