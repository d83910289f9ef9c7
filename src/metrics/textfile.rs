//! `--textfile PATH`: the metrics of `/metrics`, written for node_exporter's textfile
//! collector after every change of the board (every round), for fleets that scrape
//! only node_exporter.
//!
//! Each write goes to a temp file in the same directory, then is renamed over PATH, so
//! node_exporter never reads half a file. The temp name does not end in `.prom`, so
//! the collector never picks it up. A write that fails is logged once for each distinct
//! error and retried on the next change; it never touches the gate or the endpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// Writes now and after each change until the board's sender is gone.
pub async fn keep_written(
    path: PathBuf,
    metrics: Arc<Metrics>,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    mut boot: watch::Receiver<Option<Arc<BootFacts>>>,
) {
    let mut last_error: Option<String> = None;
    loop {
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
