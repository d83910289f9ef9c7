//! `--textfile PATH`: the metrics of `/metrics`, written for node_exporter's textfile
//! collector after changes of the board (at most once a second), for fleets that scrape
//! only node_exporter.
//!
//! Each write goes through the one atomic write (a temp file of a unique name, never a
//! planted one, renamed over PATH), so node_exporter never reads half a file. The temp
//! name does not end in `.prom`, so the collector never picks it up. A write that fails
//! is logged once for each distinct error and retried on the next change; it never
//! touches the gate or the endpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Metrics;
use crate::engine::Snapshot;
use crate::record::boot::BootFacts;

/// Starts writing `path` from `metrics` on every change of the snapshots or of the boot facts.
pub fn start(
    path: PathBuf,
    metrics: Arc<Metrics>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    boot: watch::Receiver<Option<Arc<BootFacts>>>,
) -> JoinHandle<()> {
    if path.extension().is_none_or(|e| e != "prom") {
        tracing::warn!(textfile = %path.display(), "{} does not end in .prom: node_exporter's textfile collector reads only *.prom files", path.display());
    }
    tokio::spawn(keep_written(path, metrics, snapshots, boot))
}

/// The least time between two writes: a thousand checks finishing one by one would
/// otherwise re-render and re-write a megabyte per result.
pub const MIN_GAP: Duration = Duration::from_secs(1);

/// Writes now and after changes, at most once every [`MIN_GAP`] (changes meanwhile are
/// written together, the latest state always last), until the board's sender is gone.
pub async fn keep_written(
    path: PathBuf,
    metrics: Arc<Metrics>,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    mut boot: watch::Receiver<Option<Arc<BootFacts>>>,
) {
    let mut last_error: Option<String> = None;
    loop {
        let started = tokio::time::Instant::now();
        let snapshot = snapshots.borrow_and_update().clone();
        let facts = boot.borrow_and_update().clone();
        let (metrics, target) = (Arc::clone(&metrics), path.clone());
        let written = tokio::task::spawn_blocking(move || {
            let text =
                metrics.render(&snapshot, facts.as_deref()).map_err(|e| format!("cannot encode metrics: {e}"))?;
            let text = String::from_utf8_lossy(&text);
            write_atomically(&target, &without_process_metrics(&text)).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("the write task ended abnormally: {e}")));
        note(&path, written, &mut last_error);
        tokio::time::sleep_until(started + MIN_GAP).await;
        tokio::select! {
            changed = snapshots.changed() => if changed.is_err() { return },
            changed = boot.changed() => if changed.is_err() { return },
        }
    }
}

/// Logs a failure the first time it is seen, and the recovery after failures; returns whether it logged.
fn note(path: &Path, written: Result<(), String>, last_error: &mut Option<String>) -> bool {
    match written {
        Ok(()) if last_error.take().is_some() => {
            tracing::info!(textfile = %path.display(), "writing the metrics textfile {} again", path.display());
            true
        }
        Ok(()) => false,
        Err(e) if last_error.as_deref() == Some(e.as_str()) => false,
        Err(e) => {
            tracing::warn!(textfile = %path.display(), error = %e, "cannot write the metrics textfile {}: {e}; retrying after the next round", path.display());
            *last_error = Some(e);
            true
        }
    }
}

/// The process metrics describe a live process: a file would freeze them, and
/// node_exporter exports its own `process_*` series, which these would collide with.
fn without_process_metrics(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let name = line.strip_prefix("# HELP ").or_else(|| line.strip_prefix("# TYPE ")).unwrap_or(line);
        if !name.starts_with("process_") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Replaces `path` with `text` (readable by all: node_exporter runs as its own user).
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    crate::util::atomic::write(path, text.as_bytes(), 0o644)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_metrics_are_left_out() {
        let text = "# HELP bootgate_gate_passed 1 once.\n# TYPE bootgate_gate_passed gauge\nbootgate_gate_passed 1\n\
                    # HELP process_open_fds Open fds.\n# TYPE process_open_fds gauge\nprocess_open_fds 9\n";
        assert_eq!(
            without_process_metrics(text),
            "# HELP bootgate_gate_passed 1 once.\n# TYPE bootgate_gate_passed gauge\nbootgate_gate_passed 1\n"
        );
    }

    #[test]
    fn writes_replace_the_file_and_leave_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bootgate.prom");
        write_atomically(&path, "a 1\n").unwrap();
        write_atomically(&path, "a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["bootgate.prom"]);
        let err = write_atomically(&dir.path().join("missing/bootgate.prom"), "a 1\n").unwrap_err();
        assert!(err.to_string().contains("missing/bootgate.prom"), "{err}");
    }

    #[test]
    fn a_symlink_planted_at_the_temp_name_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("grubenv");
        std::fs::write(&victim, "keep").unwrap();
        let path = dir.path().join("bootgate.prom");
        let planted = dir.path().join(format!(".bootgate.prom.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        write_atomically(&path, "a 1\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 1\n");
    }

    #[tokio::test]
    async fn a_burst_of_changes_is_written_at_most_once_a_second_and_the_last_one_last() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bootgate.prom");
        let spec = crate::policy::parse("version: 1\nchecks:\n  - {name: a, kind: disk}\n", "p.yaml").unwrap();
        let (board, rx) = watch::channel(Arc::new(Snapshot::new(&spec.checks)));
        let metrics = Arc::new(Metrics::new(&board.borrow()).unwrap());
        let (_boot, boot_rx) = watch::channel(None);
        let writer = tokio::spawn(keep_written(path.clone(), metrics, rx, boot_rx));
        let mut inodes = std::collections::BTreeSet::new();
        let started = tokio::time::Instant::now();
        // A change every 10 ms for 1.5 s: 150 changes, each a new file if written at once.
        for n in 0..150u32 {
            board.send_modify(|s| Arc::make_mut(s).checks[0].consecutive_failures = n);
            if let Ok(meta) = std::fs::metadata(&path) {
                // The inode alone may be reused by the next file; with its change time it is one file.
                inodes.insert((meta.ino(), meta.ctime(), meta.ctime_nsec()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        assert!(inodes.len() as f64 <= elapsed.ceil() + 1.0, "{} writes in {elapsed:.1} s", inodes.len());
        tokio::time::sleep(MIN_GAP * 3).await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("bootgate_check_consecutive_failures{check=\"a\"} 149"), "{text}");
        drop(board);
        tokio::time::timeout(Duration::from_secs(10), writer).await.expect("the writer ends with the board").unwrap();
    }

    #[test]
    fn each_distinct_error_is_noted_once() {
        let mut last = None;
        let path = Path::new("/x");
        let logged: Vec<bool> = [Err("e1"), Err("e1"), Err("e2"), Err("e2"), Ok(()), Ok(()), Err("e1")]
            .into_iter()
            .map(|r| note(path, r.map_err(String::from), &mut last))
            .collect();
        assert_eq!(logged, [true, false, true, false, true, false, true]);
    }
}
