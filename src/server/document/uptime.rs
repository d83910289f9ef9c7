//! How long the machine (`uptime_seconds`) and this daemon (`process_uptime_seconds`)
//! have been up, from the kernel's own clocks rather than a timestamp taken at
//! startup: `/proc/uptime`, and the process start in `/proc/self/stat`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

const UPTIME: &str = "/proc/uptime";
const STAT: &str = "/proc/self/stat";
const AUXV: &str = "/proc/self/auxv";

/// `AT_CLKTCK` in the auxiliary vector: clock ticks a second, the unit of `starttime`.
const AT_CLKTCK: usize = 17;

/// Whole seconds since the machine booted; a failure to read `/proc/uptime` is logged once.
pub fn machine() -> Option<u64> {
    static WARNED: AtomicBool = AtomicBool::new(false);
    logged(machine_at(Path::new(UPTIME)).map(|s| s as u64), UPTIME, &WARNED)
}

/// Whole seconds since this process started; a failure is logged once.
pub fn process() -> Option<u64> {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let age = process_at(Path::new(UPTIME), Path::new(STAT), Path::new(AUXV));
    logged(age.map_err(|(file, e)| format!("{file}: {e}")), "/proc/self/stat", &WARNED)
}

/// Seconds since boot from a file in `/proc/uptime`'s format (`12345.67 54321.00`).
pub fn machine_at(path: &Path) -> Result<f64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.split_whitespace()
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| format!("{} does not start with a number of seconds: {:?}", path.display(), text.trim()))
}

/// The process age from its start (`stat` field 22, in clock ticks since boot) and the machine's uptime.
fn process_at(uptime: &Path, stat: &Path, auxv: &Path) -> Result<u64, (String, String)> {
    let named = |p: &Path, e: String| (p.display().to_string(), e);
    let up = machine_at(uptime).map_err(|e| named(uptime, e))?;
    let text = std::fs::read_to_string(stat).map_err(|e| named(stat, e.to_string()))?;
    // The command name may hold spaces and parentheses: fields count from the last `)`.
    let after = text.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let ticks: u64 = after
        .split_whitespace()
        .nth(19)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| named(stat, "no start time in field 22".into()))?;
    let hz = clock_ticks(auxv).unwrap_or(100);
    Ok((up - ticks as f64 / hz as f64).max(0.0) as u64)
}

/// The kernel's clock ticks a second, as `sysconf(_SC_CLK_TCK)` reads it from the auxiliary vector.
fn clock_ticks(auxv: &Path) -> Option<u64> {
    let bytes = std::fs::read(auxv).ok()?;
    let word = std::mem::size_of::<usize>();
    bytes.chunks_exact(2 * word).find_map(|pair| {
        let (key, value) = pair.split_at(word);
        let num = |b: &[u8]| b.try_into().ok().map(usize::from_ne_bytes);
        (num(key)? == AT_CLKTCK).then(|| num(value)).flatten().map(|v| v as u64).filter(|&v| v > 0)
    })
}

/// The value, or `None` after logging the first failure (a request must not log each time).
fn logged<T>(r: Result<T, String>, file: &str, warned: &AtomicBool) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            if !warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(file, error = %e, "cannot tell the uptime from {file} ({e}); the health document leaves it null");
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn machine_uptime_reads_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uptime");
        std::fs::write(&path, "3600.97 7000.00\n").unwrap();
        assert_eq!(machine_at(&path), Ok(3600.97));
        std::fs::write(&path, "garbage\n").unwrap();
        assert!(machine_at(&path).unwrap_err().contains("does not start with a number"));
        assert!(machine_at(&dir.path().join("missing")).unwrap_err().contains("missing"));
        assert!(machine().is_some());
    }

    #[test]
    fn process_uptime_counts_from_this_process_start() {
        let machine = machine().unwrap();
        let process = process().expect("this process has an age");
        assert!(process <= machine, "process {process}s, machine {machine}s");
        // A test process is seconds old, the machine usually much older.
        assert!(process < 300, "this test process started {process}s ago?");
        assert_eq!(clock_ticks(Path::new(AUXV)).map(|hz| hz > 0), Some(true));
    }

    #[test]
    fn process_uptime_names_the_file_it_cannot_read() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("stat");
        let err = process_at(Path::new(UPTIME), &missing, Path::new(AUXV)).unwrap_err();
        assert_eq!(err.0, missing.display().to_string());
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_unreadable_uptime_is_logged_once_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uptime");
        let name = path.display().to_string();
        let logs = Captured::default();
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || sink.clone()).with_ansi(false).finish();
        let warned = AtomicBool::new(false);
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..3 {
                assert_eq!(logged(machine_at(&path), &name, &warned), None);
            }
        });
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(&format!("cannot tell the uptime from {name}")), "{text}");
    }
}
