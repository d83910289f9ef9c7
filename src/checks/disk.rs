//! `disk`: free space and inodes of a filesystem (statvfs), plus the kernel's
//! filesystem error counter where the filesystem exposes one (ext4).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Check, CheckFuture, KeyError, Kind, Outcome, RunCtx};
use crate::policy::types::{FsPath, Percent};
use crate::util::redact::quote;

/// Keys of a `disk` check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// Any path on the filesystem to check (default `/`).
    pub path: Option<FsPath>,
    /// Fail below this share of free space (default 5).
    pub min_free_percent: Option<Percent>,
    /// Warn below this share of free space; at least `min_free_percent`.
    pub warn_free_percent: Option<Percent>,
    /// Fail below this share of free inodes.
    pub min_free_inodes_percent: Option<Percent>,
}

/// A validated `disk` check.
#[derive(Debug)]
pub struct Disk {
    path: PathBuf,
    min_free: f64,
    warn_free: Option<f64>,
    min_inodes: Option<f64>,
    mountinfo: PathBuf,
    sys_fs: PathBuf,
    /// The error counter of the filesystem holding `path`, as found for the device
    /// (`st_dev`) mounted there: mountinfo is read again only when that device changes.
    counter: Arc<Mutex<Option<Counter>>>,
}

/// Where one filesystem keeps its error count (`None`: it keeps none), found for its device.
#[derive(Debug, Clone)]
struct Counter {
    device: u64,
    file: Option<PathBuf>,
}

impl Kind for Disk {
    const NAME: &'static str = "disk";
    type Keys = Keys;

    fn build(k: Keys) -> Result<Self, KeyError> {
        let min_free = k.min_free_percent.map_or(5.0, |p| p.0);
        let warn_free = k.warn_free_percent.map(|p| p.0);
        if let Some(w) = warn_free.filter(|&w| w < min_free) {
            return Err(KeyError::at(
                "warn_free_percent",
                format!("{w} is below min_free_percent {min_free}; the warning must come first"),
            ));
        }
        let path = k.path.map_or_else(|| PathBuf::from("/"), |p| p.0);
        if !path.is_absolute() {
            return Err(KeyError::at("path", format!("`{}` is not an absolute path", quote(&path.to_string_lossy()))));
        }
        Ok(Disk {
            path,
            min_free,
            warn_free,
            min_inodes: k.min_free_inodes_percent.map(|p| p.0),
            mountinfo: PathBuf::from("/proc/self/mountinfo"),
            sys_fs: PathBuf::from("/sys/fs"),
            counter: Arc::default(),
        })
    }
}

impl Check for Disk {
    fn run<'a>(&'a self, _: &'a RunCtx) -> CheckFuture<'a> {
        Box::pin(async move {
            let (path, mountinfo, sys_fs) = (self.path.clone(), self.mountinfo.clone(), self.sys_fs.clone());
            let counter = Arc::clone(&self.counter);
            // statvfs can block for long on a sick disk or a hung network mount.
            let probe = tokio::task::spawn_blocking(move || probe(&path, &mountinfo, &sys_fs, &counter)).await;
            match probe {
                Ok(Ok(p)) => self.judge(&p),
                Ok(Err(e)) => {
                    Outcome::fail(format!("cannot read the free space of {} (statvfs): {e}", self.path.display()))
                }
                Err(e) => Outcome::fail(format!("the free-space probe of {} crashed: {e}", self.path.display())),
            }
        })
    }
}

/// What statvfs and sysfs said about one filesystem.
#[derive(Debug, Clone, PartialEq)]
struct Probe {
    free_percent: f64,
    free_bytes: u64,
    total_bytes: u64,
    /// None when the filesystem has no fixed inode table (btrfs, tmpfs without limit).
    inodes_free_percent: Option<f64>,
    io_errors: Option<u64>,
}

fn probe(path: &Path, mountinfo: &Path, sys_fs: &Path, counter: &Mutex<Option<Counter>>) -> nix::Result<Probe> {
    let st = nix::sys::statvfs::statvfs(path)?;
    let frag = st.fragment_size() as u64;
    let total = st.blocks() as u64;
    let avail = st.blocks_available() as u64;
    let files = st.files() as u64;
    Ok(Probe {
        free_percent: percent(avail, total),
        free_bytes: avail * frag,
        total_bytes: total * frag,
        inodes_free_percent: (files > 0).then(|| percent(st.files_available() as u64, files)),
        io_errors: counted_errors(path, mountinfo, sys_fs, counter),
    })
}

/// [`error_count`] through the counter found before for the same device.
fn counted_errors(path: &Path, mountinfo: &Path, sys_fs: &Path, counter: &Mutex<Option<Counter>>) -> Option<u64> {
    let device = nix::sys::stat::stat(path).ok()?.st_dev;
    let mut known = counter.lock().unwrap_or_else(PoisonError::into_inner);
    let file = match known.as_ref().filter(|c| c.device == device) {
        Some(c) => c.file.clone(),
        None => {
            let file = counter_file(path, mountinfo, sys_fs);
            *known = Some(Counter { device, file: file.clone() });
            file
        }
    };
    drop(known);
    read_count(&file?)
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { (part as f64 * 1000.0 / whole as f64).round() / 10.0 }
}

/// ext4's `errors_count` for the filesystem holding `path`, if it has one.
#[cfg(test)]
fn error_count(path: &Path, mountinfo: &Path, sys_fs: &Path) -> Option<u64> {
    read_count(&counter_file(path, mountinfo, sys_fs)?)
}

fn read_count(file: &Path) -> Option<u64> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// Where ext4 keeps the error count of the filesystem holding `path`, if it is ext4.
fn counter_file(path: &Path, mountinfo: &Path, sys_fs: &Path) -> Option<PathBuf> {
    let path = path.canonicalize().ok()?;
    let table = std::fs::read_to_string(mountinfo).ok()?;
    // mountinfo: id parent maj:min root mount-point options ... - fstype source super-options
    let (_, fstype, source) = table
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = unescape(left.split(' ').nth(4)?);
            let mut right = right.split(' ');
            let fstype = right.next()?.to_string();
            let source = right.next()?.to_string();
            path.starts_with(&mount_point).then_some((mount_point.len(), fstype, source))
        })
        .max_by_key(|(len, _, _)| *len)?;
    if fstype != "ext4" {
        return None;
    }
    let dev = Path::new(&source).canonicalize().ok()?;
    Some(sys_fs.join("ext4").join(dev.file_name()?).join("errors_count"))
}

fn unescape(field: &str) -> String {
    field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

impl Disk {
    fn judge(&self, p: &Probe) -> Outcome {
        let at = self.path.display();
        let free = format!("{:.1}% free ({} of {})", p.free_percent, human(p.free_bytes), human(p.total_bytes));
        let mut out = if let Some(n) = p.io_errors.filter(|&n| n > 0) {
            Outcome::fail(format!("{at}: the filesystem recorded {n} errors; {free}"))
        } else if p.free_percent < self.min_free {
            Outcome::fail(format!("{at}: {free}, below the minimum {}%", self.min_free))
        } else if let Some(inodes) = p.inodes_free_percent.filter(|&i| self.min_inodes.is_some_and(|m| i < m)) {
            Outcome::fail(format!(
                "{at}: {inodes:.1}% inodes free, below the minimum {}%",
                self.min_inodes.unwrap_or_default()
            ))
        } else if let Some(w) = self.warn_free.filter(|&w| p.free_percent < w) {
            Outcome::warn(format!("{at}: {free}, below the warning level {w}%"))
        } else {
            Outcome::pass(format!("{at}: {free}"))
        };
        out = out
            .with("free_space_percent", p.free_percent)
            .with("free_bytes", p.free_bytes)
            .with("total_bytes", p.total_bytes);
        if let Some(i) = p.inodes_free_percent {
            out = out.with("free_inodes_percent", i);
        }
        if let Some(n) = p.io_errors {
            out = out.with("io_errors", n);
        }
        out
    }
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Found;

    fn disk(min: f64, warn: Option<f64>, inodes: Option<f64>) -> Disk {
        let keys = Keys {
            path: None,
            min_free_percent: Some(Percent(min)),
            warn_free_percent: warn.map(Percent),
            min_free_inodes_percent: inodes.map(Percent),
        };
        Disk::build(keys).unwrap()
    }

    fn probe(free: f64, inodes: Option<f64>, errors: Option<u64>) -> Probe {
        Probe {
            free_percent: free,
            free_bytes: 1 << 30,
            total_bytes: 10 << 30,
            inodes_free_percent: inodes,
            io_errors: errors,
        }
    }

    #[test]
    fn thresholds() {
        let d = disk(10.0, Some(20.0), Some(5.0));
        assert_eq!(d.judge(&probe(50.0, Some(50.0), Some(0))).status, Found::Pass);
        assert_eq!(d.judge(&probe(15.0, Some(50.0), None)).status, Found::Warn);
        assert_eq!(d.judge(&probe(9.9, Some(50.0), None)).status, Found::Fail);
        assert_eq!(d.judge(&probe(50.0, Some(4.0), None)).status, Found::Fail);
        let errors = d.judge(&probe(50.0, None, Some(3)));
        assert_eq!(errors.status, Found::Fail);
        assert!(errors.message.contains("3 errors"), "{}", errors.message);
        assert_eq!(errors.observed["io_errors"], 3);
    }

    #[test]
    fn warn_below_min_is_rejected() {
        let keys = Keys {
            path: None,
            min_free_percent: Some(Percent(20.0)),
            warn_free_percent: Some(Percent(10.0)),
            min_free_inodes_percent: None,
        };
        assert!(Disk::build(keys).unwrap_err().message.contains("below min_free_percent"));
    }

    #[tokio::test]
    async fn real_root_filesystem_reports_observed_values() {
        let d = disk(0.0, None, None);
        let limit = std::time::Duration::from_secs(5);
        let ctx = RunCtx { deadline: tokio::time::Instant::now() + limit, limit };
        let out = d.run(&ctx).await;
        assert_eq!(out.status, Found::Pass, "{}", out.message);
        let st = nix::sys::statvfs::statvfs("/").unwrap();
        let expected = percent(st.blocks_available() as u64, st.blocks() as u64);
        let got = out.observed["free_space_percent"].as_f64().unwrap();
        assert!((got - expected).abs() < 1.0, "{got} vs {expected}");
    }

    /// `/` as an ext4 filesystem on device vdz9 whose sysfs counter says 7 errors, in a
    /// temp dir: (the dir, the device, its mountinfo, its /sys/fs).
    fn ext4_with_7_errors() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("vdz9");
        std::fs::write(&dev, "").unwrap();
        let mountinfo = dir.path().join("mountinfo");
        std::fs::write(&mountinfo, format!("22 1 254:0 / / rw - ext4 {} rw\n", dev.display())).unwrap();
        let sys = dir.path().join("sys");
        std::fs::create_dir_all(sys.join("ext4/vdz9")).unwrap();
        std::fs::write(sys.join("ext4/vdz9/errors_count"), "7\n").unwrap();
        (dir, dev, mountinfo, sys)
    }

    #[test]
    fn ext4_error_counter_is_read_from_sysfs() {
        let (_dir, dev, mountinfo, sys) = ext4_with_7_errors();
        assert_eq!(error_count(Path::new("/"), &mountinfo, &sys), Some(7));
        std::fs::write(&mountinfo, format!("22 1 254:0 / / rw - xfs {} rw\n", dev.display())).unwrap();
        assert_eq!(error_count(Path::new("/"), &mountinfo, &sys), None);
    }

    #[test]
    fn mountinfo_is_read_again_only_when_another_device_is_mounted() {
        let (_dir, dev, mountinfo, sys) = ext4_with_7_errors();
        let counter = Mutex::new(None);
        assert_eq!(counted_errors(Path::new("/"), &mountinfo, &sys, &counter), Some(7));
        // The same device: the counter found is read again, mountinfo is not.
        std::fs::write(&mountinfo, format!("22 1 254:0 / / rw - xfs {} rw\n", dev.display())).unwrap();
        std::fs::write(sys.join("ext4/vdz9/errors_count"), "8\n").unwrap();
        assert_eq!(counted_errors(Path::new("/"), &mountinfo, &sys, &counter), Some(8));
        // Another device at the path: mountinfo says what it is now.
        counter.lock().unwrap().as_mut().unwrap().device += 1;
        assert_eq!(counted_errors(Path::new("/"), &mountinfo, &sys, &counter), None);
    }
}
